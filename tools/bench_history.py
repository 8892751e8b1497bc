#!/usr/bin/env python3
"""Benchmark: update-registry from a git repository whose history is crafted against the history
map (tools/gen-crafted-history: N commits sharing one timestamp, each growing one fan-out folder,
and the tree blob taken out of the tip so the client must look for it in history).

    tools/bench --history 2000,8000 [--tsuku BIN] [--baseline BIN] [--data DIR] [--runs R]
    tools/bench_history.py --counts 2000,8000 [--tsuku BIN] [--baseline BIN] [--data DIR] [--runs R]

For each N: the repository (kept in DIR/crafted-history-N, default ../bench-data, so a re-run
reuses it), then per binary R runs (default 1) of `tsuku update-registry` in a fresh TSUKU_HOME
under /usr/bin/time: exit status, peak RSS ("Maximum resident set size") and elapsed time (the
median of the runs). It prints one row per N and binary, then per binary the time ratio between
the largest and the smallest N next to the ratio of the commit counts (a walk linear in the
commits keeps the first at or below the second), and the goal: peak RSS under 64 MB at the
largest N. Writes nothing. Exit: 0 measured, 1 a step failed, 64 bad arguments.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RSS_GOAL_KB = 64 * 1024


class Failure(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ensure_repo(data, n, tsuku):
    out = os.path.join(data, "crafted-history-%d" % n)
    if os.path.exists(out + "/url") and os.path.exists(out + "/root.json"):
        return out
    log("generating %d crafted commits in %s (tools/gen-crafted-history)" % (n, out))
    p = subprocess.run([HERE + "/tools/gen-crafted-history", "--commits", str(n), "--out", out, "--tsuku", tsuku,
                        "--force"], capture_output=True)
    if p.returncode != 0:
        raise Failure("gen-crafted-history --commits %d failed: %s" % (n, p.stderr.decode(errors="replace").strip()))
    return out


def one_run(binary, repo):
    """(exit status, peak RSS in KiB, seconds) of update-registry in a fresh home."""
    with tempfile.TemporaryDirectory(prefix="tsuku-bench-history-") as home:
        env = dict(os.environ, TSUKU_HOME=home)
        with open(repo + "/url") as f:
            url = f.read().strip()
        p = subprocess.run([binary, "init", "--root", repo + "/root.json", "--source", url], env=env,
                           capture_output=True)
        if p.returncode != 0:
            raise Failure("tsuku init failed: %s" % p.stderr.decode(errors="replace").strip())
        out = home + "/time.txt"
        p = subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", out, binary, "update-registry"], env=env,
                           capture_output=True)
        with open(out) as f:
            kb, secs = f.read().strip().splitlines()[-1].split()
        return p.returncode, int(kb), float(secs), p.stderr.decode(errors="replace").strip().splitlines()[-1:]


def run(counts, binaries, data, runs):
    """Measures and prints; returns the rows (n, name, exit, kb, seconds)."""
    rows = []
    for n in counts:
        repo = ensure_repo(data, n, binaries[0][1])
        for name, binary in binaries:
            results = [one_run(binary, repo) for _ in range(runs)]
            code = results[-1][0]
            kb = max(r[1] for r in results)
            secs = statistics.median(r[2] for r in results)
            rows.append((n, name, code, kb, secs))
            note = "" if code == 0 else "  (%s)" % " ".join(results[-1][3])[:160]
            print("%6d commits  %-12s exit %d  peak RSS %7.1f MB  %7.2f s%s" % (n, name, code, kb / 1024, secs, note),
                  flush=True)
    lo, hi = min(counts), max(counts)
    for name, _ in binaries:
        t = {n: s for n, who, _, _, s in rows if who == name}
        m = {n: kb for n, who, _, kb, _ in rows if who == name}
        if lo != hi:
            r = t[hi] / t[lo] if t[lo] > 0 else float("inf")
            print("%-12s time %d/%d commits: x%.2f (commits x%.2f)  peak RSS at %d: %.1f MB (goal < 64 MB: %s)" % (
                name, hi, lo, r, hi / lo, hi, m[hi] / 1024, "met" if m[hi] < RSS_GOAL_KB else "missed"))
    return rows


def parse_counts(text):
    counts = sorted({int(x) for x in text.split(",") if x.strip()})
    if not counts or counts[0] < 1:
        raise ValueError("--history/--counts: commit counts like 2000,8000")
    return counts


def default_tsuku():
    for p in (HERE + "/.build-release/release/tsuku", HERE + "/.build/release/tsuku", HERE + "/.build/debug/tsuku"):
        if os.access(p, os.X_OK):
            return p
    raise Failure("no tsuku binary: build one or pass --tsuku")


def main_with(counts, tsuku, baseline, data, runs):
    try:
        binaries = [("tsuku", os.path.abspath(tsuku or default_tsuku()))]
        if baseline:
            binaries.append(("tsuku-base", os.path.abspath(baseline)))
        if not os.access("/usr/bin/time", os.X_OK):
            raise Failure("/usr/bin/time is missing (apt-get install time)")
        os.makedirs(data, exist_ok=True)
        run(counts, binaries, os.path.abspath(data), runs)
    except Failure as e:
        log("bench-history: %s" % e)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(prog="bench_history.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="2000,8000", help="crafted commit counts (default 2000,8000)")
    ap.add_argument("--tsuku", help="the tsuku binary (default: this checkout's release build)")
    ap.add_argument("--baseline", help="a second binary measured on the same repositories")
    ap.add_argument("--data", default=os.environ.get("TSUKU_BENCH_DATA") or os.path.join(os.path.dirname(HERE),
                                                                                         "bench-data"))
    ap.add_argument("--runs", type=int, default=1, help="runs per binary and count (median time, max RSS)")
    a = ap.parse_args()
    try:
        counts = parse_counts(a.counts)
    except ValueError as e:
        ap.error(str(e))
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    return main_with(counts, a.tsuku, a.baseline, a.data, a.runs)


if __name__ == "__main__":
    sys.exit(main())
