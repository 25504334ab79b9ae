"""Smoke test: `make bench` runs on tiny generated data and writes its JSON (no timing is asserted).

Our pipeline (cold, second and fully cached runs) and the floor only: the official example trains 1,000
steps whatever the data, which would add minutes to CI. `make bench` itself runs all seven variants.
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
    ours = ("ours_cold", "ours_second", "ours_cached")
    assert set(report["medians"]) == {*ours, "floor"}
    assert set(report["ratios"]) == {"ours_cold/floor"}
    for variant in (*ours, "floor"):
        assert 0.5 < report["medians"][variant]["auc"] <= 1.0, variant
    # The second run reused the first one's training; the third reused everything.
    [second_run] = written["runs"]["ours_second"]
    assert second_run["statuses"]["Transform"] == second_run["statuses"]["Trainer"] == "cached"
    [cached_run] = written["runs"]["ours_cached"]
    assert set(cached_run["statuses"].values()) == {"cached"}, cached_run["statuses"]
    assert report["ours_cold_components"]["Trainer"] > 0
    assert "ours_cold/floor" in completed.stdout
