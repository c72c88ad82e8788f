#!/usr/bin/python3
"""hostile.py - hand-made HTTP requests for t0400 and t0405.

curl and bash refuse or rewrite the bytes these tests need to send (raw
control bytes, NUL, bare LF in a header, invalid UTF-8, a '%' that bash's
printf would take as a format), so the request is written to the socket as
given. Every address is 127.0.0.1.

  hostile.py raw PORT TARGET OUT [HEADER...]
      One "GET TARGET HTTP/1.1" request, Connection: close. TARGET and each
      HEADER take Python backslash escapes (\\x00, \\r, \\n, \\\\). The whole
      response is written to OUT (status line, headers, body).

  hostile.py keys PORT PATH KEYFILE
      One request per line of KEYFILE (the X-API-Key value) over kept-alive
      connections; prints one line per request: "STATUS NANOSECONDS".

  hostile.py timing PORT PATH ROUNDS KEYFILE
      ROUNDS rounds; in each, every key of KEYFILE once, in a new random
      order (interleaved, so load on the machine hits every key alike).
      Prints per key (by line number): "INDEX MEDIAN_NS TRIMMED_MEAN_NS
      STATUSES" where STATUSES lists the distinct statuses seen.
"""
import random
import socket
import sys
import time


def unescape(s):
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")


class Conn:
    """A kept-alive HTTP/1.1 connection that reconnects when closed."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def request(self, target, headers):
        for attempt in range(2):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                self.buf = b""
            req = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            req += b"".join(h + b"\r\n" for h in headers) + b"\r\n"
            try:
                self.sock.sendall(req)
                return self._response()
            except (ConnectionError, EOFError):
                self.sock.close()
                self.sock = None
                if attempt:
                    raise
        raise EOFError

    def _read_more(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def _response(self):
        while b"\r\n\r\n" not in self.buf:
            self._read_more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(self.buf) < length:
            self._read_more()
        self.buf = self.buf[length:]
        if close:
            self.sock.close()
            self.sock = None
        return status


def raw(port, target, out, headers):
    req = b"GET " + unescape(target) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    req += b"".join(unescape(h) + b"\r\n" for h in headers) + b"\r\n"
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(req)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except ConnectionResetError:
            pass  # the server may close on a request it refuses
    with open(out, "wb") as f:
        f.write(data)


def read_keys(path):
    with open(path, "rb") as f:
        return [line.rstrip(b"\n") for line in f]


def keys(port, path, keyfile):
    c = Conn(port)
    for k in read_keys(keyfile):
        t0 = time.perf_counter_ns()
        st = c.request(path.encode(), [b"X-API-Key: " + k])
        print(st, time.perf_counter_ns() - t0)


def trimmed_mean(v, cut=0.1):
    v = sorted(v)
    n = int(len(v) * cut)
    v = v[n:len(v) - n] or v
    return sum(v) / len(v)


def timing(port, path, rounds, keyfile):
    ks = read_keys(keyfile)
    c = Conn(port)
    times = [[] for _ in ks]
    statuses = [set() for _ in ks]
    order = list(range(len(ks)))
    for _ in range(rounds):
        random.shuffle(order)
        for i in order:
            t0 = time.perf_counter_ns()
            st = c.request(path.encode(), [b"X-API-Key: " + ks[i]])
            times[i].append(time.perf_counter_ns() - t0)
            statuses[i].add(st)
    for i, v in enumerate(times):
        v.sort()
        print(i, v[len(v) // 2], int(trimmed_mean(v)), ",".join(map(str, sorted(statuses[i]))))


def main(argv):
    if len(argv) >= 4 and argv[1] == "raw":
        raw(int(argv[2]), argv[3], argv[4], argv[5:])
    elif len(argv) == 5 and argv[1] == "keys":
        keys(int(argv[2]), argv[3], argv[4])
    elif len(argv) == 6 and argv[1] == "timing":
        timing(int(argv[2]), argv[3], int(argv[4]), argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
