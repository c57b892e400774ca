"""API keys: loaded once, kept only as SHA-256 digests, compared in constant time.

Keys come from ``PROPENSITY_API_KEYS`` (comma-separated) and/or a keys file with one key per
line as ``sha256:<hex>`` (``propensity api-key --file keys.txt`` appends one). A plain key
in a file still works but is logged as a warning: a leaked file should not leak keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from propensity.errors import ParameterError
from propensity.serving.problems import ApiError, Problem
from propensity.serving.settings import ServeSettings

__all__ = ["KeyRing", "hash_key", "new_key"]

log = logging.getLogger(__name__)

_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


API_KEY_HEADER = "X-API-Key"
_KEY = API_KEY_HEADER.lower().encode()
_AUTHORIZATION = b"authorization"
#: OpenAPI security schemes of the key check (added to the schema by the app).
SECURITY_SCHEMES = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "An API key of this service.",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same key as a bearer token (e.g. for Prometheus).",
    },
}


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key in ``X-API-Key`` or ``Authorization: Bearer`` of raw ASGI headers (cheap: no header dict)."""
    bearer = None
    for name, value in headers:
        if name == _KEY:
            return value.decode("latin-1")
        if name == _AUTHORIZATION and value[:7].lower() == b"bearer ":
            bearer = value[7:].strip().decode("latin-1")
    return bearer


def unauthorized(presented: str | None) -> ApiError:
    """The 401 answer; never echoes the presented secret."""
    missing = presented is None
    return ApiError(
        401,
        [
            Problem(
                API_KEY_HEADER,
                None,
                f"a valid API key in the {API_KEY_HEADER} header (or Authorization: Bearer <key>)",
                "No API key was sent." if missing else "The API key is not valid.",
                "missing_api_key" if missing else "invalid_api_key",
            )
        ],
        headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}", Bearer'},
    )


def hash_key(key: str) -> str:
    """The line to store in a keys file for ``key``: ``sha256:<hex digest>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


class KeyRing:
    """The accepted API keys, as digests.

    Parameters
    ----------
    digests
        SHA-256 digests (32 bytes each) of the accepted keys.
    """

    def __init__(self, digests: Iterable[bytes] = ()) -> None:
        self._digests = tuple(digests)

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured (then every route but /health needs one)."""
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> KeyRing:
        """Keys from ``settings.api_keys`` and ``settings.api_keys_file``.

        Raises
        ------
        ParameterError
            If the keys file is missing or has a malformed line (the line number is named).
        """
        digests: list[bytes] = []
        if settings.api_keys is not None:
            for key in settings.api_keys.get_secret_value().split(","):
                if key.strip():
                    digests.append(hashlib.sha256(key.strip().encode()).digest())
        if settings.api_keys_file is not None:
            digests.extend(read_keys_file(settings.api_keys_file))
        return cls(digests)

    def check(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of the keys; time does not depend on which key or how much matched."""
        if presented is None:
            return False
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = False
        for known in self._digests:  # no early exit: every key is compared
            found |= hmac.compare_digest(digest, known)
        return found


def read_keys_file(path: Path) -> list[bytes]:
    """Digests from a keys file (``sha256:<hex>`` lines; ``#`` comments and blank lines ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ParameterError(f"Cannot read the API keys file '{path}': {exc.strerror or exc}.") from None
    digests = []
    plain = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _HASHED.match(line)
        if match:
            digests.append(bytes.fromhex(match.group(1)))
        elif line.lower().startswith("sha256:"):
            raise ParameterError(
                f"Line {number} of the API keys file '{path}' starts with 'sha256:' but is not 64 hex digits."
            )
        else:
            plain += 1
            digests.append(hashlib.sha256(line.encode()).digest())
    if plain:
        log.warning(
            "%d API key(s) in '%s' are stored in plain text; store 'sha256:<hex>' lines instead "
            "(propensity api-key --file %s writes them).",
            plain,
            path,
            path,
        )
    if not digests:
        raise ParameterError(f"The API keys file '{path}' has no keys (one sha256:<hex> line per key).")
    return digests
