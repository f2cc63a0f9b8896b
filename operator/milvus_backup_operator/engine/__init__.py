"""The backup engine: milvus-backup's format, object storage, Milvus metadata, backup and restore.

Nothing in this package knows about Kubernetes: the controllers, the CLI and the REST
server call into it.
"""
