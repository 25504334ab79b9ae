"""The cluster manifests fit the KServe and Istio CRD schemas, read strictly (a typo or an out-of-range
share is refused), and say what each pattern needs."""

import pytest
import yaml

from kubeflow import serving_manifests as k8s
from tests.support.outputs import saved_model


def test_a_canary_is_a_serverless_inference_service_with_its_share():
    [(name, manifest)] = k8s.manifests("100", "200", 10, shadow=False, host="taxi.example.com").items()
    assert name == "inference-service.yaml"
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    predictor = manifest["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10 and predictor["model"]["storageUri"].endswith(
        "/kserve/200"
    )


def test_a_shadow_is_a_second_service_and_an_istio_mirror():
    found = k8s.manifests("100", "200", None, shadow=True, host="taxi.example.com")
    route = found["virtual-service-shadow.yaml"]["spec"]["http"][0]
    assert route["mirror"]["host"].startswith("taxi-shadow-predictor.") and route["mirrorPercentage"] == {
        "value": 100.0
    }
    assert found["inference-service-shadow.yaml"]["spec"]["predictor"]["model"]["storageUri"].endswith("/200")


@pytest.mark.parametrize(
    "broken",
    [
        lambda m: m["spec"]["predictor"].update(canaryTrafficPercent="ten"),
        lambda m: m["spec"]["predictor"]["model"].update(modelFormat="tensorflow"),
        lambda m: m["spec"].update(predictor=[]),
    ],
)
def test_the_schema_refuses_a_malformed_inference_service(broken):
    manifest = k8s.inference_service("taxi", "200", 10)
    broken(manifest)
    with pytest.raises(k8s.ManifestError):
        k8s.validate(manifest)


def test_the_schema_refuses_a_malformed_mirror():
    manifest = k8s.shadow_virtual_service("taxi", "taxi.example.com")
    manifest["spec"]["http"][0]["mirrorPercentage"] = {"value": "all"}
    with pytest.raises(k8s.ManifestError):
        k8s.validate(manifest)


def _predictor(manifest: dict) -> dict:
    return manifest["spec"]["predictor"]


def _route(manifest: dict) -> dict:
    return manifest["spec"]["http"][0]


@pytest.mark.parametrize(
    "make, typo, expected",
    [
        (
            lambda: k8s.inference_service("taxi", "200", 10),
            lambda m: _predictor(m).update(canaryTrafficPrecent=_predictor(m).pop("canaryTrafficPercent")),
            "spec.predictor: Additional properties are not allowed ('canaryTrafficPrecent' was unexpected)",
        ),
        (
            lambda: k8s.inference_service("taxi", "200", 10),
            lambda m: _predictor(m).update(canaryTrafficPercent=250),
            "spec.predictor.canaryTrafficPercent: 250 is greater than the maximum of 100",
        ),
        (
            lambda: k8s.shadow_virtual_service("taxi", "taxi.example.com"),
            lambda m: _route(m).update(mirorr=_route(m).pop("mirror")),
            "spec.http.0: Additional properties are not allowed ('mirorr' was unexpected)",
        ),
        (
            lambda: k8s.shadow_virtual_service("taxi", "taxi.example.com"),
            lambda m: _route(m).update(mirrorPercentage={"value": 500}),
            "spec.http.0.mirrorPercentage.value: 500 is greater than the maximum of 100",
        ),
        (
            lambda: k8s.inference_service("taxi", "200", 10),
            lambda m: m["metadata"].update(anotations=m["metadata"].pop("annotations")),
            "metadata: Additional properties are not allowed ('anotations' was unexpected)",
        ),
    ],
)
def test_a_typo_or_a_share_out_of_range_is_refused_naming_the_field(make, typo, expected):
    manifest = make()
    k8s.validate(manifest)  # as written, it fits
    typo(manifest)
    with pytest.raises(k8s.ManifestError) as refused:
        k8s.validate(manifest, "the.yaml")
    assert str(refused.value) == f"the.yaml ({manifest['kind']}): {expected}"


def test_a_canary_share_out_of_range_from_the_command_line_is_refused():
    with pytest.raises(k8s.ManifestError, match="inference-service.yaml .*canaryTrafficPercent: -5 is less"):
        k8s.manifests("100", "200", -5, shadow=False, host="taxi.example.com")


# KServe's TF Serving runtime (config/runtimes/kserve-tensorflow-serving.yaml, v0.15): its container's args,
# `{{.Name}}` being the InferenceService's name. KServe appends the predictor's args after them
# (MergeRuntimeContainers), and TF Serving's flag parser keeps a repeated flag's last value.
RUNTIME_ARGS = [
    "--model_name={{.Name}}",
    "--port=9000",
    "--rest_api_port=8080",
    "--model_base_path=/mnt/models",
    "--rest_api_timeout_in_ms=60000",
]


def _served_model_name(inference_service: dict) -> str:
    runtime = [arg.replace("{{.Name}}", inference_service["metadata"]["name"]) for arg in RUNTIME_ARGS]
    args = runtime + _predictor(inference_service)["model"].get("args", [])
    return [arg.split("=", 1)[1] for arg in args if arg.startswith(f"{k8s.MODEL_NAME_FLAG}=")][-1]


def test_mirrored_requests_reach_a_model_of_the_name_they_ask_for():
    """The shadow's InferenceService is `taxi-shadow`, and the runtime would name its model so: mirrored
    `/v1/models/taxi` requests would get 404 but for the model's name, `taxi`, in the predictor's args."""
    found = k8s.manifests("100", "200", None, shadow=True, host="taxi.example.com")
    route = _route(found["virtual-service-shadow.yaml"])
    shadow = found["inference-service-shadow.yaml"]
    assert route["mirror"]["host"].startswith(f"{shadow['metadata']['name']}-predictor.")
    for manifest in (found["inference-service.yaml"], shadow):
        assert route["match"][0]["uri"]["prefix"] == f"/v1/models/{_served_model_name(manifest)}"
    assert _served_model_name(dict(shadow, spec={"predictor": {"model": {}}})) == "taxi-shadow"


def test_writing_lays_each_version_out_as_tf_serving_loads_it(tmp_path):
    serving = tmp_path / "serving_model"
    saved_model(serving / "200", b"weights")
    written = k8s.write(tmp_path / "manifests", serving, k8s.manifests("100", "200", 5, False, "h"), ["200"])
    assert yaml.safe_load(written[0].read_text())["kind"] == "InferenceService"
    assert (tmp_path / "kserve" / "200" / "200" / "saved_model.pb").read_bytes() == b"graph"
