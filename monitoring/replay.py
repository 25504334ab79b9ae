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

`taxi-pipeline monitor replay` runs it. This module runs the steps in order; the workspace, the traffic,
the canary and the figures each have their own module (monitoring/replay_*.py).
"""

import dataclasses
import json
import time
from pathlib import Path

from config import folders
from config import monitoring as monitoring_config
from config import pipeline as pipeline_config
from config import serving as serving_config
from monitoring import loop, replay_canary, replay_figures, replay_traffic, replay_workspace, spans


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


def run(output_dir: Path, options: Options) -> dict:
    """One scenario, end to end; returns (and writes) its figures."""
    started = time.monotonic()
    settings, header, rows = replay_workspace.workspace(output_dir, options.keep_every)
    production = replay_workspace.first_model(settings, options.pipeline_args)
    print(
        f"replay: version {production} is in production; starting the stack and the monitor ...", flush=True
    )
    state = replay_workspace.start_stack(settings)
    base_url, prometheus_url = f"http://127.0.0.1:{state['port']}", state["prometheus"]["url"]
    replay_started = time.time()
    print(f"replay: {len(rows)} trips of 2016 H2 at {options.rate:g} a second ({options.scenario}); "
          f"tips arrive {options.feedback_delay_seconds:g} s later", flush=True)  # fmt: skip
    summary = {
        "scenario": options.scenario,
        "first_version": production,
        "replay": replay_traffic.play(
            settings,
            header,
            rows,
            scenario=options.scenario,
            rate=options.rate,
            feedback_delay_seconds=options.feedback_delay_seconds,
            restart_server_at=options.restart_server_at,
        ),
    }
    figures = replay_figures.wait_for_monitor(base_url, summary["replay"]["labels_sent"])
    first_label = summary["replay"].pop("first_label_monotonic")
    summary["monitor"] = replay_figures.headline(figures, production)
    summary["quality_alert"] = _quality_alert(prometheus_url, options, first_label, replay_started)
    decision, summary["loop"], summary["span"] = _retrain(settings, len(rows), options)
    if decision["decision"] == "canary":
        print("replay: the canary analysis decides; trips keep flowing ...", flush=True)
        summary["canary"] = replay_canary.follow_canary(
            settings,
            header,
            rows,
            decision["version"],
            rate=options.rate,
            wait_seconds=options.canary_wait_seconds,
        )
        print(f"replay: canary {summary['canary']['decision']}: {summary['canary']['reason']}")
    summary["seconds"] = round(time.monotonic() - started, 1)
    settings.loop_dir.mkdir(parents=True, exist_ok=True)
    (settings.loop_dir / "replay_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"replay: done in {summary['seconds']:g} s; figures in {settings.loop_dir / 'replay_summary.json'}")
    print(f"replay: the stack still runs at {base_url}: `make monitor OUT={output_dir}` writes its page, "
          f"`make serve-stop OUT={output_dir}` stops it")  # fmt: skip
    return summary


def _quality_alert(
    prometheus_url: str, options: Options, first_label: float | None, replay_started: float
) -> dict:
    """`concept`: whether the quality alert fired (waiting for it), and how long after the first label
    (time.monotonic()); `clean`: whether it was ever pending or firing since the replay started (time.time())."""
    if options.scenario != "concept":
        since = time.time() - replay_started + 60
        return {"fired": replay_figures.ever_alerted(prometheus_url, replay_figures.QUALITY_ALERT, since)}
    alert = replay_figures.wait_for_alert(prometheus_url, options.alert_wait_seconds)
    found = {
        "fired": alert is not None,
        "seconds_after_first_label": round(time.monotonic() - first_label, 1) if alert else None,
        "summary": alert["annotations"].get("summary") if alert else None,
    }
    print(
        f"replay: quality alert {'FIRED: ' + alert['annotations'].get('summary', '') if alert else 'did not fire'}"
    )
    return found


def replay_policy(trips: int, options: Options) -> loop.Policy:
    """The loop's policy at the replay's pace: it retrains from half the replayed trips (the sample's
    half-year holds fewer than `RETRAIN_MIN_NEW_LABELLED_TRIPS`), and without the cooldown, since the
    replay compresses hours of traffic into minutes and each run is a retrain a person asked for."""
    return loop.Policy(
        min_new_labelled_trips=min(monitoring_config.RETRAIN_MIN_NEW_LABELLED_TRIPS, max(1, trips // 2)),
        cooldown_seconds=0.0,
        analysis_interval_seconds=options.analysis_interval_seconds,
    )


def _retrain(settings: folders.Settings, trips: int, options: Options) -> tuple[dict, dict, dict]:
    """One step of the loop at the replay's pace: (its last decision, the decisions and its time, the span
    files it wrote)."""
    retrain_started = time.monotonic()
    decision = loop.run_once(settings, replay_policy(trips, options))
    figures = {"decisions": loop.decisions(settings), "seconds": round(time.monotonic() - retrain_started, 1)}
    written = sorted(
        (settings.data_root / f"{pipeline_config.SPAN_FOLDER_PREFIX}{replay_workspace.REPLAYED_SPAN}").glob(
            f"{spans.FILE_PREFIX}*.csv"
        )
    )
    return decision, figures, {"files": [str(p) for p in written]}
