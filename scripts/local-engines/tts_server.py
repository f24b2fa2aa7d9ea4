"""OpenAI-compatible text-to-speech on loopback: the TTS stage of scenarios/local-pipeline.toml, over Piper 1.8
with the en_US joe medium voice (22.05 kHz).

POST /v1/audio/speech  JSON {model, input, voice, response_format, speed}, as docs/protocols.md §5.4 says. The audio
    streams with Transfer-Encoding: chunked as Piper produces it: Piper synthesizes one sentence at a time, and each
    sentence's audio is written and flushed as soon as it exists, so the first body bytes mark the real time to first
    audio, not the end of synthesis.
      pcm  raw 24 kHz s16le mono, no header, as OpenAI's: Piper's 22.05 kHz is resampled with soxr (a streaming
           resampler that keeps its filter state across sentences, so there is no seam between chunks).
      wav  Piper's native 22.05 kHz with a true WAV header for that rate; the size fields are 0xFFFFFFFF because the
           length is unknown while streaming (OpenAI does the same). Read the rate from the header.
    Other formats (mp3, opus, ...) are refused with 400: this server does not encode.
    `voice`: joe (alias: any OpenAI voice name, since there is one voice). `speed` 0.25-4.0 maps to Piper's length
    scale. Non-OpenAI extra: `sample_rate` for pcm (e.g. 16000), as speaches offers.
    Header X-Sample-Rate tells the rate of the body.
GET /health, GET /v1/models.

The voice is loaded once at start and warmed up.
Usage: tts_server.py --model VOICE.onnx [--port 8092] [--verbose]"""

import argparse
import json
import struct
import time

import onnxruntime
from piper import PiperVoice, SynthesisConfig

from common import Handler, StreamResampler, serve

VOICE = None
PCM_RATE = 24000
OPENAI_VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
                 "marin", "cedar"}


def wav_header(rate):
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


class TtsHandler(Handler):
    def do_POST(self):
        if self.path.split("?")[0] != "/v1/audio/speech":
            self.body()  # drain it, or the keep-alive connection's next request would start inside it
            return self.error(404, "not found: " + self.path)
        try:
            req = json.loads(self.body() or b"{}")
        except ValueError:
            return self.error(400, "the body is not JSON")
        text = (req.get("input") or "").strip()
        fmt = req.get("response_format", "mp3")
        voice = req.get("voice", "joe")
        if isinstance(voice, dict):
            voice = voice.get("id", "joe")
        if not text:
            return self.error(400, "`input` is empty")
        if len(text) > 4096:
            return self.error(400, "`input` is longer than 4096 characters")
        if fmt not in ("pcm", "wav"):
            return self.error(400, "this server streams response_format pcm or wav, not %r" % fmt)
        if voice not in ("joe", "en_US-joe-medium") and voice not in OPENAI_VOICES:
            return self.error(400, "unknown voice %r; this server has joe" % voice)
        try:
            speed = float(req.get("speed", 1.0))
        except (TypeError, ValueError):
            return self.error(400, "`speed` must be a number")
        if not 0.25 <= speed <= 4.0:
            return self.error(400, "`speed` must be within 0.25-4.0")
        native = VOICE.config.sample_rate
        rate = native if fmt == "wav" else int(req.get("sample_rate") or PCM_RATE)
        if not 8000 <= rate <= 48000:
            return self.error(400, "`sample_rate` must be within 8000-48000")
        rs = StreamResampler(native, rate)
        cfg = SynthesisConfig(length_scale=1.0 / speed) if speed != 1.0 else None
        t0 = time.monotonic()
        # The response head and (for wav) the WAV header go out together with the first audio, not before it: a
        # client that stamps the first byte of the response (curl's time_starttransfer, or the status line) then
        # measures sound, not an empty 200.
        pending = wav_header(rate) if fmt == "wav" else b""
        first_ms = None
        try:
            for chunk in VOICE.synthesize(text, cfg):
                data = pending + rs.feed(chunk.audio_int16_bytes)
                if len(data) <= len(pending):
                    continue
                pending = b""
                if first_ms is None:
                    first_ms = (time.monotonic() - t0) * 1000
                    self.start_chunked("audio/wav" if fmt == "wav" else "audio/pcm", [("X-Sample-Rate", str(rate))])
                self.chunk(data)
            tail = pending + rs.feed(b"", last=True)
            if first_ms is None:  # nothing speakable (e.g. only punctuation): an empty but valid stream
                self.start_chunked("audio/wav" if fmt == "wav" else "audio/pcm", [("X-Sample-Rate", str(rate))])
            self.chunk(tail)
            self.end_chunked()
        except (BrokenPipeError, ConnectionResetError):  # the client hung up (barge-in): stop synthesizing
            self.close_connection = True
            return
        if self.server.verbose:
            print("tts first chunk %.0f ms, done %.0f ms: %s" % (first_ms or -1, (time.monotonic() - t0) * 1000, text),
                  flush=True)


def main():
    global VOICE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Piper voice .onnx (its .onnx.json beside it)")
    ap.add_argument("--port", type=int, default=8092)
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    t0 = time.monotonic()
    VOICE = PiperVoice.load(a.model)
    # Piper's own session spins its worker threads between runs. On 2 cores shared with whisper and llama-server
    # (the LLM keeps generating while the first sentence is synthesized) spinning threads steal each other's
    # time slices, so the session is rebuilt with spinning off and a fixed thread count.
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    VOICE.session = onnxruntime.InferenceSession(a.model, sess_options=so, providers=["CPUExecutionProvider"])
    rs = StreamResampler(VOICE.config.sample_rate, PCM_RATE)
    for c in VOICE.synthesize("Ready. Warming up."):  # first inference allocates; pay for it now
        rs.feed(c.audio_int16_bytes)
    print("voice loaded in %.1f s (%d Hz)" % (time.monotonic() - t0, VOICE.config.sample_rate), flush=True)
    serve(TtsHandler, a.port, "tts: piper en_US-joe-medium", ["piper", "tts-1"], a.verbose)


if __name__ == "__main__":
    main()
