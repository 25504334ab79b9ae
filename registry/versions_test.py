"""The serving directory's rules: whole versions only (completion records), production, quarantine,
adoption, versions older than the records, rollbacks, and one writer at a time."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from registry import completion, versions
from tests.support.outputs import pushed_version, saved_model


def test_newest_whole_numbered_version_is_production(tmp_path):
    pushed_version(tmp_path, "100", b"old")
    pushed_version(tmp_path, "250", b"new")
    saved_model(tmp_path / "300", b"copied in by hand")  # every part, but no completion record
    (tmp_path / "350").mkdir()
    saved_model(tmp_path / "latest", b"not a version")
    saved_model(tmp_path / ".pushing-400", b"still being copied")
    assert versions.complete_versions(tmp_path) == ["100", "250"]
    assert versions.production_path(tmp_path) == tmp_path / "250"


def test_no_serving_folder_means_nothing_in_production(tmp_path):
    assert versions.production_path(tmp_path / "missing") is None
    assert versions.production_fingerprint(tmp_path / "missing") == ""
    assert (
        versions.not_whole(tmp_path / "missing") == versions.quarantine_not_whole(tmp_path / "missing") == []
    )


def test_fingerprint_follows_content_not_location_or_record(tmp_path):
    first = saved_model(tmp_path / "1", b"weights")
    other = saved_model(tmp_path / "3", b"other weights")
    pushed = versions.write_version(tmp_path / "serving", first, "100")
    assert versions.fingerprint(first) == versions.fingerprint(pushed) != versions.fingerprint(other)


def test_a_version_is_written_whole_with_its_record_last_and_never_overwritten(tmp_path):
    model = saved_model(tmp_path / "trainer", b"weights")
    serving = tmp_path / "serving"
    written = versions.write_version(serving, model, "500")
    assert written == serving / "500" and versions.fingerprint(written) == versions.fingerprint(model)
    assert sorted(p.name for p in serving.iterdir() if not p.name.startswith(".")) == [
        "500",
        versions.REGISTRY_FILE,
    ]
    record = json.loads((written / versions.RECORD_FILE).read_text())
    assert record["written_by"] == versions.WRITTEN_BY_PUSHER
    assert record["files"]["variables/variables.data-00000-of-00001"] == {
        "bytes": len(b"weights"),
        "sha256": completion.file_digest(model / "variables" / "variables.data-00000-of-00001"),
    }
    assert set(record["files"]) == {
        "saved_model.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    }
    with pytest.raises(versions.RegistryError, match="exists already"):
        versions.write_version(serving, model, "500")


def test_a_push_killed_mid_copy_is_never_production_and_is_quarantined(tmp_path):
    """A real process copying a large model, killed with SIGKILL while it copies."""
    model = saved_model(tmp_path / "trainer", b"x")
    for shard in range(40):
        (model / "variables" / f"extra-{shard:02d}").write_bytes(os.urandom(4 << 20))
    serving = tmp_path / "serving"
    pushed_version(serving, "100", b"production")
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
    assert versions.not_whole(serving) == [versions.NotWhole(staging, versions.PARTIAL_PUSH)]
    [moved] = versions.quarantine_not_whole(serving)
    assert moved.path.parent == serving / versions.QUARANTINE_DIR
    assert moved.path.name.startswith("pushing-200-found-") and moved.reason == versions.PARTIAL_PUSH
    assert versions.partial_pushes(serving) == [] and versions.complete_versions(serving) == ["100"]
    assert versions.quarantined(serving) == [moved]


def test_a_hand_copy_holding_only_the_graph_is_never_production_and_is_quarantined(tmp_path):
    """The case that reached the Evaluator: `saved_model.pb` alone, beside production, as `cp` or TFX's
    stock Pusher can leave it."""
    serving = tmp_path / "serving"
    pushed_version(serving, "100", b"production")
    (serving / "200").mkdir()
    (serving / "200" / versions.SAVED_MODEL_FILE).write_bytes(b"graph")

    assert versions.production_version(serving) == "100"
    [found] = versions.not_whole(serving)
    assert found.path == serving / "200" and "no completion record" in found.reason
    assert versions.report(serving)["not_whole"] == [{"path": str(serving / "200"), "reason": found.reason}]
    [moved] = versions.quarantine_not_whole(serving)
    assert moved.path.name.startswith("200-found-") and moved.reason == found.reason
    assert (moved.path / versions.SAVED_MODEL_FILE).read_bytes() == b"graph"  # kept, never deleted
    assert versions.not_whole(serving) == [] and versions.quarantined(serving) == [moved]
    assert versions.report(serving)["quarantined"] == [{"path": str(moved.path), "reason": found.reason}]


@pytest.mark.parametrize(
    "damage, expected",
    [
        (
            lambda v: (v / "variables" / "variables.index").unlink(),
            "listed in its completion record but missing",
        ),
        (lambda v: (v / "variables" / "extra").write_bytes(b"x"), "not in its completion record"),
        (
            lambda v: (v / "saved_model.pb").write_bytes(b"gra"),
            "has 3 bytes where its completion record says 5",
        ),
        (
            lambda v: (v / "saved_model.pb").write_bytes(b"GRAPH"),
            "content differs from its completion record",
        ),
        (lambda v: (v / versions.RECORD_FILE).write_text("{"), "completion record .* is unreadable"),
    ],
)
def test_a_version_whose_files_do_not_match_its_record_is_not_whole(tmp_path, damage, expected):
    serving = tmp_path / "serving"
    pushed_version(serving, "100", b"good")
    pushed_version(serving, "200", b"damaged later")
    assert versions.production_version(serving) == "200"  # checked once: the result is kept while unchanged
    damage(serving / "200")
    assert versions.production_version(serving) == "100"
    [found] = versions.not_whole(serving)
    assert found.path == serving / "200"
    assert re.search(expected, found.reason), found.reason


def test_versions_pushed_before_records_are_adopted_by_the_first_change_if_they_have_every_part(tmp_path):
    serving = tmp_path / "serving"
    saved_model(serving / "100", b"pushed whole by an earlier version of this code")
    saved_model(serving / "200", b"newer, but a shard short")
    (serving / "200" / "variables" / "variables.data-00000-of-00001").rename(
        serving / "200" / "variables" / "variables.data-00000-of-00002"
    )
    # Before any change, readers apply the parts rule: 100 is production, 200 is not whole.
    assert versions.production_version(serving) == "100"
    assert "only 1 of its 2 variables data shards" in versions.why_not_whole(serving, "200")

    assert versions.begin_records(serving) == ["100"]
    registry = json.loads((serving / versions.REGISTRY_FILE).read_text())
    assert registry["adopted_without_record"] == ["100"]
    assert json.loads((serving / "100" / versions.RECORD_FILE).read_text())["written_by"] == (
        versions.WRITTEN_BY_UPGRADE
    )
    assert versions.begin_records(serving) == []  # once
    # From now on a folder without a record is not whole, however complete it looks.
    saved_model(serving / "300", b"a hand copy after the upgrade")
    assert versions.production_version(serving) == "100"
    moved = versions.quarantine_not_whole(serving)
    assert sorted(found.path.name.split("-found-")[0] for found in moved) == ["200", "300"]
    assert versions.complete_versions(serving) == ["100"]


def test_a_model_copied_in_by_hand_is_adopted_in_place_or_from_quarantine(tmp_path):
    serving = tmp_path / "serving"
    pushed_version(serving, "100", b"production")
    saved_model(serving / "200", b"copied by hand")
    assert versions.adopt(serving, serving / "200") == "200"
    assert versions.production_version(serving) == "200"
    with pytest.raises(versions.RegistryError, match="whole already"):
        versions.adopt(serving, serving / "200")

    saved_model(serving / "300", b"copied by hand, quarantined by the next run")
    [moved] = versions.quarantine_not_whole(serving)
    adopted = versions.adopt(serving, moved.path)
    assert int(adopted) > 300 and versions.production_version(serving) == adopted
    assert versions.fingerprint(serving / adopted) == versions.fingerprint(moved.path)
    assert moved.path.is_dir()  # the quarantined copy stays

    versions.reject(serving, adopted, "bad")
    with pytest.raises(versions.RegistryError, match="rolled back as version"):
        versions.adopt(serving, moved.path)


def test_a_rollback_makes_the_previous_version_production_and_remembers_the_model(tmp_path):
    pushed_version(tmp_path, "100", b"good")
    pushed_version(tmp_path, "200", b"bad")
    [rollback] = versions.record_rollback(tmp_path, reason="canary errors")
    assert (rollback.version, rollback.production_after, rollback.reason) == ("200", "100", "canary errors")
    assert versions.production_version(tmp_path) == "100"
    assert (tmp_path / "200").is_dir()  # kept, for audit
    assert versions.rollback_of_model(tmp_path, versions.fingerprint(tmp_path / "200")) == rollback
    pushed_version(tmp_path, "300", b"newer")
    assert versions.production_version(tmp_path) == "300"
    versions.undo_rollback(tmp_path, "200")
    assert versions.rollbacks(tmp_path) == []


def test_a_rollback_to_an_older_version_rolls_back_everything_newer(tmp_path):
    for version, weights in (("100", b"a"), ("200", b"b"), ("300", b"c")):
        pushed_version(tmp_path, version, weights)
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
        pushed_version(tmp_path, version, version.encode())
    with pytest.raises(versions.RegistryError, match=message):
        versions.record_rollback(tmp_path, to_version=to_version)


def test_an_unreadable_rollback_record_is_not_ignored(tmp_path):
    pushed_version(tmp_path, "100", b"a")
    (tmp_path / versions.ROLLBACKS_FILE).write_text("{not json")
    with pytest.raises(versions.RegistryError, match="fix it by hand"):
        versions.production_version(tmp_path)


def test_concurrent_rejections_from_many_processes_lose_none(tmp_path):
    """What the canary analysis and serving's rollback call, from 12 processes released at once: each
    read-modify-write of rollbacks.json waits for the one before."""
    serving = tmp_path / "serving"
    for version in range(100, 114):
        pushed_version(serving, str(version), str(version).encode())
    go = tmp_path / "go"
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from registry import versions
        while not Path({str(go)!r}).exists():
            time.sleep(0.001)
        versions.reject(Path({str(serving)!r}), sys.argv[1], "analysis")
        """
    )
    processes = [subprocess.Popen([sys.executable, "-c", code, str(v)]) for v in range(101, 113)]
    time.sleep(3)  # every process imported and waiting
    go.touch()
    assert [process.wait(timeout=60) for process in processes] == [0] * len(processes)
    assert sorted(versions.rolled_back_versions(serving)) == [str(v) for v in range(101, 113)]
    assert versions.production_version(serving) == "113"
    assert not [p.name for p in serving.iterdir() if p.name.endswith(".tmp")]


def test_the_lock_is_one_per_directory_and_reentrant(tmp_path):
    serving = tmp_path / "serving"
    with versions.locked(serving), versions.locked(serving):
        pushed_version(serving, "100", b"a")  # takes the lock again inside: no deadlock
        waiting = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from pathlib import Path; from registry import versions\n"
                f"with versions.locked(Path({str(serving)!r})): print('got it', flush=True)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        assert waiting.poll() is None  # still waiting for this process's lock
    assert waiting.communicate(timeout=30)[0] == "got it\n"
