#!/usr/bin/env python3
"""soakmix.py - a mixed request load for the soak tests, and its checking.

A test describes the kinds of request in its mix in a menu file, one block
a kind; this script turns the menu into curl configurations (curl
--parallel -K) batch by batch, and then checks every answer curl wrote
down against what its kind must get. Used by t0410-soak-mixed.sh (two
lighttpd pools, moto and fakes3.py) and t0180-valgrind.sh.

Menu:

    [hit-webp]                 the kind's name (letters, digits, '-')
    weight = 150               requests of this kind in every 1000
    server = main              the pool that answers it (counts per pool)
    status = 200               the status each one must get
    x-cache = hit              the X-Cache it must carry (absent: none)
    size = 1234                its body must have this many bytes (optional)
    method = GET               GET (default), HEAD or any other method
    data = x                   a request body (optional)
    url = http://127.0.0.1:8080/dev/thumb.jpg?w={w}&h={h}
    header = X-API-Key: ...    any number of them

In url and header, {n} is the request's number (from 0), {k} its number
among the requests of its kind (from 0), and {w} {h} two sizes from 1 to
400 that together differ for every n below 160,000 (ever-new derivatives:
each such request really decodes). Both sweep their whole range within
every 400 requests, so the sizes made do not drift as a run goes on (a
box that grew with n made the heap's high-water mark, and so VmRSS, grow
with it until the box stopped mattering).

Which kind the n-th request is comes from a fixed order of 1000 slots,
repeated, that holds each kind `weight` times spread evenly (see
schedule): every 1000 requests from a multiple of 1000 hold exactly
`weight` of each kind, and any shorter run close to its share. The weights
add up to 1000.

curl writes one line per request: "KIND N STATUS BYTES [X-CACHE] SECONDS".

usage:
  soakmix.py config MENU FROM TO    curl config for requests FROM..TO-1
  soakmix.py counts MENU TOTAL      "KIND COUNT" for requests 0..TOTAL-1
  soakmix.py check MENU TOTAL RESULTS SUMMARY
        checks the result lines for requests 0..TOTAL-1; prints a report
        (one line a kind, then up to 20 wrong answers) and writes SUMMARY,
        shell assignments: answered, missing, wrong, n5xx (5xx answers),
        and per pool POOL_requests and the status counts POOL_status
        ("200:9000 404:120 ..."); exit status 1 when anything is wrong.
"""

import random
import re
import sys

SLOTS = 1000


def load_menu(path):
    kinds, cur = [], None
    for lineno, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = raw.strip()
        if not line or line.startswith(";") or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9-]+)\]", line)
        if m:
            cur = {"name": m.group(1), "weight": 0, "server": "main", "status": "200",
                   "x-cache": "", "size": None, "method": "GET", "data": None,
                   "url": None, "header": []}
            kinds.append(cur)
            continue
        k, sep, v = line.partition("=")
        k, v = k.strip(), v.strip()
        if not sep or cur is None or k not in cur or k == "name":
            sys.exit("%s:%d: unexpected line: %s" % (path, lineno, line))
        if k == "header":
            cur["header"].append(v)
        elif k == "weight":
            cur["weight"] = int(v)
        else:
            cur[k] = v
    total = sum(k["weight"] for k in kinds)
    if total != SLOTS:
        sys.exit("%s: weights add up to %d, not %d" % (path, total, SLOTS))
    for k in kinds:
        if not k["url"]:
            sys.exit("%s: kind %s has no url" % (path, k["name"]))
    return kinds


def schedule(kinds):
    """The kind index of each of the 1000 slots, and each slot's rank among
    the slots of its kind. A kind of weight w takes w slots spread evenly
    over the 1000, from a random start (seeded): mixed, and any first L
    requests hold close to L * w / 1000 of it, so that a short run (under
    valgrind) has every kind of weight 4 or more."""
    rnd = random.Random(20261125)
    spots = []
    for i, k in enumerate(kinds):
        start = rnd.random()
        spots += [((j + start) * SLOTS / k["weight"], rnd.random(), i)
                  for j in range(k["weight"])]
    slots = [i for _, _, i in sorted(spots)]
    rank, seen = [], {}
    for i in slots:
        rank.append(seen.get(i, 0))
        seen[i] = seen.get(i, 0) + 1
    return slots, rank


def fill(template, kind, n, k):
    return (template.replace("{n}", str(n)).replace("{k}", str(k))
            .replace("{w}", str(1 + n % 400)).replace("{h}", str(1 + (n // 400 + n) % 400)))


def quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def config(kinds, first, end):
    slots, rank = schedule(kinds)
    out = []
    for n in range(first, end):
        i = slots[n % SLOTS]
        kind = kinds[i]
        k = n // SLOTS * kind["weight"] + rank[n % SLOTS]
        out.append("url = %s" % quote(fill(kind["url"], kind, n, k)))
        out.append('output = "/dev/null"')
        out.append("max-time = 60")
        # Per transfer: curl 7.88 shows the --parallel meter despite -s.
        out.append("no-progress-meter")
        out.append("write-out = %s" % quote(
            "%s %d %%{http_code} %%{size_download} [%%header{x-cache}] %%{time_total}\\n"
            % (kind["name"], n)))
        if kind["method"] == "HEAD":
            out.append("head")
        elif kind["method"] != "GET":
            out.append("request = %s" % quote(kind["method"]))
        if kind["data"] is not None:
            out.append("data-binary = %s" % quote(kind["data"]))
        for h in kind["header"]:
            out.append("header = %s" % quote(fill(h, kind, n, k)))
        out.append("next")
    # A "next" with nothing after it would be an empty transfer, which
    # curl --parallel reports as a failure that aborts all the others.
    sys.stdout.write("\n".join(out[:-1]) + "\n")


def counts(kinds, total):
    slots, _ = schedule(kinds)
    c = [0] * len(kinds)
    for n in range(total):
        c[slots[n % SLOTS]] += 1
    return c


def check(kinds, total, results, summary):
    by_name = {k["name"]: k for k in kinds}
    slots, _ = schedule(kinds)
    seen = {}
    wrong = []
    stats = {k["name"]: {"n": 0, "bad": 0, "secs": [], "codes": {}} for k in kinds}
    pools = {}
    n5xx = 0
    pat = re.compile(r"(\S+) (\d+) (\d{3}) (\d+) \[([^]]*)\] ([0-9.]+)")
    for line in open(results, encoding="utf-8", errors="replace"):
        m = pat.fullmatch(line.rstrip("\n"))
        if not m:
            wrong.append("unreadable result line: %r" % line[:120])
            continue
        name, n, code, size, xcache, secs = m.groups()
        n = int(n)
        kind = by_name.get(name)
        if kind is None or n >= total or kinds[slots[n % SLOTS]] is not kind:
            wrong.append("result for a request not sent: %r" % line.strip())
            continue
        if n in seen:
            wrong.append("request %d answered twice" % n)
            continue
        seen[n] = True
        st = stats[name]
        st["n"] += 1
        st["secs"].append(float(secs))
        st["codes"][code] = st["codes"].get(code, 0) + 1
        pool = pools.setdefault(kind["server"], {})
        pool[code] = pool.get(code, 0) + 1
        if code.startswith("5"):
            n5xx += 1
        why = []
        if code != kind["status"]:
            why.append("status %s, expected %s" % (code, kind["status"]))
        if xcache.strip() != kind["x-cache"]:
            why.append("X-Cache '%s', expected '%s'" % (xcache.strip(), kind["x-cache"]))
        if kind["size"] is not None and size != kind["size"]:
            why.append("%s bytes, expected %s" % (size, kind["size"]))
        if why:
            st["bad"] += 1
            wrong.append("%s #%d: %s" % (name, n, "; ".join(why)))
    missing = total - len(seen)
    print("%-16s %6s %6s %7s %8s %8s  %s" %
          ("kind", "count", "wrong", "status", "mean_ms", "max_ms", "statuses seen"))
    for k in kinds:
        st = stats[k["name"]]
        secs = st["secs"]
        mean = 1000 * sum(secs) / len(secs) if secs else 0
        print("%-16s %6d %6d %7s %8.1f %8.1f  %s" % (
            k["name"], st["n"], st["bad"], k["status"], mean,
            1000 * max(secs) if secs else 0,
            " ".join("%s:%d" % c for c in sorted(st["codes"].items()))))
    for w in wrong[:20]:
        print("WRONG " + w)
    if len(wrong) > 20:
        print("WRONG ... and %d more" % (len(wrong) - 20))
    with open(summary, "w") as f:
        f.write("answered=%d\nmissing=%d\nwrong=%d\nn5xx=%d\n" %
                (len(seen), missing, len(wrong), n5xx))
        for pool, codes in sorted(pools.items()):
            f.write("%s_requests=%d\n" % (pool, sum(codes.values())))
            f.write("%s_status='%s'\n" % (
                pool, " ".join("%s:%d" % c for c in sorted(codes.items()))))
    return 0 if not wrong and not missing else 1


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, kinds = argv[1], load_menu(argv[2])
    if cmd == "config" and len(argv) == 5:
        config(kinds, int(argv[3]), int(argv[4]))
    elif cmd == "counts" and len(argv) == 4:
        for k, c in zip(kinds, counts(kinds, int(argv[3]))):
            print(k["name"], c)
    elif cmd == "check" and len(argv) == 6:
        return check(kinds, int(argv[3]), argv[4], argv[5])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
