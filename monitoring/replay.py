"""`make replay`: the whole loop on real data, on one machine.

1. A model trained on the sample's spans up to 2016 H1 is in production (the pipeline runs first, in the
   replay's own output folder, when it has not).
2. The real 2016 H2 rows are replayed as traffic at a fixed rate through the stack's front door, one trip
   a request, and each trip's tip arrives as feedback after a delay.
3. The monitor measures live quality as labels arrive; progress shows once a second.
4. The loop's policy sees the labelled trips, writes them as span 20162 and retrains.
5. A new model the pipeline pushes starts as a canary; traffic keeps flowing (without feedback) until the
   canary analysis promotes it or rolls it back.

Scenarios: `clean` replays the trips as they were; `concept` replays the same trips with big tippers'
tips set to zero: no feature moves, so only labelled traffic can show it, and the live-quality alert must
fire before the loop retrains.

Each scenario works in its own folder (`outputs/replay/<scenario>/`: data, pipeline outputs, stack) on
free loopback ports, and leaves its stack running for `make monitor`; `make serve-stop OUT=...` stops it.
The figures (replay time, alert delay, CBPE's error, retraining time, the canary's fate) go to
`loop/replay_summary.json` there.
"""

import argparse
import csv
import dataclasses
import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from clients import load, raw_examples
from config import folders
from config import monitoring as monitoring_config
from config import pipeline as pipeline_config
from config import serving as serving_config
from inputs import taxi_sample
from models import features
from monitoring import control, loop, spans
from registry import versions
from serving import analysis, processes, prometheus, releases, stack

SCENARIOS = ("clean", "concept")
REPLAYED_SPAN = 20162
QUALITY_ALERT = "TaxiLiveQualityBelowEvaluated"
PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"


@dataclasses.dataclass(frozen=True)
class Options:
    scenario: str = "clean"
    rate: float = 20.0  # trips a second: the ~400 trips of 2016 H2 in 20 s
    feedback_delay_seconds: float = 2.0
    restart_server_at: int | None = None  # restart the stable server after this many trips
    alert_wait_seconds: float = 240.0  # concept: how long to wait for the quality alert
    analysis_interval_seconds: float = serving_config.CANARY_INTERVAL_SECONDS
    canary_wait_seconds: float = 300.0
    keep_every: int = 1  # replay every n-th trip (tests: fewer)
    pipeline_args: tuple[str, ...] = ()  # extra `taxi-pipeline run` arguments for the first model


def workspace(output_dir: Path, options: Options) -> tuple[folders.Settings, list[str], list[list[str]]]:
    """The scenario's settings (data: the sample's spans up to 2016 H1) and the 2016 H2 rows to replay."""
    data_root = output_dir / "data"
    source = output_dir / "replayed"
    if not source.is_dir():
        staging = output_dir / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        taxi_sample.write_spans(taxi_sample.sample_csv_path(), staging)
        replayed = staging / f"{pipeline_config.SPAN_FOLDER_PREFIX}{REPLAYED_SPAN}"
        if options.keep_every > 1:
            for span_file in staging.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*/*.csv"):
                _keep_every(span_file, options.keep_every)
        data_root.mkdir(parents=True, exist_ok=True)
        for span in sorted(staging.iterdir()):
            if span != replayed:
                span.rename(data_root / span.name)
        replayed.rename(source)
        shutil.rmtree(staging)
    with (source / "data.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    return folders.Settings(output_dir=output_dir, data_root=data_root), header, rows


def _keep_every(path: Path, keep_every: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines[1:][::keep_every]), encoding="utf-8")


def first_model(settings: folders.Settings, options: Options) -> str:
    """The production version, trained on the spans up to 2016 H1 (by a pipeline run when none is)."""
    production = versions.production_version(settings.serving_model_dir)
    if production:
        return production
    print("replay: training the first model on the spans up to 2016 H1 (the pipeline, as `make run`) ...")
    command = [sys.executable, "-m", "cli.main", "run", "--output-dir", str(settings.output_dir),
               "--data-root", str(settings.data_root), *options.pipeline_args]  # fmt: skip
    if subprocess.run(command).returncode != 0 or not versions.production_version(settings.serving_model_dir):
        raise RuntimeError(f"the first pipeline run pushed no model; see {settings.run_summary_path}")
    return versions.production_version(settings.serving_model_dir)


def start_stack(settings: folders.Settings, options: Options) -> dict:
    paths = stack.StackPaths.of(settings)
    state = stack.read_state(paths)
    if state is None or not processes.alive(state["stable"].get("pid")):
        state = stack.start(paths, None, processes.free_port(), processes.free_port())
    control.start(settings, refresh_seconds=2.0)
    return stack.read_state(paths)


def feedback_tips(header: list[str], row: list[str], scenario: str) -> float:
    tips, fare = float(row[header.index(features.TIPS)]), float(row[header.index(features.FARE)])
    if scenario == "concept" and features.is_big_tipper(tips, fare):
        return 0.0  # big tippers stopped tipping: a change in the label no feature shows
    return tips


def instance(header: list[str], row: list[str], types: dict[str, int]) -> dict:
    """A trip as a client sends it: the serving columns it knows (empty ones left out), typed."""
    return raw_examples.typed_values(header, row, types)


@dataclasses.dataclass
class Progress:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    labels_sent: int = 0
    labels_refused: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


class FeedbackSender:
    """Sends each trip's tip `delay` seconds after its answer, in batches, through the front door."""

    def __init__(self, base_url: str, delay: float, progress: Progress):
        self.url, self.delay, self.progress = base_url, delay, progress
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.done = threading.Event()
        self.thread.start()

    def put(self, request_id: str, tips: float) -> None:
        self.queue.put((time.monotonic() + self.delay, {"request_id": request_id, "trip": 0, "tips": tips}))

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=self.delay + 60)

    def _run(self) -> None:
        client = load.Client(self.url)
        pending: list[tuple[float, dict]] = []
        while not (self.done.is_set() and self.queue.empty() and not pending):
            with_timeout = 0.2
            try:
                while True:
                    pending.append(self.queue.get(timeout=with_timeout))
                    with_timeout = 0.0
            except queue.Empty:
                pass
            now = time.monotonic()
            due = [item for when, item in pending if when <= now]
            pending = [(when, item) for when, item in pending if when > now]
            for start in range(0, len(due), 500):
                batch = due[start : start + 500]
                status, body, _ = client.post(monitoring_config.FEEDBACK_PATH, {"feedback": batch})
                if status == 200:
                    self.progress.labels_sent += body.get("accepted", 0)
                    self.progress.labels_refused += len(body.get("refused", [])) + len(
                        body.get("duplicates", [])
                    )
                else:
                    self.progress.labels_refused += len(batch)
                    self.progress.errors.append(f"feedback answered {status}: {str(body)[:200]}")
        client.close()


def replay(settings: folders.Settings, header: list[str], rows: list[list[str]], options: Options) -> dict:
    """Sends every row as a request at `options.rate`, and its tip as feedback after the delay."""
    paths = stack.StackPaths.of(settings)
    base_url = f"http://127.0.0.1:{stack.read_state(paths)['port']}"
    types = raw_examples.column_types()
    progress = Progress()
    sender = FeedbackSender(base_url, options.feedback_delay_seconds, progress)
    client = load.Client(base_url)
    started = time.monotonic()
    last_shown = started
    first_label_due = None
    for index, row in enumerate(rows):
        due = started + index / options.rate
        time.sleep(max(0.0, due - time.monotonic()))
        if options.restart_server_at is not None and index == options.restart_server_at:
            print("\nreplay: restarting the stable model server (a new process takes over) ...", flush=True)
            releases.restart_stable(paths)
        status, body, response_headers = client.post(PREDICT, {"instances": [instance(header, row, types)]})
        progress.sent += 1
        if status != 200:
            progress.failed += 1
            progress.errors.append(f"trip {index}: {status} {str(body)[:200]}")
            continue
        progress.answered += 1
        sender.put(response_headers["x-request-id"], feedback_tips(header, row, options.scenario))
        first_label_due = first_label_due or time.monotonic() + options.feedback_delay_seconds
        if time.monotonic() - last_shown >= 1:
            last_shown = time.monotonic()
            _show(progress, len(rows), base_url)
    client.close()
    sent_seconds = time.monotonic() - started
    sender.close()
    _show(progress, len(rows), base_url)
    print()
    return {
        "trips": len(rows),
        "answered": progress.answered,
        "failed": progress.failed,
        "labels_sent": progress.labels_sent,
        "labels_refused": progress.labels_refused,
        "errors": progress.errors[:5],
        "seconds": round(sent_seconds, 1),
        "rate": options.rate,
        "first_label_monotonic": first_label_due,
    }


def _show(progress: Progress, total: int, base_url: str) -> None:
    live = ""
    try:
        figures = control.figures(base_url, timeout=1)
        stable = [e for e in figures.get("live", []) if e["route"] == "stable"]
        if stable and stable[-1]["overall"]["accuracy"] is not None:
            entry = stable[-1]
            evaluated = (figures.get("evaluated", {}).get(entry["version"]) or {}).get("overall", {})
            live = (
                f", live accuracy {entry['overall']['accuracy']:.3f} on {entry['overall']['trips']} trips"
                + (
                    f" (evaluated {evaluated['accuracy']:.3f})"
                    if evaluated.get("accuracy") is not None
                    else ""
                )
            )
    except (OSError, stack.StackError, ValueError):
        pass
    print(
        f"\rreplay: {progress.sent}/{total} trips sent, {progress.answered} answered, {progress.failed} failed, "
        f"{progress.labels_sent} labels in{live}   ",
        end="",
        flush=True,
    )


def wait_for_monitor(base_url: str, labelled: int, seconds: float = 60) -> dict:
    """The monitor's figures once they count `labelled` labelled trips (or after `seconds`)."""
    deadline = time.monotonic() + seconds
    figures = {}
    while time.monotonic() < deadline:
        figures = control.figures(base_url)
        if figures.get("labelled_trips", 0) >= labelled:
            return figures
        time.sleep(1)
    return figures


def quality_alerts(prometheus_url: str) -> list[dict]:
    return [a for a in prometheus.alerts(prometheus_url) if a["labels"].get("alertname") == QUALITY_ALERT]


def wait_for_alert(prometheus_url: str, seconds: float) -> dict | None:
    """The quality alert once it fires; None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        firing = [a for a in quality_alerts(prometheus_url) if a["state"] == "firing"]
        if firing:
            return firing[0]
        time.sleep(2)
    return None


def ever_alerted(prometheus_url: str, alertname: str, since_seconds: float) -> bool:
    """True when `alertname` was pending or firing at any time in the last `since_seconds`."""
    window = f"{max(1, int(since_seconds))}s"
    return bool(
        prometheus.query(prometheus_url, f'max_over_time(ALERTS{{alertname="{alertname}"}}[{window}])')
    )


def follow_canary(settings: folders.Settings, header, rows, options: Options, version: str) -> dict:
    """Keeps trips flowing (no feedback) while the canary analysis decides; returns its decision."""
    paths = stack.StackPaths.of(settings)
    base_url = f"http://127.0.0.1:{stack.read_state(paths)['port']}"
    types = raw_examples.column_types()
    client = load.Client(base_url)
    deadline = time.monotonic() + options.canary_wait_seconds
    index = 0
    while time.monotonic() < deadline:
        state = stack.read_state(paths)
        if state["mode"] != "canary":
            break
        client.post(PREDICT, {"instances": [instance(header, rows[index % len(rows)], types)]})
        index += 1
        time.sleep(1 / options.rate)
    client.close()
    # The analysis records its decision once the change is made (a promotion drains the old stable first).
    settled = time.monotonic() + 30
    decided = []
    while not decided and time.monotonic() < settled:
        decided = [
            d
            for d in analysis.decisions(paths)
            if d["decision"] in ("promote", "rollback") and d["candidate"] == version
        ]
        time.sleep(0.5)
    state = stack.read_state(paths)
    return {
        "decision": decided[-1]["decision"] if decided else "undecided",
        "reason": decided[-1].get("reason")
        if decided
        else f"no decision in {options.canary_wait_seconds:g} s",
        "stable_version": state["stable"]["version"],
        "trips_sent": index,
    }


def run(output_dir: Path, options: Options) -> dict:
    """One scenario, end to end; returns (and writes) its figures."""
    started = time.monotonic()
    settings, header, rows = workspace(output_dir, options)
    production = first_model(settings, options)
    print(
        f"replay: version {production} is in production; starting the stack and the monitor ...", flush=True
    )
    state = start_stack(settings, options)
    base_url, prometheus_url = f"http://127.0.0.1:{state['port']}", state["prometheus"]["url"]
    replay_started = time.time()
    print(f"replay: {len(rows)} trips of 2016 H2 at {options.rate:g} a second ({options.scenario}); "
          f"tips arrive {options.feedback_delay_seconds:g} s later", flush=True)  # fmt: skip
    summary = {
        "scenario": options.scenario,
        "first_version": production,
        "replay": replay(settings, header, rows, options),
    }
    figures = wait_for_monitor(base_url, summary["replay"]["labels_sent"])
    first_label = summary["replay"].pop("first_label_monotonic")
    summary["monitor"] = _headline(figures, production)
    if options.scenario == "concept":
        alert = wait_for_alert(prometheus_url, options.alert_wait_seconds)
        summary["quality_alert"] = {
            "fired": alert is not None,
            "seconds_after_first_label": round(time.monotonic() - first_label, 1) if alert else None,
            "summary": alert["annotations"].get("summary") if alert else None,
        }
        print(
            f"replay: quality alert {'FIRED: ' + alert['annotations'].get('summary', '') if alert else 'did not fire'}"
        )
    else:
        summary["quality_alert"] = {
            "fired": ever_alerted(prometheus_url, QUALITY_ALERT, time.time() - replay_started + 60)
        }
    policy = loop.Policy(
        min_new_labelled_trips=min(monitoring_config.RETRAIN_MIN_NEW_LABELLED_TRIPS, max(1, len(rows) // 2)),
        analysis_interval_seconds=options.analysis_interval_seconds,
    )
    retrain_started = time.monotonic()
    decision = loop.run_once(settings, policy)
    summary["loop"] = {
        "decisions": loop.decisions(settings),
        "seconds": round(time.monotonic() - retrain_started, 1),
    }
    written = sorted(
        (settings.data_root / f"{pipeline_config.SPAN_FOLDER_PREFIX}{REPLAYED_SPAN}").glob(
            f"{spans.FILE_PREFIX}*.csv"
        )
    )
    summary["span"] = {"files": [str(p) for p in written]}
    if decision["decision"] == "canary":
        print("replay: the canary analysis decides; trips keep flowing ...", flush=True)
        summary["canary"] = follow_canary(settings, header, rows, options, decision["version"])
        print(f"replay: canary {summary['canary']['decision']}: {summary['canary']['reason']}")
    summary["seconds"] = round(time.monotonic() - started, 1)
    settings.loop_dir.mkdir(parents=True, exist_ok=True)
    (settings.loop_dir / "replay_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"replay: done in {summary['seconds']:g} s; figures in {settings.loop_dir / 'replay_summary.json'}")
    print(f"replay: the stack still runs at {base_url}: `make monitor OUT={output_dir}` writes its page, "
          f"`make serve-stop OUT={output_dir}` stops it")  # fmt: skip
    return summary


def _headline(figures: dict, version: str) -> dict:
    """Live quality of `version` (stable) beside its evaluation, and CBPE's check."""
    live = next(
        (e for e in figures.get("live", []) if e["version"] == version and e["route"] == "stable"), None
    )
    estimate = next((e for e in figures.get("estimated", []) if e["version"] == version), None)
    found = {
        "labelled_trips": figures.get("labelled_trips"),
        "live": live,
        "evaluated": figures.get("evaluated", {}).get(version),
        "estimate_check": estimate["check"] if estimate else None,
        "feedback": figures.get("feedback"),
    }
    if live:
        evaluated = (found["evaluated"] or {}).get("overall", {})
        print(f"replay: live on {live['overall']['trips']} labelled trips: accuracy {live['overall']['accuracy']}, "
              f"AUC {live['overall']['auc']} (evaluated: {evaluated.get('accuracy')}, {evaluated.get('auc')})")  # fmt: skip
    if estimate and estimate["check"]["trips"]:
        check = estimate["check"]
        print(f"replay: CBPE estimated accuracy {check['estimated']['accuracy']:.3f}, realised "
              f"{check['realised']['accuracy']:.3f} on {check['trips']} trips")  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output-dir", required=True, help="The scenario's folder (outputs/replay/<scenario>)."
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="clean")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--feedback-delay", type=float, default=2.0)
    parser.add_argument("--restart-server-at", type=int)
    parser.add_argument("--analysis-interval", type=float, default=serving_config.CANARY_INTERVAL_SECONDS)
    args = parser.parse_args(argv)
    options = Options(
        scenario=args.scenario,
        rate=args.rate,
        feedback_delay_seconds=args.feedback_delay,
        restart_server_at=args.restart_server_at,
        analysis_interval_seconds=args.analysis_interval,
    )
    run(Path(args.output_dir).resolve(), options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
