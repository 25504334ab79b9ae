"""The code fingerprint follows the code a component runs (and what it imports), not its comments."""

import sys
import textwrap

import pytest

from components import code_version
from config import pipeline as pipeline_config
from pipeline.pipeline import Locations, create_pipeline


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package `fpdemo` with a gate that imports a helper, importable for the test's duration."""
    root = tmp_path / "fpdemo"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "gate.py").write_text("from fpdemo import helper\n\ndef decide():\n    return helper.BOUND\n")
    (root / "helper.py").write_text("BOUND = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(code_version, "PACKAGES", code_version.PACKAGES | {"fpdemo"})
    yield root
    for name in [m for m in sys.modules if m.startswith("fpdemo")]:
        del sys.modules[name]


def _fingerprint(module: str) -> str:
    code_version.source_fingerprint.cache_clear()
    return code_version.source_fingerprint(module)


def test_an_edit_to_an_imported_module_changes_the_fingerprint(package):
    before = _fingerprint("fpdemo.gate")
    (package / "helper.py").write_text("BOUND = 2\n")
    assert _fingerprint("fpdemo.gate") != before


def test_comments_and_formatting_do_not(package):
    before = _fingerprint("fpdemo.gate")
    (package / "gate.py").write_text(
        textwrap.dedent(
            """
            # The gate.
            from fpdemo import helper


            def decide():
                return helper.BOUND  # the bound
            """
        )
    )
    assert _fingerprint("fpdemo.gate") == before


def test_every_component_that_runs_this_projects_code_carries_its_fingerprint(tmp_path):
    pipeline = create_pipeline(
        locations=Locations(
            pipeline_root=str(tmp_path / "root"),
            example_gen_input=str(tmp_path / "input"),
            schema_path=str(tmp_path / "schema.pbtxt"),
            serving_model_dir=str(tmp_path / "serving"),
        ),
        data=pipeline_config.Data(),
        training=pipeline_config.Training(),
        evaluation=pipeline_config.Evaluation(),
        orchestration=pipeline_config.Orchestration(),
    )
    nodes = {node.id: node for node in pipeline.components}
    ours = [
        "ExampleValidator",
        "TrainingDataGate",
        "ProductionModel",
        "EvaluationSample",
        "Evaluator",
        "SliceReport",
        "PushGate",
    ]
    for node_id in ours:
        assert nodes[node_id].exec_properties[code_version.KEY], node_id
    for node_id in ("Transform", "Trainer", "Pusher"):  # TFX's own components: in custom_config
        assert code_version.KEY in nodes[node_id].exec_properties["custom_config"], node_id
    assert (
        nodes["TrainingDataGate"].exec_properties[code_version.KEY]
        == nodes["PushGate"].exec_properties[code_version.KEY]
    )  # one module holds both gates
