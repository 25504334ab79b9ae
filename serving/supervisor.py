"""Keeps every model server of the stack alive and answering: the supervisor, one process beside them.

Each version runs as `SERVER_PROCESSES` processes behind one nginx upstream, which retries a request on
another when one refuses the connection or does not answer in time (serving/nginx.conf.j2). Every
`SUPERVISOR_CHECK_SECONDS` the supervisor asks each process's `/ready`: a process that has died is
replaced at once; one whose readiness has not answered `SUPERVISOR_UNREADY_CHECKS` times in a row (hung,
SIGSTOPped, wedged) is killed and replaced. The replacement listens on the same port, so nginx's
configuration does not change, and is recorded in the stack's ledger, so `serve stop` stops it.

Why our own loop rather than supervisord: supervisord restarts a process that exits, but does not check
readiness, so a hung server would stay hung; and its processes would sit outside the stack's process
groups, state and lock. This loop reads the state under the stack's lock, so it never revives a server
a release has just retired.

    python -m serving.supervisor --stack-root outputs/serving    # started by `serve start`
"""

import argparse
import dataclasses
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from config import serving as serving_config
from serving import processes, stack, stack_state


@dataclasses.dataclass
class Watched:
    """What the supervisor remembers of one server process between checks."""

    unready_checks: int = 0
    started: float = 0.0  # time.monotonic() when the supervisor started it, until it first answers ready


def answers_ready(port: int, timeout: float = serving_config.SUPERVISOR_READY_TIMEOUT_SECONDS) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=timeout) as answer:
            return answer.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def check(paths: stack.StackPaths, watched: dict[int, Watched]) -> list[str]:
    """One round over every server process of the state; returns what it replaced and why. `watched`
    is keyed by pid and carried from round to round."""
    state = stack.read_state(paths)
    if state is None:
        return []
    suspects = []
    for key in ("stable", "candidate"):
        for index, process in enumerate((state.get(key) or {}).get("processes", [])):
            seen = watched.setdefault(process["pid"], Watched())
            if not processes.alive(process["pid"]):
                suspects.append((key, index, process, "it died"))
                continue
            if answers_ready(process["port"]):
                seen.unready_checks, seen.started = 0, 0.0  # started: its grace ends once it answered
                continue
            starting = time.monotonic() - seen.started < serving_config.SERVING_START_SECONDS
            seen.unready_checks += 0 if starting and seen.started else 1
            if seen.unready_checks >= serving_config.SUPERVISOR_UNREADY_CHECKS:
                suspects.append(
                    (key, index, process, f"its readiness did not answer {seen.unready_checks} times")
                )
    return [replaced for suspect in suspects if (replaced := _replace(paths, watched, *suspect))]


def _replace(paths: stack.StackPaths, watched: dict[int, Watched], key: str, index: int, process: dict,
             why: str) -> str | None:  # fmt: skip
    """Kills `process` and starts its replacement on the same port, under the stack's lock; None when a
    release changed the state meanwhile (the process is not the state's any more)."""
    with stack_state.locked(paths):
        state = stack.read_state(paths)
        slot = (state or {}).get(key) or {}
        current = slot.get("processes", [])
        if index >= len(current) or current[index]["pid"] != process["pid"]:
            return None
        processes.stop(process["pid"], grace_seconds=0)  # a hung process would not honour SIGTERM
        pid = stack.spawn_server_process(paths, slot["version"], slot["label"], process["port"], wait=False)
        current[index] = {"port": process["port"], "pid": pid}
        slot["pid"] = current[0]["pid"]
        stack_state.write_state(paths, state)
    watched.pop(process["pid"], None)
    watched[pid] = Watched(started=time.monotonic())
    return f"{key} version {slot['version']} on port {process['port']}: pid {process['pid']} replaced by {pid} ({why})"


def run(paths: stack.StackPaths, interval: float = serving_config.SUPERVISOR_CHECK_SECONDS) -> None:
    """Checks every `interval` seconds until the stack's state is gone (it stopped)."""
    watched: dict[int, Watched] = {}
    while stack.read_state(paths) is not None:
        started = time.monotonic()
        for line in check(paths, watched):
            print(f"{time.strftime('%H:%M:%S')} supervisor: {line}", flush=True)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.supervisor", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--serving-dir", required=True, type=Path)
    parser.add_argument("--stack-root", required=True, type=Path)
    parser.add_argument("--request-log", required=True, type=Path)
    args = parser.parse_args(argv)
    run(stack.StackPaths(args.serving_dir, args.stack_root, args.request_log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
