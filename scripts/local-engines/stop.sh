#!/usr/bin/env bash
# Stops the local engine services that start.sh started, by the PIDs it recorded.
set -euo pipefail
RUN="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}/run"
for name in stt llm tts; do
  f="$RUN/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$f"
done
