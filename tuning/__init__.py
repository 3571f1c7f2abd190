"""Tuning: training data for the adapter (curated items, SciFact, RAFT-style builder, validator), LoRA / QLoRA
training with TRL, and the adapter registry (records, promotion, rollback)."""
