"""What a replay reports: the monitor's headline figures once the labels are in, and whether the quality
alert fired (read from Prometheus)."""

import time

from config import folders
from monitoring import control
from serving import prometheus

QUALITY_ALERT = "TaxiLiveQualityBelowEvaluated"


def wait_for_monitor(settings: folders.Settings, labelled: int, seconds: float = 60) -> dict:
    """The monitor's figures once they count `labelled` labelled trips (or after `seconds`)."""
    deadline = time.monotonic() + seconds
    figures = {}
    while time.monotonic() < deadline:
        figures = control.figures(settings)
        if figures.get("labelled_trips", 0) >= labelled:
            return figures
        time.sleep(1)
    return figures


def headline(figures: dict, version: str) -> dict:
    """Live quality of `version` (stable) beside its evaluation, and CBPE's check; printed too."""
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
