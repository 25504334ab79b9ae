"""Automatic canary analysis, as Flagger and Argo Rollouts do it: ramp up a healthy candidate, roll back a
failing one, on Prometheus's figures.

Every `interval` seconds it asks Prometheus for the candidate's error rate (5xx among its requests) and
its p99 latency over the last interval, and compares them with their bounds (config/serving.py):
- both within: a passed check; the share steps up by `step` %, and once at `max` % with a passed check
  the candidate is promoted;
- either outside: a failed check; `failed_checks` of them in a row roll the candidate back (recorded in
  the registry, so the pipeline never pushes it again);
- no candidate traffic in the interval: neither (the decision waits).
Every decision is a JSON line in `outputs/serving/analysis.log`, with the figures it was based on.

    python -m serving.analysis --output-dir outputs     # what `serve canary V --auto` starts
"""

import argparse
import dataclasses
import datetime
import json
import sys
import time

from config import folders
from config import serving as serving_config
from serving import prometheus, releases, stack, traffic

LOG_FILE = "analysis.log"


@dataclasses.dataclass(frozen=True)
class Bounds:
    interval_seconds: float = serving_config.CANARY_INTERVAL_SECONDS
    max_error_rate: float = serving_config.CANARY_MAX_ERROR_RATE
    max_p99_seconds: float = serving_config.CANARY_MAX_P99_SECONDS
    failed_checks: int = serving_config.CANARY_FAILED_CHECKS
    step_percent: float = serving_config.CANARY_STEP_PERCENT
    max_percent: float = serving_config.CANARY_MAX_PERCENT


def measure(prometheus_url: str, version: str, window_seconds: float) -> dict:
    """The candidate's requests, error rate and p99 latency over the last `window_seconds`."""
    window = f"{max(int(window_seconds), 2 * serving_config.PROMETHEUS_SCRAPE_SECONDS)}s"
    selector = f'version="{version}",route!="shadow"'
    requests = prometheus.scalar(
        prometheus_url, f"sum(increase(taxi_requests_total{{{selector}}}[{window}]))"
    )
    errors = prometheus.scalar(
        prometheus_url, f'sum(increase(taxi_requests_total{{{selector},status=~"5.."}}[{window}]))'
    )
    p99 = prometheus.scalar(
        prometheus_url,
        f"histogram_quantile(0.99, sum by (le) (rate(taxi_request_duration_seconds_bucket{{{selector}}}[{window}])))",
    )
    return {
        "requests": round(requests or 0.0, 1),
        "error_rate": round((errors or 0.0) / requests, 4) if requests else None,
        "p99_seconds": round(p99, 4) if p99 is not None else None,
    }


def judge(figures: dict, bounds: Bounds) -> str:
    """'pass', 'fail' or 'wait' (no traffic to judge)."""
    if not figures["requests"]:
        return "wait"
    too_many_errors = figures["error_rate"] is not None and figures["error_rate"] > bounds.max_error_rate
    too_slow = figures["p99_seconds"] is not None and figures["p99_seconds"] > bounds.max_p99_seconds
    return "fail" if too_many_errors or too_slow else "pass"


def run(paths: stack.StackPaths, bounds: Bounds, max_intervals: int | None = None) -> str:
    """Analyses the live canary until it is promoted or rolled back (or `max_intervals` pass); returns
    'promoted', 'rolled back', 'stopped' (the canary ended otherwise) or 'undecided'."""
    failed, intervals = 0, 0
    while max_intervals is None or intervals < max_intervals:
        time.sleep(bounds.interval_seconds)
        intervals += 1
        state = stack.read_state(paths)
        if not state or state["mode"] != traffic.CANARY:
            _log(paths, {"decision": "stop", "reason": "no canary is live any more"})
            return "stopped"
        version, percent = state["candidate"]["version"], state["canary_percent"]
        figures = measure(state["prometheus"]["url"], version, bounds.interval_seconds)
        verdict = judge(figures, bounds)
        entry = {
            "candidate": version,
            "percent": percent,
            **figures,
            "check": verdict,
            "bounds": dataclasses.asdict(bounds),
        }
        if verdict == "wait":
            _log(
                paths,
                {**entry, "decision": "wait", "reason": "no requests reached the candidate in the interval"},
            )
            continue
        if verdict == "fail":
            failed += 1
            if failed >= bounds.failed_checks:
                reason = (
                    f"canary analysis: {failed} failed checks in a row (error rate {figures['error_rate']}, "
                    f"p99 {figures['p99_seconds']} s; bounds {bounds.max_error_rate}, {bounds.max_p99_seconds} s)"
                )
                releases.rollback(paths, reason)
                _log(paths, {**entry, "decision": "rollback", "reason": reason})
                return "rolled back"
            _log(
                paths,
                {**entry, "decision": "hold", "reason": f"failed check {failed} of {bounds.failed_checks}"},
            )
            continue
        failed = 0
        if percent >= bounds.max_percent:
            releases.promote(paths)
            _log(
                paths,
                {
                    **entry,
                    "decision": "promote",
                    "reason": f"healthy at {percent:g} %, the most a canary gets",
                },
            )
            return "promoted"
        new_percent = min(bounds.max_percent, percent + bounds.step_percent)
        releases.canary(paths, version, new_percent)
        _log(paths, {**entry, "decision": "step", "reason": f"healthy: {percent:g} % -> {new_percent:g} %"})
    return "undecided"


def decisions(paths: stack.StackPaths) -> list[dict]:
    path = paths.root / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _log(paths: stack.StackPaths, entry: dict) -> None:
    entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **entry}
    with (paths.root / LOG_FILE).open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    print(json.dumps(entry), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--interval", type=float, default=serving_config.CANARY_INTERVAL_SECONDS)
    parser.add_argument("--max-p99", type=float, default=serving_config.CANARY_MAX_P99_SECONDS)
    parser.add_argument("--max-error-rate", type=float, default=serving_config.CANARY_MAX_ERROR_RATE)
    args = parser.parse_args(argv)
    paths = stack.StackPaths.of(folders.Settings.resolve(args.output_dir))
    bounds = Bounds(
        interval_seconds=args.interval, max_p99_seconds=args.max_p99, max_error_rate=args.max_error_rate
    )
    outcome = run(paths, bounds)
    with_state = stack.read_state(paths)
    if with_state:
        stack.set_analysis(paths, None)
    return 0 if outcome in ("promoted", "rolled back", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
