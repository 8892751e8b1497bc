#!/usr/bin/env python3
"""Benchmark: the transparency log's cost (tools/bench --log).

    tools/bench --log [--log-versions N] [--log-tier 100k] [--sample] [--tsuku BIN] [--keep]

On SeaweedFS, two registries with the same content, one without a log and one whose root has a
`log` role (every publish appends an entry and writes tiles and a checkpoint, TSUKU_LOG_KEY):

  sync to a new index   a client synced the older revision of the content (tools/bench's
                        work/old), the newer one (work/new) is published, the client syncs:
                        requests and response bytes at the server (the counting proxy), with
                        and without the log; the log's share is the difference between the two
                        (the same content, the same client), and the files the client's log
                        cache holds after it
  no-op sync            the same client again: must stay one request either way
  at --log-tier N       the same at a generated registry of N recipes (tools/gen-registry, its
                        1%-bumped next snapshot as the new index), e.g. 100k
  log size              a directory registry with the log, re-signed --log-versions times (each
                        `registry resign` appends one entry through the real writer): bytes and
                        files under log/, and per entry

Prints a table. Exit 0 measured, 1 a step failed.
"""
import os
import shutil
import time

import bench_mirror  # new_registry, beside this file


def publish(bench, b, k, folder, prefix, env):
    return bench.tsuku_run("registry", "publish", "--recipes", folder + "/recipes", "--critical", folder + "/critical",
                           "--golden", folder + "/golden", "--key", k + "index", "--revocation-key", k + "revocation",
                           "--to", bench.url(prefix), "--packs", "always", "--expires-days", "3650", "--allow-removals",
                           env=env)


def registry(bench, b, k, prefix, log):
    """Root version 1 in s3://bench/PREFIX, with a log role when `log`; its root saved for homes."""
    args = ["registry", "init", "--to", bench.url(prefix), "--root-key", k + "root.pub", "--index-key", k + "index.pub",
            "--revocation-key", k + "revocation.pub", "--sign", k + "root", "--expires-days", "3650"]
    if log:
        args += ["--log-key", k + "log.pub", "--log-origin", "bench.invalid/" + prefix]
    bench.tsuku_run(*args)
    b.run(b.s3("GET", bench.srv.endpoint, "/bench/%s/root/1.root.json" % prefix,
               out="%s/root-%s.json" % (bench.work, prefix)))


def measure(bench, b, k, srv, old, new, prefix, log, api_timeout):
    # The cold sync at 100K reads a pack of gigabytes: the scale runs' network time limit.
    # ... and its cache limit: the 100K registry is 3.3 GB, past the default limit, and a sync
    # into a cache that evicts what it just fetched refetches it blob by blob.
    sync_env = {"TSUKU_API_TIMEOUT": str(api_timeout), "TSUKU_RECIPE_CACHE_SIZE_LIMIT": "10GB"}
    env = dict(sync_env, TSUKU_LOG_KEY=k + "log") if log else sync_env
    registry(bench, b, k, prefix, log)
    publish(bench, b, k, old, prefix, env)
    home = bench.new_home(prefix, proxied=True)
    bench.tsuku_run("update-registry", home=home, env=sync_env)
    publish(bench, b, k, new, prefix, env)
    srv.reset()
    t0 = time.perf_counter()
    bench.tsuku_run("update-registry", home=home, env=sync_env)
    seconds = time.perf_counter() - t0
    out = {"requests": srv.count(), "bytes": srv.bytes(), "seconds": seconds}
    srv.reset()
    bench.tsuku_run("update-registry", home=home, env=sync_env)
    out["noop"] = srv.count()
    if out["noop"] != 1:
        raise b.Failure("a no-op sync of %s made %d requests, expected 1" % (prefix, out["noop"]))
    if log:
        # The log's share: its files as the client read them (the checkpoint and the tiles it
        # cached), summed from the cache it keeps under TSUKU_HOME/log.
        files = [os.path.join(r, f) for r, _, fs in os.walk(home + "/log") for f in fs]
        out["log_bytes_cached"] = sum(os.path.getsize(f) for f in files)
        out["log_files_cached"] = len(files)
    return out


def log_size(bench, b, k, work, content_dir, versions):
    store = work + "/logsize"
    bench.tsuku_run("registry", "init", "--to", store, "--root-key", k + "root.pub", "--index-key", k + "index.pub",
                    "--revocation-key", k + "revocation.pub", "--log-key", k + "log.pub", "--sign", k + "root",
                    "--expires-days", "3650")
    env = {"TSUKU_LOG_KEY": k + "log"}
    bench.tsuku_run("registry", "publish", "--recipes", content_dir + "/recipes", "--critical",
                    content_dir + "/critical", "--golden", content_dir + "/golden", "--key", k + "index",
                    "--revocation-key", k + "revocation", "--to", store, "--expires-days", "3650", env=env)
    t0 = time.perf_counter()
    for _ in range(versions - 1):
        bench.tsuku_run("registry", "resign", "--key", k + "index", "--to", store, "--expires-days", "3650", env=env)
    seconds = time.perf_counter() - t0
    files = [os.path.join(r, f) for r, _, fs in os.walk(store + "/log") for f in fs]
    sizes = {}
    for f in files:
        part = os.path.relpath(f, store + "/log").split("/")[0]
        if part == "tile":
            part = "tile/entries" if "/entries/" in f else "tile/hashes"
        sizes.setdefault(part, [0, 0])
        sizes[part][0] += os.path.getsize(f)
        sizes[part][1] += 1
    return {"versions": versions, "bytes": sum(s[0] for s in sizes.values()), "files": len(files), "parts": sizes,
            "seconds_per_write": seconds / max(1, versions - 1)}


def run_log(args, work, tsuku, srv, b):
    content = b.prepare_content(args, work, b.load_replay())
    b.log("content: %s" % content["kind"])
    srv.start()
    bench = b.Bench(args, work, tsuku, srv)
    k = bench_mirror.new_registry(bench, b, "unused")
    bench.tsuku_run("registry", "keygen", "--out", k + "log", "--note", "TEST KEY (tools/bench)")
    rows = []
    for log in (False, True):
        r = measure(bench, b, k, srv, work + "/old", work + "/new", "log" if log else "nolog", log, args.api_timeout)
        rows.append((content["kind"], log, r))
    if args.log_tier:
        import bench_scale
        n = bench_scale.parse_tiers(args.log_tier)[0]
        gen, nxt, _, _, _, _ = bench_scale.ensure_generated(os.path.abspath(args.data), n, args.seed, os.cpu_count() or 2)
        for log in (False, True):
            r = measure(bench, b, k, srv, gen, nxt, "t%d-%s" % (n, "log" if log else "nolog"), log, args.api_timeout)
            rows.append(("%d generated recipes" % n, log, r))
    size = log_size(bench, b, k, work, work + "/new", args.log_versions)
    print(table(rows, size))
    return 0


def table(rows, size):
    lines = [
        "## transparency log (tools/bench --log)",
        "",
        "A client synced the older revision, the newer one is published, the client syncs (SeaweedFS, counted at",
        "the server); then a no-op sync.",
        "",
        "| content | log | requests | bytes | the log's share (requests, bytes) | log files cached | log bytes cached"
        " | seconds | no-op requests |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    without = {kind: r for kind, log, r in rows if not log}
    for kind, log, r in rows:
        share = "-"
        if log and kind in without:
            share = "+%d, +%d" % (r["requests"] - without[kind]["requests"], r["bytes"] - without[kind]["bytes"])
        lines.append("| %s | %s | %d | %d | %s | %s | %s | %.2f | %d |" % (
            kind, "yes" if log else "no", r["requests"], r["bytes"], share, r.get("log_files_cached", "-"),
            r.get("log_bytes_cached", "-"), r["seconds"], r["noop"]))
    lines += [
        "",
        "Log size after %d published versions (one publish, then re-signs through the real writer): %d bytes in %d "
        "files, %.0f bytes per version; %.2f s per write." % (
            size["versions"], size["bytes"], size["files"], size["bytes"] / size["versions"], size["seconds_per_write"]),
        "",
        "| part | bytes | files |",
        "|---|---|---|",
    ] + ["| %s | %d | %d |" % (p, s[0], s[1]) for p, s in sorted(size["parts"].items())]
    return "\n".join(lines)
