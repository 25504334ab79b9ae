"""nginx, the stack's front door: applying a configuration (serving/traffic.py renders it) and stopping.

nginx runs as its own daemon from the stack's run folder (`nginx -p RUN -c RUN/nginx.conf`), its master's
pid in `RUN/nginx.pid`. A new configuration is tested, then loaded by a graceful reload (in-flight
requests finish on the old workers), or by starting nginx when none runs. `nginx -s reload` returns before
the new workers run, so `apply` polls the configuration's `/_traffic` location until it answers the new
generation: once it returns, no new connection is routed by the old configuration.
"""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from serving import processes
from serving.stack_state import StackError

CONF_FILE, PID_FILE, ERROR_LOG = "nginx.conf", "nginx.pid", "nginx_error.log"
ACCESS_LOG = "access.log"  # serving/nginx.conf.j2 writes it, serving/access_log.py reads it


def _run(run_dir: Path, *arguments: str) -> None:
    command = ["nginx", "-p", str(run_dir), "-c", str(run_dir / CONF_FILE), *arguments]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"nginx {' '.join(arguments) or 'start'} failed: {result.stderr.strip()}")


def pid(run_dir: Path) -> int | None:
    """The master's pid, None when nginx has not started (`nginx -t` leaves an empty pid file)."""
    pid_file = run_dir / PID_FILE
    text = pid_file.read_text().strip() if pid_file.is_file() else ""
    return int(text) if text else None


def running(run_dir: Path) -> bool:
    return processes.alive(pid(run_dir))


def apply(run_dir: Path, conf: str, port: int, generation: int, seconds: float) -> None:
    """Writes `conf` (listening on `port`, answering `generation` at /_traffic), tests it and has nginx
    take it up: a reload, or a start when nginx is not running. Returns once new connections see it."""
    (run_dir / CONF_FILE).write_text(conf)
    _run(run_dir, "-t")
    if running(run_dir):
        _run(run_dir, "-s", "reload")
    else:
        _run(run_dir)
    _wait_for_generation(port, generation, seconds, run_dir)


def _wait_for_generation(port: int, generation: int, seconds: float, run_dir: Path) -> None:
    deadline = time.monotonic() + seconds
    answered = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            answered = processes.get_json(f"http://127.0.0.1:{port}/_traffic", timeout=1)[1].get("generation")
            if answered == generation:
                return
        time.sleep(0.02)
    raise StackError(
        f"nginx on port {port} did not take up the new configuration in {seconds:g} s "
        f"(generation {generation}; it answers {answered}): see {run_dir / ERROR_LOG}"
    )


def stop(run_dir: Path, seconds: float = 15) -> int | None:
    """Stops nginx gracefully (`nginx -s quit`: workers finish their requests), killing it if it has not
    stopped in `seconds`; returns the pid that ran, None when none did."""
    master = pid(run_dir)
    if not processes.alive(master):
        return None
    with contextlib.suppress(StackError):
        _run(run_dir, "-s", "quit")
    deadline = time.monotonic() + seconds
    while processes.alive(master) and time.monotonic() < deadline:
        time.sleep(0.05)
    if processes.alive(master):
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGKILL)
    return master


def ask_to_stop(run_dir: Path) -> None:
    """Asks nginx to quit without waiting, and whatever it answers (a clean-up after a failed start)."""
    with contextlib.suppress(StackError):
        _run(run_dir, "-s", "quit")
