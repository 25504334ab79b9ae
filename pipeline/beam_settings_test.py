"""Without the in-memory worker's state cache, Beam never weighs side inputs with objsize."""

import apache_beam as beam
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
