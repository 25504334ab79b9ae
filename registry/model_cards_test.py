"""Model cards beside the pushed versions: stored once, whole, never overwritten, and never taken for a
version or a version's part by the registry."""

import pytest

from registry import model_cards, versions
from tests.support.outputs import pushed_version, tree_digest

CARD = {
    "model_card.json": b'{"schema_version": "0.0.2"}\n',
    "model_card.html": b"<!DOCTYPE html><h1>card</h1>",
}


def test_a_card_beside_a_version_leaves_the_version_whole_and_production(tmp_path):
    pushed_version(tmp_path, "1700000000", b"weights")
    fingerprint = versions.fingerprint(tmp_path / "1700000000")

    stored = model_cards.store(tmp_path, "1700000000", CARD)

    assert stored == tmp_path / model_cards.MODEL_CARDS_DIR / "1700000000"
    assert {p.name: p.read_bytes() for p in stored.iterdir()} == CARD
    assert versions.complete_versions(tmp_path) == ["1700000000"]
    assert versions.production_version(tmp_path) == "1700000000"
    assert versions.why_not_whole(tmp_path, "1700000000") == ""
    assert versions.not_whole(tmp_path) == [] and versions.quarantine_not_whole(tmp_path) == []
    assert versions.fingerprint(tmp_path / "1700000000") == fingerprint
    assert stored.is_dir()  # quarantine left it where it is


def test_the_same_card_again_is_a_no_op_and_a_different_one_is_refused_keeping_the_first(tmp_path):
    stored = model_cards.store(tmp_path, "1700000000", CARD)
    before = tree_digest(tmp_path)
    assert model_cards.store(tmp_path, "1700000000", CARD) == stored
    assert tree_digest(tmp_path) == before

    changed = dict(CARD, **{"model_card.html": b"<!DOCTYPE html><h1>another card</h1>"})
    with pytest.raises(model_cards.CardExists, match=r"1700000000.*different model card.*kept as written"):
        model_cards.store(tmp_path, "1700000000", changed)
    assert tree_digest(tmp_path) == before  # no staging folder left behind either


def test_a_card_needs_a_version_number(tmp_path):
    with pytest.raises(ValueError, match="'latest' is not a number"):
        model_cards.store(tmp_path, "latest", CARD)
    assert not (tmp_path / model_cards.MODEL_CARDS_DIR).exists()
