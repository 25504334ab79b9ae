"""Times a cold run of the whole pipeline under each Beam DirectRunner mode, in one invocation.

    .venv/bin/python -m benchmarks.beam_modes [--repetitions N] [--rows N] [--modes A,B] [--work-dir DIR]

Each repetition of each mode starts from an empty output folder (cold, nothing cached) on the default
data (or `--rows` generated rows, as `make bench-scale` makes them), in a fresh process so no mode
inherits another's warm imports. Prints seconds per mode and the ratio to in_memory (the baseline,
measured in the same invocation) and writes beam_modes.json in the work dir.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The workers of the other two modes honour --max_cache_memory_usage_mb (pipeline/beam_settings.py).
NO_STATE_CACHE = "--max_cache_memory_usage_mb=0"
# Each mode applies to every component; "ours" is the pipeline's own choice (config/pipeline.py): in_memory,
# with worker processes for the components the data size pays for.
MODES = {
    "ours": None,
    "in_memory": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    "multi_threading": ["--direct_running_mode=multi_threading", "--direct_num_workers=2", NO_STATE_CACHE],
    "multi_processing": ["--direct_running_mode=multi_processing", "--direct_num_workers=2", NO_STATE_CACHE],
}
BASELINE = "in_memory"

_ONE_RUN = """
import json, sys, time
from pathlib import Path
from pipeline.quiet_logs import quiet_logs
quiet_logs(verbose=False)
from config import folders
from config import pipeline as pipeline_config
from inputs import layout
from pipeline import local_pipeline
from pipeline.beam_dag_runner import ProgressReportingBeamDagRunner
from reports import run_summary
data = Path(sys.argv[3]) if len(sys.argv) > 3 else None
settings = folders.Settings(output_dir=Path(sys.argv[1]), data_root=data and data / "spans",
                            serving_logs=data and data / "serving_logs")
layout.prepare(settings)
started = time.monotonic()
beam_args = json.loads(sys.argv[2])
# A mode replaces every Beam arg, the components' own ones included.
orchestration = None if beam_args is None else pipeline_config.Orchestration(beam_pipeline_args=beam_args)
ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, orchestration=orchestration))
seconds = time.monotonic() - started
summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
print(json.dumps({"seconds": seconds, "components": {c["component"]: c["seconds"] for c in summary["components"]},
                  "auc": summary["evaluation"]["metrics"]["auc"]}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--rows", type=int, default=None, help="Generated rows instead of the sample.")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--modes", default=",".join(MODES), help=f"Comma-separated subset of {list(MODES)}.")
    args = parser.parse_args()
    modes = {mode: MODES[mode] for mode in args.modes.split(",")}
    if BASELINE not in modes:
        parser.error(f"--modes must include the baseline, {BASELINE}")
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="beam_modes_"))
    data = []  # the generated rows' folder, passed to every run, or nothing for the sample
    if args.rows:
        from benchmarks import taxi_rows

        rows_dir = work_dir / f"rows-{args.rows}"
        if not (rows_dir / "spans").is_dir():
            taxi_rows.write_rows(args.rows, rows_dir)
        data = [str(rows_dir)]
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    for repetition in range(args.repetitions):
        for mode, beam_args in modes.items():  # alternating, so drift on the machine hits every mode
            output_dir = work_dir / f"{mode}-{repetition}"
            completed = subprocess.run(
                [sys.executable, "-c", _ONE_RUN, str(output_dir), json.dumps(beam_args), *data],
                capture_output=True,
                text=True,
                check=True,
            )
            results[mode].append(json.loads(completed.stdout.strip().splitlines()[-1]))
    baseline = statistics.median(r["seconds"] for r in results[BASELINE])
    print(f"{'mode':<18} {'median s':>9} {'vs ' + BASELINE:>14}   slowest components")
    for mode, runs in results.items():
        median = statistics.median(r["seconds"] for r in runs)
        slowest = sorted(runs[0]["components"].items(), key=lambda item: -item[1])[:3]
        detail = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in slowest)
        print(f"{mode:<18} {median:>9.1f} {median / baseline:>13.2f}x   {detail}")
    (work_dir / "beam_modes.json").write_text(json.dumps(results, indent=2))
    print(f"Results: {work_dir / 'beam_modes.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
