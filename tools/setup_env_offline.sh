#!/usr/bin/env bash
# Installs the OpenMMLab stack next to an existing PyTorch with CUDA on a machine without
# internet (a GPU node): the wheels of a wheelhouse, and mmcv built from its sdist with CUDA ops
# for this machine's GPU only (one architecture: minutes instead of the full matrix).
#
#   tools/setup_env_offline.sh WHEELHOUSE MMCV_SDIST TARGET
#   export PYTHONPATH=TARGET:$PYTHONPATH   # then: python -c 'import mmcv.ops, mmdet'
#
# WHEELHOUSE holds the wheels of mmengine, mmdet, mmsegmentation, mmpretrain and those of their
# requirements the machine lacks, for its Python (fetch them where pip has internet:
# `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
# manylinux_2_28_x86_64 --platform any -d WHEELHOUSE NAME==VERSION`, versions from
# requirements/stack.txt; setuptools 80.9.0 too, see below). MMCV_SDIST is mmcv-2.1.0.tar.gz
# (`pip download --no-deps --no-binary :all: mmcv==2.1.0`). Everything goes into TARGET
# (`pip install --target`), which leaves the machine's own packages untouched.
#
# Environment: PYTHON (default python3), MAX_JOBS (parallel compile jobs, default: all cores),
# MMCV_WHEEL_OUT (folder to copy the built mmcv wheel to, for the next machine).
set -euo pipefail
if (($# != 3)); then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
wheelhouse="$1" sdist="$2" target="$3"
py="${PYTHON:-python3}"
log() { printf '[setup_env_offline] %s\n' "$*" >&2; }

for f in "$wheelhouse" "$sdist"; do
  [[ -e "$f" ]] || { log "not found: $f"; exit 1; }
done
mkdir -p "$target"
log "installing the wheels of $wheelhouse into $target"
"$py" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$target" \
  "$wheelhouse"/*.whl
export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"

# mmcv's setup.py imports pkg_resources (setuptools < 81): the wheelhouse's setuptools, first on
# PYTHONPATH, builds it.
"$py" -c 'import pkg_resources' 2>/dev/null || {
  log "mmcv's setup.py needs pkg_resources: put setuptools 80.9.0 in the wheelhouse"; exit 1; }
"$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || {
  log "torch sees no CUDA GPU here: use tools/setup_env.sh (CPU ops) instead"; exit 1; }
arch="$("$py" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
tar -xzf "$sdist" -C "$build"
src="$(echo "$build"/mmcv-*)"
# mmcv forces C++17; torch headers that want C++20 fail with it (as in tools/setup_env.sh).
cxx="$(bash "$(dirname "${BASH_SOURCE[0]}")/mmcv_cxx_std.sh" "$py" "$src")"
log "building $(basename "$src") with CUDA ops for sm_${arch/./} ($cxx, ${MAX_JOBS:-all} jobs)"
start=$SECONDS
FORCE_CUDA=1 MMCV_WITH_OPS=1 TORCH_CUDA_ARCH_LIST="$arch" MAX_JOBS="${MAX_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}" \
  "$py" -m pip wheel -q --no-index --no-deps --no-build-isolation -w "$build/wheel" "$src"
log "built in $((SECONDS - start)) s"
"$py" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$target" \
  "$build"/wheel/mmcv-*.whl
if [[ -n "${MMCV_WHEEL_OUT:-}" ]]; then
  mkdir -p "$MMCV_WHEEL_OUT" && cp "$build"/wheel/mmcv-*.whl "$MMCV_WHEEL_OUT/"
fi
"$py" - <<'EOF'
import torch
import mmcv
from mmcv.ops import nms, sigmoid_focal_loss

boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]]).cuda()
_, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]).cuda(), iou_threshold=0.5)
assert keep.tolist() == [0, 2], keep
logits = torch.randn(4, 3, device='cuda', requires_grad=True)
sigmoid_focal_loss(logits, torch.tensor([0, 1, 2, 1]).cuda(), 2.0, 0.25, None, 'mean').backward()
assert logits.grad is not None and torch.isfinite(logits.grad).all()
print('[setup_env_offline] ok: mmcv', mmcv.__version__, 'CUDA ops on',
      torch.cuda.get_device_name(), 'torch', torch.__version__)
EOF
