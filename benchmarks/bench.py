"""`make bench`: our pipeline against TFX's own Chicago taxi example and a no-orchestration floor.

    .venv/bin/python -m benchmarks.bench [--repetitions 3] [--rows N] [--variants cold,second,cached,floor]
        [--work-dir DIR]

In one invocation, alternating so that a slower moment of the machine hits every variant alike:

- `ours_cold`: `taxi-pipeline run` into an empty output folder; `ours_second`: the same command again
  (the Evaluator re-runs: the model pushed by the first run is now the baseline); `ours_cached`: a third
  time, when every component comes from the cache;
- `official_cold` / `official_second` / `official_cached`: the same three runs of
  `tfx/examples/chicago_taxi_pipeline/taxi_pipeline_native_keras.py` from the installed wheel, as
  shipped (its Beam args, 1,000 train steps), on the same rows (its second run re-evaluates too: its
  Resolver now finds the first run's blessed model);
- `floor`: one process, no orchestrator: read the CSVs, run our `preprocessing_fn` with tf.Transform,
  train our model for the same steps and batch size, score the held-out window.

`--variants` (`make bench VARIANTS=`) keeps some: `cold` is the cold runs of both pipelines, so
`make bench ROWS=1000000 REPETITIONS=1 VARIANTS=cold` is the side-by-side at a million rows. A second or
cached run needs the runs before it in its folder: they run, and are not reported.

Each is a fresh process (imports count: they are part of what a user waits for). Printed: the median wall
time and peak memory (max RSS of the process tree) over the repetitions, the ratios ours/official and
ours/floor, our per-component seconds, and every model's AUC on the same held-out window (2015 H2-2016 H2
for the sample: newer than our training data; the official example trains on a random two thirds of
all rows, so its AUC there is optimistic). Results also go to `bench.json` in the work folder.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS_COLD, OURS_SECOND, OURS_CACHED = "ours_cold", "ours_second", "ours_cached"
OFFICIAL_COLD, OFFICIAL_SECOND, OFFICIAL_CACHED = "official_cold", "official_second", "official_cached"
FLOOR = "floor"
# The runs of one pipeline, in order, in the same output folder.
PIPELINE_RUNS = ("cold", "second", "cached")
VARIANTS = (OURS_COLD, OURS_SECOND, OURS_CACHED, OFFICIAL_COLD, OFFICIAL_SECOND, OFFICIAL_CACHED, FLOOR)
# Ratios the issue sets targets for: (numerator, denominator).
RATIOS = (
    (OURS_COLD, OFFICIAL_COLD),
    (OURS_SECOND, OFFICIAL_SECOND),
    (OURS_CACHED, OFFICIAL_CACHED),
    (OURS_COLD, FLOOR),
)


def _run_child(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of the process and the children it waited for, stdout)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        stdout.seek(0)
        stderr.seek(0)
        out = stdout.read()
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.read()[-4000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


class Workspace:
    """The data every variant reads and one output folder per variant and repetition."""

    def __init__(self, root: Path, rows: int | None):
        self.root = root
        self.rows = rows
        self.data_root = root / "data" / "spans"
        self.serving_logs = root / "data" / "serving_logs"

    def prepare(self) -> None:
        from benchmarks import taxi_rows
        from inputs import taxi_sample

        if self.rows:
            taxi_rows.write_rows(self.rows, self.root / "data")
        else:
            spans = taxi_sample.write_spans(taxi_sample.sample_csv_path(), self.data_root)
            newest = self.data_root / f"span-{max(spans)}" / "data.csv"
            taxi_sample.write_serving_logs(newest, self.serving_logs)
        # The official example reads one folder of CSVs: all spans, as one file.
        official = self.root / "data" / "official"
        official.mkdir(parents=True, exist_ok=True)
        with (official / "data.csv").open("w") as combined:
            for index, span_file in enumerate(sorted(self.data_root.glob("span-*/data.csv"))):
                lines = span_file.read_text().splitlines(keepends=True)
                combined.writelines(lines if index == 0 else lines[1:])


def run_ours(workspace: Workspace, output_dir: Path) -> tuple[float, float, dict]:
    seconds, peak, _ = _run_child(
        [
            str(Path(sys.executable).with_name("taxi-pipeline")),
            "run",
            "--output-dir",
            str(output_dir),
            "--data-root",
            str(workspace.data_root),
            "--serving-logs",
            str(workspace.serving_logs),
        ]
    )
    summary = json.loads((output_dir / "run_summary.json").read_text())
    evaluation = summary.get("evaluation") or {}
    result = {
        "components": {c["component"]: c["seconds"] for c in summary["components"]},
        "statuses": {c["component"]: c["status"] for c in summary["components"]},
        # TFMA's AUC on the held-out window: what benchmarks.score measures, whether or not it was pushed.
        "auc": (evaluation.get("metrics") or {}).get("auc"),
    }
    return seconds, peak, result


def run_official(workspace: Workspace, output_dir: Path) -> tuple[float, float, dict]:
    seconds, peak, stdout = _run_child(
        [
            sys.executable,
            "-m",
            "benchmarks.official_example",
            str(workspace.root / "data" / "official"),
            str(output_dir),
        ]
    )
    return seconds, peak, _last_json(stdout)


def run_floor(workspace: Workspace, output_dir: Path) -> tuple[float, float, dict]:
    seconds, peak, stdout = _run_child(
        [sys.executable, "-m", "benchmarks.floor", str(workspace.data_root), str(output_dir)]
    )
    return seconds, peak, _last_json(stdout)


def held_out_auc(model_dir: str, workspace: Workspace) -> float | None:
    """AUC of a pushed model's serving signature on our held-out window (newest 3 spans), our label."""
    if not model_dir:
        return None
    _, _, stdout = _run_child([sys.executable, "-m", "benchmarks.score", model_dir, str(workspace.data_root)])
    return _last_json(stdout)["auc"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--rows", type=int, default=None, help="Generated rows instead of the 15,002-row sample."
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--only", default="ours,official,floor", help="Comma-separated subset of ours, official, floor."
    )
    parser.add_argument(
        "--variants",
        default=",".join((*PIPELINE_RUNS, FLOOR)),
        help=f"Comma-separated subset of {', '.join((*PIPELINE_RUNS, FLOOR))}: the runs reported.",
    )
    args = parser.parse_args(argv)
    wanted = set(args.variants.split(","))
    unknown = wanted - {*PIPELINE_RUNS, FLOOR}
    if unknown:
        parser.error(
            f"--variants: unknown {sorted(unknown)}; choose among {', '.join((*PIPELINE_RUNS, FLOOR))}"
        )
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="bench_"))
    workspace = Workspace(root, args.rows)
    workspace.prepare()

    runners = {"ours": run_ours, "official": run_official, "floor": run_floor}
    runners = {
        name: runner
        for name, runner in runners.items()
        if name in args.only.split(",") and (name != FLOOR or FLOOR in wanted)
    }
    # The runs of a pipeline up to the last one wanted: a second run needs the cold one before it.
    last = max((PIPELINE_RUNS.index(run) for run in wanted if run in PIPELINE_RUNS), default=-1)
    pipeline_runs = PIPELINE_RUNS[: last + 1]
    results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for repetition in range(args.repetitions):
        names = list(runners)
        order = names[repetition % len(names) :] + names[: repetition % len(names)]
        for name in order:
            output_dir = root / f"{name}-{repetition}"
            shutil.rmtree(output_dir, ignore_errors=True)  # cold: nothing from an earlier bench
            runs = [FLOOR] if name == FLOOR else pipeline_runs
            for run in runs:  # cold into an empty folder, then again twice in the same folder
                variant = FLOOR if name == FLOOR else f"{name}_{run}"
                seconds, peak, detail = runners[name](workspace, output_dir)
                print(
                    f"  {variant:<16} repetition {repetition + 1}: {seconds:7.1f} s, {peak:6.0f} MB"
                    + ("" if run in wanted else " (needed by a later run; not reported)"),
                    flush=True,
                )
                if run in wanted:
                    results[variant].append({"seconds": round(seconds, 1), "peak_mb": round(peak), **detail})

    if results[OFFICIAL_COLD]:
        first = results[OFFICIAL_COLD][0]
        first["auc"] = held_out_auc(first.get("model", ""), workspace)
    report = summarize(results, args.rows)
    (root / "bench.json").write_text(json.dumps({"summary": report, "runs": results}, indent=2) + "\n")
    print(format_report(report))
    print(f"\nResults: {root / 'bench.json'}")
    return 0


def summarize(results: dict[str, list[dict]], rows: int | None) -> dict:
    medians = {
        variant: {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_mb": statistics.median(r["peak_mb"] for r in runs),
            "repetitions": len(runs),
            "auc": next((r["auc"] for r in runs if r.get("auc") is not None), None),
        }
        for variant, runs in results.items()
        if runs
    }
    return {
        "rows": rows or 15002,
        "medians": medians,
        "ratios": {
            f"{a}/{b}": round(medians[a]["seconds"] / medians[b]["seconds"], 3)
            for a, b in RATIOS
            if a in medians and b in medians
        },
        "ours_cold_components": _component_medians(results[OURS_COLD]),
        "official_cold_components": _component_medians(results[OFFICIAL_COLD]),
    }


def _component_medians(runs: list[dict]) -> dict[str, float]:
    """Node id -> median seconds over the runs that recorded it."""
    names = {name for run in runs for name in run.get("components", {})}
    return {
        name: statistics.median(run["components"][name] for run in runs if name in run.get("components", {}))
        for name in names
    }


def format_report(report: dict) -> str:
    lines = [
        f"\nMedians over the repetitions ({report['rows']:,} rows):",
        f"{'variant':<16} {'seconds':>8} {'peak MB':>8} {'AUC':>7}",
    ]
    for variant, median in report["medians"].items():
        auc = "" if median["auc"] is None else f"{median['auc']:.3f}"
        lines.append(f"{variant:<16} {median['seconds']:8.1f} {median['peak_mb']:8.0f} {auc:>7}")
    lines.append("")
    for name, ratio in report["ratios"].items():
        lines.append(f"{name:<34} {ratio:6.3f}x")
    for label, key in (
        ("Our", "ours_cold_components"),
        ("The official example's", "official_cold_components"),
    ):
        if report.get(key):
            lines.append(f"\n{label} cold run, seconds per component (median):")
            for name, seconds in sorted(report[key].items(), key=lambda item: -item[1]):
                lines.append(f"  {name:<24} {seconds:6.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
