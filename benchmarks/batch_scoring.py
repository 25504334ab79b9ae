"""`make bench-score`: batch scoring's trips a second at ROWS generated rows, against the serving stack's
batched throughput on the same model, measured in one invocation.

On the production model of an output folder (run `make run` first):
- **batch_scoring**: `taxi-pipeline score`'s work (serving/batch_scoring.py) on one span of ROWS generated
  trips: Arrow reads the CSV in blocks, the model scores each block, the predictions are written as Parquet;
- **stack_batched** (the named baseline): requests of BATCH trips through nginx on four connections, each
  sent again as soon as it is answered, as `make bench-serve` measures it, in a stack of its own on free
  loopback ports.

The two alternate, round after round, so the machine's drift in speed falls on both; the report gives each
one's trips a second and their ratio, and is written to `score_bench.json`.

    python -m benchmarks.batch_scoring --output-dir outputs --rows 1000000
"""

import argparse
import io
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from benchmarks import serve, taxi_rows
from config import folders
from registry import versions
from serving import batch_scoring, processes, stack

SPAN = 20171  # the generated rows' one span: any span number works, the scorer reads the folder


def _span_root(work: Path, rows: int) -> Path:
    """A data root whose one span holds `rows` generated trips, generated once and kept for the next run."""
    generated = work / f"rows-{rows}"
    combined = generated / "generated.csv"
    if not combined.exists():
        print(f"Generating {rows:,} rows in {generated} ...", flush=True)
        combined = taxi_rows.write_rows(rows, generated)
    root = generated / "one-span"
    span_folder = root / f"span-{SPAN}"
    span_folder.mkdir(parents=True, exist_ok=True)
    if not (span_folder / "data.csv").exists():
        os.link(combined, span_folder / "data.csv")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.batch_scoring", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--output-dir", default="outputs", help="The output folder whose production model to use."
    )
    parser.add_argument("--work-dir", default="build/bench-score")
    parser.add_argument("--rows", type=int, default=1_000_000, help="Generated trips in the scored span.")
    parser.add_argument("--rounds", type=int, default=3, help="The two alternate, round after round.")
    parser.add_argument("--batch", type=int, default=100, help="Trips per request to the stack.")
    parser.add_argument("--seconds", type=float, default=10.0, help="The stack's load, per round.")
    args = parser.parse_args(argv)
    production = serve.production_of(args.output_dir)
    if production is None:
        return 2
    work = Path(args.work_dir).resolve()
    data_root = _span_root(work, args.rows)
    settings = folders.Settings(output_dir=work / "stack", data_root=None)
    shutil.rmtree(settings.output_dir, ignore_errors=True)
    versions.write_version(settings.serving_model_dir, production, production.name)
    paths = stack.StackPaths.of(settings)
    scored, served = [], []
    state = stack.start(paths, production.name, processes.free_port(), processes.free_port())
    try:
        nginx_url = f"http://127.0.0.1:{state['port']}"
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number} of {args.rounds}", flush=True)
            result = batch_scoring.score_span(
                data_root, SPAN, production.parent, work / "scores.parquet", progress=io.StringIO()
            )
            scored.append(result.trips / result.seconds)
            served.append(serve.batched(nginx_url, args.batch, args.seconds))
            time.sleep(serve.SETTLE_SECONDS)  # the burst's request-log rows are flushed before the next round
    finally:
        stack.stop(paths)
    report = {
        "rows": args.rows,
        "rounds": args.rounds,
        "version": production.name,
        "batch_scoring_trips_per_second": round(statistics.median(scored)),
        "stack_batched_trips_per_second": round(statistics.median(s["trips_per_second"] for s in served)),
        "stack_batched_errors": sum(s["errors"] for s in served),
        "batch": args.batch,
    }
    report["batch_scoring_over_stack_batched"] = round(
        report["batch_scoring_trips_per_second"] / report["stack_batched_trips_per_second"], 1
    )
    (work / "score_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
