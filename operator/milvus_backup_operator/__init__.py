"""milvus-backup-operator: physical backup and restore of Milvus, the Kubernetes way."""

__version__ = "0.1.0"
