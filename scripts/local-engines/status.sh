#!/usr/bin/env bash
# Reports each local engine service: its PID and whether its health endpoint answers. Exit 0 when all three are up.
set -uo pipefail
RUN="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}/run"
ok=0
for spec in "stt ${VB_STT_PORT:-8091}" "llm ${VB_LLM_PORT:-8089}" "tts ${VB_TTS_PORT:-8092}"; do
  set -- $spec
  pid=$(cat "$RUN/$1.pid" 2>/dev/null || echo "-")
  if curl -fsS -o /dev/null "http://127.0.0.1:$2/health"; then
    echo "$1  up    pid $pid  http://127.0.0.1:$2/v1"
  else
    echo "$1  down  pid $pid  http://127.0.0.1:$2/v1"
    ok=1
  fi
done
exit $ok
