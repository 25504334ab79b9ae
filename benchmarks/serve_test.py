"""`make bench-serve`'s in-process baselines on a small trained model: the floor and the server's own model
call answer, so every ratio the benchmark prints has its denominator (the benchmark itself needs a
running stack and is never a timed test)."""

import time

from benchmarks import serve
from tests.support import serving_models


def test_the_floor_and_the_model_call_time_one_trip_and_a_batch(tmp_path):
    model_dir = serving_models.train(tmp_path / "model")
    started = time.perf_counter()
    report = serve.floor(model_dir, batch=10, calls=20, rate=50)
    for name in ("floor", "model_call"):
        assert 0 < report[name]["p50_ms"] <= report[name]["p99_ms"], report
        assert report[name]["batched_trips_per_second"] > 0, report
    paced = report["model_call_paced"]
    assert 0 < paced["p50_ms"] <= paced["p99_ms"] and paced["cpu_ms"] > 0, report
    assert time.perf_counter() - started >= 20 / 50  # twenty calls at fifty a second take 0.4 s at least
