"""``python -m milvus_backup_operator``."""

from .cli import main

main(prog_name="milvus-backup-operator")
