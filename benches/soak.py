#!/usr/bin/env python3
"""A soak: does a long quickstart run hold a steady memory footprint and CPU per operation?

Runs `provbench run workloads/quickstart.toml --duration D` (the embedded reference service in the
same process) pinned to one CPU, samples the process's resident set (VmRSS in /proc/PID/status)
and CPU time (utime + stime in /proc/PID/stat) every few seconds, and prints:

- the RSS slope in MiB a minute: a least-squares line through the samples after the first minute
  (the warm-up: allocator arenas, connection pools), and through the second half alone (the
  reference service fills its retention window, 60 s by default, in the first minute or so);
- CPU per operation in the first and the last minute of the load (operations are the run's
  `api_latency` counts from intervals.csv), and their ratio.

    python3 benches/soak.py [--duration 3m] [--cpu 0] [--provbench target/release/provbench]
                            [--workload workloads/quickstart.toml] [--interval 5]

Give `--provbench` an older build to compare before and after. Quote slopes and ratios: on a busy
machine absolute CPU figures move with the neighbours. A benchmark reports; it asserts nothing.
"""

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def seconds(text):
    m = re.fullmatch(r"(\d+)(s|m|h)?", text)
    if not m:
        sys.exit(f"--duration: expected e.g. 90s, 3m or 1h, got {text}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def sample(pid):
    """(RSS in MiB, CPU seconds) of `pid`, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces: the fields start after its closing parenthesis.
            fields = f.read().rsplit(")", 1)[1].split()
        return rss / 1024, (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, StopIteration, IndexError):
        return None


def slope(points):
    """Least-squares slope of (x, y) points."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else float("nan")


def ops_between(rows, start, end):
    return sum(int(r["count"]) for r in rows
               if r["metric"] == "api_latency" and start <= float(r["interval_start_s"]) < end)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", default="3m")
    ap.add_argument("--workload", default="workloads/quickstart.toml")
    ap.add_argument("--provbench", default="target/release/provbench")
    ap.add_argument("--cpu", type=int, default=0, help="pin the run to this CPU (taskset)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the RSS slope")
    args = ap.parse_args()
    duration = seconds(args.duration)
    out = os.path.join(tempfile.mkdtemp(prefix="provbench-soak-"), "run")
    cmd = ["taskset", "-c", str(args.cpu), args.provbench, "run", args.workload, "--duration", args.duration,
           "--no-progress", "--quiet", "--out", out]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # taskset execs provbench in place: the child's pid is provbench's.
    t0 = time.monotonic()
    samples = []
    while proc.poll() is None:
        s = sample(proc.pid)
        if s:
            samples.append((time.monotonic() - t0, *s))
        time.sleep(args.interval)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode not in (0, 1):
        sys.exit(f"provbench run failed ({proc.returncode}): {err[-2000:]}")
    with open(os.path.join(out, "intervals.csv")) as f:
        rows = list(csv.DictReader(f))

    # Samples after the load's end (cleanup, report) are left out.
    load = [s for s in samples if s[0] <= duration + 2]
    rss_slope = slope([(t / 60, rss) for t, rss, _ in load if t >= args.warmup])
    print(f"{args.workload} for {args.duration} with {args.provbench} on CPU {args.cpu}: "
          f"{len(load)} samples every {args.interval:g} s")
    print("  t(s)   RSS MiB   CPU s")
    for t, rss, cpu in load[:: max(1, len(load) // 12)]:
        print(f"{t:6.0f} {rss:9.1f} {cpu:7.1f}")
    half = slope([(t / 60, rss) for t, rss, _ in load if t >= duration / 2])
    print(f"RSS: {load[0][1]:.1f} MiB at start, {max(s[1] for s in load):.1f} peak, {load[-1][1]:.1f} at end; "
          f"slope after the first {args.warmup:g} s: {rss_slope:.2f} MiB/min, over the second half: {half:.2f} MiB/min")

    def cpu_per_op(a, b):
        """µs of CPU per operation between the samples nearest to a and b seconds."""
        near = lambda t: min(load, key=lambda s: abs(s[0] - t))
        (ta, _, ca), (tb, _, cb) = near(a), near(b)
        ops = ops_between(rows, ta, tb)
        return (cb - ca) / ops * 1e6 if ops else float("nan"), ops

    span = min(60.0, duration / 3)
    first, n1 = cpu_per_op(0, span)
    last, n2 = cpu_per_op(duration - span, duration)
    print(f"CPU per operation: first {span:g} s {first:.0f} µs ({n1} ops), last {span:g} s {last:.0f} µs "
          f"({n2} ops): end/start {last / first:.2f}")


if __name__ == "__main__":
    main()
