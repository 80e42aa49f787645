#!/usr/bin/env bash
# Creates (or reuses) the project-local virtual environment `.venv` with the tested stack
# (requirements/stack.txt) and mmstructkd installed in editable mode.
#
# Idempotent: a second call returns at once while the requirement files are unchanged.
# mmcv 2.1.0 has no wheel for torch 2.14, so it is built from its PyPI sdist with its CPU ops
# (~17 min on 2 cores, once per machine): the built wheel is kept in $MMSTRUCTKD_WHEEL_CACHE
# (default ~/.cache/mmstructkd/wheels) and reused by every later clone.
#
# Environment:
#   PYTHON                  interpreter for the venv (default: python3.11, else python3)
#   VENV                    venv directory (default: .venv in the repository root)
#   MMSTRUCTKD_WHEEL_CACHE  where the built mmcv wheel is kept
#   MAX_JOBS                parallel compile jobs for mmcv (default: number of cores)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
wheel_cache="${MMSTRUCTKD_WHEEL_CACHE:-$HOME/.cache/mmstructkd/wheels}"
stack="$root/requirements/stack.txt"
stamp="$venv/.mmstructkd-stack"

# The stamp records the requirement files the venv was built from: change one, and it rebuilds.
want="$(cat requirements/*.txt setup.py tools/setup_env.sh | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

log() { printf '[setup_env] %s\n' "$*" >&2; }

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv with $py"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -c "$stack")

log "installing torch, torchvision, mmengine and build tools"
"${pip[@]}" -r requirements/build.txt
"${pip[@]}" torch torchvision numpy opencv-python mmengine -r requirements/tests.txt

mmcv_version="$(sed -n 's/^mmcv==//p' "$stack")"
mkdir -p "$wheel_cache"
if ! compgen -G "$wheel_cache/mmcv-${mmcv_version}-*.whl" >/dev/null; then
  log "building mmcv ${mmcv_version} from source with CPU ops (once per machine, ~17 min on 2 cores)"
  build_dir="$(mktemp -d)"
  trap 'rm -rf "$build_dir"' EXIT
  # --no-build-isolation: mmcv's setup.py imports the torch it builds against.
  "$venv/bin/python" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
    --no-build-isolation "mmcv==${mmcv_version}" -d "$build_dir"
  tar -xzf "$build_dir/mmcv-${mmcv_version}.tar.gz" -C "$build_dir"
  src="$build_dir/mmcv-${mmcv_version}"
  # mmcv forces C++17; the headers of torch >= 2.10 need C++20.
  cxx="$(bash tools/mmcv_cxx_std.sh "$venv/bin/python" "$src")"
  log "mmcv builds with $cxx"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$venv/bin/python" -m pip wheel \
    --disable-pip-version-check --no-deps --no-build-isolation -w "$build_dir/wheel" "$src"
  cp "$build_dir"/wheel/mmcv-*.whl "$wheel_cache/"
fi
log "installing mmcv, mmdet, mmseg, mmpretrain"
"${pip[@]}" --find-links "$wheel_cache" "mmcv==${mmcv_version}" mmdet mmsegmentation mmpretrain
# mmseg imports these at `import mmseg.models` but does not declare them.
"${pip[@]}" ftfy regex

log "installing mmstructkd (editable)"
"${pip[@]}" --no-deps --no-build-isolation -e .

"$venv/bin/python" - <<'EOF'
import mmcv, mmcv.ops, mmdet, mmseg, mmpretrain, mmengine, torch, numpy, mmstructkd
print('[setup_env] ok: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmengine',
      mmengine.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__,
      'mmpretrain', mmpretrain.__version__, 'numpy', numpy.__version__)
EOF
echo "$want" >"$stamp"
