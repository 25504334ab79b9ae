"""Smoke test: `make bench-monitor` runs on a small history and writes its JSON, whose counts are the
trips and labels it wrote (no timing is asserted)."""

import json
import subprocess
import sys


def test_bench_monitor_runs_and_counts_every_trip_and_label(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.monitor", "--work-dir", str(tmp_path), "--requests", "3000",
         "--new", "500", "--rounds", "2"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads((tmp_path / "monitor_bench.json").read_text())
    assert (report["first"]["logged_trips"], report["first"]["labelled_trips"]) == (3000, 3000)
    assert [(r["logged_trips"], r["labelled_trips"]) for r in report["rounds"]["rounds"]] == [
        (3500, 3500),
        (4000, 4000),
    ]
    assert set(report["refresh_after_new_seconds"]) == {"through the monitor", "a CSV file"}
