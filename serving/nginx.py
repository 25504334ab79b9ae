"""nginx, the stack's front door: applying a configuration (serving/traffic.py renders it) and stopping.

nginx runs from the stack's run folder (`nginx -p RUN -c RUN/nginx.conf`), its master's pid in
`RUN/nginx.pid`, started by serving/processes.py as every process of the stack is (`daemon off`: nginx does
not detach itself, so its master and workers stay in the process group the stack records). A new
configuration is tested, then loaded by a graceful reload (in-flight requests finish on the old workers),
or by starting nginx when none runs. `nginx -s reload` returns before the new workers run, so `apply` polls
the configuration's `/_traffic` location until it answers the new generation. That is not enough: nginx's
master starts the new workers, sleeps 100 ms "to allow new processes to start" and only then tells the old
ones to stop accepting, so for that long (longer on a loaded machine) new connections still reach the old
configuration. `apply` also waits until every worker from before the reload has exited or says it is
shutting down (its process title, set as it closes its listening sockets): once it returns, no new
connection is routed by the old configuration.
"""

import contextlib
import subprocess
import time
from pathlib import Path

from serving import processes
from serving.stack_state import StackError

CONF_FILE, PID_FILE, ERROR_LOG, OUTPUT_LOG = "nginx.conf", "nginx.pid", "nginx_error.log", "nginx.out"
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


def apply(run_dir: Path, conf: str, port: int, generation: int, seconds: float,
          ledger: processes.ProcessLedger) -> None:  # fmt: skip
    """Writes `conf` (listening on `port`, answering `generation` at /_traffic), tests it and has nginx
    take it up: a reload, or a start (recorded in `ledger`) when nginx is not running. Returns once new
    connections see it."""
    (run_dir / CONF_FILE).write_text(conf)
    _run(run_dir, "-t")
    deadline = time.monotonic() + seconds
    if running(run_dir):
        master = pid(run_dir)
        old_workers = processes.children(master)
        _run(run_dir, "-s", "reload")
    else:
        command = ["nginx", "-p", str(run_dir), "-c", str(run_dir / CONF_FILE), "-g", "daemon off;"]
        master, old_workers = processes.spawn(command, run_dir / OUTPUT_LOG, "nginx", None, 0, ledger), set()
    _wait_for_generation(port, generation, deadline, run_dir, master)
    _wait_for_old_workers_to_stop_accepting(old_workers, deadline, run_dir)


def _wait_for_generation(port: int, generation: int, deadline: float, run_dir: Path, master: int) -> None:
    answered = None
    while time.monotonic() < deadline:
        if not processes.alive(master):
            raise StackError(f"nginx stopped: see {run_dir / ERROR_LOG} and {run_dir / OUTPUT_LOG}")
        with contextlib.suppress(OSError, ValueError):
            answered = processes.get_json(f"http://127.0.0.1:{port}/_traffic", timeout=1)[1].get("generation")
            if answered == generation:
                return
        time.sleep(0.02)
    raise StackError(
        f"nginx on port {port} did not take up the new configuration in time "
        f"(generation {generation}; it answers {answered}): see {run_dir / ERROR_LOG}"
    )


SHUTTING_DOWN_TITLE = "worker process is shutting down"  # nginx's words, src/os/unix/ngx_process_cycle.c


def _wait_for_old_workers_to_stop_accepting(old_workers: set[int], deadline: float, run_dir: Path) -> None:
    accepting = set(old_workers)
    while True:
        accepting = {
            w
            for w in accepting
            if processes.alive(w) and SHUTTING_DOWN_TITLE not in processes.command_line(w)
        }
        if not accepting:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"nginx's workers of the configuration before this one (pids {sorted(accepting)}) still accept "
                f"connections: see {run_dir / ERROR_LOG}"
            )
        time.sleep(0.01)


def stop(run_dir: Path, seconds: float = 15) -> int | None:
    """Stops nginx gracefully (`nginx -s quit`: workers finish their requests), then its whole process
    group if it has not stopped in `seconds`; returns the pid that ran, None when none did."""
    master = pid(run_dir)
    if not processes.alive(master):
        return None
    with contextlib.suppress(StackError):
        _run(run_dir, "-s", "quit")
    deadline = time.monotonic() + seconds
    while processes.alive(master) and time.monotonic() < deadline:
        time.sleep(0.05)
    processes.stop(master, grace_seconds=1)
    return master
