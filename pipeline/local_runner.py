"""`make run`: check the inputs, run the pipeline on Beam's DirectRunner, then print and write its summary.

The tfx CLI runs the same pipeline through beam_runner.py; `taxi-pipeline summary` then reports it the same way.
"""

import sys
import time
import traceback
from pathlib import Path

from pipeline import configs, input_checks, inputs

# Exit codes: 0 the run completed (blessed and pushed, or not, or push held), 1 a component failed,
# 2 bad input or arguments, 3 data validation stopped the run before training.
COMPONENT_FAILED_EXIT_CODE = 1
BAD_INPUT_EXIT_CODE = 2
DATA_REJECTED_EXIT_CODE = 3


def run(settings: configs.Settings, span: int | None = None) -> int:
    """Runs the pipeline on the newest span (or `span`); returns the exit code above."""
    started = time.monotonic()
    try:
        spans = inputs.prepare(settings)
    except input_checks.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    # Imported only once the inputs are known to be good: TFX, TFMA and TensorFlow take seconds to load.
    from pipeline import local_pipeline
    from pipeline.beam_dag_runner import ProgressReportingBeamDagRunner
    from reports import run_summary

    chosen = span if span is not None else max(spans)
    if chosen not in spans:
        print(f"error: --span {chosen} has no data; spans available: {spans}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    print(
        f"Running {configs.PIPELINE_NAME} on span {chosen} of {settings.spans_dir}; outputs in {settings.output_dir}"
    )
    previous_run_id = run_summary.latest_run_id(settings.metadata_path, configs.PIPELINE_NAME)
    error = None
    try:
        ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, span))
    except Exception as raised:
        error = raised
    summary = run_summary.summarize_latest_run(settings.metadata_path, configs.PIPELINE_NAME)
    # A run that failed before its first component started left no record; don't report the previous one.
    if summary is None or summary["run_id"] == previous_run_id:
        summary = None
    # Data rejected by validation is an outcome the summary explains, not a crash: no traceback.
    rejected = summary is not None and summary["stopped_before_training"]
    if error is not None and not rejected:
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


def publish_summary(summary: dict, settings: configs.Settings) -> None:
    """Writes run_summary.json, prints the summary, and copies the slice report to a path that stays the same."""
    from reports import run_summary, slice_table

    run_summary.write_summary(summary, settings.run_summary_path)
    run_summary.print_summary(summary, settings.run_summary_path)
    if summary.get("slice_report"):
        copy = slice_table.publish(Path(summary["slice_report"]), settings.slice_report_path)
        print(f"Slice report copied to {copy} (`make report` prints its table)")
