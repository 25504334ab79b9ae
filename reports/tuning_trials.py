"""A tuning run's trials as the Tuner recorded them in ML Metadata (components/tuner.py writes them), and
their table for `taxi-pipeline trials`. Reads the store read-only, with nothing heavier than ml_metadata."""

import json
from pathlib import Path

from reports import runs

TUNER_NODE = "Tuner"
TUNER_RESULTS_KEY = "tuner_results"  # TFX's output key (standard_component_specs.TUNER_RESULTS_KEY)
# The custom properties of the `tuner_results` artifact.
OBJECTIVE_PROPERTY = "objective"
TRIALS_PROPERTY = "trials"  # JSON: [{trial_id, score, hyperparameters, best}], best first
BEST_TRIAL_PROPERTY = "best_trial_id"
BEST_SCORE_PROPERTY = "best_score"


class NoTuningRun(Exception):
    """No run recorded in the store tuned (or the one asked for did not)."""


def trials_of(tuner_results: list[dict]) -> list[dict]:
    """TFX's records ({trial_id, score, **values}, best first) -> {trial_id, score, hyperparameters, best}."""
    return [
        {
            "trial_id": record["trial_id"],
            "score": record["score"],
            "hyperparameters": {k: v for k, v in record.items() if k not in ("trial_id", "score")},
            "best": index == 0,
        }
        for index, record in enumerate(tuner_results)
    ]


def latest_tuning(metadata_path: Path, pipeline_name: str, run_id: str | None = None) -> dict:
    """{run_id, objective, trials} of the newest run whose Tuner completed (or was reused from the cache),
    or of `run_id`; raises NoTuningRun naming the store when there is none."""
    found = runs.find_run(metadata_path, pipeline_name, run_id) if metadata_path.exists() else None
    if found is None:
        which = f"run {run_id} is not" if run_id else f"no run of {pipeline_name} is"
        raise NoTuningRun(f"{which} recorded in {metadata_path}")
    store, newest = found
    candidates = [newest] if run_id else runs.pipeline_runs(store, pipeline_name)
    for run in candidates:
        artifact = _tuner_results(store, run, pipeline_name)
        if artifact is not None:
            properties = artifact.custom_properties
            return {
                "run_id": run.name,
                "objective": properties[OBJECTIVE_PROPERTY].string_value,
                "trials": json.loads(properties[TRIALS_PROPERTY].string_value),
            }
    where = f"run {run_id}" if run_id else f"no run of {pipeline_name} in {metadata_path}"
    raise NoTuningRun(
        f"{where} tuned{' nothing' if run_id else ''}: `make tune` (or `taxi-pipeline run --tune`) runs the "
        "Tuner before the Trainer"
    )


def _tuner_results(store, run, pipeline_name: str):
    """The `tuner_results` artifact of `run`'s Tuner with recorded trials, else None."""
    for artifact in runs.node_outputs(store, run, pipeline_name, TUNER_NODE, TUNER_RESULTS_KEY):
        if TRIALS_PROPERTY in artifact.custom_properties:
            return artifact
    return None


def table_lines(tuning: dict) -> list[str]:
    """One line per trial, best first: its id, each hyperparameter, the objective; `*` marks the best."""
    trials = tuning["trials"]
    names = sorted({name for trial in trials for name in trial["hyperparameters"]})
    header = ["", "trial", *names, tuning["objective"]]
    rows = [
        [
            "*" if trial["best"] else "",
            str(trial["trial_id"]),
            *(f"{trial['hyperparameters'].get(name, '')}" for name in names),
            f"{trial['score']:.4f}",
        ]
        for trial in trials
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return [lines[0], "-" * len(lines[0]), *lines[1:]]
