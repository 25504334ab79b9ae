"""Smoke test: `make bench` runs on tiny generated data and writes its JSON (no timing is asserted).

Our pipeline (cold, then cached) and the floor only: the official example trains 1,000 steps whatever the
data, which would add ~5 minutes to CI. `make bench` itself runs all five variants.
"""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e  # three pipeline or training runs: about five minutes


def test_bench_runs_and_writes_its_json(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench",
            "--repetitions",
            "1",
            "--rows",
            "1500",
            "--only",
            "ours,floor",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    written = json.loads((tmp_path / "bench.json").read_text())
    report = written["summary"]
    assert set(report["medians"]) == {"ours_cold", "ours_cached", "floor"}
    assert set(report["ratios"]) == {"ours_cold/floor"}
    for variant in ("ours_cold", "ours_cached", "floor"):
        assert 0.5 < report["medians"][variant]["auc"] <= 1.0, variant
    # The second run of ours reused the first one's outputs.
    [cached_run] = written["runs"]["ours_cached"]
    assert cached_run["statuses"]["Transform"] == cached_run["statuses"]["Trainer"] == "cached"
    assert report["ours_cold_components"]["Trainer"] > 0
    assert "ours_cold/floor" in completed.stdout
