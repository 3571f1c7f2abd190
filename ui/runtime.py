"""One runtime per app process, shared by every browser session: chat and re-ingest use the same components (one
Qdrant Edge shard, one loaded model). Streamlit's `cache_resource` builds it on the first session."""

from __future__ import annotations

import atexit

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
