"""The serving directory's rules: complete versions only, production, partial pushes, rollbacks."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from registry import versions
from tests.support.outputs import saved_model


def test_newest_complete_numbered_version_is_production(tmp_path):
    saved_model(tmp_path / "100", b"old")
    saved_model(tmp_path / "250", b"new")
    (tmp_path / "300").mkdir()  # no saved_model.pb: not a model
    saved_model(tmp_path / "latest", b"not a version")
    saved_model(tmp_path / ".pushing-400", b"still being copied")
    assert versions.complete_versions(tmp_path) == ["100", "250"]
    assert versions.production_path(tmp_path) == tmp_path / "250"


def test_no_serving_folder_means_nothing_in_production(tmp_path):
    assert versions.production_path(tmp_path / "missing") is None
    assert versions.production_fingerprint(tmp_path / "missing") == ""


def test_fingerprint_follows_content_not_location(tmp_path):
    first = saved_model(tmp_path / "1", b"weights")
    same = saved_model(tmp_path / "2", b"weights")
    other = saved_model(tmp_path / "3", b"other weights")
    assert versions.fingerprint(first) == versions.fingerprint(same) != versions.fingerprint(other)


def test_a_version_is_written_whole_and_never_overwritten(tmp_path):
    model = saved_model(tmp_path / "trainer", b"weights")
    serving = tmp_path / "serving"
    serving.mkdir()
    written = versions.write_version(serving, model, "500")
    assert written == serving / "500" and versions.fingerprint(written) == versions.fingerprint(model)
    assert sorted(p.name for p in serving.iterdir()) == ["500"]
    with pytest.raises(versions.RegistryError, match="exists already"):
        versions.write_version(serving, model, "500")


def test_a_push_killed_mid_copy_is_never_production_and_is_quarantined(tmp_path):
    """A real process copying a large model, killed with SIGKILL while it copies."""
    model = saved_model(tmp_path / "trainer", b"x")
    for shard in range(40):
        (model / "variables" / f"extra-{shard:02d}").write_bytes(os.urandom(4 << 20))
    serving = tmp_path / "serving"
    saved_model(serving / "100", b"production")
    pusher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from pathlib import Path
                from registry import versions
                versions.write_version(Path({str(serving)!r}), Path({str(model)!r}), "200")
                """
            ),
        ]
    )
    staging = serving / ".pushing-200"
    deadline = time.monotonic() + 30
    while not (staging / "variables").is_dir() and time.monotonic() < deadline:
        time.sleep(0.005)
    pusher.send_signal(signal.SIGKILL)
    pusher.wait(timeout=30)

    assert staging.is_dir() and not (serving / "200").exists()
    assert versions.production_path(serving) == serving / "100"
    assert versions.partial_pushes(serving) == [staging]
    [moved] = versions.quarantine_partial_pushes(serving)
    assert moved.parent == serving / versions.QUARANTINE_DIR and moved.name.startswith("pushing-200-found-")
    assert versions.partial_pushes(serving) == [] and versions.complete_versions(serving) == ["100"]


def test_a_rollback_makes_the_previous_version_production_and_remembers_the_model(tmp_path):
    saved_model(tmp_path / "100", b"good")
    saved_model(tmp_path / "200", b"bad")
    [rollback] = versions.record_rollback(tmp_path, reason="canary errors")
    assert (rollback.version, rollback.production_after, rollback.reason) == ("200", "100", "canary errors")
    assert versions.production_version(tmp_path) == "100"
    assert (tmp_path / "200").is_dir()  # kept, for audit
    assert versions.rollback_of_model(tmp_path, versions.fingerprint(tmp_path / "200")) == rollback
    saved_model(tmp_path / "300", b"newer")
    assert versions.production_version(tmp_path) == "300"
    versions.undo_rollback(tmp_path, "200")
    assert versions.rollbacks(tmp_path) == []


def test_a_rollback_to_an_older_version_rolls_back_everything_newer(tmp_path):
    for version, weights in (("100", b"a"), ("200", b"b"), ("300", b"c")):
        saved_model(tmp_path / version, weights)
    recorded = versions.record_rollback(tmp_path, to_version="100")
    assert [r.version for r in recorded] == ["200", "300"]
    assert versions.production_version(tmp_path) == "100"


@pytest.mark.parametrize(
    "present, to_version, message",
    [
        ([], None, "Nothing is in production"),
        (["100"], None, "no earlier live version"),
        (["100", "200"], "999", "live versions in .* are 100, 200"),
        (["100", "200"], "200", "is production already"),
    ],
)
def test_an_impossible_rollback_is_explained(tmp_path, present, to_version, message):
    for version in present:
        saved_model(tmp_path / version, version.encode())
    with pytest.raises(versions.RegistryError, match=message):
        versions.record_rollback(tmp_path, to_version=to_version)


def test_an_unreadable_rollback_record_is_not_ignored(tmp_path):
    saved_model(tmp_path / "100", b"a")
    (tmp_path / versions.ROLLBACKS_FILE).write_text("{not json")
    with pytest.raises(versions.RegistryError, match="fix it by hand"):
        versions.production_version(tmp_path)
