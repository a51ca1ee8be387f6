#!/usr/bin/env bash
# Installs what the voice assistant needs on a Debian/Ubuntu machine, into the current Python.
#   bash scripts/install.sh          # the embedded default stack (offline models, CPU)
#   bash scripts/install.sh --dev    # + what the tests need: espeak-ng, PulseAudio, pytest, the optional
#                                    #   backends (requirements-backends.txt) and Parler's own venv
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
PY=${PYTHON:-python3}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if command -v apt-get >/dev/null; then
  pkgs="libportaudio2 libsndfile1 build-essential cmake"
  [ $dev -eq 1 ] && pkgs="$pkgs espeak-ng sox pulseaudio pulseaudio-utils libasound2-plugins"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
else
  echo "not a Debian-like system: install PortAudio, libsndfile, a C compiler and cmake yourself" >&2
fi

# llama-cpp-python compiles from source (a few minutes, cached by pip afterwards).
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}"
$PY -m pip install -q -r requirements.txt
$PY -m pip install -q --no-deps -r requirements-nodeps.txt
if [ $dev -eq 1 ]; then
  $PY -m pip install -q -r requirements-dev.txt -r requirements-backends.txt
  bash scripts/install_parler.sh
fi
echo "installed."
