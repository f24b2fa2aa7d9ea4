"""OpenAI-compatible speech-to-text on loopback, over faster-whisper (Whisper base, int8, CPU) — the STT stage of
scenarios/local-pipeline.toml. POST /v1/audio/transcriptions (multipart: file = WAV, model, response_format json,
stream true|false) answers {"text": ...}, or with stream=true an SSE stream of transcript.text.delta events (one per
recognised segment) closed by transcript.text.done, as PROTOCOLS.md §5.1 describes. GET /health.

Usage: stt_server.py --model DIR [--port 8091] [--threads 2]"""

import argparse
import io
import json
import os
import time
import wave

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402

from common import Handler, multipart, serve  # noqa: E402

MODEL = None


def read_wav(data):
    with wave.open(io.BytesIO(data)) as w:
        if w.getsampwidth() != 2:
            raise ValueError("16-bit PCM WAV expected")
        rate, ch = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        pcm = pcm.reshape(-1, ch).mean(axis=1)
    if rate != 16000:
        n = int(round(len(pcm) * 16000 / rate))
        pcm = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.float32)
    return pcm


class SttHandler(Handler):
    def do_POST(self):
        if self.path.split("?")[0] != "/v1/audio/transcriptions":
            return self.error(404, "not found: " + self.path)
        parts = multipart(self.headers.get("Content-Type", ""), self.body())
        if "file" not in parts:
            return self.error(400, "multipart field `file` is required")
        try:
            audio = read_wav(parts["file"][1])
        except Exception as e:  # a bad upload is the client's error, not a crash
            return self.error(400, "could not read the audio as WAV: %s" % e)
        stream = parts.get("stream", (None, b"false"))[1].decode().strip().lower() == "true"
        t0 = time.monotonic()
        segments, _ = MODEL.transcribe(audio, language="en", beam_size=1, vad_filter=False)
        if not stream:
            text = " ".join(s.text.strip() for s in segments).strip()
            self.server.verbose and print("stt %.0f ms: %s" % ((time.monotonic() - t0) * 1000, text))
            return self.send_json(200, {"text": text})
        self.start_chunked("text/event-stream")
        texts = []
        for s in segments:  # the generator decodes segment by segment: send each as it is ready
            texts.append(s.text.strip())
            ev = {"type": "transcript.text.delta", "delta": s.text.strip() + " "}
            self.chunk(("data: %s\n\n" % json.dumps(ev)).encode())
        done = {"type": "transcript.text.done", "text": " ".join(texts).strip()}
        self.chunk(("data: %s\n\n" % json.dumps(done)).encode())
        self.end_chunked()


def main():
    global MODEL
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    MODEL = WhisperModel(a.model, device="cpu", compute_type="int8", cpu_threads=a.threads)
    # Warm up once so the first request does not pay for lazy initialisation.
    list(MODEL.transcribe(np.zeros(16000, dtype=np.float32), language="en", beam_size=1)[0])
    serve(SttHandler, a.port, "faster-whisper base", a.verbose)


if __name__ == "__main__":
    main()
