#!/usr/bin/env bash
# Stops the local engine services that start.sh started, by the PIDs it recorded in the run dir (never by name).
# A PID whose process is no longer one of ours (exited, or the number was reused) is only forgotten, not killed.
set -euo pipefail
ROOT="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}"
RUN="${VB_ENGINES_RUN:-$ROOT/run}"
declare -A EXPECT=([stt]=stt_server.py [llm]=llama-server [tts]=tts_server.py)
for name in stt llm tts; do
  f="$RUN/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "${EXPECT[$name]}"; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    echo "stopped $name (pid $pid)"
  else
    echo "$name was not running (stale pid $pid)"
  fi
  rm -f "$f"
done
