"""The stack's process supervision on real processes: the port probe, the ledger of process groups,
interrupts held while a process is recorded, what counts as alive, and a stop that ends a stopped process."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving import processes


def _time_wait_port() -> int:
    """A port whose listener has closed, leaving a connection it closed first in TIME_WAIT."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx, uvicorn and Prometheus do
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server's side closes first: TIME_WAIT is on the listening port
    time.sleep(0.05)
    client.close()
    listener.close()
    return port


def test_a_port_in_time_wait_is_free_and_a_listening_one_is_not():
    port = _time_wait_port()
    tcp = Path("/proc/net/tcp").read_text().splitlines()[1:]
    assert any(int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "06" for line in tcp)
    with socket.socket() as plain, pytest.raises(OSError):  # the probe as it was: taken, for a minute
        plain.bind(("127.0.0.1", port))
    assert processes.port_free(port)
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        assert not processes.port_free(port)


def test_the_ledger_finds_every_process_of_a_group_and_stop_all_ends_them(tmp_path):
    ledger = processes.ProcessLedger(tmp_path / "run")
    # A leader that starts children of its own, which stay in its group; one ignores SIGTERM.
    command = ["sh", "-c", "sleep 60 & (trap '' TERM; sleep 60) & wait"]
    leader = processes.spawn(command, tmp_path / "sleepers.log", "sleepers", None, 0, ledger)
    deadline = time.monotonic() + 10
    while len(ledger.members()) < 4 and time.monotonic() < deadline:  # sh, the subshell, two sleeps
        time.sleep(0.02)
    members = ledger.members()
    assert {member.group for member in members} == {leader} and len(members) >= 3

    stopped = ledger.stop_all(grace_seconds=1)

    assert [entry["group"] for entry in stopped] == [leader]
    assert not any(processes.alive(member.pid) for member in members)
    assert ledger.entries() == [] and ledger.members() == []


def test_a_group_id_given_since_to_another_process_is_not_taken_for_ours():
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        info = processes.process_info(other.pid)
        ours = {"group": other.pid, "start_ticks": info.start_ticks - 1}  # our leader started earlier
        assert processes.group_members(ours, processes.all_processes()) == []
        theirs = dict(ours, start_ticks=info.start_ticks)
        assert [m.pid for m in processes.group_members(theirs, processes.all_processes())] == [other.pid]
    finally:
        other.kill()
        other.wait()


def test_a_ctrl_c_while_a_process_is_recorded_arrives_once_it_is(tmp_path):
    ledger = processes.ProcessLedger(tmp_path / "run")
    # Python's own Ctrl-C handler, as a command has it: a test run in the same worker before this one
    # (a library's server, a runner) may have left another, and the test is of what happens to this one.
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), processes.interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
            ledger.record(1, "recorded after the interrupt")
    finally:
        signal.signal(signal.SIGINT, handler)
    assert [entry["what"] for entry in ledger.entries()] == ["recorded after the interrupt"]


def test_a_zombie_is_not_alive():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while processes.process_info(child.pid).running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not processes.alive(child.pid)
    assert processes.process_info(child.pid) is None  # reaped by alive()


def test_a_process_that_exited_is_not_alive_whoever_its_parent_is():
    own = subprocess.Popen(["sleep", "60"])
    # A child of another process, which never reaps it: a zombie for as long as that parent lives.
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, time; c = subprocess.Popen(['sleep', '60']); "
         "print(c.pid, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        others = int(parent.stdout.readline())
        assert processes.alive(own.pid) and processes.alive(others)
        for pid in (own.pid, others):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5  # a killed process is gone once the kernel has run its exit
        while (processes.alive(own.pid) or processes.alive(others)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not processes.alive(own.pid)  # and reaped
        assert not processes.alive(others)  # a zombie, seen in /proc
        assert parent.poll() is None  # its parent lives on, never reaping it
    finally:
        parent.kill()
        parent.wait()


def test_a_stopped_process_ends_at_once_when_stopped():
    stopped = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stopped.send_signal(signal.SIGSTOP)
    started = time.monotonic()
    processes.stop(stopped.pid, grace_seconds=10)
    assert not processes.alive(stopped.pid)
    assert time.monotonic() - started < 2  # its SIGTERM, not the SIGKILL after the grace period
