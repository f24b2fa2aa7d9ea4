#!/usr/bin/env bash
# End-to-end check of the running local engines (start.sh): drives STT, LLM and TTS exactly as voicebench's pipeline
# client does, over the corpus's caller lines, and prints measured latencies (p50/p95), WER and tool-call
# correctness (smoke.py says what each number is). Exit status 0 when every request succeeded with content.
#
# Usage:  scripts/local-engines/smoke.sh [--reps N] [--voice joe] [--only stt,llm,tts,chain] [--out FILE.json]
#         Samples go to FILE.json (default: $RUN/smoke-<UTC time>.json). Ports follow start.sh's VB_*_PORT.
# Opt-in: it needs the installed and started engines, so it is not part of `cargo test` or CI (docs/local-pipeline.md).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ROOT="${VOICEBENCH_ENGINES:-$HOME/.cache/voicebench/engines}"
RUN="${VB_ENGINES_RUN:-$ROOT/run}"
STT="http://127.0.0.1:${VB_STT_PORT:-8091}/v1"
LLM="http://127.0.0.1:${VB_LLM_PORT:-8089}/v1"
TTS="http://127.0.0.1:${VB_TTS_PORT:-8092}/v1"

if ! "$HERE/status.sh" >/dev/null; then
  "$HERE/status.sh" >&2 || true
  echo "smoke.sh: the engines are not all up; run scripts/local-engines/start.sh first" >&2
  exit 2
fi
PY="$ROOT/venv/bin/python"
[ -x "$PY" ] || PY=python3   # smoke.py is standard library only (3.11+ for tomllib)

args=("$@")
case " $* " in *" --out "*) ;; *) mkdir -p "$RUN"; args+=(--out "$RUN/smoke-$(date -u +%Y%m%dT%H%M%SZ).json") ;; esac
cd "$REPO"
exec "$PY" "$HERE/smoke.py" --stt "$STT" --llm "$LLM" --tts "$TTS" --corpus audio-corpus \
  --scenario scenarios/booking.toml "${args[@]}"
