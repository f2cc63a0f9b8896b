"""Stand-ins for what cannot run on these machines (Milvus newer than 2.3.5), never used where
the real Milvus 2.3.5 can answer."""
