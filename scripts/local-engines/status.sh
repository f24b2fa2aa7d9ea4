#!/usr/bin/env bash
# Reports each local engine service: its recorded PID and whether its health endpoint answers on loopback.
# Exit status 0 when all three are up, 1 otherwise (usable as a precondition in scripts and opt-in tests).
set -uo pipefail
ROOT="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}"
RUN="${VB_ENGINES_RUN:-$ROOT/run}"
ok=0
for spec in "stt ${VB_STT_PORT:-8091}" "llm ${VB_LLM_PORT:-8089}" "tts ${VB_TTS_PORT:-8092}"; do
  set -- $spec
  pid=$(cat "$RUN/$1.pid" 2>/dev/null || echo "-")
  alive=dead
  [ "$pid" != "-" ] && kill -0 "$pid" 2>/dev/null && alive=alive
  if body=$(curl -fsS --max-time 2 "http://127.0.0.1:$2/health" 2>/dev/null); then
    printf '%-4s up    pid %-8s (%s)  http://127.0.0.1:%s/v1  %s\n' "$1" "$pid" "$alive" "$2" "$body"
  else
    printf '%-4s down  pid %-8s (%s)  http://127.0.0.1:%s/v1\n' "$1" "$pid" "$alive" "$2"
    ok=1
  fi
done
exit $ok
