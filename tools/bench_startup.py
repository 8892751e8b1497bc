#!/usr/bin/env python3
"""Benchmark: process start and the cache read path (tools/bench --startup).

    tools/bench --startup [--tiers 1k,100k] [--show-runs N] [--runs N] [--data DIR] [--tsuku BIN] [--baseline BIN]

What a user waits for in `tsuku show NAME` is mostly process start. Measured side by side,
interleaved (each round runs every command once, in a rotating order, so background load hits
them alike), as whole processes (posix_spawn to wait4: wall time, and CPU time, user + system,
which load on the other core inflates less), median of --show-runs (default 40):

  hello (static)      a Swift "hello" importing Foundation, built here with -static-stdlib
  hello (dynamic)     the same built without it
  tsuku --version     process start of tsuku
  tsuku show NAME     a recipe from a synced cache, 20 names spread over the registry
  cat FILE            the same recipe's bytes from the generated registry
  git show REV:PATH   the same blob in the git repository the registry was published to

at each tier (registries from tools/gen-registry, kept in --data; published with `--packs
always` to a bare git repository, a home synced from it). Also: `tsuku verify` over the whole
cache (median of --runs, default 5; warm page cache), peak RSS (/usr/bin/time) of show, info,
verify and a no-op update-registry, the binary's size (and stripped), the shared libraries it
links (ldd) and those the loader maps for `show`, for a sync from git and from SeaweedFS
(LD_DEBUG=files). Goals (issue 19): show at most 3x git show at 1K and 100K; --version at most
2x the static hello; verify at least 1.6 GB/s at 100K; peak RSS of show under 64 MB. The no-op
sync against aws and rclone is in the default benchmark (tools/bench). With --baseline BIN, an
earlier build runs in the same rounds on the same homes (show, --version, verify, peak RSS), so
"nothing else gets worse" is a side-by-side figure. Prints only.
"""
import hashlib
import os
import shutil
import subprocess
import time

import bench_scale as S

HELLO = 'import Foundation\nprint("hello")\n'


def spawn(cmd, env):
    """(wall seconds, CPU seconds: user + system) of one process, its output discarded."""
    path = cmd[0] if os.path.isabs(cmd[0]) else shutil.which(cmd[0], path=env.get("PATH"))
    t = time.perf_counter()
    pid = os.posix_spawn(path, cmd, env, file_actions=[(os.POSIX_SPAWN_DUP2, S.DEVNULL, 0),
                                                      (os.POSIX_SPAWN_DUP2, S.DEVNULL, 1),
                                                      (os.POSIX_SPAWN_DUP2, S.DEVNULL, 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise S.Failure("%s failed (exit %d)" % (" ".join(cmd[:4]), os.waitstatus_to_exitcode(status)))
    return wall, ru.ru_utime + ru.ru_stime


def build_hello(work):
    """(static, dynamic) hello binaries, built with the swiftc on PATH."""
    src = os.path.join(work, "hello.swift")
    with open(src, "w") as f:
        f.write(HELLO)
    out = {}
    for kind, flags in (("static", ["-static-stdlib"]), ("dynamic", [])):
        exe = os.path.join(work, "hello-" + kind)
        S.run(["swiftc", "-O"] + flags + [src, "-o", exe], cwd=work)
        out[kind] = exe
    return out["static"], out["dynamic"]


def mapped_libraries(cmd, env):
    """The shared libraries the loader maps for one run of cmd (at start and by dlopen)."""
    p = subprocess.run(cmd, env=dict(env, LD_DEBUG="files"), capture_output=True)
    libs = set()
    for line in p.stderr.decode(errors="replace").splitlines():
        at = line.find("file=")
        if at < 0:
            continue
        name = line[at + 5:].split()[0].rstrip(";").split("[")[0]
        libs.add(os.path.basename(name))
    return p.returncode, sorted(libs)


def linked_libraries(binary):
    p = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return sorted(os.path.basename(line.split()[0]) for line in p.stdout.splitlines() if ".so" in line)


def binary_sizes(binary, work):
    stripped = os.path.join(work, "tsuku-stripped")
    S.run(["strip", "-o", stripped, binary])
    return os.path.getsize(binary), os.path.getsize(stripped)


class Startup:
    def __init__(self, args, work, tsuku, bench):
        self.args, self.work, self.tsuku, self.B = args, work, tsuku, bench
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "TSUKU_RECIPE_CACHE_SIZE_LIMIT": S.CACHE_LIMIT}
        self.genv = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "GIT_CONFIG_NOSYSTEM": "1",
                     "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@tsuku.invalid",
                     "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@tsuku.invalid"}
        self.times = {}
        self.values = {}
        # --baseline BIN: an earlier build run on the same homes, in the same rounds
        self.base = os.path.abspath(args.baseline) if getattr(args, "baseline", None) else None
        k = work + "/keys/"
        os.makedirs(k, exist_ok=True)
        for role in ("root", "index", "revocation"):
            S.run([tsuku, "registry", "keygen", "--out", k + role, "--note", "TEST KEY (tools/bench)"], env=self.env)
        self.keys = k

    def tenv(self, home):
        return dict(self.env, TSUKU_HOME=home)

    def rec(self, tier, label, s):
        self.times.setdefault((tier, label), []).append(s)

    def t(self, tier, label):
        return S.med(self.times.get((tier, label), []))

    def tier(self, n, hello_static, hello_dynamic):
        a, k = self.args, self.keys
        name = S.tier_name(n)
        S.log("tier %s: %d recipes" % (name, n))
        gen, _, info, _, _, _ = S.ensure_generated(a.data, n, a.seed, a.jobs)
        repo = os.path.join(self.work, "repo-%d.git" % n)
        S.run(["git", "init", "-q", "--bare", "-b", "main", repo], env=self.genv)
        url = "git+file://%s?dir=store#main" % repo
        S.run([self.tsuku, "registry", "init", "--to", url, "--root-key", k + "root.pub", "--index-key", k + "index.pub",
               "--revocation-key", k + "revocation.pub", "--sign", k + "root", "--expires-days", "3650"], env=self.env)
        root = os.path.join(self.work, "root-%d.json" % n)
        with open(root, "wb") as f:
            f.write(S.run(["git", "-C", repo, "show", "main:store/root/1.root.json"], env=self.genv).stdout)
        S.log("  publishing to git")
        s, _ = S.timed([self.tsuku, "registry", "publish", "--recipes", gen + "/recipes", "--critical", gen + "/critical",
                        "--golden", gen + "/golden", "--key", k + "index", "--revocation-key", k + "revocation", "--to", url,
                        "--packs", "always", "--expires-days", "3650", "--json"], env=self.env)
        self.values[(n, "publish")] = s
        home = os.path.join(self.work, "home-%d" % n)
        env = self.tenv(home)
        S.run([self.tsuku, "init", "--root", root, "--source", url], env=env)
        S.log("  syncing a home from git")
        s, _ = S.timed([self.tsuku, "update-registry"], env=env)
        self.values[(n, "sync")] = s
        # 20 names spread over the registry
        rows = [r for r in S.manifest_rows(gen) if not r[2]]
        step = max(1, len(rows) // 20)
        targets = []
        for i, rname, critical in [rows[j] for j in range(0, len(rows), step)][:20]:
            path = os.path.join(gen, S.recipe_rel(rname, critical))
            with open(path, "rb") as f:
                body = f.read()
            h = hashlib.sha256(body).hexdigest()
            targets.append((rname, path, "main:store/objects/sha256/%s/%s" % (h[:2], h), body))
        have_git = S.run(["git", "-C", repo, "cat-file", "-e", targets[0][2]], env=self.genv, check=False).returncode == 0
        if not have_git:
            S.log("  the published git tree holds no blob at %s: git show not measured" % targets[0][2])
        for rname, path, gpath, body in targets:
            if S.run([self.tsuku, "show", rname], env=env).stdout != body:
                raise S.Failure("tsuku show %s printed other bytes than %s" % (rname, path))
        runs = a.show_runs
        S.log("  show: %d rounds, every command once per round" % runs)
        for r in range(runs):
            rname, path, gpath, _ = targets[r % len(targets)]
            cmds = [("tsuku show", [self.tsuku, "show", rname], env), ("tsuku --version", [self.tsuku, "--version"], env),
                    ("hello (static)", [hello_static], self.env), ("hello (dynamic)", [hello_dynamic], self.env),
                    ("cat", ["cat", path], self.genv)]
            if have_git:
                cmds.append(("git show", ["git", "-C", repo, "show", gpath], self.genv))
            if self.base:
                cmds += [("baseline show", [self.base, "show", rname], env),
                         ("baseline --version", [self.base, "--version"], env)]
            j = r % len(cmds)
            for label, cmd, e in cmds[j:] + cmds[:j]:
                wall, cpu = spawn(cmd, e)
                self.rec(n, label, wall)
                self.rec(n, label + " cpu", cpu)
        # verify over the whole cache, warm
        cache_files = [p for p in S.files_under(home + "/cache/packs") + S.files_under(home + "/cache/objects")
                       if os.path.isfile(p) and not os.path.basename(p).startswith(".")]
        cbytes = S.du_bytes(cache_files)
        S.run([self.tsuku, "verify", "--json"], env=env)
        S.log("  verify: %d runs over %d files, %s" % (a.runs, len(cache_files), S.fmt_b(cbytes)))
        if self.base:
            S.run([self.base, "verify"], env=env)
        for _ in range(a.runs):
            self.rec(n, "verify", S.spawn_time([self.tsuku, "verify"], env))
            if self.base:
                self.rec(n, "baseline verify", S.spawn_time([self.base, "verify"], env))
        self.values[(n, "cache_bytes")] = cbytes
        # peak RSS
        mid = rows[len(rows) // 2][1]
        rss = {}
        for label, cmd in (("show", ["show", mid]), ("info", ["info", mid]), ("verify", ["verify"]),
                           ("update-registry (no-op, git)", ["update-registry"])):
            rss[label] = S.peak_rss([self.tsuku] + cmd, env)[0]
            if self.base:
                rss["baseline " + label] = S.peak_rss([self.base] + cmd, env)[0]
        self.values[(n, "rss")] = rss
        self.values[(n, "libs show")] = mapped_libraries([self.tsuku, "show", mid], env)[1]
        shutil.rmtree(repo, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)

    def libraries_of_a_network_sync(self, srv):
        """The libraries mapped by a sync from SeaweedFS (the sample registry published there)."""
        k = self.keys
        ep = srv.endpoint
        S.run(self.B.s3("PUT", ep, "/bench"), check=False)
        url = "s3://bench/startup?endpoint=%s&region=%s" % (ep, self.B.REGION)
        env = dict(self.env, TSUKU_S3_ACCESS_KEY_ID=self.B.ADMIN_KEY, TSUKU_S3_SECRET_ACCESS_KEY=self.B.ADMIN_SECRET)
        S.run([self.tsuku, "registry", "init", "--to", url, "--root-key", k + "root.pub", "--index-key", k + "index.pub",
               "--revocation-key", k + "revocation.pub", "--sign", k + "root"], env=env)
        sample = os.path.join(S.HERE, "registry-index", "source")
        S.run([self.tsuku, "registry", "publish", "--recipes", sample + "/recipes", "--critical", sample + "/embedded",
               "--golden", sample + "/golden", "--key", k + "index", "--to", url], env=env)
        root = os.path.join(self.work, "root-s3.json")
        S.run(self.B.s3("GET", ep, "/bench/startup/root/1.root.json", out=root))
        home = os.path.join(self.work, "home-s3")
        henv = dict(env, TSUKU_HOME=home)
        S.run([self.tsuku, "init", "--root", root, "--source", url], env=henv)
        code, libs = mapped_libraries([self.tsuku, "update-registry"], henv)
        if code != 0:
            raise S.Failure("update-registry from SeaweedFS failed (exit %d)" % code)
        return libs


def lib_names(libs, skip=("linux-vdso.so.1",)):
    return [x for x in libs if x not in skip]


def run_startup(args, work, tsuku, srv, bench, tiers):
    S.ensure_time_command()
    if not shutil.which("swiftc"):
        raise S.Failure("no 'swiftc' on PATH to build the hello binaries")
    load0 = open("/proc/loadavg").read().split()[0]
    hs, hd = build_hello(work)
    st = Startup(args, work, tsuku, bench)
    for n in tiers:
        st.tier(n, hs, hd)
    srv.start()
    net_libs = st.libraries_of_a_network_sync(srv)
    size, stripped = binary_sizes(tsuku, work)
    linked = lib_names(linked_libraries(tsuku))
    load1 = open("/proc/loadavg").read().split()[0]

    out = []
    add = out.append
    add("Start-up: `tools/bench --startup --tiers %s --show-runs %d --runs %d`, binary %s; load average %s at the "
        "start, %s at the end." % (",".join(S.tier_name(n).lower() for n in tiers), args.show_runs, args.runs, tsuku,
                                   load0, load1))
    add("")
    first = tiers[0]
    add("| command (%d rounds, interleaved) | %s |" % (args.show_runs, " | ".join(
        "wall, median (min–max) at %s | CPU median at %s" % (S.tier_name(n), S.tier_name(n)) for n in tiers)))
    add("|---|%s" % ("---|---|" * len(tiers)))
    for label, text in (("git show", "`git show REV:PATH` of the same blob"), ("cat", "`cat` of the same file"),
                        ("hello (static)", "Swift \"hello\" with `-static-stdlib` (Foundation imported)"),
                        ("hello (dynamic)", "the same, dynamically linked"), ("tsuku --version", "`tsuku --version`"),
                        ("tsuku show", "`tsuku show NAME` on a synced cache")) + (
            (("baseline --version", "`--version` of the baseline (%s)" % st.base),
             ("baseline show", "`show NAME` of the baseline, same cache")) if st.base else ()):
        add("| %s | %s |" % (text, " | ".join("%s | %.2f ms" % (S.fmt_t(st.times.get((n, label), [])),
                                                                 (st.t(n, label + " cpu") or 0) * 1e3) for n in tiers)))
    add("")
    goals = []

    def goal(text, where, value, ok):
        goals.append((text, where, value, "n/a" if ok is None else ("**met**" if ok else "**not met**")))
    def both(n, a_, b_):
        r = S.ratio(st.t(n, a_), st.t(n, b_))
        return r, "%s (CPU %s)" % (S.fmt_x(r), S.fmt_x(S.ratio(st.t(n, a_ + " cpu"), st.t(n, b_ + " cpu"))))
    for n in tiers:
        r, text = both(n, "tsuku show", "git show")
        goal("`tsuku show` ≤ 3x `git show`", S.tier_name(n), text, None if r is None else r <= 3)
    for n in tiers:
        r, text = both(n, "tsuku --version", "hello (static)")
        goal("`tsuku --version` ≤ 2x the static hello", S.tier_name(n), text, None if r is None else r <= 2)
    for n in tiers:
        tv = st.t(n, "verify")
        cb = st.values[(n, "cache_bytes")]
        goal("`tsuku verify` ≥ 1.6 GB/s%s" % ("" if n == 100000 else " (judged at 100K)"), S.tier_name(n),
             S.fmt_rate(cb, tv), (cb / tv >= 1.6e9) if (n == 100000 and tv) else None)
    for n in tiers:
        kb = st.values[(n, "rss")]["show"]
        goal("peak RSS of `show` < 64 MB%s" % ("" if n == 100000 else " (judged at 100K)"), S.tier_name(n),
             "%.1f MB" % (kb / 1024), (kb < 64 * 1024) if n == 100000 else None)
    if st.base:
        for n in tiers:
            for label in ("show", "--version", "verify"):
                r, text = (both(n, "tsuku " + label, "baseline " + label) if label != "verify" else
                           (S.ratio(st.t(n, "verify"), st.t(n, "baseline verify")), None))
                if text is None:
                    text = "%s (%s against %s)" % (S.fmt_x(r), S.fmt_t(st.times.get((n, "verify"), [])),
                                                   S.fmt_t(st.times.get((n, "baseline verify"), [])))
                goal("`%s` no slower than the baseline (this / baseline)" % label, S.tier_name(n), text,
                     None if label != "verify" or r is None else r <= 1.1)
    show_libs = st.values[(first, "libs show")]
    bad = [x for x in show_libs if x.startswith("libcurl") or x.startswith("libgit2")]
    goal("`show` maps neither libcurl nor libgit2", "all", "%d libraries mapped%s" % (
        len(lib_names(show_libs)), "" if not bad else ": " + ", ".join(bad)), not bad)
    add("| goal | where | measured | |")
    add("|---|---|---|---|")
    for g in goals:
        add("| %s | %s | %s | %s |" % g)
    add("")
    for n in tiers:
        rss = st.values[(n, "rss")]
        add("%s: published to git in %.1f s, synced from it in %.1f s; `tsuku verify` %s over %s; peak RSS %s." % (
            S.tier_name(n), st.values[(n, "publish")], st.values[(n, "sync")],
            S.fmt_t(st.times.get((n, "verify"), [])), S.fmt_b(st.values[(n, "cache_bytes")]),
            ", ".join("%s %.1f MB" % (k, v / 1024) for k, v in rss.items())))
    add("")
    add("Binary: %s bytes (%.1f MB), stripped %s bytes (%.1f MB). Linked shared libraries (ldd), %d: %s." % (
        size, size / 1e6, stripped, stripped / 1e6, len(linked), ", ".join(linked)))
    add("Mapped by `tsuku show` (LD_DEBUG=files), %d: %s." % (len(lib_names(show_libs)), ", ".join(lib_names(show_libs))))
    add("Mapped by `tsuku update-registry` from SeaweedFS, %d (libcurl loaded on first use): %s." % (
        len(lib_names(net_libs)), ", ".join(lib_names(net_libs))))
    print("\n".join(out))
    return 0  # measured, whatever the goals say
