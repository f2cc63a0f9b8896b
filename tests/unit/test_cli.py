"""The command line's contract, where no Milvus is needed."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from milvus_backup_operator.engine.catalog import BackupSummary


def run(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "milvus-backup-operator"
    return subprocess.run([str(script), *args], capture_output=True, text=True, check=False)


def test_console_script_lists_milvus_backups_verbs() -> None:
    result = run("--help")
    assert result.returncode == 0
    for verb in ("create", "list", "get", "delete", "restore", "check"):
        assert f"  {verb} " in result.stdout


def test_usage_error_exits_2_and_names_the_option() -> None:
    result = run("restore")
    assert result.returncode == 2 and "Missing option '-n'" in result.stderr


def test_bad_name_is_refused_before_any_connection(tmp_path: Path) -> None:
    config = tmp_path / "backup.yaml"
    config.write_text(
        "milvus: {address: 192.0.2.1}\nminio: {address: 192.0.2.1, backupRootPath: backup}\n"
    )
    result = run("--config", str(config), "create", "-n", "bad-name")
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid backup name 'bad-name'")


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "nope.yaml"), "list")
    assert result.returncode == 1 and "does not exist: check --config" in result.stderr


def test_restore_refuses_suffix_with_renames_before_reading_anything(tmp_path: Path) -> None:
    config = tmp_path / "backup.yaml"
    config.write_text("minio: {address: 192.0.2.1, backupRootPath: backup}\n")
    result = run("--config", str(config), "restore", "-n", "b", "-s", "_x", "-r", "a:b")
    assert result.returncode == 1 and "either a collection suffix or renames" in result.stderr


@pytest.mark.parametrize(
    ("command", "flag"),
    [("create", "--format=snapshot"), ("create", "--force"), ("restore", "--use_auto_index"),
     ("restore", "--skip_create_collection")],
)  # fmt: skip
def test_milvus_backup_flags_we_do_not_implement_are_refused_by_name(
    command: str, flag: str
) -> None:
    result = run(command, "-n", "x", flag)
    assert result.returncode == 2, result.stderr
    assert f"{flag.split('=', maxsplit=1)[0]} is milvus-backup's, not supported" in result.stderr


def test_a_flag_nobody_knows_is_a_usage_error() -> None:
    result = run("create", "-n", "x", "--colections", "a")
    assert result.returncode == 2 and "No such option '--colections'" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("create", "-n", "x", "--strategy", "skip_flush"), "strategy skip_flush is milvus-backup"),
        (("create", "-n", "x", "--filter", "db1."), "a database without collections"),
        (("create", "-n", "x", "--filter", "db1.*", "-c", "a"), "give --filter or -c/-d/-a"),
        (("restore", "-n", "x", "--filter", "db1.*", "-d", "db1"), "--filter names the targets"),
    ],
)
def test_filter_and_strategy_refused_before_any_connection(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    config = tmp_path / "backup.yaml"
    config.write_text(
        "milvus: {address: 192.0.2.1}\nminio: {address: 192.0.2.1, backupRootPath: backup}\n"
    )
    result = run("--config", str(config), *args)
    assert result.returncode == 1 and fragment in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("flags", "rebuilt"),
    [(["--load"], True), (["--load", "--no_rebuild_index"], False), ([], False),
     (["--restore_index"], True), (["--rebuild_index"], True)],
)  # fmt: skip
def test_load_rebuilds_the_indexes_unless_no_rebuild_index(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], rebuilt: bool
) -> None:
    from milvus_backup_operator import cli

    asked: list[Any] = []

    class Plan:
        def render(self) -> list[str]:
            return ["planned"]

    monkeypatch.setattr(cli, "_config", lambda ctx: None)
    monkeypatch.setattr(cli, "check_restore_request", lambda config, r: asked.append(r) or Plan())
    result = CliRunner().invoke(cli.main, ["restore", "-n", "b", "--dry-run", *flags])
    assert result.exit_code == 0, result.output
    assert asked[0].rebuild_index is rebuilt and asked[0].load is ("--load" in flags)


def test_version_prints_the_package_version() -> None:
    from milvus_backup_operator import __version__

    result = run("--version")
    assert result.returncode == 0 and result.stdout == f"milvus-backup-operator {__version__}\n"


LISTED = [
    BackupSummary("nightly", "Completed", id="id-1", size=2048, milvus_version="v2.3.5",
                  backup_timestamp=1764547200000, collections=("books", "db1.docs")),
    BackupSummary("broken", "Incomplete", error="no meta: the backup did not complete"),
]  # fmt: skip


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> Any:
    from milvus_backup_operator import cli

    class FakeCatalog:
        def list(self) -> list[BackupSummary]:
            return LISTED

    monkeypatch.setattr(cli, "_config", lambda ctx: None)
    monkeypatch.setattr(cli.Catalog, "of", staticmethod(lambda config: FakeCatalog()))
    return lambda *args: CliRunner().invoke(cli.main, ["list", *args])


EXPECTED = [
    {"name": "nightly", "state_code": 2, "size": 2048, "id": "id-1", "milvus_version": "v2.3.5",
     "backup_timestamp": 1764547200000, "collection_names": ["books", "db1.docs"]},
    {"name": "broken", "state_code": 3, "size": 0,
     "errorMessage": "no meta: the backup did not complete"},
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_list_o_json_and_yaml_answer_as_the_rest_list_does(listed: Any, fmt: str) -> None:
    """Field names and values of milvus-backup's REST list (BackupInfo: state_code 2 is
    success, 3 failure), which our REST server's /list answers too."""
    from milvus_backup_operator.server.views import summary

    result = listed("-o", fmt)
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.output) if fmt == "json" else yaml.safe_load(result.output)
    assert parsed == EXPECTED == [summary(s) for s in LISTED]


def test_list_is_a_table_by_default(listed: Any) -> None:
    table = listed().output.splitlines()
    assert table[0].split() == ["NAME", "STATE", "SIZE", "MILVUS", "COLLECTIONS"]
    assert table[1].split() == ["nightly", "Completed", "2048", "v2.3.5", "books,db1.docs"]
    assert listed("-o", "table").output == listed().output
    assert listed("-o", "xml").exit_code == 2
