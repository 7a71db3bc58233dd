#!/usr/bin/env python3
"""What the probes cost: provbench CPU and target requests spent on probes at the default sampling.

Starts `provbench serve --profile fast` on CPU 1, then runs the same closed-model workload (fixed
iterations) from CPU 0 twice: with probes (queue delay + every linked service, default sampling)
and with probes off. Reports the generator CPU of each run and its voluntary context switches
(wait4 rusage), the share of that CPU the probes add, and the probe requests as a share of all
requests (from summary.json).

    python3 benches/probe_overhead.py [--iterations 400] [--admins 20] [--provbench target/release/provbench]

With `--workload workloads/quickstart.toml` it runs that workload as it is (its embedded target in
the same process, all on CPU 0) with probes on and with `--set probes.enabled=false`: the CPU
share is then of generator and embedded target together. With `--before OLD_BUILD`, each run is
made with both builds in turn (alternated run by run, in one sitting, against the same target)
and both are reported, with the load average at the start and the end.

Loopback only; bounded by the iteration count. A benchmark reports; it asserts nothing.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port

WORKLOAD = """name = "probe-overhead"
[target]
kind = "scim"
base_url = "http://127.0.0.1:{port}/scim/v2"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = {admins}
iterations = {iterations}
[[journey]]
name = "joiner-mover-leaver"
steps = ["create_user", "assign_role:employee", "modify_user", "disable_user", "delete_user"]
[probes]
enabled = {enabled}
queue = {{ job_header = "x-job-location", accepted_at = "/accepted_at", started_at = "/started_at" }}
sync = [{{ service = "directory", url = "/linked/directory/Users/{{id}}" }},
        {{ service = "mail", url = "/linked/mail/Users/{{id}}" }},
        {{ service = "crm", url = "/linked/crm/Users/{{id}}" }}]
"""


def run(cmd, cpu):
    proc = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[:2]} failed: {err.decode(errors='replace')[-2000:]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_nvcsw


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--admins", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--provbench", default="target/release/provbench")
    ap.add_argument("--workload", help="run this workload file (embedded target) instead of the built-in one")
    ap.add_argument("--before", help="an older build, run alternately with --provbench and reported beside it")
    args = ap.parse_args()
    builds = [("before", args.before), ("after", args.provbench)] if args.before else [("", args.provbench)]
    print(f"load average at the start: {open('/proc/loadavg').read().split()[:3]}")
    if args.workload:
        return embedded(args, builds)
    work = tempfile.mkdtemp(prefix="provbench-probes-")
    port, token = free_port(), "bench-token"
    with open(os.path.join(work, "token"), "w") as f:
        f.write(token)
    server = subprocess.Popen(["taskset", "-c", "1", args.provbench, "serve", "--profile", "fast", "--listen",
                               f"127.0.0.1:{port}", "--admin-token", token], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        results = {(b, e): [] for b, _ in builds for e in (True, False)}
        switches = {k: [] for k in results}
        reports = {b: None for b, _ in builds}
        for i in range(args.repeat):
            for name, binary in builds:
                for enabled in (True, False):
                    path = os.path.join(work, f"w-{enabled}.toml")
                    with open(path, "w") as f:
                        f.write(WORKLOAD.format(port=port, admins=args.admins, iterations=args.iterations,
                                                enabled=str(enabled).lower()))
                    out = os.path.join(work, f"r-{name}-{enabled}-{i}")
                    cpu, nvcsw = run([binary, "run", path, "--no-progress", "--out", out], 0)
                    summary = json.load(open(os.path.join(out, "summary.json")))
                    ops = sum(m["count"] for m in summary["metrics"] if m["metric"] == "api_latency")
                    results[(name, enabled)].append(cpu / ops * 1e6)
                    switches[(name, enabled)].append(nvcsw)
                    if enabled:
                        reports[name] = dict(summary["probes"], operations=ops)
        med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
        csw = {k: sorted(v)[len(v) // 2] for k, v in switches.items()}
        print(f"{args.admins} admins x {args.iterations} journeys of 5 writes against provbench serve --profile fast "
              f"(generator on CPU 0, target on CPU 1), median of {args.repeat}")
        for name, binary in builds:
            on, off, report = med[(name, True)], med[(name, False)], reports[name]
            label = f"{name} ({binary})" if name else binary
            print(f"{label}: generator CPU per operation: probes off {off:.1f} µs, probes on {on:.1f} µs "
                  f"(sample {report['sample']}): probes are {100 * (on - off) / on:.1f}% of provbench CPU "
                  f"(runs, on: {', '.join(f'{x:.1f}' for x in results[(name, True)])}; "
                  f"off: {', '.join(f'{x:.1f}' for x in results[(name, False)])})")
            print(f"  voluntary context switches a run: probes off {csw[(name, False)]}, probes on {csw[(name, True)]}")
            print(f"  probe requests: {report['probe_requests']} = {100 * report['share_of_requests']:.1f}% of all "
                  f"requests ({report['writes_observed']} writes observed, {report['shed']} shed)")
            print(f"  with their reads after cleanup: {traffic(report)}")
        print(f"load average at the end: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        server.terminate()
        server.wait()


def traffic(report):
    """All the probes' requests, the run's and their reads after cleanup (`reads_after_cleanup`,
    absent from older builds' summaries), as a share of those and the load's operations."""
    after = report.get("reads_after_cleanup", 0)
    probes = report["probe_requests"] + after
    return (f"{probes} ({report['probe_requests']} + {after}) = "
            f"{100 * probes / max(1, probes + report['operations']):.1f}% of all requests")


def embedded(args, builds):
    """The workload as it is, probes on and off, everything on CPU 0."""
    work = tempfile.mkdtemp(prefix="provbench-probes-")
    results = {(b, e): [] for b, _ in builds for e in (True, False)}
    switches = {k: [] for k in results}
    reports = {b: [] for b, _ in builds}
    for i in range(args.repeat):
        for name, binary in builds:
            for enabled in (True, False):
                out = os.path.join(work, f"r-{name}-{enabled}-{i}")
                extra = [] if enabled else ["--set", "probes.enabled=false"]
                cpu, nvcsw = run([binary, "run", args.workload, "--no-progress", "--out", out] + extra, 0)
                summary = json.load(open(os.path.join(out, "summary.json")))
                ops = sum(m["count"] for m in summary["metrics"] if m["metric"] == "api_latency")
                results[(name, enabled)].append(cpu / ops * 1e6)
                switches[(name, enabled)].append(nvcsw)
                if enabled:
                    reports[name].append(dict(summary["probes"], operations=ops))
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
    csw = {k: sorted(v)[len(v) // 2] for k, v in switches.items()}
    print(f"{args.workload} (generator and embedded target on CPU 0), median of {args.repeat}")
    for name, binary in builds:
        on, off = med[(name, True)], med[(name, False)]
        share = sorted(r["share_of_requests"] for r in reports[name])[len(reports[name]) // 2]
        label = f"{name} ({binary})" if name else binary
        print(f"{label}: CPU per operation: probes off {off:.1f} µs, probes on {on:.1f} µs: "
              f"probes are {100 * (on - off) / on:.1f}% of the process's CPU")
        print(f"  voluntary context switches a run: probes off {csw[(name, False)]}, probes on {csw[(name, True)]}")
        print(f"  probe requests: {100 * share:.1f}% of all requests (runs: "
              + ", ".join(f"{r['probe_requests']} for {r['writes_observed']} writes" for r in reports[name]) + ")")
        print("  with their reads after cleanup: " + "; ".join(traffic(r) for r in reports[name]))
    print(f"load average at the end: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
