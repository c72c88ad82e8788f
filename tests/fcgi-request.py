#!/usr/bin/env python3
"""fcgi-request.py - send one raw FastCGI request, print the raw response.

Like cgi-fcgi, but the parameters are given as arguments and may hold any
byte, NUL included (which an environment variable cannot): each value is
read with backslash escapes (\\x00, \\n, \\\\), so PATH_INFO=/a\\x00b.jpg
reaches the application as exactly those bytes.

Usage: fcgi-request.py ADDRESS NAME=VALUE...
ADDRESS is a Unix socket path or 127.0.0.1:PORT. The application's stdout
stream (CGI headers and body) goes to stdout, its stderr stream to stderr.
Exit status 0 when the application ended the request, 2 otherwise.
"""
import codecs
import socket
import struct
import sys

VERSION, BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 1, 3, 4, 5, 6, 7
RESPONDER = 1


def record(rtype, content, request_id=1):
    padding = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", VERSION, rtype, request_id, len(content), padding) + content + b"\0" * padding


def length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    address = sys.argv[1]
    params = b""
    for arg in sys.argv[2:]:
        name, _, value = arg.partition("=")
        value = codecs.escape_decode(value.encode("utf-8", "surrogateescape"))[0]
        params += length(len(name)) + length(len(value)) + name.encode() + value
    if ":" in address and not address.startswith("/"):
        host, port = address.rsplit(":", 1)
        if host != "127.0.0.1":
            sys.stderr.write("fcgi-request.py: only 127.0.0.1 is allowed\n")
            return 2
        sock = socket.create_connection((host, int(port)), timeout=60)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(60)
        sock.connect(address)
    out = record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 0))
    for i in range(0, len(params), 65535):
        out += record(PARAMS, params[i:i + 65535])
    out += record(PARAMS, b"") + record(STDIN, b"")
    sock.sendall(out)
    data = b""
    ended = False
    while not ended:
        while len(data) < 8:
            chunk = sock.recv(65536)
            if not chunk:
                return 2
            data += chunk
        _, rtype, _, clen, plen = struct.unpack(">BBHHBx", data[:8])
        while len(data) < 8 + clen + plen:
            chunk = sock.recv(65536)
            if not chunk:
                return 2
            data += chunk
        content, data = data[8:8 + clen], data[8 + clen + plen:]
        if rtype == STDOUT:
            sys.stdout.buffer.write(content)
        elif rtype == STDERR:
            sys.stderr.buffer.write(content)
        elif rtype == END_REQUEST:
            ended = True
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
