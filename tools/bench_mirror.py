#!/usr/bin/env python3
"""Benchmark: `tsuku registry mirror` out of a SeaweedFS bucket against `aws s3 sync` and
`rclone sync --transfers 16` copying the same bucket (tools/bench --mirror).

    tools/bench --mirror [--runs N] [--peer-runs N] [--sample] [--tsuku BIN] [--keep]

The content is what tools/bench publishes: the tip of ../shared/corpus filtered as
tools/replay-corpus filters it (without the corpus, or with --sample, the registry-index
sample), published with `registry publish --packs always` to s3://bench/reg. Then, the runs of
the tools interleaved so background load hits them alike:

  mirror -> dir   tsuku registry mirror --from s3://bench/reg --to DIR      (an empty folder each run)
  mirror -> git   tsuku registry mirror --from s3://bench/reg --to git+file://REPO (an empty bare repository)
  mirror no-op    the same command again into the last folder (copies nothing)
  aws s3 sync     aws s3 sync s3://bench/reg DIR                           (an empty folder)
  rclone sync     rclone sync --transfers 16 SW:bench/reg DIR              (an empty folder)
  ... (tmpfs)     mirror -> dir and rclone sync again into folders in /dev/shm, when there is one:
                  the tools without the disk (file creation and flushes on a shared disk dominate
                  a copy of a few thousand small files; the ratio is given for both)

Request counts come from one more run of each through the counting proxy (server side). The
copies are checked: `registry status` over the bucket, the mirrored folder and the repository
must agree, and the peers' folders must hold the same files as the mirrored folder. Prints a
table of median times (min-max), requests and the ratio against rclone; writes nothing.
Exit: 0 measured (whatever the goal says), 1 a step failed.
"""
import filecmp
import json
import os
import statistics
import time

GOAL = 10.0  # mirror -> dir at least this many times faster than rclone sync --transfers 16


def new_registry(bench, b, prefix):
    """Test keys in WORK/keys and root version 1 in s3://bench/PREFIX (bucket made here), its
    root saved as WORK/root-PREFIX.json. Returns the keys folder (ends with '/')."""
    w, k, srv = bench.work, bench.work + "/keys/", bench.srv
    b.run(b.s3("PUT", srv.endpoint, "/bench"))
    os.makedirs(w + "/keys")
    for role in ("root", "index", "revocation"):
        bench.tsuku_run("registry", "keygen", "--out", k + role, "--note", "TEST KEY (tools/bench)")
    bench.tsuku_run("registry", "init", "--to", bench.url(prefix), "--root-key", k + "root.pub", "--index-key",
                    k + "index.pub", "--revocation-key", k + "revocation.pub", "--sign", k + "root",
                    "--expires-days", "3650")
    b.run(b.s3("GET", srv.endpoint, "/bench/%s/root/1.root.json" % prefix, out="%s/root-%s.json" % (w, prefix)))
    return k


def run_mirror(args, work, tsuku, srv, b):
    """`b` is tools/bench itself (its helpers: run, timed, log, Failure, prepare_content, ...)."""
    content = b.prepare_content(args, work, b.load_replay())
    b.log("content: %s (%s)" % (content["kind"], content.get("why", content["new"].get("commit"))))
    srv.start()
    b.log("SeaweedFS on %s, counting proxy on %s, work folder %s" % (srv.endpoint, srv.proxied, work))
    bench = b.Bench(args, work, tsuku, srv)
    w = work
    k = new_registry(bench, b, "reg")
    p = bench.tsuku_run("registry", "publish", "--recipes", w + "/new/recipes", "--critical", w + "/new/critical",
                        "--golden", w + "/new/golden", "--key", k + "index", "--revocation-key", k + "revocation",
                        "--to", bench.url("reg"), "--packs", "always", "--expires-days", "3650")
    b.log(p.stdout.decode().strip())

    times, requests, reports = {}, {}, {}

    def mirror(target, proxied=False, as_json=True):
        return bench.t("registry", "mirror", "--from", bench.url("reg", proxied), "--to", target,
                       *(["--json"] if as_json else []))

    def fresh_git():
        repo = bench.fresh("git") + ".git"
        b.run(["git", "init", "-q", "--bare", "-b", "main", repo])
        return "git+file://%s?dir=store" % repo

    def timed(case, cmdenv):
        s, p = b.timed(cmdenv[0], env=cmdenv[1])
        times.setdefault(case, []).append(s)
        return p

    # The same copies into memory (tmpfs), when there is one: the tools without the disk, whose
    # file creations and flush (the mirror's one syncfs waits for every dirty page of the file
    # system, other processes' too) dominate a copy this small on a busy machine.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    shm_dirs = []

    def in_memory(what):
        d = "%s/tsuku-bench-%d-%s-%d" % (shm, os.getpid(), what, len(shm_dirs))
        shm_dirs.append(d)
        return d

    def peers(i):
        if i >= args.peer_runs:
            return
        bench.peer("aws", "aws", bench.aws("s3://bench/reg/", bench.fresh("aws")))
        bench.peer("rclone", "rclone", (["rclone", "sync", "--transfers", "16", "sw:bench/reg", bench.fresh("rclone")],
                                        bench.penv))
        if shm:
            bench.peer("rclone (tmpfs)", "rclone", (["rclone", "sync", "--transfers", "16", "sw:bench/reg",
                                                     in_memory("rclone")], bench.penv))
        for case, tool in (("aws", "aws"), ("rclone", "rclone"), ("rclone (tmpfs)", "rclone")):
            if (case, tool) in bench.times:
                times[case] = bench.times[(case, tool)]

    b.log("mirror: %d tsuku runs, %d of each peer" % (args.runs, args.peer_runs))
    last_dir = None
    for i in range(max(args.runs, args.peer_runs)):
        if i < args.runs:
            last_dir = bench.fresh("mirror")
            reports["dir"] = json.loads(timed("mirror -> dir", mirror(last_dir)).stdout)
            reports["git"] = json.loads(timed("mirror -> git", mirror(fresh_git())).stdout)
            reports["noop"] = json.loads(timed("mirror no-op", mirror(last_dir)).stdout)
            if shm:
                timed("mirror -> dir (tmpfs)", mirror(in_memory("mirror")))
        peers(i)
    for d in shm_dirs:
        b.run(["rm", "-rf", d])

    # Requests: one more run of each through the proxy.
    proxied_dir = bench.fresh("mirror-proxied")
    for case, target in (("mirror -> dir", proxied_dir), ("mirror -> git", fresh_git()), ("mirror no-op", proxied_dir)):
        srv.reset()
        cmd, env = mirror(target, proxied=True)
        b.run(cmd, env=env)
        requests[case] = srv.count()
    aws_dir, rclone_dir = bench.fresh("aws-proxied"), bench.fresh("rclone-proxied")
    bench.peer("aws", "aws", bench.aws("s3://bench/reg/", aws_dir, True), count=True)
    bench.peer("rclone", "rclone", (["rclone", "sync", "--transfers", "16", "swp:bench/reg", rclone_dir], bench.penv),
               count=True)
    for tool in ("aws", "rclone"):
        if (tool, tool) in bench.requests:
            requests[tool] = bench.requests[(tool, tool)]

    # The copies: the mirror's verify and agree; the peers hold the same files.
    git = fresh_git()
    cmd, env = mirror(git, as_json=False)
    b.run(cmd, env=env)
    cmd, env = bench.t("registry", "status", "--root", w + "/root-reg.json", "--to", bench.url("reg"), "--to", last_dir,
                       "--to", git)
    b.run(cmd, env=env)
    notes = []
    for tool, d in (("aws", aws_dir), ("rclone", rclone_dir)):
        if tool in bench.failed:
            notes.append("%s failed: %s" % (tool, bench.failed[tool]))
            continue
        # The mirror's folder also holds the directory store's lock file (.lock).
        want = {r: p for r, p in b.files_of(last_dir).items() if r != ".lock"}
        got = b.files_of(d)
        bad = [r for r in want if r not in got or not filecmp.cmp(want[r], got[r], shallow=False)]
        extra = [r for r in got if r not in want]
        if bad or extra:
            notes.append("%s: %d files missing or different, %d more than the mirror's (e.g. %s)" % (
                tool, len(bad), len(extra), (bad + extra)[0]))
    print(table(content, reports, times, requests, notes))
    return 0


def med(xs):
    return statistics.median(xs) if xs else None


def table(content, reports, times, requests, notes):
    d = reports["dir"]
    rclone = med(times.get("rclone", []))
    lines = [
        "## registry mirror (tools/bench --mirror)",
        "",
        "Content: %s; index version %d, %d pinned blobs (%.1f MB), %d packs fetched by a cold mirror (%d objects, %.1f MB)." % (
            content["kind"] + (" at " + content["new"]["commit"] if content["kind"] == "corpus" else ""),
            d["index_version"], d["pinned_objects"], d["pinned_bytes"] / 1e6, d["fetched_packs"], d["fetched_objects"],
            d["fetched_bytes"] / 1e6),
        "",
        "| case | median s (min-max) | requests | vs rclone sync --transfers 16 |",
        "|---|---|---|---|",
    ]
    for case in ("mirror -> dir", "mirror -> git", "mirror no-op", "aws", "rclone", "mirror -> dir (tmpfs)",
                 "rclone (tmpfs)"):
        xs = times.get(case, [])
        name = {"aws": "aws s3 sync", "rclone": "rclone sync --transfers 16",
                "rclone (tmpfs)": "rclone sync --transfers 16 (tmpfs)"}.get(case, "tsuku registry " + case)
        if not xs and case.endswith("(tmpfs)"):
            continue
        if not xs:
            lines.append("| %s | failed | | |" % name)
            continue
        ratio = ""
        base = med(times.get("rclone (tmpfs)", [])) if case.endswith("(tmpfs)") else rclone
        if base and not case.startswith("rclone"):
            r = base / med(xs)
            ratio = "%.1fx faster" % r if r >= 1 else "%.1fx slower" % (1 / r)
        lines.append("| %s | %.3f (%.3f-%.3f) | %s | %s |" % (name, med(xs), min(xs), max(xs), requests.get(case, "?"), ratio))
    if rclone and times.get("mirror -> dir"):
        r = rclone / med(times["mirror -> dir"])
        lines += ["", "Goal: mirror -> dir at least %.0fx faster than rclone sync --transfers 16: %.1fx, %s." % (
            GOAL, r, "met" if r >= GOAL else "NOT met")]
        if times.get("mirror -> dir (tmpfs)") and times.get("rclone (tmpfs)"):
            r = med(times["rclone (tmpfs)"]) / med(times["mirror -> dir (tmpfs)"])
            lines += ["Both into tmpfs (/dev/shm): %.1fx, %s." % (r, "met" if r >= GOAL else "NOT met")]
    lines += ["", "A second run copied %d blobs." % sum(t["objects_copied"] for t in reports["noop"]["targets"])]
    lines += ["note: " + n for n in notes]
    return "\n".join(lines)
