"""The canary analysis on the real stack (nginx and its access log, mtail, the model servers, Prometheus),
each failure case asserting the decision and its reason, and measuring how long the decision took: from the
fault (or the canary's start) until traffic was back on stable, or the candidate stable. `-s` prints each
case's line for docs/serving.md's table:

    .venv/bin/pytest -s -m e2e tests/e2e/test_canary_analysis.py

Short intervals (3 s) and one small model: version 100 is stable, 200 the same model as a healthy
candidate, 300 broken (every prediction fails), 400 slow (0.2 s a request). Loads are bounded, on loopback.
"""

import dataclasses
import os
import re
import signal
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import model_variants
from clients import load
from config import folders
from config import serving as serving_config
from registry import versions
from serving import access_log, analysis, nginx, processes, prometheus, releases, stack, stack_state
from serving.analysis_checks import Bounds
from serving.request_contract import EXAMPLE_TRIP
from tests.support import serving_models, system_tools

pytestmark = pytest.mark.e2e

PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"
CANARY_PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}/labels/canary:predict"
TRIP = {"instances": [EXAMPLE_TRIP]}
INTERVAL = 3.0
# 10 % -> 20 -> 30 -> 40 -> 50 %, then promoted: five healthy intervals, so a fault injected after the first
# step has four to be caught in. 0.15 s: a loaded two-core machine's healthy p99, with room.
POLICY = analysis.Policy(
    bounds=Bounds(interval_seconds=INTERVAL, max_p99_seconds=0.15, min_requests=5),
    failed_checks=2,
    step_percent=10,
    max_percent=50,
    progress_deadline_intervals=8,
)
# A decision on a fault takes `failed_checks` intervals, plus what mtail and Prometheus lag (the log read
# every 0.25 s, a scrape every 2 s) and the interval under way when the fault came.
FAULT_DECIDED_SECONDS = (
    (POLICY.failed_checks + 1) * INTERVAL + 2 * serving_config.PROMETHEUS_SCRAPE_SECONDS + 1
)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    system_tools.require("nginx", "prometheus", "mtail")
    root = tmp_path_factory.mktemp("canary")
    model = serving_models.train(root / "models" / "first", seed=0)
    settings = folders.Settings(output_dir=root / "outputs", data_root=None)
    serving = settings.serving_model_dir
    for version, source in (
        ("100", model),
        ("200", model),
        ("300", model_variants.broken(model, root / "variants" / "broken")),
        ("400", model_variants.slow(model, root / "variants" / "slow", seconds=0.2)),
    ):
        versions.write_version(serving, source, version)  # as the Pusher writes: whole, with its record
    paths = stack.StackPaths.of(settings)
    stack.start(paths, "100", processes.free_port(), processes.free_port())
    yield paths
    stack.stop(paths)


@pytest.fixture
def canary(paths):
    """Starts a canary; afterwards the stack is back on version 100 alone, nothing rolled back."""
    yield lambda version, percent=10: releases.canary(paths, version, percent)
    if stack.read_state(paths)["mode"] != "single":
        releases.rollback(paths, "end of the test")
    for version in versions.rolled_back_versions(paths.serving_dir):
        versions.undo_rollback(paths.serving_dir, version)
    if stack.read_state(paths)["stable"]["version"] != "100":  # a candidate was promoted
        releases.switch(paths, "100")
        releases.promote(paths)


def _url(paths) -> str:
    return f"http://127.0.0.1:{stack.read_state(paths)['port']}"


class _Analysis:
    """serving/analysis.py in its own process, as `serve canary V --auto` starts it, and its decisions."""

    def __init__(self, paths, policy: analysis.Policy = POLICY, interval: float = INTERVAL):
        self.paths, self.logged = paths, len(analysis.decisions(paths))
        self.started = time.monotonic()
        self.slot = stack.start_analysis(paths, paths.root.parent, interval, policy.arguments())

    def decisions(self, kind: str | None = None) -> list[dict]:
        """Its decisions (of `kind`) so far."""
        found = analysis.decisions(self.paths)[self.logged :]
        return [d for d in found if kind is None or d["decision"] == kind]

    def wait_for(self, kind: str, seconds: float = 40) -> dict:
        """Its first decision of `kind`, once it has logged one."""
        return _wait_until(lambda: (self.decisions(kind) or [None])[0], seconds)

    def final(self, seconds: float = 60) -> dict:
        """Its last decision, once its process has ended (and cleared its place in the state)."""
        _wait_until(lambda: not processes.alive(self.slot["pid"]), seconds)
        assert stack.read_state(self.paths)["analysis"] is None
        return self.decisions()[-1]


def _decided(paths, version: str, since: float, seconds: float = 90) -> float:
    """Seconds from `since` until the canary of `version` ended: traffic back on stable, or it stable."""

    def ended():
        state = stack.read_state(paths)
        return state["mode"] != "canary" or state["candidate"]["version"] != version

    _wait_until(ended, seconds, poll=0.05)
    return time.monotonic() - since


def _report(case: str, entry: dict, delay: float) -> None:
    print(f"\ncanary case | {case} | {entry['decision']} | {entry['reason']} | {delay:.1f} s")


def _rolled_back(paths, running: _Analysis, version: str) -> dict:
    decision = running.final()
    assert (decision["decision"], decision["candidate"]) == ("rollback", version), decision
    state = stack.read_state(paths)
    assert (state["mode"], state["stable"]["version"]) == ("single", "100")
    assert version in versions.rolled_back_versions(paths.serving_dir)  # never pushed again
    return decision


@pytest.mark.parametrize(
    "case, fault, cause",
    [
        ("candidate killed (SIGKILL)", signal.SIGKILL, r"error rate at nginx [0-9.]+ above 0.01 \(.*502: "),
        # nginx waits 60 s for an answer; the clients give up first, and their 499s are what shows.
        ("candidate stopped (SIGSTOP)", signal.SIGSTOP, r"error rate at nginx [0-9.]+ above 0.01 \(499: "),
    ],
)
def test_a_candidate_that_dies_or_hangs_mid_analysis_is_rolled_back_on_what_its_clients_saw(
    paths, canary, case, fault, cause
):
    canary("200")
    # Clients that give up after a second, as a caller with a deadline would: a hung candidate then shows as
    # their 499s, long before nginx's own timeout (60 s).
    loads = [load.BackgroundLoad(_url(paths), PREDICT, TRIP, max_seconds=90, timeout=1) for _ in range(4)]
    with loads[0], loads[1], loads[2], loads[3]:
        running = _Analysis(paths)
        running.wait_for("step")
        # Every process of the candidate: with one left, nginx retries on it and clients see no fault (that
        # case is tests/e2e/test_server_failover.py's); the supervisor's replacements are not ready in time.
        candidates = stack.server_pids(stack.read_state(paths)["candidate"])
        for pid in candidates:
            os.kill(pid, fault)
        delay = _decided(paths, "200", time.monotonic())
        decision = _rolled_back(paths, running, "200")
    _report(case, decision, delay)
    assert re.search(cause, decision["reason"]), decision
    assert not any(processes.alive(pid) for pid in candidates)  # the stopped ones too: a stop continues them
    assert delay < FAULT_DECIDED_SECONDS


@pytest.mark.parametrize(
    "case, version, cause",
    [
        # Counted at nginx (via mtail) or, when mtail's count lags the interval, in the candidate's own server.
        (
            "broken candidate (500 on every prediction)",
            "300",
            r"error rate at nginx 1 above 0.01 \(500: |error rate in its server 1 above 0.01",
        ),
        ("slow candidate (0.2 s a request)", "400", r"p99 at nginx [0-9.]+ above 0.15 s"),
    ],
)
def test_a_failing_or_slow_candidate_is_rolled_back_and_says_why(paths, canary, case, version, cause):
    canary(version)
    with load.BackgroundLoad(_url(paths), PREDICT, TRIP, max_seconds=90):
        running = _Analysis(paths)
        delay = _decided(paths, version, running.started)
        decision = _rolled_back(paths, running, version)
    _report(case, decision, delay)
    assert re.search(cause, decision["reason"]), decision
    assert delay < POLICY.bounds.first_check_seconds + FAULT_DECIDED_SECONDS


def test_with_prometheus_stopped_mid_analysis_every_check_fails_and_the_candidate_is_rolled_back(
    paths, canary
):
    canary("200")
    before = stack.read_state(paths)["prometheus"]
    try:
        with load.BackgroundLoad(_url(paths), PREDICT, TRIP, max_seconds=90):
            running = _Analysis(paths)
            running.wait_for("step")
            processes.stop(before["pid"])
            delay = _decided(paths, "200", time.monotonic())
            decision = _rolled_back(paths, running, "200")
    finally:
        with stack_state.locked(paths):
            state = stack.read_state(paths)
            state["prometheus"] = prometheus.start(paths.root, before["port"], stack.ledger(paths))
            stack_state.write_state(paths, state)
    _report("Prometheus stopped mid-analysis", decision, delay)
    assert f"metrics unavailable: Prometheus at {before['url']} failed" in decision["reason"], decision
    [held] = running.decisions("hold")
    assert "Connection refused" in held["reason"]  # the error itself, in the decision log
    assert delay < FAULT_DECIDED_SECONDS


def test_a_canary_no_request_reaches_is_rolled_back_for_want_of_evidence(paths, canary):
    canary("200")
    running = _Analysis(paths)
    delay = _decided(paths, "200", running.started)
    decision = _rolled_back(paths, running, "200")
    _report("no traffic", decision, delay)
    assert (
        "0 requests reached it at nginx in the interval, fewer than the 5 a check needs" in decision["reason"]
    )
    assert "p99 at nginx: no data" in decision["reason"]
    assert delay < POLICY.bounds.first_check_seconds + FAULT_DECIDED_SECONDS


def test_a_storm_of_malformed_requests_at_the_canary_does_not_roll_it_back(paths, canary):
    canary("200")
    bad = b'{"instances": [{"fare": "twelve"'
    with (
        load.BackgroundLoad(_url(paths), PREDICT, TRIP, max_seconds=90),
        load.BackgroundLoad(_url(paths), CANARY_PREDICT, bad, max_seconds=90) as storm,
        load.BackgroundLoad(_url(paths), CANARY_PREDICT, bad, max_seconds=90) as more_storm,
    ):
        running = _Analysis(paths)
        delay = _decided(paths, "200", running.started)
        decision = running.final()
    # 400 while the canary was live; 404 ("label canary is not assigned") once it was promoted.
    assert storm.tally.statuses[400] > 1000
    assert set(storm.tally.statuses) | set(more_storm.tally.statuses) <= {400, 404}
    _report("a storm of malformed requests at the canary (and healthy traffic)", decision, delay)
    assert decision["decision"] == "promote", decision
    steps = running.decisions("step")
    assert [d["percent"] for d in steps] == [10, 20, 30, 40]  # then promoted at 50
    assert all(d["error_rate"] == 0 and d["checks_failed"] == [] for d in steps + [decision])
    # The 4xx reached the candidate and were set aside: more of them than of the requests judged.
    assert sum(d["client_errors"] for d in steps) > sum(d["requests"] for d in steps)
    assert stack.read_state(paths)["stable"]["version"] == "200"


def test_a_canary_not_promoted_by_the_progress_deadline_is_rolled_back(paths, canary):
    canary("200")
    policy = dataclasses.replace(POLICY, progress_deadline_intervals=2)
    with load.BackgroundLoad(_url(paths), PREDICT, TRIP, max_seconds=90):
        running = _Analysis(paths, policy)
        delay = _decided(paths, "200", running.started)
        decision = _rolled_back(paths, running, "200")
    _report("progress deadline (2 intervals checked, 5 needed)", decision, delay)
    assert "progress deadline, not promoted within 2 intervals (6 s)" in decision["reason"]


def test_an_analysis_that_dies_mid_canary_fires_an_alert(paths, canary):
    canary("200")
    running = _Analysis(paths, interval=30)  # it would decide nothing during the test
    url = stack.read_state(paths)["prometheus"]["url"]
    instance = f"127.0.0.1:{running.slot['port']}"

    def firing():
        return [
            a
            for a in prometheus.alerts(url)
            if a["labels"]["alertname"] == "TaxiCanaryAnalysisDown" and a["state"] == "firing"
        ]

    _wait_until(lambda: prometheus.scalar(url, f'up{{instance="{instance}"}}') == 1, 30)
    assert not firing(), firing()
    os.kill(running.slot["pid"], signal.SIGKILL)
    killed = time.monotonic()
    [alert] = _wait_until(firing, 60)
    delay = time.monotonic() - killed
    _report(
        "the analysis process killed (SIGKILL)",
        {"decision": "alert", "reason": alert["annotations"]["summary"]},
        delay,
    )
    assert alert["labels"]["instance"] == instance
    assert stack.read_state(paths)["mode"] == "canary"  # nothing moved traffic: the alert is what tells
    assert delay < 10 + 3 * serving_config.PROMETHEUS_SCRAPE_SECONDS + 2  # its `for`, scrapes and evaluations
    releases.rollback(paths, "the analysis died")
    _wait_until(lambda: not firing(), 30)  # no canary, no analysis target: the alert clears


def test_the_access_log_is_rotated_and_mtail_follows_it(paths):
    metrics_url = f"http://127.0.0.1:{stack.read_state(paths)['mtail']['port']}/metrics"
    log = paths.run / nginx.ACCESS_LOG

    def counted() -> float:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "taxi_nginx_requests_total" and sample.labels["version"] == "100"
        )

    client = load.Client(_url(paths))
    for _ in range(5):
        client.post(PREDICT, TRIP)
    before = _wait_until(lambda: counted() if log.stat().st_size and counted() >= 5 else None, 10)
    assert access_log.rotate_if_large(paths.run, max_bytes=1)
    assert log.stat().st_size == 0 and (paths.run / f"{nginx.ACCESS_LOG}.1").stat().st_size > 0
    for _ in range(5):
        client.post(PREDICT, TRIP)
    _wait_until(lambda: counted() >= before + 5, 10)  # mtail read the truncated file from its start
    assert log.read_text().count('"version":"100"') == 5


def _wait_until(condition, seconds: float, poll: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"not so after {seconds:g} s: {condition}")
