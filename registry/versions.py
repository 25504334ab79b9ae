"""The serving directory: which pushed model versions are complete, which one is production, and the
record of rollbacks. The pipeline (ProductionModel, Pusher), serving and the CLI all read it here.

Layout of the Pusher's serving directory (`outputs/serving_model/`):

    <version>/            a complete SavedModel; the version is the push's Unix time (digits only)
    .pushing-<version>/   a push in progress: the Pusher copies here, then renames, so a version folder
                          appears whole or not at all
    .quarantine/<name>/   partial pushes left by a crash, moved aside for inspection (never production)
    rollbacks.json        the versions a person rolled back: never production, never pushed again,
                          until the rollback is undone

Production is the newest complete version that is not rolled back. The folders of rolled-back versions
stay, for audit. Renames are atomic on a POSIX filesystem (a local disk, or the Kubeflow shared volume).
"""

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
from pathlib import Path

SAVED_MODEL_FILE = "saved_model.pb"
PUSHING_PREFIX = ".pushing-"
QUARANTINE_DIR = ".quarantine"
ROLLBACKS_FILE = "rollbacks.json"


class RegistryError(Exception):
    """A request the serving directory cannot honour, explained: which version, and what exists."""


@dataclasses.dataclass(frozen=True)
class Rollback:
    """A person's decision that `version` must not serve: recorded with the model's content fingerprint,
    so the same model is never pushed again under a new version number."""

    version: str
    fingerprint: str
    rolled_back_at: str  # ISO 8601, UTC
    production_after: str | None  # the version production returned to
    reason: str


def complete_versions(serving_dir: Path) -> list[str]:
    """Every complete pushed version, oldest first (rolled-back ones included)."""
    if not serving_dir.is_dir():
        return []
    found = [
        entry.name
        for entry in serving_dir.iterdir()
        if entry.name.isdigit() and (entry / SAVED_MODEL_FILE).is_file()
    ]
    return sorted(found, key=int)


def rollbacks(serving_dir: Path) -> list[Rollback]:
    path = serving_dir / ROLLBACKS_FILE
    if not path.is_file():
        return []
    try:
        return [Rollback(**entry) for entry in json.loads(path.read_text())["rolled_back"]]
    except (ValueError, KeyError, TypeError) as error:
        raise RegistryError(
            f"{path} is not a rollback record this version can read ({error}); it holds the versions people "
            "rolled back: fix it by hand rather than delete it, or rolled-back models could be pushed again."
        ) from error


def rolled_back_versions(serving_dir: Path) -> set[str]:
    return {rollback.version for rollback in rollbacks(serving_dir)}


def production_version(serving_dir: Path) -> str | None:
    """The newest complete version that is not rolled back; None when there is none."""
    excluded = rolled_back_versions(serving_dir)
    live = [version for version in complete_versions(serving_dir) if version not in excluded]
    return live[-1] if live else None


def production_path(serving_dir: Path) -> Path | None:
    version = production_version(serving_dir)
    return serving_dir / version if version else None


def fingerprint(model_dir: Path) -> str:
    """Hash of a SavedModel folder's files and their relative paths: equal for byte-identical models."""
    digest = hashlib.sha256()
    for root, folders, files in os.walk(model_dir):
        folders.sort()
        for name in sorted(files):
            path = Path(root) / name
            digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def production_fingerprint(serving_dir: Path) -> str:
    """What a baseline depends on: the production model's content, or '' when nothing is in production."""
    path = production_path(serving_dir)
    return fingerprint(path) if path else ""


def rollback_of_model(serving_dir: Path, model_fingerprint: str) -> Rollback | None:
    """The rollback that rejected a model with this content, if any (under whatever version number)."""
    return next((r for r in rollbacks(serving_dir) if r.fingerprint == model_fingerprint), None)


def version_with_model(serving_dir: Path, model_fingerprint: str) -> str | None:
    """The newest complete version holding a model with this content, if any."""
    for version in reversed(complete_versions(serving_dir)):
        if fingerprint(serving_dir / version) == model_fingerprint:
            return version
    return None


def write_version(serving_dir: Path, model_dir: Path, version: str) -> Path:
    """Copies the SavedModel in `model_dir` to `serving_dir/<version>`, visible only once complete."""
    if not version.isdigit():
        raise RegistryError(f"Version {version!r} is not a number: serving loads digit-named folders only.")
    target = serving_dir / version
    if target.exists():
        raise RegistryError(f"{target} exists already: a version is written once and never overwritten.")
    staging = serving_dir / f"{PUSHING_PREFIX}{version}"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(model_dir, staging)
    _sync_tree(staging)
    staging.rename(target)
    _sync(serving_dir)
    return target


def partial_pushes(serving_dir: Path) -> list[Path]:
    """Pushes that never completed (their process was killed mid-copy)."""
    if not serving_dir.is_dir():
        return []
    return sorted(p for p in serving_dir.iterdir() if p.is_dir() and p.name.startswith(PUSHING_PREFIX))


def quarantined(serving_dir: Path) -> list[Path]:
    """Partial pushes moved aside by `quarantine_partial_pushes`, oldest first."""
    folder = serving_dir / QUARANTINE_DIR
    return sorted(folder.iterdir()) if folder.is_dir() else []


def quarantine_partial_pushes(serving_dir: Path) -> list[Path]:
    """Moves every partial push to `.quarantine/`, where it is kept but never loaded; returns the new paths.

    Only call this while no push can be running: a run holds the output folder's lock while it does.
    """
    moved = []
    for partial in partial_pushes(serving_dir):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = serving_dir / QUARANTINE_DIR / f"{partial.name.removeprefix('.')}-found-{stamp}"
        target.parent.mkdir(exist_ok=True)
        partial.rename(target)
        moved.append(target)
    return moved


def record_rollback(serving_dir: Path, to_version: str | None = None, reason: str = "") -> list[Rollback]:
    """Rolls production back to `to_version` (default: the version before production); returns the
    rollbacks recorded, one per version newer than the target that was still live.

    Raises RegistryError when there is nothing to roll back to.
    """
    live = [v for v in complete_versions(serving_dir) if v not in rolled_back_versions(serving_dir)]
    if not live:
        raise RegistryError(f"Nothing is in production in {serving_dir}: there is nothing to roll back.")
    if to_version is None:
        if len(live) < 2:
            raise RegistryError(
                f"Only version {live[-1]} is in production in {serving_dir}, and no earlier live version "
                "exists to roll back to. Undo an earlier rollback first, or push a new model."
            )
        to_version = live[-2]
    if to_version not in live:
        raise RegistryError(
            f"Version {to_version} cannot become production: the live versions in {serving_dir} are "
            f"{', '.join(live)} (rolled back: {', '.join(sorted(rolled_back_versions(serving_dir), key=int)) or 'none'})."
        )
    if to_version == live[-1]:
        raise RegistryError(f"Version {to_version} is production already in {serving_dir}.")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    recorded = [
        Rollback(version, fingerprint(serving_dir / version), now, to_version, reason)
        for version in live
        if int(version) > int(to_version)
    ]
    _write_rollbacks(serving_dir, [*rollbacks(serving_dir), *recorded])
    return recorded


def reject(serving_dir: Path, version: str, reason: str) -> Rollback:
    """Rolls back one version (a canary or a switch that failed): it never serves or is pushed again, until
    undone; production becomes the newest live version without it."""
    if version not in complete_versions(serving_dir):
        raise RegistryError(
            f"Version {version} is not a complete version in {serving_dir}: nothing to roll back."
        )
    already = next((r for r in rollbacks(serving_dir) if r.version == version), None)
    if already:
        return already
    remaining = [
        v
        for v in complete_versions(serving_dir)
        if v != version and v not in rolled_back_versions(serving_dir)
    ]
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rollback = Rollback(
        version, fingerprint(serving_dir / version), now, remaining[-1] if remaining else None, reason
    )
    _write_rollbacks(serving_dir, [*rollbacks(serving_dir), rollback])
    return rollback


def undo_rollback(serving_dir: Path, version: str) -> Rollback:
    """Lets a rolled-back version serve (and its model be pushed) again; returns the rollback undone."""
    kept, undone = [], None
    for rollback in rollbacks(serving_dir):
        if rollback.version == version:
            undone = rollback
        else:
            kept.append(rollback)
    if undone is None:
        raise RegistryError(
            f"Version {version} is not rolled back in {serving_dir} (rolled back: "
            f"{', '.join(sorted(rolled_back_versions(serving_dir), key=int)) or 'none'})."
        )
    _write_rollbacks(serving_dir, kept)
    return undone


def _write_rollbacks(serving_dir: Path, entries: list[Rollback]) -> None:
    path = serving_dir / ROLLBACKS_FILE
    temporary = path.with_name(f".{ROLLBACKS_FILE}.tmp")
    temporary.write_text(
        json.dumps({"rolled_back": [dataclasses.asdict(e) for e in entries]}, indent=2) + "\n"
    )
    _sync(temporary)
    temporary.replace(path)
    _sync(serving_dir)


def _sync(path: Path) -> None:
    """Flushes a file's or a folder's entries to disk, so a rename survives a power loss."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            _sync(Path(root) / name)
        _sync(Path(root))
