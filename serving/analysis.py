"""Automatic canary analysis with Flagger's semantics: ramp a healthy candidate up, roll a failing one back,
on what its clients saw.

Every interval it runs the checks of serving/analysis_checks.py on the candidate's last interval (at nginx
and in its server):
- all pass: the share steps up by `step_percent`, and at `max_percent` the candidate is promoted;
- any fails (out of bounds, too few requests, no data, or Prometheus did not answer): a failed check;
  `failed_checks` of them over the analysis (not only in a row: Flagger's threshold) roll it back;
- not promoted within `progress_deadline_intervals` intervals: rolled back (the progress deadline);
- another candidate took the canary (a new `serve canary`): the analysis starts again for it, as Flagger
  restarts on a new revision; no canary is live any more: it stops.
A candidate's first check waits until Prometheus can hold its figures (`Bounds.first_check_seconds`).
A rollback is recorded in the registry, so the pipeline never pushes that model again.

It survives its own errors: one while measuring is a failed check; one while acting (an nginx reload
that failed) is logged and the action retried at the next interval; any other is logged, and the next
interval goes on. Every decision and every error is a
JSON line in `outputs/serving/analysis.log`, with the figures it was based on.

If the process dies mid-canary, nothing can move traffic for it: Prometheus fires TaxiCanaryAnalysisDown
(serving/prometheus/analysis_rules.yml), as its /metrics target is down or its heartbeat, refreshed after
each interval it completes, is three intervals old.

    python -m serving.analysis --output-dir outputs     # what `serve canary V --auto` starts
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import sys
import time

import prometheus_client

from config import folders
from config import serving as serving_config
from serving import analysis_checks, releases, stack, traffic
from serving.analysis_checks import Bounds

LOG_FILE = "analysis.log"


@dataclasses.dataclass(frozen=True)
class Policy:
    """How checks turn into decisions (Flagger's `threshold`, `stepWeight`, `maxWeight`), and the checks."""

    bounds: Bounds = Bounds()
    failed_checks: int = serving_config.CANARY_FAILED_CHECKS
    step_percent: float = serving_config.CANARY_STEP_PERCENT
    max_percent: float = serving_config.CANARY_MAX_PERCENT
    progress_deadline_intervals: int = serving_config.CANARY_PROGRESS_DEADLINE_INTERVALS

    def described(self) -> dict:
        return dataclasses.asdict(self)

    def arguments(self) -> tuple[str, ...]:
        """The command-line options that give the analysis's process this policy (its interval apart:
        `stack.start_analysis` takes that)."""
        bounds = self.bounds
        return (
            "--max-error-rate", f"{bounds.max_error_rate:g}", "--max-p99", f"{bounds.max_p99_seconds:g}",
            "--min-requests", str(bounds.min_requests), "--failed-checks", str(self.failed_checks),
            "--step", f"{self.step_percent:g}", "--max-percent", f"{self.max_percent:g}",
            "--progress-deadline", str(self.progress_deadline_intervals),
        )  # fmt: skip


@dataclasses.dataclass
class Progress:
    """The analysis of one candidate so far."""

    candidate: str | None = None
    seen_at: float = 0.0  # time.monotonic() when the analysis found it
    intervals: int = 0  # checked
    failed: int = 0
    rollback_reason: str | None = None  # decided; set until the rollback is done (retried if it failed)

    def restart(self, candidate: str) -> None:
        self.candidate, self.seen_at = candidate, time.monotonic()
        self.intervals, self.failed, self.rollback_reason = 0, 0, None


class Heartbeat:
    """The analysis's own /metrics, which Prometheus scrapes: when it last completed an interval, its
    interval, and its failed checks so far."""

    def __init__(self, port: int, interval_seconds: float):
        registry = prometheus_client.CollectorRegistry()
        self.last_check = prometheus_client.Gauge(
            "taxi_canary_analysis_last_check_timestamp_seconds",
            "When the canary analysis last completed an interval (Unix time).",
            registry=registry,
        )
        interval = prometheus_client.Gauge(
            "taxi_canary_analysis_interval_seconds", "The canary analysis's interval.", registry=registry
        )
        self.failed = prometheus_client.Gauge(
            "taxi_canary_analysis_failed_checks", "Failed checks of the candidate so far.", registry=registry
        )
        interval.set(interval_seconds)
        self.last_check.set_to_current_time()
        prometheus_client.start_http_server(port, addr="127.0.0.1", registry=registry)

    def beat(self, progress: Progress) -> None:
        self.last_check.set_to_current_time()
        self.failed.set(progress.failed)


def run(paths: stack.StackPaths, policy: Policy, heartbeat: Heartbeat | None = None) -> str:
    """Analyses the live canary until it is promoted or rolled back, or ends otherwise; returns
    'promoted', 'rolled back' or 'stopped'. Never raises: each error is logged, and the next interval
    goes on (an interval that raised does not refresh the heartbeat)."""
    progress = Progress()
    with contextlib.suppress(Exception):  # the first interval finds it otherwise
        state = stack.read_state(paths)
        progress.restart(state["candidate"]["version"])
    while True:
        time.sleep(policy.bounds.interval_seconds)
        try:
            outcome = _interval(paths, policy, progress)
        except Exception as error:  # noqa: BLE001  the analysis outlives its own faults, logging each
            _log(paths, {"candidate": progress.candidate, "decision": "error", "reason": _described(error)})
            continue
        if heartbeat:
            heartbeat.beat(progress)
        if outcome:
            return outcome


def _interval(paths: stack.StackPaths, policy: Policy, progress: Progress) -> str | None:
    """One interval: check, then hold, step, promote or roll back; the outcome once the analysis ends."""
    state = stack.read_state(paths)
    if not state or state["mode"] != traffic.CANARY:
        _log(
            paths,
            {"candidate": progress.candidate, "decision": "stop", "reason": "no canary is live any more"},
        )
        return "stopped"
    version, percent = state["candidate"]["version"], state["canary_percent"]
    if version != progress.candidate:
        if progress.candidate is not None:
            _log(paths, {"candidate": version, "decision": "restart",
                         "reason": f"version {version} replaced {progress.candidate} as the canary"})  # fmt: skip
        progress.restart(version)
    waited = time.monotonic() - progress.seen_at
    if waited < policy.bounds.first_check_seconds:
        _log(paths, {"candidate": version, "percent": percent, "decision": "wait",
                     "reason": f"its figures reach Prometheus {policy.bounds.first_check_seconds:g} s after it "
                     f"starts; {waited:.1f} s so far"})  # fmt: skip
        return None
    progress.intervals += 1
    entry = {"candidate": version, "percent": percent, "interval": progress.intervals}
    if progress.rollback_reason:
        return _rollback(paths, entry, progress.rollback_reason)
    try:
        figures = analysis_checks.measure(state["prometheus"]["url"], version, policy.bounds)
        failures = analysis_checks.judge(figures, policy.bounds)
    except analysis_checks.MetricsUnavailable as error:
        figures, failures = {}, [f"metrics unavailable: {error}"]
    except Exception as error:  # noqa: BLE001  a fault of the check itself fails it, as no data would
        figures, failures = {}, [f"the check itself failed: {_described(error)}"]
    progress.failed += bool(failures)
    entry.update(figures, checks_failed=failures, failed_checks=progress.failed, policy=policy.described())
    if failures and progress.failed >= policy.failed_checks:
        progress.rollback_reason = (
            f"canary analysis: {progress.failed} failed checks, the threshold is {policy.failed_checks}; "
            f"the last: {'; '.join(failures)}"
        )
        return _rollback(paths, entry, progress.rollback_reason)
    if not failures and percent >= policy.max_percent:
        return _act(
            paths, entry, "promote", f"healthy at {percent:g} %, the most a canary gets", releases.promote
        )
    if progress.intervals >= policy.progress_deadline_intervals:
        progress.rollback_reason = (
            f"canary analysis: progress deadline, not promoted within {progress.intervals} intervals "
            f"({progress.intervals * policy.bounds.interval_seconds:g} s)"
            + (f"; the last check failed: {'; '.join(failures)}" if failures else "")
        )
        return _rollback(paths, entry, progress.rollback_reason)
    if failures:
        reason = f"failed check {progress.failed} of {policy.failed_checks}: {'; '.join(failures)}"
        _log(paths, {**entry, "decision": "hold", "reason": reason})
        return None
    share = min(policy.max_percent, percent + policy.step_percent)
    return _act(
        paths, entry, "step", f"healthy: {percent:g} % -> {share:g} %", releases.canary, version, share
    )


def _rollback(paths: stack.StackPaths, entry: dict, reason: str) -> str | None:
    return _act(paths, entry, "rollback", reason, releases.rollback, reason)


def _act(paths: stack.StackPaths, entry: dict, decision: str, reason: str, action, *arguments) -> str | None:
    """Does `action(paths, *arguments)` and logs the decision; an action that fails is logged as an error
    and tried again at the next interval. The analysis's outcome once a promotion or rollback is done."""
    try:
        action(paths, *arguments)
    except Exception as error:  # noqa: BLE001  retried at the next interval
        _log(paths, {**entry, "decision": "error", "reason": f"{decision} failed, retried next interval: "
                     f"{_described(error)}; it was to {decision} because {reason}"})  # fmt: skip
        return None
    _log(paths, {**entry, "decision": decision, "reason": reason})
    return {"promote": "promoted", "rollback": "rolled back"}.get(decision)


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def decisions(paths: stack.StackPaths) -> list[dict]:
    path = paths.root / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _log(paths: stack.StackPaths, entry: dict) -> None:
    """Appends `entry` to the decision log, and prints it; a log that cannot be written is said on stderr
    (the process's own log), and the analysis goes on."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    line = json.dumps({"time": now, **entry})
    try:
        with (paths.root / LOG_FILE).open("a") as handle:
            handle.write(line + "\n")
    except OSError as error:
        print(f"the decision log {paths.root / LOG_FILE} cannot be written: {error}", file=sys.stderr)
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--interval", type=float, default=serving_config.CANARY_INTERVAL_SECONDS)
    parser.add_argument("--max-p99", type=float, default=serving_config.CANARY_MAX_P99_SECONDS)
    parser.add_argument("--max-error-rate", type=float, default=serving_config.CANARY_MAX_ERROR_RATE)
    parser.add_argument("--min-requests", type=int, default=serving_config.CANARY_MIN_REQUESTS)
    parser.add_argument("--failed-checks", type=int, default=serving_config.CANARY_FAILED_CHECKS)
    parser.add_argument("--step", type=float, default=serving_config.CANARY_STEP_PERCENT)
    parser.add_argument("--max-percent", type=float, default=serving_config.CANARY_MAX_PERCENT)
    parser.add_argument(
        "--progress-deadline", type=int, default=serving_config.CANARY_PROGRESS_DEADLINE_INTERVALS
    )
    parser.add_argument("--metrics-port", type=int, help="Serve the heartbeat at /metrics on this port.")
    args = parser.parse_args(argv)
    paths = stack.StackPaths.of(folders.Settings.resolve(args.output_dir))
    bounds = Bounds(args.interval, args.max_error_rate, args.max_p99, args.min_requests)
    policy = Policy(bounds, args.failed_checks, args.step, args.max_percent, args.progress_deadline)
    heartbeat = Heartbeat(args.metrics_port, args.interval) if args.metrics_port else None
    run(paths, policy, heartbeat)
    with contextlib.suppress(stack.StackError):  # the stack was stopped meanwhile: nothing to clear
        stack.set_analysis(paths, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
