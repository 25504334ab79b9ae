"""The control plane's tokens: made once, owner-only, kept across starts, refused when others may read
them, and compared whole."""

import os
import stat

import pytest

from serving import credentials


def test_tokens_are_made_once_owner_only_and_distinct(tmp_path):
    made = credentials.ensure(tmp_path)
    assert set(made) == {credentials.FEEDBACK, credentials.ADMIN}
    assert stat.S_IMODE(credentials.folder(tmp_path).stat().st_mode) == 0o700
    tokens = {}
    for role, path in made.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        tokens[role] = credentials.read(tmp_path, role)
        assert len(tokens[role]) >= 40
    assert tokens[credentials.FEEDBACK] != tokens[credentials.ADMIN]
    credentials.ensure(tmp_path)  # a restart keeps them: senders configured with them keep working
    assert {role: credentials.read(tmp_path, role) for role in made} == tokens


def test_a_token_others_may_read_is_refused_naming_the_file(tmp_path):
    path = credentials.ensure(tmp_path)[credentials.ADMIN]
    os.chmod(path, 0o644)
    with pytest.raises(
        credentials.CredentialError, match=r"admin\.token is readable by others \(mode -rw-r--r--\)"
    ):
        credentials.ensure(tmp_path)
    path.unlink()
    with pytest.raises(credentials.CredentialError, match="does not exist"):
        credentials.read(tmp_path, credentials.ADMIN)
    credentials.ensure(tmp_path)  # deleting the file is how a leaked token is replaced
    assert credentials.read(tmp_path, credentials.ADMIN)


def test_only_the_whole_bearer_header_is_authorized(tmp_path):
    credentials.ensure(tmp_path)
    token = credentials.read(tmp_path, credentials.FEEDBACK)
    assert credentials.authorized(f"Bearer {token}", token)
    assert credentials.bearer(tmp_path, credentials.FEEDBACK) == {"Authorization": f"Bearer {token}"}
    for sent in (
        None,
        "",
        token,
        f"Bearer {token[:-1]}",
        f"Bearer {token}x",
        f"bearer {token}",
        "Bearer é\udcff",
    ):
        assert not credentials.authorized(sent, token), sent
