"""Each pushed version's model card, kept in the serving directory beside the versions, never inside one.

    model_cards/<version>/   model_card.json and model_card.html of version <version>

A version folder is whole only when its files are exactly those of its completion record
(registry/completion.py), and the model's fingerprint covers every file in it: a card written into the
folder after the push would make the version not whole, and a card written before would make two
pushes of the same model differ. So cards live in `model_cards/`, which is not digit-named: the registry,
the model server, the serving check and TF Serving itself only load digit-named folders.

A card is written once, whole (a staging folder renamed into place), and never overwritten.
"""

import filecmp
import os
import shutil
import tempfile
from pathlib import Path

from registry import completion

MODEL_CARDS_DIR = "model_cards"


class CardExists(Exception):
    """A different card is stored for this version already: it is kept, as it was written."""


def card_dir(serving_dir: Path, version: str) -> Path:
    return serving_dir / MODEL_CARDS_DIR / version


def store(serving_dir: Path, version: str, files: dict[str, bytes]) -> Path:
    """Writes `files` (name -> content) as version `version`'s card; returns its folder.

    The same card stored again (a retried step) is a no-op. Raises CardExists when a different card is
    stored for the version: the stored one stays.
    """
    if not version.isdigit():
        raise ValueError(f"Version {version!r} is not a number: cards are kept per pushed version.")
    target = card_dir(serving_dir, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".writing-{version}-"))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the card from whoever serves or reads the directory
    try:
        for name, content in files.items():
            (staging / name).write_bytes(content)
            completion.sync(staging / name)
        if target.exists():
            _check_same(target, staging, files)
            return target
        try:
            os.rename(staging, target)  # fails on an existing, non-empty target: never overwrites
        except OSError:
            _check_same(target, staging, files)
            return target
        completion.sync(target.parent)
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _check_same(target: Path, staging: Path, files: dict[str, bytes]) -> None:
    stored = sorted(entry.name for entry in target.iterdir())
    if stored != sorted(files) or not all(filecmp.cmp(staging / n, target / n, shallow=False) for n in files):
        raise CardExists(
            f"{target} holds a different model card for version {target.name} (files: {', '.join(stored)}); "
            "it is kept as written. Move it aside by hand if this card should replace it."
        )
