#!/usr/bin/env python3
"""report.py - bench/run's report: the KEY=VALUE lines the run collected
(VALS) become one markdown text, printed and written to OUT.

Rows are named SCENARIO.lLATENCY.cCONNS (miss2.l20.c64: the 2 MP resize
miss against the origin with a 20 ms first-byte delay, wrk -c64); each has
rps, p50, p99, cpu, rss, bytes, errors and notes. The targets are ratios of
rows of the same run.

usage: report.py VALS OUT
"""
import sys

vals = {}
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if "=" in line:
        k, v = line.split("=", 1)
        vals[k] = v


def f(key, default=None):
    try:
        return float(vals[key])
    except (KeyError, ValueError):
        return default


def fmt(x, digits=1):
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


latencies = vals.get("run.latencies", "0 20").split()
conns = vals.get("run.conns", "16 64").split()
first_lat, first_c = vals.get("run.first_latency"), vals.get("run.first_conns")
mix_lat = vals.get("run.mix_latency", "none")
top_c = "64" if "64" in conns else conns[-1]
deadline = f("run.s3_deadline_ms", 10000)

ROWS = [
    ("miss2", "imgsvc: resize miss, 2 MP → 400 px JPEG, cache off"),
    ("miss12", "imgsvc: resize miss, 12 MP → 400 px JPEG, cache off"),
    ("sharp2", "ref: sharp server, fetch 2 MP + 400 px"),
    ("sharp12", "ref: sharp server, fetch 12 MP + 400 px"),
    ("ipx2", "ref: ipx 3, fetch 2 MP + 400 px"),
    ("ipx12", "ref: ipx 3, fetch 12 MP + 400 px"),
    ("hit", "imgsvc: derivative cache hit, 2 MP → 400 px, cache on, warm"),
    ("pass", "imgsvc: original passthrough, 2 MP (1.2 MB)"),
    ("proxyhit", "ref: nginx reverse proxy of the origin, the derivative"),
    ("proxyorig", "ref: nginx reverse proxy of the origin, the 2 MP original"),
    ("originhit", "ref: wrk straight at the origin, the derivative"),
    ("originorig", "ref: wrk straight at the origin, the 2 MP original"),
    ("imagefilter12", "ref: nginx image_filter, proxy 12 MP + 400 px"),
    ("static400", "ref: lighttpd static, the derivative's bytes"),
    ("staticorig", "ref: lighttpd static, the 2 MP original"),
]
IMGSVC = {"miss2", "miss12", "hit", "pass"}
WHO = {"miss2": "imgsvc", "miss12": "imgsvc", "hit": "imgsvc", "pass": "imgsvc", "sharp2": "node",
       "sharp12": "node", "ipx2": "node", "ipx12": "node", "proxyhit": "nginx workers",
       "proxyorig": "nginx workers", "originhit": "origin", "originorig": "origin",
       "imagefilter12": "nginx workers", "static400": "lighttpd", "staticorig": "lighttpd"}


def rid(scen, lat, c):
    return f"{scen}.l{lat}.c{c}"


def valid(r):
    return r + ".rps" in vals and f(r + ".errors", 0) == 0


def rps(r):
    return f(r + ".rps") if valid(r) else None


out = []
w = out.append
exp = vals.get("run.experiments", "").strip()
w(f"# imgsvc benchmark, {vals.get('run.date', '')}")
w("")
w(f"wrk -t2 -d{vals.get('run.duration')}s --latency per row, at -c" + " and -c".join(conns) +
  "; everything on 127.0.0.1. The S3 origin is bench/origin.c (objects in memory, every answer after "
  "its first-byte delay); imgsvc, sharp, ipx and nginx all fetch from it. imgsvc runs under lighttpd "
  f"with the shipped snippet (max-procs {vals.get('run.procs')}) and the configuration's defaults"
  + ("" if "BENCH_THREADS" in exp else f", threads = {vals.get('run.default_threads')} (etc/imgsvc.ini.sample)")
  + f", [s3] timeout_ms = {int(deadline)}" + (f"; **experiment: {exp}**" if exp else "") + ". "
  "CPU ms/req = utime+stime of the server's own processes (imgsvc workers; node; nginx workers; "
  "the origin; lighttpd) over the run ÷ requests completed; the notes give the front lighttpd, the "
  "origin and the whole machine (all cores: wrk and anything else running included). "
  "RSS = largest VmRSS among those processes after the run. bytes/resp includes headers.")
w("")
for lat in latencies:
    w(f"## Origin first-byte delay {lat} ms")
    w("")
    w("| scenario | conns | req/s | p50 ms | p99 ms | CPU ms/req | RSS MB | bytes/resp | notes |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for scen, label in ROWS:
        for c in conns:
            r = rid(scen, lat, c)
            if r + ".rps" not in vals:
                continue
            notes = []
            if f(r + ".errors", 0):
                notes.append(f"**{int(f(r + '.errors'))} errors**")
            if r + ".note_pids" in vals:
                notes.append(vals[r + ".note_pids"])
            if vals.get(r + ".logmeans", "-") != "-":
                notes.append(vals[r + ".logmeans"])
            if scen in IMGSVC:
                notes.append(f"{int(f(r + '.procs', 0))} imgsvc processes")
            other = []
            if f(r + ".front_cpu") is not None:
                other.append(f"front lighttpd {f(r + '.front_cpu'):.2f}")
            if scen not in ("originhit", "originorig") and f(r + ".origin_cpu") is not None:
                other.append(f"origin {f(r + '.origin_cpu'):.2f}")
            if f(r + ".host_cpu") is not None:
                parts = [".cpu", ".front_cpu"] + ([] if scen.startswith("origin") else [".origin_cpu"])
                rest = f(r + ".host_cpu") - sum(f(r + k, 0) for k in parts)
                other.append(f"whole machine {f(r + '.host_cpu'):.2f} (of which wrk and anything else {rest:.2f})")
            if other:
                notes.append("CPU ms/req: " + ", ".join(other))
            w(f"| {label} | {c} | {fmt(f(r + '.rps'))} | {fmt(f(r + '.p50'), 2)} | {fmt(f(r + '.p99'), 2)} | "
              f"{fmt(f(r + '.cpu'), 2)} ({WHO[scen]}) | {fmt(f(r + '.rss'))} | {int(f(r + '.bytes', 0))} | "
              f"{'; '.join(notes)} |")
    w("")

w("## Floors and single requests")
w("")
w("| measurement | value | notes |")
w("|---|---:|---|")
for gid, label in (("gm2", "GraphicsMagick in-process, 2 MP → 400 px, size hint"),
                   ("gm12", "GraphicsMagick in-process, 12 MP → 400 px, size hint")):
    w(f"| {label} | {fmt(f(gid + '.cpu'), 2)} CPU ms per image | OMP_NUM_THREADS=1, "
      f"{vals.get(gid + '.iter')} iterations, {fmt(f(gid + '.wall'), 2)} ms wall per image, out {vals.get(gid + '.out')} |")
for sid, label in (("hit", "single cache hit (imgsvc, 2 MP → 400 px), one at a time"),
                   ("origin", "single plain GET of the derivative, straight from the origin"),
                   ("proxy", "single plain GET of the derivative, through the nginx proxy")):
    if sid + ".single_p50" in vals:
        bad = int(f(sid + ".single_bad", 0))
        w(f"| {label}, +{mix_lat} ms | p50 {fmt(f(sid + '.single_p50'), 2)} ms | p90 {fmt(f(sid + '.single_p90'), 2)} ms, "
          f"{int(f(sid + '.single_n', 0))} requests" + (f", **{bad} not 200**" if bad else "") + " |")
w("")

results = []


def target(name, num, den, op, goal):
    if num is None or den is None or den == 0:
        w(f"| {name} | — | {op} {goal} | FAIL (missing or errors) |")
        results.append(False)
        return
    r = num / den
    ok = r >= goal if op == "≥" else r <= goal
    results.append(ok)
    w(f"| {name} | {r:.2f} | {op} {goal} | {'PASS' if ok else 'FAIL'} |")


w("## Targets")
w("")
w("| ratio | value | target | result |")
w("|---|---:|---|---|")
for lat in latencies:
    for c in conns:
        for img, mp in (("2", "2 MP"), ("12", "12 MP")):
            refs = [x for x in (rps(rid("sharp" + img, lat, c)), rps(rid("ipx" + img, lat, c))) if x]
            which = ""
            if len(refs) == 2:
                which = " (sharp)" if refs[0] >= refs[1] else " (ipx)"
            target(f"resize miss {mp} → 400 px req/s ÷ the better of sharp and ipx{which}, +{lat} ms, -c{c}",
                   rps(rid("miss" + img, lat, c)), max(refs) if len(refs) == 2 else None, "≥", 1.1)
if mix_lat != "none":
    L = mix_lat
    target(f"cache hit req/s ÷ wrk straight at the origin for the derivative, +{L} ms, -c{top_c}",
           rps(rid("hit", L, top_c)), rps(rid("originhit", L, top_c)), "≥", 0.3)
    target(f"cache hit req/s ÷ nginx proxying the derivative, +{L} ms, -c{top_c}",
           rps(rid("hit", L, top_c)), rps(rid("proxyhit", L, top_c)), "≥", 0.4)
    target(f"passthrough (2 MP original) req/s ÷ wrk straight at the origin for it, +{L} ms, -c{top_c}",
           rps(rid("pass", L, top_c)), rps(rid("originorig", L, top_c)), "≥", 0.25)
for img, mp in (("2", "2 MP"), ("12", "12 MP")):
    r = rid("miss" + img, first_lat, first_c)
    target(f"imgsvc CPU ms per resized image ÷ GraphicsMagick floor, {mp} → 400 px, +{first_lat} ms, -c{first_c}",
           f(r + ".cpu") if valid(r) else None, f("gm" + img + ".cpu"), "≤", 1.10)

# Quality: no speed bought with pixels. imgsvc's 400 px JPEG against the
# reference (bench/reference.js) within 0.5 dB of the better reference server's.
for img, mp in (("photo2mp.jpg", "2 MP"), ("photo12mp.jpg", "12 MP")):
    mine = f(f"psnr.{img}.imgsvc")
    refs = [x for x in (f(f"psnr.{img}.sharp"), f(f"psnr.{img}.ipx")) if x is not None]
    if mine is None or not refs:
        w(f"| PSNR of the 400 px JPEG from {mp} against the reference | — | ≥ the better of sharp and ipx − 0.5 dB | FAIL (missing) |")
        results.append(False)
        continue
    best = max(refs)
    ok = mine >= best - 0.5
    results.append(ok)
    w(f"| PSNR of the 400 px JPEG from {mp} against the reference (libvips, whole decode, Lanczos-3): imgsvc; "
      f"sharp, ipx | {mine:.2f} dB; {', '.join(f'{x:.2f}' for x in refs)} dB | ≥ the better of sharp and ipx − 0.5 dB | "
      f"{'PASS' if ok else 'FAIL'} |")

# The mixed load: memory, failures, deadline.
trace = [tuple(int(x) for x in p.split(":")) for p in vals.get("mix.trace", "").split() if ":" in p]
mix_target = int(f("run.mix_target", 10000))
n_mix = int(f("mix.requests", 0))
if mix_lat == "none" or mix_target == 0:
    w("| mixed load | — | — | not run |")
else:
    scaled = "" if n_mix >= mix_target else f" (only {n_mix} of {mix_target} requests)"
    if len(trace) >= 2:
        peak = max(kb for _, kb in trace) / 1024
        first, last = trace[0][1], trace[-1][1]
        drift = (last - first) / first * 100
        ok = peak <= 200 and abs(drift) <= 10 and n_mix >= mix_target
        results.append(ok)
        w(f"| sum of imgsvc VmRSS under the mixed load, +{L} ms, -c{vals.get('run.mix_conns')}{scaled}: "
          f"peak; from request {trace[0][0]} to {trace[-1][0]} | {peak:.1f} MB; {first/1024:.1f} → {last/1024:.1f} MB "
          f"({drift:+.1f}%) | ≤ 200 MB, flat (±10%) | {'PASS' if ok else 'FAIL'} |")
    else:
        results.append(False)
        w(f"| sum of imgsvc VmRSS under the mixed load | — | ≤ 200 MB, flat | FAIL (too few samples{scaled}) |")
    bad = int(f("mix.wrk_bad", 1)) + int(f("mix.log_bad", 1))
    mx = max(f("mix.max", 0), f("mix.log_max_ms", 0))
    ok = bad == 0 and mx < deadline and n_mix >= mix_target
    results.append(ok)
    w(f"| mixed load: requests failed or over the S3 deadline ({int(deadline)} ms){scaled} | "
      f"{bad} failed; slowest {mx:.0f} ms | 0; < {int(deadline)} ms | {'PASS' if ok else 'FAIL'} |")
    target(f"single cache hit p50 ÷ plain GET of the derivative from the origin p50, +{L} ms",
           f("hit.single_p50") if f("hit.single_bad", 1) == 0 else None,
           f("origin.single_p50") if f("origin.single_bad", 1) == 0 else None, "≤", 1.15)
w("")

# What still fits of issue 5's targets: once, at the first latency and connection count.
w(f"Issue 5's targets that still fit (+{first_lat} ms, -c{first_c}; the passthrough is now the 2 MP original):")
w("")
w("| ratio | value | target | result |")
w("|---|---:|---|---|")
F = lambda s: rid(s, first_lat, first_c)
target("resize miss 12 MP req/s ÷ nginx image_filter req/s", rps(F("miss12")), rps(F("imagefilter12")), "≥", 4)
target("cache hit req/s ÷ lighttpd static derivative req/s", rps(F("hit")), rps(F("static400")), "≥", 0.5)
target("passthrough req/s ÷ lighttpd static 2 MP original req/s", rps(F("pass")), rps(F("staticorig")), "≥", 0.5)
rss = f("rss_after_resizes")
if rss is not None:
    results.append(rss <= 64)
    w(f"| largest imgsvc process VmRSS after the resize misses, MB | {rss:.1f} | ≤ 64 | {'PASS' if rss <= 64 else 'FAIL'} |")
w("")

if mix_lat != "none" and mix_target:
    w(f"Mixed load (+{mix_lat} ms, wrk -t2 -c{vals.get('run.mix_conns')}, cache on; per 20 requests 8 hits, 4 304s, "
      f"3 originals, 3 new derivatives, 2 404s): {vals.get('mix.requests')} answers at {fmt(f('mix.rps'))} req/s, "
      f"p50 {fmt(f('mix.p50'), 2)} ms, p99 {fmt(f('mix.p99'), 2)} ms, max {fmt(f('mix.max'), 2)} ms; "
      f"wrk saw {vals.get('mix.statuses')}; imgsvc logged {vals.get('mix.log_n')} requests "
      f"({vals.get('mix.log_cache', '')}; the ones still in flight when wrk stopped included), "
      f"{vals.get('mix.log_bad')} with an unexpected status, slowest "
      f"{vals.get('mix.log_max_ms')} ms. Sum of imgsvc VmRSS, MB, at request "
      + ", ".join(f"{k}: {kb/1024:.1f}" for k, kb in trace) + ".")
    w("")
w("Output bytes for 400 px: " + "; ".join(
    f"{p}: imgsvc {vals.get('out_bytes.' + p + '.imgsvc')}, sharp {vals.get('out_bytes.' + p + '.sharp')}, "
    f"ipx {vals.get('out_bytes.' + p + '.ipx')}" for p in ("photo2mp.jpg", "photo12mp.jpg")) + ".")
w("")
w(f"Targets met: {sum(results)} of {len(results)}.")
w("")
w("## Machine")
w("")
w(f"- {vals.get('machine.nproc')} cores, {vals.get('machine.cpu')}, {vals.get('machine.mem')}; "
  f"{vals.get('machine.os')}, {vals.get('machine.kernel')}")
w(f"- busy before the run (2 s sample): {vals.get('machine.busy_before')}% of one core — other load on the "
  "machine skews every number")
w(f"- {vals.get('version.imgsvc')}")
w(f"- {vals.get('version.gm')}; {vals.get('version.vips')}; {vals.get('version.ipx')}")
w(f"- nginx {vals.get('version.nginx')}; {vals.get('version.lighttpd')}; wrk {vals.get('version.wrk')}")
w(f"- bench/run took {vals.get('run.elapsed')} s")
text = "\n".join(out) + "\n"
open(sys.argv[2], "w", encoding="utf-8").write(text)
sys.stdout.write(text)
