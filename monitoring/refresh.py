"""What the monitor computes at each refresh, from the request log and the feedback on disk.

It joins the request log with the feedback received (monitoring/feedback.py) and computes, per model
version and route, quality over the newest `window` labelled trips, overall and on the key slice; the
estimate for trips not labelled yet (CBPE, monitoring/quality.py, recalibrated on the version's labelled
trips); each version's figures from its evaluation (monitoring/evaluated.py); and how often a shadow
decided as stable did on the same trips. The result is the JSON of `GET /v1/monitor`.
"""

import time

import numpy as np

from config import folders
from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features
from monitoring import archive, evaluated, quality
from monitoring import feedback as feedback_io

SLICES = ("overall", "key_slice")


def compute(
    settings: folders.Settings, window: int, grace_seconds: float, evaluations: evaluated.EvaluatedFigures
) -> dict:
    """The monitor's figures now (closed request-log files past their age are archived first)."""
    archive.archive_old_logs(settings.request_log_dir)
    requests = feedback_io.read_requests(settings.request_log_dir)
    joined = feedback_io.join(requests, feedback_io.read_feedback(settings.feedback_dir), grace_seconds)
    threshold = pipeline_config.REPORTED_DECISION_THRESHOLD
    served = sorted({r["model_version"] for r in requests})
    return {
        "refreshed": time.time(),
        "logged_trips": len(requests),
        "labelled_trips": len({(r["request_id"], r["trip"]) for r in joined.labelled}),
        "feedback": {
            "unknown": len(joined.unknown),
            "duplicates": len(joined.duplicates),
            "waiting": joined.waiting,
        },
        "live": quality.live(joined.labelled, window, threshold, pipeline_config.KEY_SLICE),
        "estimated": [estimates(version, requests, joined.labelled, threshold) for version in served],
        "evaluated": {version: evaluations.of(version) for version in served},
        "shadow_agreement": shadow_agreement(requests, threshold),
    }


def estimates(version: str, requests: list[dict], labelled: list[dict], threshold: float) -> dict:
    """CBPE for one version's answered trips (not the shadow's): the estimate for trips still without a
    label, recalibrated on the labelled ones; and, as a check of the method, the estimate for the newer
    half of the labelled trips from the older half alone, beside what those trips then realised."""
    answered = [
        r for r in requests if r["model_version"] == version and r["route"] != serving_config.SHADOW_ROUTE
    ]
    mine = sorted(
        (
            r
            for r in labelled
            if r["model_version"] == version
            and r["route"] != serving_config.SHADOW_ROUTE
            and r[features.LABEL] is not None
        ),
        key=lambda r: r["time"],
    )
    keys = {(r["request_id"], r["trip"]) for r in mine}
    waiting = [float(r["prediction"]) for r in answered if (r["request_id"], r["trip"]) not in keys]
    labels = [r[features.LABEL] for r in mine]
    scores = [float(r["prediction"]) for r in mine]
    half = len(mine) // 2
    older = quality.Calibrator(labels[:half], scores[:half])
    return {
        "version": version,
        "unlabelled": quality.estimated(waiting, threshold, quality.Calibrator(labels, scores)),
        "check": {
            "trips": len(mine) - half,
            "estimated": quality.estimated(scores[half:], threshold, older),
            "realised": quality.measured(labels[half:], scores[half:], threshold),
        },
    }


def shadow_agreement(requests: list[dict], threshold: float) -> list[dict]:
    """Per (stable version, shadow version): how often the two decided alike on the same trips, and the
    mean absolute difference of their probabilities."""
    by_trip: dict[tuple, dict] = {}
    for row in requests:
        by_trip.setdefault((row["request_id"], row["trip"]), {})[row["route"]] = row
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for routes in by_trip.values():
        if "shadow" in routes and "stable" in routes:
            key = (routes["stable"]["model_version"], routes["shadow"]["model_version"])
            pairs.setdefault(key, []).append(
                (float(routes["stable"]["prediction"]), float(routes["shadow"]["prediction"]))
            )
    found = []
    for (stable, shadow), values in sorted(pairs.items()):
        a, b = np.array(values).T
        found.append(
            {
                "stable": stable,
                "shadow": shadow,
                "trips": len(values),
                "decisions_agree": float(((a >= threshold) == (b >= threshold)).mean()),
                "mean_abs_difference": float(np.abs(a - b).mean()),
            }  # fmt: skip
        )
    return found
