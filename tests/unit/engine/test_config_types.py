"""Each key read with its type, as milvus-backup's loader reads it (gopkg.in/yaml.v3 into
``any``, then ``internal/cfg/param/value.go`` ``parseAny``), and a file read within bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from milvus_backup_operator.engine.config import BackupConfig
from milvus_backup_operator.engine.config_file import load_config
from milvus_backup_operator.engine.config_yaml import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_NODES
from milvus_backup_operator.engine.errors import InvalidRequestError

from .test_config_files import V1_STOCK_KEYS

#: milvus-backup's configs/backup.yaml at its HEAD (f81df44), its comments left out, every
#: value as it is written there (quoted or not)
V2_STOCK = """\
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
  password: "Milvus"
  grpc:
    address: localhost
    port: 19530
    tlsMode: disabled
    caCertPath: ""
    serverName: ""
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
    address: localhost
    port: 9000
    region: ""
    useSSL: false
    bucketName: "a-bucket"
    rootPath: "files"
    auth:
      type: static
      accessKeyID: minioadmin
      secretAccessKey: minioadmin
backup:
  storage:
    provider: "minio"
    address: localhost
    port: 9000
    region: ""
    useSSL: false
    bucketName: "a-bucket"
    rootPath: "backup"
    auth:
      type: static
      accessKeyID: minioadmin
      secretAccessKey: minioadmin
  concurrency:
    collections: 4
    segments: 1024
  pauseGC: true
restore:
  concurrency:
    collections: 2
    importJobs: 768
  maxSegmentsPerImportJob: 256
  keepTempFiles: false
transfer:
  mode: auto
  concurrency: 128
  multipartCopyThresholdMiB: 500
zillizCloud:
  endpoint: https://api.cloud.zilliz.com
  apiKey: <your-api-key>
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backup.yaml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str) -> BackupConfig:
    return load_config(write(tmp_path, text), {}, required=True)


def refused(tmp_path: Path, text: str, message: str) -> str:
    with pytest.raises(InvalidRequestError, match=message) as caught:
        load(tmp_path, text)
    return str(caught.value)


def test_milvus_backup_s_own_files_load_in_both_formats(tmp_path: Path) -> None:
    v2 = load(tmp_path, V2_STOCK)
    assert (v2.milvus.address, v2.milvus.port, v2.milvus.password) == ("localhost", 19530, "Milvus")
    assert (v2.storage.use_ssl, v2.backup_storage.root_path) == (False, "backup")
    assert v2.gc_pause.enabled and v2.parallelism.copy_data == 128
    v1 = load(tmp_path, V1_STOCK_KEYS)
    assert (v1.storage.port, v1.storage.root_path, v1.milvus.tls_mode) == (9000, "files", 0)


def v1_minio(key: str, value: str) -> str:
    """A v1 file with ``minio.<key>: <value>`` written as is."""
    return f"minio:\n  bucketName: milvus-bucket\n  backupBucketName: backups\n  {key}: {value}\n"


#: values milvus-backup's loader reads, and what they read as
READ = [
    ("port", "19531", 19531, "storage.port"),
    ("port", '"19531"', 19531, "storage.port"),  # strconv.ParseInt of the text, as in Go
    ("port", "+19531", 19531, "storage.port"),
    ("useSSL", "true", True, "storage.use_ssl"),
    ("useSSL", "True", True, "storage.use_ssl"),
    ("useSSL", "TRUE", True, "storage.use_ssl"),
    ("useSSL", "t", True, "storage.use_ssl"),  # text to yaml.v3, true to strconv.ParseBool
    ("useSSL", '"1"', True, "storage.use_ssl"),
    ("useSSL", "F", False, "storage.use_ssl"),
    ("useSSL", "'0'", False, "storage.use_ssl"),
    ("backupRootPath", '"123"', "123", "backup_storage.root_path"),
    ("backupRootPath", "!!str 123", "123", "backup_storage.root_path"),
    ("backupRootPath", "2024-01-01", "2024-01-01", "backup_storage.root_path"),  # decode.go
    ("backupRootPath", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z", "backup_storage.root_path"),
    ("backupRootPath", "yes", "yes", "backup_storage.root_path"),  # not YAML 1.1's true
    ("backupRootPath", "190:20", "190:20", "backup_storage.root_path"),  # nor its base 60
    ("backupRootPath", "~", "file", "backup_storage.root_path"),  # null: the default
    ("backupRootPath", "", "file", "backup_storage.root_path"),
    ("secretAccessKey", "on", "on", "storage.secret_key"),
]


@pytest.mark.parametrize(("key", "value", "expected", "field"), READ)
def test_values_read_as_milvus_backup_reads_them(
    tmp_path: Path, key: str, value: str, expected: Any, field: str
) -> None:
    config = load(tmp_path, v1_minio(key, value) + "  rootPath: file\n")
    section, name = field.split(".")
    assert getattr(getattr(config, section), name) == expected


#: values refused, by key, with what the message says is accepted
REFUSED = [
    ("port", "37395.0", "an integer in decimal digits"),  # Go takes it; surely not meant
    ("port", "37395.9", "an integer in decimal digits"),  # was read as 37395
    ("port", "1e4", "an integer in decimal digits"),
    ("port", "0x4A3B", "an integer in decimal digits"),
    ("port", "011000", "an integer in decimal digits"),  # octal 4608 to Go and to YAML 1.1
    ("port", "1_9530", "an integer in decimal digits"),
    ("port", "190:20", "an integer in decimal digits"),  # YAML 1.1's base 60: was 11420
    ("port", "true", "an integer in decimal digits"),
    ("port", '"19531.0"', "an integer in decimal digits"),
    ("port", '""', "an integer in decimal digits"),  # strconv.ParseInt refuses it too
    ("useSSL", "yes", "true or false .*yes, no, on and off are text to it"),
    ("useSSL", "on", "true or false"),
    ("useSSL", "Y", "true or false"),
    ("useSSL", "1", "true or false"),  # an int to yaml.v3: parseAny refuses it
    ("useSSL", '"yes"', "true or false"),
    ("useSSL", "tRUE", "true or false"),
    ("useSSL", '""', "true or false"),
    ("backupRootPath", "123", "a string: put it in quotes"),
    ("backupRootPath", "0755", "a string: put it in quotes"),  # Go would make it 493
    ("backupRootPath", "1.10", "a string: put it in quotes"),  # Go would make it 1.1
    ("backupRootPath", "true", "a string: put it in quotes"),
    ("backupRootPath", ".inf", "a string: put it in quotes"),
    ("backupRootPath", "[a, b]", "a string, not a list or a mapping"),
    ("secretAccessKey", "0123", "a string: put it in quotes"),  # Go would send 83
    ("port", "!!float 9000", "YAML tag"),
    ("backupRootPath", "!!binary aGVsbG8=", "YAML tag"),
    ("backupRootPath", "!!python/object/apply:os.system [echo]", "YAML tag"),
]


@pytest.mark.parametrize(("key", "value", "message"), REFUSED)
def test_values_of_the_wrong_type_are_refused_by_key(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    text = refused(tmp_path, v1_minio(key, value), message)
    assert f"line 4: minio.{key}" in text


@pytest.mark.parametrize("value", ["0123", "98765.5", "0x5EC", "!!int 777", "[s3cr3t]"])
def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path, value: str) -> None:
    text = refused(tmp_path, f"configVersion: v2\nmilvus:\n  password: {value}\n", "password")
    assert value.rsplit(maxsplit=1)[-1] not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("log:\n  console: yes\n", "log.console must be true or false"),
        ("log:\n  file:\n    maxSizeMiB: 1.5\n", "log.file.maxSizeMiB must be an integer"),
        ("server:\n  swaggerBasePath: 12\n", "server.swaggerBasePath must be a string"),
        ("milvus:\n  etcd:\n    endpoints: 127.0.0.1:2379\n", "endpoints must be a YAML list"),
        ("milvus:\n  etcd:\n    endpoints: [2379]\n", "endpoints must be a YAML list"),
    ],
)
def test_keys_without_effect_here_are_still_read_with_their_type(
    tmp_path: Path, text: str, message: str
) -> None:
    refused(tmp_path, "configVersion: v2\n" + text, message)


def test_a_section_left_empty_is_no_key_as_in_milvus_backup(tmp_path: Path) -> None:
    """``flattenAny`` drops a null leaf: a section with all its keys commented out."""
    text = V2_STOCK.replace("zillizCloud:\n  endpoint", "zillizCloud:\n  # endpoint")
    text = text.replace("  apiKey: <your-api-key>\n", "  # apiKey: <your-api-key>\n")
    text = text.replace("  debugMode: false\n  swaggerBasePath", "  # debugMode: false\n  # s")
    assert load(tmp_path, text).milvus.port == 19530
    refused(tmp_path, text + "servers:\n", "unknown key servers")


def test_a_dotted_key_is_refused_not_silently_left_at_its_default(tmp_path: Path) -> None:
    """milvus-backup would read ``grpc.port`` as milvus.grpc.port; it was ignored here."""
    text = "configVersion: v2\nmilvus:\n  grpc.port: 19531\n"
    refused(tmp_path, text, r"line 3: a key under milvus is not a name .*without '\.'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"milvus\\0": {port: 1}\n', "line 1: a key under the top level is not a name"),
        ("? [a, b]\n: 1\n", "line 1: a key under the top level is not a name"),
        (f"{'k' * 101}: 1\n", "line 1: a key under the top level is not a name"),
        ("configVersion: v2\nmilvus:\n  <<: {user: u}\n", "unknown key milvus.<<"),  # no merge
        ("milvus: {port: 19530}\n---\nmilvus: {port: 1}\n", "not valid YAML"),
        ("milvus:\n  address: a\n  address: b\n", r"gives milvus.address twice \(lines 2 and 3"),
    ],
)
def test_keys_that_are_not_plain_names_are_refused(tmp_path: Path, text: str, message: str) -> None:
    refused(tmp_path, text, message)


def test_an_alias_is_refused_before_it_expands(tmp_path: Path) -> None:
    """The "billion laughs": nine lines that would expand to 10^9 items."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    refused(tmp_path, "\n".join(lines) + "\n", r"line 2: a YAML alias \(\*name\) is not read")
    refused(tmp_path, "milvus:\n  port: &p 19531\n  x: *p\n", "line 3: a YAML alias")


def test_deep_nesting_is_refused_at_the_limit(tmp_path: Path) -> None:
    refused(tmp_path, "[" * 100, f"line 1: nested more than {MAX_DEPTH} levels deep")
    refused(tmp_path, "[" * 100_000, "nested more than|nesting depth")  # libyaml stops at 1000
    refused(tmp_path, "a: " * 1000 + "1\n", "not valid YAML")  # a mapping value on one line
    nested = "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(MAX_DEPTH + 1))
    refused(tmp_path, nested + "  " * (MAX_DEPTH + 1) + "x: 1\n", "nested more than")


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "#" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(InvalidRequestError, match=r"larger than 1024 KiB, the most read"):
        load_config(path, {}, required=True)
    with pytest.raises(InvalidRequestError, match="larger than 1024 KiB"):
        load_config(Path("/dev/zero"), {}, required=True)  # no end at all


def test_a_large_file_within_the_limits_is_read(tmp_path: Path) -> None:
    """Up to the limits: the bytes (a long value, comments) and the keys and values."""
    filler = "x" * (MAX_CONFIG_BYTES - len(V2_STOCK) - 100)
    text = V2_STOCK.replace('password: "Milvus"', f'password: "{filler}"') + "# comment\n" * 9
    assert len(text.encode()) <= MAX_CONFIG_BYTES
    assert load(tmp_path, text).milvus.password == filler
    items = "      - h:1\n" * (MAX_NODES - 200)
    assert load(tmp_path, V2_STOCK.replace("      - 127.0.0.1:2379\n", items)).milvus.port == 19530


def test_more_keys_and_values_than_the_limit_are_refused_unbuilt(tmp_path: Path) -> None:
    """Half a million items in a flow list took seconds and 150 MB to compose."""
    text = "configVersion: v2\nmilvus:\n  etcd:\n    endpoints: [" + "a," * 500_000 + "a]\n"
    refused(tmp_path, text, f"line 4: more than {MAX_NODES} keys and values")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "~\n", "---\n"])
def test_an_empty_file_gives_the_defaults(tmp_path: Path, text: str) -> None:
    assert load(tmp_path, text) == load_config(None, {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"milvus:\n  password: \xff\xfe\n", "not UTF-8 text"),
        (b"milvus:\n  password: a\x00b\n", "not valid YAML"),
        (b"\x00" * 1000, "not valid YAML"),
        (b"- milvus\n", "must hold a mapping at the top level"),
    ],
)
def test_files_that_are_not_a_mapping_are_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "backup.yaml"
    path.write_bytes(content)
    with pytest.raises(InvalidRequestError, match=message):
        load_config(path, {}, required=True)


def test_an_empty_section_and_a_quoted_false_read_as_milvus_backup_reads_them(
    tmp_path: Path,
) -> None:
    """``milvus: {}`` is no key, as ``milvus:`` is; ``useIAM: "false"`` is false (ParseBool)."""
    assert load(tmp_path, "milvus: {}\n" + v1_minio("useSSL", "false")).milvus.port == 19530
    assert load(tmp_path, v1_minio("useIAM", '"false"')).storage.bucket == "milvus-bucket"
    refused(tmp_path, v1_minio("useIAM", '"true"'), "IAM credentials not supported")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeouts:\n  rpc: 1e308\n", "timeouts.rpc must be at most 3600 seconds"),
        ("timeouts:\n  writerSilence: 7200\n", "timeouts.writerSilence must be at most 3600"),
        ("timeouts:\n  connect: 1e-320\n", "timeouts.connect must be a number of seconds"),
        (
            "timeouts:\n  writerSilence: 0.5\n",
            "writerSilence must be a number of seconds, at least 1",
        ),
        ("backup:\n  gcPause:\n    address: http://[::1\n", r"an http:// or https:// URL \("),
        ("backup:\n  gcPause:\n    address: http://a b:9091\n", "spaces or control characters"),
        ("backup:\n  gcPause:\n    address: http://:9091\n", "names no host"),
        ("backup:\n  gcPause:\n    address: http://h:x@h2\n", "holds a user or password"),
    ],
)
def test_timeouts_and_addresses_out_of_bounds_are_refused_at_load(
    tmp_path: Path, text: str, message: str
) -> None:
    refused(tmp_path, text, message)
