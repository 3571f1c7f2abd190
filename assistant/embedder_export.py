"""The embedder's exported models for the onnx and openvino backends.

Made once from the base model by sentence-transformers' own export path (loading with `backend=...` exports;
`export_dynamic_quantized_onnx_model` and `export_static_quantized_openvino_model` quantize), kept in the data
directory, never downloaded. A stamp beside the files records what they were made from: the base model's file
digests, the libraries' versions, the quantization target and each exported file's digest. An export is made
again when any of these differs: a new base model or library release, another CPU (int8 ONNX is built for its
instruction set), or a file that no longer matches its digest (a corrupted export is rebuilt, never served).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from assistant.digests import file_sha256 as _digest
from assistant.errors import ConfigError
from assistant.settings import EmbedderBackend, EmbedderQuantization

STAMP = "export.json"
# What each backend needs installed: the module sentence-transformers imports, and what to tell a person.
REQUIRES = {
    EmbedderBackend.onnx: (
        "optimum.onnxruntime",
        "optimum-onnx with ONNX Runtime (pip install 'sentence-transformers[onnx]'; its 0.1.0 release requires "
        "transformers<4.58, which sentence-transformers>=6 does not accept: use openvino or torch until it does)",
    ),
    EmbedderBackend.openvino: (
        "optimum.intel.openvino",
        "optimum-intel with OpenVINO (pip install 'company-assistant[openvino]')",
    ),
}
LIBRARIES = (
    *("sentence-transformers", "transformers", "torch", "optimum"),
    *("optimum-onnx", "onnxruntime", "optimum-intel", "openvino", "nncf"),
)


@dataclass(frozen=True)
class ExportedModel:
    """A sentence-transformers folder and the model file in it that the backend loads."""

    path: Path
    file_name: str


def require_backend(backend: EmbedderBackend) -> None:
    """One line naming what to install when an optional backend is missing."""
    module, install = REQUIRES[backend]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package (optimum) is missing
        found = False
    if not found:
        raise ConfigError(f"embedder.backend={backend.value} needs {install}")


def exported_model(
    base: Path, name: str, backend: EmbedderBackend, quantization: EmbedderQuantization, root: Path
) -> ExportedModel:
    """The export of `base` (the `embedder.model` setting `name`) for this backend and quantization under `root`,
    made (again) when missing or stale."""
    require_backend(backend)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.removeprefix("bundled:")).strip("-.")
    target = root / f"{slug}-{backend.value}-{quantization.value}"
    wanted = _provenance(base, backend, quantization)
    found = _valid_export(target, wanted)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        file_name = _export(base, backend, quantization, building)
        stamp = {**wanted, "file_name": file_name, "files": _file_digests(building)}
        (building / STAMP).write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
        if _valid_export(target, wanted) is None:  # else another process finished the same export first
            shutil.rmtree(target, ignore_errors=True)  # stale or corrupted: replaced whole
            with contextlib.suppress(OSError):  # another process renamed its export there in between: checked below
                building.rename(target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    exported = _valid_export(target, wanted)
    if exported is None:
        raise ConfigError(f"the {backend.value} export of {base} in {target} does not verify after it was made")
    return exported


def _valid_export(target: Path, wanted: dict[str, Any]) -> ExportedModel | None:
    """The export in `target` if it was made from `wanted` and its files are exactly those it was made with: each
    one, the tokenizer and pooling configuration included, still matching its digest, none missing or added."""
    try:
        stamp = json.loads((target / STAMP).read_text(encoding="utf-8"))
        if any(stamp.get(key) != value for key, value in wanted.items()):
            return None
        if not stamp["files"] or _file_digests(target) != stamp["files"]:
            return None
        return ExportedModel(target, str(stamp["file_name"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _provenance(base: Path, backend: EmbedderBackend, quantization: EmbedderQuantization) -> dict[str, Any]:
    return {
        "base": str(base.resolve()),
        "base_files": {p.relative_to(base).as_posix(): _digest(p) for p in sorted(base.rglob("*")) if p.is_file()},
        "backend": backend.value,
        "quantization": quantization.value,
        "target": onnx_int8_target()
        if (backend, quantization) == (EmbedderBackend.onnx, EmbedderQuantization.int8)
        else None,
        "libraries": {name: _version(name) for name in LIBRARIES},
        "calibration": _digest_bytes(_calibration_texts()) if quantization == EmbedderQuantization.int8 else None,
    }


def _export(base: Path, backend: EmbedderBackend, quantization: EmbedderQuantization, out: Path) -> str:
    """Export with sentence-transformers' own functions into `out`; the model file's name inside it."""
    from sentence_transformers import SentenceTransformer

    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)  # "save the exported model": we do
    model = SentenceTransformer(str(base), backend=backend.st_name, device="cpu", local_files_only=True)
    model.save_pretrained(str(out))
    if quantization == EmbedderQuantization.none:
        return "onnx/model.onnx" if backend == EmbedderBackend.onnx else "openvino/openvino_model.xml"
    if backend == EmbedderBackend.onnx:
        from sentence_transformers import export_dynamic_quantized_onnx_model

        target = onnx_int8_target()
        export_dynamic_quantized_onnx_model(model, target, str(out))
        return f"onnx/model_qint8_{target}.onnx"
    from optimum.intel import OVQuantizationConfig
    from sentence_transformers import export_static_quantized_openvino_model

    with _calibration_dataset() as (dataset, samples):
        export_static_quantized_openvino_model(
            model,
            OVQuantizationConfig(num_samples=samples),
            str(out),
            dataset_name=str(dataset),
            dataset_config_name="default",
            dataset_split="train",
            column_name="text",
        )
    return "openvino/openvino_model_qint8_quantized.xml"


@contextmanager
def _calibration_dataset() -> Iterator[tuple[Path, int]]:
    """(a local dataset folder for datasets' JSON builder, its number of texts): static int8 (openvino) takes its
    activation ranges from the shipped calibration texts, the paragraphs of the sample handbook that everyone may
    read and of the project's docs, one per line. Nothing is fetched."""
    texts = _calibration_texts()
    with tempfile.TemporaryDirectory(prefix="embedder-calibration-") as folder:
        (Path(folder) / "train.jsonl").write_bytes(texts)
        yield Path(folder), texts.count(b"\n")


def _calibration_texts() -> bytes:
    return resources.files("assistant").joinpath("shipped_embedder/calibration.jsonl").read_bytes()


def onnx_int8_target() -> str:
    """sentence-transformers' quantization config for this CPU's instruction set."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    flags = _cpu_flags()
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    return "avx512" if "avx512f" in flags else "avx2"


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _file_digests(folder: Path) -> dict[str, str]:
    """Every file of an export but its stamp, by path inside the folder."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / STAMP)
    return {p.relative_to(folder).as_posix(): _digest(p) for p in files}


def _digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
