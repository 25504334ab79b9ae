"""The stack's HTTP APIs as an OpenAPI 3.0 document, `serving/openapi.yaml`: what a client may send to
the public port (TF Serving's REST API and health) and to the control listener (the monitor's routes, the
release API), and what it gets back.

The document is built here from the facts it describes (the model's name, the request contract read
from the curated schema, the batch and body limits, the monitor's paths), and checked in; a fast test
rebuilds it and compares, and checks its paths against the routes nginx and the servers serve. The fuzz
test (tests/e2e/test_front_door_fuzz.py) generates its requests from it.

    python -m serving.openapi          # rewrites serving/openapi.yaml after a change
"""

import sys
from pathlib import Path

import yaml

from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from models.signatures import EXAMPLES_SIGNATURE, RAW_FEATURES_SIGNATURE
from serving import credentials, release_api, traffic
from serving.request_contract import EXAMPLE_TRIP, RequestContract

DOCUMENT = Path(__file__).with_name("openapi.yaml")
JSON_TYPES = {"int": "integer", "float": "number", "string": "string"}
ERROR = {"$ref": "#/components/responses/Error"}
CONTROL_SERVERS = [
    {
        "url": f"http://127.0.0.1:{serving_config.CONTROL_PORT}",
        "description": "the control listener (loopback)",
    }
]


def document(schema_path: Path = folders.SCHEMA_PATH) -> dict:
    contract = RequestContract(schema_path, serving_config.SERVING_MAX_BATCH)
    base = f"/v1/models/{serving_config.SERVING_MODEL_NAME}"
    paths = {}
    for prefix, parameters in (
        (base, []),
        (
            f"{base}/versions/{{version}}",
            [
                _parameter(
                    "version",
                    "A version number: 404 unless served.",
                    {"type": "string", "pattern": "^[0-9]+$"},
                )
            ],
        ),
        (
            f"{base}/labels/{{label}}",
            [
                _parameter(
                    "label",
                    "stable or canary: 404 unless assigned.",
                    {"type": "string", "enum": list(traffic.LABELS)},
                )
            ],
        ),
    ):
        paths[prefix] = _get("Version status, in TF Serving's shape.", "ModelStatus", parameters)
        paths[f"{prefix}/metadata"] = _get("The version's signatures.", "Metadata", parameters)
        paths[f"{prefix}:predict"] = _predict(parameters)
    paths["/healthz"] = _get("200 while a stable server is ready.", "Ready", [])
    paths[monitoring_config.FEEDBACK_PATH] = dict(_feedback(), servers=CONTROL_SERVERS)
    paths[monitoring_config.MONITOR_PATH] = _get("The monitor's latest figures.", "Figures", [])
    paths[monitoring_config.MONITOR_PATH]["get"].update(
        security=[{credentials.ADMIN: []}],
        responses=dict(paths[monitoring_config.MONITOR_PATH]["get"]["responses"], **{"401": ERROR}),
    )
    paths[monitoring_config.MONITOR_PATH]["servers"] = CONTROL_SERVERS
    paths.update(_releases())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Chicago Taxi big-tipper serving",
            "version": "1",
            "description": "TF Serving's REST API for the pushed model behind nginx (docs/serving.md), and "
            "the monitor's feedback and figures and the release API on the control listener, loopback only, "
            "with bearer tokens (docs/monitoring.md, docs/serving.md). A client's fault is a 4xx with "
            '{"error": ...} naming it; a 5xx is the server\'s.',
        },
        "servers": [{"url": f"http://127.0.0.1:{serving_config.SERVING_PORT}"}],
        "paths": paths,
        "components": {
            "schemas": _schemas(contract),
            "responses": {"Error": _error_response()},
            "securitySchemes": {
                role: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"outputs/serving/credentials/{role}.token",
                }
                for role in credentials.ROLES
            },
        },
    }


def _parameter(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _json(schema: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _get(summary: str, schema: str, parameters: list) -> dict:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {"200": {"description": "OK", "content": _json(schema)}, "404": ERROR},
        }
    }


def _predict(parameters: list) -> dict:
    refusals = {status: ERROR for status in ("400", "404", "413", "415")}
    return {
        "post": {
            "summary": "Predict: rows (instances) or columns (inputs) of raw features, or b64 tf.Examples.",
            "parameters": parameters,
            "requestBody": {"required": True, "content": _json("PredictRequest")},
            "responses": {
                "200": {"description": "Predicted", "content": _json("PredictResponse")},
                **refusals,
            },
        }
    }


def _feedback() -> dict:
    refusals = {status: ERROR for status in ("400", "401", "409", "413", "415")}
    return {
        "post": {
            "summary": "Labels that arrive later: a served trip's tip.",
            "security": [{credentials.FEEDBACK: []}],
            "requestBody": {"required": True, "content": _json("Feedback")},
            "responses": {"200": {"description": "Stored", "content": _json("FeedbackAnswer")}, **refusals},
        }
    }


# The release API (serving/release_api.py): each action's body, by the schema that names it.
RELEASE_BODIES = {
    "canary": ("CanaryRelease", "A canary of `version` taking `percent` % of requests; again, a new share."),
    "shadow": ("VersionRelease", "A shadow: stable answers; a copy of each request goes to `version`."),
    "switch": ("VersionRelease", "Blue-green: all traffic to `version`; the one switched from kept running."),
    "promote": ("Promote", "The candidate (or the version switched to) becomes the only stable version."),
    "rollback": (
        "Rollback",
        "All traffic back to the version that served before; the other recorded as rolled back.",
    ),
}


def _releases() -> dict:
    """The release API's paths, on the control listener, with the admin token."""
    refusals = {status: ERROR for status in ("400", "401", "403", "404", "409", "413", "415")}
    secured = {"security": [{credentials.ADMIN: []}]}
    paths = {
        serving_config.RELEASES_PATH: {
            "get": {
                "summary": "What is live, each process checked (as `taxi-pipeline serve status`).",
                **secured,
                "responses": {
                    "200": {"description": "OK", "content": _json("StackStatus")},
                    **{status: ERROR for status in ("401", "403")},
                },
            },
            "servers": CONTROL_SERVERS,
        }
    }
    for action in release_api.ACTIONS:
        schema, summary = RELEASE_BODIES[action]
        paths[f"{serving_config.RELEASES_PATH}/{action}"] = {
            "post": {
                "summary": summary,
                **secured,
                "requestBody": {"required": action not in ("promote", "rollback"), "content": _json(schema)},
                "responses": {"200": {"description": "Done", "content": _json("ReleaseAnswer")}, **refusals},
            },
            "servers": CONTROL_SERVERS,
        }
    return paths


def _release_schemas() -> dict:
    version = {"type": "string", "pattern": "^[0-9]+$", "maxLength": release_api.VERSION_MAX_CHARACTERS}
    return {
        "CanaryRelease": {
            "type": "object",
            "properties": {
                "version": version,
                "percent": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 100},
            },
            "required": ["version", "percent"],
            "additionalProperties": False,
        },
        "VersionRelease": {
            "type": "object",
            "properties": {"version": version},
            "required": ["version"],
            "additionalProperties": False,
        },
        "Promote": {"type": "object", "additionalProperties": False},
        "Rollback": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "maxLength": serving_config.RELEASE_REASON_MAX_CHARACTERS}
            },
            "additionalProperties": False,
        },
        "ReleaseAnswer": {
            "type": "object",
            "properties": {
                "now": {"type": "string"},
                "rolled_back": {"type": "string"},
                "seconds": {"type": "number"},
                "state": {"type": "object"},
            },
            "required": ["now", "state"],
        },
        "StackStatus": {"type": "object", "required": ["running"]},
    }


def _error_response() -> dict:
    return {"description": "Refused: the request's fault, named", "content": _json("Error")}


def _schemas(contract: RequestContract) -> dict:
    trip = {
        "type": "object",
        "description": "One trip's raw features, as the curated schema's SERVING environment has them.",
        "properties": {
            name: {"type": JSON_TYPES[column.kind], "nullable": not column.required}
            for name, column in contract.columns.items()
        },
        "required": contract.required,
        "additionalProperties": False,
        "example": EXAMPLE_TRIP,
    }
    batch = {"minItems": 1, "maxItems": contract.max_batch}
    return {
        "Trip": trip,
        "PredictRequest": _predict_request(trip, batch, contract),
        "PredictResponse": {
            "type": "object",
            "properties": {
                "predictions": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "outputs": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "model_version": {"type": "string"},
            },
            "required": ["model_version"],
        },
        "ModelStatus": {"type": "object", "required": ["model_version_status"]},
        "Metadata": {"type": "object", "required": ["model_spec", "metadata"]},
        "Ready": {"type": "object"},
        "Figures": {"type": "object"},
        "Feedback": {
            "type": "object",
            "properties": {
                "feedback": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": monitoring_config.FEEDBACK_MAX_ROWS,
                    "items": {
                        "type": "object",
                        "properties": {
                            "request_id": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": monitoring_config.FEEDBACK_MAX_REQUEST_ID_CHARACTERS,
                            },
                            "trip": {"type": "integer", "minimum": 0},
                            "tips": {"type": "number", "minimum": 0},
                            "fare": {"type": "number", "minimum": 0, "nullable": True},
                        },
                        "required": ["request_id", "tips"],
                    },
                }
            },
            "required": ["feedback"],
        },
        "FeedbackAnswer": {
            "type": "object",
            "properties": {
                "accepted": {"type": "integer"},
                "refused": {"type": "array", "items": {"type": "string"}},
                "duplicates": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["accepted", "refused", "duplicates"],
        },
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
        **_release_schemas(),
    }


def _predict_request(trip: dict, batch: dict, contract: RequestContract) -> dict:
    """Rows of trips, columns of them, or b64 tf.Examples (`serving_default`), each batch bounded."""
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "signature_name": {"type": "string", "enum": [RAW_FEATURES_SIGNATURE]},
                    "instances": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Trip"},
                        **batch,
                    },
                },
                "required": ["instances"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "signature_name": {"type": "string", "enum": [RAW_FEATURES_SIGNATURE]},
                    "inputs": {
                        "type": "object",
                        "properties": {
                            name: {"type": "array", "items": prop, **batch}
                            for name, prop in trip["properties"].items()
                        },
                        "required": contract.required,
                        "additionalProperties": False,
                    },
                },
                "required": ["inputs"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "signature_name": {"type": "string", "enum": [EXAMPLES_SIGNATURE]},
                    "instances": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"b64": {"type": "string", "format": "byte"}},
                            "required": ["b64"],
                            "additionalProperties": False,
                        },
                        **batch,
                    },
                },
                "required": ["signature_name", "instances"],
                "additionalProperties": False,
            },
        ]
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # each value written out where it is used: read by people
        return True


def render(schema_path: Path = folders.SCHEMA_PATH) -> str:
    header = "# Written by `python -m serving.openapi` from the code it describes; do not edit by hand.\n"
    body = yaml.dump(document(schema_path), Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)
    return header + body


def main() -> int:
    DOCUMENT.write_text(render())
    print(f"Wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
