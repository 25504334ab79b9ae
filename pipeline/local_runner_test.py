"""What `make run` leaves when a run fails early or cannot start, with real inputs and the real runner."""

import json
import subprocess

import pytest

from config import folders
from config import pipeline as pipeline_config
from pipeline import local_runner, output_lock
from tests.support.spans import write_sampled_spans


@pytest.fixture(scope="module")
def tiny_spans(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("tiny") / "data"
    write_sampled_spans(data_root, keep_every=50)
    return data_root


def test_a_run_that_fails_before_any_component_replaces_the_previous_summary(tmp_path, tiny_spans, capsys):
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=tiny_spans)
    settings.output_dir.mkdir()
    settings.run_summary_path.write_text(json.dumps({"run_id": "earlier", "succeeded": True}))

    exit_code = local_runner.run(
        settings,
        orchestration=pipeline_config.Orchestration(component_beam_pipeline_args={"NoSuchNode": ["--x"]}),
    )

    assert exit_code == local_runner.COMPONENT_FAILED_EXIT_CODE
    summary = json.loads(settings.run_summary_path.read_text())
    assert summary["succeeded"] is False and summary["run_id"] is None
    assert "NoSuchNode" in summary["error"]
    assert "Run FAILED before any component was recorded" in capsys.readouterr().out


def test_a_folder_held_by_another_process_is_refused_naming_it(tmp_path, tiny_spans, capsys):
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=tiny_spans)
    settings.output_dir.mkdir()
    holder = subprocess.Popen(
        [
            "python3",
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX);"
            ' f.write(\'{"pid": 4242, "command": "taxi-pipeline run", "started": "earlier"}\'); f.flush();'
            " print('held', flush=True); time.sleep(60)",
            str(settings.output_dir / output_lock.LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert local_runner.run(settings) == local_runner.OUTPUT_FOLDER_BUSY_EXIT_CODE
        assert "is in use by `taxi-pipeline run` (pid 4242, started earlier)" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert not settings.example_gen_input.exists()  # refused before touching anything
