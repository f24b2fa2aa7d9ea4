"""OpenAI-compatible speech-to-text on loopback: the STT stage of scenarios/local-pipeline.toml.

Two engines behind one endpoint, chosen per request by the multipart `model` field:
  whisper-base  (aliases whisper-1, faster-whisper-base)  faster-whisper 1.2.1, Whisper base CT2 int8, beam 1, CPU.
                Accurate (~5 % WER on the corpus voices), ~0.25 x real time on 2 cores.
  pocketsphinx  (alias sphinx)  pocketsphinx 5.1.1 with its bundled en-us model. The low-latency profile: ~0.15 x
                real time, much worse accuracy.

POST /v1/audio/transcriptions  multipart/form-data: file (WAV, 16-bit PCM, any rate, mono or stereo), model,
    response_format json (default) | text | verbose_json, stream true|false; language and prompt are accepted and
    ignored (English only). Answers as docs/protocols.md §5.1 says: {"text": ..., "usage": {"type": "duration",
    "seconds": ...}}; with stream=true an SSE stream (HTTP/1.1 chunked) of
    data: {"type":"transcript.text.delta","delta":...} events, one per recognised segment as the decoder yields it,
    closed by data: {"type":"transcript.text.done","text":...,"usage":...}.
    The header X-Processing-Ms carries the decode time (json only; streaming sends headers before decoding).
GET /health, GET /v1/models.

Models are loaded once at start and warmed up. HF_HUB_OFFLINE=1: nothing is ever fetched.
Usage: stt_server.py --whisper DIR [--port 8091] [--threads 2] [--no-pocketsphinx] [--verbose]"""

import argparse
import io
import json
import os
import threading
import time
import wave

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from common import Handler, multipart, resample, serve  # noqa: E402

ENGINES = {}  # canonical model name -> engine object
ALIASES = {"whisper-base": "whisper-base", "whisper-1": "whisper-base", "faster-whisper-base": "whisper-base",
           "pocketsphinx": "pocketsphinx", "sphinx": "pocketsphinx"}


class Whisper:
    def __init__(self, path, threads):
        from faster_whisper import WhisperModel
        self.model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=threads)

    def segments(self, audio16k):
        """Yields text segments as the decoder produces them."""
        # without_timestamps: a turn is one short utterance, and timestamp tokens would only cost decode steps.
        segs, _ = self.model.transcribe(audio16k, language="en", beam_size=1, vad_filter=False,
                                        condition_on_previous_text=False, without_timestamps=True)
        for s in segs:
            t = s.text.strip()
            if t:
                yield t


class Sphinx:
    def __init__(self):
        from pocketsphinx import Decoder
        self.decoder = Decoder(samprate=16000, loglevel="FATAL")
        self.lock = threading.Lock()  # one decoder, not thread-safe

    def segments(self, audio16k):
        pcm = (np.clip(audio16k, -1, 1) * 32767).astype("<i2").tobytes()
        with self.lock:
            d = self.decoder
            d.start_utt()
            for i in range(0, len(pcm), 6400):  # 200 ms pieces, as a live feed would arrive
                d.process_raw(pcm[i:i + 6400], False, False)
            d.end_utt()
            hyp = d.hyp()
        t = hyp.hypstr.strip() if hyp is not None else ""
        if t:
            yield t


def read_wav(data):
    """WAV bytes -> float32 mono at 16 kHz, and the duration in seconds."""
    with wave.open(io.BytesIO(data)) as w:
        if w.getsampwidth() != 2:
            raise ValueError("16-bit PCM WAV expected")
        rate, ch = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        pcm = pcm.reshape(-1, ch).mean(axis=1)
    return resample(pcm, rate, 16000), len(pcm) / rate


def field(parts, name, default=""):
    return parts[name][1].decode("utf-8", "replace").strip() if name in parts else default


class SttHandler(Handler):
    def do_POST(self):
        if self.path.split("?")[0] != "/v1/audio/transcriptions":
            self.body()  # drain it, or the keep-alive connection's next request would start inside it
            return self.error(404, "not found: " + self.path)
        parts = multipart(self.headers.get("Content-Type", ""), self.body())
        if "file" not in parts:
            return self.error(400, "multipart field `file` is required")
        model = field(parts, "model", "whisper-base") or "whisper-base"
        name = ALIASES.get(model.lower())
        if name not in ENGINES:
            return self.error(400, "unknown model %r; this server has %s" % (model, ", ".join(sorted(ENGINES))),
                              "model_not_found")
        fmt = field(parts, "response_format", "json") or "json"
        if fmt not in ("json", "text", "verbose_json"):
            return self.error(400, "response_format %r is not supported here (json, text, verbose_json)" % fmt)
        stream = field(parts, "stream", "false").lower() == "true"
        try:
            audio, seconds = read_wav(parts["file"][1])
        except Exception as e:  # a bad upload is the client's error, not a crash
            return self.error(400, "could not read the audio as a 16-bit PCM WAV: %s" % e)
        usage = {"type": "duration", "seconds": round(seconds, 3)}
        t0 = time.monotonic()
        if not stream:
            text = " ".join(ENGINES[name].segments(audio)).strip()
            ms = (time.monotonic() - t0) * 1000
            if self.server.verbose:
                print("stt %s %.0f ms (%.2f s audio): %s" % (name, ms, seconds, text), flush=True)
            hdr = [("X-Processing-Ms", "%.1f" % ms)]
            if fmt == "text":
                data = (text + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header(*hdr[0])
                self.end_headers()
                self.wfile.write(data)
                return
            body = {"text": text, "usage": usage}
            if fmt == "verbose_json":
                body.update(task="transcribe", language="english", duration=round(seconds, 3))
            return self.send_json(200, body, hdr)
        # SSE: headers now, then one delta per segment as the decoder yields it (faster-whisper decodes lazily).
        self.start_chunked("text/event-stream")
        texts = []
        for t in ENGINES[name].segments(audio):
            delta = (" " if texts else "") + t
            texts.append(t)
            self.chunk(("data: %s\n\n" % json.dumps({"type": "transcript.text.delta", "delta": delta})).encode())
        done = {"type": "transcript.text.done", "text": " ".join(texts).strip(), "usage": usage}
        self.chunk(("data: %s\n\n" % json.dumps(done)).encode())
        self.end_chunked()
        if self.server.verbose:
            print("stt %s stream %.0f ms: %s" % (name, (time.monotonic() - t0) * 1000, done["text"]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whisper", "--model", dest="whisper", required=True, help="Whisper base CT2 model directory")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-pocketsphinx", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    t0 = time.monotonic()
    ENGINES["whisper-base"] = Whisper(a.whisper, a.threads)
    if not a.no_pocketsphinx:
        ENGINES["pocketsphinx"] = Sphinx()
    for e in ENGINES.values():  # warm up: the first request should not pay for lazy initialisation
        list(e.segments(np.zeros(16000, dtype=np.float32)))
    print("models loaded in %.1f s" % (time.monotonic() - t0), flush=True)
    serve(SttHandler, a.port, "stt: " + " + ".join(ENGINES), sorted(ENGINES), a.verbose)


if __name__ == "__main__":
    main()
