"""The TFX pipeline, built by one function from explicit arguments (no globals, no environment)."""

from collections.abc import Mapping, Sequence

import tensorflow_data_validation as tfdv
from ml_metadata.proto import metadata_store_pb2

# Not `tfx.v1`: it also imports the Google Cloud extensions (aiplatform: seconds per process), unused here.
from tfx.components import (
    CsvExampleGen,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, range_config_pb2, trainer_pb2, transform_pb2

from components import code_version
from components.data_gates import PushGate, TrainingDataGate
from components.data_validation import ExampleValidator
from components.evaluation_sample import EvaluationSample
from components.evaluator import Evaluator
from components.production_model import ProductionModel
from components.pusher import Pusher
from components.slice_report import SliceReport
from config.pipeline import SERVING_SPLIT, SPAN_FOLDER_PREFIX
from models import model
from pipeline.evaluation import build_eval_config


def _example_gen_input_config(*splits: str) -> example_gen_pb2.Input:
    """Every split comes from the same span folder, so ExampleGen resolves one {SPAN} for all."""
    return example_gen_pb2.Input(
        splits=[
            example_gen_pb2.Input.Split(name=split, pattern=f"{SPAN_FOLDER_PREFIX}{{SPAN}}/{split}/*.csv")
            for split in splits
        ]
    )


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    example_gen_input: str,
    schema_path: str,
    serving_model_dir: str,
    preprocessing_fn: str,
    run_fn: str,
    train_split: str,
    eval_split: str,
    current_span_split: str,
    previous_span_split: str,
    statistics_histogram_buckets: int,
    min_examples_to_gate_on_distance: int,
    unit_change_amounts: Sequence[str],
    max_unit_change: float,
    train_steps: int,
    train_batch_size: int,
    learning_rate: float,
    eval_steps: int,
    max_evaluation_examples: int,
    evaluation_sample_seed: int,
    min_auc: float,
    min_accuracy: float,
    max_auc_drop: float,
    slice_features: Sequence[Sequence[str]],
    key_slice: Sequence[tuple[str, str]],
    key_slice_min_auc: float,
    key_slice_min_accuracy: float,
    key_slice_max_auc_drop: float,
    min_slice_examples: int,
    decision_thresholds: Sequence[float],
    production_cache_key: str = "",
    push_hold_reason: str = "",
    serving_logs: str | None = None,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
    beam_pipeline_args: Sequence[str] = (),
    component_beam_pipeline_args: Mapping[str, Sequence[str]] | None = None,
    span: int | None = None,
    enable_cache: bool = True,
) -> Pipeline:
    """ExampleGen -> statistics and schemas -> validation -> Transform -> Trainer -> Evaluator -> Pusher.

    `span`: ingest this span instead of the newest one (to replay history). ExampleValidator checks
    the span's data against the schema, its `current_span_split` against its `previous_span_split`
    (drift) and, when `serving_logs` (a folder of request CSVs) is given, the requests against the
    training split (skew); anomalies in the training data stop the run before Transform, anomalies in the
    serving data stop the push (components/data_gates.py). The Evaluator compares the
    candidate with the model in production (the latest version in `serving_model_dir`) on every slice
    of `slice_features`; the Pusher only pushes a blessed model, into a new numbered folder there; the
    SliceReport renders the evaluation as one HTML page. `production_cache_key`: see ProductionModel.
    `component_beam_pipeline_args`: node id -> Beam args added after `beam_pipeline_args` for that node alone.
    TFX's cache key holds module and class paths, not the code behind them: every component that runs this
    project's code carries its fingerprint (components/code_version.py), Transform and Trainer that of
    `preprocessing_fn`'s and `run_fn`'s modules, so edited code is never served from the cache.
    `push_hold_reason`: when set, nothing is pushed and the summary says why (a replay of an older span).
    """
    range_config = (
        range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)
        )
        if span is not None
        else None
    )
    example_gen = CsvExampleGen(
        input_base=example_gen_input,
        input_config=_example_gen_input_config(
            train_split, eval_split, current_span_split, previous_span_split
        ),
        range_config=range_config,
    )
    stats_options = tfdv.StatsOptions(num_histogram_buckets=statistics_histogram_buckets)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"], stats_options=stats_options)
    # Inferred from this span's statistics: kept to compare with (and help update) the curated schema.
    inferred_schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
    # The data contract: the pipeline validates and transforms against the curated, checked-in schema.
    curated_schema_gen = ImportSchemaGen(schema_file=schema_path)
    serving_nodes = []
    if serving_logs is not None:
        # Their own ExampleGen: new request logs must not make Transform and Trainer run again.
        serving_example_gen = CsvExampleGen(
            input_base=serving_logs,
            input_config=example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name=SERVING_SPLIT, pattern="*.csv")]
            ),
            # One output split holding every request (ExampleGen would otherwise cut train and eval).
            output_config=example_gen_pb2.Output(
                split_config=example_gen_pb2.SplitConfig(
                    splits=[example_gen_pb2.SplitConfig.Split(name=SERVING_SPLIT, hash_buckets=1)]
                )
            ),
        ).with_id("ServingLogsExampleGen")
        serving_statistics_gen = StatisticsGen(
            examples=serving_example_gen.outputs["examples"], stats_options=stats_options
        ).with_id("ServingStatisticsGen")
        serving_nodes = [serving_example_gen, serving_statistics_gen]
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=curated_schema_gen.outputs["schema"],
        serving_statistics=serving_statistics_gen.outputs["statistics"] if serving_nodes else None,
        examples=example_gen.outputs["examples"],
        serving_examples=serving_example_gen.outputs["examples"] if serving_nodes else None,
        unit_change_amounts=unit_change_amounts,
        max_unit_change=max_unit_change,
        current_span_split=current_span_split,
        previous_span_split=previous_span_split,
        training_split=train_split,
        min_examples_to_gate=min_examples_to_gate_on_distance,
    )
    training_data_gate = TrainingDataGate(anomalies=example_validator.outputs["anomalies"])
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=curated_schema_gen.outputs["schema"],
        preprocessing_fn=preprocessing_fn,
        # Vocabularies and scaling come from the training window only, so evaluation stays held out.
        splits_config=transform_pb2.SplitsConfig(analyze=[train_split], transform=[train_split, eval_split]),
        # StatisticsGen already computes the input statistics; Transform's own copies only cost time.
        disable_statistics=True,
        custom_config={code_version.KEY: _fingerprint_of_function(preprocessing_fn)},
    )
    transform.add_upstream_node(training_data_gate)
    trainer = Trainer(
        run_fn=run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=curated_schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=[train_split], num_steps=train_steps),
        eval_args=trainer_pb2.EvalArgs(splits=[eval_split], num_steps=eval_steps),
        custom_config={
            code_version.KEY: _fingerprint_of_function(run_fn),
            model.BATCH_SIZE_KEY: train_batch_size,
            model.LEARNING_RATE_KEY: learning_rate,
        },
    )
    production_model = ProductionModel(
        candidate_model=trainer.outputs["model"],
        serving_model_dir=serving_model_dir,
        production_cache_key=production_cache_key,
    )
    # TFMA's cost grows with every example; past a few tens of thousands a seeded sample judges as well.
    evaluation_sample = EvaluationSample(
        examples=example_gen.outputs["examples"],
        split=eval_split,
        max_examples=max_evaluation_examples,
        seed=evaluation_sample_seed,
    )
    evaluator = Evaluator(
        examples=evaluation_sample.outputs["sample"],
        example_splits=[eval_split],
        model=trainer.outputs["model"],
        baseline_model=production_model.outputs["baseline_model"],
        eval_config=build_eval_config(
            slice_features=slice_features,
            key_slice=key_slice,
            min_auc=min_auc,
            min_accuracy=min_accuracy,
            max_auc_drop=max_auc_drop,
            key_slice_min_auc=key_slice_min_auc,
            key_slice_min_accuracy=key_slice_min_accuracy,
            key_slice_max_auc_drop=key_slice_max_auc_drop,
            min_slice_examples=min_slice_examples,
            decision_thresholds=decision_thresholds,
        ),
    )
    slice_report = SliceReport(
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        baseline_model=production_model.outputs["baseline_model"],
        key_slice=key_slice,
        min_slice_examples=min_slice_examples,
    )
    push_gate = PushGate(
        model_blessing=evaluator.outputs["blessing"],
        anomalies=example_validator.outputs["anomalies"],
        hold_reason=push_hold_reason,
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=push_gate.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    )
    components = [
        example_gen,
        statistics_gen,
        inferred_schema_gen,
        curated_schema_gen,
        *serving_nodes,
        example_validator,
        training_data_gate,
        transform,
        trainer,
        production_model,
        evaluation_sample,
        evaluator,
        slice_report,
        push_gate,
        pusher,
    ]
    _add_component_beam_pipeline_args(components, component_beam_pipeline_args or {})
    return Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
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
