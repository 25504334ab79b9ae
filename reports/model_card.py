"""A pushed model's card: what it is for, what data made it, how it does on each slice, its validation,
tuning, limits and lineage, read from the run's artifacts, and written as the Model Card Toolkit's JSON.

`gather` reads the facts (plain JSON-safe data) from the artifacts one run's components wrote;
`to_model_card` maps them onto the Model Card Toolkit's schema v0.0.2 (vendored in model_card_schema/,
with its source and licence), and `validate` checks a card against it with jsonschema_rs. The HTML page is
reports/model_card_html.py, rendered from the same facts.

The schema has no field for validation results, tuning or lineage, and its top level admits no other
keys: they go where its fields fit (each as a named metric, hyperparameters in the architecture, lineage
in the version and the datasets), and the HTML shows them in full.
"""

import datetime
import hashlib
import json
import os
import re
from pathlib import Path

import jsonschema_rs
import tensorflow as tf
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.io import fileio
from tfx.types.artifact import Artifact

from config import folders
from config import pipeline as pipeline_config
from models import features
from models import model as keras_model
from reports import evaluation_results, run_summary, validation_results
from reports.drift import span_label

SCHEMA_PATH = Path(__file__).parent / "model_card_schema" / "model_card.schema.json"
SCHEMA_VERSION = "0.0.2"
MODEL_NAME = pipeline_config.PIPELINE_NAME
THRESHOLD = evaluation_results.DECISION_THRESHOLD
HEADLINE = ("auc", "binary_accuracy", "precision", "recall")
FALSE_POSITIVE_RATE = f"fall_out@{THRESHOLD:g}"
FALSE_NEGATIVE_RATE = f"miss_rate@{THRESHOLD:g}"
NOT_TUNED = "not tuned: today's settings"
FROM_PRODUCTION = "production"  # a baseline's source when a production model was compared (ProductionModel)
# Where the Tuner writes its best hyperparameters (TFX's Tuner executor), inside its artifact.
BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.txt"

OVERVIEW = (
    "Predicts whether a Chicago taxi trip ends with a big tip, from what is known when the trip is booked "
    "and driven (pickup and dropoff, time, fare, distance, payment type, company)."
)
INTENDED_USERS = (
    "Dispatch and driver-facing product teams ranking or flagging trips, and the people who review this model.",
)
INTENDED_USES = (
    "Rank or flag trips by their probability of a big tip, for decisions that tolerate errors: which trips "
    "to highlight, a daily list of likely big tippers, comparing a release with production offline.",
    "Not for decisions about an individual driver's or rider's pay, rating or access: the label reflects "
    "recorded tips only, and its rates differ by slice (see the fairness rates).",
)
LABEL_DEFINITION = (
    f"`{features.LABEL}` is 1 when a trip's tip is more than {features.BIG_TIPPER_PERCENT_OF_FARE} % of its "
    "fare, compared in whole cents (a tip of exactly "
    f"{features.BIG_TIPPER_PERCENT_OF_FARE} % is not a big tip); derived from `{features.TIPS}` and "
    f"`{features.FARE}` in models/preprocessing.py. `{features.TIPS}` is never a model input."
)


def _architecture(hyperparameters: dict) -> str:
    """The network as models/model.py builds it with these hyperparameters (its own widths where unset)."""
    widths = (
        hyperparameters.get(keras_model.FIRST_LAYER_UNITS, keras_model.HIDDEN_UNITS[0]),
        hyperparameters.get(keras_model.SECOND_LAYER_UNITS, keras_model.HIDDEN_UNITS[1]),
    )
    embedding = hyperparameters.get(keras_model.EMBEDDING, keras_model.EMBEDDING_DIMENSIONS)
    return (
        "Keras network (models/model.py) on Transform's features: embeddings (width "
        f"{embedding}) of the categories and of quantile buckets of coordinates and amounts, plus the scaled "
        f"amounts, into a {widths[0]}-{widths[1]} ReLU network with dropout {keras_model.DROPOUT} and a "
        "sigmoid output."
    )


STANDING_LIMITS = (
    "Tips paid in cash are mostly not recorded in the source data, so non-card trips look like small "
    "tippers whatever the rider did: the key slice (card payments) is the one the label means most on.",
    "Trained on a rolling three-year window of Chicago trips; behaviour outside Chicago or after a change "
    "in fares or tipping screens is unknown until the next spans are validated and evaluated.",
)


# --- reading the facts ----------------------------------------------------------------------------


def _read(uri: str, mode: str = "r"):
    """A file of an artifact, local or in the object store a Kubeflow run writes to."""
    with fileio.open(uri, mode) as handle:
        return handle.read()


SPAN_FILE = re.compile(rf"{re.escape(pipeline_config.SPAN_FOLDER_PREFIX)}(\d+)-")


def window_rows(example_gen_input: str, span: int, split: str) -> dict[str, int]:
    """Half-year -> rows of `split` for span `span`, oldest first, from the counts the input checks wrote
    beside ExampleGen's input (inputs/layout.py); {} when they are not there to read."""
    path = os.path.join(
        example_gen_input,
        f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}",
        split,
        pipeline_config.CHECKED_ROWS_FILE,
    )
    try:
        counts = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    by_span: dict[int, int] = {}
    for name, rows in counts.items():
        if match := SPAN_FILE.match(name):
            by_span[int(match.group(1))] = by_span.get(int(match.group(1)), 0) + int(rows)
    return {span_label(number): by_span[number] for number in sorted(by_span)}


def _split_rows(statistics: Artifact, split: str) -> int | None:
    try:
        return validation_results.num_examples(
            stats_artifact_utils.load_statistics(statistics, split).proto()
        )
    except (OSError, ValueError):  # a split the statistics lack
        return None


def _data(span: int, example_gen_input: str, statistics: Artifact, sample: Artifact | None) -> dict:
    """Each window's half-years and rows: ExampleGen's rows from the statistics, per half-year from the
    input checks' counts."""
    windows = {}
    for role, split in (
        ("training", pipeline_config.TRAIN_SPLIT),
        ("evaluation", pipeline_config.EVAL_SPLIT),
    ):
        per_half_year = window_rows(example_gen_input, span, split)
        windows[role] = {
            "split": split,
            "half_years": list(per_half_year) or ["unknown"],
            "rows_per_half_year": per_half_year,
            "rows": _split_rows(statistics, split),
        }
    judged = sample.get_int_custom_property(evaluation_results.EXAMPLES_KEPT) if sample else None
    windows["evaluation"]["examples_judged"] = judged
    return {"span": span, **windows}


def _metric_rows(slice_row: dict | None, against_production: bool) -> list[dict]:
    if slice_row is None:
        return []
    baseline = (slice_row.get("baseline_metrics") or {}) if against_production else {}
    rows = []
    for metric in HEADLINE:
        value, production = slice_row["metrics"].get(metric), baseline.get(metric)
        rows.append(
            {
                "metric": metric,
                "heading": evaluation_results.SCALAR_METRICS[metric],
                "candidate": value,
                "production": production,
                "change": None if value is None or production is None else value - production,
            }
        )
    return rows


def _metrics(slices: dict) -> dict:
    """Overall and key-slice headline metrics, candidate against the baseline it was judged with."""
    by_name = {row["slice"]: row for row in slices["slices"]}
    key = by_name.get(slices["key_slice"])
    production = slices["baseline"].get("source") == FROM_PRODUCTION
    return {
        "baseline": slices["baseline"],
        "overall": {
            "slice": evaluation_results.OVERALL,
            "examples": by_name.get(evaluation_results.OVERALL, {}).get("examples"),
            "rows": _metric_rows(by_name.get(evaluation_results.OVERALL), production),
        },
        "key_slice": {
            "slice": slices["key_slice"],
            "examples": key["examples"] if key else 0,
            "rows": _metric_rows(key, production),
        },
    }


def _fairness(slices: dict) -> dict:
    """False positive and false negative rates at the decision threshold, per slice, from TFMA's results."""
    rows = []
    production = slices["baseline"].get("source") == FROM_PRODUCTION
    for row in sorted(
        slices["slices"], key=lambda r: (r["spec"] != evaluation_results.OVERALL, r["spec"], r["slice"])
    ):
        baseline = (row.get("baseline_metrics") or {}) if production else {}
        rows.append(
            {
                "slice": row["slice"],
                "spec": row["spec"],
                "examples": row["examples"],
                "few_examples": row["small"],
                "is_key_slice": row["is_key_slice"],
                "false_positive_rate": row["metrics"].get(FALSE_POSITIVE_RATE),
                "false_negative_rate": row["metrics"].get(FALSE_NEGATIVE_RATE),
                "production_false_positive_rate": baseline.get(FALSE_POSITIVE_RATE),
                "production_false_negative_rate": baseline.get(FALSE_NEGATIVE_RATE),
            }
        )
    return {"threshold": THRESHOLD, "min_slice_examples": slices["min_slice_examples"], "slices": rows}


def _validation(slices: dict, anomalies: Artifact, infra_blessing: Artifact) -> dict:
    rows = validation_results.anomaly_rows(validation_results.read_anomalies(anomalies))
    return {
        "evaluator": {"blessed": slices["blessed"], "failures": slices["failures"]},
        "data": {
            "anomalies": [validation_results.describe_anomaly(row) for row in rows],
            "blocking": [
                validation_results.describe_anomaly(row)
                for row in rows
                if row["action"] != validation_results.HOLD_PUSH
            ],
        },
        "serving_check": run_summary.serving_check_result(infra_blessing),
    }


def read_hyperparameters(hyperparameters: Artifact | None) -> dict | None:
    """The Tuner's best hyperparameters (name -> value), or None when the run did not tune.

    Read defensively: a missing or unreadable file is "not tuned", never a failed card.
    """
    if hyperparameters is None:
        return None
    try:
        config = json.loads(_read(os.path.join(hyperparameters.uri, BEST_HYPERPARAMETERS_FILE)))
    except (OSError, ValueError, tf.errors.OpError):
        return None
    values = config.get("values", config) if isinstance(config, dict) else None
    return dict(values) if isinstance(values, dict) and values else None


def _tuning(hyperparameters: Artifact | None, training_settings: dict) -> dict:
    tuned = read_hyperparameters(hyperparameters)
    if tuned is None:
        return {"tuned": False, "summary": NOT_TUNED, "hyperparameters": training_settings}
    return {
        "tuned": True,
        "summary": "tuned by the Tuner: its best trial's hyperparameters",
        "hyperparameters": tuned,
    }


def _key_slice_limit(metrics: dict, fairness: dict, min_evaluation_examples: int) -> str:
    """The key slice against the whole: its share of the evaluation, its AUC and FPR against overall's, and
    whether it is thinner than a blessing needs."""
    key, overall = metrics["key_slice"], metrics["overall"]
    auc = {
        part: next((r["candidate"] for r in metrics[part]["rows"] if r["metric"] == "auc"), None)
        for part in ("key_slice", "overall")
    }
    rates = {row["slice"]: row["false_positive_rate"] for row in fairness["slices"]}
    thin = key["examples"] < min_evaluation_examples
    return (
        f"{'Thin key slice' if thin else 'Key slice'}: {key['slice']} holds {int(key['examples']):,} of the "
        f"{int(overall['examples'] or 0):,} evaluation examples, the trips whose tips are recorded and so the "
        f"ones where a decision means something; there AUC is {_number(auc['key_slice'])} against "
        f"{_number(auc['overall'])} overall, and FPR@{THRESHOLD:g} {_number(rates.get(key['slice']))} against "
        f"{_number(rates.get(overall['slice']))}."
        + (
            f" It has fewer than the {min_evaluation_examples:,} examples a blessing needs overall: its metrics "
            "move by several points between samples."
            if thin
            else ""
        )
    )


def _limits(metrics: dict, fairness: dict, data: dict, min_evaluation_examples: int) -> list[str]:
    """What a reader must know before relying on the model: the key slice, thin slices, a thin evaluation,
    and the standing limits of the data."""
    limits = [_key_slice_limit(metrics, fairness, min_evaluation_examples)]
    few = [row["slice"] for row in fairness["slices"] if row["few_examples"]]
    if few:
        limits.append(
            f"{len(few)} slice(s) have fewer than {fairness['min_slice_examples']} evaluation examples, so their "
            f"rates are noisy and not gated: {', '.join(few[:8])}{' …' if len(few) > 8 else ''}."
        )
    judged = data["evaluation"]["examples_judged"]
    if judged is not None and judged < min_evaluation_examples:
        limits.append(f"The evaluation judged {judged} examples, fewer than {min_evaluation_examples}.")
    return [*limits, *STANDING_LIMITS]


def _model(pushed_model: Artifact) -> dict:
    pushed = bool(pushed_model.get_int_custom_property("pushed"))
    version = pushed_model.get_string_custom_property("pushed_version") if pushed else ""
    return {
        "name": MODEL_NAME,
        "pushed": pushed,
        "version": version,
        "path": pushed_model.get_string_custom_property("pushed_destination") if pushed else "",
        "date": datetime.datetime.fromtimestamp(int(version), datetime.timezone.utc).date().isoformat()
        if version.isdigit()
        else "",
        "not_pushed_because": ""
        if pushed
        else pushed_model.get_string_custom_property(run_summary.NOT_PUSHED_BECAUSE),
    }


def schema_version(schema: Artifact) -> str:
    """The curated schema's content hash, as its snapshot folder is named (inputs/layout.py)."""
    return hashlib.sha256(_read(os.path.join(schema.uri, "schema.pbtxt"), "rb")).hexdigest()[:16]


def gather(
    *,
    pushed_model: Artifact,
    slice_report: Artifact,
    examples: Artifact,
    example_gen_input: str,
    statistics: Artifact,
    schema: Artifact,
    anomalies: Artifact,
    infra_blessing: Artifact,
    sample: Artifact | None = None,
    hyperparameters: Artifact | None = None,
    training_settings: dict,
    code_fingerprints: dict,
    min_evaluation_examples: int,
) -> dict:
    """Every fact the card shows, from one run's artifacts (the SliceReport's slice_metrics.json holds
    TFMA's results); JSON-safe."""
    slices = json.loads(_read(os.path.join(slice_report.uri, folders.SLICE_METRICS_FILE)))
    model = _model(pushed_model)
    data = _data(examples.get_int_custom_property("span"), example_gen_input, statistics, sample)
    metrics, fairness = _metrics(slices), _fairness(slices)
    return {
        "model": model,
        "intended_use": {"overview": OVERVIEW, "users": list(INTENDED_USERS), "uses": list(INTENDED_USES)},
        "label": LABEL_DEFINITION,
        "data": data,
        "metrics": metrics,
        "fairness": fairness,
        "validation": _validation(slices, anomalies, infra_blessing),
        "tuning": _tuning(hyperparameters, training_settings),
        "limits": _limits(metrics, fairness, data, min_evaluation_examples),
        "lineage": {
            "span": data["span"],
            "schema_version": schema_version(schema),
            "code_fingerprints": code_fingerprints,
            "pushed_version": model["version"],
            "evaluation": slices["evaluation_uri"],
            "slice_report": os.path.join(slice_report.uri, folders.SLICE_REPORT_FILE),
        },
    }


# --- the Model Card Toolkit's JSON --------------------------------------------------------------------


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _performance_metrics(facts: dict) -> list[dict]:
    """Headline metrics (and production's, as their own entries), fairness rates per slice, and the
    validation verdicts: the schema's one list of typed values."""
    found = []
    baseline = facts["metrics"]["baseline"]
    production = (
        f"production version {baseline['version']}" if baseline.get("source") == FROM_PRODUCTION else ""
    )
    for part in ("overall", "key_slice"):
        block = facts["metrics"][part]
        for row in block["rows"]:
            found.append(
                {"type": row["heading"], "value": _number(row["candidate"]), "slice": block["slice"]}
            )
            if production and row["production"] is not None:
                found.append(
                    {
                        "type": f"{row['heading']} ({production})",
                        "value": _number(row["production"]),
                        "slice": block["slice"],
                    }
                )
    for row in facts["fairness"]["slices"]:
        for name, key in (
            ("false positive rate", "false_positive_rate"),
            ("false negative rate", "false_negative_rate"),
        ):
            found.append(
                {"type": f"{name} @{THRESHOLD:g}", "value": _number(row[key]), "slice": row["slice"]}
            )
    validation = facts["validation"]
    found.append(
        {
            "type": "Evaluator blessing",
            "value": "blessed" if validation["evaluator"]["blessed"] else "not blessed",
        }
    )
    found.append({"type": "ExampleValidator anomalies", "value": str(len(validation["data"]["anomalies"]))})
    check = validation["serving_check"] or {}
    found.append(
        {"type": "serving check (InfraBlessing)", "value": "passed" if check.get("passed") else "failed"}
    )
    for key in ("p99_seconds", "peak_memory_mb", "load_seconds"):
        if key in check:
            found.append({"type": f"serving check {key}", "value": f"{check[key]:.4g}"})
    return found


def to_model_card(facts: dict) -> dict:
    """The facts as a Model Card Toolkit card (schema v0.0.2)."""
    model, data, lineage, tuning = facts["model"], facts["data"], facts["lineage"], facts["tuning"]
    fingerprints = ", ".join(
        f"{name} {value}" for name, value in sorted(lineage["code_fingerprints"].items())
    )
    version = {"name": model["version"] or "not pushed", "diff": _diff(facts)}
    if model["date"]:
        version["date"] = model["date"]
    hyperparameters = ", ".join(
        f"{name}={value}" for name, value in sorted(tuning["hyperparameters"].items())
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": model["name"],
            "overview": facts["intended_use"]["overview"],
            "documentation": f"Label: {facts['label']} Lineage: span {lineage['span']}, schema "
            f"{lineage['schema_version']}, code {fingerprints}, pushed version {model['version'] or 'none'}.",
            "version": version,
            "path": model["path"],
            "references": [{"reference": _as_uri(lineage[key])} for key in ("slice_report", "evaluation")],
        },
        "model_parameters": {
            "model_architecture": f"{_architecture(tuning['hyperparameters'])} Hyperparameters ({tuning['summary']}): {hyperparameters}.",
            "data": [
                _dataset("training", data["training"], data["span"], lineage["schema_version"]),
                _dataset("evaluation", data["evaluation"], data["span"], lineage["schema_version"]),
            ],
            "input_format": f"serialized tf.Example of a trip's raw columns, without `{features.TIPS}` "
            "(signature serving_default)",
            "output_format": "big_tipper_probability: float in [0, 1]",
        },
        "quantitative_analysis": {"performance_metrics": _performance_metrics(facts)},
        "considerations": {
            "users": [{"description": text} for text in facts["intended_use"]["users"]],
            "use_cases": [{"description": text} for text in facts["intended_use"]["uses"]],
            "limitations": [{"description": text} for text in facts["limits"]],
        },
    }


def _as_uri(location: str) -> str:
    """A local path as a file:// URI (the schema's references are URIs); a URI as it is."""
    return Path(location).as_uri() if location.startswith("/") else location


def _dataset(role: str, window: dict, span: int, schema: str) -> dict:
    rows = "unknown" if window["rows"] is None else f"{window['rows']:,}"
    judged = window.get("examples_judged")
    return {
        "name": f"{role} window of span {span}",
        "description": f"Chicago taxi trips {window['half_years'][0]} to {window['half_years'][-1]} "
        f"(split `{window['split']}`): {rows} rows"
        + (f", {judged:,} judged by the Evaluator" if judged is not None else "")
        + f"; validated against schema {schema}.",
    }


def _diff(facts: dict) -> str:
    baseline = facts["metrics"]["baseline"]
    if not facts["model"]["pushed"]:
        return f"not pushed: {facts['model']['not_pushed_because'] or 'no reason recorded'}"
    if baseline.get("source") == FROM_PRODUCTION:
        return f"replaces production version {baseline['version']}"
    return "the first version: nothing was in production"


def validate(card: dict) -> None:
    """Raises jsonschema_rs.ValidationError when `card` does not follow the schema: its message says what
    is wrong, its `instance_path` names the field."""
    # jsonschema_rs (Rust) rather than jsonschema: jsonschema's import compiles an RFC 3987 grammar with
    # lark, 1.2 s of every run that writes a card; jsonschema_rs imports in 20 ms.
    jsonschema_rs.Draft7Validator(json.loads(SCHEMA_PATH.read_text()), validate_formats=True).validate(card)
