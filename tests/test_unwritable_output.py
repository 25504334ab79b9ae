"""An output folder that cannot be written: a clear error naming it, and nothing already stored changed.

A read-only or full folder is made with a real filesystem (tmpfs), which needs the right to mount (root,
as CI runs): without it these tests are skipped and say so.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from registry import versions
from tests.support.outputs import run_cli, tree_digest


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()}): run as root, as CI does")


@pytest.fixture
def mounted(tmp_path):
    folders = []

    def mount(folder: Path, size: str = "64m") -> Path:
        _mount_tmpfs(folder, size)
        folders.append(folder)
        return folder

    yield mount
    for folder in reversed(folders):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _stored(output_dir: Path) -> Path:
    """An output folder holding what earlier runs left: a pushed model and a summary."""
    model = output_dir.parent / "previously_pushed"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"previously pushed model")
    # Written as a Pusher writes it (with its completion record): a bare folder would be quarantined.
    versions.write_version(output_dir / "serving_model", model, "1700000000")
    (output_dir / "run_summary.json").write_text(json.dumps({"run_id": "earlier", "succeeded": True}))
    return output_dir


def test_a_read_only_output_folder_is_named_and_left_as_it_was(tmp_path, mounted, small_taxi_spans):
    output_dir = mounted(tmp_path / "outputs")
    _stored(output_dir)
    before = tree_digest(output_dir)
    subprocess.run(["mount", "-o", "remount,ro", str(output_dir)], check=True)

    result = run_cli(output_dir, "--data-root", str(small_taxi_spans))

    assert result.returncode == 2, result.stderr
    assert f"the output folder {output_dir} cannot be written (Read-only file system" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_digest(output_dir) == before


@pytest.mark.e2e
def test_a_full_output_folder_is_named_and_loses_nothing(tmp_path, mounted, small_taxi_spans):
    output_dir = mounted(tmp_path / "outputs", size="3m")
    _stored(output_dir)
    serving_before = tree_digest(output_dir / "serving_model")
    summary_before = (output_dir / "run_summary.json").read_text()
    # Leave room for the input layout and ML Metadata, not for ExampleGen's examples.
    free = shutil.disk_usage(output_dir).free
    (output_dir / "filler").write_bytes(b"\0" * (free - 600_000))

    result = run_cli(output_dir, "--data-root", str(small_taxi_spans))

    assert result.returncode in (1, 2), result.stdout[-2000:] + result.stderr[-2000:]
    assert f"the output folder {output_dir} cannot be written (No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_digest(output_dir / "serving_model") == serving_before
    # The summary is the earlier one, or this failed run's whole (written by rename, never torn).
    summary = json.loads((output_dir / "run_summary.json").read_text())
    assert summary == json.loads(summary_before) or summary["succeeded"] is False
