#!/usr/bin/env bash
# Create bench/.work/peers-venv with the peer tools moma is compared against, and
# bench/.work/mlflow-venv with MLflow (bench/serve.py). MOMA_PYTHON: the project venv's python.
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

# MLflow in a venv of its own (its pins are not DVC's), with the scikit-learn the project's
# venv has, so that bench/serve.py serves the same pickled model with both.
mlflow_venv="$here/.work/mlflow-venv"
sklearn="$("${MOMA_PYTHON:-python3}" -c 'import sklearn; print(sklearn.__version__)')"
[ -x "$mlflow_venv/bin/python" ] || "$python" -m venv "$mlflow_venv"
"$mlflow_venv/bin/python" -m pip install --quiet "mlflow==3.17.2" "scikit-learn==$sklearn"
"$mlflow_venv/bin/mlflow" --version
