"""Shared HTTP plumbing for the local engine servers (stt_server.py, tts_server.py): an HTTP/1.1 keep-alive
handler with JSON and OpenAI-style error responses, chunked streaming (flushed per chunk, so the first body bytes
leave as soon as they exist), request bodies by Content-Length or chunked, a multipart/form-data parser, and a
small resampler. Standard library + numpy (+ soxr when installed). Binds to loopback only."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

try:
    import soxr  # high-quality, streaming-capable resampler (PyPI wheel; install.sh installs it)
except ImportError:  # pragma: no cover - the fallback is only for a partial install
    soxr = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked responses, 100-continue for curl's large uploads
    server_version = "voicebench-local-engine"

    def log_message(self, fmt, *args):  # quiet unless --verbose
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def error(self, status, message, code=None):
        err = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
        self.send_json(status, {"error": err})

    def start_chunked(self, content_type, headers=()):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in ("/health", "/v1/health"):
            self.send_json(200, {"status": "ok", "engine": self.server.engine})
        elif path == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "local"} for m in self.server.models]
            self.send_json(200, {"object": "list", "data": data})
        else:
            self.error(404, "not found: " + self.path)


def multipart(content_type, body):
    """Parses multipart/form-data into {name: (filename, bytes)}; a repeated name keeps its last value."""
    boundary = None
    for part in content_type.split(";"):
        part = part.strip()
        if part.lower().startswith("boundary="):
            boundary = part[len("boundary="):].strip('"')
    if not boundary:
        return {}
    out = {}
    delim = b"--" + boundary.encode()
    for piece in body.split(delim)[1:]:
        if piece.startswith(b"--"):
            break
        if piece.startswith(b"\r\n"):
            piece = piece[2:]
        head, _, data = piece.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        name = filename = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for attr in line.split(";"):
                    attr = attr.strip()
                    if attr.startswith("name="):
                        name = attr[5:].strip('"')
                    elif attr.startswith("filename="):
                        filename = attr[9:].strip('"')
        if name:
            out[name] = (filename, data)
    return out


def resample(x, rate_in, rate_out):
    """float32 mono -> float32 mono at rate_out. soxr (VHQ) when installed, else linear interpolation."""
    if rate_in == rate_out or len(x) == 0:
        return x.astype(np.float32, copy=False)
    if soxr is not None:
        return soxr.resample(x.astype(np.float32, copy=False), rate_in, rate_out, quality="VHQ")
    n = int(round(len(x) * rate_out / rate_in))
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)


class StreamResampler:
    """Resamples int16 audio arriving in pieces (one per synthesized sentence) without seams between them: soxr's
    ResampleStream keeps the filter state across pieces. Falls back to per-piece linear interpolation."""

    def __init__(self, rate_in, rate_out):
        self.same = rate_in == rate_out
        self.rate_in, self.rate_out = rate_in, rate_out
        self.stream = None if self.same or soxr is None else soxr.ResampleStream(rate_in, rate_out, 1, dtype="int16",
                                                                                  quality="HQ")

    def feed(self, pcm16, last=False):
        x = np.frombuffer(pcm16, dtype="<i2")
        if self.same:
            return x.tobytes()
        if self.stream is not None:
            return self.stream.resample_chunk(x, last=last).astype("<i2").tobytes()
        y = resample(x.astype(np.float32), self.rate_in, self.rate_out)
        return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()


def serve(handler, port, engine, models, verbose=False, host="127.0.0.1"):
    srv = ThreadingHTTPServer((host, port), handler)
    srv.daemon_threads = True
    srv.engine = engine
    srv.models = models
    srv.verbose = verbose
    sys.stderr.write("%s listening on http://%s:%d/v1 (models: %s)\n" % (engine, host, port, ", ".join(models)))
    sys.stderr.flush()
    srv.serve_forever()
