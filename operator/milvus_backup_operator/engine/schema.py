"""Conversion between Milvus's protobuf schema messages and the backup's meta dataclasses."""

from __future__ import annotations

import base64
import itertools

from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from .meta import (
    CollectionBackupInfo,
    CollectionSchema,
    FieldSchema,
    FunctionSchema,
    IndexInfo,
    KeyValuePair,
    StructArrayFieldSchema,
)

LOAD_STATES = {0: "NotLoad", 100: "Loaded"}
FIRST_FIELD_ID = 100  # Milvus numbers a new collection's fields from here (StartOfUserFieldID)


def _kvs(pairs: object) -> list[KeyValuePair]:
    return [KeyValuePair(kv.key, kv.value) for kv in pairs]  # type: ignore[attr-defined]


def field_from_proto(f: schema_pb2.FieldSchema) -> FieldSchema:
    """One field as milvus-backup records it (default value as base64 of the ValueField proto)."""
    default = (
        base64.b64encode(f.default_value.SerializeToString()).decode()
        if f.HasField("default_value")
        else ""
    )
    return FieldSchema(
        field_id=f.fieldID,
        name=f.name,
        is_primary_key=f.is_primary_key,
        description=f.description,
        data_type=f.data_type,
        type_params=_kvs(f.type_params),
        index_params=_kvs(f.index_params),
        auto_id=f.autoID,
        state=f.state,
        element_type=f.element_type,
        is_dynamic=f.is_dynamic,
        is_partition_key=f.is_partition_key,
        nullable=f.nullable,
        is_function_output=f.is_function_output,
        default_value_base64=default,
    )


def schema_from_proto(s: schema_pb2.CollectionSchema) -> CollectionSchema:
    return CollectionSchema(
        name=s.name,
        description=s.description,
        auto_id=s.autoID,
        fields=[field_from_proto(f) for f in s.fields],
        enable_dynamic_field=s.enable_dynamic_field,
        properties=_kvs(s.properties),
        functions=[
            FunctionSchema(
                name=fn.name,
                id=fn.id,
                description=fn.description,
                type=fn.type,
                input_field_names=list(fn.input_field_names),
                input_field_ids=list(fn.input_field_ids),
                output_field_names=list(fn.output_field_names),
                output_field_ids=list(fn.output_field_ids),
                params=_kvs(fn.params),
            )
            for fn in s.functions
        ],
        struct_array_fields=[
            StructArrayFieldSchema(
                field_id=st.fieldID,
                name=st.name,
                description=st.description,
                fields=[field_from_proto(f) for f in st.fields],
            )
            for st in s.struct_array_fields
        ],
    )


def collection_from_describe(
    response: milvus_pb2.DescribeCollectionResponse, db: str
) -> CollectionBackupInfo:
    """The collection-level part of the backup meta (no partitions, indexes or segments yet)."""
    return CollectionBackupInfo(
        collection_id=response.collectionID,
        db_name=db,
        collection_name=response.collection_name or response.schema.name,
        schema=schema_from_proto(response.schema),
        shards_num=response.shards_num,
        consistency_level=response.consistency_level,
        properties=_kvs(response.properties),
        created_timestamp=response.created_timestamp,
        virtual_channel_names=list(response.virtual_channel_names),
        physical_channel_names=list(response.physical_channel_names),
        aliases=list(response.aliases),
    )


def index_from_proto(index: milvus_pb2.IndexDescription) -> IndexInfo:
    params = {kv.key: kv.value for kv in index.params}
    return IndexInfo(
        field_name=index.field_name,
        index_name=index.index_name,
        index_type=params.get("index_type", ""),
        params=params,
        index_id=index.indexID,
    )


def split_added_fields(schema: CollectionSchema) -> tuple[list[FieldSchema], list[FieldSchema]]:
    """The fields to create the collection with, and those added to it afterwards.

    Milvus numbers a new collection's fields from 100 and its dynamic field ``$meta`` next;
    fields added later (``AddCollectionField``, Milvus 2.6) come after ``$meta``. So the
    fields numbered above the dynamic field's ID were added (milvus-backup's ``fields`` and
    ``GuessDynFieldID`` in ``core/restore``): recreating them the same way keeps every ID,
    which the binlogs are keyed by. Raise ValueError when the IDs have gaps no such history
    explains (fields dropped since), naming them.
    """
    fields = sorted((f for f in schema.fields if not f.is_dynamic), key=lambda f: f.field_id)
    dynamic = [f.field_id for f in schema.fields if f.is_dynamic]
    ids = [f.field_id for f in fields]
    first_gap = next((a + 1 for a, b in itertools.pairwise(ids) if b != a + 1), None)
    dynamic_id = dynamic[0] if dynamic else first_gap if schema.enable_dynamic_field else None
    created = [f for f in fields if dynamic_id is None or f.field_id < dynamic_id]
    added = [f for f in fields if dynamic_id is not None and f.field_id > dynamic_id]
    expected = list(range(FIRST_FIELD_ID, FIRST_FIELD_ID + len(created)))
    after = (dynamic_id or 0) + 1
    if [f.field_id for f in created] != expected or [f.field_id for f in added] != list(
        range(after, after + len(added))
    ):
        raise ValueError(f"field IDs {ids} (dynamic field {dynamic_id})")
    return created, added


def schema_to_proto(schema: CollectionSchema, name: str) -> schema_pb2.CollectionSchema:
    """The schema to create ``name`` with: the fields it was created with, in the same order,
    so IDs match (those added later are added after, :func:`split_added_fields`).

    The dynamic field ``$meta`` is left out: ``enable_dynamic_field`` makes Milvus add it
    again, last, as it did for the original collection.
    """
    out = schema_pb2.CollectionSchema(
        name=name,
        description=schema.description,
        autoID=schema.auto_id,
        enable_dynamic_field=schema.enable_dynamic_field,
    )
    for kv in schema.properties:
        out.properties.add(key=kv.key, value=kv.value)
    for f in split_added_fields(schema)[0]:
        out.fields.append(field_to_proto(f))
    for fn in schema.functions:
        function = out.functions.add(
            name=fn.name,
            id=fn.id,
            description=fn.description,
            type=fn.type,
            input_field_names=fn.input_field_names,
            input_field_ids=fn.input_field_ids,
            output_field_names=fn.output_field_names,
            output_field_ids=fn.output_field_ids,
        )
        for kv in fn.params:
            function.params.add(key=kv.key, value=kv.value)
    for st in schema.struct_array_fields:
        out.struct_array_fields.add(
            fieldID=st.field_id,
            name=st.name,
            description=st.description,
            fields=[field_to_proto(f) for f in st.fields],
        )
    return out


def field_to_proto(f: FieldSchema) -> schema_pb2.FieldSchema:
    out = schema_pb2.FieldSchema(
        fieldID=f.field_id,
        name=f.name,
        is_primary_key=f.is_primary_key,
        description=f.description,
        data_type=f.data_type,
        autoID=f.auto_id,
        element_type=f.element_type,
        is_partition_key=f.is_partition_key,
        nullable=f.nullable,
        is_function_output=f.is_function_output,
    )
    for kv in f.type_params:
        out.type_params.add(key=kv.key, value=kv.value)
    for kv in f.index_params:
        out.index_params.add(key=kv.key, value=kv.value)
    if f.default_value_base64:
        out.default_value.ParseFromString(base64.b64decode(f.default_value_base64))
    elif f.default_value_proto:
        out.default_value.ParseFromString(f.default_value_proto.encode("latin-1"))
    return out


def load_state(progress: int) -> str:
    """milvus-backup's ``load_state`` string for a loading progress percentage."""
    return LOAD_STATES.get(progress, "Loading")
