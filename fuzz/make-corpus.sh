#!/bin/bash
# make-corpus.sh - writes the seed corpora fuzz/corpus/TARGET/seed-* from
# the project's own test material:
#   params  queries from the unit tests and tests/t0*.sh, paths from the
#           path rules' tests, Accept headers, source sizes for geom_plan
#   sigv4   the requests of AWS's SigV4 test suite (tests/data), S3 keys
#   config  etc/imgsvc.ini.sample and the INI that tests/lib.sh writes
#   s3resp  S3 response heads and error bodies (NoSuchKey, AccessDenied,
#           SlowDown, ExpiredToken, ...)
#   image   small JPEG, PNG, GIF and WebP files made from tests/make-fixtures.sh
#           and the test photos, truncated and crafted variants (pixel
#           bomb headers, wrong magic), each behind 6 parameter bytes
# Seeds are regenerated; regression inputs (regress-*) are left alone.
# Needs python3 and GraphicsMagick (gm). Usage: fuzz/make-corpus.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=$here/corpus
tmp=$(mktemp -d "${TMPDIR:-/tmp}/imgsvc-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for t in params sigv4 config s3resp image decide; do
	mkdir -p "$out/$t"
	rm -f "$out/$t"/seed-*
done

bash "$top/tests/make-fixtures.sh" "$tmp/fx" >/dev/null
gm convert "$top/tests/data/images/photo2mp.jpg" -resize 64x48 -quality 80 "$tmp/fx/photo.jpg"
gm convert "$top/tests/data/images/photo13mp-progressive.jpg" -resize 48x32 -interlace Line \
	"$tmp/fx/photo-progressive.jpg"
gm convert "$top/tests/data/images/photo-dune.png" -resize 40x30 "$tmp/fx/photo.png"
gm convert "$tmp/fx/photo.png" -interlace Line "$tmp/fx/interlaced.png"
gm convert "$tmp/fx/photo.png" -colors 16 "$tmp/fx/palette.png"
gm convert "$tmp/fx/photo.png" -depth 16 "$tmp/fx/deep.png"
gm convert "$tmp/fx/photo.jpg" -colorspace Gray "$tmp/fx/gray.jpg"
gm convert "$tmp/fx/photo.png" -define webp:lossless=true "$tmp/fx/lossless.webp"
gm convert "$tmp/fx/alpha.png" -resize 40x20 "$tmp/fx/alpha.webp"
gm convert "$tmp/fx/alpha.png" -resize 40x20 "$tmp/fx/alpha-small.png"
gm convert "$tmp/fx/photo.png" "$tmp/fx/photo.gif"

TOP=$top OUT=$out FX=$tmp/fx python3 - <<'EOF'
import glob, json, os, re, struct, zlib

top, out, fx = os.environ["TOP"], os.environ["OUT"], os.environ["FX"]

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(out, target, "seed-" + name), "wb") as f:
        f.write(data)

# --- params: QUERY \0 PATH \0 ACCEPT \0 "WIDTH HEIGHT" ---------------------
queries = set()
for path in glob.glob(os.path.join(top, "tests", "t0*.sh")):
    text = open(path, encoding="utf-8", errors="replace").read()
    queries.update(re.findall(r"\?([a-z]+=[^ \"'`:]*)", text))
    queries.update(re.findall(r"QUERY_STRING=[\"']([^\"']*)", text))
unit = open(os.path.join(top, "tests", "unit_params.c")).read()
queries.update(q for q in re.findall(r'"((?:[a-z%0-9]+=[^"]*|&[^"]*|[a-z]+))"', unit)
               if " " not in q)
queries.update(["", "w=400&h=300&fit=cover&rotate=90&q=75&fm=webp", "w=1&&h=2",
                "%77=1", "w=%3", "fit", "q=82&fm=png", "fm=auto&q=82"])
paths = ["/photos/cat.jpg", "/a/../b.jpg", "/my photo.jpg", "/a%41.jpg", "/_imgsvc/health",
         "//a.jpg", "/a/", "/a/./b.jpg", "/\u00fcn\u00efc\u00f6d\u00e9/\u732b.jpg",
         "/\U0001F600.png", "/a\u0085b.jpg", "/" + "x" * 1008, "/.../a", "/a..b/c"]
accepts = ["image/avif,image/webp,*/*", "image/webp;q=0", "*/*", "",
           "image/*;q=0.8, image/webp;q=0.5", "text/html, IMAGE/WEBP ; Q=1.000",
           'image/webp;x="a,b";q=0.001', "image/webp;q=2", "image/webp junk"]
sizes = ["4000 3000", "300 200", "200 300", "1 1", "2147483647 1", "7 3", "20000 20000",
         "1920 1200"]
for i, q in enumerate(sorted(queries)):
    put("params", "%03d" % i,
        q.encode() + b"\0" + paths[i % len(paths)].encode() + b"\0" +
        accepts[i % len(accepts)].encode() + b"\0" + sizes[i % len(sizes)].encode())
for i, p in enumerate(paths):
    put("params", "path-%02d" % i, b"w=100\0" + p.encode() + b"\0*/*")

# --- sigv4: METHOD KEY QUERY REGION SERVICE AKID SECRET BUCKET ENDPOINT TIME
#            (NAME VALUE)* --------------------------------------------------
def sigv4_seed(method, key, query, region, service, akid, secret, bucket, endpoint, t,
               headers):
    fields = [method, key, query, region, service, akid, secret, bucket, endpoint, str(t)]
    for n, v in headers:
        fields += [n, v]
    return "\0".join(fields).encode()

suite = os.path.join(top, "tests", "data", "aws-sigv4-test-suite")
for case in sorted(os.listdir(suite)):
    d = os.path.join(suite, case)
    if not os.path.isdir(d):
        continue
    ctx = json.load(open(os.path.join(d, "context.json")))
    lines = open(os.path.join(d, "request.txt"), encoding="utf-8").read().split("\n")
    method, target = lines[0].split(" ")[0], lines[0].split(" ")[1]
    path, _, query = target.partition("?")
    headers = []
    for line in lines[1:]:
        if line == "":
            break
        if line[0] in " \t" and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + "\n" + line)
        else:
            n, _, v = line.partition(":")
            headers.append((n, v))
    cred = ctx["credentials"]
    if cred.get("token"):
        headers.append(("X-Amz-Security-Token", cred["token"]))
    put("sigv4", case, sigv4_seed(method, path, query, ctx["region"], ctx["service"],
                                  cred["access_key_id"], cred["secret_access_key"],
                                  "examplebucket", "", 1440938160, headers))
keys = ["original-images/photos/cat.jpg", "original-images/my photo.jpg",
        "original-images/a%41.jpg", "resized/w-400_fm-webp/p/\u00fc.jpg",
        "original-images/+=;()~'!*$,.jpg", "original-images/a/../b"]
endpoints = ["", "http://127.0.0.1:9000", "https://minio.example.com/base/", "http://h"]
for i, k in enumerate(keys):
    put("sigv4", "s3-%02d" % i,
        sigv4_seed("GET", "/" + k, "", "eu-west-1", "s3", "AKIDEXAMPLE", "secret",
                   "my-images" if i % 2 else "my.dotted.bucket", endpoints[i % 4],
                   1764000000 + i * 86400 * 400 + i % 3,
                   [("If-None-Match", '"abc"'), ("x-amz-meta-source-etag", ' "e" ')]))

# --- config ----------------------------------------------------------------
sample = open(os.path.join(top, "etc", "imgsvc.ini.sample"), "rb").read()
put("config", "sample", sample)
put("config", "sample-with-bucket-and-key",
    sample + b"\n[key demo]\nkey = demo-key-12345678\n")
put("config", "lib-sh",
    "[server]\nmax_width = 2000\nquality = 82\nderivative_cache = yes\n"
    "cache_control = \"public, max-age=60\"\n"
    "[s3]\nbucket = imgsvc-test\nregion = us-east-1\nendpoint = http://127.0.0.1:9000/\n"
    "addressing = path\naccess_key_id = AKID\nsecret_access_key = secret\n"
    "connect_timeout_ms = 2000\ntimeout_ms = 10000\nretries = 2\nimds = no\n"
    "[limits]\nstate_file = /tmp/imgsvc-state\n"
    "[plan gold]\nrate = 10\nburst = 20\nquota = 1000\nperiod = day\n"
    "[plan free]\nquota = 100\nperiod = month\n"
    "[key alice]\nkey = alice-key-123456\nplan = gold\n"
    "[key bob]\nsha256 = " + "ab" * 32 + "\nenabled = no\nplan = free\n"
    "[metrics]\nkey = metrics-key-123456\n")
put("config", "redis",
    "[s3]\nbucket = b\n[limits]\nbackend = redis\nredis_host = /run/redis.sock\n"
    "redis_port = 6380\nredis_failure = closed\nredis_timeout_ms = 50\n"
    "[key k]\nkey = 0123456789\n")
put("config", "errors",
    "[s3]\nbucket = b.c\naddressing = virtual\noriginals_prefix = \n"
    "session_token = x\n[server]\nformats = jpeg, tiff\nquality = 0x10\n"
    "[key a b]\nkey = short\n[plan p]\nburst = 3\n[weird]\nx = 1\n")

# --- s3resp: header lines, an empty line, the body -------------------------
def resp(status, headers, body=""):
    head = "HTTP/1.1 %s\r\n" % status + "".join("%s: %s\r\n" % h for h in headers)
    return (head + "\r\n" + body).encode()

def error(code, msg):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            "<Message>%s</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"
            % (code, msg))

put("s3resp", "ok", resp("200 OK", [
    ("x-amz-id-2", "eftixk72aD6Ap51TnqcoF8eFidJG9Z/2mkiDFu8yU9AS1ed4OpIszj7UDNEHGran"),
    ("Last-Modified", "Wed, 25 Nov 2026 00:35:11 GMT"), ("ETag", '"6abe8a3b4da2bf90f57c4ceb5bb93732"'),
    ("Content-Type", "image/jpeg"), ("Content-Length", "2940951"),
    ("x-amz-meta-source-etag", '"9b2c"'), ("x-amz-meta-imgsvc-variant", "v1-q82"),
    ("x-amz-meta-source-last-modified", "Tue, 24 Nov 2026 10:00:00 GMT")]))
put("s3resp", "continue", b"HTTP/1.1 100 Continue\r\n\r\n" + resp("200 OK", [("ETag", '"x"')]))
put("s3resp", "304", resp("304 Not Modified", [("ETag", '"a-3"'), ("content-length", "0")]))
put("s3resp", "http2", b"HTTP/2 404 \r\ncontent-type: application/xml\r\n\r\n" +
    error("NoSuchKey", "The specified key does not exist.").encode())
for code, status in [("NoSuchKey", "404 Not Found"), ("NoSuchBucket", "404 Not Found"),
                     ("AccessDenied", "403 Forbidden"), ("ExpiredToken", "400 Bad Request"),
                     ("SignatureDoesNotMatch", "403 Forbidden"), ("SlowDown", "503 Slow Down"),
                     ("InternalError", "500 Internal Server Error"),
                     ("RequestTimeout", "400 Bad Request")]:
    put("s3resp", "error-" + code, resp(status, [("Content-Type", "application/xml"),
                                               ("Transfer-Encoding", "chunked")],
                                       error(code, "seed")))
put("s3resp", "long-code", resp("400 x", [], "<Code>" + "A" * 100 + "</Code>"))

# --- image: 6 parameter bytes, then the source -------------------------------
def prefix(w=0, h=0, fit=0, rotate=0, fm=0, q=0):
    def dim(v):
        return struct.pack("<H", v if v <= 64 else 0x8000 | v)
    return dim(w) + dim(h) + bytes([fit | (rotate // 90) << 2 | fm << 4, q])

images = {
    "photo.jpg": prefix(32), "photo-progressive.jpg": prefix(0, 20, fm=3),
    "photo.png": prefix(20, 20, fit=1), "interlaced.png": prefix(10, 30, fit=2),
    "palette.png": prefix(rotate=90, fm=1, q=50), "deep.png": prefix(16, fm=4),
    "gray.jpg": prefix(20, 20, fit=1, fm=2), "lossless.webp": prefix(24),
    "alpha.webp": prefix(fm=1), "alpha-small.png": prefix(30, fm=4),
    "photo.gif": prefix(16, 16, fit=2), "anim.gif": prefix(), "quads.webp": prefix(30, 20),
    "progressive.jpg": prefix(40, rotate=180), "gps.jpg": prefix(50, fm=3),
    "icc.jpg": prefix(60, fm=3, q=90), "cmyk.jpg": prefix(30, 30, fit=1),
    "text.jpg": prefix(), "svg.jpg": prefix(10), "pdf.jpg": prefix(10),
}
for n in range(1, 9):
    images["orient-%d.jpg" % n] = prefix(30, 0 if n % 2 else 40, rotate=90 * (n % 4))
for name, pre in sorted(images.items()):
    data = open(os.path.join(fx, name), "rb").read()
    put("image", name.replace(".", "-"), pre + data)
photo = open(os.path.join(fx, "photo.jpg"), "rb").read()
put("image", "photo-truncated-jpg", prefix(16) + photo[: len(photo) // 2])
png = open(os.path.join(fx, "photo.png"), "rb").read()
put("image", "photo-truncated-png", prefix(16) + png[: len(png) // 2])
put("image", "bomb-header-png", prefix(10) + open(os.path.join(fx, "bomb.png"), "rb").read()[:64])
# Cut short at several points (decoder warnings that must fail, not a grey
# 200), garbage behind a valid 16x16 PNG header (415, never 413), and a
# JPEG with two full APP2 segments before its frame header.
for name in ["photo.jpg", "photo.png", "photo.gif", "lossless.webp"]:
    whole = open(os.path.join(fx, name), "rb").read()
    for pct in (30, 90):
        put("image", "%s-cut%d" % (name.replace(".", "-"), pct), prefix(16) + whole[: len(whole) * pct // 100])
ihdr16 = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
put("image", "garbage-16x16-png", prefix(8) + b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" +
    ihdr16 + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr16)) + struct.pack(">I", 64) + b"IDAT" +
    bytes((i * 37) & 255 for i in range(68)))
app2 = b"\xff\xe2" + struct.pack(">H", 65533) + b"X" * 65531
put("image", "jpeg-big-app2", prefix(16) + photo[:2] + app2 * 2 + photo[2:])

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

# A 4000x3000 grey PNG of a few hundred bytes: within max_source_pixels.
raw = zlib.compress(b"".join(b"\0" + b"\x80" * 4000 for _ in range(3000)), 9)
put("image", "big-grey-png", prefix(40, 40, fit=1) + b"\x89PNG\r\n\x1a\n" +
    chunk(b"IHDR", struct.pack(">IIBBBBB", 4000, 3000, 8, 0, 0, 0, 0)) +
    chunk(b"IDAT", raw) + chunk(b"IEND", b""))
# A JPEG header claiming 20000x5000 (100 Mpx, the limit) with no scan data.
sof = photo.find(b"\xff\xc0")
put("image", "jpeg-claims-100mpx", prefix(20) + photo[:sof + 5] + struct.pack(">HH", 5000, 20000) +
    photo[sof + 9:sof + 200])
# --- decide: 12 setting bytes, INM \0 IMS \0 ETAG \0 LAST-MODIFIED \0, the first bytes --
def settings(flags=0, max_width=1000, pixels=100000000, nbytes=50000000, formats=0x1e):
    return bytes([flags]) + struct.pack(">HII", max_width, pixels, nbytes) + bytes([formats])
lm = "Tue, 01 Dec 2026 10:00:00 GMT"
def conds(inm="", ims="", etag='"abc"'):
    return (inm + "\0" + ims + "\0" + etag + "\0" + lm + "\0").encode()
for name in ["photo.jpg", "photo.png", "photo.gif", "lossless.webp", "bomb.png"]:
    head = open(os.path.join(fx, name), "rb").read()[:256]
    base = name.replace(".", "-")
    put("decide", base, settings() + conds() + head)
    put("decide", base + "-narrow", settings(max_width=16) + conds() + head)
    put("decide", base + "-derivative", settings(flags=1 | 8) + conds() + head)
    put("decide", base + "-cached", settings(flags=1 | 16) + conds('"abc"') + head)
    put("decide", base + "-judged", settings(flags=2, max_width=0) + conds("", lm) + head)
    put("decide", base + "-s3-304", settings(flags=4) + conds('"abc"') + head)
put("decide", "truncated-jpg", settings(flags=64) + conds() + photo[:40])
# The frame header past the first 128 KiB, and max_source_bytes just short of it.
put("decide", "jpeg-big-app2", settings(flags=64, nbytes=140000) + conds() + photo[:2] + app2 * 2 + photo[2:300])
put("decide", "text", settings(flags=8) + conds('W/"abc", "x"') + b"hello, world")
EOF
echo "corpus: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)"
