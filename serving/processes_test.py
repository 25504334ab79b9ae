"""Process supervision on real processes: what counts as alive, and a stop that ends a stopped process."""

import os
import signal
import subprocess
import sys
import time

from serving import processes


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
