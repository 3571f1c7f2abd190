"""Runtime core of the company assistant: settings, identity, embedder and BM25, vector stores, retriever, recall
gate, prompt, generator, answer pipeline, tracing, and the one wiring module (`components.py`) that opens them.

Imports flow one way: `ingestion`, `tuning`, `evals` and `ui` import this package; it imports none of them.
"""
