"""nginx's access log, what the model's clients saw, as metrics: Debian's mtail runs
serving/mtail/access_log.mtail on it and serves them at `/metrics`, which Prometheus scrapes. The canary
analysis (serving/analysis.py) judges a candidate on them: a server that crashed, hung or answered late
shows here as the 502, 504, 499 or the time its clients got, which its own /metrics never counts.

    python -m serving.access_log --run-dir outputs/serving/run --port 3903    # what `stack.start` starts

This process runs mtail as its child (one session: the stack's stop ends both) and keeps the log's size
bounded: every ACCESS_LOG_CHECK_SECONDS, past ACCESS_LOG_MAX_BYTES, the log is copied to `access.log.1`
(replacing the older one) and truncated in place, as logrotate's `copytruncate` does. nginx appends, so it
writes on at the new end, and mtail, seeing the file shrink, reads it from the start. (Renaming it and
`nginx -s reopen` would not do: nginx's workers reopen it as `nobody`, who may not reach the output folder.)
It exits when mtail does, so the stack sees one process for both.
"""

import argparse
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from config import serving as serving_config
from serving import nginx, processes

PROGRAM_DIR = Path(__file__).with_name("mtail")
ROLE = "mtail"  # the target's role label in Prometheus


def mtail_command(logs: list[Path], port: int, one_shot: bool = False) -> list[str]:
    """mtail on `logs` with the access log's program; `one_shot` reads them once and prints the metrics
    in Prometheus's text format (how the program is tested) instead of following them."""
    command = [
        "mtail", "--progs", str(PROGRAM_DIR), "--logs", ",".join(str(log) for log in logs),
        "--address", "127.0.0.1", "--port", str(port), "--logtostderr", "--emit_prog_label=false",
    ]  # fmt: skip
    return command + (["--one_shot", "--one_shot_format", "prometheus"] if one_shot else [])


def start(run_dir: Path) -> dict:
    """Starts mtail on nginx's access log in `run_dir` on a free port; returns its state slot once it
    serves /metrics."""
    (run_dir / nginx.ACCESS_LOG).touch()  # mtail follows it from its start, so nginx's first line counts
    port = processes.free_port()
    command = [sys.executable, "-m", "serving.access_log", "--run-dir", str(run_dir), "--port", str(port)]
    pid = processes.spawn(
        command,
        run_dir / "mtail.log",
        "mtail (nginx's access log as metrics)",
        f"http://127.0.0.1:{port}/metrics",
        serving_config.MTAIL_START_SECONDS,
    )
    return {"pid": pid, "port": port, "label": ROLE}


def rotate_if_large(run_dir: Path, max_bytes: int = serving_config.ACCESS_LOG_MAX_BYTES) -> bool:
    """Past `max_bytes`, copies the log to `access.log.1` and truncates it; whether it did. Lines nginx
    writes between the copy and the truncation are counted by mtail but kept in neither file."""
    log = run_dir / nginx.ACCESS_LOG
    if not log.is_file() or log.stat().st_size <= max_bytes:
        return False
    shutil.copyfile(log, log.with_name(f"{nginx.ACCESS_LOG}.1"))
    with log.open("r+b") as handle:
        handle.truncate(0)
    return True


def _follow(run_dir: Path, port: int) -> int:
    """Runs mtail on the access log until it exits (or this process is asked to stop), rotating the log
    meanwhile; mtail's exit code."""
    mtail = subprocess.Popen(mtail_command([run_dir / nginx.ACCESS_LOG], port))
    signal.signal(signal.SIGTERM, lambda *_: mtail.terminate())
    while True:
        try:
            return mtail.wait(timeout=serving_config.ACCESS_LOG_CHECK_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        try:
            rotate_if_large(run_dir)
        except OSError as error:  # a failed rotation leaves the log growing, not mtail down
            print(f"access log: rotation failed: {error}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.access_log", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--run-dir", required=True, help="The stack's run folder, where nginx writes the log."
    )
    parser.add_argument("--port", type=int, required=True, help="mtail's port for /metrics (127.0.0.1).")
    args = parser.parse_args(argv)
    return _follow(Path(args.run_dir), args.port)


if __name__ == "__main__":
    sys.exit(main())
