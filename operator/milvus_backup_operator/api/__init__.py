"""The custom resources: group, kinds, spec parsing and validation, status transitions.

Pure data and rules (no API calls): the controllers and the Job runner build on it.
"""

GROUP = "backup.milvus.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
BACKUP_KIND, BACKUP_PLURAL = "MilvusBackup", "milvusbackups"
RESTORE_KIND, RESTORE_PLURAL = "MilvusRestore", "milvusrestores"
