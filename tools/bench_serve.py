#!/usr/bin/env python3
"""Benchmark: `tsuku serve` against nginx serving the same registry as static files
(tools/bench --serve).

    tools/bench --serve [--sample] [--serve-seconds S] [--tsuku BIN] [--keep]

The content tools/bench publishes (the corpus tip, or with --sample this checkout's sample) is
published to a directory store and synced into a home. Then, on loopback:

  tsuku serve   the release tsuku-serve over that home (every response read from the cache and
                verified: SHA-256 and size against the signed index, expiry, revocation),
                its request log to a file
  nginx         Debian's nginx, 2 workers (one per core), serving the same layout from a folder:
                `tsuku registry export --to DIR` when this tsuku has it, else the same paths
                fetched from tsuku serve itself; its access log to a file

Both get the same load: `wrk -t2 -c64 -d10s --latency` with a Lua script cycling over every
recipe path (and recipes.json), after a 2 s warm-up. Reported: requests/s, p50 and p99 latency,
peak RSS (VmHWM of the server process; nginx: master and workers added up), and the ratio
serve / nginx. Goals (issue 17): at least 0.5x nginx's requests/s, p99 under 5 ms. wrk runs
on the same 2 cores as the server it measures, so both figures include its own cost alike.
Exit 0 measured (whatever the goals say), 1 a step failed.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def vmhwm_kb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            out += [int(c) for c in open("/proc/%d/task/%s/children" % (pid, t)).read().split()]
    except OSError:
        pass
    return out


def serve_binary(tsuku, b):
    beside = os.path.join(os.path.dirname(tsuku), "tsuku-serve")
    if os.access(beside, os.X_OK):
        return beside
    b.log("building tsuku-serve (swift build -c release --product tsuku-serve --scratch-path .build-release)")
    t = time.perf_counter()
    p = subprocess.run(["swift", "build", "-c", "release", "--product", "tsuku-serve", "--scratch-path", ".build-release"],
                       cwd=b.HERE, capture_output=True, text=True)
    if p.returncode != 0:
        raise b.Failure("the release build of tsuku-serve failed:\n  " + "\n  ".join((p.stdout + p.stderr).splitlines()[-15:]))
    b.log("built in %.0fs" % (time.perf_counter() - t))
    if not os.access(beside, os.X_OK):
        raise b.Failure("no tsuku-serve beside %s (pass --tsuku with a folder that has both)" % tsuku)
    return beside


def ensure_apt(cmd, pkg, b):
    if shutil.which(cmd) or os.path.exists("/usr/sbin/" + cmd):
        return
    b.log("installing %s (apt-get install %s)" % (cmd, pkg))
    b.run(["apt-get", "install", "-y", "-qq", pkg], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), check=False)
    if not (shutil.which(cmd) or os.path.exists("/usr/sbin/" + cmd)):
        raise b.Failure("'%s' is missing (apt-get install %s; tools/install-deps --bench installs it)" % (cmd, pkg))


def layout_paths(root):
    """Every file of an exported tree, as request paths."""
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if rel.startswith("recipes/") or rel.startswith("plans/") or rel in ("recipes.json", "_site/recipes.json"):
                out.append("/" + rel)
    return sorted(out)


def fetch_tree(base, names, plans, root):
    """The static tree built from tsuku serve's own answers (when `registry export` is absent)."""
    paths = ["/recipes/%s/%s.toml" % (n[0], n) for n in names] + ["/recipes.json", "/_site/recipes.json"] + plans
    for p in paths:
        with urllib.request.urlopen(base + p) as r:
            data = r.read()
        dest = root + p
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)


def wrk(url, script, seconds):
    subprocess.run(["wrk", "-t2", "-c64", "-d2s", "-s", script, url], capture_output=True)  # warm-up
    p = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency", "-s", script, url],
                       capture_output=True, text=True)
    text = p.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))

    def pct(label):
        m = re.search(r"^\s+%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), text, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rps, "p50": pct("50%"), "p99": pct("99%"), "non2xx": int(errors.group(1)) if errors else 0,
            "raw": text}


def run_serve(args, work, tsuku, b):
    ensure_apt("nginx", "nginx", b)
    ensure_apt("wrk", "wrk", b)
    serve = serve_binary(tsuku, b)
    content = b.prepare_content(args, work, b.load_replay())
    b.log("content: %s" % content["kind"])
    w = work
    env = dict(os.environ, TSUKU_HOME=w + "/serve-home", HOME=w)
    for k in [k for k in env if k.startswith("TSUKU_") and k != "TSUKU_HOME"]:
        del env[k]

    def t(*a):
        return b.run([tsuku] + list(a), env=env)
    os.makedirs(w + "/keys", exist_ok=True)
    for role in ("root", "index", "revocation"):
        t("registry", "keygen", "--out", "%s/keys/%s.key" % (w, role))
    store = "file://" + w + "/serve-store"
    k = w + "/keys/"
    t("registry", "init", "--to", store, "--root-key", k + "root.key.pub", "--index-key", k + "index.key.pub",
      "--revocation-key", k + "revocation.key.pub", "--sign", k + "root.key")
    t("registry", "publish", "--recipes", w + "/new/recipes", "--critical", w + "/new/critical", "--golden",
      w + "/new/golden", "--key", k + "index.key", "--revocation-key", k + "revocation.key", "--to", store,
      "--expires-days", "3650")
    t("init", "--root", w + "/serve-store/root/1.root.json", "--source", store)
    t("update-registry")
    names = [e["name"] for e in __import__("json").loads(t("list", "--json").stdout)]

    port = free_port()
    slog = open(w + "/serve.log", "wb")
    sp = subprocess.Popen([serve, "--listen", "127.0.0.1:%d" % port], env=env, stdout=subprocess.PIPE, stderr=slog)
    nginx = None
    try:
        line = sp.stdout.readline().decode()
        if "listening on" not in line:
            raise b.Failure("tsuku-serve did not start: %s" % line)
        base = "http://127.0.0.1:%d" % port
        tree = w + "/export"
        helptext = b.run([tsuku, "registry", "--help"], env=env, check=False).stdout.decode()
        exported = re.search(r"^\s+export\b", helptext, re.M) is not None
        if exported:
            t("registry", "export", "--to", tree, "--golden")
            how = "tsuku registry export --golden"
        else:
            plans = []
            fetch_tree(base, names, plans, tree)
            how = "fetched from tsuku serve (no registry export in this tsuku)"
        b.log("static tree: %s" % how)
        paths = [p for p in layout_paths(tree) if p.startswith("/recipes")]
        # Same bytes from both, for every path measured.
        nport = free_port()
        conf = w + "/nginx.conf"
        with open(conf, "w") as f:
            f.write(("user root;\n" if os.getuid() == 0 else "") + """worker_processes 2;
pid %(w)s/nginx.pid;
error_log %(w)s/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log %(w)s/nginx-access.log;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  server { listen 127.0.0.1:%(p)d; root %(t)s; }
}
""" % {"w": w, "p": nport, "t": tree})
        nginx = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", w, "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        nbase = "http://127.0.0.1:%d" % nport
        for _ in range(100):
            try:
                urllib.request.urlopen(nbase + paths[0]).read()
                break
            except OSError:
                time.sleep(0.05)
        def same(p):
            a, c = urllib.request.urlopen(base + p).read(), urllib.request.urlopen(nbase + p).read()
            if p.endswith("recipes.json"):
                # Two generations of the same manifest differ only in when they were made.
                a, c = [dict(json.loads(x), generated_at=None) for x in (a, c)]
            return a == c
        diff = [p for p in paths if not same(p)]
        if diff:
            raise b.Failure("tsuku serve and nginx differ on %d paths, e.g. %s" % (len(diff), diff[:3]))
        script = w + "/paths.lua"
        with open(script, "w") as f:
            f.write("paths = {\n%s\n}\ni = 0\nrequest = function()\n  i = i %% #paths + 1\n"
                    "  return wrk.format(\"GET\", paths[i])\nend\n" % ",\n".join('  "%s"' % p for p in paths))
        load = open("/proc/loadavg").read().split()[0]
        seconds = args.serve_seconds
        b.log("wrk -t2 -c64 -d%ds --latency over %d paths; load average before: %s" % (seconds, len(paths), load))
        results = {}
        results["nginx"] = wrk(nbase, script, seconds)
        results["serve"] = wrk(base, script, seconds)
        results["nginx"]["rss"] = sum(vmhwm_kb(p) for p in [nginx.pid] + children(nginx.pid))
        results["serve"]["rss"] = vmhwm_kb(sp.pid)
        print()
        print(table(content, len(paths), seconds, results, how, load))
        return 0
    finally:
        for p in (sp, nginx):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        slog.close()


def table(content, npaths, seconds, r, how, load):
    s, n = r["serve"], r["nginx"]
    rows = [
        "Serving the registry on loopback (%s, %d recipe paths; wrk -t2 -c64 -d%ds --latency, cycling over every "
        "path; 2 cores shared by wrk and the server; load average before: %s). nginx serves the same layout as "
        "static files (%s)." % (content["kind"], npaths, seconds, load, how),
        "",
        "| server | requests/s | p50 | p99 | peak RSS | non-2xx |",
        "|---|---|---|---|---|---|",
        "| tsuku serve (every response verified) | %.0f | %.2f ms | %.2f ms | %.1f MB | %d |"
        % (s["rps"], s["p50"], s["p99"], s["rss"] / 1024, s["non2xx"]),
        "| nginx (static files, 2 workers) | %.0f | %.2f ms | %.2f ms | %.1f MB | %d |"
        % (n["rps"], n["p50"], n["p99"], n["rss"] / 1024, n["non2xx"]),
        "",
        "tsuku serve / nginx: %.2fx requests/s (goal >= 0.5x: %s); p99 %.2f ms (goal < 5 ms: %s)."
        % (s["rps"] / n["rps"], "met" if s["rps"] / n["rps"] >= 0.5 else "NOT met", s["p99"],
           "met" if s["p99"] < 5 else "NOT met"),
    ]
    return "\n".join(rows)
