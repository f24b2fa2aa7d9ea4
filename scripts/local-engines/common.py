"""Shared HTTP plumbing for the local engine servers (stt_server.py, tts_server.py): an HTTP/1.1 keep-alive
handler with JSON and OpenAI-style error responses, chunked streaming, and a small multipart/form-data parser.
Standard library only; loopback only."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked responses
    server_version = "voicebench-local-engine"

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def error(self, status, message):
        self.send_json(status, {"error": {"message": message, "type": "invalid_request_error", "code": status}})

    def start_chunked(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        if self.path in ("/health", "/v1/health"):
            self.send_json(200, {"status": "ok", "engine": self.server.engine})
        else:
            self.error(404, "not found: " + self.path)


def multipart(content_type, body):
    """Parses multipart/form-data into {name: (filename, bytes)}."""
    boundary = None
    for part in content_type.split(";"):
        part = part.strip()
        if part.startswith("boundary="):
            boundary = part[len("boundary="):].strip('"')
    if not boundary:
        return {}
    out = {}
    delim = b"--" + boundary.encode()
    for piece in body.split(delim)[1:]:
        if piece.startswith(b"--"):
            break
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


def serve(handler, port, engine, verbose=False):
    srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
    srv.daemon_threads = True
    srv.engine = engine
    srv.verbose = verbose
    sys.stderr.write("%s listening on http://127.0.0.1:%d\n" % (engine, port))
    srv.serve_forever()
