"""A version folder's completion record: the proof that the folder holds a whole model, whoever wrote it.

The writer (our Pusher, or `taxi-pipeline adopt`) writes `completion.json` into the folder last, once every
other file is on disk: each file's path, size and SHA-256, and a digest of that list. A folder is whole
when the record is there and its files are exactly those listed, with those sizes and contents. A hand
copy, `gsutil cp` or TFX's stock Pusher writes no record, and a copy cut short cannot match one, so neither
is ever taken for a model.

Serving directories older than the records (no `registry.json` yet, see registry/versions.py) hold versions
without one; until the registry's first write adopts them, a folder without a record counts as whole when
it has every part a SavedModel needs: `saved_model.pb`, `variables/variables.index` and every shard
`variables.data-I-of-N` the shard names promise. That rule cannot see a shard cut short: the record can.

Checking reads every byte (0.9 ms for a 0.6 MB taxi model here; in proportion for larger models), so a
result is kept per folder while no file in it changes (name, size, modification time, inode): 0.13 ms,
and a model server polling every second re-reads nothing.
"""

import hashlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path

RECORD_FILE = "completion.json"
SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_INDEX = "variables/variables.index"
VARIABLES_SHARD = re.compile(r"variables\.data-(\d+)-of-(\d+)")
NO_RECORD = "it has no completion record"

_checked: dict[Path, tuple[tuple, str]] = {}
_checked_lock = threading.Lock()


def model_files(folder: Path) -> dict[str, Path]:
    """Every file of a version folder but its record, by path relative to the folder ('/'-separated)."""
    found = {}
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if relative != RECORD_FILE:
                found[relative] = path
    return found


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_of(folder: Path, written_by: str) -> dict:
    """The record `folder`'s files call for now: {files: {path: {bytes, sha256}}, digest, written_by}."""
    files = {
        relative: {"bytes": path.stat().st_size, "sha256": file_digest(path)}
        for relative, path in model_files(folder).items()
    }
    return {"files": files, "digest": _list_digest(files), "written_by": written_by}


def write_record(folder: Path, written_by: str) -> dict:
    """Writes `folder`'s completion record (last, once its files and folders are on disk); returns it."""
    for root, _, files in os.walk(folder):
        for name in files:
            sync(Path(root) / name)
        sync(Path(root))
    record = record_of(folder, written_by)
    write_json(folder / RECORD_FILE, record)
    return record


def why_not_whole(folder: Path, legacy_allowed: bool) -> str:
    """'' when `folder` holds a whole model, else why not, for a person. `legacy_allowed`: a folder without
    a record may pass the SavedModel parts rule (the serving directory predates records)."""
    try:
        signature = (legacy_allowed, _stat_signature(folder))
        with _checked_lock:
            cached = _checked.get(folder)
        if cached and cached[0] == signature:
            return cached[1]
        reason = _check(folder, legacy_allowed)
    except FileNotFoundError as error:  # moved aside or removed while being read
        return f"{error.filename} went away while it was being checked"
    with _checked_lock:
        _checked[folder] = (signature, reason)
    return reason


def _check(folder: Path, legacy_allowed: bool) -> str:
    record_path = folder / RECORD_FILE
    if not record_path.is_file():
        if legacy_allowed:
            return missing_saved_model_parts(folder)
        return (
            f"{NO_RECORD}, so no Pusher finished writing it (a hand copy, `gsutil cp` or TFX's stock Pusher "
            "leave none, and may stop half-way)"
        )
    try:
        record = json.loads(record_path.read_text())
        listed = {name: (entry["bytes"], entry["sha256"]) for name, entry in record["files"].items()}
        digest = record["digest"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return f"its completion record {record_path} is unreadable ({type(error).__name__}: {error})"
    if _list_digest(record["files"]) != digest:
        return f"its completion record {record_path} does not match its own digest (edited by hand?)"
    present = model_files(folder)
    for name in sorted(listed):
        if name not in present:
            return f"{name} is listed in its completion record but missing"
    for name in sorted(present):
        if name not in listed:
            return f"{name} is not in its completion record (added after the version was written)"
    for name, (size, _) in sorted(listed.items()):
        actual = present[name].stat().st_size
        if actual != size:
            return f"{name} has {actual} bytes where its completion record says {size}"
    for name, (_, sha256) in sorted(listed.items()):
        if file_digest(present[name]) != sha256:
            return f"{name}'s content differs from its completion record (SHA-256)"
    return ""


def missing_saved_model_parts(folder: Path) -> str:
    """'' when `folder` has every file a SavedModel needs, by name, else what is missing."""
    files = model_files(folder)
    for needed in (SAVED_MODEL_FILE, VARIABLES_INDEX):
        if needed not in files or files[needed].stat().st_size == 0:
            return f"it has no completion record, and no {needed}: not a whole SavedModel"
    shards = [VARIABLES_SHARD.fullmatch(name.removeprefix("variables/")) for name in files]
    counts = {int(shard.group(2)) for shard in shards if shard}
    if len(counts) != 1:
        return "it has no completion record, and its variables/ has no single set of data shards"
    [count] = counts
    present = {int(shard.group(1)) for shard in shards if shard}
    if present != set(range(count)):
        return f"it has no completion record, and only {len(present)} of its {count} variables data shards"
    return ""


def write_json(path: Path, content: dict) -> None:
    """Writes `path` whole or not at all, through a temporary file of its own (two writers never share one)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(json.dumps(content, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync(path.parent)


def sync(path: Path) -> None:
    """Flushes a file's or a folder's entries to disk, so a rename survives a power loss."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _list_digest(files: dict) -> str:
    listing = "".join(f"{name} {entry['bytes']} {entry['sha256']}\n" for name, entry in sorted(files.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


def _stat_signature(folder: Path) -> tuple:
    entries = []
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            status = (Path(root) / name).stat()
            entries.append((root, name, status.st_size, status.st_mtime_ns, status.st_ino))
    return tuple(entries)
