# Sourced by tools/dist_train.sh and tools/dist_test.sh: sets PYTHON to the interpreter that
# runs the job. $PYTHON if set, else the project's venv (.venv of this checkout, which
# tools/setup_env.sh creates) when it exists, else the `python` on PATH. An interpreter that
# cannot import torch stops the launch here, with the fix, instead of failing in every process.
_mmstructkd_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$_mmstructkd_root/.venv/bin/python" ]]; then
    PYTHON="$_mmstructkd_root/.venv/bin/python"
  else
    PYTHON=python
  fi
fi
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  echo "$(basename "$0"): '$PYTHON' cannot import torch. Create the project's environment with" \
       "tools/setup_env.sh (it makes $_mmstructkd_root/.venv, used from then on), activate" \
       "yours, or set PYTHON=/path/to/your/env/bin/python." >&2
  exit 1
fi
