"""`make run`: check the inputs, run the pipeline on Beam's DirectRunner, then print and write its summary.

The tfx CLI runs the same pipeline through beam_runner.py; `taxi-pipeline summary` then reports it the same way.
"""

import datetime
import errno
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from config import folders
from config import pipeline as pipeline_config
from inputs import checks, layout
from pipeline import output_lock
from registry import versions

# Exit codes: 0 the run completed (blessed and pushed, or not, or push held), 1 a component failed,
# 2 bad input or arguments (an output folder that cannot be written included), 3 data validation stopped
# the run before training, 4 another run is using the output folder.
COMPONENT_FAILED_EXIT_CODE = 1
BAD_INPUT_EXIT_CODE = 2
DATA_REJECTED_EXIT_CODE = 3
OUTPUT_FOLDER_BUSY_EXIT_CODE = 4
# How a full disk shows in an exception, whichever layer (Python, Beam, TensorFlow, SQLite) raised it.
FULL_DISK_MESSAGES = ("No space left on device", "database or disk is full")


def run(
    settings: folders.Settings, span: int | None = None, push_replay: bool = False, **stage_settings
) -> int:
    """Runs the pipeline on the newest span (or `span`), holding the output folder; returns the exit code above.

    `push_replay`: push the model of a replayed older span if blessed (by default a replay never pushes).
    `stage_settings`: `data=`, `training=`, `evaluation=` or `orchestration=` instead of config's (see
    local_pipeline.build; tests train fewer steps on small data).
    """
    return holding_output_folder(
        settings,
        "taxi-pipeline run",
        lambda: _run(settings, span, dict(stage_settings, push_replay=push_replay)),
    )


def holding_output_folder(settings: folders.Settings, command: str, work: Callable[[], int]) -> int:
    """Runs `work` while holding the output folder's lock; returns its exit code, or the one above for a
    folder another run holds, or one that cannot be written."""
    try:
        with output_lock.hold(settings.output_dir, command) as stale:
            output_lock.say_if_taken_over(stale)
            return work()
    except output_lock.OutputFolderBusy as error:
        print(f"error: {error}", file=sys.stderr)
        return OUTPUT_FOLDER_BUSY_EXIT_CODE
    except OSError as error:
        if error.filename is None or not str(error.filename).startswith(str(settings.output_dir)):
            raise
        print(f"error: {unwritable_output(settings.output_dir, error)}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE


def unwritable_output(output_dir, error: OSError) -> str:
    """What to tell a person whose output folder refused a write (read-only, full, no permission)."""
    return (
        f"the output folder {output_dir} cannot be written ({error.strerror}: {error.filename}). Free space or "
        "make it writable, or choose another (--output-dir / OUT=). Nothing already stored there was changed; "
        "a run started again reuses every component that completed."
    )


def _run(settings: folders.Settings, span: int | None, build_arguments: dict) -> int:
    started = time.monotonic()
    try:
        spans = layout.prepare(settings)
    except checks.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    _quarantine_what_is_not_whole(settings.serving_model_dir)
    # Imported only once the inputs are known to be good: TFX, TFMA and TensorFlow take seconds to load.
    from pipeline import local_pipeline
    from pipeline.beam_dag_runner import ProgressReportingBeamDagRunner
    from reports import run_summary

    chosen = span if span is not None else max(spans)
    if chosen not in spans:
        print(f"error: --span {chosen} has no data; spans available: {spans}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    print(
        f"Running {pipeline_config.PIPELINE_NAME} on span {chosen} of {settings.spans_dir}; outputs in {settings.output_dir}"
    )
    previous_run_id = run_summary.latest_run_id(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    previous_summary = _read_bytes(settings.run_summary_path)
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    run_summary.write_summary(
        run_summary.running(pipeline_config.PIPELINE_NAME, chosen, started_at), settings.run_summary_path
    )
    error = None
    try:
        ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, span, **build_arguments))
    except Exception as raised:
        error = raised
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    # A run that failed before its first component started left no record: its summary says so, rather
    # than the previous run's staying in place.
    if summary is None or summary["run_id"] == previous_run_id:
        summary = (
            run_summary.failed_before_any_component(pipeline_config.PIPELINE_NAME, error) if error else None
        )
    if summary is None:  # nothing ran (`tfx pipeline create` runs this file to record the pipeline only)
        _restore(settings.run_summary_path, previous_summary)
    # Data rejected by validation is an outcome the summary explains, not a crash: no traceback. Nor is a
    # full output folder a bug in the pipeline.
    rejected = summary is not None and summary["stopped_before_training"]
    if error is not None and _is_full_disk(error):
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(settings.output_dir))
        print(f"error: {unwritable_output(settings.output_dir, full)}", file=sys.stderr)
    elif error is not None and not rejected:
        traceback.print_exception(error)
        print(f"error: the pipeline failed: {type(error).__name__}: {error}", file=sys.stderr)
    if summary is not None:
        summary["wall_seconds"] = round(time.monotonic() - started, 1)
        publish_summary(summary, settings)
        print(f"Wall time: {summary['wall_seconds']:.1f} s")
    if rejected:
        print(
            "error: the training data failed validation (anomalies above); nothing was trained or pushed.",
            file=sys.stderr,
        )
        return DATA_REJECTED_EXIT_CODE
    return COMPONENT_FAILED_EXIT_CODE if error is not None else 0


def _read_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _restore(path: Path, content: bytes | None) -> None:
    """Puts back what `path` held (or removes it, if nothing)."""
    from reports.output_files import write_atomically

    if content is None:
        path.unlink(missing_ok=True)
    else:
        write_atomically(path, content)


def _quarantine_what_is_not_whole(serving_dir: Path) -> None:
    """Moves aside, and names, every folder of the serving directory that is not a whole version."""
    adopted = versions.begin_records(serving_dir) if serving_dir.is_dir() else []
    if adopted:
        print(
            f"note: versions pushed before completion records existed were recorded as whole: {', '.join(adopted)} "
            f"(every part of a SavedModel present; {versions.REGISTRY_FILE} lists them)."
        )
    for moved in versions.quarantine_not_whole(serving_dir):
        hint = (
            ""
            if moved.path.name.startswith("pushing-")
            else f" `taxi-pipeline adopt {moved.path}` takes in a model copied by hand."
        )
        print(
            f"note: {moved.reason}: moved to {moved.path}; it was never production and is kept only for inspection.{hint}"
        )


def exit_code_of(summary: dict) -> int:
    """The exit status the run a summary describes ended with (see the codes above)."""
    if summary["stopped_before_training"]:
        return DATA_REJECTED_EXIT_CODE
    return 0 if summary["succeeded"] else COMPONENT_FAILED_EXIT_CODE


def _is_full_disk(error: BaseException | None) -> bool:
    """Whether `error`, or an exception it was raised from, says the disk is full."""
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or any(m in str(error) for m in FULL_DISK_MESSAGES):
            return True
        error = error.__cause__ or error.__context__
    return False


def publish_summary(summary: dict, settings: folders.Settings) -> None:
    """Writes run_summary.json, prints the summary, and copies the slice report to a path that stays the same."""
    from reports import run_summary, slice_table

    summary["serving_directory"] = run_summary.serving_directory(settings.serving_model_dir)
    run_summary.write_summary(summary, settings.run_summary_path)
    run_summary.print_summary(summary, settings.run_summary_path)
    if summary.get("slice_report"):
        copy = slice_table.publish(
            Path(summary["slice_report"]), settings.slice_report_path, summary.get("model_card")
        )
        print(f"Slice report copied to {copy} (`make report` prints its table)")
