"""What the monitor computes at each refresh, from its store (monitoring/store.py): the request log and
the feedback, joined as they arrive.

Live quality covers the versions live now (`live_versions`: the stack's stable, and its canary or shadow)
over a window bounded in time (`Window`): per version and route, the newest labelled trips answered in
it, overall and on the key slice. Beside them: the estimate for trips not labelled yet (CBPE,
monitoring/quality.py, recalibrated on the version's labelled trips in the window), each version's figures
from its evaluation (monitoring/evaluated.py), and how often a shadow decided as stable did on the same
trips. A version that left (rolled back, replaced) has no figures, so its gauges go and its alerts clear.
With no stack running (the page written afterwards), every version in the window counts, and the window
ends at the newest trip logged. The result is the JSON of `GET /v1/monitor`.
"""

import dataclasses
import time
import typing

import numpy as np

from config import folders
from config import monitoring as monitoring_config
from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features
from monitoring import archive, evaluated, quality, store
from serving import stack, traffic

SLICES = ("overall", "key_slice")


@dataclasses.dataclass(frozen=True)
class Window:
    """Trips answered in the last `seconds`; of each series, the newest `max_trips` labelled ones."""

    seconds: float = monitoring_config.LIVE_QUALITY_WINDOW_SECONDS
    max_trips: int = monitoring_config.LIVE_QUALITY_MAX_TRIPS


def live_versions(settings: folders.Settings) -> set[str] | None:
    """The versions the stack sends traffic to now: stable, and a canary or a shadow (a blue-green
    switch's previous version only waits for a rollback). None when no stack runs."""
    state = stack.read_state(stack.StackPaths.of(settings))
    if state is None:
        return None
    found = {state["stable"]["version"]}
    if state.get("candidate") and state.get("mode") in (traffic.CANARY, traffic.SHADOW):
        found.add(state["candidate"]["version"])
    return found


def compute(
    settings: folders.Settings,
    trips: store.TripStore,
    window: Window,
    grace_seconds: float,
    evaluations: evaluated.EvaluatedFigures,
    live: set[str] | None,
    now: float | None = None,
) -> dict:
    """The monitor's figures now, for the `live` versions (None: every version in the window). Reads what
    is new on disk first (closed request-log files past their age are archived, and leave the store)."""
    now = now or time.time()
    archived = archive.archive_old_logs(settings.request_log_dir)
    trips.sync(settings.request_log_dir, settings.feedback_dir, archived)
    end = now if live is not None else (trips.newest_answer() or now)
    start = end - window.seconds
    series = [(v, r) for v, r in trips.series(start) if live is None or v in live]
    versions = sorted(live if live is not None else {version for version, _ in series})
    logged, labelled = trips.totals()
    unknown, waiting = trips.unjoined_labels(now, grace_seconds)
    threshold = pipeline_config.REPORTED_DECISION_THRESHOLD
    measured = {key: _labelled(trips, *key, start, end, window.max_trips) for key in series}
    return {
        "refreshed": time.time(),
        "window": {
            "start": start,
            "end": end,
            "seconds": window.seconds,
            "max_trips": window.max_trips,
            "live_versions": None if live is None else versions,
        },  # fmt: skip
        "logged_trips": logged,
        "labelled_trips": labelled,
        "feedback": {"unknown": unknown, "duplicates": trips.duplicates(), "waiting": waiting},
        "live": [
            live_quality(version, route, found, threshold)
            for (version, route), found in measured.items()
            if len(found.labels)
        ],
        "estimated": [
            estimates(
                version,
                trips.unlabelled_predictions(version, start, end, window.max_trips),
                _answered(version, measured, window.max_trips),
                threshold,
            )
            for version in versions
        ],
        "evaluated": {version: evaluations.of(version) for version in versions},
        "shadow_agreement": shadow_agreement(
            [
                (version, trips.shadow_pairs(version, start, end, window.max_trips))
                for version, route in series
                if route == serving_config.SHADOW_ROUTE
            ],
            threshold,
        ),
    }


class Labelled(typing.NamedTuple):
    """A series' labelled trips, oldest first; arrays of one value per trip."""

    answered: np.ndarray  # Unix time
    predictions: np.ndarray
    key_slice: np.ndarray  # bool
    labels: np.ndarray  # 0 or 1


def _labelled(trips: store.TripStore, version: str, route: str, start: float, end: float, limit: int):
    rows = trips.labelled(version, route, start, end, limit)[::-1]
    return Labelled(
        np.array([row[0] for row in rows], dtype=float),
        np.array([row[1] for row in rows], dtype=float),
        np.array([row[2] for row in rows], dtype=bool),
        np.array([features.is_big_tipper(tips, fare) for *_, tips, fare in rows], dtype=float),
    )


def _answered(
    version: str, measured: dict[tuple[str, str], Labelled], limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """A version's labelled trips on its answering routes (a shadow's copies left out), the newest
    `limit`, oldest first: (predictions, labels)."""
    series = [
        found
        for (v, route), found in measured.items()
        if v == version and route != serving_config.SHADOW_ROUTE
    ]
    if not series:
        return np.array([]), np.array([])
    answered, predictions, labels = (
        np.concatenate([getattr(s, name) for s in series]) for name in ("answered", "predictions", "labels")
    )
    newest = np.argsort(answered, kind="stable")[-limit:]
    return predictions[newest], labels[newest]


def live_quality(version: str, route: str, found: Labelled, threshold: float) -> dict:
    """Realised quality of a series' labelled trips, overall and on the key slice."""
    predictions, key_slice, labels = found.predictions, found.key_slice, found.labels
    return {
        "version": version,
        "route": route,
        "overall": quality.measured(labels, predictions, threshold),
        "key_slice": quality.measured(labels[key_slice], predictions[key_slice], threshold),
    }


def estimates(version: str, waiting: list[float], labelled: tuple, threshold: float) -> dict:
    """CBPE for one version's answered trips: the estimate for the trips still without a label
    (`waiting`, their predictions), recalibrated on the labelled ones (`labelled`: predictions and labels,
    oldest first); and, as a check of the method, the estimate for the newer half of the labelled trips
    from the older half alone, beside what those trips then realised."""
    scores, labels = labelled
    half = len(labels) // 2
    older = quality.Calibrator(labels[:half], scores[:half])
    return {
        "version": version,
        "unlabelled": quality.estimated(waiting, threshold, quality.Calibrator(labels, scores)),
        "check": {
            "trips": len(labels) - half,
            "estimated": quality.estimated(scores[half:], threshold, older),
            "realised": quality.measured(labels[half:], scores[half:], threshold),
        },
    }


def shadow_agreement(pairs_by_shadow: list[tuple[str, list[tuple]]], threshold: float) -> list[dict]:
    """Per (stable version, shadow version): how often the two decided alike on the same trips, and the
    mean absolute difference of their probabilities. `pairs_by_shadow`: per shadow version, (stable's
    version, stable's prediction, the shadow's prediction) of each trip both answered."""
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for shadow, found in pairs_by_shadow:
        for stable, stable_prediction, shadow_prediction in found:
            pairs.setdefault((stable, shadow), []).append((stable_prediction, shadow_prediction))
    agreement = []
    for (stable, shadow), values in sorted(pairs.items()):
        a, b = np.array(values).T
        agreement.append(
            {
                "stable": stable,
                "shadow": shadow,
                "trips": len(values),
                "decisions_agree": float(((a >= threshold) == (b >= threshold)).mean()),
                "mean_abs_difference": float(np.abs(a - b).mean()),
            }  # fmt: skip
        )
    return agreement
