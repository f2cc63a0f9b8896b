"""milvus-backup's REST API (``/api/v1/...``) on our engine, standalone or in a cluster."""
