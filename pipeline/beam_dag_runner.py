"""The local orchestrator: TFX's BeamDagRunner, printing a line per component as it starts and ends."""

import time

from tfx.orchestration.beam import beam_dag_runner

from pipeline import beam_settings


def _say(line: str) -> None:
    print(line, flush=True)


class _ProgressReportingNodeDoFn(beam_dag_runner.PipelineNodeAsDoFn):
    """Runs one pipeline node and prints when it starts and ends, with seconds."""

    def process(self, element, *signals):
        started = time.monotonic()
        _say(f"  start  {self._node_id}")
        try:
            super().process(element, *signals)
        except BaseException:
            _say(f"  FAILED {self._node_id} after {time.monotonic() - started:.1f} s")
            raise
        _say(f"  done   {self._node_id:<32} {time.monotonic() - started:6.1f} s")


class ProgressReportingBeamDagRunner(beam_dag_runner.BeamDagRunner):
    """BeamDagRunner that prints a line per component as it starts and ends."""

    _PIPELINE_NODE_DO_FN_CLS = _ProgressReportingNodeDoFn

    def run(self, pipeline):
        beam_settings.disable_in_memory_state_cache()
        beam_settings.use_fast_crc32c()
        return super().run(pipeline)
