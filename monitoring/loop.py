"""Closing the loop: labelled served trips become a span, a retraining policy runs the pipeline, and a
new blessed model starts as a canary that the canary analysis promotes or rolls back.

One step (`run_once`, `taxi-pipeline monitor loop`):
1. join the request log with the feedback; the labelled trips no export wrote yet are *new*;
2. the policy: retrain when at least `RETRAIN_MIN_NEW_LABELLED_TRIPS` trips are new, or when one of
   `RETRAIN_ON_ALERTS` fires in Prometheus (a drop in live quality, an output shift, out-of-domain
   inputs); else wait;
3. on a trigger: export the new trips into their spans (monitoring/spans.py), run the pipeline as a
   command (`taxi-pipeline run`, the request log as its serving logs), and read its summary;
4. a model the pipeline pushed starts as a canary with `LOOP_CANARY_PERCENT` %, under the automatic
   analysis (serving/analysis.py); one not pushed stays out, with the pipeline's reason.

Every decision is a JSON line in `outputs/loop/decisions.log`, with its reason and figures.
"""

import dataclasses
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from monitoring import feedback as feedback_io
from monitoring import spans
from reports import slice_table
from serving import prometheus, releases, stack

DECISIONS_FILE = "decisions.log"


@dataclasses.dataclass(frozen=True)
class Policy:
    min_new_labelled_trips: int = monitoring_config.RETRAIN_MIN_NEW_LABELLED_TRIPS
    on_alerts: tuple[str, ...] = monitoring_config.RETRAIN_ON_ALERTS
    canary_percent: float = monitoring_config.LOOP_CANARY_PERCENT
    analysis_interval_seconds: float = serving_config.CANARY_INTERVAL_SECONDS


def log_decision(settings: folders.Settings, decision: str, reason: str, **figures) -> dict:
    entry = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "decision": decision,
        "reason": reason,
        **figures,
    }
    settings.loop_dir.mkdir(parents=True, exist_ok=True)
    with (settings.loop_dir / DECISIONS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
    print(f"loop: {decision}: {reason}", flush=True)
    return entry


def decisions(settings: folders.Settings) -> list[dict]:
    path = settings.loop_dir / DECISIONS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def firing_alerts(prometheus_url: str | None) -> list[dict]:
    if not prometheus_url:
        return []
    return [alert for alert in prometheus.alerts(prometheus_url) if alert.get("state") == "firing"]


def triggers(new_trips: int, firing: list[dict], policy: Policy) -> list[str]:
    """Why to retrain now (empty: not yet)."""
    found = [
        f"alert {alert['labels']['alertname']} is firing: {alert.get('annotations', {}).get('summary', '')}"
        for alert in firing
        if alert["labels"].get("alertname") in policy.on_alerts
    ]
    if new_trips >= policy.min_new_labelled_trips:
        found.append(
            f"{new_trips} new labelled trips (the policy retrains from {policy.min_new_labelled_trips})"
        )
    return found


def run_once(settings: folders.Settings, policy: Policy = Policy(), force: bool = False) -> dict:
    """One step of the loop; returns its last decision."""
    if settings.data_root is None:
        raise ValueError("the loop writes labelled trips into a data root: pass --data-root")
    paths = stack.StackPaths.of(settings)
    state = stack.read_state(paths) or {}
    prometheus_url = (state.get("prometheus") or {}).get("url")
    requests = feedback_io.read_requests(settings.request_log_dir)
    joined = feedback_io.join(
        requests, feedback_io.read_feedback(settings.feedback_dir), monitoring_config.FEEDBACK_GRACE_SECONDS
    )
    new, exported_before = spans.new_labelled(joined.labelled, settings.data_root)
    firing = firing_alerts(prometheus_url)
    why = triggers(len(new), firing, policy) or (["asked to (--force)"] if force and new else [])
    figures = {"new_labelled_trips": len(new), "exported_before": exported_before,
               "firing": [a["labels"]["alertname"] for a in firing]}  # fmt: skip
    if not why:
        return log_decision(settings, "wait", "no trigger of the retraining policy yet", **figures)
    written = spans.export(joined.labelled, settings.data_root)
    log_decision(
        settings,
        "export",
        f"{written.rows} labelled trips written as training data"
        + (f" ({written.without_fare} without a fare left out)" if written.without_fare else ""),
        files=[str(path) for path in written.written.values()],
        **figures,
    )
    return retrain(settings, "; ".join(why), policy)


def retrain(settings: folders.Settings, reason: str, policy: Policy) -> dict:
    """Runs the pipeline as a command; a pushed model starts as a canary under the analysis."""
    log_decision(settings, "retrain", reason)
    paths = stack.StackPaths.of(settings)
    if stack.read_state(paths) is not None:
        stack.close_request_logs(paths)  # the skew check reads closed files only: all traffic until now
    command = [
        sys.executable, "-m", "cli.main", "run", "--output-dir", str(settings.output_dir),
        "--data-root", str(settings.data_root),
    ]  # fmt: skip
    if any(settings.request_log_dir.glob("*.csv")):
        command += ["--serving-logs", str(settings.request_log_dir)]
    started = time.monotonic()
    exit_code = subprocess.run(command).returncode
    seconds = round(time.monotonic() - started, 1)
    summary = _summary(settings.run_summary_path)
    pushed = Path(summary["pushed_model"]).name if summary and summary.get("pushed_model") else None
    if exit_code != 0 or not pushed:
        because = _not_pushed_because(summary, exit_code)
        return log_decision(
            settings, "not deployed", because, pipeline_exit_code=exit_code, pipeline_seconds=seconds
        )
    if stack.read_state(paths) is None:
        return log_decision(settings, "pushed", f"version {pushed} pushed; no stack runs to start its canary")
    releases.canary(paths, str(pushed), policy.canary_percent)
    stack.start_analysis(paths, settings.output_dir, policy.analysis_interval_seconds)
    return log_decision(
        settings,
        "canary",
        f"version {pushed} pushed; it takes {policy.canary_percent:g} % of requests, and the canary analysis "
        "decides",
        version=str(pushed),
        pipeline_seconds=seconds,
    )


def _summary(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _not_pushed_because(summary: dict | None, exit_code: int) -> str:
    if summary is None:
        return f"the pipeline failed (exit code {exit_code}) before writing a summary"
    if summary.get("stopped_before_training"):
        anomalies = (summary.get("data_validation") or {}).get("anomalies") or []
        named = "; ".join(f"{a['feature']}: {a['short_description']} ({a['split']})" for a in anomalies[:4])
        return f"the pipeline stopped before training, on data anomalies: {named}"
    evaluation = summary.get("evaluation") or {}
    if evaluation and not evaluation.get("blessed"):
        failures = "; ".join(
            slice_table.describe_failure(f) for f in evaluation.get("not_blessed_because", [])[:3]
        )
        return f"the Evaluator did not bless the new model: {failures}"
    if summary.get("not_pushed_because"):
        return f"not pushed: {summary['not_pushed_because']}"
    if summary.get("push_held_because"):
        return f"push held: {summary['push_held_because']}"
    return f"the pipeline ended with exit code {exit_code} and pushed nothing (run {summary.get('run_id')})"
