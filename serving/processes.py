"""Process supervision for the local stack: every process it starts (nginx, a model server, Prometheus,
the canary analysis, the monitor, the supervisor) is started and stopped here, the same way.

`spawn` starts a command in a session of its own (its own process group, so a stop reaches its children,
and a Ctrl-C at the command line does not), records the group in the stack's ledger before anything else
can happen, its output appended to a log file, and polls its readiness URL until it answers 200 or a
deadline passes; a process that exits or never gets ready is stopped and reported with the reason and its
log's path. `stop` asks a group to end (SIGTERM) and kills what is left after a grace period.

The ledger (`ProcessLedger`, a file in the stack's run folder) is how `serve stop` finds every process
the stack started, whatever state the stack's own record is in: after a failed or interrupted start, a
crashed command, a server the supervisor replaced. A group is the session its process leads; its members
are found by process group in /proc, never by name. Each entry keeps its leader's start time, so a
process group id the kernel has given to an unrelated process since is not taken for ours.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from serving.stack_state import StackError

POLL_SECONDS = 0.2
LEDGER_FILE = "process_groups.jsonl"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `host`:`port` now. The probe binds as the stack's servers do, with
    SO_REUSEADDR (nginx, uvicorn and Prometheus all set it), so connections in TIME_WAIT from a stack
    just stopped do not count as taken; a socket listening there does."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            probe.listen(1)
        except OSError:
            return False
    return True


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    pid: int
    parent: int
    group: int
    state: str  # /proc's one-letter state: R, S, T (stopped), Z (zombie), ...
    start_ticks: int  # since boot, in clock ticks

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X")


def process_info(pid: int) -> ProcessInfo | None:
    """/proc/PID/stat's state, process group and start time; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessInfo(
        pid=pid, parent=int(fields[1]), group=int(fields[2]), state=fields[0], start_ticks=int(fields[19])
    )


def all_processes() -> list[ProcessInfo]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = process_info(int(entry.name))
            if info is not None:
                found.append(info)
    return found


def children(pid: int) -> set[int]:
    """The running processes whose parent is `pid`."""
    return {info.pid for info in all_processes() if info.parent == pid and info.running}


def command_line(pid: int) -> str:
    """/proc/PID/cmdline as one string (a process may rewrite it, as nginx's workers do to say what they
    do); empty when there is no such process."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def alive(pid: int | None) -> bool:
    """Whether `pid` runs (a zombie does not: it is reaped here when it is this process's child)."""
    if not pid:
        return False
    info = process_info(pid)
    if info is None:
        return False
    if not info.running:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


class ProcessLedger:
    """The process groups a stack started, one JSON line each (`{"group", "start_ticks", "what"}`) in
    RUN/process_groups.jsonl; every change holds the file's own lock (the supervisor and a command may
    spawn at once)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LEDGER_FILE

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            yield handle

    def record(self, leader: int, what: str) -> None:
        """Adds the group `leader` leads, and forgets groups that have ended."""
        info = process_info(leader)
        entry = {"group": leader, "start_ticks": info.start_ticks if info else 0, "what": what}
        with self._locked() as handle:
            running = all_processes()
            live = [e for e in _entries(handle) if group_members(e, running)]
            _rewrite(handle, [*live, entry])

    def entries(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with self._locked() as handle:
            return _entries(handle)

    def members(self) -> list[ProcessInfo]:
        """Every running process of the recorded groups."""
        running = all_processes()
        return [member for entry in self.entries() for member in group_members(entry, running)]

    def stop_all(self, grace_seconds: float = 10) -> list[dict]:
        """Ends every recorded group (SIGTERM, then SIGKILL after `grace_seconds`) and empties the ledger;
        returns the entries that still had processes."""
        with self._locked() as handle:
            running = all_processes()
            entries = [entry for entry in _entries(handle) if group_members(entry, running)]
            for entry in entries:
                _signal_group(entry["group"], signal.SIGTERM)
            for entry in _wait_for_groups(entries, grace_seconds):
                _signal_group(entry["group"], signal.SIGKILL)
            _wait_for_groups(entries, 5)
            _rewrite(handle, [])
            return entries


def group_members(entry: dict, running: list[ProcessInfo]) -> list[ProcessInfo]:
    """The running processes of a recorded group (`running`: all_processes()): none if its id now belongs
    to another group (its leader runs with another start time), else those in it that started no earlier
    than its leader did."""
    group, started = entry["group"], entry["start_ticks"]
    leader = next((p for p in running if p.pid == group), None)
    if leader is not None and leader.start_ticks != started:
        return []
    return [p for p in running if p.group == group and p.running and p.start_ticks >= started]


def _wait_for_groups(entries: list[dict], seconds: float) -> list[dict]:
    """Waits up to `seconds` for the groups to end; returns those that have not."""
    deadline = time.monotonic() + seconds
    while True:
        _reap(entry["group"] for entry in entries)
        running = all_processes()
        left = [entry for entry in entries if group_members(entry, running)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _entries(handle) -> list[dict]:
    return [json.loads(line) for line in handle.read().splitlines() if line.strip()]


def _rewrite(handle, entries: list[dict]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write("".join(json.dumps(entry) + "\n" for entry in entries))
    handle.flush()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _reap(pids) -> None:
    """Collects the exit status of those of `pids` that are this process's exited children."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@contextlib.contextmanager
def interrupts_deferred():
    """Holds SIGINT and SIGTERM until the block ends (in the main thread; elsewhere they do not arrive):
    a process started in it is recorded before a Ctrl-C can end the command that started it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, lambda signum, frame: received.append((signum, frame)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in received[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def get_json(url: str, timeout: float = 2, headers: dict | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET; an error status is returned, not raised. Raises OSError when nothing
    answers, ValueError when the body is not JSON."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=timeout
        ) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def spawn(command: list[str], log: Path, what: str, ready_url: str | None, seconds: float,
          ledger: ProcessLedger) -> int:  # fmt: skip
    """Starts `command` in its own session, recorded in `ledger`, output appended to `log`, and returns
    its pid once `ready_url` answers 200 (at once when there is none to wait for).

    While it is not ready, a JSON body's `error` is the reason given, and `"failed": true` ends the wait
    (a server whose pinned version failed to load will not load it by waiting). A process that exits, or
    is not ready in `seconds`, is stopped; StackError names `what` it was, the reason and the log. So is
    one whose wait is interrupted (KeyboardInterrupt), which is raised again.
    """
    with log.open("ab") as output, interrupts_deferred():
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        ledger.record(process.pid, what)
    if ready_url is None:
        return process.pid
    try:
        reason = _wait_until_ready(process, ready_url, seconds, what, log)
    except BaseException:
        stop(process.pid)
        raise
    if reason is None:
        return process.pid
    stop(process.pid)
    raise StackError(f"{what} did not get ready: {reason} (log: {log})")


def _wait_until_ready(process: subprocess.Popen, ready_url: str, seconds: float, what: str,
                      log: Path) -> str | None:  # fmt: skip
    """None once `ready_url` answers 200; else why not, after `seconds` or a reply saying it failed."""
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
            return None
        reason = body.get("error", reason)
        if body.get("failed"):
            return reason
        time.sleep(POLL_SECONDS)
    return reason


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
    """Ends the group `pid` leads: SIGTERM (and SIGCONT, for a stopped one), then SIGKILL to what is left
    of it after `grace_seconds`; reaps the leader if it is ours."""
    leader = process_info(pid) if pid else None
    if leader is None or not leader.running:
        alive(pid)  # reaps it if it is our zombie
        return
    group = [{"group": pid, "start_ticks": leader.start_ticks}]
    _signal_group(pid, signal.SIGTERM)
    _signal_group(pid, signal.SIGCONT)  # a stopped (SIGSTOP) process ends now, as a shell's `kill` does
    if _wait_for_groups(group, grace_seconds):
        _signal_group(pid, signal.SIGKILL)
        _wait_for_groups(group, 5)
