"""Property-based tests of the REST API: schemathesis makes requests from our OpenAPI document.

The real server (``milvus-backup-operator server``) runs against the real stack. For every
operation, schemathesis sends boundary cases of the document (its coverage phase) and random
requests, valid and invalid (fuzzing), and checks each answer: never a 5xx, a status code the
document lists, the content type and body schema it gives for that code, and a 4xx for a request
the document says is invalid. (Under pytest 9.2 the eight generated tests share one node id;
the failure headings still name the operation, e.g. ``[GET /api/v1/get_backup]``.)

Nothing is left out, but nothing outside this test may be harmed:

* the server keeps its backups under a root path of its own (``minio.backupRootPath``), so
  ``/delete`` (and ``/get_backup``, ``/list``, ``/restore``) only ever see backups made by this
  test's own ``/create`` calls, never the other tests' backups;
* ``/restore`` may only create collections: ``dropExistCollection`` is turned off when it is
  generated as true, since it would drop and re-create the shared sample collections (without
  their indexes, unloaded) under the tests that run after this one;
* the collections and databases a restore created are dropped when the module ends, and the
  ones that were there before must still be there.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any, cast

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from milvus_backup_operator.server.app import create_app
from milvus_backup_operator.server.backend import Backend
from testbed import sample_data
from testbed.stack import Stack
from tests.integration.api_server import Server, call, running

pytestmark = pytest.mark.integration

#: a backup root path of this test's own, in the stack's backup bucket
ROOT_PATH = "schemathesis"
#: generated cases per operation and phase; the whole module takes about a minute
MAX_EXAMPLES = 30
#: each restore that runs takes a few seconds
RESTORE_EXAMPLES = 15
CHECKS = [
    not_a_server_error,  # no 5xx
    status_code_conformance,  # only the status codes the document lists
    content_type_conformance,  # the content type the document gives for that status
    response_schema_conformance,  # a body that fits the document's schema for it
    negative_data_rejection,  # a request the document calls invalid gets a 4xx
]
# Left out: positive_data_acceptance (a request the document calls valid gets a 2xx or 404).
# The document does not carry the server's own rules (a backup name is [A-Za-z_][A-Za-z0-9_]*,
# get_backup needs backup_name or backup_id), so a schema-valid '00' is rightly a 400.
#: a synchronous create or restore of the samples takes a few seconds; more means a hang
REQUEST_TIMEOUT = 120


def _collections(uri: str) -> set[tuple[str, str]]:
    client = sample_data.client(uri)
    return {
        (db, name)
        for db in client.list_databases()
        for name in sample_data.client(uri, db).list_collections()
    }


@pytest.fixture(scope="module")
def api_server(
    stack: Stack, samples: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("properties")
    config = yaml.safe_load(stack.config_path.read_text())
    config["minio"]["backupRootPath"] = ROOT_PATH
    config_path = folder / "backup.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    before = _collections(stack.milvus.uri)
    try:
        with running(config_path, folder) as started:
            yield started
    finally:
        _drop_new_collections(stack.milvus.uri, before)


def _drop_new_collections(uri: str, before: set[tuple[str, str]]) -> None:
    after = _collections(uri)
    for db, name in sorted(after - before):
        sample_data.client(uri, db).drop_collection(name)
    dbs_before = {db for db, _ in before} | {"default"}
    client = sample_data.client(uri)
    for db in set(client.list_databases()) - dbs_before:
        if not sample_data.client(uri, db).list_collections():
            client.drop_database(db)
    assert before <= _collections(uri), f"collections lost: {before - _collections(uri)}"


#: the document the server serves, built from the same code (it does not use the backend);
#: ``test_the_server_serves_this_document`` checks that they are the same
DOCUMENT = create_app(cast(Backend, None)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)
RESTORE = schema["/api/v1/restore"]["POST"]
#: the backup the restore properties restore from: one small collection
SOURCE = "props_source"


def test_the_server_serves_this_document(api_server: Server) -> None:
    status, served = call(api_server, "GET", "/openapi.json")
    assert status == 200 and served == json.loads(json.dumps(DOCUMENT))


def _keep_restores_harmless(case: schemathesis.Case) -> None:
    """A restore may create collections, never drop the shared ones (see the module doc)."""
    body = case.body
    if (
        case.path == RESTORE.path
        and isinstance(body, dict)
        and body.get("dropExistCollection") is True
    ):
        body["dropExistCollection"] = False


def _call_and_validate(server: Server, case: schemathesis.Case) -> None:
    _keep_restores_harmless(case)
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{server.port}", checks=CHECKS, timeout=REQUEST_TIMEOUT
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # every run draws afresh: no replay of examples saved by an earlier run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_answers_as_documented(api_server: Server, case: schemathesis.Case) -> None:
    _call_and_validate(api_server, case)


# Random restore requests above name backups that do not exist, and random suffixes that are
# not names. These name a real backup, and a suffix that fits, so that the restores themselves
# run with the other fields generated (creating collections, dropped when the module ends).
@pytest.fixture(scope="module")
def source_backup(api_server: Server) -> str:
    request = {"backup_name": SOURCE, "collection_names": [sample_data.TINY.name]}
    status, body = call(api_server, "POST", "/create", request)
    assert status == 200, body
    return SOURCE


@given(case=RESTORE.as_strategy(), suffix=st.from_regex(r"_[a-z0-9]{1,6}", fullmatch=True))
@settings(
    max_examples=RESTORE_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_restores_of_a_real_backup_answer_as_documented(
    api_server: Server, source_backup: str, case: schemathesis.Case, suffix: str
) -> None:
    assert isinstance(case.body, dict)
    case.body["backup_name"] = source_backup
    if not case.body.get("collection_renames"):
        case.body["collection_suffix"] = suffix
    _call_and_validate(api_server, case)


# What the property run above found, pinned down so that it never depends on the draw:
# a backup name that cannot be an S3 key (a control character, '.' or '..' segments) or that
# is the backup root itself ('/') must be refused or not found, with the usual envelope.
@pytest.mark.parametrize("name", ["\x16", "x\x1by", ".", "..", "a/../..", "/"])
def test_get_backup_of_a_name_storage_cannot_hold_is_a_client_error(
    api_server: Server, name: str
) -> None:
    status, text = call(
        api_server, "GET", f"/get_backup?backup_name={urllib.parse.quote(name, safe='')}", raw=True
    )
    assert status in (400, 404), (status, text)
    body = json.loads(text)
    assert body["code"] == status and body["data"] is None and body["msg"], body
