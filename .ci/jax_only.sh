#!/usr/bin/env bash
# CI: prove the backend-agnostic install. A fresh virtual environment gets `pip install .[jax]`
# (no TensorFlow), then .ci/jax_only.py checks, with KERAS_BACKEND=jax, that `import kagglekit`
# works, that TensorFlow is not importable, and that a one-step fine_tune runs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)
venv=$(mktemp -d "${TMPDIR:-/tmp}/kagglekit-jax-only.XXXXXX")
trap 'rm -rf "$venv"' EXIT
log="$venv/pip.log"
python3 -m venv "$venv/env" || { echo "CI jax-only: python3 -m venv failed"; exit 1; }
if ! "$venv/env/bin/python" -m pip install -q "$root[jax]" >"$log" 2>&1; then
  grep -v "^WARNING: Location " "$log" | tail -30
  echo "CI jax-only: pip install .[jax] failed"
  exit 1
fi
echo "CI jax-only: installed .[jax] in a fresh venv in $(( $(date +%s) - start )) s"
# Run outside the repository, so `import kagglekit` is the installed package, not the checkout.
(cd "$venv" && env -u PYTHONPATH KERAS_BACKEND=jax "$venv/env/bin/python" "$root/.ci/jax_only.py")
rc=$?
echo "CI jax-only: finished in $(( $(date +%s) - start )) s with exit code $rc"
exit "$rc"
