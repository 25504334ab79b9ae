"""Output folders as tests check them, and the CLI as a user runs it."""

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from registry import versions


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def saved_model(folder: Path, weights: bytes) -> Path:
    """A folder shaped like a SavedModel (every part, by name), without a completion record."""
    (folder / "variables").mkdir(parents=True)
    (folder / versions.SAVED_MODEL_FILE).write_bytes(b"graph")
    (folder / "variables" / "variables.index").write_bytes(b"index")
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    return folder


def pushed_version(serving_dir: Path, version: str, weights: bytes) -> Path:
    """A SavedModel-shaped version written as the Pusher writes it: whole, with its completion record."""
    with tempfile.TemporaryDirectory() as scratch:
        return versions.write_version(serving_dir, saved_model(Path(scratch) / "model", weights), version)


def run_cli(output_dir: Path, *flags: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as `make run` calls it."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--output-dir", str(output_dir), *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_refused(result, output_dir: Path, digest_before: str, *expected_in_message: str) -> None:
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.startswith("error: ")
    assert "Traceback" not in message
    for expected in expected_in_message:
        assert expected in message
    assert tree_digest(output_dir / "serving_model") == digest_before
    assert not (output_dir / "pipeline_root").exists()
