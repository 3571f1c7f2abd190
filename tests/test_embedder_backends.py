"""The embedder's onnx and openvino backends: exported once by sentence-transformers, checked against torch's
vectors, rebuilt when corrupted or stale, refused on a collection another backend built."""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from assistant import embedder_export
from assistant.access import Principal
from assistant.embedder import Embedder, resolve_model_path
from assistant.embedder_export import STAMP, exported_model
from assistant.errors import CollectionMismatchError, ConfigError
from assistant.settings import BUNDLED_EMBEDDER, EmbedderBackend, EmbedderQuantization, EmbedderSettings, Settings
from ingestion.run import run_ingest
from tests.conftest import ingest, runtime

# The openvino extra is not part of dev (it holds transformers below 5.6): these run where it is installed.
needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="the openvino extra is not installed: pip install -e '.[openvino]'",
)

TEXTS = [
    "How many paid holidays are there this year?",
    "Employees may work from another EU country for up to four weeks a year with their manager's approval.",
    "Hotel stays are reimbursed up to 180 EUR per night in most cities; 250 EUR in London, Paris and Zurich.",
    "Report a lost or stolen laptop to the service desk within one hour, then change your password.",
    "Zwischen den Jahren bleibt das Büro geschlossen.",  # not English: the int8 ranges were calibrated on English
    "q3 budget",
    " ".join(["A long passage that fills the embedder's window of 256 tokens."] * 40),
]


def openvino_settings(quantization: str = "none") -> EmbedderSettings:
    return EmbedderSettings(backend=EmbedderBackend.openvino, quantization=EmbedderQuantization(quantization))


@functools.cache
def exported(quantization: str, root: Path) -> Embedder:
    """One export per quantization for the whole session (int8 calibration takes about a minute)."""
    embedder = Embedder(openvino_settings(quantization), root)
    embedder.embed_documents(TEXTS[:1])
    return embedder


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedder-exports")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))  # both unit length


@needs_openvino
def test_openvino_fp32_agrees_with_torch(embedder: Embedder, exports: Path) -> None:
    openvino = exported("none", exports)
    agreement = cosines(openvino.embed_documents(TEXTS), embedder.embed_documents(TEXTS))
    assert agreement.min() >= 0.9999, agreement
    assert openvino.dimension == embedder.dimension == 384
    assert openvino.count_tokens(TEXTS[0]) == embedder.count_tokens(TEXTS[0])  # chunks are cut the same
    assert openvino.model_id == "bundled:all-MiniLM-L6-v2@openvino" != embedder.model_id


@needs_openvino
def test_openvino_int8_agrees_with_torch(embedder: Embedder, exports: Path) -> None:
    int8 = exported("int8", exports)
    agreement = cosines(int8.embed_documents(TEXTS), embedder.embed_documents(TEXTS))
    assert agreement.mean() >= 0.99 and agreement.min() >= 0.97, agreement
    assert int8.model_id == "bundled:all-MiniLM-L6-v2@openvino-int8"
    stamp = json.loads((exports / "all-MiniLM-L6-v2-openvino-int8" / STAMP).read_text())
    assert stamp["file_name"] == "openvino/openvino_model_qint8_quantized.xml"
    assert stamp["libraries"]["openvino"] and stamp["libraries"]["sentence-transformers"]


@needs_openvino
def test_a_corrupted_export_is_rebuilt_not_served(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    first = Embedder(openvino_settings(), root).embed_documents(TEXTS)
    weights = root / "all-MiniLM-L6-v2-openvino-none" / "openvino" / "openvino_model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)  # a run of zeroed weights: loads, embeds wrongly
    weights.write_bytes(bytes(data))
    again = Embedder(openvino_settings(), root)
    vectors = again.embed_documents(TEXTS)
    assert weights.read_bytes() != bytes(data)  # exported again
    assert cosines(vectors, first).min() >= 0.99999
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no half-built export left behind


@needs_openvino
def test_a_new_library_release_makes_the_export_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "exports"
    Embedder(openvino_settings(), root).embed_documents(TEXTS[:1])
    stamp = root / "all-MiniLM-L6-v2-openvino-none" / STAMP
    made = json.loads(stamp.read_text())
    real_version = embedder_export._version
    monkeypatch.setattr(embedder_export, "_version", lambda name: "99.0" if name == "openvino" else real_version(name))
    Embedder(openvino_settings(), root).embed_documents(TEXTS[:1])
    remade = json.loads(stamp.read_text())
    assert remade["libraries"]["openvino"] == "99.0" != made["libraries"]["openvino"]


@pytest.mark.parametrize(
    ("backend", "module", "install"),
    [
        (EmbedderBackend.onnx, "optimum.onnxruntime", "pip install 'sentence-transformers[onnx]'"),
        (EmbedderBackend.openvino, "optimum.intel.openvino", "pip install 'company-assistant[openvino]'"),
    ],
)
def test_a_missing_backend_is_one_line_naming_the_package(
    backend: EmbedderBackend, module: str, install: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(  # as on a machine without it (onnx is missing here anyway: it does not install)
        importlib.util, "find_spec", lambda name, *a: None if name == module else real_find_spec(name, *a)
    )
    with pytest.raises(ConfigError) as raised:
        Embedder(EmbedderSettings(backend=backend), Path("/nonexistent")).embed_query("q")
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"embedder.backend={backend.value} needs optimum-")
    assert install in message


def test_int8_needs_an_exported_backend() -> None:
    with pytest.raises(ValueError, match=r"quantization=int8 needs embedder\.backend onnx or openvino"):
        EmbedderSettings(quantization=EmbedderQuantization.int8)


@needs_openvino
def test_a_change_of_backend_re_embeds_and_is_refused_on_the_old_collection(
    settings: Settings, handbook: Path, exports: Path
) -> None:
    assert ingest(settings, handbook).ok
    openvino = exported("none", exports)
    moved = settings.model_copy(update={"embedder": openvino.settings})
    with runtime(moved, embedder=openvino) as components:
        plan = run_ingest(components, handbook, "handbook", dry_run=True)
        assert plan.changed and not plan.unchanged  # the embedder is part of every document's fingerprint
        with pytest.raises(CollectionMismatchError, match=r"built with bundled:all-MiniLM-L6-v2 .*@openvino"):
            run_ingest(components, handbook, "handbook")
        with pytest.raises(CollectionMismatchError, match=r"set embedder\.model \(backend, quantization\) back"):
            components.retriever("handbook").search(Principal.of("dana", ["everyone"]), "holidays")
        rebuilt = run_ingest(components, handbook, "handbook-openvino")
        assert rebuilt.ok and rebuilt.chunks == rebuilt.chunks_in_index > 0  # every chunk embedded again
        hits = components.retriever("handbook-openvino").search(Principal.of("dana", ["everyone"]), "paid holidays")
        assert hits.chunks[0].path == "company/holidays.md"
    with runtime(settings) as components, pytest.raises(CollectionMismatchError, match="@openvino"):
        components.retriever("handbook-openvino").search(Principal.of("dana", ["everyone"]), "holidays")


# The stamp's rules, with sentence-transformers' export replaced by a stand-in that writes an export's files: these
# run everywhere, the openvino extra or not.


@pytest.fixture
def stand_in_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each call of the (stand-in) export, by the folder it wrote."""
    calls: list[Path] = []

    def export(base: Path, backend: EmbedderBackend, quantization: EmbedderQuantization, out: Path) -> str:
        calls.append(out)
        (out / "openvino").mkdir()
        (out / "openvino" / "openvino_model.xml").write_text("<net/>")
        (out / "openvino" / "openvino_model.bin").write_bytes(bytes(64))
        (out / "modules.json").write_text('[{"type": "mean pooling"}]')
        return "openvino/openvino_model.xml"

    monkeypatch.setattr(embedder_export, "require_backend", lambda backend: None)
    monkeypatch.setattr(embedder_export, "_export", export)
    return calls


def test_an_export_is_made_again_only_when_stale_or_altered(
    stand_in_exports: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = resolve_model_path(BUNDLED_EMBEDDER)

    def export() -> Path:
        made = exported_model(base, BUNDLED_EMBEDDER, EmbedderBackend.openvino, EmbedderQuantization.none, tmp_path)
        assert made.file_name == "openvino/openvino_model.xml" and made.path.name == "all-MiniLM-L6-v2-openvino-none"
        return made.path

    folder = export()
    assert len(stand_in_exports) == 1 and export() == folder and len(stand_in_exports) == 1  # served as it is
    alterations = [
        lambda: (folder / "modules.json").write_text('[{"type": "cls pooling"}]'),  # a file outside the weights
        lambda: (folder / "openvino" / "extra.bin").write_bytes(b"x"),  # a file added
        lambda: (folder / "openvino" / "openvino_model.bin").unlink(),  # a file missing
        lambda: (folder / STAMP).write_text("{not json"),  # the stamp unreadable
        lambda: monkeypatch.setattr(embedder_export, "_version", lambda name: "99.0"),  # new library releases
    ]
    for made, alter in enumerate(alterations, start=2):
        alter()
        assert export() == folder and len(stand_in_exports) == made
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no half-built export left behind


def test_a_failed_export_leaves_nothing_half_built(
    stand_in_exports: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*_: object) -> str:
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(embedder_export, "_export", fails)
    base = resolve_model_path(BUNDLED_EMBEDDER)
    with pytest.raises(RuntimeError, match="conversion failed"):
        exported_model(base, BUNDLED_EMBEDDER, EmbedderBackend.openvino, EmbedderQuantization.int8, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_non_torch_backend_refuses_a_gpu_device() -> None:
    with pytest.raises(ValueError, match=r"embedder\.backend=openvino runs on the CPU"):
        EmbedderSettings(backend=EmbedderBackend.openvino, device="cuda")
