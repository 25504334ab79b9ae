"""The running monitor: refreshes its figures (monitoring/refresh.py, from its store, monitoring/store.py)
for the versions live now and exports them to its gauges (monitoring/gauges.py), keeps the latest for
`GET /v1/monitor`, and stores the feedback it receives. No HTTP here: monitoring/http_api.py maps requests
to these methods."""

import threading

from config import folders
from monitoring import evaluated, gauges, refresh, store, training_reference
from monitoring import feedback as feedback_io


class Monitor:
    def __init__(self, settings: folders.Settings, window_seconds: float, grace_seconds: float):
        self.settings, self.grace = settings, grace_seconds
        self.window = refresh.Window(seconds=window_seconds)
        self.gauges = gauges.Gauges()
        self.store = feedback_io.FeedbackStore(settings.feedback_dir)
        self.trips = store.TripStore.of(settings.feedback_dir)  # the refresh's own connection
        self.latest: dict = {"refreshed": None}
        self.evaluations = evaluated.EvaluatedFigures(settings.metadata_path)
        self._lock = threading.Lock()
        self.gauges.set_training_missing(training_reference.missing_ratios(settings))

    def refresh(self) -> dict:
        """Computes the figures, exports them and keeps them as the latest; returns them."""
        figures = refresh.compute(
            self.settings,
            self.trips,
            self.window,
            self.grace,
            self.evaluations,
            live=refresh.live_versions(self.settings),
        )
        self.gauges.export(figures)
        with self._lock:
            self.latest = figures
        return figures

    def refresh_every(self, seconds: float, stop: threading.Event) -> None:
        """Refreshes now and every `seconds` until `stop` is set; a failed refresh is reported, not fatal."""
        while True:
            try:
                self.refresh()
            except Exception as error:  # one failed refresh must not end the monitor: say why, go on
                print(f"monitor: refresh failed: {type(error).__name__}: {error}", flush=True)
            if stop.wait(seconds):
                return

    def receive(self, rows: list) -> dict:
        """Stores the valid rows of feedback, the first label of each trip; returns how many were
        accepted, the reasons rows were refused, and the trips labelled already."""
        valid, refused = feedback_io.parse(rows)
        stored, duplicates = self.store.add(valid)
        self.gauges.count_feedback(stored=len(stored), malformed=len(refused), duplicates=len(duplicates))
        return {
            "accepted": len(stored),
            "refused": refused,
            "duplicates": [
                f"request {f.request_id}, trip {f.trip}: labelled already (the first label kept)"
                for f in duplicates
            ],
        }

    def count_malformed_body(self) -> None:
        """A body that is not JSON counts as one malformed row."""
        self.gauges.count_feedback(stored=0, malformed=1, duplicates=0)
