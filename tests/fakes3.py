#!/usr/bin/env python3
"""fakes3.py - a small fault-injecting S3 stand-in for the tests (loopback only).

It answers GET /BUCKET/KEY for the objects in a directory, but fails in the
ways a real S3 will not on demand. The behaviour is set per key prefix in
the request path (after an optional "original-images/"); the rest of the
key names the file served, where a mode serves one:

  /bucket/fail503/...     503 SlowDown
  /bucket/fail500/...     500 InternalError
  /bucket/always503/...   503 SlowDown every time
  /bucket/always500/...   500 InternalError every time
  /bucket/denied/...      403 AccessDenied
  /bucket/forbidden/...   403 SignatureDoesNotMatch
  /bucket/hang/...        accepts, reads the request, never answers
  /bucket/hangheaders/NAME  status line and headers of NAME (Content-Length
                          included), then no body, ever
  /bucket/stallbody/NAME  headers and half of NAME's body, then nothing more
  /bucket/short/NAME      headers and half of NAME's body, then closes (FIN):
                          fewer bytes than Content-Length
  /bucket/reset/NAME      headers and half of NAME's body, then a reset
                          (SO_LINGER 0 close: RST)
                          (these four break a body: a HEAD, which has none,
                          gets NAME's headers, a whole answer)
  /bucket/redirect301/... 301 PermanentRedirect (S3's XML, Location: elsewhere)
  /bucket/redirect307/... 307 TemporaryRedirect (likewise)
  /bucket/garbageNNN/...  status NNN with a body that is not S3's XML
  /bucket/emptyNNN/...    status NNN with no body (Content-Length: 0)
  /bucket/html/...        200 text/html: a web page, not an object
  /bucket/expired/...     400 ExpiredToken
  /bucket/slow/NAME       waits 1 s, then serves NAME
  /bucket/head503/NAME    503 SlowDown to every HEAD; a GET is served NAME
  /bucket/cache503/NAME   serves NAME; a GET of a derivative of it (a key
                          resized/CANON/cache503/NAME) gets 503 SlowDown

Any mode followed by xN (fail503x2, shortx1, expiredx1...) applies to the
first N GETs of that key only, and apart from them to its first N HEADs;
later ones are served NAME.
"Half" is half of NAME's bytes, rounded down. Anything else is served from
DIR (404 NoSuchKey if absent), with an ETag that changes when the file
does ("fake-SIZE-MTIME"; If-None-Match with it gets 304); PUT stores into
DIR, keeping its x-amz-meta-* headers beside the object. Every request is
logged as one line "PEER_PORT METHOD PATH STATUS" to the log file (STATUS
is the code sent, or the mode's name for one that sends none or breaks
off), so tests can count attempts and distinct connections (keep-alive
reuse). With FAKES3_LONG_LOG=1 in the environment two fields follow: the
access key id of the signature ("-" if none) and the time of the answer
(Unix seconds, with milliseconds), so tests see which credentials signed
and the waits between attempts.

With FAKES3_DELAY_MS=N in the environment every GET and HEAD is answered
N ms late, as a distant S3 would be.

With MODE, every GET of a key without a mode prefix of its own (the
derivative cache's keys too) gets that mode ("hang": an S3 that answers
nothing at all).

usage: fakes3.py PORTFILE DIR LOGFILE [MODE]
"""
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

PORTFILE, ROOT, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
DEFAULT_MODE = sys.argv[4] if len(sys.argv) > 4 else None
LONG_LOG = os.environ.get("FAKES3_LONG_LOG") == "1"
counts = {}
lock = threading.Lock()
# Modes whose key names a file to serve after the prefix.
SERVING = ("slow", "hangheaders", "stallbody", "short", "reset", "head503", "cache503")
# Those of them that break a body off.
BREAKING = ("hangheaders", "stallbody", "short", "reset")
DELAY = int(os.environ.get("FAKES3_DELAY_MS", "0")) / 1000.0
MODES = SERVING + ("always503", "always500", "denied", "forbidden", "redirect301",
                   "redirect307", "html", "expired", "hang")


def etag(fpath):
    """The file's ETag, quoted: a new one whenever the file is rewritten."""
    st = os.stat(fpath)
    return '"fake-%x-%x"' % (st.st_size, st.st_mtime_ns)


def error_xml(code, message, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message>%s</Error>' % (code, message, extra)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def finish(self):
        # A mode that reset the connection leaves nothing to flush.
        try:
            super().finish()
        except OSError:
            pass

    def record(self, status):
        m = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        with lock, open(LOG, "a") as f:
            f.write("%d %s %s %s" % (self.client_address[1], self.command, self.path, status))
            if LONG_LOG:
                f.write(" %s %.3f" % (m.group(1) if m else "-", time.time()))
            f.write("\n")

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

    def object_headers(self, fpath, name, body):
        """Status line and headers of a 200 for the file, as send() writes them."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg" if name.endswith(".jpg")
                         else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag(fpath))
        self.end_headers()
        self.wfile.flush()

    def broken(self, first, fpath, name):
        """The modes that start a 200 and never finish it."""
        with open(fpath, "rb") as f:
            body = f.read()
        self.record(first)
        self.object_headers(fpath, name, body)
        if first == "hangheaders":
            time.sleep(3600)
            return
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        if first == "stallbody":
            time.sleep(3600)
            return
        self.close_connection = True
        if first == "reset":
            # Let the client read what was sent, then abort: RST, not FIN.
            time.sleep(0.3)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()

    def do_GET(self):
        if DELAY:
            time.sleep(DELAY)
        path = self.path.split("?", 1)[0]
        # Originals may sit under "original-images/": the modes below look
        # past it, and the files are served from DIR without it.
        path = path.replace("/original-images/", "/", 1)
        parts = path.split("/", 3)  # '', bucket, first, rest
        key = unquote("/".join(parts[2:])) if len(parts) > 2 else ""
        first = parts[2] if len(parts) > 2 else ""
        # A HEAD counts apart: xN modes apply to the first N GETs, and to
        # the first N HEADs.
        with lock:
            counts[self.command, path] = counts.get((self.command, path), 0) + 1
            n = counts[self.command, path]
        if "Authorization" not in self.headers or "x-amz-date" not in self.headers:
            return self.send(403, error_xml("AccessDenied", "unsigned request"))
        # MODExN: the mode for the first N requests of the key, then NAME.
        mode, times = first, None
        m = re.fullmatch(r"([a-z]+[0-9]*)x([0-9]+)", first)
        if m and (m.group(1) in MODES or re.fullmatch(r"(fail|garbage|empty)[0-9]{3}",
                                                       m.group(1))):
            mode, times = m.group(1), int(m.group(2))
        name = key.split("/", 1)[1] if times is not None or mode in SERVING else key
        if DEFAULT_MODE and times is None and mode not in MODES and \
                not re.fullmatch(r"(fail|garbage|empty)[0-9]{3}", mode):
            mode, name = DEFAULT_MODE, key
        if times is not None and n > times:
            mode = "serve"
        if mode == "head503" and self.command == "HEAD" or \
                first == "resized" and "/cache503/" in path and self.command == "GET":
            return self.send(503, error_xml("SlowDown", "injected"))
        if mode.startswith("fail"):
            code = int(mode[4:7])
            return self.send(code, error_xml("SlowDown" if code == 503 else "InternalError",
                                             "injected"))
        if mode == "expired":
            return self.send(400, error_xml("ExpiredToken",
                                            "The provided token has expired."))
        if mode == "always503":
            return self.send(503, error_xml("SlowDown", "Please reduce your request rate."))
        if mode == "always500":
            return self.send(500, error_xml("InternalError", "We encountered an internal error."))
        if mode == "denied":
            return self.send(403, error_xml("AccessDenied", "Access Denied"))
        if mode == "forbidden":
            return self.send(403, error_xml("SignatureDoesNotMatch", "injected"))
        if mode in ("redirect301", "redirect307"):
            code = int(mode[8:])
            kind = "PermanentRedirect" if code == 301 else "TemporaryRedirect"
            where = "imgsvc-test.s3.eu-west-1.amazonaws.com"
            return self.send(code, error_xml(
                kind, "The bucket you are attempting to access must be addressed using "
                "the specified endpoint.", "<Endpoint>%s</Endpoint><Bucket>%s</Bucket>"
                % (where, parts[1])), extra={"Location": "http://%s/%s" % (where, key)})
        m = re.fullmatch(r"(garbage|empty)([1-5][0-9][0-9])", mode)
        if m:
            body = b"" if m.group(1) == "empty" else \
                b"<html><body><h1>Bad Gateway</h1><Error><Code>unclosed</body>\x00\xff"
            return self.send(int(m.group(2)), body, "text/html")
        if mode == "html":
            return self.send(200, b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
                             b"<body>Please sign in to continue.</body></html>\n",
                             "text/html; charset=utf-8", {"ETag": '"fake-html"'})
        if mode == "hang":
            self.record("hang")
            time.sleep(3600)
            return
        if mode == "slow":
            time.sleep(1)
        fpath = os.path.join(ROOT, name)
        if not os.path.isfile(fpath):
            return self.send(404, error_xml("NoSuchKey", "The specified key does not exist."))
        if mode in BREAKING and self.command != "HEAD":
            return self.broken(mode, fpath, name)
        tag = etag(fpath)
        if self.headers.get("If-None-Match") == tag:
            self.record(304)
            self.send_response(304)
            self.send_header("ETag", tag)
            self.end_headers()
            return
        with open(fpath, "rb") as f:
            body = f.read()
        extra = {"ETag": tag, "Last-Modified": "Tue, 01 Sep 2026 10:00:00 GMT"}
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
