#!/usr/bin/env bash
# Create .venv and install the project into it (extras as the first argument: "dev" for the tests), with the
# PyTorch build that fits this machine, so a machine without a GPU does not download ~5 GB of CUDA libraries.
#
#   1. uv with --torch-backend=auto: uv looks for a GPU driver (NVIDIA, AMD, Intel) and takes torch from PyTorch's
#      own index for it, the CPU build where there is none.
#   2. No GPU and PyTorch's index unreachable: pip with the CPU build pinned, where pip's own sources hold it (a
#      wheel folder or a mirror of PyTorch's CPU index).
#   3. Otherwise plain pip: PyPI's torch (the CUDA build on x86_64 Linux, the CPU build elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
target=".${1:+[$1]}"
cpu_torch="torch==2.13.0+cpu"  # inside pyproject.toml's range

python3.11 -m venv .venv
.venv/bin/pip install -q uv
if .venv/bin/uv pip install --quiet --python .venv/bin/python --torch-backend=auto -e "$target"; then
    echo "installed with uv (torch: $(.venv/bin/python -c 'import torch; print(torch.__version__)'))" >&2
    exit 0
fi
echo "PyTorch's index is unreachable from here: installing with pip" >&2
has_gpu() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
if ! has_gpu && .venv/bin/pip install -q "$cpu_torch" 2>/dev/null; then
    echo "no GPU: $cpu_torch" >&2
else
    echo "torch from PyPI (on x86_64 Linux its CUDA build, about 5 GB)" >&2
fi
.venv/bin/pip install -q -e "$target"
