"""ExampleGen's input, laid out from the raw data: the span windows a run reads, and the schema snapshot.

Raw data is laid out as `<data root>/span-N/*.csv`, one folder per time span. Every file is checked first
(checks.py); then `<output>/data/checked/spans/span-N/` holds, per raw file, a link to it or, where
ExampleGen could not read it as it is (a byte-order mark, another column order, unknown columns, line breaks
inside quotes), a normalised copy. ExampleGen reads `<example_gen_input>/span-{SPAN}/{train,eval,
current_span,previous_span}/*.csv`, where span N holds links to the checked files of its evaluation spans
(the newest, ending at N), of the training window just before them, and of span N and the span before it
alone (which data validation compares for drift). ExampleGen picks the newest span by itself, which is what
lets a compiled pipeline pick up new data. Serving logs get the same treatment in `data/checked/serving_logs/`.

Nothing is rewritten that has not changed: ExampleGen's cache key holds its files' sizes and times, so an
unchanged span keeps its cache.
"""

import csv
import datetime
import filecmp
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from config import folders
from config import pipeline as pipeline_config
from inputs import taxi_sample
from inputs.check_memo import CheckMemo
from inputs.checks import (
    CsvFile,
    InputError,
    check_rows,
    check_schema_file,
    check_serving_logs,
    discover_spans,
    read_headers,
    rows_of,
)
from models import features
from registry import versions


def prepare(settings: folders.Settings) -> list[int]:
    """Checks the schema and the data, then lays out what ExampleGen reads; returns the span numbers.

    Raises InputError on bad input before anything derived from the input is written.
    """
    check_schema_file(settings.schema_path)
    if settings.data_root is None:
        taxi_sample.write_spans(taxi_sample.sample_csv_path(), settings.prepared_sample_dir)
    spans = discover_spans(settings.spans_dir)
    _check_span_count(sorted(spans), pipeline_config.EVALUATION_SPANS)
    headers, columns = read_headers([f for files in spans.values() for f in files], features.REQUIRED_COLUMNS)
    by_path = {csv_file.path: csv_file for csv_file in headers}
    memo = CheckMemo(settings.checks_memo_path)
    checked = {
        span: [check_rows(by_path[f], span, pipeline_config.MAX_DUPLICATE_ROW_FRACTION, memo) for f in files]
        for span, files in spans.items()
    }
    if settings.data_root is None and settings.serving_logs is None:
        taxi_sample.write_serving_logs(spans[max(spans)][0], settings.prepared_serving_logs_dir)
    since, window = serving_logs_window(settings)
    serving_logs = (
        check_serving_logs(settings.serving_logs_dir, since, memo) if settings.serving_logs_dir else []
    )
    if settings.serving_logs_dir and not serving_logs:
        print(
            f"note: {settings.serving_logs_dir} holds no request answered {window}: the skew check has no "
            "serving data this run."
        )
    # Every input is good: only now is anything derived from it written.
    laid_out = {
        span: lay_out_checked(
            files, columns, settings.checked_spans_dir / f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}", memo
        )
        for span, files in checked.items()
    }
    _remove_stale(
        settings.checked_spans_dir, {f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}" for span in spans}
    )
    if serving_logs:
        lay_out_checked(serving_logs, serving_logs[0].known_columns, settings.checked_serving_logs_dir, memo)
    elif settings.checked_serving_logs_dir.exists():
        shutil.rmtree(settings.checked_serving_logs_dir)
    memo.save()
    _report_normalised([*[f for files in checked.values() for f in files], *serving_logs], columns)
    before = sum(f.rows_before_window for f in serving_logs)
    if before:
        print(f"note: {before} request-log row(s) answered before the window are left out: reading {window}.")
    return write_example_gen_input(
        laid_out,
        settings.example_gen_input,
        pipeline_config.TRAINING_WINDOW_SPANS,
        pipeline_config.EVALUATION_SPANS,
    )


def has_serving_logs(settings: folders.Settings) -> bool:
    """True when `prepare` laid out serving data for the skew check (none in a request log's window: False)."""
    return settings.serving_logs_dir is not None and any(settings.checked_serving_logs_dir.glob("*.csv"))


def serving_logs_window(settings: folders.Settings) -> tuple[float | None, str]:
    """(start, description) of the window of a serving-logs folder the skew check reads: the last
    `serving_logs_hours`, else the time since the production model was pushed (a version is the push's
    Unix time). No window for the sample's prepared logs, or before anything was pushed."""
    if settings.serving_logs is None:
        return None, "at any time"
    if settings.serving_logs_hours:
        return (
            time.time() - settings.serving_logs_hours * 3600,
            f"in the last {settings.serving_logs_hours:g} h",
        )
    production = versions.production_version(settings.serving_model_dir)
    if production is None:
        return None, "at any time"
    pushed = datetime.datetime.fromtimestamp(int(production), tz=datetime.timezone.utc)
    return float(
        production
    ), f"since production (version {production}) was pushed, {pushed:%Y-%m-%d %H:%M} UTC"


def _check_span_count(ordered: list[int], evaluation_spans: int) -> None:
    if len(ordered) < evaluation_spans + 1:
        raise InputError(
            f"Found {len(ordered)} span(s) ({ordered}), but a run needs at least {evaluation_spans + 1}: "
            f"{evaluation_spans} to evaluate on and at least one older span to train on."
        )


def lay_out_checked(
    files: list[CsvFile], columns: list[str], folder: Path, memo: CheckMemo | None = None
) -> list[Path]:
    """Makes `folder` hold, per checked file, a link to it or its normalised copy; returns their paths.
    With `memo`, a copy written from the file as it is now, and unchanged since, is not written again."""
    folder.mkdir(parents=True, exist_ok=True)
    laid_out = []
    for csv_file in files:
        target = folder / csv_file.path.name
        if csv_file.needs_normalising(columns):
            if not (memo and memo.copy_is_current(csv_file.identity, target, columns)):
                _write_normalised(csv_file, columns, target)
                if memo:
                    memo.remember_copy(csv_file.identity, target, columns)
        else:
            _link(target, csv_file.path)
        laid_out.append(target)
    _write_checked_rows(
        folder,
        {f.path.name: f.rows - f.shadow_rows - f.rows_before_window for f in files},
    )
    _remove_stale(folder, {path.name for path in laid_out} | {pipeline_config.CHECKED_ROWS_FILE})
    return laid_out


def _write_checked_rows(folder: Path, rows_by_name: dict[str, int]) -> None:
    """Writes the rows ExampleGen must read from each file of `folder` (the checks' count, less the rows
    left out), which it compares with what it reads and writes (components/csv_example_gen.py)."""
    path = folder / pipeline_config.CHECKED_ROWS_FILE
    content = json.dumps(rows_by_name, indent=1, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != content:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(content)
        temporary.replace(path)


def _checked_rows(csv_file: Path) -> int | None:
    """The rows the checks counted in a laid-out file (`_write_checked_rows`); None if not counted."""
    path = csv_file.parent / pipeline_config.CHECKED_ROWS_FILE
    return json.loads(path.read_text()).get(csv_file.name) if path.is_file() else None


def _write_normalised(csv_file: CsvFile, columns: list[str], target: Path) -> None:
    """Writes `csv_file` as ExampleGen reads it: `columns` in that order (unknown ones left out), no
    byte-order mark, one line per row (a line break inside a field becomes a space). Not rewritten when
    unchanged, so the copy keeps its time and ExampleGen its cache."""
    positions = [csv_file.header.index(column) for column in columns]
    temporary = target.with_name(f".{target.name}.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for _, row in rows_of(csv_file):
            if csv_file.keeps(row):
                writer.writerow([" ".join(row[p].splitlines()) for p in positions])
    if target.is_file() and not target.is_symlink() and filecmp.cmp(temporary, target, shallow=False):
        temporary.unlink()
    else:
        temporary.replace(target)


def _report_normalised(files: list[CsvFile], columns: list[str]) -> None:
    """Says what was left out of, or changed in, what ExampleGen reads: never silently. Files of one folder
    with the same columns left out (a request log's many files) get one note."""
    unknown: dict[tuple[Path, tuple[str, ...]], list[CsvFile]] = {}
    for csv_file in files:
        if csv_file.unknown_columns:
            unknown.setdefault((csv_file.path.parent, tuple(csv_file.unknown_columns)), []).append(csv_file)
        if csv_file.rows_with_line_breaks:
            print(
                f"note: {csv_file.path}: {csv_file.rows_with_line_breaks} row(s) have a line break inside a "
                "quoted field; ExampleGen reads one line per row, so it reads each as a space."
            )
    for (folder, names), group in unknown.items():
        where = str(group[0].path) if len(group) == 1 else f"{len(group)} files in {folder}"
        print(
            f"note: {where}: column(s) the pipeline does not use: {', '.join(names)}. They are left out of "
            "what ExampleGen reads."
        )
    shadow = [csv_file for csv_file in files if csv_file.shadow_rows]
    if shadow:
        print(
            f"note: {sum(f.shadow_rows for f in shadow)} request-log row(s) of a shadow's answers in "
            f"{shadow[0].path.parent} are left out: stable answered the same trips, which are read once."
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
    _check_span_count(ordered, evaluation_spans)
    written = []
    for end in range(evaluation_spans, len(ordered)):
        training, evaluation = windows(ordered, end, training_window_spans, evaluation_spans)
        span_folder = example_gen_input / f"{pipeline_config.SPAN_FOLDER_PREFIX}{ordered[end]}"
        _link_files(span_folder / pipeline_config.TRAIN_SPLIT, {s: spans[s] for s in training})
        _link_files(span_folder / pipeline_config.EVAL_SPLIT, {s: spans[s] for s in evaluation})
        _link_files(span_folder / pipeline_config.CURRENT_SPAN_SPLIT, {ordered[end]: spans[ordered[end]]})
        _link_files(
            span_folder / pipeline_config.PREVIOUS_SPAN_SPLIT, {ordered[end - 1]: spans[ordered[end - 1]]}
        )
        written.append(ordered[end])
    # Span folders left from other data (an earlier --data-root) must go, or ExampleGen would pick them.
    _remove_stale(example_gen_input, {f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}" for span in written})
    return written


def split_rows(example_gen_input: Path, split: str, span: int | None = None) -> int:
    """About how many rows ExampleGen's `split` of `span` (the newest if None) holds: its files' lines
    minus their headers (exact for CSVs without quoted line breaks, such as the taxi data's). Cheap
    (a newline count), for choosing how to run components before the pipeline is built."""
    folders = sorted(example_gen_input.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*"), key=_span_number)
    if span is not None:
        folders = [f for f in folders if _span_number(f) == span]
    if not folders:
        return 0
    rows = 0
    for csv_file in (folders[-1] / split).glob("*.csv"):
        with csv_file.open("rb") as handle:
            rows += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1
    return rows


def newest_span(example_gen_input: Path) -> int | None:
    """The newest span laid out for ExampleGen (the one it picks by itself); None before any."""
    folders = (
        list(example_gen_input.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*"))
        if example_gen_input.is_dir()
        else []
    )
    return max(map(_span_number, folders), default=None)


def _span_number(span_folder: Path) -> int:
    return int(span_folder.name[len(pipeline_config.SPAN_FOLDER_PREFIX) :])


def _link_files(folder: Path, files_by_span: dict[int, list[Path]]) -> None:
    """Makes `folder` hold exactly one relative symlink per file, named after its span and file name."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {
        f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}-{csv_file.name}": csv_file
        for span, files in files_by_span.items()
        for csv_file in files
    }
    for name, target in wanted.items():
        _link(folder / name, target)
    rows = {name: _checked_rows(target) for name, target in wanted.items()}
    if any(count is not None for count in rows.values()):
        _write_checked_rows(folder, {name: count for name, count in rows.items() if count is not None})
    _remove_stale(folder, set(wanted) | {pipeline_config.CHECKED_ROWS_FILE})


def _link(link: Path, target: Path) -> None:
    """Makes `link` a relative symlink to `target`, keeping an existing one that already points there (a
    new link would be a new file time for ExampleGen's cache key)."""
    relative = os.path.relpath(target.absolute(), link.parent.absolute())
    if link.is_symlink() and os.readlink(link) == relative:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    link.symlink_to(relative)


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Removes what `folder` holds besides `keep` (data no longer present must not be read)."""
    for entry in folder.iterdir() if folder.is_dir() else []:
        if entry.name not in keep:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


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
