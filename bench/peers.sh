#!/usr/bin/env bash
# Create bench/.work/peers-venv with the peer tools moma is compared against.
# Usage: bench/peers.sh            (idempotent; re-run to repair)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.work/peers-venv"
python="${PYTHON:-python3}"
mkdir -p "$here/.work"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "dvc==3.67.1" dvc-s3 "gto==1.10.1"
"$venv/bin/dvc" --version
