"""milvus-backup's two configuration formats: every key read, known inert, or refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from milvus_backup_operator.engine.config_file import load_config
from milvus_backup_operator.engine.errors import InvalidRequestError

#: every key of milvus-backup's stock v2 file (configs/backup.yaml at its HEAD), our values
V2 = """\
configVersion: v2
log:
  level: info
  console: true
  file:
    path: "logs/backup.log"
server:
  debugMode: false
  swaggerBasePath: ""
milvus:
  user: "root"
  password: "Milvus-secret"
  grpc:
    address: milvus.example
    port: 19531
    tlsMode: server
    caCertPath: "/ca.pem"
    serverName: "milvus.example"
    mtlsCertPath: ""
    mtlsKeyPath: ""
  rest:
    endpoint: ""
  management:
    endpoint: http://localhost:9091
  replicate:
    rpcChannelName: "by-dev-replicate-msg"
  etcd:
    endpoints:
      - 127.0.0.1:2379
    rootPath: "by-dev"
  storage:
    provider: "minio"
    address: minio.example
    port: 9001
    region: "eu"
    useSSL: true
    bucketName: "milvus-bucket"
    rootPath: "file"
    auth:
      type: static
      accessKeyID: AK
      secretAccessKey: SK
backup:
  storage:
    provider: "minio"
    bucketName: "backups"
    rootPath: "nightly"
    auth:
      type: static
      accessKeyID: BAK
      secretAccessKey: BSK
  concurrency:
    collections: 3
    segments: 1024
  pauseGC: true
restore:
  concurrency:
    collections: 5
    importJobs: 7
  maxSegmentsPerImportJob: 256
  keepTempFiles: true
transfer:
  mode: auto
  concurrency: 64
  multipartCopyThresholdMiB: 500
zillizCloud:
  endpoint: https://api.cloud.zilliz.com
  apiKey: <your-api-key>
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backup.yaml"
    path.write_text(text)
    return path


def test_the_v2_format_is_read_key_by_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, V2), {}, required=True)
    assert (config.milvus.address, config.milvus.port, config.milvus.tls_mode) == (
        "milvus.example", 19531, 1,
    )  # fmt: skip
    assert (config.milvus.user, config.milvus.password) == ("root", "Milvus-secret")
    storage, backup = config.storage, config.backup_storage
    assert (storage.address, storage.port, storage.use_ssl, storage.region) == (
        "minio.example", 9001, True, "eu",
    )  # fmt: skip
    assert (storage.bucket, storage.root_path, storage.access_key) == (
        "milvus-bucket",
        "file",
        "AK",
    )
    # backup.storage inherits what it leaves out, except rootPath
    assert (backup.address, backup.port, backup.use_ssl) == ("minio.example", 9001, True)
    assert (backup.bucket, backup.root_path, backup.access_key, backup.secret_key) == (
        "backups", "nightly", "BAK", "BSK",
    )  # fmt: skip
    assert config.parallelism.copy_data == 64 and config.parallelism.backup_collection == 3
    assert config.parallelism.restore_collection == 5 and config.parallelism.import_job == 7
    assert config.keep_temp_files


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("provider: \"minio\"\n    address: minio", "provider: \"azure\"\n    address: minio"),
         "milvus.storage.provider must be one of minio, s3, aws"),
        (("type: static\n      accessKeyID: AK", "type: iam\n      accessKeyID: AK"),
         "milvus.storage.auth.type must be one of static"),
        (("      secretAccessKey: SK\n", "      secretAccessKey: SK\n      sessionToken: T\n"),
         "milvus.storage.auth.sessionToken: auth.sessionToken not supported"),
        (("configVersion: v2", "configVersion: v3"), "configVersion must be one of v1, v2"),
        (("  pauseGC: true\n", "  pauseGC: true\n  strategy: meta_only\n"),
         "unknown key backup.strategy"),
        (("transfer:\n  mode: auto", "transfer:\n  mode: streaming"),
         "transfer.mode must be one of auto"),
    ],
)  # fmt: skip
def test_what_v2_cannot_honour_is_refused_by_name(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    assert change[0] in V2
    path = write(tmp_path, V2.replace(*change))
    with pytest.raises(InvalidRequestError, match=message) as caught:
        load_config(path, {}, required=True)
    assert str(path) in str(caught.value) and ", line " in str(caught.value)
    assert "SK" not in str(caught.value) and "secret" not in str(caught.value)


V1_STOCK_KEYS = """\
log:
  level: info
  console: true
  file:
    filename: "logs/backup.log"
cloud:
  address: https://api.cloud.zilliz.com
  apikey: <your-api-key>
milvus:
  address: localhost
  port: 19530
  user: "root"
  password: "Milvus"
  tlsMode: 0
  caCertPath: ""
  serverName: ""
  mtlsCertPath: ""
  mtlsKeyPath: ""
  rpcChannelName: "by-dev-replicate-msg"
  etcd:
    endpoints: 127.0.0.1:2379
    rootPath: "by-dev"
minio:
  storageType: "minio"
  address: localhost
  port: 9000
  region: ""
  accessKeyID: minioadmin
  secretAccessKey: minioadmin
  token: ""
  gcpCredentialJSON: "/path/to/json-key-file"
  useSSL: false
  useIAM: false
  iamEndpoint: ""
  bucketName: "a-bucket"
  rootPath: "files"
  backupStorageType: "minio"
  backupAddress: localhost
  backupRegion: ""
  backupPort: 9000
  backupAccessKeyID: minioadmin
  backupSecretAccessKey: minioadmin
  backupToken: ""
  backupGcpCredentialJSON: "/path/to/json-key-file"
  backupBucketName: "a-bucket"
  backupRootPath: "backup"
  backupUseSSL: false
  crossStorage: false
  multipartCopyThresholdMiB: 500
backup:
  parallelism:
    copydata: 128
    backupCollection: 4
    backupSegment: 1024
    restoreCollection: 2
    importJob: 768
  keepTempFiles: false
  gcPause:
    enable: true
    address: http://localhost:9091
"""


def test_milvus_backup_0_5_s_stock_keys_are_all_understood(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, V1_STOCK_KEYS), {}, required=True)
    assert (config.storage.bucket, config.storage.root_path) == ("a-bucket", "files")
    assert config.backup_storage.root_path == "backup"


def test_a_v1_key_we_do_not_know_is_refused_with_its_line(tmp_path: Path) -> None:
    typo = "  backupUseSSL: false\n  backupUseSLL: true\n"
    text = V1_STOCK_KEYS.replace("  backupUseSSL: false\n", typo)
    line = text.splitlines().index("  backupUseSLL: true") + 1
    with pytest.raises(InvalidRequestError, match=rf"line {line}: unknown key minio.backupUseSLL"):
        load_config(write(tmp_path, text), {}, required=True)


def test_a_section_given_twice_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    """A second ``milvus:`` section would silently replace the first (a hostile run)."""
    text = "milvus:\n  address: milvus.db\n  port: 19530\nmilvus:\n  port: 19531\n"
    with pytest.raises(InvalidRequestError, match=r"gives milvus twice \(lines 1 and 4\)"):
        load_config(write(tmp_path, text), {}, required=True)
    nested = "milvus:\n  address: a\n  address: b\n"
    with pytest.raises(InvalidRequestError, match=r"gives milvus.address twice \(lines 2 and 3"):
        load_config(write(tmp_path, nested), {}, required=True)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("storageType", "azure", "minio.storageType must be one of minio, s3, aws"),
     ("useIAM", "true", "minio.useIAM: IAM credentials not supported"),
     ("backupToken", "T", "minio.backupToken: session tokens not supported")],
)  # fmt: skip
def test_what_v1_cannot_honour_is_refused_by_name(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    text = "\n".join(
        f"  {key}: {value}" if line.strip().startswith(f"{key}:") else line
        for line in V1_STOCK_KEYS.splitlines()
    )
    with pytest.raises(InvalidRequestError, match=message):
        load_config(write(tmp_path, text), {}, required=True)


def test_a_v1_file_without_backup_root_path_falls_back_to_root_path(tmp_path: Path) -> None:
    """As milvus-backup v0.5.16 does: cmp.Or(backupRootPath, rootPath, "backup")."""
    elsewhere = "minio:\n  bucketName: milvus-bucket\n  rootPath: data\n  backupBucketName: other\n"
    assert load_config(write(tmp_path, elsewhere), {}).backup_storage.root_path == "data"
    same_bucket = "minio:\n  bucketName: milvus-bucket\n  rootPath: data\n"
    with pytest.raises(InvalidRequestError, match="overlaps Milvus's data"):
        load_config(write(tmp_path, same_bucket), {})
    assert load_config(None, {}).backup_storage.root_path == "backup"  # no file at all
