"""Conversion between Milvus's protobuf schema messages and the backup's meta dataclasses."""

from __future__ import annotations

import base64

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


def schema_to_proto(schema: CollectionSchema, name: str) -> schema_pb2.CollectionSchema:
    """The schema to create ``name`` with: same fields in the same order, so IDs match.

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
    for f in schema.fields:
        if not f.is_dynamic:
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
