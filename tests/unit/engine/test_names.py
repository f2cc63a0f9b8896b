import pytest

from milvus_backup_operator.engine.errors import InvalidRequestError
from milvus_backup_operator.engine.names import (
    default_backup_name,
    validate_backup_name,
    validate_collection_suffix,
)
from milvus_backup_operator.engine.selection import CollectionRef, parse_list


@pytest.mark.parametrize("name", ["b", "_b", "nightly_2026_11_25", "B1", "x" * 128])
def test_names_milvus_backup_accepts(name: str) -> None:
    assert validate_backup_name(name) == name


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("", "empty"),
        ("1abc", "start with a letter"),
        ("my-backup", "only letters, digits and '_'"),
        ("has space", "only letters"),
        ("dot.name", "only letters"),
        ("x" * 129, "the limit is 128"),
        ("../etc", "start with a letter"),
    ],
)
def test_names_milvus_backup_refuses_say_what_to_fix(name: str, hint: str) -> None:
    with pytest.raises(InvalidRequestError, match=hint):
        validate_backup_name(name)


def test_default_name_is_itself_valid() -> None:
    name = default_backup_name()
    assert name.startswith("backup_")
    validate_backup_name(name)


def test_suffix_rule() -> None:
    assert validate_collection_suffix("_recover") == "_recover"
    with pytest.raises(InvalidRequestError, match="suffix"):
        validate_collection_suffix("-bad")


def test_collection_references_default_and_qualified() -> None:
    refs = parse_list("a, db1.b")
    assert refs == [CollectionRef("default", "a"), CollectionRef("db1", "b")]
    assert [str(r) for r in refs] == ["a", "db1.b"]
    assert parse_list("") == parse_list([]) == []  # nothing given: every collection
    with pytest.raises(InvalidRequestError, match=r"coll or db\.coll"):
        CollectionRef.parse("db.")


@pytest.mark.parametrize(
    ("given", "message"),
    [(",,,", "empty collection name"), (" ", "empty collection name"),
     ("a,,b", "empty collection name"), ([""], "empty collection name"),
     ("a,default.a", "named twice"), ("a.b.c", "invalid collection name 'a.b.c'"),
     ("bad-name", "invalid collection name"), ("a-b.c", "invalid database name")],
)  # fmt: skip
def test_nothing_named_is_never_everything(given: str | list[str], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_list(given)
