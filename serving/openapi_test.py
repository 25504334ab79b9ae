"""serving/openapi.yaml is what serving/openapi.py builds from the code today, and a valid OpenAPI 3
document whose every path is served: the public ones on the public port, feedback and the monitor's
figures on the control listener only."""

import schemathesis

from config import monitoring as monitoring_config
from serving import openapi, release_api, traffic

CONTROL_PATHS = {monitoring_config.FEEDBACK_PATH, monitoring_config.MONITOR_PATH, *release_api.paths_served()}


def test_the_checked_in_document_is_the_one_the_code_builds():
    assert openapi.DOCUMENT.read_text() == openapi.render(), "run `python -m serving.openapi` and commit"


def test_the_document_is_valid_and_its_control_paths_are_on_the_control_listener(tmp_path):
    schema = schemathesis.openapi.from_path(openapi.DOCUMENT)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12 + len(release_api.paths_served())
    document = openapi.document()
    for path, item in document["paths"].items():
        on_control = item.get("servers") == openapi.CONTROL_SERVERS
        assert on_control == (path in CONTROL_PATHS), path
        for operation in (item[method] for method in ("get", "post") if method in item):
            assert ("security" in operation) == on_control, path
    monitor = traffic.Service("monitor", 41003, tuple(CONTROL_PATHS))
    conf = traffic.render(
        traffic.Traffic(traffic.SINGLE, traffic.Backend("100", (41001,)), services=(monitor,)),
        8500,
        str(tmp_path),
        8501,
    )
    public, control = conf.split("listen 127.0.0.1:8501;")
    for path in CONTROL_PATHS:
        assert f"location = {path} {{" in control and path not in public
