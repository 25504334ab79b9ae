"""A run's summary, read back from ML Metadata: components, evaluation, push, data validation.

The summary is built from MLMD and the artifacts alone (not from this process's memory), so it is the
same for a run started by `make run`, by the tfx CLI, or on another orchestrator sharing the store.
"""

import json
import os
import sys
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.io import fileio
from tfx.types.artifact import Artifact

from config import folders
from config import pipeline as pipeline_config
from registry import versions
from reports import evaluation_results, runs, validation_results
from reports.output_files import write_atomically
from reports.slice_table import describe_failure

STATUS_BY_STATE = {
    metadata_store_pb2.Execution.COMPLETE: "ran",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}
# A summary's `state`. RUNNING is what a run writes when it starts, so a summary never says a run that is
# going, or that crashed, succeeded; INTERRUPTED: a component never finished (the process was killed).
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
INTERRUPTED = "interrupted"
# Why a blessed model was not pushed: set on the Pusher's output artifact (components/pusher.py).
NOT_PUSHED_BECAUSE = "not_pushed_because"
# Why PushGate withdrew the Evaluator's blessing: set on its output (components/data_gates.py).
HELD_BECAUSE = "held_because"
# The serving check's verdict and figures (components/serving_check.py): why on its InfraBlessing, the
# figures in this file inside it.
NOT_SERVABLE_BECAUSE = "not_blessed_because"
SERVING_CHECK_REPORT_FILE = "serving_check.json"
# Where the ModelCard step stored the card beside the pushed model (components/model_card.py).
MODEL_CARD_STORED_AT = "stored_at"
# TFMA metric names -> names in the summary.
HEADLINE_METRICS = {
    "auc": "auc",
    "binary_accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "example_count": "example_count",
}


def _output_artifacts(store, execution_id: int) -> dict[str, list[Artifact]]:
    """Output key -> artifacts (as TFX Artifact objects, which read custom properties) of one execution."""
    outputs = runs.output_artifacts(store, execution_id)
    type_ids = {a.type_id for artifacts in outputs.values() for a in artifacts}
    artifact_types = {t.id: t for t in store.get_artifact_types_by_id(list(type_ids))}
    converted: dict[str, list[Artifact]] = {}
    for key, artifacts in outputs.items():
        for mlmd_artifact in artifacts:
            artifact = Artifact(artifact_types[mlmd_artifact.type_id])
            artifact.set_mlmd_artifact(mlmd_artifact)
            converted.setdefault(key, []).append(artifact)
    return converted


def _headline(rows: dict, slice_name: str) -> dict[str, float] | None:
    """The summary's metrics of one slice, from `evaluation_results.load_rows` (None if it is absent)."""
    if slice_name not in rows:
        return None
    metrics = rows[slice_name][1]
    return {
        summary_name: metrics[tfma_name]
        for tfma_name, summary_name in HEADLINE_METRICS.items()
        if metrics.get(tfma_name) is not None
    }


def _evaluation_summary(
    outputs: dict[str, list[Artifact]], baseline_model: Artifact | None, sample: Artifact | None
) -> dict:
    evaluation_uri = outputs["evaluation"][0].uri
    blessed = bool(outputs["blessing"][0].get_int_custom_property("blessed"))
    # Each model's results are read once, for the headline and for the reasons it was not blessed.
    candidate, baseline = evaluation_results.load_rows(evaluation_uri)
    key_slice = evaluation_results.slice_name(pipeline_config.KEY_SLICE)
    return {
        "metrics": _headline(candidate, evaluation_results.OVERALL) or {},
        "baseline": evaluation_results.describe_baseline(baseline_model),
        "baseline_metrics": _headline(baseline, evaluation_results.OVERALL),
        "key_slice": {
            "slice": key_slice,
            "metrics": _headline(candidate, key_slice),
            "baseline_metrics": _headline(baseline, key_slice),
        },
        # How many examples the evaluation window held, and how many the Evaluator judged.
        "sample": {
            "examples_in_window": sample.get_int_custom_property(evaluation_results.EXAMPLES_IN_SPLIT),
            "examples_judged": sample.get_int_custom_property(evaluation_results.EXAMPLES_KEPT),
        }
        if sample
        else None,
        "blessed": blessed,
        "not_blessed_because": (
            failures := []
            if blessed
            else evaluation_results.validation_failures(evaluation_uri, candidate, baseline)
        ),
        "too_thin_to_bless": too_thin_to_bless(failures),
        "evaluation_uri": evaluation_uri,
        # The candidate was production: this evaluation is an earlier one's (components/evaluation_reuse.py).
        "reused_from": outputs["evaluation"][0].get_string_custom_property(evaluation_results.REUSED_FROM),
    }


def too_thin_to_bless(failures: list[dict]) -> dict | None:
    """{"examples", "needs"} when the evaluation judged fewer examples overall than a blessing needs, else None."""
    for failure in failures:
        if failure["metric"] == "example_count" and failure["slice"] == evaluation_results.OVERALL:
            return {"examples": int(failure["value"] or 0), "needs": failure["bound"]}
    return None


def _data_validation(outputs: dict[str, list[Artifact]]) -> dict:
    """ExampleValidator's anomalies (each with what it does) and every drift and skew distance it measured."""
    artifact = outputs["anomalies"][0]
    by_split = validation_results.read_anomalies(artifact)
    return {
        "anomalies": validation_results.anomaly_rows(by_split),
        "distances": validation_results.distance_rows(by_split),
        "unit_changes": validation_results.unit_change_rows(artifact),
        "units_check": validation_results.units_check(artifact),
        "distances_not_gated": artifact.get_string_custom_property("distances_not_gated"),
    }


def _single(outputs_by_node: dict, node_id: str, key: str) -> Artifact | None:
    artifacts = outputs_by_node.get(node_id, {}).get(key, [])
    return artifacts[0] if artifacts else None


def latest_run_id(metadata_path: Path, pipeline_name: str) -> str | None:
    """Id of the newest run of `pipeline_name` recorded in `metadata_path` (None if none), read cheaply."""
    found = runs.find_run(metadata_path, pipeline_name)
    return found[1].name if found else None


def summarize_latest_run(metadata_path: Path, pipeline_name: str, run_id: str | None = None) -> dict | None:
    """The machine-readable summary of the newest run recorded in `metadata_path`, or of run `run_id`.

    None when there is no such run.
    """
    found = runs.find_run(metadata_path, pipeline_name, run_id)
    if found is None:
        return None
    store, run = found
    components, outputs_by_node = [], {}
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        node_id = runs.node_id_of(store, execution.id, pipeline_name) or str(execution.id)
        status = STATUS_BY_STATE.get(execution.last_known_state, "unknown")
        components.append(
            {
                "component": node_id,
                "status": status,
                "seconds": runs.execution_seconds(execution),
            }
        )
        if status in ("ran", "cached"):
            outputs_by_node[node_id] = _output_artifacts(store, execution.id)

    pushed_model, not_pushed_because = _push(components, _single(outputs_by_node, "Pusher", "pushed_model"))
    succeeded = bool(components) and all(c["status"] in ("ran", "cached") for c in components)
    return {
        "pipeline": pipeline_name,
        "run_id": run.name,
        "state": SUCCEEDED
        if succeeded
        else (INTERRUPTED if any(c["status"] == "running" for c in components) else FAILED),
        "succeeded": succeeded,
        "components": components,
        "evaluation": _evaluation_summary(
            outputs_by_node["Evaluator"],
            _single(outputs_by_node, "ProductionModel", "baseline_model"),
            _single(outputs_by_node, "EvaluationSample", "sample"),
        )
        if "Evaluator" in outputs_by_node
        else None,
        "slice_report": str(Path(report.uri) / folders.SLICE_REPORT_FILE)
        if (report := _single(outputs_by_node, "SliceReport", "report"))
        else None,
        "pushed_model": pushed_model,
        "not_pushed_because": not_pushed_because,
        "model_card": model_card_path(_single(outputs_by_node, "ModelCard", "card")),
        "data_validation": _data_validation(outputs_by_node["ExampleValidator"])
        if "ExampleValidator" in outputs_by_node
        else None,
        "stopped_before_training": any(
            c["component"] == "TrainingDataGate" and c["status"] == "failed" for c in components
        ),
        "serving_check": serving_check_result(_single(outputs_by_node, "ServingCheck", "blessing")),
        "push_held_because": push_gate.get_string_custom_property(HELD_BECAUSE) or None
        if (push_gate := _single(outputs_by_node, "PushGate", "blessing"))
        else None,
    }


def serving_check_result(blessing: Artifact | None) -> dict | None:
    """The serving check's figures (load time, p99, peak memory) and, when it failed, why."""
    if blessing is None:
        return None
    # Through TFX's file layer: the ModelCard step reads it on Kubeflow too, from the object store.
    report_path = os.path.join(blessing.uri, SERVING_CHECK_REPORT_FILE)
    figures = {}
    if fileio.exists(report_path):
        with fileio.open(report_path) as report_file:
            figures = json.loads(report_file.read())
    return {
        **{
            key: figures[key]
            for key in ("trips", "load_seconds", "p99_seconds", "peak_memory_mb")
            if key in figures
        },
        "passed": bool(blessing.get_int_custom_property("blessed")),
        "not_blessed_because": blessing.get_string_custom_property(NOT_SERVABLE_BECAUSE) or None,
    }


def model_card_path(card: Artifact | None) -> str | None:
    """The run's model card page: its copy beside the pushed model, else the ModelCard step's own."""
    if card is None:
        return None
    return card.get_string_custom_property(MODEL_CARD_STORED_AT) or str(
        Path(card.uri) / folders.MODEL_CARD_HTML_FILE
    )


def serving_directory(serving_model_dir: Path) -> dict:
    """What serving would load now, and every folder that is not a whole version, in place or moved
    aside, with why (registry/versions.py)."""
    return versions.report(serving_model_dir)


def _push(components: list[dict], pushed: Artifact | None) -> tuple[str | None, str | None]:
    """(where this run pushed a model, or None; why it pushed none, when it says)."""
    status = next((c["status"] for c in components if c["component"] == "Pusher"), None)
    if status == "cached":
        return (
            None,
            "the Pusher's inputs were unchanged, so its result came from the cache: nothing new to push",
        )
    if pushed is None:
        return None, None
    if pushed.get_int_custom_property("pushed"):
        return pushed.get_string_custom_property("pushed_destination"), None
    return None, pushed.get_string_custom_property(NOT_PUSHED_BECAUSE) or None


def failed_before_any_component(pipeline_name: str, error: BaseException) -> dict:
    """The summary of a run that failed before ML Metadata recorded it: it replaces the previous run's,
    which must not go on saying `succeeded: true`."""
    return dict(_empty(pipeline_name), state=FAILED, error=f"{type(error).__name__}: {error}")


def running(pipeline_name: str, span: int, started_at: str) -> dict:
    """What run_summary.json says while a run goes (and after, if the run is killed): the previous run's
    summary must not go on saying it succeeded."""
    return dict(_empty(pipeline_name), state=RUNNING, span=span, started_at=started_at, pid=os.getpid())


def _empty(pipeline_name: str) -> dict:
    """A summary with every key readers expect, and nothing run."""
    return {
        "pipeline": pipeline_name,
        "run_id": None,
        "state": None,
        "succeeded": False,
        "components": [],
        "evaluation": None,
        "slice_report": None,
        "pushed_model": None,
        "not_pushed_because": None,
        "model_card": None,
        "data_validation": None,
        "stopped_before_training": False,
        "serving_check": None,
        "push_held_because": None,
    }


def write_summary(summary: dict, path: Path) -> None:
    """Writes the summary whole or not at all (a full disk must not leave half a file)."""
    write_atomically(path, (json.dumps(summary, indent=2) + "\n").encode())


def print_summary(summary: dict, summary_path: Path, out=None) -> None:
    """The human-readable summary: component table, evaluation headline, pushed model, anomalies."""

    def say(line=""):
        print(line, file=out or sys.stdout)

    say()
    say(f"{'component':<32} {'status':<8} {'seconds':>8}")
    say(f"{'-' * 32} {'-' * 8} {'-' * 8}")
    for component in summary["components"]:
        say(f"{component['component']:<32} {component['status']:<8} {component['seconds']:>8.1f}")
    say()
    if summary["evaluation"]:
        _print_evaluation(summary["evaluation"], say)
    if summary.get("slice_report"):
        say(f"Slice report: {summary['slice_report']}")
    _print_serving_check(summary.get("serving_check"), say)
    if summary.get("error"):
        say(f"Run FAILED before any component was recorded: {summary['error']}")
    if summary.get("state") == INTERRUPTED:
        say("Run INTERRUPTED: a component never finished (its process was stopped); the next run resumes it.")
    if summary["pushed_model"]:
        say(f"Pushed model: {summary['pushed_model']}")
    elif summary.get("not_pushed_because"):
        say(f"Pushed model: none: {summary['not_pushed_because']}: not pushed")
    else:
        say("Pushed model: none (nothing pushed in this run)")
    serving = summary.get("serving_directory")
    if serving:
        production = serving["production_version"]
        say(f"In production: {'version ' + production if production else 'nothing yet'} ({serving['path']})")
        for key, title in (("not_whole", "Not whole"), ("quarantined", "Moved to .quarantine/")):
            if serving.get(key):
                say(f"{title} ({len(serving[key])}; never production, kept for inspection):")
                for found in serving[key]:
                    say(f"  {found['path']}: {found['reason']}")
    if summary.get("model_card"):
        say(f"Model card: {summary['model_card']}")
    if summary.get("push_held_because"):
        say(f"Push HELD, production unchanged: {summary['push_held_because']}")
    validation = summary.get("data_validation")
    if validation:
        _print_data_validation(validation, say)
    if summary.get("stopped_before_training"):
        say(
            "Run STOPPED before training: the training data has the anomalies above. Nothing was trained or pushed."
        )
    say(f"Summary written to {summary_path}")


def _print_evaluation(evaluation: dict, say) -> None:
    """The evaluation's headline, production's on the same data, the key slice, and the verdict."""
    metrics = evaluation["metrics"]
    headline = ", ".join(f"{name} {metrics[name]:.3f}" for name in ("auc", "accuracy") if name in metrics)
    count = int(metrics.get("example_count", 0))
    sample = evaluation.get("sample")
    if sample and sample["examples_judged"] < sample["examples_in_window"]:
        say(
            f"Evaluation on a seeded sample of {count} of the {sample['examples_in_window']} "
            f"held-out examples: {headline}"
        )
    else:
        say(f"Evaluation on {count} held-out examples: {headline}")
    baseline = evaluation["baseline"]
    if baseline["source"] == "production" and evaluation["baseline_metrics"]:
        metrics = evaluation["baseline_metrics"]
        say(
            f"Production model (version {baseline['version']}) on the same data: "
            + ", ".join(f"{n} {metrics[n]:.3f}" for n in ("auc", "accuracy") if n in metrics)
        )
    elif baseline["source"] != "none":
        say("Nothing in production yet: the candidate was judged on the value thresholds alone.")
    if evaluation.get("reused_from"):
        say(
            f"The candidate is the production model: its evaluation in {evaluation['reused_from']} was reused."
        )
    key_slice = evaluation.get("key_slice") or {}
    if key_slice.get("metrics"):
        metrics = key_slice["metrics"]
        say(
            f"Key slice {key_slice['slice']} ({int(metrics.get('example_count', 0))} examples): "
            + ", ".join(f"{n} {metrics[n]:.3f}" for n in ("auc", "accuracy") if n in metrics)
        )
    thin = evaluation.get("too_thin_to_bless")
    if thin:
        say(
            f"The evaluation is too thin to bless: {thin['examples']} examples judged, {thin['needs']} needed "
            "(a longer evaluation window, or more data in its spans)."
        )
    if evaluation["blessed"]:
        say("Model BLESSED.")
    else:
        say("Model NOT blessed, because:")
        for failure in evaluation["not_blessed_because"]:
            say(f"  - {describe_failure(failure)}")


DISTANCES_SHOWN = 5


def _print_serving_check(check: dict | None, say) -> None:
    if check and check["passed"]:
        say(
            f"Serving check passed: loaded in {check['load_seconds']:.1f} s, {check['trips']} held-out trips "
            f"answered as in the model, p99 {check['p99_seconds'] * 1000:.0f} ms, peak memory "
            f"{check['peak_memory_mb']:.0f} MB"
        )
    elif check:
        say(f"Serving check FAILED: {check['not_blessed_because']}")


def _print_units(validation: dict, say) -> None:
    """Each span the units check compared (and the serving logs): every amount's factor, ABOVE naming the
    statistics that crossed; then the reference, what was recorded, and the accepted changes that applied."""
    rows = validation.get("unit_changes") or []
    units = validation.get("units_check") or {}
    if rows:
        bounds = units.get("bounds") or {}
        say(
            f"Units, each amount against the others per trip (median x{bounds.get('max_factor', 0):.2f} or more "
            "on few rows; KS and share outside the reference's 99 %, bounds by rows):"
        )
    for comparison in dict.fromkeys(row["comparison"] for row in rows):
        cells = [
            f"{r['feature']} x{r['factor']:.2f}"
            + (f" ABOVE ({', '.join(r['crossed'])})" if r["crossed"] else "")
            for r in rows
            if r["comparison"] == comparison
        ]
        say(f"  {comparison}: " + ", ".join(cells))
    if units:
        say(
            f"  Reference: {units['reference']}. New spans: {', '.join(map(str, units['new_spans'])) or 'none'}; "
            f"recorded as validated: {', '.join(map(str, units['recorded_spans'])) or 'none'}."
        )
    for line in accepted_change_lines(validation):
        say(f"  {line}")


def accepted_change_lines(validation: dict) -> list[str]:
    """One line per accepted change of units a run's data validation applied (who, when, why, the span),
    each followed by the drift or skew distances it explained; [] when none applied."""
    units = validation.get("units_check") or {}
    lines = [
        f"Accepted change applied: {change['column']} x{change['factor']:.3f} from span {change['span']}, "
        f"accepted by {change['accepted_by']} on {change['accepted_at']}: {change['reason']}"
        for change in units.get("accepted_changes") or []
    ]
    lines += [
        f"  explains {distance['split']}/{distance['feature']}: {distance['measure']} {distance['value']:.3f} "
        f"> threshold {distance['threshold']:.3f} (not an anomaly: the column changed, as accepted)"
        for distance in units.get("accepted_distances") or []
    ]
    return lines


def _print_data_validation(validation: dict, say) -> None:
    """The largest drift and skew distances against their thresholds, then every anomaly."""
    for comparison, title in (
        ("drift", f"Drift, {pipeline_config.CURRENT_SPAN_SPLIT} vs {pipeline_config.PREVIOUS_SPAN_SPLIT}"),
        ("skew", "Skew, serving logs vs training data"),
    ):
        rows = [r for r in validation["distances"] if r["comparison"] == comparison]
        if rows:
            say(f"{title} (largest of {len(rows)} features; `make drift` shows all):")
            for row in rows[:DISTANCES_SHOWN]:
                flag = "  ABOVE" if row["value"] > row["threshold"] else ""
                say(
                    f"  {row['feature']:<24} {row['measure']:<15} {row['value']:.3f} (threshold {row['threshold']:.3f}){flag}"
                )
    _print_units(validation, say)
    if validation["distances_not_gated"]:
        say(f"Distances recorded but not gated ({validation['distances_not_gated']}).")
    anomalies = validation["anomalies"]
    if anomalies:
        say(f"Data anomalies ({len(anomalies)}):")
        for anomaly in anomalies:
            say(f"  - {validation_results.describe_anomaly(anomaly)}")
    else:
        say("Data validation: no anomalies.")
