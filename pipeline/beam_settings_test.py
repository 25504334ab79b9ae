"""Without the in-memory worker's state cache, Beam never weighs side inputs with objsize; records are
checksummed by google-crc32c, in workers too."""

import apache_beam as beam
import google_crc32c
from apache_beam.io import tfrecordio
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import statecache

from config import pipeline as pipeline_config
from pipeline import beam_settings


def _weighings_of_a_side_input_read(monkeypatch) -> int:
    """Runs a small pipeline with a side input under the pipeline's Beam args; counts objsize weighings."""
    calls = []
    weigh = statecache.get_deep_size
    monkeypatch.setattr(statecache, "get_deep_size", lambda *objs: calls.append(1) or weigh(*objs))
    with beam.Pipeline(options=PipelineOptions(list(pipeline_config.BEAM_PIPELINE_ARGS))) as pipeline:
        side = pipeline | "Side" >> beam.Create([10])
        _ = (
            pipeline
            | "Main" >> beam.Create(range(5))
            | beam.Map(lambda x, s: x + s, beam.pvalue.AsSingleton(side))
        )
    return len(calls)


def test_the_in_memory_worker_caches_and_weighs_side_inputs_by_default(monkeypatch):
    # Beam 2.59's own value (another test in this process may already have run the pipeline's runner).
    monkeypatch.setattr(worker_handlers, "STATE_CACHE_SIZE_MB", 100)
    assert _weighings_of_a_side_input_read(monkeypatch) > 0


def test_disabled_the_cache_weighs_nothing(monkeypatch):
    monkeypatch.setattr(worker_handlers, "STATE_CACHE_SIZE_MB", worker_handlers.STATE_CACHE_SIZE_MB)
    beam_settings.disable_in_memory_state_cache()
    assert worker_handlers.STATE_CACHE_SIZE_MB == 0
    assert _weighings_of_a_side_input_read(monkeypatch) == 0


def _crc32c_functions(options: list[str], folder) -> set[str]:
    """The function Beam's TFRecord coder checksums with, as the workers of a pipeline under `options` find it."""

    def function_name(_):
        from apache_beam.io import tfrecordio  # noqa: PLC0415  (in the worker)

        tfrecordio._default_crc32c_fn(b"")  # noqa: SLF001  (picks crcmod when nothing was set)
        function = tfrecordio._default_crc32c_fn.fn  # noqa: SLF001
        return f"{function.__module__}.{function.__name__}"

    with beam.Pipeline(options=PipelineOptions(options)) as pipeline:
        _ = (
            pipeline
            | beam.Create(range(4))
            | beam.Map(function_name)
            | beam.io.WriteToText(str(folder / "names"))
        )
    return {line for path in folder.glob("names*") for line in path.read_text().split()}


def test_records_are_checksummed_with_google_crc32c_the_same_as_with_crcmod(monkeypatch, tmp_path):
    monkeypatch.setattr(tfrecordio._default_crc32c_fn, "fn", None)  # noqa: SLF001
    records = [b"", b"taxi", bytes(range(256)) * 40]
    slow = [tfrecordio._TFRecordUtil._masked_crc32c(r) for r in records]  # noqa: SLF001
    beam_settings.use_fast_crc32c()
    assert [tfrecordio._TFRecordUtil._masked_crc32c(r) for r in records] == slow  # noqa: SLF001
    assert tfrecordio._default_crc32c_fn.fn is google_crc32c.value  # noqa: SLF001


def test_worker_processes_use_google_crc32c_too(tmp_path):
    options = [*pipeline_config.PARALLEL_BEAM_ARGS, "--direct_num_workers=1"]
    fast = f"{google_crc32c.value.__module__}.value"
    assert _crc32c_functions(options, tmp_path / "ours") == {fast}
    # Without the plugin a worker finds crcmod's function.
    plain = [option for option in options if not option.startswith("--beam_plugins")]
    assert _crc32c_functions(plain, tmp_path / "plain") != {fast}
