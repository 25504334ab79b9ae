"""The release API's handlers, in process (Starlette's test client) over a real serving directory and the
stack's real tokens, with no stack running: who may call it, and how each bad input is refused with the
field it names. Releases that move traffic through nginx: tests/e2e/test_serving_stack.py."""

import pytest
from starlette.testclient import TestClient

from config import serving as serving_config
from registry import versions
from serving import credentials, release_api
from serving.stack_state import StackPaths
from tests.support.outputs import pushed_version

RELEASES = serving_config.RELEASES_PATH


@pytest.fixture
def paths(tmp_path):
    paths = StackPaths(tmp_path / "serving", tmp_path / "stack", tmp_path / "request_log")
    pushed_version(paths.serving_dir, "100", b"weights")
    credentials.ensure(paths.root)
    return paths


@pytest.fixture
def client(paths):
    return TestClient(release_api.create_app(paths))


def _admin(paths) -> dict:
    return credentials.bearer(paths.root, credentials.ADMIN)


@pytest.mark.parametrize("path", release_api.paths_served())
def test_every_path_needs_the_admin_token_and_refuses_the_feedback_one(paths, client, path):
    method = client.get if path == RELEASES else client.post
    for headers in ({}, {"Authorization": "Bearer guess"}, {"Authorization": "Basic x"}):
        answer = method(path, headers=headers)
        assert answer.status_code == 401 and "admin token" in answer.json()["error"], answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
    answer = method(path, headers=credentials.bearer(paths.root, credentials.FEEDBACK))
    assert answer.status_code == 403 and "admin token" in answer.json()["error"], answer.text


def test_status_answers_what_serve_status_says(paths, client):
    answer = client.get(RELEASES, headers=_admin(paths))
    assert answer.status_code == 200, answer.text
    assert answer.json()["running"] is False
    assert answer.json()["serving_directory"]["production_version"] == "100"


@pytest.mark.parametrize(
    ("path", "body", "status", "field", "says"),
    [
        ("canary", {"version": "100", "percent": 150}, 400, "percent", "at most 100"),
        ("canary", {"version": "100", "percent": 0}, 400, "percent", "above 0"),
        ("canary", {"version": "100", "percent": "10"}, 400, "percent", "expected a number"),
        ("canary", {"version": "100", "percent": True}, 400, "percent", "expected a number"),
        ("canary", {"version": "100"}, 400, "percent", "not nothing"),
        ("canary", {"percent": 10}, 400, "version", "expected a version number"),
        ("canary", {"version": "200", "percent": 10}, 404, "version", "version 200 is not a complete"),
        ("switch", {"version": 200}, 404, "version", "version 200 is not a complete"),
        ("shadow", {"version": "../100"}, 400, "version", "expected a version number"),
        ("shadow", {"version": "1" * 30}, 400, "version", "30 digits"),
        ("switch", {"version": "100", "force": True}, 400, "force", "switch takes version; not 'force'"),
        ("promote", {"version": "100"}, 400, "version", "promote takes no fields"),
        ("rollback", {"reason": 5}, 400, "reason", "expected a string"),
        ("rollback", {"reason": "x" * 501}, 400, "reason", "more than the 500 kept"),
    ],
)
def test_a_bad_field_is_a_4xx_naming_it(paths, client, path, body, status, field, says):
    answer = client.post(f"{RELEASES}/{path}", json=body, headers=_admin(paths))
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and says in answer.json()["error"], answer.text


@pytest.mark.parametrize(
    ("content", "headers", "status", "says"),
    [
        (b"[1, 2]", {}, 400, "JSON object"),
        (b'{"version": ', {}, 400, "malformed JSON"),
        (b"\xff\xfe", {}, 400, "malformed JSON"),
        (b"[" * 5000 + b"]" * 5000, {}, 400, "malformed JSON"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (b" " * (serving_config.SERVING_MAX_BODY_BYTES + 1), {}, 413, "bytes"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(paths, client, content, headers, status, says):
    answer = client.post(f"{RELEASES}/switch", content=content, headers={**headers, **_admin(paths)})
    assert answer.status_code == status and says in answer.json()["error"], answer.text


def test_what_the_stack_cannot_do_now_is_a_409_and_changes_nothing(paths, client):
    """No stack runs: each release is refused as the command is, and the registry records no rollback."""
    for path, body in (("promote", None), ("rollback", {"reason": "test"}), ("switch", {"version": "100"})):
        answer = client.post(f"{RELEASES}/{path}", json=body, headers=_admin(paths))
        assert answer.status_code == 409 and "not running" in answer.json()["error"], answer.text
    assert versions.rollbacks(paths.serving_dir) == []
    assert not (paths.root / "state.json").exists()


def test_answers_are_counted_by_action_and_status(paths, client):
    client.post(f"{RELEASES}/promote")
    client.get(RELEASES, headers=_admin(paths))
    metrics = client.get("/metrics").text
    assert 'taxi_release_requests_total{action="promote",status="401"} 1.0' in metrics
    assert 'taxi_release_requests_total{action="status",status="200"} 1.0' in metrics
