"""Beam DirectRunner settings that pipeline options cannot reach, applied in the process that runs it (and,
by `beam_worker_settings.py`, in Beam's worker processes).

`pipeline_config.BEAM_PIPELINE_ARGS` runs every Beam component in this process (`in_memory`). There, Beam 2.59
keeps side inputs in a 100 MB state cache and weighs every value it caches with `objsize`, which first
walks the globals of every loaded module, TensorFlow's included: 0.1-0.5 s per side input read. On the
sample that was 18 s of a cold run (12 s of Transform's 48 s). `--max_cache_memory_usage_mb=0`, Beam's
own advice for this regression (apache/beam#30360), only reaches worker processes, not the in-memory
worker, whose size is a module constant. Without the cache, a side input is read again from memory.
"""

import google_crc32c
from apache_beam.io import tfrecordio
from apache_beam.runners.portability.fn_api_runner import worker_handlers


def disable_in_memory_state_cache() -> None:
    """No state cache for the DirectRunner's in-memory worker (see the module docstring)."""
    worker_handlers.STATE_CACHE_SIZE_MB = 0


def use_fast_crc32c() -> None:
    """Beam's TFRecord reader and writer checksum every record (twice) with crcmod unless python-snappy is
    installed: 1.68 us a record, 3 % of StatisticsGen, Transform and EvaluationSample at 1M rows. google-crc32c
    (in the lock, C) computes the same CRC-32C in 0.17 us."""
    tfrecordio._default_crc32c_fn.fn = google_crc32c.value  # noqa: SLF001 (Beam's own cache of the function)
