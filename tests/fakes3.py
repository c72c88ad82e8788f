#!/usr/bin/env python3
"""fakes3.py - a small fault-injecting S3 stand-in for the tests (loopback only).

It answers GET /BUCKET/KEY for the objects in a directory, but fails in the
ways a real S3 will not on demand. The behaviour is set per key prefix in
the request path (after an optional "original-images/"):

  /bucket/fail503x2/...   503 SlowDown for the first 2 requests of that key, then 200
  /bucket/fail500x1/...   500 InternalError once, then 200
  /bucket/always503/...   503 SlowDown every time
  /bucket/hang/...        accepts, reads the request, never answers
  /bucket/denied/...      403 AccessDenied
  /bucket/slow/NAME       waits 1 s, then serves NAME

Anything else is served from DIR (404 NoSuchKey if absent), with the ETag
"fake-etag" (If-None-Match with it gets 304); PUT stores into DIR, keeping
its x-amz-meta-* headers beside the object. Every request is
logged as one line "PEER_PORT METHOD PATH STATUS" to the log file, so tests
can count attempts and distinct connections (keep-alive reuse).

usage: fakes3.py PORTFILE DIR LOGFILE
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

PORTFILE, ROOT, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
counts = {}
lock = threading.Lock()


def error_xml(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message></Error>' % (code, message)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, status):
        with lock, open(LOG, "a") as f:
            f.write("%d %s %s %s\n" % (self.client_address[1], self.command, self.path, status))

    def send(self, status, body, ctype="application/xml", extra=None):
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        # Originals may sit under "original-images/": the modes below look
        # past it, and the files are served from DIR without it.
        path = path.replace("/original-images/", "/", 1)
        parts = path.split("/", 3)  # '', bucket, first, rest
        key = unquote("/".join(parts[2:])) if len(parts) > 2 else ""
        first = parts[2] if len(parts) > 2 else ""
        with lock:
            counts[path] = counts.get(path, 0) + 1
            n = counts[path]
        if "Authorization" not in self.headers or "x-amz-date" not in self.headers:
            return self.send(403, error_xml("AccessDenied", "unsigned request"))
        if first.startswith("fail") and "x" in first:
            code = int(first[4:7])
            times = int(first.split("x", 1)[1])
            if n <= times:
                name = "SlowDown" if code == 503 else "InternalError"
                return self.send(code, error_xml(name, "injected"))
        if first == "always503":
            return self.send(503, error_xml("SlowDown", "injected"))
        if first == "denied":
            return self.send(403, error_xml("AccessDenied", "Access Denied"))
        if first == "hang":
            self.record("hang")
            time.sleep(3600)
            return
        if first == "slow":
            time.sleep(1)
        name = key.split("/", 1)[1] if first.startswith("fail") or first == "slow" else key
        fpath = os.path.join(ROOT, name)
        if not os.path.isfile(fpath):
            return self.send(404, error_xml("NoSuchKey", "The specified key does not exist."))
        if self.headers.get("If-None-Match") == '"fake-etag"':
            self.record(304)
            self.send_response(304)
            self.send_header("ETag", '"fake-etag"')
            self.end_headers()
            return
        with open(fpath, "rb") as f:
            body = f.read()
        extra = {"ETag": '"fake-etag"', "Last-Modified": "Tue, 01 Sep 2026 10:00:00 GMT"}
        if os.path.exists(fpath + ".meta"):
            with open(fpath + ".meta") as f:
                extra.update(json.load(f))
        self.send(200, body, "image/jpeg" if name.endswith(".jpg") else "application/octet-stream",
                  extra)

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if "Authorization" not in self.headers:
            return self.send(403, error_xml("AccessDenied", "unsigned request"))
        key = unquote(self.path.split("?", 1)[0].split("/", 2)[2])
        fpath = os.path.join(ROOT, key)
        os.makedirs(os.path.dirname(fpath), exist_ok=True)
        with open(fpath, "wb") as f:
            f.write(body)
        with open(fpath + ".meta", "w") as f:
            json.dump({k: v for k, v in self.headers.items()
                       if k.lower().startswith("x-amz-meta-")}, f)
        # 201, as nginx's dav module and some S3-compatible stores answer.
        self.send(201, b"")

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
