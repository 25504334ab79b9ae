"""Beam DirectRunner settings that pipeline options cannot reach, applied in the process that runs it.

`pipeline_config.BEAM_PIPELINE_ARGS` runs every Beam component in this process (`in_memory`). There, Beam 2.59
keeps side inputs in a 100 MB state cache and weighs every value it caches with `objsize`, which first
walks the globals of every loaded module, TensorFlow's included: 0.1-0.5 s per side input read. On the
sample that was 18 s of a cold run (12 s of Transform's 48 s). `--max_cache_memory_usage_mb=0`, Beam's
own advice for this regression (apache/beam#30360), only reaches worker processes, not the in-memory
worker, whose size is a module constant. Without the cache, a side input is read again from memory.
"""

from apache_beam.runners.portability.fn_api_runner import worker_handlers


def disable_in_memory_state_cache() -> None:
    """No state cache for the DirectRunner's in-memory worker (see the module docstring)."""
    worker_handlers.STATE_CACHE_SIZE_MB = 0
