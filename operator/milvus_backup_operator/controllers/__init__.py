"""Kopf handlers: thin, idempotent; they validate, decide and delegate to an executor."""
