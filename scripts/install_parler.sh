#!/usr/bin/env bash
# Parler-TTS in its own venv, because parler-tts 0.2.3 pins transformers==4.46.1 (the main install has 5.x).
#   bash scripts/install.sh && bash scripts/install_parler.sh
#   .venv-parler/bin/python s2s_pipeline.py --tts parler ...
# The venv is made with --system-site-packages: torch, numpy, soxr and the rest of the pipeline come from
# the main install; the venv adds transformers 4.46.1 and what parler-tts needs (about 480 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${PARLER_VENV:-.venv-parler}

[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
echo '*' > "$VENV/.gitignore"  # keeps the venv out of git status
"$VENV/bin/python" -m pip install -q -r requirements-parler.txt

# The DAC codec's audiotools imports torchaudio, which PyPI has only as a CUDA build: its C extension
# cannot load beside the CPU torch (libc10_cuda.so is missing) and makes `import torchaudio` fail.
# Parler only decodes codes and never calls torchaudio, so the extension goes and the Python part stays.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -f "$site"/torchaudio/lib/_torchaudio*.so "$site"/torchaudio/lib/libtorchaudio*.so

"$VENV/bin/python" -W ignore -c 'import parler_tts, transformers; print("parler-tts", parler_tts.__version__, "with transformers", transformers.__version__, "ready in '"$VENV"'")'
