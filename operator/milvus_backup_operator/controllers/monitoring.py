"""/metrics and /healthz on the health port, and the watch that feeds the metrics.

Kopf's own liveness server (``liveness_endpoint``) answers one path only, so the operator
serves both paths itself, in Kopf's event loop (:func:`health_server`): ``/healthz`` answers
200 once Kopf's startup handlers have run (its ``ready_flag``) and for as long as the loop
answers at all, as Kopf's did; ``/metrics`` is Prometheus's text format of
:class:`~.metrics.Metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import kopf
from aiohttp import web

from ..api import GROUP, VERSION, Kind
from .metrics import Metrics
from .services import services

OBSERVERS = ("backup_observed", "restore_observed")


class QuietObservers(logging.Filter):
    """Drop Kopf's "Handler 'backup_observed' succeeded." (one line per status change, e.g.
    each progress step); the observers' failures are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(message.startswith(f"Handler {name!r} ") for name in OBSERVERS)


@kopf.on.startup()
def quiet_observers(**_: Any) -> None:
    """Installed once per process (Kopf logs handler outcomes to ``kopf.objects``)."""
    logger = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietObservers) for f in logger.filters):
        logger.addFilter(QuietObservers())


@kopf.on.event(GROUP, VERSION, Kind.BACKUP.plural)
def backup_observed(*, body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Each change of a MilvusBackup (its Job writes status) updates its series."""
    _observe(Kind.BACKUP, body, type, services(memo).metrics)


@kopf.on.event(GROUP, VERSION, Kind.RESTORE.plural)
def restore_observed(*, body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Each change of a MilvusRestore updates its series."""
    _observe(Kind.RESTORE, body, type, services(memo).metrics)


def _observe(kind: Kind, body: kopf.Body, type: str | None, metrics: Metrics) -> None:
    if type == "DELETED":
        metrics.forget(kind, body.metadata.namespace or "", body.metadata.name or "")
    else:
        metrics.observe(kind, body)


@contextlib.asynccontextmanager
async def health_server(
    port: int, metrics: Metrics, ready: asyncio.Event, host: str = "0.0.0.0"
) -> AsyncIterator[web.AppRunner]:
    """Serve /healthz and /metrics on ``host:port`` while the block runs."""

    async def healthz(_: web.Request) -> web.Response:
        if not ready.is_set():
            return web.json_response({"ready": False}, status=503)
        return web.json_response({"ready": True})

    async def scrape(_: web.Request) -> web.Response:
        body, content_type = await asyncio.get_running_loop().run_in_executor(
            None, metrics.exposition
        )
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", scrape)])
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        yield runner
    finally:
        await asyncio.shield(runner.cleanup())
