#!/usr/bin/env python3
"""promparse.py - a strict checker of the Prometheus text exposition format
0.0.4, for tests that cannot count on promtool being installed.

Usage: promparse.py FILE   (- for stdin)

Every line must be empty, a comment, "# HELP name text", "# TYPE name type"
or a sample "name{label="value",...} value [timestamp]" with valid names,
label values escaped as the format says (\\ \" \n only) and valid UTF-8.
On top of the grammar it checks what a scraper relies on: one HELP and one
TYPE per family, TYPE before the family's first sample, a family's lines
together, no series twice, every sample in a TYPEd family (a histogram's
_bucket/_sum/_count included), counters not negative, and per histogram
series: le values increasing and ending with +Inf, cumulative counts that
never decrease, _count equal to the +Inf bucket, and a _sum.

Prints each sample as "name{labels} value" (labels sorted) on stdout and
exits 0; on the first problem prints "LINE N: problem" on stderr, exits 1.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_float(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise Bad("bad number %r" % s)
    return float(s)


def parse_labels(s, i):
    """Parses {a="b",...} starting at s[i] == '{'; returns (dict, next i)."""
    labels = {}
    i += 1
    while True:
        if s[i:i + 1] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise Bad("bad label name at column %d" % (i + 1))
        name = m.group(0)
        if name.startswith("__"):
            raise Bad("reserved label name %r" % name)
        if name in labels:
            raise Bad("label %r twice" % name)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad("expected =\" after label %r" % name)
        i += 2
        value = []
        while True:
            if i >= len(s):
                raise Bad("unterminated label value")
            c = s[i]
            if c == "\\":
                e = s[i + 1:i + 2]
                if e not in ("\\", '"', "n"):
                    raise Bad("bad escape \\%s in label value" % e)
                value.append("\n" if e == "n" else e)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad("raw newline in label value")
            else:
                value.append(c)
                i += 1
        labels[name] = "".join(value)
        if s[i:i + 1] == ",":
            i += 1
        elif s[i:i + 1] != "}":
            raise Bad("expected , or } after label %r" % name)


def family_of(name, types):
    """The family a sample name belongs to (histogram suffixes stripped)."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            if suffix == "_bucket" and types[base] != "histogram":
                continue
            return base
    return None


def check(text):
    helps, types = {}, {}
    seen_series = set()
    done_families = set()
    current = None
    samples = []
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "sum":, "count":}
    try:
        data = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Bad("not UTF-8: %s" % e) from None
    if data and not data.endswith("\n"):
        raise Bad("the last line does not end with a newline")
    for n, line in enumerate(data.split("\n")[:-1], 1):
        try:
            if line == "":
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                        raise Bad("bad metric name in %s" % parts[1])
                    name = parts[2]
                    if parts[1] == "HELP":
                        if name in helps:
                            raise Bad("second HELP for %s" % name)
                        doc = parts[3] if len(parts) > 3 else ""
                        if not re.fullmatch(r"(?:[^\\]|\\[\\n])*", doc):
                            raise Bad("bad escape in HELP text")
                        helps[name] = doc
                    else:
                        if name in types:
                            raise Bad("second TYPE for %s" % name)
                        if len(parts) != 4 or parts[3] not in TYPES:
                            raise Bad("bad TYPE line")
                        if any(family_of(s[0], {name: parts[3]}) == name for s in samples):
                            raise Bad("TYPE for %s after its samples" % name)
                        types[name] = parts[3]
                    if name in done_families:
                        raise Bad("%s's lines are not together" % name)
                    if current != name and current is not None:
                        done_families.add(current)
                    current = name
                continue
            m = NAME.match(line)
            if not m:
                raise Bad("bad metric name")
            name, i = m.group(0), m.end()
            labels = {}
            if line[i:i + 1] == "{":
                labels, i = parse_labels(line, i)
            rest = line[i:]
            if not rest.startswith(" "):
                raise Bad("expected a space before the value")
            fields = rest.split()
            if len(fields) not in (1, 2) or rest != " " + " ".join(fields):
                raise Bad("expected 'value [timestamp]' after the labels")
            value = parse_float(fields[0])
            if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
                raise Bad("bad timestamp")
            fam = family_of(name, types)
            if fam is None:
                raise Bad("sample %s has no TYPE" % name)
            if fam in done_families:
                raise Bad("%s's lines are not together" % fam)
            if current != fam and current is not None:
                done_families.add(current)
            current = fam
            key = (name, tuple(sorted(labels.items())))
            if key in seen_series:
                raise Bad("series %s%s twice" % key)
            seen_series.add(key)
            kind = types[fam]
            if kind == "counter" and not value >= 0:
                raise Bad("counter %s is %s" % (name, fields[0]))
            if kind == "histogram":
                rest_labels = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                h = hist.setdefault((fam, rest_labels), {"buckets": [], "sum": None, "count": None})
                if name == fam + "_bucket":
                    if "le" not in labels:
                        raise Bad("bucket without le")
                    le = parse_float(labels["le"])
                    if h["buckets"] and not le > h["buckets"][-1][0]:
                        raise Bad("le %s not above the previous bucket's" % labels["le"])
                    if h["buckets"] and value < h["buckets"][-1][1]:
                        raise Bad("bucket le=%s below the previous one: not cumulative"
                                  % labels["le"])
                    h["buckets"].append((le, value))
                elif name == fam + "_sum":
                    h["sum"] = value
                elif name == fam + "_count":
                    h["count"] = value
                else:
                    raise Bad("%s in histogram %s" % (name, fam))
            samples.append((name, labels, fields[0]))
        except Bad as e:
            raise Bad("line %d: %s: %r" % (n, e, line)) from None
    for (fam, labels), h in hist.items():
        where = "histogram %s%s" % (fam, dict(labels) or "")
        if not h["buckets"] or h["buckets"][-1][0] != math.inf:
            raise Bad("%s: no +Inf bucket last" % where)
        if h["count"] is None or h["sum"] is None:
            raise Bad("%s: no _count or _sum" % where)
        if h["count"] != h["buckets"][-1][1]:
            raise Bad("%s: _count %s != +Inf bucket %s" % (where, h["count"], h["buckets"][-1][1]))
    for name in types:
        if name not in helps:
            raise Bad("%s has a TYPE but no HELP" % name)
    return samples


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: promparse.py FILE\n")
        return 2
    f = sys.stdin.buffer if sys.argv[1] == "-" else open(sys.argv[1], "rb")
    try:
        samples = check(f.read())
    except Bad as e:
        sys.stderr.write("promparse: %s\n" % e)
        return 1
    for name, labels, value in samples:
        lab = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                       .replace("\n", "\\n"))
                       for k, v in sorted(labels.items()))
        print("%s%s %s" % (name, "{%s}" % lab if lab else "", value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
