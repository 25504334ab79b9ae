"""The local pipeline's settings that depend on the data: how the Evaluator runs."""

from pathlib import Path

import pytest

from pipeline import configs, local_pipeline


def _evaluator_beam_args(tmp_path: Path, evaluation_rows: int) -> list[str]:
    settings = configs.Settings(output_dir=tmp_path, data_root=tmp_path / "spans")
    eval_dir = settings.example_gen_input / "span-3" / configs.EVAL_SPLIT
    eval_dir.mkdir(parents=True)
    (eval_dir / "data.csv").write_text("fare,tips\n" + "1.0,0.5\n" * evaluation_rows)
    [evaluator] = [node for node in local_pipeline.build(settings).components if node.id == "Evaluator"]
    return evaluator.executor_spec.beam_pipeline_args


@pytest.mark.parametrize(
    ("evaluation_rows", "parallel"),
    [
        (3_064, False),  # the sample's window: two worker processes would cost more than they save
        (configs.PARALLEL_EVALUATION_MIN_EXAMPLES, True),
    ],
)
def test_the_evaluator_runs_on_worker_processes_only_for_a_large_evaluation_window(
    tmp_path, evaluation_rows, parallel
):
    beam_args = _evaluator_beam_args(tmp_path, evaluation_rows)
    # The pipeline's args come first, so the Evaluator's own ones win.
    assert beam_args[: len(configs.BEAM_PIPELINE_ARGS)] == list(configs.BEAM_PIPELINE_ARGS)
    assert beam_args[len(configs.BEAM_PIPELINE_ARGS) :] == (
        list(configs.PARALLEL_EVALUATION_BEAM_ARGS) if parallel else []
    )
