"""The compiled Kubeflow pipeline, executed end to end in containers of the pipeline image.

Slow (minutes) and needs Docker with the image built (`make image-offline` or `make image`):
`make test-kfp` runs it. Without them it is skipped with the reason.
"""

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from config import folders
from kubeflow import compiler, input_fingerprint
from registry import model_cards, versions
from tests.support import container_launcher

pytestmark = pytest.mark.kfp


def _prepare_data(shared) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli.main", "prepare-data", "--output-dir", str(shared)],
        check=True,
        capture_output=True,
    )


def test_pipeline_runs_in_containers_to_a_pushed_model_then_reads_a_new_span(image, tmp_path):
    spec = next(yaml.safe_load_all(compiler.compile_pipeline(tmp_path / "build").read_text()))
    shared, minio = tmp_path / "shared", tmp_path / "minio"
    _prepare_data(shared)
    # The first run's data ends at 2016 H1: the 2016 H2 span arrives for the second.
    shutil.rmtree(shared / "example_gen_input" / "span-20162")

    outputs = container_launcher.run_pipeline(spec, minio, shared, tmp_path / "runs", "run-1")

    assert set(outputs) == set(spec["root"]["dag"]["tasks"])
    [blessing] = outputs["Evaluator"]["blessing"]
    assert blessing["metadata"]["blessed"] == 1
    [pushed] = outputs["Pusher"]["pushed_model"]
    assert pushed["metadata"]["pushed"] == 1
    [version] = versions.complete_versions(shared / "serving_model")
    assert (shared / "serving_model" / version / versions.RECORD_FILE).is_file()
    # Its model card beside it on the shared volume, not in it (components/model_card.py).
    card = shared / "serving_model" / model_cards.MODEL_CARDS_DIR / version / folders.MODEL_CARD_FILE
    assert json.loads(card.read_text())["model_details"]["version"]["name"] == version
    [report] = outputs["SliceReport"]["report"]
    assert report["uri"].startswith("minio://mlpipeline/")
    page = minio / report["uri"][len("minio://") :] / folders.SLICE_REPORT_FILE
    assert "Slice report: blessed" in page.read_text()
    # ExampleGen resolved the newest span on the shared volume.
    [examples] = outputs["CsvExampleGen"]["examples"]
    assert examples["metadata"]["custom:span"] == 20161

    # A new span: the run's first step gives ExampleGen a new key (a new KFP cache key), and it reads it.
    _prepare_data(shared)
    key = input_fingerprint.output_parameter("CsvExampleGen")
    second = container_launcher.run_pipeline(
        spec, minio, shared, tmp_path / "runs", "run-2", tasks=[input_fingerprint.STEP, "CsvExampleGen"]
    )
    assert second[input_fingerprint.STEP][key] != outputs[input_fingerprint.STEP][key]
    assert second[input_fingerprint.STEP][key].startswith("span 20162, ")
    [examples] = second["CsvExampleGen"]["examples"]
    assert examples["metadata"]["custom:span"] == 20162
