"""`make bench-monitor`: the monitor's refresh at a million logged requests and a million labels.

In a work folder of its own (no stack and no model are needed: the monitor reads files):
1. **history**: 1,000,000 answered trips over the last 24 hours (HISTORY_HOURS), 90 % by a stable version and
   10 % by a canary, written as the model servers write them (closed files of `REQUEST_LOG_MAX_BYTES`),
   with the sample's real features, and a label for each (tips after two minutes), in the feedback files
   as the monitor writes them;
2. **first**: a monitor started on that history reads it all into its store, once (a process of its own);
3. **rounds**: a monitor started on the store (a process of its own), then ROUNDS times 10,000 new trips (an
   open file, as a live server's) and their 10,000 labels, and one refresh, timed; the labels arrive, in
   alternate rounds, through the monitor (`POST /v1/feedback`'s path: stored on arrival) or as another
   writer's CSV (the command line's: read by the refresh). After each, a refresh with nothing new.

Reports each refresh's seconds, each process's peak memory (maximum RSS), and the store's size on disk;
writes `monitor_bench.json` in the work folder.

    python -m benchmarks.monitor --work-dir build/bench-monitor --requests 1000000 --new 10000
"""

import argparse
import csv
import datetime
import io
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from inputs import taxi_sample
from models import features
from serving import request_log

STABLE, CANARY = "1800000000", "1800003600"
LABEL_DELAY_SECONDS = 120.0
HISTORY_PIECE = 100_000


def _sample_features() -> tuple[list[str], list[float]]:
    """The sample's trips as the request log's feature columns (CSV text, one string a trip), and fares."""
    with taxi_sample.sample_csv_path().open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if (row.get(features.FARE) or "").strip()]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows([row.get(column, "") for column in features.SERVING_COLUMNS] for row in rows)
    return text.getvalue().splitlines(), [float(row[features.FARE]) for row in rows]


class Traffic:
    """Answered trips and their labels, as the servers and the monitor write them."""

    def __init__(self, settings: folders.Settings, seed: int = 0):
        self.settings = settings
        self.features, self.fares = _sample_features()
        self.rng = np.random.default_rng(seed)
        self.sent = 0
        settings.request_log_dir.mkdir(parents=True, exist_ok=True)
        settings.feedback_dir.mkdir(parents=True, exist_ok=True)

    def trips(self, count: int, start: float, end: float) -> list[tuple]:
        """`count` trips answered from `start` to `end` (Unix time): (request_id, answered, version, route,
        prediction, feature row index, tips)."""
        answered = np.linspace(start, end, count, endpoint=False)
        canary = self.rng.random(count) < 0.1
        predictions = self.rng.beta(0.6, 0.9, count).round(6)
        rows = self.rng.integers(0, len(self.features), count)
        big = self.rng.random(count) < predictions  # a calibrated model
        fares = np.array(self.fares)[rows]
        tips = np.where(big, np.round(fares * 0.3, 2), 0.0)
        found = [
            (f"{self.sent + i:032x}", answered[i], CANARY if canary[i] else STABLE, "canary" if canary[i] else "stable",
             predictions[i], rows[i], tips[i])
            for i in range(count)
        ]  # fmt: skip
        self.sent += count
        return found

    def write_log(self, trips: list[tuple], open_file: bool = False) -> None:
        """Request-log files of `trips`: closed ones of `REQUEST_LOG_MAX_BYTES`, or one open file."""
        header = ",".join(request_log.COLUMNS) + "\n"
        lines, size, files = [], 0, 0
        for request_id, answered, version, route, prediction, row, _ in trips:
            when = datetime.datetime.fromtimestamp(answered, tz=datetime.timezone.utc).isoformat()
            line = f"{request_id},0,{when},{version},{route},2.5,{prediction},{self.features[row]}\n"
            lines.append(line)
            size += len(line)
            if size >= serving_config.REQUEST_LOG_MAX_BYTES and not open_file:
                self._write(header, lines, files)
                lines, size, files = [], 0, files + 1
        if lines:
            self._write(header, lines, files, open_file)

    def _write(self, header: str, lines: list[str], index: int, open_file: bool = False) -> None:
        stamp = f"{self.sent:012d}{index:04d}"
        suffix = request_log.OPEN_SUFFIX if open_file else ""
        path = self.settings.request_log_dir / f"requests-{stamp}-stable-bench-{index}.csv{suffix}"
        path.write_text(header + "".join(lines))

    def label_rows(self, trips: list[tuple]) -> list[dict]:
        return [{"request_id": t[0], "trip": 0, "tips": float(t[6])} for t in trips]

    def write_labels(self, trips: list[tuple], name: str) -> None:
        """A feedback CSV of the trips' labels, as a feedback store writes it (received two minutes after
        each answer)."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["request_id", "trip", "tips", "fare", "received"])
        writer.writerows((t[0], 0, float(t[6]), "", float(t[1]) + LABEL_DELAY_SECONDS) for t in trips)
        (self.settings.feedback_dir / name).write_text(text.getvalue())


def _peak_mb() -> float:
    """This process's peak resident memory, in MB (VmHWM: unlike getrusage's, not inherited from the
    process that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def _monitor(settings: folders.Settings):
    from monitoring.monitor import Monitor

    return Monitor(
        settings, monitoring_config.LIVE_QUALITY_WINDOW_SECONDS, monitoring_config.FEEDBACK_GRACE_SECONDS
    )


def first(settings: folders.Settings) -> dict:
    """A monitor started on the history: its first refresh reads everything."""
    monitor = _monitor(settings)
    started = time.perf_counter()
    figures = monitor.refresh()
    return {"seconds": round(time.perf_counter() - started, 2), "logged_trips": figures["logged_trips"],
            "labelled_trips": figures["labelled_trips"], "peak_rss_mb": _peak_mb()}  # fmt: skip


def rounds(settings: folders.Settings, count: int, new: int) -> dict:
    """A monitor started on the store; `count` rounds of `new` trips and labels, each refresh timed."""
    monitor = _monitor(settings)
    traffic = Traffic(settings, seed=1)
    traffic.sent = 10**9  # request ids apart from the history's
    started = time.perf_counter()
    monitor.refresh()
    found = {"startup_refresh_seconds": round(time.perf_counter() - started, 3), "rounds": []}
    for index in range(count):
        by_monitor = index % 2 == 0
        now = time.time()
        trips = traffic.trips(new, now - 5, now)
        traffic.write_log(trips, open_file=True)
        started = time.perf_counter()
        if by_monitor:
            answer = monitor.receive(traffic.label_rows(trips))
            assert answer["accepted"] == new, answer
        else:
            traffic.write_labels(trips, f"feedback-29991231-{index}.csv")
        received = time.perf_counter() - started
        started = time.perf_counter()
        figures = monitor.refresh()
        refresh_seconds = time.perf_counter() - started
        started = time.perf_counter()
        monitor.refresh()
        found["rounds"].append({
            "labels": "through the monitor" if by_monitor else "a CSV file",
            "labels_stored_seconds": round(received, 3) if by_monitor else None,
            "refresh_seconds": round(refresh_seconds, 3),
            "refresh_nothing_new_seconds": round(time.perf_counter() - started, 3),
            "logged_trips": figures["logged_trips"], "labelled_trips": figures["labelled_trips"],
            "live_trips": {f"{e['version']} {e['route']}": e["overall"]["trips"] for e in figures["live"]},
        })  # fmt: skip
    found["peak_rss_mb"] = _peak_mb()
    return found


def _phase(work: Path, phase: str, *more: str) -> dict:
    """A phase in a process of its own, so that its peak memory is its own."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.monitor", "--work-dir", str(work), "--phase", phase, *more],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"the {phase} phase failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.monitor", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--work-dir", default="build/bench-monitor")
    parser.add_argument(
        "--requests", type=int, default=1_000_000, help="Logged trips (and labels) of history."
    )
    parser.add_argument("--history-hours", type=float, default=24.0, help="The time the history spans.")
    parser.add_argument("--new", type=int, default=10_000, help="New trips (and labels) a round.")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--phase", choices=("first", "rounds"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = Path(args.work_dir).resolve()
    settings = folders.Settings(output_dir=work, data_root=None)
    if args.phase == "first":
        print(json.dumps(first(settings)))
        return 0
    if args.phase == "rounds":
        print(json.dumps(rounds(settings, args.rounds, args.new)))
        return 0
    shutil.rmtree(work, ignore_errors=True)
    print(f"History: {args.requests:,} trips over {args.history_hours:g} h, and their labels ...", flush=True)
    started = time.perf_counter()
    traffic = Traffic(settings)
    now = time.time()
    start, step = now - args.history_hours * 3600, (args.history_hours * 3600 - 60) / args.requests
    for first_trip in range(0, args.requests, HISTORY_PIECE):  # a piece at a time: this process stays small
        count = min(HISTORY_PIECE, args.requests - first_trip)
        history = traffic.trips(count, start + first_trip * step, start + (first_trip + count) * step)
        traffic.write_log(history)
        traffic.write_labels(history, f"feedback-20000101-{first_trip // HISTORY_PIECE:04d}.csv")
    report = {"requests": args.requests, "history_hours": args.history_hours, "new": args.new,
              "written_seconds": round(time.perf_counter() - started, 1),
              "request_log_mb": round(sum(p.stat().st_size for p in settings.request_log_dir.iterdir()) / 2**20, 1)}  # fmt: skip
    print(f"  written in {report['written_seconds']:g} s ({report['request_log_mb']:g} MB of request log)")
    print("First refresh (a monitor started on the history reads it all) ...", flush=True)
    report["first"] = _phase(work, "first")
    print(f"  {report['first']['seconds']:g} s, peak RSS {report['first']['peak_rss_mb']:g} MB")
    print(f"{args.rounds} rounds of {args.new:,} new trips and labels, one refresh each ...", flush=True)
    report["rounds"] = _phase(work, "rounds", "--rounds", str(args.rounds), "--new", str(args.new))
    store_file = settings.feedback_dir / monitoring_config.MONITOR_STORE_FILE
    report["store_mb"] = round(
        sum(p.stat().st_size for p in store_file.parent.glob(f"{store_file.name}*")) / 2**20, 1
    )
    for entry in report["rounds"]["rounds"]:
        print(f"  labels {entry['labels']:<20} refresh {entry['refresh_seconds']:.3f} s "
              f"(nothing new: {entry['refresh_nothing_new_seconds']:.3f} s)")  # fmt: skip
    report["refresh_after_new_seconds"] = {}
    for variant in ("through the monitor", "a CSV file"):
        seconds = [e["refresh_seconds"] for e in report["rounds"]["rounds"] if e["labels"] == variant]
        if seconds:
            report["refresh_after_new_seconds"][variant] = {
                "median": statistics.median(seconds),
                "max": max(seconds),
            }
            print(f"Refresh after {args.new:,} new trips, labels {variant}: median {statistics.median(seconds):.3f} s, "
                  f"max {max(seconds):.3f} s")  # fmt: skip
    print(f"Peak RSS: {report['rounds']['peak_rss_mb']:g} MB (the first refresh's process: "
          f"{report['first']['peak_rss_mb']:g} MB); store {report['store_mb']:g} MB")  # fmt: skip
    (work / "monitor_bench.json").write_text(json.dumps(report, indent=2))
    print(f"Figures: {work / 'monitor_bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
