"""The control plane's credentials: bearer tokens, one a role, each in a file only its owner may read.

    outputs/serving/credentials/feedback.token   for POST /v1/feedback (the system that sends labels)
    outputs/serving/credentials/admin.token      for the monitor's figures and the stack's own probes

A token is made once (`ensure`, by `serve start`) and kept across restarts, so a sender configured with
it keeps working; deleting the file makes a new one at the next start. A client sends it as
`Authorization: Bearer <token>` to the control listener (loopback, `serve status` names its port); the
receiving service compares it in constant time (`authorized`).
"""

import hmac
import os
import secrets
import stat
from pathlib import Path

FEEDBACK, ADMIN = "feedback", "admin"
ROLES = (FEEDBACK, ADMIN)
TOKEN_BYTES = 32  # 256 bits of randomness, url-safe base64 in the file


class CredentialError(Exception):
    """A token file that is missing or readable by others; the message names it and what to do."""


def folder(stack_root: Path) -> Path:
    return stack_root / "credentials"


def token_path(stack_root: Path, role: str) -> Path:
    return folder(stack_root) / f"{role}.token"


def ensure(stack_root: Path) -> dict[str, Path]:
    """Makes each role's token file if it is absent (0600, its folder 0700); {role: path}. Raises
    CredentialError for an existing file others may read (it may have leaked: delete it for a new one)."""
    folder(stack_root).mkdir(parents=True, exist_ok=True)
    os.chmod(folder(stack_root), 0o700)
    made = {}
    for role in ROLES:
        path = token_path(stack_root, role)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            read(stack_root, role)  # checks its mode
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(TOKEN_BYTES) + "\n")
        made[role] = path
    return made


def read(stack_root: Path, role: str) -> str:
    """The token of `role`, from its file; CredentialError if absent or readable by anyone but its owner."""
    path = token_path(stack_root, role)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CredentialError(f"{path} does not exist: `taxi-pipeline serve start` makes it") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(
            f"{path} is readable by others (mode {stat.filemode(mode)}): it may have leaked; "
            f"delete it and restart the stack for a new token, or `chmod 600 {path}`"
        )
    token = path.read_text().strip()
    if not token:
        raise CredentialError(f"{path} is empty: delete it and restart the stack for a new token")
    return token


def bearer(stack_root: Path, role: str) -> dict[str, str]:
    """The header a client of the control listener sends as `role`."""
    return {"Authorization": f"Bearer {read(stack_root, role)}"}


def authorized(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header carries `token`, compared in constant time (hmac.compare_digest:
    how long it takes says nothing of how much of a guess was right)."""
    sent = (authorization or "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(sent, f"Bearer {token}".encode())
