"""Sections -> chunks, with llama-index's SentenceSplitter counting the embedder's own tokens.

Sizes are in embedder tokens so a chunk always fits the model's window (MiniLM reads 256); the text that is
embedded starts with the document title and section heading, which the chunk body alone often lacks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.node_parser import SentenceSplitter

from assistant.settings import ChunkingSettings
from assistant.store.base import passage_text
from ingestion.readers import ParsedDocument


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    section: str | None
    embed_text: str  # title + section + text: what the embedder and BM25 see

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.embed_text.encode("utf-8")).hexdigest()[:16]


class Chunker:
    def __init__(self, settings: ChunkingSettings, tokenize: Callable[[str], list[int]]) -> None:
        self._splitter = SentenceSplitter(
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap, tokenizer=tokenize
        )
        self.fingerprint = f"sentence-splitter(size={settings.chunk_size},overlap={settings.chunk_overlap})"

    def chunk(self, doc: ParsedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in doc.sections:
            for piece in self._splitter.split_text(section.text):
                if not piece.strip():
                    continue
                text = passage_text(doc.title, section.heading, piece)
                chunks.append(Chunk(len(chunks), piece, section.heading, text))
        return chunks
