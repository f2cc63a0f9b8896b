"""GC pause through Milvus's management endpoint: paused, renewed, resumed on every way out.

No Milvus that serves the endpoint runs here (2.3.5 answers 404), so a stand-in HTTP server
(``tests/standin/management.py``) answers as Milvus's handler does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from milvus_backup_operator.engine.capabilities import Capabilities
from milvus_backup_operator.engine.config import GcPause, MilvusConfig
from milvus_backup_operator.engine.errors import InvalidRequestError, OperationError
from milvus_backup_operator.engine.gc_pause import PAUSE, RESUME, gc_paused
from tests.standin.management import StandInManagement

NEW = Capabilities.of("v2.6.3")


@pytest.fixture
def management() -> Iterator[StandInManagement]:
    server = StandInManagement().start()
    yield server
    server.stop()


def paths(server: StandInManagement) -> list[str]:
    return [path for path, _, _ in server.calls]


def test_paused_for_the_block_and_resumed_with_its_ticket(management: StandInManagement) -> None:
    settings = GcPause(seconds=600, address=management.url)
    with gc_paused(settings, MilvusConfig(), NEW, 5) as note:
        assert paths(management) == [PAUSE]
    assert "paused through" in note.text
    assert management.calls[0][1] == {"pause_seconds": "600"}
    assert management.calls[1][:2] == (RESUME, {"ticket": "t-1"})


def test_resumed_when_the_backup_fails_and_renewed_while_it_runs(
    management: StandInManagement,
) -> None:
    settings = GcPause(seconds=1, address=management.url)
    with pytest.raises(OperationError), gc_paused(settings, MilvusConfig(), NEW, 5):
        time.sleep(1.3)  # longer than half a pause: renewed once at least
        raise OperationError("a copy failed")
    assert paths(management)[0] == PAUSE and paths(management).count(PAUSE) >= 2
    assert paths(management)[-1] == RESUME


def test_credentials_go_to_the_endpoint_as_milvus_gates_it(management: StandInManagement) -> None:
    milvus = MilvusConfig(user="root", password="Milvus")
    with gc_paused(GcPause(address=management.url), milvus, NEW, 5):
        pass
    assert all(auth == "Basic cm9vdDpNaWx2dXM=" for _, _, auth in management.calls)


def test_a_refused_pause_lets_the_backup_go_on_and_says_so(management: StandInManagement) -> None:
    management.fail = True
    with gc_paused(GcPause(address=management.url), MilvusConfig(), NEW, 5) as note:
        pass
    assert paths(management) == [PAUSE]  # nothing to resume
    assert "not paused" in note.text and management.url in note.text


@pytest.mark.parametrize(
    ("settings", "version", "says"),
    [
        (GcPause(enabled=False), "v2.6.3", "turned off"),
        (GcPause(), "v2.3.5-lite", "Milvus v2.3.5-lite cannot pause it"),
    ],
)
def test_no_call_where_it_is_off_or_not_served(
    management: StandInManagement, settings: GcPause, version: str, says: str
) -> None:
    settings = GcPause(enabled=settings.enabled, address=management.url)
    with gc_paused(settings, MilvusConfig(), Capabilities.of(version), 5) as note:
        pass
    assert management.calls == [] and says in note.text


PER_COLLECTION = Capabilities.of("v2.6.8")  # milvus-backup: CollectionLevelGCControl >= 2.6.8


def test_from_2_6_8_only_the_collections_held_are_paused_each_with_its_ticket(
    management: StandInManagement,
) -> None:
    settings = GcPause(seconds=600, address=management.url)
    with gc_paused(settings, MilvusConfig(), PER_COLLECTION, 5) as held:
        assert management.calls == []  # no cluster-wide pause
        held.hold(7001)
        held.hold(7002)
        held.release(7001)
    assert [(path, query) for path, query, _ in management.calls] == [
        (PAUSE, {"pause_seconds": "600", "collection_id": "7001"}),
        (PAUSE, {"pause_seconds": "600", "collection_id": "7002"}),
        (RESUME, {"ticket": "c7001-1"}),
        (RESUME, {"ticket": "c7002-2"}),  # still held when the backup ended: resumed then
    ]
    assert "per collection" in held.text


@pytest.mark.parametrize("one_ticket", [False, True], ids=["new ticket", "same ticket"])
def test_a_renewal_keeps_the_collection_paused_and_the_release_leaves_nothing_paused(
    management: StandInManagement, one_ticket: bool
) -> None:
    """Datacoord keeps a record per pause and deletes a ticket's records on resume
    (``garbage_collector.go``): a renewal that resumed the ticket it replaces would unpause
    the collection when Milvus answers the renewal the same ticket. The renewals are called
    here, the stand-in's clock moved on: no waiting."""
    management.one_ticket_per_collection = one_ticket
    settings = GcPause(seconds=600, address=management.url)
    with gc_paused(settings, MilvusConfig(), PER_COLLECTION, 5) as held:
        held.hold(7001)
        for _ in range(3):
            management.advance(400)  # past half of the pause: time to renew
            held.renew()
        management.advance(400)  # the first three pauses are over by now
        assert management.paused(7001)
        assert [p for p, _, _ in management.calls] == [PAUSE] * 4  # nothing resumed yet
        held.release(7001)
    history = management.history[7001]
    assert all(history[:-1]) and not history[-1]  # paused from the hold to the release
    assert not management.records[7001]  # every ticket given back: nothing left paused
    resumed = [q["ticket"] for path, q, _ in management.calls if path == RESUME]
    assert resumed == (["c7001"] if one_ticket else [f"c7001-{n}" for n in range(1, 5)])


def test_a_renewal_after_the_release_gives_its_ticket_back(
    management: StandInManagement,
) -> None:
    settings = GcPause(seconds=600, address=management.url)
    with gc_paused(settings, MilvusConfig(), PER_COLLECTION, 5) as held:
        held.hold(7001)
        held.hold(7002)
        held.release(7001)
        held.renew()  # 7002 only: 7001 was released
    paused = [q.get("collection_id") for path, q, _ in management.calls if path == PAUSE]
    assert paused == ["7001", "7002", "7002"]
    assert not management.paused(7001) and not management.paused(7002)


def test_a_collection_pause_without_a_ticket_is_not_resumed_and_is_said(
    management: StandInManagement,
) -> None:
    management.tickets = False
    with gc_paused(GcPause(address=management.url), MilvusConfig(), PER_COLLECTION, 5) as held:
        held.hold(7001)
        held.release(7001)
    assert paths(management) == [PAUSE]
    assert "not paused for collections [7001]" in held.text


def test_before_2_6_8_a_collection_hold_is_covered_by_the_cluster_pause(
    management: StandInManagement,
) -> None:
    with gc_paused(GcPause(address=management.url), MilvusConfig(), NEW, 5) as held:
        held.hold(7001)
        held.release(7001)
    assert paths(management) == [PAUSE, RESUME]
    assert "collection_id" not in management.calls[0][1]


def test_the_default_endpoint_is_milvus_host_port_9091() -> None:
    assert GcPause().endpoint(MilvusConfig(address="milvus.db")) == "http://milvus.db:9091"


def test_a_request_can_turn_the_pause_on_and_set_its_length_and_address() -> None:
    configured = GcPause(enabled=False, seconds=600)
    asked = configured.asked(True, 60, "http://milvus:9091")
    assert (asked.enabled, asked.seconds, asked.address) == (True, 60, "http://milvus:9091")
    assert configured.asked(False, 0, "") == configured  # nothing asked: the configuration


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"seconds": 0}, "from 1 to 2592000"),
        ({"seconds": 10**20}, "from 1 to"),
        ({"address": "milvus:9091"}, "http:// or https://"),
    ],
)
def test_bad_pause_settings_are_refused(settings: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidRequestError, match=says):
        GcPause(**settings)  # type: ignore[arg-type]


def test_milvus_credentials_go_only_to_the_configured_endpoint(
    management: StandInManagement,
) -> None:
    """A request may name another address (``gc_pause_address``): it gets no credentials."""
    milvus = MilvusConfig(user="root", password="Milvus")
    with gc_paused(GcPause(seconds=600, address=management.url), milvus, NEW, 5):
        pass
    assert [auth for _, _, auth in management.calls] == ["Basic cm9vdDpNaWx2dXM="] * 2
    management.calls.clear()
    asked = GcPause(seconds=600).asked(False, 0, management.url)
    with gc_paused(asked, milvus, NEW, 5):
        pass
    assert [auth for _, _, auth in management.calls] == ["", ""]


@pytest.mark.parametrize("address", ["milvus", "http://[::1", "http://a b", "http://:9091"])
def test_an_address_a_request_names_is_checked_before_any_work(address: str) -> None:
    with pytest.raises(InvalidRequestError, match="GC pause address must be an http"):
        GcPause().asked(True, 0, address)
