"""Runtime core of the company assistant: settings, identity and access, embedder, vector stores.

Imports flow one way: `ingestion`, `tuning`, `evals` and `ui` import this package; it imports none of them.
"""
