"""The serving patterns on a cluster: KServe and Istio manifests for the pushed versions, validated
strictly against the CRDs' published schemas (kubeflow/serving_schemas/, SOURCES.md there says from where
and what `strict_schema` adds to them).

- **Canary**: a KServe `InferenceService` with the TF Serving runtime on the candidate's SavedModel and
  `canaryTrafficPercent`; KServe keeps the previous revision (stable) for the rest. KServe honours
  `canaryTrafficPercent` only in Serverless (Knative) mode, and silently ignores it in RawDeployment, so
  the manifest says `serving.kserve.io/deploymentMode: Serverless`. A promotion is the same manifest without
  `canaryTrafficPercent`; a rollback, the stable version's.
- **Shadow**: KServe has no mirror. A second InferenceService serves the candidate, and an Istio
  `VirtualService` routes every request to stable and `mirror`s `mirrorPercentage` of them to the
  candidate (Istio discards the mirrored answers; the mirrored Host gets a `-shadow` suffix).

KServe's TF Serving runtime names the model after the InferenceService (`--model_name={{.Name}}`), so the
shadow's (`taxi-shadow`) would serve `/v1/models/taxi-shadow` and a mirrored `/v1/models/taxi` request would
get a 404. Every InferenceService here therefore names its model explicitly (`--model_name=taxi`): KServe
appends a predictor's args after the runtime's, and TF Serving takes a repeated flag's last value.

TF Serving loads `<storageUri>/<version>/saved_model.pb`; a storage URI per version,
`pvc://<claim>/kserve/<version>`, holding that one version, pins what each InferenceService serves.
`taxi-pipeline serve manifests` writes that layout (hard links into the Pusher's folder) beside the YAML.
No cluster has run these manifests: kind cannot run on these machines (docs/serving.md says what was
checked).
"""

import copy
import functools
import json
import os
import shutil
from pathlib import Path

import jsonschema
import yaml

from config import kubeflow as kubeflow_config
from config import serving as serving_config

SCHEMAS = Path(__file__).parent / "serving_schemas"
INFERENCE_SERVICE_SCHEMA = SCHEMAS / "kserve_inferenceservice_v1beta1.json"
VIRTUAL_SERVICE_SCHEMA = SCHEMAS / "istio_virtualservice_v1beta1.json"
SCHEMA_FILES = {"InferenceService": INFERENCE_SERVICE_SCHEMA, "VirtualService": VIRTUAL_SERVICE_SCHEMA}
KSERVE_LAYOUT = "kserve"
# The flag KServe's TF Serving runtime (`kserve-tensorflow-serving`) passes as `--model_name={{.Name}}`.
MODEL_NAME_FLAG = "--model_name"

# What Kubernetes checks of every object's metadata (ObjectMeta, which CRD schemas leave as a bare object):
# the fields a manifest may set, each of its type.
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": False,
}
# Percentages, held to 0-100 where the published schemas leave them open: Istio's validating webhook
# refuses a mirrorPercentage outside 0-100; KServe's CRD and webhook leave canaryTrafficPercent unbounded,
# though it is a share of traffic (SOURCES.md). Paths of property names from the schema's root; "[]" steps
# into an array's items.
PERCENTAGES = {
    "InferenceService": [
        ("spec", component, "canaryTrafficPercent") for component in ("predictor", "transformer", "explainer")
    ],
    "VirtualService": [("spec", "http", "[]", "mirrorPercentage", "value")],
}


class ManifestError(ValueError):
    """A manifest its CRD's schema refuses: the file, the field and what was expected."""


def storage_uri(version: str, claim: str = kubeflow_config.KFP_SHARED_VOLUME_CLAIM) -> str:
    return f"pvc://{claim}/{KSERVE_LAYOUT}/{version}"


def inference_service(
    name: str, version: str, canary_percent: float | None = None, namespace: str = "default"
) -> dict:
    """A KServe InferenceService serving `version` (as the canary of the revision before it, if a share
    is given), its model named `taxi` whatever the InferenceService is called."""
    predictor = {
        "minReplicas": 1,
        "model": {
            "modelFormat": {"name": "tensorflow"},
            "storageUri": storage_uri(version),
            "args": [f"{MODEL_NAME_FLAG}={serving_config.SERVING_MODEL_NAME}"],
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "1", "memory": "2Gi"},
            },
        },
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = int(round(canary_percent))
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {
                # canaryTrafficPercent works only in Serverless (Knative) mode; RawDeployment ignores it.
                "serving.kserve.io/deploymentMode": "Serverless",
                "taxi-pipeline/model-version": version,
            },
        },
        "spec": {"predictor": predictor},
    }


def shadow_virtual_service(
    name: str, host: str, mirror_percent: float = 100.0, namespace: str = "default"
) -> dict:
    """Istio: every request to `name`'s predictor, a copy of `mirror_percent` % to `name`-shadow's."""
    stable = f"{name}-predictor.{namespace}.svc.cluster.local"
    shadow = f"{name}-shadow-predictor.{namespace}.svc.cluster.local"
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": f"{name}-shadow", "namespace": namespace},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "match": [{"uri": {"prefix": f"/v1/models/{serving_config.SERVING_MODEL_NAME}"}}],
                    "route": [{"destination": {"host": stable, "port": {"number": 80}}, "weight": 100}],
                    "mirror": {"host": shadow, "port": {"number": 80}},
                    "mirrorPercentage": {"value": float(mirror_percent)},
                    "timeout": "2s",
                }
            ],
        },
    }


def validate(manifest: dict, file_name: str = "the manifest") -> None:
    """Raises ManifestError, naming `file_name`, the field and what was expected, unless the manifest fits
    its CRD's schema made strict (`strict_schema`)."""
    kind = manifest.get("kind")
    if kind not in SCHEMA_FILES:
        raise ManifestError(f"{file_name}: kind {kind!r} is not one of {', '.join(SCHEMA_FILES)}")
    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(manifest))
    if error is not None:
        where = ".".join(str(step) for step in error.absolute_path) or "the top level"
        raise ManifestError(f"{file_name} ({kind}): {where}: {error.message}")


@functools.cache
def _validator(kind: str):
    schema = strict_schema(json.loads(SCHEMA_FILES[kind].read_text()), kind)
    return jsonschema.validators.validator_for(schema)(schema)


def strict_schema(published: dict, kind: str) -> dict:
    """The CRD's published schema as the API server's strict field validation reads it (`kubectl
    --validate=strict`): a field an object does not list is refused, not dropped. So every object schema
    that lists its properties gets `additionalProperties: false` (unless it keeps unknown fields,
    `x-kubernetes-preserve-unknown-fields`, or is a map); the root gets `apiVersion`, `kind` and a strict
    `metadata` (OBJECT_META), which CRD schemas leave to the API server; and the PERCENTAGES are held to
    0-100. Returns a new schema."""
    schema = copy.deepcopy(published)
    for node in _object_schemas(schema):
        keeps_unknown = node.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in node and "additionalProperties" not in node and not keeps_unknown:
            node["additionalProperties"] = False
    schema["properties"] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string", "enum": [kind]},
        **schema["properties"],
        "metadata": OBJECT_META,
    }
    schema["required"] = sorted({"apiVersion", "kind", "metadata", *schema.get("required", [])})
    for path in PERCENTAGES[kind]:
        node = schema
        for step in path:  # a KeyError here: the published schema moved a field this names
            node = node["items"] if step == "[]" else node["properties"][step]
        node.update(minimum=0, maximum=100)
    return schema


def _object_schemas(schema: dict):
    """`schema` and every schema inside it (properties, items, maps' values, anyOf/oneOf/allOf, not)."""
    yield schema
    children = list((schema.get("properties") or {}).values())
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for key in ("anyOf", "oneOf", "allOf"):
        children.extend(schema.get(key) or [])
    for child in children:
        yield from _object_schemas(child)


def manifests(
    stable: str, candidate: str | None, canary_percent: float | None, shadow: bool, host: str
) -> dict[str, dict]:
    """File name -> manifest, for stable alone, a canary of `candidate`, or `candidate` as a shadow; raises
    ManifestError for one its schema refuses (a share outside 0-100, say)."""
    name = serving_config.SERVING_MODEL_NAME
    if candidate is None:
        found = {"inference-service.yaml": inference_service(name, stable)}
    elif shadow:
        found = {
            "inference-service.yaml": inference_service(name, stable),
            "inference-service-shadow.yaml": inference_service(f"{name}-shadow", candidate),
            "virtual-service-shadow.yaml": shadow_virtual_service(name, host),
        }
    else:
        found = {"inference-service.yaml": inference_service(name, candidate, canary_percent)}
    for file_name, manifest in found.items():
        validate(manifest, file_name)
    return found


def write(output_dir: Path, serving_dir: Path, found: dict[str, dict], version_list: list[str]) -> list[Path]:
    """Writes the YAML, and the per-version layout the storage URIs name (hard links, else copies)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, manifest in found.items():
        path = output_dir / file_name
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    for version in version_list:
        target = serving_dir.parent / KSERVE_LAYOUT / version / version
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copytree(serving_dir / version, target, copy_function=os.link)
            except OSError:
                shutil.copytree(serving_dir / version, target)
    return written
