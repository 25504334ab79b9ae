"""Following the replay's canary: trips keep flowing (without feedback) while the canary analysis
(serving/analysis.py) decides, and its decision is read from the analysis log."""

import time

from config import folders
from monitoring import replay_traffic
from serving import analysis, stack

DECISION_SETTLE_SECONDS = 30  # a promotion drains the old stable before the analysis records it


def follow_canary(settings: folders.Settings, header: list[str], rows: list[list[str]], version: str,
                  rate: float, wait_seconds: float) -> dict:  # fmt: skip
    """Sends `rows` again, round, at `rate` trips a second while the stack is in canary mode (at most
    `wait_seconds`); returns the analysis's decision on `version`, its reason, the stable version then,
    and how many trips were sent."""
    paths = stack.StackPaths.of(settings)
    sent = _send_while_canary(paths, header, rows, rate, wait_seconds)
    decided = _decisions_on(paths, version)
    state = stack.read_state(paths)
    return {
        "decision": decided[-1]["decision"] if decided else "undecided",
        "reason": decided[-1].get("reason") if decided else f"no decision in {wait_seconds:g} s",
        "stable_version": state["stable"]["version"],
        "trips_sent": sent,
    }


def _send_while_canary(paths: stack.StackPaths, header: list[str], rows: list[list[str]], rate: float,
                       wait_seconds: float) -> int:  # fmt: skip
    base_url = f"http://127.0.0.1:{stack.read_state(paths)['port']}"
    client = replay_traffic.TripClient(base_url)
    deadline = time.monotonic() + wait_seconds
    index = 0
    while time.monotonic() < deadline:
        state = stack.read_state(paths)
        if state["mode"] != "canary":
            break
        client.predict(header, rows[index % len(rows)])
        index += 1
        time.sleep(1 / rate)
    client.close()
    return index


def _decisions_on(paths: stack.StackPaths, version: str) -> list[dict]:
    """The analysis's promote or rollback decisions on `version`, once it has recorded one (the change is
    made first), or none after `DECISION_SETTLE_SECONDS`."""
    settled = time.monotonic() + DECISION_SETTLE_SECONDS
    decided = []
    while not decided and time.monotonic() < settled:
        decided = [
            d
            for d in analysis.decisions(paths)
            if d["decision"] in ("promote", "rollback") and d["candidate"] == version
        ]
        time.sleep(0.5)
    return decided
