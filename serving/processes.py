"""Process supervision for the local stack: every process it starts (a model server, Prometheus, the
canary analysis, the monitor) is started and stopped here, the same way.

`spawn` starts a command in a session of its own (so a stop reaches its children, and a Ctrl-C at the
command line does not), its output appended to a log file, and polls its readiness URL until it answers
200 or a deadline passes; a process that exits or never gets ready is stopped and reported with the
reason and its log's path. `stop` asks a session to end (SIGTERM) and kills what is left after a grace
period. nginx is not spawned here: it daemonizes itself and is driven by its own signals (serving/nginx.py).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from serving.stack_state import StackError

POLL_SECONDS = 0.2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def alive(pid: int | None) -> bool:
    """Whether `pid` runs. A process that has exited but not been reaped (a zombie) does not: a child of
    this process is reaped here, and another's is seen as a zombie in /proc (the analysis stops servers
    that `serve canary`, or the monitoring loop, started: only their parent can reap them)."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError):  # not our child
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile, or no /proc (not Linux): os.kill's answer stands
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"  # the state follows the command's closing parenthesis


def get_json(url: str, timeout: float = 2) -> tuple[int, dict]:
    """(status, JSON body) of a GET; an error status is returned, not raised. Raises OSError when nothing
    answers, ValueError when the body is not JSON."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def spawn(command: list[str], log: Path, what: str, ready_url: str | None, seconds: float) -> int:
    """Starts `command` in its own session, output appended to `log`, and returns its pid once
    `ready_url` answers 200 (at once when there is none to wait for).

    While it is not ready, a JSON body's `error` is the reason given, and `"failed": true` ends the wait
    (a server whose pinned version failed to load will not load it by waiting). A process that exits, or
    is not ready in `seconds`, is stopped; StackError names `what` it was, the reason and the log.
    """
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    if ready_url is None:
        return process.pid
    deadline = time.monotonic() + seconds
    reason = f"it did not answer in {seconds:g} s"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{what} exited (code {process.returncode}); see {log}")
        try:
            status, body = _readiness(ready_url)
        except OSError:
            status, body = None, {}
        if status == 200:
            return process.pid
        reason = body.get("error", reason)
        if body.get("failed"):
            break
        time.sleep(POLL_SECONDS)
    stop(process.pid)
    raise StackError(f"{what} did not get ready: {reason} (log: {log})")


def _readiness(url: str) -> tuple[int, dict]:
    """(status, JSON body or {}): a readiness endpoint may answer plain text (Prometheus's does)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status, {}
    except urllib.error.HTTPError as error:
        with contextlib.suppress(ValueError):
            body = json.loads(error.read() or b"{}")
            return error.code, body if isinstance(body, dict) else {}
        return error.code, {}


def stop(pid: int | None, grace_seconds: float = 10) -> None:
    """Ends the session `pid` leads: SIGTERM, then SIGKILL after `grace_seconds`; reaps it if it is ours.
    A stopped (SIGSTOP) process is continued after the SIGTERM, so it ends now, as a shell's `kill` does."""
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        os.killpg(pid, signal.SIGCONT)
    deadline = time.monotonic() + grace_seconds
    while alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
