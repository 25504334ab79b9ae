"""The input checks' row pass on span folders, three ways alternating in one process: one row at a time
(as before the column passes), in column passes with no memo (a first run), and with a filled memo (an
unchanged span on the next run). Each round checks every span file as `layout.prepare` does: headers,
then the rows.

    .venv/bin/python -m benchmarks.input_checks --spans-dir /tmp/rows-1m/spans --rounds 3

Prints, per variant, the wall and CPU seconds of each round, their medians and the ratio of medians to
the row-by-row variant; and that every variant found the same counts.
"""

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from config import pipeline as pipeline_config
from inputs import checks
from inputs.check_memo import CheckMemo
from models import features

ROW_BY_ROW, COLUMNAR, MEMO = "row by row", "column passes", "column passes, memo filled"


def check_spans(spans_dir: Path, variant: str, memo_path: Path) -> list[dict]:
    """Every span file's counts, checked the way `variant` names."""
    spans = checks.discover_spans(spans_dir)
    headers, _ = checks.read_headers(
        [f for files in spans.values() for f in files], features.REQUIRED_COLUMNS
    )
    by_path = {csv_file.path: csv_file for csv_file in headers}
    memo = CheckMemo(memo_path) if variant == MEMO else None
    found = []
    for span, files in spans.items():
        for path in files:
            csv_file = by_path[path]
            if variant == ROW_BY_ROW:
                found.append(
                    dataclasses.asdict(
                        checks.check_rows_one_by_one(
                            csv_file, span, pipeline_config.MAX_DUPLICATE_ROW_FRACTION
                        )
                    )
                )
            else:
                checks.check_rows(csv_file, span, pipeline_config.MAX_DUPLICATE_ROW_FRACTION, memo)
                found.append({"rows": csv_file.rows, "rows_with_line_breaks": csv_file.rows_with_line_breaks})
    if memo:
        memo.save()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans-dir", type=Path, required=True, help="a folder of span-N/*.csv")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three variants, alternating")
    args = parser.parse_args()
    variants = (ROW_BY_ROW, COLUMNAR, MEMO)
    wall: dict[str, list[float]] = {variant: [] for variant in variants}
    cpu: dict[str, list[float]] = {variant: [] for variant in variants}
    counts: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as scratch:
        memo_path = Path(scratch) / "checks_memo.json"
        check_spans(args.spans_dir, COLUMNAR, memo_path)  # warms the file cache and the imports
        check_spans(args.spans_dir, MEMO, memo_path)  # fills the memo
        for round_number in range(args.rounds):
            order = variants if round_number % 2 == 0 else tuple(reversed(variants))
            for variant in order:
                started_wall, started_cpu = time.perf_counter(), time.process_time()
                found = check_spans(args.spans_dir, variant, memo_path)
                wall[variant].append(time.perf_counter() - started_wall)
                cpu[variant].append(time.process_time() - started_cpu)
                counts[variant] = [{k: c[k] for k in ("rows", "rows_with_line_breaks")} for c in found]
    base_wall, base_cpu = statistics.median(wall[ROW_BY_ROW]), statistics.median(cpu[ROW_BY_ROW])
    for variant in variants:
        median_wall, median_cpu = statistics.median(wall[variant]), statistics.median(cpu[variant])
        print(
            f"{variant:28} wall s {', '.join(f'{s:.2f}' for s in wall[variant])} (median {median_wall:.2f},"
            f" {median_wall / base_wall:.3f}x); CPU s {', '.join(f'{s:.2f}' for s in cpu[variant])}"
            f" (median {median_cpu:.2f}, {median_cpu / base_cpu:.3f}x)"
        )
    same = counts[COLUMNAR] == counts[ROW_BY_ROW] == counts[MEMO]
    print(f"same rows and line breaks in every file, every variant: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
