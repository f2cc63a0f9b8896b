from pathlib import Path

import pytest

from milvus_backup_operator.engine.config import BackupConfig, StorageConfig
from milvus_backup_operator.engine.config_file import load_config
from milvus_backup_operator.engine.errors import InvalidRequestError
from milvus_backup_operator.engine.locations import Location, overlaps

FULL_V1 = """
milvus:
  address: milvus.prod.svc
  port: 19531
  user: root
  password: Milvus-s3cret
  tlsMode: 1
minio:
  address: minio.prod.svc
  port: 9000
  accessKeyID: AKIDEXAMPLE
  secretAccessKey: s3-secret-value
  useSSL: true
  bucketName: milvus-bucket
  rootPath: file
  backupBucketName: backups
  backupRootPath: nightly
backup:
  parallelism:
    copydata: 32
    backupCollection: 2
    restoreCollection: 3
    importJob: 16
  keepTempFiles: true
timeouts:
  connect: 3
  importJob: 120
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backup.yaml"
    path.write_text(text)
    return path


def test_v1_keys_are_read_into_typed_fields(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_V1), {})
    assert config.milvus.endpoint == "milvus.prod.svc:19531"
    assert (config.milvus.user, config.milvus.password, config.milvus.tls_mode) == (
        "root",
        "Milvus-s3cret",
        1,
    )
    assert config.storage.bucket == "milvus-bucket" and config.storage.use_ssl
    # backup-side keys inherit what they do not set, from the Milvus side
    assert config.backup_storage.endpoint == "minio.prod.svc:9000"
    assert config.backup_storage.secret_key == "s3-secret-value"
    assert (config.backup_storage.bucket, config.backup_storage.root_path) == ("backups", "nightly")
    assert config.parallelism.copy_data == 32 and config.parallelism.import_job == 16
    assert config.keep_temp_files
    assert config.timeouts.connect == 3.0 and config.timeouts.import_job == 120.0
    assert config.timeouts.rpc == 60.0  # untouched default


def test_defaults_match_a_helm_deployed_milvus() -> None:
    config = BackupConfig()
    assert (config.storage.bucket, config.storage.root_path) == ("milvus-bucket", "file")
    assert (config.backup_storage.bucket, config.backup_storage.root_path) == (
        "milvus-bucket",
        "backup",
    )
    assert load_config(Path("/nonexistent/backup.yaml"), {}) == config


def test_explicit_config_that_is_missing_is_an_error() -> None:
    with pytest.raises(InvalidRequestError, match="does not exist"):
        load_config(Path("/nonexistent/backup.yaml"), {}, required=True)


def test_only_credentials_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "MILVUS_PASSWORD": "from-env",
        "MINIO_SECRET_KEY": "env-secret",
        "MINIO_BACKUP_ACCESS_KEY": "backup-ak",
        # Kubernetes service links: must be ignored (milvus-backup #197)
        "MILVUS_PORT": "tcp://10.0.0.1:19530",
        "MILVUS_ADDRESS": "10.0.0.1",
        "MINIO_ADDRESS": "10.0.0.2",
    }
    config = load_config(write(tmp_path, FULL_V1), env)
    assert config.milvus.password == "from-env"
    assert config.storage.secret_key == "env-secret"
    assert config.backup_storage.access_key == "backup-ak"
    assert config.milvus.endpoint == "milvus.prod.svc:19531"
    assert config.storage.address == "minio.prod.svc"


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    text = repr(load_config(write(tmp_path, FULL_V1), {}))
    for secret in ("Milvus-s3cret", "s3-secret-value", "AKIDEXAMPLE"):
        assert secret not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("milvus: {port: abc}", "milvus.port must be an integer"),
        ("milvus: {port: 70000}", "milvus.port must be a port"),
        ("minio: {useSSL: maybe}", "minio.useSSL must be true or false"),
        ("backup: {parallelism: {copydata: 0}}", "copydata must be at least 1"),
        ("timeouts: {connect: -1}", "timeouts.connect must be a number of seconds, at least"),
        ("milvus: {tlsMode: 5}", r"milvus.tlsMode must be one of \[0, 1, 2\]"),
        ("- a\n- b", "must hold a mapping"),
        ("milvus: [unclosed", "not valid YAML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        load_config(write(tmp_path, text), {})


def test_a_bad_secret_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        load_config(write(tmp_path, "minio: {secretAccessKey: [top-secret]}"), {})
    assert "top-secret" not in str(caught.value)
    assert "minio.secretAccessKey must be a string" in str(caught.value)


@pytest.mark.parametrize(
    ("milvus", "backup", "overlap"),
    [
        (("b", "file"), ("b", "file"), True),
        (("b", "file"), ("b", "/"), True),  # the whole bucket contains Milvus's root
        (("b", "file"), ("b", ""), True),
        (("b", "file"), ("b", "file/backups"), True),  # inside Milvus's root
        (("b", "file"), ("b", "./file//"), True),
        (("b", "file"), ("B", "file"), True),
        (("b", "a/file"), ("b", "a"), True),
        (("b", "file"), ("b", "files"), False),  # a string prefix, not a path prefix
        (("b", "file"), ("b", "backup"), False),
        (("b", "file"), ("other", "file"), False),
    ],
)
def test_backup_locations_never_overlap_milvus_data(
    milvus: tuple[str, str], backup: tuple[str, str], overlap: bool
) -> None:
    mine = Location(*milvus, "minio.rootPath")
    theirs = Location(*backup, "minio.backupRootPath")
    assert overlaps(mine, theirs) == overlaps(theirs, mine) == overlap
    storage = StorageConfig(bucket=milvus[0], root_path=milvus[1])
    backup_storage = StorageConfig(bucket=backup[0], root_path=backup[1])
    if overlap:
        with pytest.raises(InvalidRequestError, match="overlaps Milvus's data"):
            BackupConfig(storage=storage, backup_storage=backup_storage)
    else:
        BackupConfig(storage=storage, backup_storage=backup_storage)


def test_a_root_path_with_dot_dot_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"must not contain '\.\.'"):
        BackupConfig(backup_storage=StorageConfig(root_path="backup/../file"))
