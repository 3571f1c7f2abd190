"""One runtime per app process, shared by every browser session: chat and re-ingest use the same components (one
Qdrant Edge shard, one loaded model). Streamlit's `cache_resource` builds it on the first session, which also starts
loading the answer model in the background (`model_warmup`): converting and loading it takes a minute or more on
a CPU, time a first question would otherwise spend in front of an empty answer."""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from assistant.components import Components
from assistant.settings import Settings, load_settings
from ui.ingest_job import IngestJobs


def build_components(settings: Settings) -> Components:
    components = Components(settings)
    atexit.register(components.close)  # traces flushed, index lock released when the server stops
    return components


@st.cache_resource(show_spinner="Opening the index ...")
def components() -> Components:
    return build_components(load_settings())


def settings() -> Settings:
    return components().settings


@st.cache_resource
def ingest_jobs() -> IngestJobs:
    return IngestJobs(components())


@dataclass
class ModelWarmup:
    """The answer model loading in a background thread; a question asked meanwhile waits for it."""

    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.finished is not None and self.error is None

    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


@st.cache_resource(show_spinner=False)
def model_warmup() -> ModelWarmup:
    runtime = components()
    warmup = ModelWarmup()

    def load() -> None:
        try:
            runtime.generator.load()
        except Exception as exc:  # shown on the chat page; the question then fails with the same error
            warmup.error = str(exc)
        warmup.finished = time.monotonic()

    threading.Thread(target=load, name="model-warmup", daemon=True).start()
    return warmup
