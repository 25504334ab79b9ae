"""ExampleGen's input, laid out from the raw data: the span windows a run reads, and the schema snapshot.

Raw data is laid out as `<data root>/span-N/*.csv`, one folder per time span. ExampleGen reads
`<example_gen_input>/span-{SPAN}/{train,eval,current_span,previous_span}/*.csv`, where span N holds
links to the raw files of its evaluation spans (the newest, ending at N), of the training window just
before them, and of span N and the span before it alone (which data validation compares for drift).
ExampleGen picks the newest span by itself, which is what lets a compiled pipeline pick up new data.

Every input is checked first (input_checks.py); with no data root, the Chicago Taxi sample is written.
"""

import hashlib
import os
import shutil
from pathlib import Path

from models import features
from pipeline import configs, taxi_sample
from pipeline.input_checks import (
    InputError,
    check_csv_headers,
    check_csv_rows,
    check_schema_file,
    check_serving_logs,
    discover_spans,
)


def prepare(settings: configs.Settings) -> list[int]:
    """Checks the schema and the data, writes ExampleGen's span folders; returns their span numbers.

    Raises InputError, before anything is run or written to the pipeline root, on bad input.
    """
    check_schema_file(settings.schema_path)
    if settings.data_root is None:
        taxi_sample.write_spans(taxi_sample.sample_csv_path(), settings.prepared_sample_dir)
    spans = discover_spans(settings.spans_dir)
    header = check_csv_headers(spans, features.REQUIRED_COLUMNS)
    for csv_file in (f for files in spans.values() for f in files):
        check_csv_rows(csv_file, header, configs.MAX_DUPLICATE_ROW_FRACTION)
    if settings.data_root is None and settings.serving_logs is None:
        taxi_sample.write_serving_logs(spans[max(spans)][0], settings.prepared_serving_logs_dir)
    if settings.serving_logs_dir is not None:
        check_serving_logs(settings.serving_logs_dir)
    return write_example_gen_input(
        spans, settings.example_gen_input, configs.TRAINING_WINDOW_SPANS, configs.EVALUATION_SPANS
    )


def windows(ordered: list[int], end: int, training_window_spans: int, evaluation_spans: int):
    """(training spans, evaluation spans) for the span at index `end` of the sorted span numbers:
    the `evaluation_spans` newest up to it, and up to `training_window_spans` before those."""
    first_evaluated = end - evaluation_spans + 1
    training = ordered[max(0, first_evaluated - training_window_spans) : first_evaluated]
    return training, ordered[first_evaluated : end + 1]


def write_example_gen_input(
    spans: dict[int, list[Path]], example_gen_input: Path, training_window_spans: int, evaluation_spans: int
) -> list[int]:
    """Links each span's training and evaluation files under `example_gen_input`; returns the span numbers.

    Span N gets `eval/` = the `evaluation_spans` newest spans up to N, `train/` = the
    `training_window_spans` spans before those, and `current_span/` and `previous_span/` = spans N and
    N-1 alone. Existing links are kept, so file times (which ExampleGen
    fingerprints) do not change and unchanged spans stay cached; span folders of data no longer present
    are removed.
    """
    ordered = sorted(spans)
    if len(ordered) < evaluation_spans + 1:
        raise InputError(
            f"Found {len(ordered)} span(s) ({ordered}), but a run needs at least {evaluation_spans + 1}: "
            f"{evaluation_spans} to evaluate on and at least one older span to train on."
        )
    written = []
    for end in range(evaluation_spans, len(ordered)):
        training, evaluation = windows(ordered, end, training_window_spans, evaluation_spans)
        span_folder = example_gen_input / f"{configs.SPAN_FOLDER_PREFIX}{ordered[end]}"
        _link_files(span_folder / configs.TRAIN_SPLIT, {s: spans[s] for s in training})
        _link_files(span_folder / configs.EVAL_SPLIT, {s: spans[s] for s in evaluation})
        _link_files(span_folder / configs.CURRENT_SPAN_SPLIT, {ordered[end]: spans[ordered[end]]})
        _link_files(span_folder / configs.PREVIOUS_SPAN_SPLIT, {ordered[end - 1]: spans[ordered[end - 1]]})
        written.append(ordered[end])
    # Span folders left from other data (an earlier --data-root) must go, or ExampleGen would pick them.
    keep = {f"{configs.SPAN_FOLDER_PREFIX}{span}" for span in written}
    for stale in example_gen_input.iterdir():
        if stale.name not in keep:
            shutil.rmtree(stale)
    return written


def split_rows(example_gen_input: Path, split: str, span: int | None = None) -> int:
    """About how many rows ExampleGen's `split` of `span` (the newest if None) holds: its files' lines
    minus their headers (exact for CSVs without quoted line breaks, such as the taxi data's). Cheap
    (a newline count), for choosing how to run components before the pipeline is built."""
    folders = sorted(example_gen_input.glob(f"{configs.SPAN_FOLDER_PREFIX}*"), key=_span_number)
    if span is not None:
        folders = [f for f in folders if _span_number(f) == span]
    if not folders:
        return 0
    rows = 0
    for csv_file in (folders[-1] / split).glob("*.csv"):
        with csv_file.open("rb") as handle:
            rows += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1
    return rows


def _span_number(span_folder: Path) -> int:
    return int(span_folder.name[len(configs.SPAN_FOLDER_PREFIX) :])


def _link_files(folder: Path, files_by_span: dict[int, list[Path]]) -> None:
    """Makes `folder` hold exactly one relative symlink per file, named after its span and file name."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {
        f"{configs.SPAN_FOLDER_PREFIX}{span}-{csv_file.name}": csv_file
        for span, files in files_by_span.items()
        for csv_file in files
    }
    for existing in folder.iterdir():
        if existing.name not in wanted or existing.resolve() != wanted[existing.name].resolve():
            existing.unlink()
    for name, target in wanted.items():
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(target.resolve(), folder.resolve()))


def snapshot_schema(schema_path: Path, snapshots_dir: Path) -> Path:
    """Copies the schema to `snapshots_dir/<content hash>/schema.pbtxt` and returns that path.

    ImportSchemaGen's cache key is the file's path, not its content, so an edited schema at the same
    path would be served from cache; a path per content makes every edit reach the pipeline.
    """
    content = schema_path.read_bytes()
    snapshot = snapshots_dir / hashlib.sha256(content).hexdigest()[:16] / schema_path.name
    if not snapshot.exists():
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_bytes(content)
    return snapshot
