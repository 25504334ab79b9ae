"""`make bench-scale`: the whole pipeline, cold, on generated data of growing size.

    .venv/bin/python -m benchmarks.scale [--sizes 15000,100000,300000,1000000] [--work-dir DIR]

For each size, `benchmarks.taxi_rows` writes that many rows (seeded resampling of the real sample,
with the sample's span sizes and serving logs) and `taxi-pipeline run` runs once into an empty output
folder. Prints wall seconds, peak memory, seconds per component and the cost per 100,000 rows at each
size, the held-out AUC, and the ratio of that cost to the one at 100,000 rows (linear scaling is 1.0). Writes scale.json.
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from benchmarks import taxi_rows
from benchmarks.bench import Workspace, run_ours

DEFAULT_SIZES = (15_000, 100_000, 300_000, 1_000_000)
REFERENCE_SIZE = 100_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        workspace = Workspace(root / f"rows-{size}", size)
        if not workspace.data_root.is_dir():
            taxi_rows.write_rows(size, workspace.root / "data")
        shutil.rmtree(workspace.root / "outputs", ignore_errors=True)  # cold
        seconds, peak, detail = run_ours(workspace, workspace.root / "outputs")
        results[size] = {
            "seconds": round(seconds, 1),
            "peak_mb": round(peak),
            "seconds_per_100k_rows": round(seconds / size * 100_000, 1),
            "auc": detail["auc"],
            "components": detail["components"],
        }
        print(f"  {size:>9,} rows: {seconds:7.1f} s, {peak:6.0f} MB, AUC {detail['auc']}", flush=True)
    reference = results.get(REFERENCE_SIZE, {}).get("seconds_per_100k_rows")
    print(
        f"\n{'rows':>10} {'seconds':>8} {'peak MB':>8} {'AUC':>6} {'s/100k rows':>12} {'vs 100k':>8}   slowest components"
    )
    for size, result in results.items():
        ratio = f"{result['seconds_per_100k_rows'] / reference:.2f}x" if reference else "-"
        slowest = sorted(result["components"].items(), key=lambda item: -item[1])[:3]
        print(
            f"{size:>10,} {result['seconds']:8.1f} {result['peak_mb']:8.0f} {_auc(result):>6} {result['seconds_per_100k_rows']:12.1f} {ratio:>8}   "
            + ", ".join(f"{name} {s:.0f} s" for name, s in slowest)
        )
    (root / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nResults: {root / 'scale.json'}")
    return 0


def _auc(result: dict) -> str:
    return "-" if result["auc"] is None else f"{result['auc']:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
