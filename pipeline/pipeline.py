"""The TFX pipeline, built by one function from explicit arguments (no globals, no environment)."""

import dataclasses
from collections.abc import Mapping, Sequence

import tensorflow_data_validation as tfdv
from ml_metadata.proto import metadata_store_pb2

# Not `tfx.v1`: it also imports the Google Cloud extensions (aiplatform: seconds per process), unused here.
from tfx.components import (
    BulkInferrer,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import (
    bulk_inferrer_pb2,
    example_gen_pb2,
    pusher_pb2,
    range_config_pb2,
    trainer_pb2,
    transform_pb2,
)

from components import code_version
from components.csv_example_gen import CsvExampleGen
from components.data_gates import PushGate, TrainingDataGate
from components.data_validation import ExampleValidator
from components.evaluation_sample import EvaluationSample
from components.evaluator import Evaluator
from components.model_card import ModelCard
from components.production_model import ProductionModel
from components.pusher import Pusher
from components.serving_check import ServingCheck
from components.slice_report import SliceReport
from components.tuner import Tuner
from config import pipeline as pipeline_config
from models import model
from models.signatures import EXAMPLES_SIGNATURE
from pipeline.evaluation import build_eval_config


def _example_gen_input_config(*splits: str) -> example_gen_pb2.Input:
    """Every split comes from the same span folder, so ExampleGen resolves one {SPAN} for all."""
    return example_gen_pb2.Input(
        splits=[
            example_gen_pb2.Input.Split(
                name=split, pattern=f"{pipeline_config.SPAN_FOLDER_PREFIX}{{SPAN}}/{split}/*.csv"
            )
            for split in splits
        ]
    )


@dataclasses.dataclass(frozen=True)
class Locations:
    """Where a run reads and writes, as paths or URIs its components' executors can open."""

    pipeline_root: str
    example_gen_input: str  # span-N/<split>/*.csv (inputs/layout.py)
    schema_path: str  # the curated schema, the data contract
    # Pushed models, a numbered folder each: the latest is the model in production.
    serving_model_dir: str
    serving_logs: str | None = None  # a folder of request CSVs; None: skew is not checked
    # The data reference kept between runs: the spans validated so far and the changes people accepted
    # (components/data_reference.py). None: each run's training window is its reference, and nothing is kept.
    data_reference_dir: str | None = None
    # ML Metadata; None leaves it to the orchestrator (Kubeflow brings its own).
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None


def create_pipeline(
    *,
    locations: Locations,
    data: pipeline_config.Data,
    training: pipeline_config.Training,
    evaluation: pipeline_config.Evaluation,
    orchestration: pipeline_config.Orchestration,
) -> Pipeline:
    """ExampleGen -> statistics and schemas -> validation -> Transform -> (Tuner, when `training.tune`) ->
    Trainer -> Evaluator and ServingCheck -> Pusher -> ModelCard.

    One function per stage below builds its components; this one wires them into a TFX pipeline.
    TFX's cache key holds module and class paths, not the code behind them: every component that runs this
    project's code carries its fingerprint (components/code_version.py), Transform and Trainer that of
    `preprocessing_fn`'s and `run_fn`'s modules, so edited code is never served from the cache.
    """
    ingested = _ingestion_and_statistics(locations, data)
    example_validator, training_data_gate = _validation(ingested, locations, data)
    transform, tuner, trainer = _training(ingested, training_data_gate, data, training)
    evaluation_and_push = _evaluation_and_push(
        ingested, example_validator, trainer, locations.serving_model_dir, data, evaluation
    )
    components = [
        *ingested.nodes,
        example_validator,
        training_data_gate,
        transform,
        *([tuner] if tuner else []),
        trainer,
        *evaluation_and_push,
    ]
    components.append(_model_card(components, trainer, locations, training, evaluation))
    _add_component_beam_pipeline_args(components, orchestration.component_beam_pipeline_args)
    return Pipeline(
        pipeline_name=orchestration.pipeline_name,
        pipeline_root=locations.pipeline_root,
        components=components,
        enable_cache=orchestration.enable_cache,
        metadata_connection_config=locations.metadata_connection_config,
        beam_pipeline_args=list(orchestration.beam_pipeline_args),
    )


@dataclasses.dataclass(frozen=True)
class _Ingested:
    """The span's examples and statistics, the curated schema and, when there are serving logs, theirs."""

    example_gen: CsvExampleGen
    statistics_gen: StatisticsGen
    curated_schema_gen: ImportSchemaGen
    nodes: list  # every node of this stage, in pipeline order
    serving_example_gen: CsvExampleGen | None = None
    serving_statistics_gen: StatisticsGen | None = None


def _ingestion_and_statistics(locations: Locations, data: pipeline_config.Data) -> _Ingested:
    """ExampleGen over one span (`data.span`, else the newest) and its statistics; the schemas; and the
    serving logs' own ExampleGen and statistics when there are logs."""
    range_config = (
        range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=data.span, end_span_number=data.span)
        )
        if data.span is not None
        else None
    )
    example_gen = CsvExampleGen(
        input_base=locations.example_gen_input,
        input_config=_example_gen_input_config(
            data.train_split, data.eval_split, data.current_span_split, data.previous_span_split
        ),
        range_config=range_config,
        shuffle_seed=pipeline_config.EXAMPLES_SHUFFLE_SEED,
    )
    stats_options = tfdv.StatsOptions(num_histogram_buckets=data.statistics_histogram_buckets)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"], stats_options=stats_options)
    # Inferred from this span's statistics: kept to compare with (and help update) the curated schema.
    inferred_schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
    # The data contract: the pipeline validates and transforms against the curated, checked-in schema.
    curated_schema_gen = ImportSchemaGen(schema_file=locations.schema_path)
    nodes = [example_gen, statistics_gen, inferred_schema_gen, curated_schema_gen]
    if locations.serving_logs is None:
        return _Ingested(example_gen, statistics_gen, curated_schema_gen, nodes)
    # Their own ExampleGen: new request logs must not make Transform and Trainer run again.
    serving_example_gen = CsvExampleGen(
        input_base=locations.serving_logs,
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name=pipeline_config.SERVING_SPLIT, pattern="*.csv")]
        ),
        shuffle_seed=pipeline_config.EXAMPLES_SHUFFLE_SEED,
    ).with_id("ServingLogsExampleGen")
    serving_statistics_gen = StatisticsGen(
        examples=serving_example_gen.outputs["examples"], stats_options=stats_options
    ).with_id("ServingStatisticsGen")
    return _Ingested(
        example_gen,
        statistics_gen,
        curated_schema_gen,
        [*nodes, serving_example_gen, serving_statistics_gen],
        serving_example_gen,
        serving_statistics_gen,
    )


def _validation(
    ingested: _Ingested, locations: Locations, data: pipeline_config.Data
) -> tuple[ExampleValidator, TrainingDataGate]:
    """ExampleValidator checks the span against the schema, its current split against its previous one
    (drift), the serving requests against the training split (skew), and every new span's units against
    the reference; the gate stops the run before Transform on an anomaly in the training data (anomalies in
    serving data stop only the push)."""
    serving = ingested.serving_statistics_gen
    example_validator = ExampleValidator(
        statistics=ingested.statistics_gen.outputs["statistics"],
        schema=ingested.curated_schema_gen.outputs["schema"],
        serving_statistics=serving.outputs["statistics"] if serving else None,
        examples=ingested.example_gen.outputs["examples"],
        data=data,
        example_gen_input=locations.example_gen_input,
        serving_logs=locations.serving_logs,
        data_reference_dir=locations.data_reference_dir,
        accepted_changes_key=data.accepted_changes_key,
    )
    return example_validator, TrainingDataGate(anomalies=example_validator.outputs["anomalies"])


def _training(
    ingested: _Ingested,
    training_data_gate: TrainingDataGate,
    data: pipeline_config.Data,
    training: pipeline_config.Training,
) -> tuple[Transform, Tuner | None, Trainer]:
    """Transform (after the training-data gate), the Tuner when `training.tune`, and the Trainer (of the
    Tuner's best hyperparameters, if any), on the curated schema."""
    schema = ingested.curated_schema_gen.outputs["schema"]
    transform = Transform(
        examples=ingested.example_gen.outputs["examples"],
        schema=schema,
        preprocessing_fn=training.preprocessing_fn,
        # Vocabularies and scaling come from the training window only, so evaluation stays held out.
        splits_config=transform_pb2.SplitsConfig(analyze=[data.train_split]),
        # Nothing reads transformed rows but the Trainer, which applies the graph to the raw rows it reads
        # (a few thousand of a window that can hold millions): writing every row transformed only cost time.
        materialize=False,
        # StatisticsGen already computes the input statistics; Transform's own copies only cost time.
        disable_statistics=True,
        custom_config={code_version.KEY: _fingerprint_of_function(training.preprocessing_fn)},
    )
    transform.add_upstream_node(training_data_gate)
    raw_examples = ingested.example_gen.outputs["examples"]
    tuner = _tuner(raw_examples, transform, schema, data, training) if training.tune else None
    trainer = Trainer(
        run_fn=training.run_fn,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        **_model_training_inputs(
            raw_examples, transform, schema, data, training, _fingerprint_of_function(training.run_fn)
        ),
    )
    return transform, tuner, trainer


def _model_training_inputs(
    raw_examples,
    transform: Transform,
    schema,
    data: pipeline_config.Data,
    training: pipeline_config.Training,
    fingerprint: str,
) -> dict:
    """What the Trainer and the Tuner's trials both train on and with: ExampleGen's raw examples and
    Transform's graph (models.model applies it as it reads), the splits, the steps, the batch size and
    the rate (a Tuner's best hyperparameters replace the last two)."""
    return {
        "examples": raw_examples,
        "transform_graph": transform.outputs["transform_graph"],
        "schema": schema,
        "train_args": trainer_pb2.TrainArgs(splits=[data.train_split], num_steps=training.train_steps),
        "eval_args": trainer_pb2.EvalArgs(splits=[data.eval_split], num_steps=training.eval_steps),
        "custom_config": {
            code_version.KEY: fingerprint,
            model.BATCH_SIZE_KEY: training.train_batch_size,
            model.LEARNING_RATE_KEY: training.learning_rate,
        },
    }


def _tuner(
    raw_examples,
    transform: Transform,
    schema,
    data: pipeline_config.Data,
    training: pipeline_config.Training,
) -> Tuner:
    """TFX's Tuner: `training.tuning_trials` points of config/pipeline.py's space, each trained as the
    Trainer trains and scored by AUC on the evaluation split; its trials are recorded in ML Metadata."""
    # The search's code: the tuner_fn's module (with models.tuning, which it imports) and the executor.
    fingerprint = code_version.source_fingerprint(
        training.tuner_fn.rsplit(".", 1)[0], "models.tuning", Tuner.__module__
    )
    inputs = _model_training_inputs(raw_examples, transform, schema, data, training, fingerprint)
    inputs["custom_config"][model.TUNING_TRIALS_KEY] = training.tuning_trials
    return Tuner(tuner_fn=training.tuner_fn, **inputs)


def _evaluation_and_push(
    ingested: _Ingested,
    example_validator: ExampleValidator,
    trainer: Trainer,
    serving_model_dir: str,
    data: pipeline_config.Data,
    evaluation: pipeline_config.Evaluation,
) -> list:
    """The Evaluator compares the candidate with the model in production (the latest version in
    `serving_model_dir`) on every slice; the SliceReport renders that as one HTML page; the Pusher pushes
    a blessed model into a new numbered folder there, unless the PushGate holds it (an anomaly in the
    serving data, or `evaluation.push_hold_reason`). Returns the nodes in pipeline order."""
    production_model = ProductionModel(
        candidate_model=trainer.outputs["model"],
        serving_model_dir=serving_model_dir,
        production_cache_key=evaluation.production_cache_key,
    )
    # TFMA's cost grows with every example; past a few tens of thousands a seeded sample judges as well.
    evaluation_sample = EvaluationSample(
        examples=ingested.example_gen.outputs["examples"],
        split=data.eval_split,
        max_examples=evaluation.max_evaluation_examples,
        seed=evaluation.evaluation_sample_seed,
    )
    evaluator = Evaluator(
        examples=evaluation_sample.outputs["sample"],
        example_splits=[data.eval_split],
        model=trainer.outputs["model"],
        baseline_model=production_model.outputs["baseline_model"],
        eval_config=build_eval_config(evaluation),
    )
    slice_report = SliceReport(
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        baseline_model=production_model.outputs["baseline_model"],
        key_slice=evaluation.key_slice,
        min_slice_examples=evaluation.min_slice_examples,
    )
    serving_check = _serving_check(trainer, evaluation_sample, ingested, data, evaluation)
    push_gate = PushGate(
        model_blessing=evaluator.outputs["blessing"],
        anomalies=example_validator.outputs["anomalies"],
        hold_reason=evaluation.push_hold_reason,
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=push_gate.outputs["blessing"],
        infra_blessing=serving_check.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
        # What the model was judged against: no push if production moved meanwhile (components/pusher.py).
        baseline_model=production_model.outputs["baseline_model"],
    )
    nodes = [production_model, evaluation_sample, evaluator, slice_report, serving_check, push_gate, pusher]
    if evaluation.bulk_inference_on_newest_span:
        nodes.append(_bulk_inference(ingested, trainer, evaluator, data))
    return nodes


def _serving_check(
    trainer: Trainer,
    evaluation_sample: EvaluationSample,
    ingested: _Ingested,
    data: pipeline_config.Data,
    evaluation: pipeline_config.Evaluation,
) -> ServingCheck:
    """Before a push, the candidate is loaded by the model server and asked held-out trips (TFX's
    InfraValidator's place): a model that cannot serve never reaches production as a canary."""
    return ServingCheck(
        model=trainer.outputs["model"],
        examples=evaluation_sample.outputs["sample"],
        schema=ingested.curated_schema_gen.outputs["schema"],
        split=data.eval_split,
        budgets={
            "rows": evaluation.serving_check_rows,
            "max_prediction_difference": evaluation.serving_check_max_prediction_difference,
            "max_p99_seconds": evaluation.serving_check_max_p99_seconds,
            "max_peak_memory_mb": evaluation.serving_check_max_peak_memory_mb,
            "load_timeout_seconds": evaluation.serving_check_load_timeout_seconds,
        },
    )


def _bulk_inference(
    ingested: _Ingested, trainer: Trainer, evaluator: Evaluator, data: pipeline_config.Data
) -> BulkInferrer:
    """The newest span scored by the candidate, once the Evaluator blessed it (TFX skips it otherwise)."""
    return BulkInferrer(
        examples=ingested.example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        data_spec=bulk_inferrer_pb2.DataSpec(example_splits=[data.current_span_split]),
        model_spec=bulk_inferrer_pb2.ModelSpec(model_signature_name=[EXAMPLES_SIGNATURE]),
    )


def _model_card(
    components: list,
    trainer: Trainer,
    locations: Locations,
    training: pipeline_config.Training,
    evaluation: pipeline_config.Evaluation,
) -> ModelCard:
    """After the Pusher, the model card (components/model_card.py), from the artifacts of the nodes built so
    far. The hyperparameters are the Trainer's `hyperparameters` input when a Tuner feeds it; without one the
    card shows the Trainer's settings as "not tuned"."""
    by_id = {node.id: node for node in components}
    return ModelCard(
        pushed_model=by_id["Pusher"].outputs["pushed_model"],
        slice_report=by_id["SliceReport"].outputs["report"],
        examples=by_id["CsvExampleGen"].outputs["examples"],
        statistics=by_id["StatisticsGen"].outputs["statistics"],
        schema=by_id["ImportSchemaGen"].outputs["schema"],
        anomalies=by_id["ExampleValidator"].outputs["anomalies"],
        infra_blessing=by_id["ServingCheck"].outputs["blessing"],
        evaluation_sample=by_id["EvaluationSample"].outputs["sample"],
        hyperparameters=trainer.inputs.get("hyperparameters"),
        training_settings={
            "train_steps": training.train_steps,
            "train_batch_size": training.train_batch_size,
            "learning_rate": training.learning_rate,
            "eval_steps": training.eval_steps,
        },
        model_code_fingerprints={
            "preprocessing_fn": _fingerprint_of_function(training.preprocessing_fn),
            "run_fn": _fingerprint_of_function(training.run_fn),
        },
        min_evaluation_examples=evaluation.min_evaluation_examples,
        example_gen_input=locations.example_gen_input,
    )


def _fingerprint_of_function(function_path: str) -> str:
    """`models.preprocessing.preprocessing_fn` -> the fingerprint of `models.preprocessing` and its imports."""
    return code_version.source_fingerprint(function_path.rsplit(".", 1)[0])


def _add_component_beam_pipeline_args(
    components: list, beam_args_by_node: Mapping[str, Sequence[str]]
) -> None:
    beam_nodes = {node.id: node for node in components if hasattr(node, "with_beam_pipeline_args")}
    unknown = sorted(set(beam_args_by_node) - set(beam_nodes))
    if unknown:
        raise ValueError(
            f"component_beam_pipeline_args names {unknown}, which are not Beam-based nodes of this pipeline "
            f"(expected some of {sorted(beam_nodes)})"
        )
    for node_id, beam_args in beam_args_by_node.items():
        if beam_args:
            beam_nodes[node_id].with_beam_pipeline_args(list(beam_args))  # after the pipeline's: these win
