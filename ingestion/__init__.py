"""Keeps a Qdrant collection in step with a document source: add, edit, delete, re-group, fail closed."""
