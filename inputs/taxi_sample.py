"""The default data: the Chicago Taxi sample inside the tfx wheel, written as half-year spans."""

import csv
import datetime
import io
from pathlib import Path

from config import pipeline as pipeline_config
from inputs.checks import InputError
from models import features


def sample_csv_path() -> Path:
    """The 15,002-row sample (2013-2016) shipped in the installed tfx package."""
    import tfx

    return Path(tfx.__file__).parent / "examples" / "chicago_taxi_pipeline" / "data" / "simple" / "data.csv"


def span_of(timestamp_seconds: int) -> int:
    """Span number YYYYH of a trip start (UTC seconds): 20151 for January-June 2015, 20152 for July-December."""
    start = datetime.datetime.fromtimestamp(timestamp_seconds, tz=datetime.timezone.utc)
    return start.year * 10 + (start.month - 1) // pipeline_config.MONTHS_PER_SPAN + 1


def write_spans(source_csv: Path, spans_dir: Path) -> dict[int, int]:
    """Splits `source_csv` by trip start into `spans_dir/span-N/data.csv`; returns rows per span.

    A span file whose content is unchanged is not rewritten, so ExampleGen's fingerprint (file times)
    stays the same and the pipeline's cache still applies.
    """
    with source_csv.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if features.TIMESTAMP not in header:
            raise InputError(
                f"{source_csv} has no {features.TIMESTAMP} column, which assigns each trip to a span."
            )
        timestamp_index = header.index(features.TIMESTAMP)
        rows_by_span: dict[int, list[list[str]]] = {}
        for line_number, row in enumerate(reader, start=2):
            try:
                span = span_of(int(row[timestamp_index]))
            except (ValueError, IndexError) as error:
                raise InputError(
                    f"{source_csv}, line {line_number}: {features.TIMESTAMP} must be an integer number of seconds "
                    f"since 1970 ({error})."
                ) from error
            rows_by_span.setdefault(span, []).append(row)

    for span, rows in rows_by_span.items():
        _write_if_changed(
            spans_dir / f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}" / "data.csv", header, rows
        )
    return {span: len(rows) for span, rows in sorted(rows_by_span.items())}


def write_serving_logs(newest_span_csv: Path, serving_logs_dir: Path) -> Path:
    """Writes the sample's stand-in for serving request logs: the newest span's trips without `tips`.

    Until a serving issue records real requests, these are what the model in production would have
    been asked about during that half-year. Other CSVs in the folder are removed (an earlier sample).
    """
    with newest_span_csv.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        kept = [index for index, column in enumerate(header) if column != features.TIPS]
        rows = [[row[index] for index in kept] for row in reader]
    target = serving_logs_dir / f"requests-{newest_span_csv.parent.name}.csv"
    _write_if_changed(target, [header[index] for index in kept], rows)
    for stale in serving_logs_dir.glob("*.csv"):
        if stale != target:
            stale.unlink()
    return target


def _write_if_changed(target: Path, header: list[str], rows: list[list[str]]) -> None:
    """Writes the CSV atomically, and not at all when the content is unchanged: ExampleGen fingerprints
    file times, so an untouched file keeps the pipeline's cache."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if target.exists() and target.read_text() == text.getvalue():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".csv.tmp")
    temporary.write_text(text.getvalue())
    temporary.replace(target)
