"""The analysis outlives its own faults and logs each one: a Prometheus that does not answer is a failed check,
an action that fails is an error retried at the next interval, an unreadable state is an error, and the
analysis stops once no canary is live. On a real state file and a real refused connection, without a stack
(tests/e2e/test_canary_analysis.py runs the analysis on the real stack)."""

import json
import threading
import time

from config import folders
from config import serving as serving_config
from serving import analysis, processes, stack, stack_state
from serving.analysis_checks import Bounds

INTERVAL = 0.2
POLICY = analysis.Policy(bounds=Bounds(interval_seconds=INTERVAL, min_requests=5), failed_checks=2)


def _canary_state(prometheus_port: int) -> dict:
    server = {"version": "100", "port": processes.free_port(), "pid": None, "label": "stable"}
    return {
        "port": processes.free_port(), "mode": "canary", "stable": server,
        "candidate": dict(server, version="200", label="canary"), "canary_percent": 10.0,
        "prometheus": {"pid": None, "port": prometheus_port, "url": f"http://127.0.0.1:{prometheus_port}"},
        "analysis": None,
    }  # fmt: skip


def _wait_for(condition, seconds: float = 15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError(f"not so after {seconds:g} s")


def test_the_analysis_logs_each_of_its_errors_and_goes_on_until_the_canary_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(serving_config, "PROMETHEUS_SCRAPE_SECONDS", 0.05)  # the first check comes at once
    paths = stack.StackPaths.of(folders.Settings(output_dir=tmp_path / "outputs", data_root=None))
    paths.root.mkdir(parents=True)
    prometheus_port = processes.free_port()  # nothing listens there: every query is refused
    stack_state.write_state(paths, _canary_state(prometheus_port))
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(analysis.run(paths, POLICY)), daemon=True)
    runner.start()

    # Two failed checks roll it back; the rollback itself fails (no nginx runs), is logged, and is tried
    # again every interval.
    def logged(kind):
        return [d for d in analysis.decisions(paths) if d["decision"] == kind]

    retried = _wait_for(lambda: len(logged("error")) >= 2 and logged("error"))
    [held] = logged("hold")
    assert f"metrics unavailable: Prometheus at http://127.0.0.1:{prometheus_port} failed" in held["reason"]
    assert held["failed_checks"] == 1 and held["policy"]["failed_checks"] == 2
    assert all("rollback failed, retried next interval: StackError" in d["reason"] for d in retried)
    assert "2 failed checks, the threshold is 2" in retried[0]["reason"]

    # A state it cannot read: an error, and the next interval goes on.
    (paths.root / stack_state.STATE_FILE).write_text("{not json")
    _wait_for(lambda: any("JSONDecodeError" in d["reason"] for d in logged("error")))
    assert runner.is_alive()

    # The canary ended otherwise (here: the stack is gone): the analysis stops.
    stack_state.remove_state(paths)
    runner.join(timeout=10)
    assert outcome == ["stopped"]
    assert logged("stop")[0]["reason"] == "no canary is live any more"
    assert all(json.loads(line) for line in (paths.root / analysis.LOG_FILE).read_text().splitlines())
