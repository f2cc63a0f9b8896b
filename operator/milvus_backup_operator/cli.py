"""The ``milvus-backup-operator`` command: milvus-backup's verbs on our engine.

``create``, ``list``, ``get``, ``delete``, ``restore`` and ``check`` keep milvus-backup's
flags so existing scripts work. Exit status is 0 on success; on failure a one-line reason
goes to stderr and the status is 1 (2 for a usage error).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from . import __version__
from .api.job_template import JobTemplate, JobTemplateError, parse_job_template
from .engine.backup import BackupRequest, create_backup, is_meta_only
from .engine.catalog import Catalog
from .engine.check import run_check
from .engine.config import BackupConfig
from .engine.config_file import load_config
from .engine.errors import BackupError, InvalidRequestError
from .engine.manifest import Manifest
from .engine.meta import CONSISTENCY_LEVELS, BackupInfo
from .engine.progress import Progress
from .engine.restore import restore_backup
from .engine.restore_plan import RestoreRequest, check_restore_request, parse_renames
from .engine.selection import ALL, CollectionRef, collections, parse_list, unique
from .engine.verify import verify_backup
from .stopping import stop_gently

DEFAULT_CONFIG = Path("configs/backup.yaml")
DEFAULT_IMAGE = f"ghcr.io/milvus-backup-operator/milvus-backup-operator:{__version__}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"milvus-backup config file (default {DEFAULT_CONFIG}).",
)
@click.option("--log-level", default="warning", show_default=True, help="Logging level.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str) -> None:
    """Back up and restore Milvus collections (milvus-backup compatible)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = lambda: load_config(
        config_path or DEFAULT_CONFIG, os.environ, required=config_path is not None
    )


def _config(ctx: click.Context) -> BackupConfig:
    loader: Callable[[], BackupConfig] = ctx.obj
    return loader()


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@contextmanager
def _reasons() -> Iterator[None]:
    """Turn engine errors into one line on stderr and exit status 1."""
    try:
        with stop_gently():
            yield
    except BackupError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
    except (click.ClickException, click.exceptions.Exit):
        raise
    except Exception as exc:  # a bug, or a library's error: its text may quote a setting
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        _fail(
            f"internal error ({type(exc).__name__}): run with --log-level debug for the "
            "details (they may include configuration values)"
        )


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[Progress], None] | None]:
    """A progress bar on a terminal; nothing when stderr is a pipe or a file."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", file=sys.stderr, leave=False, dynamic_ncols=True)

    def show(progress: Progress) -> None:
        bar.set_description(progress.phase)
        bar.set_postfix_str(progress.summary())
        bar.n = progress.percent
        bar.refresh()

    try:
        yield show
    finally:
        bar.close()


def _unsupported(*flags: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """milvus-backup's flags that this command does not implement: refused by name (exit 2)."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value not in (None, False, ""):
            raise click.UsageError(
                f"{param.opts[0]} is milvus-backup's, not supported by milvus-backup-operator: "
                "leave it out (nothing was done)",
                ctx,
            )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for flag in flags:
            is_flag = flag in _BOOLEAN_FLAGS
            command = click.option(flag, hidden=True, is_flag=is_flag, default=None,
                                   expose_value=False, callback=refuse)(command)  # fmt: skip
        return command

    return decorate


_BOOLEAN_FLAGS = {
    "--force", "--backup_index_extra", "--use_auto_index",
    "--drop_exist_index", "--skip_create_collection",
}  # fmt: skip


def _selection(colls: str, databases: str, db_collections: str) -> tuple[CollectionRef, ...]:
    """``-c``, ``-d db1,db2`` (every collection of each) and ``-a '{"db": ["coll"]}'``."""
    refs = list(parse_list(colls))
    refs += [CollectionRef.parse(f"{db.strip()}.{ALL}") for db in databases.split(",") if databases]
    refs += collections([], db_collections or None)
    return tuple(unique(refs))


def _filter(text: str) -> tuple[CollectionRef, ...]:
    """milvus-backup's ``--filter``: ``db1.coll1,db2.*,coll3`` (``db.``, a database without
    its collections, is refused: we restore and back up collections)."""
    bare = [item for item in text.split(",") if item.endswith(".")]
    if bare:
        raise InvalidRequestError(
            f"--filter {bare[0]}: a database without collections is not supported; name its "
            f"collections ({bare[0]}*: all of them)"
        )
    return tuple(parse_list(text))


def _filtered(filter_: str, colls: str, databases: str, db_colls: str) -> tuple[CollectionRef, ...]:
    """``--filter``, or else ``-c``/``-d``/``-a``: given together, refused (as milvus-backup's
    restore does; its create would ignore the latter)."""
    if filter_ and (colls or databases or db_colls):
        raise InvalidRequestError(
            "give --filter or -c/-d/-a (--colls, --databases, --database_collections), not both"
        )
    return _filter(filter_) if filter_ else _selection(colls, databases, db_colls)


@main.command()
@click.option("-n", "--name", required=True, help="Backup name.")
@click.option("-c", "--colls", default="", help="Collections, comma-separated (default: all).")
@click.option("-d", "--databases", default="", help="Every collection of these databases.")
@click.option("-a", "--database_collections", default="", help='JSON: {"db": ["coll"]}.')
@click.option("--filter", "filter_", default="", help="Collections: db1.coll1,db2.*,coll3.")
@click.option("--meta_only", is_flag=True, help="Schemas, indexes and partitions only; no data.")
@click.option("--strategy", default="", help="meta_only (the same as --meta_only).")
@click.option("--rbac", is_flag=True, help="Back up Milvus's users, roles and grants too.")
@_unsupported("--format", "--force", "--backup_index_extra")
@click.pass_context
def create(
    ctx: click.Context,
    *,
    name: str,
    colls: str,
    databases: str,
    database_collections: str,
    filter_: str,
    meta_only: bool,
    strategy: str,
    rbac: bool,
) -> None:
    """Back up collections (flush, then copy their binlogs)."""
    with _reasons(), _progress_bar(sys.stderr.isatty()) as show:
        selected = _filtered(filter_, colls, databases, database_collections)
        meta_only = meta_only or is_meta_only(strategy)
        request = BackupRequest(name=name, collections=selected, meta_only=meta_only, rbac=rbac)
        info = create_backup(_config(ctx), request, show)
    names = ", ".join(c.qualified_name for c in info.collection_backups) or "none"
    kind = "meta only: no data" if info.meta_only else f"{info.size} bytes"
    click.echo(f"backup {info.name} created: {names} ({kind})")


@main.command(name="list")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
    show_default=True, help="json, yaml: each backup as the REST API's list answers it.",
)  # fmt: skip
@click.pass_context
def list_backups(ctx: click.Context, output: str) -> None:
    """List the backups in the backup location."""
    with _reasons():
        summaries = Catalog.of(_config(ctx)).list()
    if output != "table":
        from .server.views import summary  # milvus-backup's field names, as /list answers

        entries = [summary(s) for s in summaries]
        text = json.dumps(entries, indent=2) if output == "json" else yaml.safe_dump(entries)
        click.echo(text.rstrip("\n"))
        return
    rows = [("NAME", "STATE", "SIZE", "MILVUS", "COLLECTIONS")]
    for s in summaries:
        state = f"{s.state} (meta only)" if s.meta_only else s.state
        rows.append((s.name, state, str(s.size), s.milvus_version, ",".join(s.collections)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@main.command()
@click.option("-n", "--name", required=True, help="Backup name.")
@click.pass_context
def get(ctx: click.Context, name: str) -> None:
    """Print one backup as JSON: name, state, size and its collections with row counts."""
    with _reasons():
        catalog = Catalog.of(_config(ctx))
        info = catalog.read(name)
        manifest = catalog.manifest(name)
    click.echo(json.dumps(describe_backup(info, manifest), indent=2))


def describe_backup(info: BackupInfo, manifest: Manifest | None) -> dict[str, Any]:
    """A backup as a user reads it (the full meta stays available in the bucket).

    ``rows`` counts every row of its segments, deleted ones too; ``live_rows`` those alive at
    the backup, as recorded then (null for a backup that has no such record)."""
    return {
        "name": info.name,
        "state": "Completed",
        "size": info.size,
        "meta_only": info.meta_only,
        "milvus_version": info.milvus_version,
        "format": info.format or "binlog",
        "backup_timestamp": info.backup_timestamp,
        "collections": [
            {
                "name": c.qualified_name,
                "rows": None if c.meta_only else c.row_count(),
                "live_rows": manifest.collection_rows(c.collection_id) if manifest else None,
                "size": c.size,
                "partitions": [p.partition_name for p in c.partition_backups],
                "segments": len(c.segments()),
                "consistency_level": CONSISTENCY_LEVELS.get(c.consistency_level, "Unknown"),
                "indexes": [i.index_name for i in c.index_infos],
                **({"snapshot_files": c.snapshot_backup.total_files} if c.snapshot_backup else {}),
            }
            for c in info.collection_backups
        ],
    }


@main.command()
@click.option("-n", "--name", required=True, help="Backup name.")
@click.pass_context
def verify(ctx: click.Context, name: str) -> None:
    """Check that every object of a backup is there, with the size and checksum it was
    stored with (exit 1, naming each missing or changed object, when it is not)."""
    with _reasons():
        report = verify_backup(Catalog.of(_config(ctx)), name)
    for key, problem in report.problems:
        click.echo(f"{key}: {problem}")
    click.echo(report.verdict())
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("-n", "--name", required=True, help="Backup name.")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete one backup (complete or not), and nothing else."""
    with _reasons():
        removed = Catalog.of(_config(ctx)).delete(name)
    click.echo(f"backup {name} deleted ({removed} objects)")


@main.command()
@click.option("-n", "--name", required=True, help="Backup name.")
@click.option(
    "-c", "--colls", "--collections", default="", help="Collections to restore (default: all)."
)
@click.option("-d", "--databases", default="", help="Every collection of these databases.")
@click.option("-a", "--database_collections", default="", help='JSON: {"db": ["coll"]}.')
@click.option("-s", "--suffix", default="", help="Append this suffix to restored collections.")
@click.option("-r", "--rename", default="", help="Renames: old:new,db.old:db.new,...")
@click.option("--drop_exist_collection", is_flag=True, help="Drop a target that exists.")
@click.option(
    "--rebuild_index/--no_rebuild_index", "--restore_index", default=None,
    help="Rebuild the indexes in the backup (default: with --load).",
)  # fmt: skip
@click.option("--load", is_flag=True, help="Load each restored collection (indexes rebuilt).")
@click.option("--restore_aliases", is_flag=True, help="Recreate the aliases in the backup.")
@click.option("--dry-run", is_flag=True, help="Make every check and print the plan; write nothing.")
@click.option(
    "--filter", "filter_", default="", help="Restore only these targets (after renaming)."
)
@click.option("--meta_only", is_flag=True, help="Create the collections; import no data.")
@click.option("--rbac", is_flag=True, help="Add the backup's users, roles and grants.")
@click.option(
    "--use_v2_restore", is_flag=True, help="Many segments per import job (Milvus >= 2.4)."
)
@_unsupported("--use_auto_index", "--drop_exist_index", "--skip_create_collection")
@click.pass_context
def restore(
    ctx: click.Context,
    *,
    name: str,
    colls: str,
    databases: str,
    database_collections: str,
    suffix: str,
    rename: str,
    drop_exist_collection: bool,
    rebuild_index: bool | None,
    load: bool,
    restore_aliases: bool,
    rbac: bool,
    use_v2_restore: bool,
    dry_run: bool,
    filter_: str,
    meta_only: bool,
) -> None:
    """Restore collections from a backup (bulk import in backup mode)."""
    with _reasons(), _progress_bar(sys.stderr.isatty() and not dry_run) as show:
        if filter_ and (colls or databases or database_collections):
            raise InvalidRequestError(
                "--filter names the targets to restore: give it without -c/-d/-a (as milvus-backup)"
            )
        request = RestoreRequest(
            backup_name=name,
            collections=_selection(colls, databases, database_collections),
            only=_filter(filter_),
            meta_only=meta_only,
            suffix=suffix,
            renames=parse_renames(rename),
            drop_existing=drop_exist_collection,
            rebuild_index=load if rebuild_index is None else rebuild_index,
            load=load,
            restore_aliases=restore_aliases,
            rbac=rbac,
            use_v2_restore=use_v2_restore,
            reader="CLI restore",
        )
        if dry_run:
            click.echo("\n".join(check_restore_request(_config(ctx), request).render()))
            return
        result = restore_backup(_config(ctx), request, show)
    if result.rbac:
        click.echo(result.rbac)
    for c in result.collections:
        detail = f"{c.rows} rows: {c.checked}" if c.state == "Completed" else c.error
        click.echo(f"{c.source} -> {c.target}: {c.state} ({detail})")
    if not result.succeeded:
        _fail(f"restore of {name} failed for {result.failure_summary()}")


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the connection to Milvus and both buckets."""
    with _reasons():
        report = run_check(_config(ctx))
    click.echo(report.render())
    if not report.ok:
        sys.exit(1)


@main.command(name="run")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Namespace to watch (repeat).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace.")
@click.option("--executor", type=click.Choice(["job", "inline"]), default="job", show_default=True)
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Image of the Jobs.")
@click.option("--job-service-account", default="milvus-backup-job", show_default=True)
@click.option(
    "--job-retries",
    type=click.IntRange(0, 20),
    default=3,
    show_default=True,
    help="New Jobs started, each resuming the work, after one dies without a result.",
)
@click.option(
    "--job-defaults",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="YAML file of the Jobs' Pod settings (the shape of spec.jobTemplate), under each "
    "resource's own spec.jobTemplate.",
)
@click.option(
    "--health-port", default=8080, show_default=True, help="Serves /healthz and /metrics."
)
@click.option("--json-logs", is_flag=True, help="Structured (JSON) logs, the Jobs' too.")
@click.option("--webhook-port", type=int, default=0, help="Serve the admission webhook (TLS).")
@click.option("--webhook-cert", default="", help="Webhook certificate (PEM).")
@click.option("--webhook-key", default="", help="Webhook private key (PEM).")
def run_operator(
    *,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    executor: str,
    image: str,
    job_service_account: str,
    job_retries: int,
    job_defaults: Path | None,
    health_port: int,
    json_logs: bool,
    webhook_port: int,
    webhook_cert: str,
    webhook_key: str,
) -> None:
    """Run the operator (MilvusBackup and MilvusRestore controllers)."""
    if bool(namespaces) == all_namespaces:
        raise click.UsageError("give --namespace NS (one or more) or --all-namespaces")
    if webhook_port and not (webhook_cert and webhook_key):
        raise click.UsageError("--webhook-port needs --webhook-cert and --webhook-key")
    from . import manager

    webhook = (
        manager.WebhookOptions(webhook_port, webhook_cert, webhook_key) if webhook_port else None
    )
    manager.run(
        manager.RunOptions(
            namespaces=namespaces,
            all_namespaces=all_namespaces,
            executor=executor,
            image=image,
            job_service_account=job_service_account,
            job_retries=job_retries,
            job_defaults=read_job_defaults(job_defaults),
            health_port=health_port,
            json_logs=json_logs,
            webhook=webhook,
        )
    )


def read_job_defaults(path: Path | None) -> JobTemplate:
    """``--job-defaults``: the Jobs' Pod settings over the built-in ones; a wrong field stops
    the operator at start, named as the chart's value (``jobTemplate.tolerations``)."""
    from .executors.job import BUILT_IN

    if path is None:
        return BUILT_IN
    try:
        raw = yaml.safe_load(path.read_text())
        return parse_job_template(raw, "jobTemplate").over(BUILT_IN)
    except (OSError, yaml.YAMLError, JobTemplateError) as exc:
        raise click.UsageError(f"--job-defaults {path}: {exc}") from None


@main.command(name="job")
@click.argument("kind", type=click.Choice(["backup", "restore"]))
@click.argument("resource", metavar="NAMESPACE/NAME")
@click.option("--json-logs", is_flag=True, help="Structured (JSON) logs, as the operator's.")
def run_job(kind: str, resource: str, json_logs: bool) -> None:
    """Do the work of one resource (the command of the operator's Jobs)."""
    namespace, sep, name = resource.partition("/")
    if not sep or not namespace or not name:
        raise click.UsageError("the resource is NAMESPACE/NAME")
    from . import worker
    from .logs import use_kopf_format

    use_kopf_format(json_logs)
    from .executors.job import SECRETS_DIR, SECRETS_ENV
    from .k8s.credentials import MountedSecrets

    secrets = MountedSecrets(Path(os.environ.get(SECRETS_ENV, SECRETS_DIR)))
    run = worker.backup if kind == "backup" else worker.restore
    with stop_gently():
        done = run(namespace, name, secrets)
    if not done:
        _fail(f"{kind} of {resource} did not complete: see the resource's status")


@main.command(name="server")
@click.option("-p", "--port", default=8080, show_default=True, help="Port to listen on.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("milvus-backup-tasks.db"),
    show_default=True,
    help="Where task state is kept across restarts (SQLite).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Require 'Authorization: Bearer <token>', the token read from this file.",
)
@click.option(
    "--kubernetes-namespace",
    default="",
    help="In-cluster mode: turn calls into MilvusBackup/MilvusRestore resources here.",
)
@click.option(
    "--template",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="In-cluster mode: YAML with the milvus, storage and backupStorage of every resource.",
)
@click.option("--no-auth", is_flag=True, help="In-cluster mode: serve without a bearer token.")
@click.pass_context
def serve(
    ctx: click.Context,
    *,
    port: int,
    host: str,
    state: Path,
    token_file: Path | None,
    kubernetes_namespace: str,
    template: Path | None,
    no_auth: bool,
) -> None:
    """Serve milvus-backup's REST API (/api/v1/..., Swagger UI at /api/v1/docs/index.html)."""
    import uvicorn

    from .server.app import create_app

    with _reasons():
        token = read_token(token_file) if token_file else ""
        if kubernetes_namespace:
            if not (token or no_auth):
                raise click.UsageError("in a cluster, give --token-file (or --no-auth)")
            if template is None:
                raise click.UsageError("--kubernetes-namespace needs --template")
            from .server.cluster import ClusterBackend

            loaded: dict[str, Any] = yaml.safe_load(template.read_text()) or {}
            backend: Any = ClusterBackend(kubernetes_namespace, loaded.get("spec", loaded))
        else:
            from .server.local import LocalBackend
            from .server.tasks import TaskStore

            backend = LocalBackend(_config(ctx), TaskStore(state))
            backend.resume()  # in the background: the API answers (and shows them) meanwhile
    with stop_gently():  # uvicorn stops serving, then hands the signal back to us
        uvicorn.run(create_app(backend, token), host=host, port=port, log_level="info")


def read_token(path: Path) -> str:
    """The bearer token in ``path``; a file that is missing, unreadable or blank stops the
    server (authentication is never turned off by accident)."""
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise click.UsageError(f"cannot read the token file {path}: {reason}") from None
    if not token:
        raise click.UsageError(
            f"the token file {path} is empty: put the token in it (or leave out --token-file)"
        )
    if not all(" " < c < "\x7f" for c in token):
        raise click.UsageError(
            f"the token in {path} must be printable ASCII without spaces (it is sent in an "
            "HTTP header)"
        )
    return token
