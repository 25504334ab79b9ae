"""The replay's traffic: each 2016 H2 trip sent as a request through the stack's front door at a fixed
rate, and its tip sent as feedback after a delay; progress shows once a second."""

import dataclasses
import queue
import threading
import time

from clients import load, raw_examples
from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from models import features
from monitoring import control
from serving import releases, stack

PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"
FEEDBACK_BATCH_ROWS = 500


def feedback_tips(header: list[str], row: list[str], scenario: str) -> float:
    """The trip's tip as the scenario reports it: as it was (`clean`), or zero for big tippers (`concept`)."""
    tips, fare = float(row[header.index(features.TIPS)]), float(row[header.index(features.FARE)])
    if scenario == "concept" and features.is_big_tipper(tips, fare):
        return 0.0  # big tippers stopped tipping: a change in the label no feature shows
    return tips


class TripClient:
    """Sends trips to the stack's front door as a client does, one a request."""

    def __init__(self, base_url: str):
        self.types = raw_examples.column_types()
        self.client = load.Client(base_url)

    def predict(self, header: list[str], row: list[str]) -> tuple[int, dict, dict]:
        """(status, body, response headers) of the request for one trip: the serving columns it knows
        (empty ones left out), typed."""
        return self.client.post(PREDICT, {"instances": [raw_examples.typed_values(header, row, self.types)]})

    def close(self) -> None:
        self.client.close()


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
            for start in range(0, len(due), FEEDBACK_BATCH_ROWS):
                self._send(client, due[start : start + FEEDBACK_BATCH_ROWS])
        client.close()

    def _send(self, client: load.Client, batch: list[dict]) -> None:
        status, body, _ = client.post(monitoring_config.FEEDBACK_PATH, {"feedback": batch})
        if status == 200:
            self.progress.labels_sent += body.get("accepted", 0)
            self.progress.labels_refused += len(body.get("refused", [])) + len(body.get("duplicates", []))
        else:
            self.progress.labels_refused += len(batch)
            self.progress.errors.append(f"feedback answered {status}: {str(body)[:200]}")


def play(settings: folders.Settings, header: list[str], rows: list[list[str]], scenario: str, rate: float,
         feedback_delay_seconds: float, restart_server_at: int | None = None) -> dict:  # fmt: skip
    """Sends every row as a request at `rate` trips a second, and its tip (as `scenario` has it) as
    feedback `feedback_delay_seconds` later; restarts the stable server before trip `restart_server_at`.
    Returns the counts, the first errors, and when the first label was due (time.monotonic())."""
    paths = stack.StackPaths.of(settings)
    base_url = f"http://127.0.0.1:{stack.read_state(paths)['port']}"
    progress = Progress()
    sender = FeedbackSender(base_url, feedback_delay_seconds, progress)
    client = TripClient(base_url)
    started = time.monotonic()
    last_shown = started
    first_label_due = None
    for index, row in enumerate(rows):
        due = started + index / rate
        time.sleep(max(0.0, due - time.monotonic()))
        if restart_server_at is not None and index == restart_server_at:
            print("\nreplay: restarting the stable model server (a new process takes over) ...", flush=True)
            releases.restart_stable(paths)
        status, body, response_headers = client.predict(header, row)
        progress.sent += 1
        if status != 200:
            progress.failed += 1
            progress.errors.append(f"trip {index}: {status} {str(body)[:200]}")
            continue
        progress.answered += 1
        sender.put(response_headers["x-request-id"], feedback_tips(header, row, scenario))
        first_label_due = first_label_due or time.monotonic() + feedback_delay_seconds
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
        "rate": rate,
        "first_label_monotonic": first_label_due,
    }


def _show(progress: Progress, total: int, base_url: str) -> None:
    print(
        f"\rreplay: {progress.sent}/{total} trips sent, {progress.answered} answered, {progress.failed} failed, "
        f"{progress.labels_sent} labels in{_live_accuracy(base_url)}   ",
        end="",
        flush=True,
    )


def _live_accuracy(base_url: str) -> str:
    """ ", live accuracy ... on N trips (evaluated ...)" from the monitor's figures; "" when it has none
    or does not answer."""
    try:
        figures = control.figures(base_url, timeout=1)
        stable = [e for e in figures.get("live", []) if e["route"] == "stable"]
        if not stable or stable[-1]["overall"]["accuracy"] is None:
            return ""
        entry = stable[-1]
        evaluated = (figures.get("evaluated", {}).get(entry["version"]) or {}).get("overall", {})
        return f", live accuracy {entry['overall']['accuracy']:.3f} on {entry['overall']['trips']} trips" + (
            f" (evaluated {evaluated['accuracy']:.3f})" if evaluated.get("accuracy") is not None else ""
        )
    except (OSError, stack.StackError, ValueError):
        return ""
