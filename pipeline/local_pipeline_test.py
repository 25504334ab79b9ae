"""The local pipeline's settings that depend on the data: which components run on worker processes."""

import tempfile
from pathlib import Path

import pytest
from tfx.utils import dependency_utils

from config import folders
from config import pipeline as pipeline_config
from pipeline import local_pipeline
from pipeline.pipeline import Locations, create_pipeline

PARALLEL = list(pipeline_config.PARALLEL_BEAM_ARGS)
LOCAL_ARGS = [*pipeline_config.BEAM_PIPELINE_ARGS, *pipeline_config.LOCAL_BEAM_DEPENDENCY_ARGS]


def _beam_args_by_node(tmp_path: Path, training_rows: int, evaluation_rows: int) -> dict[str, list[str]]:
    """Each Beam-based node's own Beam args (after the pipeline's) in a pipeline built over such windows."""
    settings = folders.Settings(output_dir=tmp_path, data_root=tmp_path / "spans")
    for split, rows in (
        (pipeline_config.TRAIN_SPLIT, training_rows),
        (pipeline_config.EVAL_SPLIT, evaluation_rows),
    ):
        split_dir = settings.example_gen_input / "span-3" / split
        split_dir.mkdir(parents=True)
        (split_dir / "data.csv").write_text("fare,tips\n" + "1.0,0.5\n" * rows)
    beam_args = {}
    for node in local_pipeline.build(settings).components:
        if hasattr(node, "with_beam_pipeline_args"):
            node_args = node.executor_spec.beam_pipeline_args
            # The pipeline's args come first, so a node's own ones win.
            assert node_args[: len(LOCAL_ARGS)] == LOCAL_ARGS, node.id
            beam_args[node.id] = node_args[len(LOCAL_ARGS) :]
    return beam_args


def test_on_the_samples_windows_every_component_runs_in_memory(tmp_path):
    beam_args = _beam_args_by_node(tmp_path, training_rows=11_938, evaluation_rows=3_064)
    assert "Evaluator" in beam_args and "Transform" in beam_args
    assert all(args == [] for args in beam_args.values())


def test_tfx_builds_no_package_of_itself_for_local_beam_components(tmp_path, monkeypatch):
    # TFX builds and leaves an sdist in TMPDIR (3 s, 49 MB) for each Beam component run without a
    # dependency option; this is the check its executors make before running.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=None)
    replaced = ["--direct_running_mode=multi_threading"]  # as `make bench-beam-modes` replaces them
    for pipeline in (
        local_pipeline.build(settings),
        local_pipeline.build(
            settings, orchestration=pipeline_config.Orchestration(beam_pipeline_args=replaced)
        ),
    ):
        for node in pipeline.components:
            if hasattr(node, "with_beam_pipeline_args"):
                args = node.executor_spec.beam_pipeline_args
                assert dependency_utils.make_beam_dependency_flags(list(args)) == list(args), node.id
    assert list(scratch.iterdir()) == []


def test_a_large_evaluation_window_puts_only_the_evaluator_on_workers(tmp_path):
    beam_args = _beam_args_by_node(
        tmp_path, training_rows=80_000, evaluation_rows=pipeline_config.PARALLEL_EVALUATION_MIN_EXAMPLES
    )
    assert {node for node, args in beam_args.items() if args} == {"Evaluator"}
    assert beam_args["Evaluator"] == PARALLEL


def test_large_windows_put_transform_on_workers_too(tmp_path):
    threshold = pipeline_config.PARALLEL_FROM_WINDOW_ROWS["Transform"]
    beam_args = _beam_args_by_node(tmp_path, training_rows=threshold - 20_000, evaluation_rows=20_000)
    assert {node for node, args in beam_args.items() if args} == {"Transform", "Evaluator"}
    assert beam_args["Transform"] == PARALLEL
    # ExampleGen runs without Beam (components/csv_example_gen.py), StatisticsGen in memory.
    assert beam_args["CsvExampleGen"] == beam_args["StatisticsGen"] == []


def test_beam_args_for_a_node_the_pipeline_does_not_have_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"names \['Trainr'\], which are not Beam-based nodes"):
        create_pipeline(
            locations=Locations(
                pipeline_root=str(tmp_path),
                example_gen_input=str(tmp_path),
                schema_path=str(folders.SCHEMA_PATH),
                serving_model_dir=str(tmp_path),
            ),
            data=pipeline_config.Data(),
            training=pipeline_config.Training(),
            evaluation=pipeline_config.Evaluation(),
            orchestration=pipeline_config.Orchestration(component_beam_pipeline_args={"Trainr": PARALLEL}),
        )
