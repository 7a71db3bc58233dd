#!/usr/bin/env python3
"""provbench beside ldclt: generator CPU time per LDAP operation against the same slapd.

Each run gets a fresh OpenLDAP provider (`tests/ldap/pair.sh` in a directory on /dev/shm, so no
fsync paces the adds; its consumer is stopped at once, so only the provider works) pinned to
CPU 1. From CPU 0, 389-ds's `ldclt` (Debian `389-ds-base`) and provbench, alternating, then do
the same operations with the same number of streams:

- `add`: N entries of the shape of `ldclt -e add,person`: objectClass person, the naming `cn`,
  and `sn: toto sn`. ldclt: `-e add,person,incr,noloop,commoncounter -r1 -RN`, one connection
  per thread; provbench: a closed-model `kind = "ldap"` workload whose one step is
  `create_user`, `admins` = streams, `max_connections` = streams (provbench pipelines several
  operations on one of them), probes off, `--keep-users` (ldclt deletes nothing either).
- `modify` (with `--ops add,modify`): ldclt replaces `sn` of each of the N entries it added
  (`-e attreplace=sn:…`); provbench runs `create_user` then `modify_user` (a replace of `sn`) in
  each journey, and its CPU per modify is that run's CPU less the add-only run's, per modify.
- `search` (with `--ops add,search`) is two rows, one per search step provbench has, each asking
  for no attribute (`1.1`), as both of provbench's steps do:
  - `search-sub`: ldclt's exact search (`-e esearch,attrlist=1.1`) of each of the N entries it
    added, a subtree search under the people base with the filter `cn=mr…` (`-f cn=mrXXXXXXXXX
    -e incr,noloop,commoncounter -r1 -RN`); provbench's `find_user` (a subtree search under
    `base_dn` with the filter `(cn=NAME)`) after `create_user` in each journey;
  - `search-base`: ldclt's base search of an entry it added, named by a random number in its
    range (`-s base -b cn=mrXXXXXXXXX,… -f objectClass=* -e esearch,randombase,…`, N/streams a
    thread: ldclt has no incremental base DN); provbench's `get_user` (a base search of the
    journey's user by its DN) after `create_user`.
  With `search`, each directory indexes `cn` for equality (`PAIR_INDEX=cn tests/ldap/pair.sh`), as a
  directory searched by its naming attribute does (unindexed, every search scans the whole base
  on slapd's CPU, and a run takes minutes); adds and modifies then update that index too.
  provbench's CPU per search is its create+search run's CPU less the add-only run's, per search,
  as for modify: an LDAP target has no users it did not create in the run (no prepopulate or
  feeder for kind "ldap"), so a search run must add what it searches.
- `bind` is not compared: provbench performs no bind per operation. It binds once per pooled
  connection as it connects (`max_connections` binds a run, before the load) and, as the login
  check (`login_flow = { kind = "ldap-bind" }`), once per sampled user on a fresh connection;
  no journey step binds, so there is nothing to set against `ldclt -e bindeach`/`bindonly`.

The script reports each generator's user+system CPU per operation (wait4's rusage: every thread
of the process, start-up and reports included, so runs are long enough to make those small),
its peak RSS, the operations that succeeded (errors are reported, and a run with errors is not
compared), and the ratio provbench / ldclt. A benchmark reports; it asserts nothing.

    python3 benches/vs_ldclt.py [--ops add,modify,search] [--count 50000] [--streams 4] [--repeat 3] \\
        [--provbench target/release/provbench] [--before OTHER-BUILD] [--callgrind N]

`--before` runs a second provbench build (main's, say) in the same rounds and reports the ratio
of the two. `--callgrind N` counts instructions instead of CPU time (valgrind's callgrind, which
does not depend on the machine's load): each generator does N and then 3N operations, and the
difference per operation is reported, so start-up, binds and reports cancel out;
`--keep-callgrind DIR` keeps callgrind's files for `callgrind_annotate`. (The interval
writer's work each second does not quite: a run under valgrind is slower, so more seconds; it
is work per second and per series, so a two-step journey's run pays it twice a second, and the
count overstates every op but add by a few thousand instructions.)

Needs slapd and ldap-utils (Debian), taskset (util-linux) and, for the other side, ldclt
(`apt-get install 389-ds-base`); without ldclt the script says so and reports provbench alone.
Loopback only; every run is bounded by its operation count (ldclt stops at the end of its
range, `noloop`; it notices its threads are done at its next 10 s sample, idle).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
PAIR = os.path.join(HERE, "..", "tests", "ldap", "pair.sh")
ADMIN = "cn=admin,dc=example,dc=test"
PEOPLE = "ou=people,dc=example,dc=test"

WORKLOAD = """name = "vs-ldclt-{op}"
[target]
kind = "ldap"
url = "ldap://127.0.0.1:{port}"
bind_dn = "{admin}"
password_file = "{pw}"
base_dn = "{people}"
max_connections = {streams}
[directory]
rdn = "cn"
name = "{{run_id}}-{{seq}}"
object_classes = ["person"]
attributes = {{ sn = "toto sn" }}
modify = {{ sn = "toto {{seq}}" }}
[load]
model = "closed"
admins = {streams}
iterations = {per_stream}
[[journey]]
name = "{op}"
steps = {steps}
[probes]
enabled = false
"""


class Directory:
    """A fresh provider on CPU 1 in its own directory; stopped and removed on exit."""

    # Set by main: with searches, the naming attribute `cn` is indexed (pair.sh's PAIR_INDEX), as
    # a directory searched by it is; unindexed, each search scans every entry under the base.
    index = ""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="provbench-vs-ldclt-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.port = free_port()
        subprocess.run(["taskset", "-c", "1", "bash", PAIR, self.dir, str(self.port), str(free_port())],
                       check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, PAIR_INDEX=Directory.index))
        # Only the provider is measured against: the consumer would replicate every add on CPU 1.
        self.stop("consumer.pid")
        self.pw_file = os.path.join(self.dir, "admin.pw")
        self.password = open(self.pw_file).read()

    def stop(self, pidfile):
        try:
            os.kill(int(open(os.path.join(self.dir, pidfile)).read().split()[0]), signal.SIGTERM)
        except (OSError, ValueError):
            pass

    def close(self):
        self.stop("provider.pid")
        time.sleep(0.3)
        shutil.rmtree(self.dir, ignore_errors=True)


# With --callgrind, every generator run is counted by callgrind into this file (see `instructions`).
CALLGRIND = {"out": None}


def rusage_run(cmd):
    """Runs cmd pinned to CPU 0: (cpu s, max RSS MiB, stdout, stderr, exit code)."""
    if CALLGRIND["out"]:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={CALLGRIND['out']}"] + cmd
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = b"", b""
    # Read both pipes to the end before reaping, so wait4 gets the rusage of the whole process.
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    return (usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode(errors="replace"),
            err.decode(errors="replace"), os.waitstatus_to_exitcode(status))


# Each operation: what ldclt is told, and provbench's journey with the step whose operations are
# counted. Every op but `add` is measured as its journey's run less the add-only run.
OPS = {
    "add": {"steps": ["create_user"], "step": "create_user"},
    "modify": {"steps": ["create_user", "modify_user"], "step": "modify_user"},
    "search-sub": {"steps": ["create_user", "find_user"], "step": "find_user"},
    "search-base": {"steps": ["create_user", "get_user"], "step": "get_user"},
}
# What --ops names: `search` is both search steps.
OP_NAMES = {"add": ["add"], "modify": ["modify"], "search": ["search-sub", "search-base"]}


def ldclt_args(what, count, streams):
    """ldclt's arguments for `what` over the entries cn=mr000000001..count that its add run made."""
    if what == "search-base":
        # No incremental base DN in ldclt: a random one in the range, count / streams per thread.
        return ["-b", f"cn=mrXXXXXXXXX,{PEOPLE}", "-s", "base", "-f", "objectClass=*",
                "-e", f"esearch,randombase,randombaselow=1,randombasehigh={count},attrlist=1.1",
                "-T", str(count // streams)]
    mode = {"add": "add,person", "modify": "attreplace=sn:toto XXXXX", "search-sub": "esearch,attrlist=1.1"}[what]
    return ["-b", PEOPLE, "-s", "subtree", "-e", mode, "-e", "incr,noloop,commoncounter", "-r", "1", "-R", str(count),
            "-f", "cn=mrXXXXXXXXX"]


def ldclt_run(ldclt, d, streams, count, what):
    """One ldclt run of `what` (an OPS key) over cn=mr000000001..count: (cpu s, rss, ok, errors)."""
    cmd = [ldclt, "-h", "127.0.0.1", "-p", str(d.port), "-D", ADMIN, "-w", d.password,
           *ldclt_args(what, count, streams), "-n", str(streams), "-q"]
    cpu, rss, out, err, code = rusage_run(cmd)
    total = re.search(r"Global average rate: .* total: +(\d+)", out)
    errors = sum(int(n) for n in re.findall(r"Global error +-?\d+ .* occurs +(\d+) times", out))
    if total is None:
        sys.exit(f"ldclt said no total (exit {code}): {(out + err)[-2000:]}")
    return cpu, rss, int(total.group(1)), errors


def provbench_run(provbench, d, streams, count, steps, work, name):
    """One provbench run of the journey `steps`, count / streams iterations per admin: (cpu s, rss,
    operations done by step, errors)."""
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(WORKLOAD.format(op=name, port=d.port, admin=ADMIN, pw=d.pw_file, people=PEOPLE, streams=streams,
                                per_stream=count // streams, steps=json.dumps(steps)))
    out_dir = os.path.join(work, f"results-{name}")
    shutil.rmtree(out_dir, ignore_errors=True)
    cpu, rss, out, err, code = rusage_run([provbench, "run", path, "--no-progress", "--quiet", "--keep-users",
                                           "--out", out_dir])
    try:
        summary = json.load(open(os.path.join(out_dir, "summary.json")))
    except OSError:
        sys.exit(f"provbench wrote no summary (exit {code}): {err[-2000:]}")
    ops = [m for m in summary["metrics"] if m["metric"] == "api_latency"]
    done = {}
    for m in ops:
        op = m.get("tags", {}).get("op", "?")
        done[op] = done.get(op, 0) + m["count"]
    errors = sum(m["errors"] for m in ops)
    return cpu, rss, done, errors


def instructions(path):
    """The instructions callgrind counted in its output file (every thread's)."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    sys.exit(f"{path}: callgrind wrote no summary")


def count_instructions(args, ops, have_ldclt, work):
    """--callgrind: instructions per operation of each generator, load-independent. Each run is
    counted at two sizes and differenced, so start-up, binds and reports cancel out; provbench's
    ops other than add are their journey's difference less the add-only run's."""
    small = args.callgrind - args.callgrind % args.streams
    large = 3 * small
    counts = {}
    binaries = {"provbench": args.provbench, "before": args.before}
    tools = (["ldclt"] if have_ldclt else []) + ["provbench"] + (["before"] if args.before else [])
    for n in (small, large):
        for tool in tools:
            d = Directory()
            try:
                for what in ops:
                    CALLGRIND["out"] = os.path.join(work, f"callgrind.{tool}.{what}.{n}")
                    if tool == "ldclt":
                        *_, ok, errors = ldclt_run(args.ldclt, d, args.streams, n, what)
                    else:
                        *_, done, errors = provbench_run(binaries[tool], d, args.streams, n, OPS[what]["steps"],
                                                         work, what)
                    CALLGRIND["out"] = None
                    if errors:
                        sys.exit(f"{tool} {what} under callgrind: {errors} errors")
                    counts[(tool, what, n)] = instructions(os.path.join(work, f"callgrind.{tool}.{what}.{n}"))
            finally:
                d.close()
    print(f"instructions per operation (callgrind; {small} and {large} operations a run, differenced; "
          f"{args.streams} streams)")
    for what in ops:
        per = {}
        for tool in tools:
            delta = counts[(tool, what, large)] - counts[(tool, what, small)]
            if tool != "ldclt" and what != "add":
                # That run's adds are the add-only run's: what is left is this op's.
                delta -= counts[(tool, "add", large)] - counts[(tool, "add", small)]
            per[tool] = delta / (large - small)
            print(f"{tool:<10} {what:<11} {per[tool]:>10.0f}")
        if "ldclt" in per:
            print(f"{what}: provbench executes {per['provbench'] / per['ldclt']:.2f}x ldclt's instructions per operation")
        if "before" in per:
            print(f"{what}: provbench executes {per['provbench'] / per['before']:.2f}x the before build's")


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", default="add", help="comma-separated: add, modify, search (add is always run)")
    ap.add_argument("--count", type=int, default=50_000, help="operations of each kind per run")
    ap.add_argument("--streams", type=int, default=4, help="ldclt threads, provbench admins and connections")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each generator, alternating; medians are reported")
    ap.add_argument("--provbench", default="target/release/provbench")
    ap.add_argument("--ldclt", default=shutil.which("ldclt") or "/usr/bin/ldclt")
    ap.add_argument("--before", metavar="BINARY",
                    help="another provbench build (e.g. main's) run in the same rounds, reported as `before`")
    ap.add_argument("--keep-callgrind", metavar="DIR",
                    help="with --callgrind: copy callgrind's output files here (for callgrind_annotate)")
    ap.add_argument("--callgrind", type=int, metavar="N",
                    help="count instructions per operation instead (valgrind): runs of N and 3N operations")
    args = ap.parse_args()
    named = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = [o for o in named if o not in OP_NAMES]
    if unknown:
        sys.exit(f"--ops: unknown {unknown} (known: {', '.join(OP_NAMES)})")
    # Every other op is measured against the add-only run, and ldclt's need the entries it adds.
    ops = ["add"] + [o for name in named for o in OP_NAMES[name] if o != "add"]
    if "search" in named:
        Directory.index = "cn"
    for tool in ("taskset", "ldapsearch"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install util-linux ldap-utils)")
    if not (shutil.which("slapd") or os.path.exists("/usr/sbin/slapd")):
        sys.exit("slapd is needed (apt-get install slapd ldap-utils)")
    if not os.path.exists(args.provbench):
        sys.exit(f"{args.provbench}: no such binary (cargo build --release)")
    have_ldclt = os.path.exists(args.ldclt)
    if not have_ldclt:
        print(f"ldclt not found ({args.ldclt}): apt-get install 389-ds-base; provbench alone is reported, no ratio")
    count = args.count - args.count % args.streams
    work = tempfile.mkdtemp(prefix="provbench-vs-ldclt-work-")
    if args.callgrind:
        if not shutil.which("valgrind"):
            sys.exit("--callgrind needs valgrind (apt-get install valgrind)")
        try:
            count_instructions(args, ops, have_ldclt, work)
            if args.keep_callgrind:
                os.makedirs(args.keep_callgrind, exist_ok=True)
                for name in os.listdir(work):
                    if name.startswith("callgrind."):
                        shutil.copy(os.path.join(work, name), args.keep_callgrind)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    # Per tool, per operation: CPU µs per operation of each run, and RSS.
    rows = {}

    def note(tool, op, cpu, n, rss, errors):
        rows.setdefault((tool, op), []).append((cpu / n * 1e6 if n else float("nan"), rss, n, errors))

    try:
        for _ in range(args.repeat):
            if have_ldclt:
                d = Directory()
                try:
                    # One directory: add first, then every other op over the entries it added.
                    for what in ops:
                        cpu, rss, ok, errors = ldclt_run(args.ldclt, d, args.streams, count, what)
                        note("ldclt", what, cpu, ok, rss, errors)
                finally:
                    d.close()
            for tool, binary in [("provbench", args.provbench)] + ([("before", args.before)] if args.before else []):
                d = Directory()
                try:
                    cpu_add = 0.0
                    for what in ops:
                        cpu, rss, done, errors = provbench_run(binary, d, args.streams, count, OPS[what]["steps"],
                                                               work, what)
                        if what == "add":
                            cpu_add = cpu
                        else:
                            # The same adds as the add-only run, plus one of this op each: this
                            # op's is the difference.
                            cpu -= cpu_add
                        note(tool, what, cpu, done.get(OPS[what]["step"], 0), rss, errors)
                finally:
                    d.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"{count} operations of each kind a run, {args.streams} streams (ldclt threads, a connection each; provbench "
          f"admins over max_connections = {args.streams}), "
          f"entry: objectClass person, cn, sn; generator pinned to CPU 0, slapd to CPU 1; "
          f"median of {args.repeat} alternating runs; load average {' '.join(load)}")
    print(f"{'generator':<10} {'op':<11} {'CPU µs/op':>10} {'peak RSS MiB':>13} {'done':>8} {'errors':>7}")
    for (tool, op), runs in sorted(rows.items(), key=lambda kv: (ops.index(kv[0][1]), kv[0][0])):
        print(f"{tool:<10} {op:<11} {median([r[0] for r in runs]):>10.2f} {median([r[1] for r in runs]):>13.1f} "
              f"{median([r[2] for r in runs]):>8} {sum(r[3] for r in runs):>7}")
        print(f"{'':<22} runs: {' '.join(f'{r[0]:.2f}' for r in runs)}")
    for op in ops:
        pb, lc, bf = rows.get(("provbench", op)), rows.get(("ldclt", op)), rows.get(("before", op))
        if pb and bf and not any(r[3] for r in pb + bf):
            pairs = [p[0] / b[0] for p, b in zip(pb, bf)]
            print(f"{op}: provbench uses {median([r[0] for r in pb]) / median([r[0] for r in bf]):.2f}x the before "
                  f"build's CPU per operation (per pair: {' '.join(f'{x:.2f}' for x in pairs)})")
        if not (pb and lc):
            continue
        if any(r[3] for r in pb + lc):
            print(f"{op}: errors in a run, no ratio")
            continue
        pairs = [p[0] / l[0] for p, l in zip(pb, lc)]
        print(f"{op}: provbench uses {median([r[0] for r in pb]) / median([r[0] for r in lc]):.2f}x ldclt's CPU per "
              f"operation (per pair: {' '.join(f'{x:.2f}' for x in pairs)})")


if __name__ == "__main__":
    main()
