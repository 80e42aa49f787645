#!/usr/bin/env bash
# Makes an unpacked mmcv source tree build with the C++ standard of the torch that builds it.
# mmcv's setup.py forces -std=c++17; the headers of newer torch (2.10 or so on) need C++20, and
# torch's own extension builder says which it uses. Shared by tools/setup_env.sh (CPU ops) and
# tools/setup_env_offline.sh (CUDA ops).
#
#   bash tools/mmcv_cxx_std.sh PYTHON MMCV_SRC    # prints the standard used: c++17 or c++20
set -euo pipefail
py="$1"
src="$2"
cxx="$("$py" -c '
import inspect, torch.utils.cpp_extension as ext
print("c++20" if "-std=c++20" in inspect.getsource(ext) else "c++17")' 2>/dev/null)"
if [[ "$cxx" == c++20 ]]; then
  grep -q -- '-std=c++17' "$src/setup.py" || {
    echo "mmcv_cxx_std: $src/setup.py no longer sets -std=c++17; update tools/mmcv_cxx_std.sh" >&2
    exit 1
  }
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
fi
echo "$cxx"
