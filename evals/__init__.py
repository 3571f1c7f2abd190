"""Measures retrieval (recall@k, nDCG@10, MRR) and answer quality; reports locally and to Langfuse."""
