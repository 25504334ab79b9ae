"""Closing the loop: labelled served trips become a span, a retraining policy runs the pipeline, and a
new blessed model starts as a canary that the canary analysis promotes or rolls back.

One step (`run_once`, `taxi-pipeline monitor loop`):
1. bring the monitor's store up to date (monitoring/store.py): the labelled trips stable or a canary
   answered that no export wrote yet are *new*, since no earlier retrain used them;
2. the policy (`decide`): a trigger is `RETRAIN_MIN_NEW_LABELLED_TRIPS` new trips, or one of
   `RETRAIN_ON_ALERTS` firing in Prometheus (a drop in live quality, an output shift, out-of-domain
   inputs). A trigger retrains only with enough new trips to learn from (an alert alone needs
   `RETRAIN_ON_ALERT_MIN_NEW_LABELLED_TRIPS`: an alert that keeps firing on the same data must not
   retrain on it again and again) and `RETRAIN_COOLDOWN_SECONDS` after the last retrain began;
3. on a retrain: export the new trips into their spans (monitoring/spans.py), run the pipeline as a
   command (`taxi-pipeline run`, the request log as its serving logs), and read its summary;
4. a model the pipeline pushed starts as a canary with `LOOP_CANARY_PERCENT` %, under the automatic
   analysis (serving/analysis.py); one not pushed stays out, with the pipeline's reason.

Every decision is a JSON line in `outputs/loop/decisions.log`, with its reason and figures; a step that
does not retrain is one too: `wait` (no trigger) or `refuse` (a trigger, and why it was not enough).
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
from models import features
from monitoring import feedback as feedback_io
from monitoring import spans, store
from reports import slice_table
from serving import prometheus, releases, stack

DECISIONS_FILE = "decisions.log"


@dataclasses.dataclass(frozen=True)
class Policy:
    min_new_labelled_trips: int = monitoring_config.RETRAIN_MIN_NEW_LABELLED_TRIPS
    on_alerts: tuple[str, ...] = monitoring_config.RETRAIN_ON_ALERTS
    min_new_on_alert: int = monitoring_config.RETRAIN_ON_ALERT_MIN_NEW_LABELLED_TRIPS
    cooldown_seconds: float = monitoring_config.RETRAIN_COOLDOWN_SECONDS
    canary_percent: float = monitoring_config.LOOP_CANARY_PERCENT
    analysis_interval_seconds: float = serving_config.CANARY_INTERVAL_SECONDS


@dataclasses.dataclass(frozen=True)
class Decision:
    triggers: list[str]  # why to retrain (empty: no reason yet)
    refusals: list[str]  # why not, in spite of the triggers

    @property
    def retrain(self) -> bool:
        return bool(self.triggers) and not self.refusals


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


def decide(
    new_trips: int,
    firing: list[dict],
    seconds_since_retrain: float | None,
    policy: Policy,
    force: bool = False,
) -> Decision:
    """The policy, for `new_trips` labelled trips no earlier retrain used, the alerts `firing`, and the
    time since the last retrain began (None: never). `force` (a person's request) retrains on any new
    trip and without the cooldown."""
    triggers = [
        f"alert {alert['labels']['alertname']} is firing: {alert.get('annotations', {}).get('summary', '')}"
        for alert in firing
        if alert["labels"].get("alertname") in policy.on_alerts
    ]
    enough = new_trips >= policy.min_new_labelled_trips
    if enough:
        triggers.append(
            f"{new_trips} new labelled trips (the policy retrains from {policy.min_new_labelled_trips})"
        )
    if force:
        triggers.append("asked to (--force)")
    if not triggers:
        return Decision([], [])
    refusals = []
    needed = 1 if enough or force else policy.min_new_on_alert
    if new_trips < needed:
        refusals.append(
            f"{new_trips} labelled trips are new (no earlier retrain used them), and "
            + ("a retrain needs at least one" if needed == 1 else f"an alert retrains from {needed}")
        )
    if not force and seconds_since_retrain is not None and seconds_since_retrain < policy.cooldown_seconds:
        refusals.append(
            f"the last retrain began {seconds_since_retrain:.0f} s ago, and the policy waits "
            f"{policy.cooldown_seconds:g} s between retrains"
        )
    return Decision(triggers, refusals)


def last_retrain(settings: folders.Settings) -> float | None:
    """When the last retrain began (Unix time), from the decisions; None if none did."""
    began = [d["time"] for d in decisions(settings) if d["decision"] == "retrain"]
    return datetime.datetime.fromisoformat(began[-1]).timestamp() if began else None


def run_once(settings: folders.Settings, policy: Policy = Policy(), force: bool = False) -> dict:
    """One step of the loop; returns its last decision."""
    if settings.data_root is None:
        raise ValueError("the loop writes labelled trips into a data root: pass --data-root")
    state = stack.read_state(stack.StackPaths.of(settings)) or {}
    trips = store.TripStore.of(settings.feedback_dir)
    try:
        trips.sync(settings.request_log_dir, settings.feedback_dir)
        labelled = trips.labelled_keys()
        exported = spans.exported_keys(settings.data_root)
        new = {key for key in labelled if (key[0], str(key[1])) not in exported}
        firing = firing_alerts((state.get("prometheus") or {}).get("url"))
        began = last_retrain(settings)
        decision = decide(len(new), firing, None if began is None else time.time() - began, policy, force)
        figures = {"new_labelled_trips": len(new), "exported_before": len(labelled) - len(new),
                   "firing": [a["labels"]["alertname"] for a in firing], "triggers": decision.triggers}  # fmt: skip
        if not decision.triggers:
            return log_decision(settings, "wait", "no trigger of the retraining policy yet", **figures)
        if not decision.retrain:
            return log_decision(settings, "refuse", "; ".join(decision.refusals), **figures)
        written = spans.export(_labelled_rows(settings, trips, new), settings.data_root)
    finally:
        trips.close()
    log_decision(
        settings,
        "export",
        f"{written.rows} labelled trips written as training data"
        + (f" ({written.without_fare} without a fare left out)" if written.without_fare else ""),
        files=[str(path) for path in written.written.values()],
        **figures,
    )
    return retrain(settings, "; ".join(decision.triggers), policy)


def _labelled_rows(
    settings: folders.Settings, trips: store.TripStore, keys: set[tuple[str, int]]
) -> list[dict]:
    """The request log's rows of the trips `keys` (stable's or a canary's, once each), with their label's
    tips, and its fare where the label gave one."""
    found = {}
    for row in feedback_io.read_requests(settings.request_log_dir):
        key = (row["request_id"], int(row["trip"] or 0))
        if key in keys and key not in found and row["route"] != serving_config.SHADOW_ROUTE:
            tips, fare = trips.label_of(*key)
            found[key] = dict(
                row, **{features.TIPS: tips, features.FARE: row[features.FARE] if fare is None else fare}
            )
    return list(found.values())


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
