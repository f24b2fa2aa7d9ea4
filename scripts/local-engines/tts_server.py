"""OpenAI-compatible text-to-speech on loopback, over Piper (en_US joe medium) — the TTS stage of
scenarios/local-pipeline.toml. POST /v1/audio/speech (JSON: input, voice, response_format pcm|wav) streams the
audio with Transfer-Encoding: chunked as Piper produces it (one chunk per sentence it finds), so the first body
bytes are the real time to first byte. `pcm` is raw 24 kHz s16le mono as OpenAI's is: Piper's 22.05 kHz output is
resampled by linear interpolation (fine for timing; a little aliasing above 11 kHz). `wav` sends a streaming WAV
header (sizes 0xFFFFFFFF) first. GET /health.

Usage: tts_server.py --model VOICE.onnx [--port 8092]"""

import argparse
import json
import struct
import time

import numpy as np
from piper import PiperVoice

from common import Handler, serve

VOICE = None
OUT_RATE = 24000


def to_24k(pcm16, rate):
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    if rate == OUT_RATE or len(x) == 0:
        return x.astype("<i2").tobytes()
    n = int(round(len(x) * OUT_RATE / rate))
    y = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)
    return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()


def wav_header(rate):
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


class TtsHandler(Handler):
    def do_POST(self):
        if self.path.split("?")[0] != "/v1/audio/speech":
            return self.error(404, "not found: " + self.path)
        try:
            req = json.loads(self.body() or b"{}")
        except ValueError:
            return self.error(400, "the body is not JSON")
        text = (req.get("input") or "").strip()
        fmt = req.get("response_format", "mp3")
        if not text:
            return self.error(400, "`input` is empty")
        if fmt not in ("pcm", "wav"):
            return self.error(400, "this server speaks response_format pcm or wav, not %s" % fmt)
        t0 = time.monotonic()
        self.start_chunked("audio/wav" if fmt == "wav" else "application/octet-stream")
        first = True
        for chunk in VOICE.synthesize(text):
            data = to_24k(chunk.audio_int16_bytes, chunk.sample_rate)
            if first and fmt == "wav":
                data = wav_header(OUT_RATE) + data
            if first and self.server.verbose:
                print("tts first chunk %.0f ms: %s" % ((time.monotonic() - t0) * 1000, text))
            first = False
            self.chunk(data)
        self.end_chunked()


def main():
    global VOICE
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, default=8092)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    VOICE = PiperVoice.load(a.model)
    for _ in VOICE.synthesize("Ready."):
        pass
    serve(TtsHandler, a.port, "piper en_US-joe-medium", a.verbose)


if __name__ == "__main__":
    main()
