#!/usr/bin/env bash
# Installs the system packages flow-mpirun needs on Debian/Ubuntu (OpenBLAS, Open MPI, pkg-config, zlib, and
# Fashion-MNIST's IDX files from dataset-fashion-mnist),
# and Python's safetensors for the compatibility test. Skips apt when everything is already there.
# Swift 6 itself must be installed (https://swift.org/install); /opt/swift/usr/bin is used if present.
set -euo pipefail
packages=(libopenblas-dev libopenmpi-dev openmpi-bin pkg-config zlib1g-dev dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if command -v python3 >/dev/null && ! python3 -c "import safetensors.numpy" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check safetensors numpy 2>/dev/null \
    || echo "note: could not pip-install safetensors; the Python compatibility test will be skipped"
fi
if ! command -v swift >/dev/null; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "note: add /opt/swift/usr/bin to PATH"
  else
    echo "error: Swift 6 is not installed (see https://swift.org/install)" >&2
    exit 1
  fi
fi
