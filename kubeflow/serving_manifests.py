"""The serving patterns on a cluster: KServe and Istio manifests for the pushed versions, validated
against the CRDs' published schemas (kubeflow/serving_schemas/, SOURCES.md there says from where).

- **Canary**: a KServe `InferenceService` with the TF Serving runtime on the candidate's SavedModel and
  `canaryTrafficPercent`; KServe keeps the previous revision (stable) for the rest. KServe honours
  `canaryTrafficPercent` only in Serverless (Knative) mode, and silently ignores it in RawDeployment, so
  the manifest says `serving.kserve.io/deploymentMode: Serverless`. A promotion is the same manifest without
  `canaryTrafficPercent`; a rollback, the stable version's.
- **Shadow**: KServe has no mirror. A second InferenceService serves the candidate, and an Istio
  `VirtualService` routes every request to stable and `mirror`s `mirrorPercentage` of them to the
  candidate (Istio discards the mirrored answers; the mirrored Host gets a `-shadow` suffix).

TF Serving loads `<storageUri>/<version>/saved_model.pb`; a storage URI per version,
`pvc://<claim>/kserve/<version>`, holding that one version, pins what each InferenceService serves.
`taxi-pipeline serve manifests` writes that layout (hard links into the Pusher's folder) beside the YAML.
Not run on a cluster here: kind cannot run on these machines (docs/serving.md says what was checked).
"""

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
KSERVE_LAYOUT = "kserve"


def storage_uri(version: str, claim: str = kubeflow_config.KFP_SHARED_VOLUME_CLAIM) -> str:
    return f"pvc://{claim}/{KSERVE_LAYOUT}/{version}"


def inference_service(
    name: str, version: str, canary_percent: float | None = None, namespace: str = "default"
) -> dict:
    """A KServe InferenceService serving `version` (as the canary of the revision before it, if a share is given)."""
    predictor = {
        "minReplicas": 1,
        "model": {
            "modelFormat": {"name": "tensorflow"},
            "storageUri": storage_uri(version),
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


def validate(manifest: dict) -> None:
    """Raises jsonschema.ValidationError unless the manifest fits its CRD's published schema."""
    schema = {"InferenceService": INFERENCE_SERVICE_SCHEMA, "VirtualService": VIRTUAL_SERVICE_SCHEMA}
    _validator(schema[manifest["kind"]]).validate(manifest)


@functools.cache
def _validator(schema_path: Path):
    schema = json.loads(schema_path.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def manifests(
    stable: str, candidate: str | None, canary_percent: float | None, shadow: bool, host: str
) -> dict[str, dict]:
    """File name -> manifest, for stable alone, a canary of `candidate`, or `candidate` as a shadow."""
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
    for manifest in found.values():
        validate(manifest)
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
