#!/usr/bin/env python3
"""Benchmark: shell completion of recipe names (tools/bench --completion).

    tools/bench --completion [--runs N] [--tsuku BIN]

A home synced from this checkout's sample registry (the default source of a binary built in the
checkout: read through git, no server), then, timed as whole processes, median of N (default 20):

  bash, no completion   bash sourcing the generated completion script and exiting: the floor
  tsuku show fz<TAB>    the same bash completing `tsuku show fz` (the script runs
                        `tsuku ---completion show -- ...`, which reads the cached index offline)
  ---completion alone   the binary's own answer, without bash

The completion's cost is the second minus the first. Goal (issue 18): under 50 ms. Prints only.
"""
import os
import resource
import statistics
import subprocess
import tempfile
import time

SCRIPT = r'''
source <("$TSUKU" --generate-completion-script bash)
if [ -n "$LINE" ]; then
  COMP_LINE="$LINE"; read -ra COMP_WORDS <<< "$LINE"; COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMP_POINT=${#COMP_LINE}
  _tsuku; printf '%s\n' "${COMPREPLY[@]}"
fi
'''


def timed(cmd, env, runs):
    """Median, min and max wall time, the median CPU time (user + system of the process and
    its children: what load on the other core does not inflate much), and the last output."""
    times = []
    cpu = []
    out = b""
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return statistics.median(times), min(times), max(times), out, statistics.median(cpu)


def run_completion(args, work, tsuku, _srv, _bench):
    runs = max(args.runs or 0, 20)
    home = os.path.join(work, "completion-home")
    env = {"PATH": os.path.dirname(tsuku) + ":/usr/bin:/bin", "TSUKU_HOME": home, "HOME": work}
    subprocess.run([tsuku, "update-registry"], env=env, check=True, stdout=subprocess.DEVNULL)
    # The script is generated once, as an installed completion file would be.
    script_file = os.path.join(work, "tsuku.bash")
    with open(script_file, "wb") as f:
        f.write(subprocess.run([tsuku, "--generate-completion-script", "bash"], check=True, stdout=subprocess.PIPE).stdout)
    body = SCRIPT.replace('source <("$TSUKU" --generate-completion-script bash)', "source " + script_file)
    e = dict(env, TSUKU_SOURCES="off", TSUKU="tsuku")
    floor = timed(["bash", "-c", body], dict(e, LINE=""), runs)
    full = timed(["bash", "-c", body], dict(e, LINE="tsuku show fz"), runs)
    alone = timed([tsuku, "---completion", "show", "--", "positional@0", "2", "2", "fz"], e, runs)
    got = full[3].decode().split()
    load = open("/proc/loadavg").read().split()[0]
    print("completion of `tsuku show fz` from a synced cache (%d runs; wall median, min-max; CPU median), "
          "binary %s, load %s" % (runs, tsuku, load))
    for label, m in (("bash, no completion", floor), ("tsuku show fz<TAB>", full), ("---completion alone", alone)):
        print("  %-22s %8.1f ms  (%.1f-%.1f)  cpu %.1f ms" % (label, m[0] * 1e3, m[1] * 1e3, m[2] * 1e3, m[4] * 1e3))
    print("  answer: %s" % " ".join(got))
    cost = (full[0] - floor[0]) * 1e3
    cpu = (full[4] - floor[4]) * 1e3
    print("  completion cost: %.1f ms wall, %.1f ms CPU (goal: under 50 ms: %s)"
          % (cost, cpu, "met" if cost < 50 else "NOT met"))
    if got != ["fzf"]:
        print("error: expected the completion 'fzf', got %r" % got)
        return 1
    return 0
