#!/usr/bin/env python3
"""imgtool.py - build test images byte by byte, and look inside outputs.

Python standard library only (Debian's /usr/bin/python3 will do); pixels
are read through GraphicsMagick (`gm convert ... ppm:-`). Used by
tests/make-fixtures.sh and the transformation tests (t02xx).

Builders (write OUT):
  exif-orient IN OUT N     IN (a JPEG) with an APP1 Exif segment holding
                           Orientation = N inserted after SOI/APP0
  exif-gps IN OUT [N]      IN with APP1 Exif (Make, Artist, Orientation N,
                           default 1, a GPS IFD: 48.8584 N, 2.2945 E) and a
                           COM comment
  icc OUT                  a small valid ICC v2 RGB display profile
                           (sRGB primaries, gamma 2.2)
  png-alpha OUT W H        RGBA PNG: left half opaque red, right half fully
                           transparent with magenta colour values hidden
                           under alpha 0
  png-bomb OUT W H         a valid greyscale PNG of W x H zero pixels,
                           a few hundred kB of zlib for hundreds of MP

Checks (print to stdout):
  rgb FILE X Y             "R G B" (8 bit) of one pixel
  colour FILE X Y          name of the nearest test colour (red, green,
                           blue, yellow, white, black, magenta, cyan, grey)
                           or "other(R,G,B)"
  quads FILE               colour names at the centres of the 4 quadrants:
                           "TL TR BL BR"
  meta FILE                metadata blocks found: JPEG APPn/COM segments
                           ("APP1:Exif", "APP2:ICC_PROFILE", "COM"...), PNG
                           ancillary chunks, WebP chunks; "none" if none
  icc-sha FILE             SHA-256 of the embedded ICC profile, or "none"
  jpeg-info FILE           "components=N progressive=yes|no"
  alpha FILE               "yes" if the image has an alpha channel (PNG
                           colour type 4/6 or tRNS, WebP alpha), else "no"
"""

import hashlib
import struct
import subprocess
import sys
import zlib

# ---------------------------------------------------------------- JPEG ----


def jpeg_segments(data):
    """(marker, payload_offset, payload) for each segment before SOS."""
    if data[:2] != b"\xff\xd8":
        raise SystemExit("not a JPEG")
    i, out = 2, []
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise SystemExit("bad JPEG marker at %d" % i)
        m = data[i + 1]
        if m == 0xFF:
            i += 1
            continue
        n = struct.unpack(">H", data[i + 2:i + 4])[0]
        out.append((m, i, data[i + 4:i + 2 + n]))
        if m == 0xDA:
            break
        i += 2 + n
    return out


def insert_app1(data, payload):
    """payload inserted as an APP1 segment after SOI (and APP0 JFIF)."""
    segs = jpeg_segments(data)
    at = 2
    if segs and segs[0][0] == 0xE0:
        at = segs[0][1] + 4 + len(segs[0][2])
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:at] + seg + data[at:]


def tiff_ifd(entries, base, next_ifd=0):
    """One big-endian IFD at offset base. entries: (tag, type, count,
    bytes). Values over 4 bytes go after the IFD. Returns bytes."""
    n = len(entries)
    data_off = base + 2 + 12 * n + 4
    head, tail = struct.pack(">H", n), b""
    for tag, typ, count, value in sorted(entries):
        if len(value) <= 4:
            head += struct.pack(">HHI", tag, typ, count) + value.ljust(4, b"\0")
        else:
            head += struct.pack(">HHII", tag, typ, count, data_off + len(tail))
            tail += value + (b"\0" if len(value) % 2 else b"")
    return head + struct.pack(">I", next_ifd) + tail


def exif_payload(orientation, gps=False):
    short = lambda v: struct.pack(">H", v)
    ifd0 = [(0x0112, 3, 1, short(orientation))]
    if not gps:
        body = tiff_ifd(ifd0, 8)
    else:
        make = b"imgsvc-test-camera\0"
        ifd0.append((0x010F, 2, len(make), make))
        artist = b"imgsvc-test-artist\0"
        ifd0.append((0x013B, 2, len(artist), artist))
        # The GPS IFD's offset depends on IFD0's size: build IFD0 once with
        # a placeholder to learn it.
        probe = tiff_ifd(ifd0 + [(0x8825, 4, 1, b"\0\0\0\0")], 8)
        gps_off = 8 + len(probe)
        ifd0.append((0x8825, 4, 1, struct.pack(">I", gps_off)))
        rat = lambda *vs: b"".join(struct.pack(">II", a, b) for a, b in vs)
        gps_ifd = [
            (0x0000, 1, 4, bytes([2, 3, 0, 0])),
            (0x0001, 2, 2, b"N\0"),
            (0x0002, 5, 3, rat((48, 1), (51, 1), (3024, 100))),
            (0x0003, 2, 2, b"E\0"),
            (0x0004, 5, 3, rat((2, 1), (17, 1), (4020, 100))),
        ]
        body = tiff_ifd(ifd0, 8) + tiff_ifd(gps_ifd, gps_off)
    return b"Exif\0\0" + b"MM\0\x2a" + struct.pack(">I", 8) + body


def cmd_exif_orient(src, out, n):
    data = open(src, "rb").read()
    open(out, "wb").write(insert_app1(data, exif_payload(int(n))))


def cmd_exif_gps(src, out, orientation="1"):
    data = insert_app1(open(src, "rb").read(), exif_payload(int(orientation), gps=True))
    com = b"imgsvc secret comment: taken at home"
    seg = b"\xff\xfe" + struct.pack(">H", len(com) + 2) + com
    open(out, "wb").write(data[:2] + seg + data[2:])


def jpeg_info(data):
    comps, prog = "?", "no"
    for m, _, p in jpeg_segments(data):
        if m in (0xC0, 0xC1, 0xC2):
            comps = str(p[5])
            prog = "yes" if m == 0xC2 else "no"
    return "components=%s progressive=%s" % (comps, prog)


# ----------------------------------------------------------------- ICC ----


def icc_profile():
    """A minimal ICC v2 RGB display profile: desc, wtpt, rXYZ/gXYZ/bXYZ,
    rTRC/gTRC/bTRC (gamma 2.2), cprt."""
    s15 = lambda v: struct.pack(">i", int(round(v * 65536)))
    xyz = lambda x, y, z: b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)
    desc_text = b"imgsvc test RGB\0"
    desc = (b"desc\0\0\0\0" + struct.pack(">I", len(desc_text)) + desc_text
            + b"\0" * 8 + b"\0" * 2 + b"\0" + b"\0" * 67)
    curv = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(2.2 * 256)) + b"\0\0"
    text = b"text\0\0\0\0" + b"No copyright, test data\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curv),
        (b"gTRC", curv),
        (b"bTRC", curv),
        (b"cprt", text),
    ]
    off = 128 + 4 + 12 * len(tags)
    table, blob = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        while (off + len(blob)) % 4:
            blob += b"\0"
        table += sig + struct.pack(">II", off + len(blob), len(data))
        blob += data
    size = 128 + len(table) + len(blob)
    header = (struct.pack(">I", size) + b"none" + bytes([2, 0x10, 0, 0])
              + b"mntr" + b"RGB " + b"XYZ " + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
              + b"acsp" + b"APPL" + b"\0" * 4 + b"\0" * 4 + b"\0" * 4
              + b"\0" * 8 + b"\0" * 4
              + s15(0.9642) + s15(1.0) + s15(0.8249) + b"none")
    header = header.ljust(128, b"\0")
    return header + table + blob


def embedded_icc(data):
    if data[:2] == b"\xff\xd8":
        parts = []
        for m, _, p in jpeg_segments(data):
            if m == 0xE2 and p[:12] == b"ICC_PROFILE\0":
                parts.append((p[12], p[14:]))
        return b"".join(p for _, p in sorted(parts)) or None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        for typ, body in png_chunks(data):
            if typ == b"iCCP":
                name_end = body.index(b"\0")
                return zlib.decompress(body[name_end + 2:])
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        for typ, body in webp_chunks(data):
            if typ == b"ICCP":
                return body
        return None
    return None


# ----------------------------------------------------------------- PNG ----


def png_chunk(typ, body):
    return (struct.pack(">I", len(body)) + typ + body
            + struct.pack(">I", zlib.crc32(typ + body) & 0xFFFFFFFF))


def png_chunks(data):
    i, out = 8, []
    while i + 8 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        out.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
        i += 12 + n
    return out


def cmd_png_alpha(out, w, h):
    w, h = int(w), int(h)
    row = b"\0" + b"\xff\x00\x00\xff" * (w // 2) + b"\xff\x00\xff\x00" * (w - w // 2)
    raw = row * h
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    open(out, "wb").write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                          + png_chunk(b"IDAT", zlib.compress(raw, 9))
                          + png_chunk(b"IEND", b""))


def cmd_png_bomb(out, w, h):
    w, h = int(w), int(h)
    z = zlib.compressobj(9)
    row = b"\0" * (w + 1)
    parts = [z.compress(row) for _ in range(h)]
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    open(out, "wb").write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                          + png_chunk(b"IDAT", b"".join(parts))
                          + png_chunk(b"IEND", b""))


# ---------------------------------------------------------------- WebP ----


def webp_chunks(data):
    i, out = 12, []
    while i + 8 <= len(data):
        typ = data[i:i + 4]
        n = struct.unpack("<I", data[i + 4:i + 8])[0]
        out.append((typ, data[i + 8:i + 8 + n]))
        i += 8 + n + (n & 1)
    return out


# -------------------------------------------------------------- checks ----


def meta(data):
    found = []
    if data[:2] == b"\xff\xd8":
        for m, _, p in jpeg_segments(data):
            if 0xE0 <= m <= 0xEF:
                ident = p[:p.find(b"\0")] if b"\0" in p[:32] else p[:8]
                found.append("APP%d:%s" % (m - 0xE0, ident.decode("latin-1")))
            elif m == 0xFE:
                found.append("COM")
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        for typ, _ in png_chunks(data):
            if typ not in (b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS"):
                found.append(typ.decode("latin-1"))
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        for typ, _ in webp_chunks(data):
            if typ not in (b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"):
                found.append(typ.decode("latin-1").strip())
    else:
        found.append("unknown-format")
    return " ".join(found) or "none"


def alpha(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        chunks = png_chunks(data)
        ctype = chunks[0][1][9]
        return ctype in (4, 6) or any(t == b"tRNS" for t, _ in chunks)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        for typ, body in webp_chunks(data):
            if typ == b"VP8X":
                return bool(body[0] & 0x10)
            if typ == b"VP8L":
                bits = struct.unpack("<I", body[1:5])[0]
                return bool((bits >> 28) & 1)
        return False
    return False


def pixels(path):
    """(w, h, rgb bytes) through GraphicsMagick, converted to RGB."""
    ppm = subprocess.run(["gm", "convert", path + "[0]", "-colorspace", "RGB",
                          "-depth", "8", "ppm:-"],
                         check=True, stdout=subprocess.PIPE).stdout
    fields, i = [], 0
    while len(fields) < 4:
        while ppm[i:i + 1].isspace():
            i += 1
        if ppm[i:i + 1] == b"#":
            i = ppm.index(b"\n", i)
            continue
        j = i
        while not ppm[j:j + 1].isspace():
            j += 1
        fields.append(ppm[i:j])
        i = j
    if fields[0] != b"P6" or fields[3] != b"255":
        raise SystemExit("unexpected PPM header %r" % fields)
    w, h = int(fields[1]), int(fields[2])
    return w, h, ppm[i + 1:]


def rgb_at(img, x, y):
    w, h, px = img
    if not (0 <= x < w and 0 <= y < h):
        raise SystemExit("pixel %d,%d outside %dx%d" % (x, y, w, h))
    o = 3 * (y * w + x)
    return tuple(px[o:o + 3])


NAMES = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "white": (255, 255, 255), "black": (0, 0, 0),
    "magenta": (255, 0, 255), "cyan": (0, 255, 255), "grey": (128, 128, 128),
}


def name_of(rgb):
    best, dist = None, None
    for name, ref in NAMES.items():
        d = sum((a - b) ** 2 for a, b in zip(rgb, ref)) ** 0.5
        if dist is None or d < dist:
            best, dist = name, d
    return best if dist < 90 else "other(%d,%d,%d)" % rgb


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "exif-orient":
        cmd_exif_orient(*args)
    elif cmd == "exif-gps":
        cmd_exif_gps(*args)
    elif cmd == "icc":
        open(args[0], "wb").write(icc_profile())
    elif cmd == "png-alpha":
        cmd_png_alpha(*args)
    elif cmd == "png-bomb":
        cmd_png_bomb(*args)
    elif cmd == "rgb":
        print("%d %d %d" % rgb_at(pixels(args[0]), int(args[1]), int(args[2])))
    elif cmd == "colour":
        print(name_of(rgb_at(pixels(args[0]), int(args[1]), int(args[2]))))
    elif cmd == "quads":
        img = pixels(args[0])
        w, h = img[0], img[1]
        pts = [(w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4),
               (3 * w // 4, 3 * h // 4)]
        print(" ".join(name_of(rgb_at(img, x, y)) for x, y in pts))
    elif cmd == "meta":
        print(meta(open(args[0], "rb").read()))
    elif cmd == "icc-sha":
        icc = embedded_icc(open(args[0], "rb").read())
        print(hashlib.sha256(icc).hexdigest() if icc else "none")
    elif cmd == "jpeg-info":
        print(jpeg_info(open(args[0], "rb").read()))
    elif cmd == "alpha":
        print("yes" if alpha(open(args[0], "rb").read()) else "no")
    else:
        raise SystemExit("unknown command %r\n%s" % (cmd, __doc__))


if __name__ == "__main__":
    main(sys.argv)
