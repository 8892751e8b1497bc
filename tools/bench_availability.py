#!/usr/bin/env python3
"""Benchmark: publish to availability (tools/bench --availability).

    tools/bench --availability [--runs N] [--sample] [--tsuku BIN] [--keep]

What the objective in docs/operations.md ("Publish to availability") is made of, measured on a
SeaweedFS bucket holding the content tools/bench publishes (the corpus tip, or the sample):

  publish        an incremental `registry publish --packs always` that adds one new recipe
  first show     `tsuku show NEW` on a client that synced before the publish and whose last
                 confirmation is older than TSUKU_RECIPE_NEGATIVE_TTL (set to 0 here, so the
                 check is due at once): one conditional read of index.json, the sync of the new
                 index, the recipe; it must succeed
  miss in TTL    `tsuku show NO-SUCH-NAME` twice with the default negative TTL (5m) right after a
                 sync: the second miss must make no request
  miss, down     the same miss past the TTL with the bucket's endpoint closed: the cached "not
                 found" after the check's own 2 s limit, with a warning

Requests are counted at the server (the counting proxy). Prints a table and the objective:
a new name is served within publish + negative TTL + first show. Exit 0 measured, 1 a step failed.
"""
import os
import re
import shutil
import statistics
import time

import bench_mirror  # new_registry, beside this file


def run_availability(args, work, tsuku, srv, b):
    content = b.prepare_content(args, work, b.load_replay())
    b.log("content: %s" % content["kind"])
    srv.start()
    bench = b.Bench(args, work, tsuku, srv)
    w = work
    k = bench_mirror.new_registry(bench, b, "avail")
    recipes = w + "/avail-recipes"
    shutil.copytree(w + "/new/recipes", recipes)

    def publish():
        return b.timed(*bench.t("registry", "publish", "--recipes", recipes, "--critical", w + "/new/critical",
                                "--golden", w + "/new/golden", "--key", k + "index", "--to", bench.url("avail"),
                                "--packs", "always", "--expires-days", "3650"))[0]

    publish()
    # A template recipe for the new names: the first community recipe, renamed.
    template = None
    for root, _, files in sorted(os.walk(recipes)):
        for f in sorted(files):
            if f.endswith(".toml"):
                template = (os.path.join(root, f), f[:-5])
                break
        if template:
            break
    text = open(template[0]).read()

    times = {"publish": [], "first show": [], "miss in TTL": [], "miss, down": []}
    requests = {}
    for i in range(args.runs):
        home = bench.new_home("avail", proxied=True)
        bench.tsuku_run("update-registry", home=home)
        name = "zzavail%d" % i
        os.makedirs(recipes + "/z", exist_ok=True)
        with open(recipes + "/z/%s.toml" % name, "w") as f:
            f.write(re.sub(r'name\s*=\s*"%s"' % re.escape(template[1]), 'name = "%s"' % name, text, count=1))
        times["publish"].append(publish())
        srv.reset()
        s, p = b.timed(*bench.t("show", name, home=home, env={"TSUKU_RECIPE_NEGATIVE_TTL": "0"}))
        times["first show"].append(s)
        requests["first show"] = srv.count()
        if name.encode() not in p.stdout:
            raise b.Failure("show %s did not print the new recipe" % name)
        # Two misses inside the default TTL: the first right after a sync asks nothing either.
        srv.reset()
        for _ in range(2):
            cmd, env = bench.t("show", "no-such-recipe", home=home)
            t0 = time.perf_counter()
            p = b.run(cmd, env=env, check=False)
            times["miss in TTL"].append(time.perf_counter() - t0)
            if p.returncode != 3:
                raise b.Failure("show of a missing name exited %d, expected 3" % p.returncode)
        requests["miss in TTL"] = srv.count()
        # The bucket unreachable (a closed port) and the check due: one warning, the cached answer.
        closed = dict(env, TSUKU_SOURCES="s3://bench/avail?endpoint=http://127.0.0.1:9&region=us-east-1",
                      TSUKU_RECIPE_NEGATIVE_TTL="0")
        t0 = time.perf_counter()
        p = b.run(cmd, env=closed, check=False)
        times["miss, down"].append(time.perf_counter() - t0)
        if p.returncode != 3 or b"warning" not in p.stderr:
            raise b.Failure("a miss with the source down exited %d without a warning: %s" % (p.returncode, p.stderr[-300:]))
    print(table(content, times, requests))
    return 0


def table(content, times, requests):
    def row(case, what):
        xs = times[case]
        return "| %s | %.3f (%.3f-%.3f) | %s |" % (what, statistics.median(xs), min(xs), max(xs), requests.get(case, "-"))
    pub = statistics.median(times["publish"])
    show = statistics.median(times["first show"])
    return "\n".join([
        "## publish to availability (tools/bench --availability)",
        "",
        "Content: %s; each run publishes one new recipe to a SeaweedFS bucket (with packs) and asks a client that"
        " synced before it." % content["kind"],
        "",
        "| step | median s (min-max) | requests |",
        "|---|---|---|",
        row("publish", "incremental publish of one new recipe"),
        row("first show", "first `show NEW` past the negative TTL (conditional index.json + sync)"),
        row("miss in TTL", "`show` of a missing name inside the negative TTL (2 misses)"),
        row("miss, down", "a miss past the TTL, bucket unreachable (cached answer + warning)"),
        "",
        "Objective: a new name is served at most TSUKU_RECIPE_NEGATIVE_TTL (default 300 s) + %.1f s after its publish"
        " starts (publish %.1f s + first show %.1f s, medians); a changed recipe within the cache TTL (24 h)." % (
            pub + show, pub, show),
    ])
