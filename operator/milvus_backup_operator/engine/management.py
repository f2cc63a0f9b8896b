"""Milvus's management endpoint (its port 9091, ``internal/http/server.go``): one small HTTP
client for the GC pause (:mod:`.gc_pause`) and the keys of encryption zones
(:mod:`.encryption`), as milvus-backup's one ``manage`` client serves both
(``internal/client/milvus/manage.go``).

Where Milvus has authorization on, its management routes take its root credentials
(``internal/http/auth.go``). They are sent only to the endpoint of the configuration, never
to an address a request names, and no redirect is followed (it would carry them elsewhere).
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .config import GcPause, MilvusConfig
from .errors import UnreachableError

MAX_ANSWER = 1 << 20  # bytes: its answers are a few dozen


class Management:
    """GET calls to one management endpoint."""

    def __init__(self, settings: GcPause, milvus: MilvusConfig, timeout: float) -> None:
        self.endpoint = settings.endpoint(milvus)
        self._auth = _basic(milvus) if settings.trusted else ""
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def get(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The HTTP status and the JSON object answered (``{}`` when it is not one);
        :class:`UnreachableError` when nothing is answered."""
        url = f"{self.endpoint}{path}?{urllib.parse.urlencode(query)}"
        try:
            request = urllib.request.Request(url)
            if self._auth:
                request.add_header("Authorization", self._auth)
            with self._opener.open(request, timeout=self._timeout) as response:
                return int(response.status), _json(response.read(MAX_ANSWER))
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), _json(exc.read(MAX_ANSWER))
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise UnreachableError(f"{self.endpoint} could not be reached ({reason})") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is answered to the caller as it is


def _json(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        return {}
    return answer if isinstance(answer, dict) else {}


def _basic(milvus: MilvusConfig) -> str:
    if not milvus.user:
        return ""
    return "Basic " + base64.b64encode(f"{milvus.user}:{milvus.password}".encode()).decode()
