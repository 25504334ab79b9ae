"""What every HTTP endpoint of the stack checks in a request before it looks at its content: the content
type it declares and the size and syntax of its JSON body. A request that fails gets a 4xx naming what
was wrong (`RefusedRequest` carries it), never a 5xx: the model servers' predict routes and the monitor's
feedback route read their bodies through here.
"""

import orjson

from config import serving as serving_config


class RefusedRequest(Exception):
    """A request refused before its content is read: the HTTP status (4xx) and the reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def check_content_type(content_type: str | None) -> None:
    """Raises a 415 unless the body is declared JSON (`application/json`, `application/*+json`), curl's
    default form type (read as JSON, as TF Serving does) or not declared at all."""
    if not content_type:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in serving_config.ACCEPTED_CONTENT_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    shown = content_type if len(content_type) <= 100 else content_type[:100] + "..."
    raise RefusedRequest(
        415, f"Content-Type {shown!r} is not accepted: send the body as JSON (application/json)"
    )


def check_size(body: bytes, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise RefusedRequest(413, f"the request body is {len(body)} bytes, more than the {max_bytes} allowed")


def parse_json(body: bytes):
    """The body's JSON value (orjson: it refuses NaN and Infinity, which are not JSON, lone surrogates,
    and nesting deeper than 1,024 levels); a 400 naming where it is malformed."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RefusedRequest(400, f"malformed JSON: {error}") from error
