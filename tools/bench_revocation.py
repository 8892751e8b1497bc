#!/usr/bin/env python3
"""Benchmark: the cost of revocation freshness (tools/bench --revocation).

    tools/bench --revocation [--runs N] [--sample] [--tsuku BIN] [--keep]

What a `tsuku show NAME` costs a client that synced within its recipe TTL (24 h), on a SeaweedFS
bucket on loopback holding the content tools/bench publishes (the corpus tip, or the sample):

  not due        the last revocation check younger than TSUKU_REVOCATION_TTL (1 h): no request
  due, 304       the last check older than the TTL (the home's cache/meta.json moved back 2 h),
                 nothing published since: one conditional read of index.json, answered 304
  due, revoked   the same, after `registry revoke` of the recipe shown: the conditional read, the
                 new index verified and taken (its revocation list fetched, the blob purged), and
                 `show` refuses with exit 4
  due, down      the check due with the bucket's endpoint closed: the cached recipe, one warning

Requests are counted at the server (the counting proxy). Prints a table (median of N, min-max).
Exit 0 measured, 1 a step failed.
"""
import hashlib
import json
import os
import statistics
import time

import bench_mirror  # new_registry, beside this file


def age_check(home, seconds=7200):
    """Moves the home's last confirmation (its last revocation check) `seconds` back."""
    path = home + "/cache/meta.json"
    meta = json.load(open(path))
    meta["confirmed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))
    with open(path, "w") as f:
        json.dump(meta, f)


def recipe_files(root):
    for d, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            if f.endswith(".toml"):
                yield os.path.join(d, f), f[:-5]


def run_revocation(args, work, tsuku, srv, b):
    content = b.prepare_content(args, work, b.load_replay())
    b.log("content: %s" % content["kind"])
    srv.start()
    bench = b.Bench(args, work, tsuku, srv)
    w = work
    k = bench_mirror.new_registry(bench, b, "revo")
    bench.tsuku_run("registry", "publish", "--recipes", w + "/new/recipes", "--critical", w + "/new/critical",
                    "--golden", w + "/new/golden", "--key", k + "index", "--revocation-key", k + "revocation",
                    "--to", bench.url("revo"), "--packs", "always", "--expires-days", "3650")
    # Recipes to show (and, one per run, to revoke): community recipes, in path order.
    names = list(recipe_files(w + "/new/recipes"))[: args.runs + 1]
    if len(names) < args.runs + 1:
        raise b.Failure("the content has fewer than %d recipes" % (args.runs + 1))
    kept = names[-1][1]
    home = bench.new_home("revo", proxied=True)
    bench.tsuku_run("update-registry", home=home)
    bench.tsuku_run("show", kept, home=home)

    cases = ("not due", "due, 304", "due, revoked", "due, down")
    times = {c: [] for c in cases}
    requests = {c: [] for c in cases}

    def show(case, name, expect, env=None):
        srv.reset()
        cmd, e = bench.t("show", name, home=home, env=env)
        t0 = time.perf_counter()
        p = b.run(cmd, env=e, check=False)
        times[case].append(time.perf_counter() - t0)
        requests[case].append(srv.count())
        if p.returncode != expect:
            raise b.Failure("%s: show %s exited %d, expected %d: %s" % (
                case, name, p.returncode, expect, p.stderr.decode(errors="replace")[-300:]))
        return p

    for i in range(args.runs):
        path, name = names[i]
        bench.tsuku_run("show", name, home=home)  # cached, and the check just renewed
        show("not due", name, 0)
        age_check(home)
        show("due, 304", name, 0)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        bench.tsuku_run("registry", "revoke", digest, "--reason", "bench run %d" % i, "--key", k + "revocation",
                        "--to", bench.url("revo"), "--expires-days", "3650")
        age_check(home)
        p = show("due, revoked", name, 4)
        if b"is revoked: bench run" not in p.stderr:
            raise b.Failure("show of a revoked recipe did not say why: %s" % p.stderr[-300:])
        age_check(home)
        closed = {"TSUKU_SOURCES": "s3://bench/revo?endpoint=http://127.0.0.1:9&region=us-east-1"}
        p = show("due, down", kept, 0, env=closed)
        if p.stderr.count(b"warning: revocations last checked") != 1:
            raise b.Failure("show with the bucket down did not warn once: %s" % p.stderr[-300:])
    print(table(content, times, requests, args.runs))
    return 0


def table(content, times, requests, runs):
    def row(case, what):
        xs = [x * 1000 for x in times[case]]
        rs = requests[case]
        return "| %s | %.1f (%.1f-%.1f) | %s |" % (
            what, statistics.median(xs), min(xs), max(xs),
            rs[0] if min(rs) == max(rs) else "%d-%d" % (min(rs), max(rs)))
    return "\n".join([
        "## revocation freshness (tools/bench --revocation)",
        "",
        "Content: %s, published with packs to a SeaweedFS bucket on loopback; a client synced within its"
        " recipe TTL; %d run(s) of `tsuku show NAME` per case." % (content["kind"], runs),
        "",
        "| case | median ms (min-max) | requests |",
        "|---|---|---|",
        row("not due", "revocation check not due (checked < TSUKU_REVOCATION_TTL ago)"),
        row("due, 304", "check due, nothing new (conditional index.json, 304)"),
        row("due, revoked", "check due, the recipe revoked since (new index taken, blob purged, exit 4)"),
        row("due, down", "check due, bucket unreachable (cached recipe + one warning)"),
    ])
