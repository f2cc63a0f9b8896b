"""What is in use is never deleted: a backup being written (its writer's marker, renewed on
the real gateway) or read by a restore."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from minio.error import S3Error

from milvus_backup_operator.engine import storage
from milvus_backup_operator.engine.errors import AlreadyExistsError, NotFoundError
from milvus_backup_operator.engine.storage import BARE, QUOTED, ObjectStore
from testbed.stack import Stack, stack_config

pytestmark = pytest.mark.integration


def backup_store(stack: Stack) -> ObjectStore:
    config = stack_config(stack)
    return ObjectStore(config.backup_storage, config.timeouts)


def test_the_gateway_takes_if_match_in_its_own_form_and_a_mismatch_still_fails(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RADOS Gateway 16.2 refuses the RFC's quoted ETag (412 for the object's own ETag): the
    store learns the bare form, and never overwrites an object that truly changed."""
    monkeypatch.setattr(storage, "_if_match_forms", {})  # as in a fresh process
    store, key = backup_store(stack), f"probe/{uuid.uuid4().hex}"
    etag = store.put_new(key, b"one")
    with pytest.raises(S3Error) as refused:  # the gateway's behaviour this works around
        headers: Any = {"If-Match": f'"{etag}"'}
        store.client._put_object(store.bucket, key, b"quoted", headers=headers)
    assert refused.value.code == "PreconditionFailed"
    assert store.if_match_form() == QUOTED  # what is tried first, as RFC 7232 and AWS say
    etag = store.put_if_match(key, b"two", etag)
    assert store.get(key) == b"two" and store.if_match_form() == BARE  # learned
    assert backup_store(stack).if_match_form() == BARE  # for the endpoint, not one store
    with pytest.raises(AlreadyExistsError, match="was replaced"):
        store.put_if_match(key, b"three", "0" * 32)
    assert store.get(key) == b"two"
    store.delete(key)
    with pytest.raises(NotFoundError, match="is gone"):
        store.put_if_match(key, b"four", etag)
    assert store.get_if_exists(key) is None  # never re-created
