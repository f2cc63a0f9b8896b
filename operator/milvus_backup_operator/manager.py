"""``milvus-backup-operator run``: configure Kopf and run the controllers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from .api import GROUP
from .api.job_template import JobTemplate
from .controllers import backup, lifecycle, monitoring, restore, schedule  # noqa: F401 (registers)
from .controllers.adoption import KOPF_HANDLED
from .controllers.services import Services
from .executors.inline import InlineExecutor
from .executors.job import BUILT_IN, JobExecutor
from .logs import level_name, use_kopf_format
from .stopping import exit_once_answered


@dataclass(frozen=True)
class RunOptions:
    namespaces: tuple[str, ...]
    all_namespaces: bool
    executor: str  # "job" or "inline"
    image: str
    job_service_account: str
    health_port: int
    json_logs: bool
    webhook: WebhookOptions | None = None
    job_retries: int = 3  # new Jobs after one dies without a result
    job_defaults: JobTemplate = BUILT_IN  # Pod settings of every Job (--job-defaults)


@dataclass(frozen=True)
class WebhookOptions:
    """TLS endpoint for the admission webhook (certificate issued for the Service's name)."""

    port: int
    certfile: str
    keyfile: str
    addr: str = "0.0.0.0"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keep Kopf's bookkeeping out of status: it goes into annotations under our group."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key=KOPF_HANDLED.removeprefix(f"{GROUP}/")
    )
    settings.posting.level = logging.WARNING  # events: our milestones, and warnings only
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 8
    webhook: WebhookOptions | None = memo.get("webhook")
    if webhook is not None:
        settings.admission.server = kopf.WebhookServer(
            addr=webhook.addr, port=webhook.port, certfile=webhook.certfile,
            pkeyfile=webhook.keyfile,
        )  # fmt: skip


def _executor(options: RunOptions) -> InlineExecutor | JobExecutor:
    """Where the work runs; Jobs log at the operator's level and in its format."""
    if options.executor == "inline":
        return InlineExecutor()
    return JobExecutor(
        image=options.image,
        service_account=options.job_service_account,
        defaults=options.job_defaults,
        log_level=level_name(),
        json_logs=options.json_logs,
    )


def run(options: RunOptions) -> None:
    """Run the operator until it is stopped (SIGTERM or Ctrl-C)."""
    use_kopf_format(options.json_logs)  # Kopf's handler (plain or JSON): one line each
    if options.webhook:  # Kopf refuses admission handlers without a server for them
        from .controllers import admission  # noqa: F401
    services = Services(_executor(options), job_retries=options.job_retries)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(_operate(options, services))
    exit_once_answered(0)  # the inline executor's work may still be calling Milvus


async def _operate(options: RunOptions, services: Services) -> None:
    """Kopf, with /healthz and /metrics on the health port (controllers.monitoring: Kopf's
    own liveness server answers one path only)."""
    ready = asyncio.Event()  # set by Kopf once its startup handlers ran
    async with monitoring.health_server(options.health_port, services.metrics, ready):
        await kopf.operator(
            memo=kopf.Memo(webhook=options.webhook, services=services),
            standalone=True,
            clusterwide=options.all_namespaces,
            namespaces=list(options.namespaces),
            ready_flag=ready,
        )
