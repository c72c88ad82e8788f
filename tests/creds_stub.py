#!/usr/bin/env python3
"""creds_stub.py - a loopback stand-in for the two AWS credential endpoints.

Serves, on 127.0.0.1 and a free port (written to --port-file once listening):

  ECS/EKS container endpoint   GET  --container-path
      -> {AccessKeyId, SecretAccessKey, Token, Expiration}; with --auth
         the Authorization header must equal it (else 401).
  EC2 IMDSv2                   PUT  /latest/api/token
      (needs X-aws-ec2-metadata-token-ttl-seconds) -> session token;
                               GET  /latest/meta-data/iam/security-credentials/
                               GET  /latest/meta-data/iam/security-credentials/ROLE
      both GETs need a valid X-aws-ec2-metadata-token (else 401): there is
      no IMDSv1 here.

Every credential document carries a new key id (ASIASTUB0001, 0002...), so
a test can see a refresh. --expires takes a comma-separated list of
lifetimes in seconds, one per document handed out, the last one repeating;
a negative one hands out credentials that have already expired.
--fail-after N answers 500 to credential requests after the Nth.
--fault KIND makes the credential-document requests (the container GET and
the IMDS GET of the role's credentials) fail, --token-fault KIND the IMDSv2
token PUT: 500 (HTTP 500), garbage (200 with a body that is not JSON), hang
(reads the request, never answers) or slow (answers after --delay seconds).
--fault-count N limits either to the first N such requests (default: all).
Each request is logged as one line "METHOD PATH STATUS" to --log (STATUS
"hang" for one never answered).
Python 3 standard library only. Exits by itself after --lifetime seconds in
case the test that started it could not stop it.
"""
import argparse
import datetime
import http.server
import json
import os
import secrets
import sys
import threading
import time

ROLE = "imgsvc-test-role"


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", default=None)
    ap.add_argument("--container-path", default="/v2/credentials/imgsvc")
    ap.add_argument("--auth", default=None)
    ap.add_argument("--expires", default="3600")
    ap.add_argument("--fail-after", type=int, default=-1)
    ap.add_argument("--deny-token", action="store_true",
                    help="refuse the IMDSv2 token PUT with 403")
    kinds = ("500", "garbage", "hang", "slow")
    ap.add_argument("--fault", choices=kinds, default=None)
    ap.add_argument("--token-fault", choices=kinds, default=None)
    ap.add_argument("--fault-count", type=int, default=-1)
    ap.add_argument("--delay", type=float, default=2.0)
    ap.add_argument("--lifetime", type=float, default=120)
    return ap.parse_args()


class State:
    def __init__(self, args):
        self.args = args
        self.lifetimes = [int(x) for x in args.expires.split(",")]
        self.issued = 0
        self.tokens = set()
        self.lock = threading.Lock()
        self.faulted = {}

    def document(self, imds):
        with self.lock:
            self.issued += 1
            n = self.issued
        if 0 <= self.args.fail_after < n:
            return None
        life = self.lifetimes[min(n, len(self.lifetimes)) - 1]
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        exp = (now + datetime.timedelta(seconds=life)).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc = {
            "AccessKeyId": "ASIASTUB%04d" % n,
            "SecretAccessKey": "stub/secret+%04d" % n,
            "Token": "stub-session-token-%04d" % n,
            "Expiration": exp,
        }
        if imds:
            doc = dict({"Code": "Success", "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "Type": "AWS-HMAC"}, **doc)
        else:
            doc["RoleArn"] = "arn:aws:iam::123456789012:role/" + ROLE
        # Pretty-printed like the real endpoints.
        return json.dumps(doc, indent=2).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "creds-stub"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=b"", ctype="text/plain"):
        # Logged before answering: the client may exit (and the test read
        # the log) as soon as the body arrives.
        self.log(status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log(self, status):
        st = self.server.state
        if st.args.log:
            with st.lock, open(st.args.log, "a") as f:
                f.write("%s %s %s\n" % (self.command, self.path, status))

    def fault(self, kind, target):
        """Injects fault kind (None: none) into this request; True if it answered."""
        st = self.server.state
        if kind is None:
            return False
        with st.lock:
            st.faulted[target] = st.faulted.get(target, 0) + 1
            n = st.faulted[target]
        if 0 <= st.args.fault_count < n:
            return False
        if kind == "500":
            self.answer(500, b"internal error")
            return True
        if kind == "garbage":
            self.answer(200, b"<html><body>Service Unavailable</body></html>\n{\"AccessKeyId\":",
                        "application/json")
            return True
        if kind == "hang":
            self.log("hang")
            time.sleep(3600)
            self.close_connection = True
            return True
        time.sleep(st.args.delay)  # slow: then the normal answer
        return False

    def token_ok(self):
        return self.headers.get("X-aws-ec2-metadata-token") in self.server.state.tokens

    def do_PUT(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path != "/latest/api/token":
            return self.answer(404)
        if st.args.deny_token:
            return self.answer(403)
        if self.fault(st.args.token_fault, "token"):
            return
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.answer(400)
        token = secrets.token_urlsafe(24)
        with st.lock:
            st.tokens.add(token)
        self.answer(200, token.encode())

    def do_GET(self):
        st = self.server.state
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == st.args.container_path:
            if st.args.auth is not None and self.headers.get("Authorization") != st.args.auth:
                return self.answer(401)
            if self.fault(st.args.fault, "document"):
                return
            doc = st.document(imds=False)
            if doc is None:
                return self.answer(500)
            return self.answer(200, doc, "application/json")
        if self.path.startswith("/latest/"):
            if not self.token_ok():
                return self.answer(401)
            if self.path == base:
                return self.answer(200, ROLE.encode())
            if self.path == base + ROLE:
                if self.fault(st.args.fault, "document"):
                    return
                doc = st.document(imds=True)
                if doc is None:
                    return self.answer(500)
                return self.answer(200, doc, "application/json")
        self.answer(404)


def main():
    args = parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    timer = threading.Timer(args.lifetime, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
