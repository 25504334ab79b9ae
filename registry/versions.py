"""The serving directory: which pushed model versions are whole, which one is production, the record of
rollbacks, and the one lock every change takes. The pipeline (ProductionModel, Pusher), serving and the CLI
all read and write it here.

Layout of the serving directory (`outputs/serving_model/`):

    <version>/            a SavedModel and its completion record, `completion.json`, written last
                          (registry/completion.py); the version is the push's Unix time (digits only)
    .pushing-<version>/   a push in progress: the model is copied here and recorded, then the folder is
                          renamed, so a version appears whole or not at all (on the Kubeflow volume too)
    .quarantine/          folders that are not whole, moved aside for inspection and never deleted;
                          `log.jsonl` says when each was moved and why
    model_cards/<version>/  the version's model card (registry/model_cards.py): beside the version, not in it
    rollbacks.json        the versions rolled back (by a person or the canary analysis): never production,
                          never pushed again, until the rollback is undone
    registry.json         since when versions carry completion records, and the older ones adopted then
    .registry.lock        held by every change: a push's decision and copy, rollbacks, quarantine, adoption

A version is whole when its completion record is there and its files match it. Production is the newest
whole version that is not rolled back; a folder that is not whole is never production, whoever wrote it.
`not_whole` names each such folder and why, `quarantine_not_whole` moves them aside (a run does, as it
starts), and `adopt` records a model copied in by hand once it was checked to load (`taxi-pipeline adopt`).

Versions pushed before completion records existed: the first change to a directory without
`registry.json` records each version folder that has every part of a SavedModel (completion.py) as
adopted, and lists them there; the others are not whole from then on. Until that first change, readers
apply the same rule to folders without a record.

Every read-modify-write holds `.registry.lock` (an `flock`, which the kernel releases when its holder dies,
however it dies), so two writers never interleave: `taxi-pipeline rollback`, serving's rollback and its
canary analysis, and the Pushers of two Kubeflow runs included. Readers take no lock: whatever they read
is replaced whole, by a rename. Renames are atomic on a POSIX filesystem (a local disk, the Kubeflow
shared volume), and `flock` holds across NFS v4 clients.
"""

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from registry import completion
from registry.completion import RECORD_FILE, SAVED_MODEL_FILE

__all__ = ["RECORD_FILE", "SAVED_MODEL_FILE"]  # re-exported: callers know one module

PUSHING_PREFIX = ".pushing-"
QUARANTINE_DIR = ".quarantine"
QUARANTINE_LOG = "log.jsonl"
ROLLBACKS_FILE = "rollbacks.json"
REGISTRY_FILE = "registry.json"
LOCK_FILE = ".registry.lock"
# Who wrote a completion record: the Pusher, `taxi-pipeline adopt`, or the first change to a directory
# whose versions predate records.
WRITTEN_BY_PUSHER, WRITTEN_BY_ADOPT, WRITTEN_BY_UPGRADE = "pusher", "adopt", "adopted: pushed before records"
PARTIAL_PUSH = "a push that never completed (its process was killed while copying)"


class RegistryError(Exception):
    """A request the serving directory cannot honour, explained: which version, and what exists."""


@dataclasses.dataclass(frozen=True)
class Rollback:
    """A decision that `version` must not serve: recorded with the model's content fingerprint, so the same
    model is never pushed again under a new version number."""

    version: str
    fingerprint: str
    rolled_back_at: str  # ISO 8601, UTC
    production_after: str | None  # the version production returned to
    reason: str


@dataclasses.dataclass(frozen=True)
class NotWhole:
    """A folder that is not (or was not) a whole version, and why."""

    path: Path
    reason: str


# --- the lock ---------------------------------------------------------------------------------------

_held = threading.local()


@contextlib.contextmanager
def locked(serving_dir: Path) -> Iterator[None]:
    """Holds the registry's lock for the `with` block (waiting for it); re-entrant within a thread.

    Creates the directory if needed. The first holder on a directory whose versions predate completion
    records records the whole ones (`begin_records`).
    """
    held = _held.__dict__.setdefault("folders", set())
    key = os.path.realpath(serving_dir)
    if key in held:
        yield
        return
    serving_dir.mkdir(parents=True, exist_ok=True)
    with (serving_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.add(key)
        try:
            _begin_records_locked(serving_dir)
            yield
        finally:
            held.discard(key)


def begin_records(serving_dir: Path) -> list[str]:
    """Once per directory, by the first holder of its lock: records every version folder without a record
    that has all of a SavedModel's parts, and lists them in registry.json. Returns them when this call
    began the records (empty when they had begun already)."""
    if records_began(serving_dir):
        return []
    with locked(serving_dir):  # which begins them
        return json.loads((serving_dir / REGISTRY_FILE).read_text())["adopted_without_record"]


def _begin_records_locked(serving_dir: Path) -> None:
    if records_began(serving_dir):
        return
    adopted = [
        folder.name
        for folder in _version_folders(serving_dir)
        if not (folder / RECORD_FILE).is_file() and not completion.missing_saved_model_parts(folder)
    ]
    for version in adopted:
        completion.write_record(serving_dir / version, WRITTEN_BY_UPGRADE)
    completion.write_json(
        serving_dir / REGISTRY_FILE, {"records_since": _now(), "adopted_without_record": adopted}
    )


def records_began(serving_dir: Path) -> bool:
    return (serving_dir / REGISTRY_FILE).is_file()


# --- which versions are whole, and production --------------------------------------------------------


def _version_folders(serving_dir: Path) -> list[Path]:
    if not serving_dir.is_dir():
        return []
    found = [entry for entry in serving_dir.iterdir() if entry.name.isdigit() and entry.is_dir()]
    return sorted(found, key=lambda entry: int(entry.name))


def why_not_whole(serving_dir: Path, version: str) -> str:
    """'' when version `version` is whole, else why not (for a person)."""
    return completion.why_not_whole(serving_dir / version, legacy_allowed=not records_began(serving_dir))


def complete_versions(serving_dir: Path) -> list[str]:
    """Every whole version, oldest first (rolled-back ones included)."""
    legacy_allowed = not records_began(serving_dir)
    return [
        folder.name
        for folder in _version_folders(serving_dir)
        if not completion.why_not_whole(folder, legacy_allowed)
    ]


def partial_pushes(serving_dir: Path) -> list[Path]:
    """Pushes that never completed (their process was killed mid-copy)."""
    if not serving_dir.is_dir():
        return []
    return sorted(p for p in serving_dir.iterdir() if p.is_dir() and p.name.startswith(PUSHING_PREFIX))


def not_whole(serving_dir: Path) -> list[NotWhole]:
    """Every folder of the directory that is not a whole version (never production), and why."""
    legacy_allowed = not records_began(serving_dir)
    found = [NotWhole(path, PARTIAL_PUSH) for path in partial_pushes(serving_dir)]
    for folder in _version_folders(serving_dir):
        reason = completion.why_not_whole(folder, legacy_allowed)
        if reason:
            found.append(NotWhole(folder, f"version {folder.name} is not whole: {reason}"))
    return found


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


def live_versions(serving_dir: Path) -> list[str]:
    """The whole versions that are not rolled back, oldest first: production is the last."""
    excluded = rolled_back_versions(serving_dir)
    return [version for version in complete_versions(serving_dir) if version not in excluded]


def production_version(serving_dir: Path) -> str | None:
    """The newest whole version that is not rolled back; None when there is none."""
    live = live_versions(serving_dir)
    return live[-1] if live else None


def production_path(serving_dir: Path) -> Path | None:
    version = production_version(serving_dir)
    return serving_dir / version if version else None


def fingerprint(model_dir: Path) -> str:
    """Hash of a SavedModel folder's files and their relative paths, its completion record left out: equal
    for byte-identical models, wherever they are."""
    digest = hashlib.sha256()
    for relative, path in completion.model_files(model_dir).items():
        digest.update(relative.encode() + b"\0")
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
    """The newest whole version holding a model with this content, if any."""
    for version in reversed(complete_versions(serving_dir)):
        if fingerprint(serving_dir / version) == model_fingerprint:
            return version
    return None


def report(serving_dir: Path) -> dict:
    """What a person is told about the directory (run summary, `serve status`): production, and every
    folder that is not whole, in place or quarantined, with why."""
    return {
        "path": str(serving_dir),
        "production_version": production_version(serving_dir),
        "not_whole": [{"path": str(f.path), "reason": f.reason} for f in not_whole(serving_dir)],
        "quarantined": [{"path": str(f.path), "reason": f.reason} for f in quarantined(serving_dir)],
    }


# --- writing versions ---------------------------------------------------------------------------------


def next_version(serving_dir: Path) -> str:
    """A new version number: the Unix time, later than every version folder there (two pushes in a second)."""
    existing = [int(folder.name) for folder in _version_folders(serving_dir)]
    return str(max(int(time.time()), max(existing, default=0) + 1))


def write_version(
    serving_dir: Path, model_dir: Path, version: str, written_by: str = WRITTEN_BY_PUSHER
) -> Path:
    """Copies the SavedModel in `model_dir` to `serving_dir/<version>` with its completion record, visible
    only once whole. Holds the registry's lock (callers deciding what to push hold it around the decision)."""
    if not version.isdigit():
        raise RegistryError(f"Version {version!r} is not a number: serving loads digit-named folders only.")
    with locked(serving_dir):
        target = serving_dir / version
        if target.exists():
            raise RegistryError(f"{target} exists already: a version is written once and never overwritten.")
        staging = serving_dir / f"{PUSHING_PREFIX}{version}"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(model_dir, staging)
        completion.write_record(staging, written_by)
        staging.rename(target)
        completion.sync(serving_dir)
        return target


def adopt(serving_dir: Path, source: Path, version: str | None = None) -> str:
    """Records a model copied in by hand, which the caller checked loads, as a whole version; returns it.

    A digit-named folder of the serving directory is recorded where it is. Any other folder (one in
    `.quarantine/`, one elsewhere) is copied in whole as `version` (default: a new number, so it becomes
    production). A model rolled back before is refused, as the Pusher refuses it.
    """
    in_place = source.parent.resolve() == serving_dir.resolve() and source.name.isdigit()
    with locked(serving_dir):
        rollback = rollback_of_model(serving_dir, fingerprint(source))
        if rollback:
            raise RegistryError(
                f"{source} holds the model rolled back as version {rollback.version} ({rollback.rolled_back_at}"
                + (f": {rollback.reason}" if rollback.reason else "")
                + f"); `taxi-pipeline rollback --undo {rollback.version}` first if it may serve again."
            )
        if not in_place:
            return write_version(
                serving_dir, source, version or next_version(serving_dir), WRITTEN_BY_ADOPT
            ).name
        if version and version != source.name:
            raise RegistryError(f"{source} is version {source.name} already: adopt it without --version.")
        if (source / RECORD_FILE).is_file() and not why_not_whole(serving_dir, source.name):
            raise RegistryError(f"Version {source.name} is whole already in {serving_dir}: nothing to adopt.")
        completion.write_record(source, WRITTEN_BY_ADOPT)
        return source.name


# --- quarantine -----------------------------------------------------------------------------------------


def quarantined(serving_dir: Path) -> list[NotWhole]:
    """The folders moved aside, oldest first, each with why (as logged when it was moved)."""
    folder = serving_dir / QUARANTINE_DIR
    if not folder.is_dir():
        return []
    log = folder / QUARANTINE_LOG
    reasons = {}
    for line in log.read_text().splitlines() if log.is_file() else []:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            entry = json.loads(line)
            reasons[entry["moved_to"]] = entry["reason"]
    return [
        NotWhole(path, reasons.get(path.name, PARTIAL_PUSH))  # before reasons were logged: partial pushes
        for path in sorted(p for p in folder.iterdir() if p.is_dir())
    ]


def quarantine_not_whole(serving_dir: Path) -> list[NotWhole]:
    """Moves every folder that is not a whole version to `.quarantine/`, where it is kept but never loaded;
    returns where each went, and why. Under the registry's lock, so never a push in progress."""
    if not serving_dir.is_dir():
        return []
    moved = []
    with locked(serving_dir):
        for found in not_whole(serving_dir):
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            target = serving_dir / QUARANTINE_DIR / f"{found.path.name.removeprefix('.')}-found-{stamp}"
            while target.exists():
                target = target.with_name(target.name + "+")
            target.parent.mkdir(exist_ok=True)
            found.path.rename(target)
            with (target.parent / QUARANTINE_LOG).open("a") as log:
                log.write(
                    json.dumps(
                        {
                            "moved_from": found.path.name,
                            "moved_to": target.name,
                            "at": _now(),
                            "reason": found.reason,
                        }
                    )
                    + "\n"
                )
            moved.append(NotWhole(target, found.reason))
        if moved:
            completion.sync(serving_dir)
    return moved


# --- rollbacks ------------------------------------------------------------------------------------------


def record_rollback(serving_dir: Path, to_version: str | None = None, reason: str = "") -> list[Rollback]:
    """Rolls production back to `to_version` (default: the version before production); returns the
    rollbacks recorded, one per version newer than the target that was still live.

    Raises RegistryError when there is nothing to roll back to.
    """
    with locked(serving_dir):
        live = live_versions(serving_dir)
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
        now = _now()
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
    with locked(serving_dir):
        if version not in complete_versions(serving_dir):
            raise RegistryError(
                f"Version {version} is not a whole version in {serving_dir}: nothing to roll back."
            )
        already = next((r for r in rollbacks(serving_dir) if r.version == version), None)
        if already:
            return already
        remaining = [v for v in live_versions(serving_dir) if v != version]
        rollback = Rollback(
            version, fingerprint(serving_dir / version), _now(), remaining[-1] if remaining else None, reason
        )
        _write_rollbacks(serving_dir, [*rollbacks(serving_dir), rollback])
        return rollback


def undo_rollback(serving_dir: Path, version: str) -> Rollback:
    """Lets a rolled-back version serve (and its model be pushed) again; returns the rollback undone."""
    with locked(serving_dir):
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
    completion.write_json(
        serving_dir / ROLLBACKS_FILE, {"rolled_back": [dataclasses.asdict(e) for e in entries]}
    )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
