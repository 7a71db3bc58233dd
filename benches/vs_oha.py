#!/usr/bin/env python3
"""provbench beside oha: generator CPU time per request against the same loopback target.

nginx serves a small static SCIM user on one core; oha, then provbench (a closed-model workload
whose one step is `get_user`), send the same number of GETs from the other core. The script
reports each generator's user+system CPU per request (from wait4's rusage) and peak RSS, and the
ratio provbench / oha. A benchmark reports; it asserts nothing.

    python3 benches/vs_oha.py [--requests 200000] [--connections 50] [--provbench target/release/provbench]
                              [--before OLD_BINARY]

With --before, an older provbench build runs too, in the same alternation, and is reported beside
this one (each as a ratio to oha's CPU per request of the same sitting).

Needs nginx (Debian `nginx-light`), oha (`cargo install oha`) and taskset (util-linux).
Loopback only; every run is bounded by its request count.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "bench@example.test",
        "active": True}


def measured(cmd, cpu):
    """Runs cmd pinned to `cpu`; returns (wall s, cpu s, max RSS MiB, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each generator, alternating; medians are reported")
    ap.add_argument("--provbench", default="target/release/provbench")
    ap.add_argument("--before", help="an older provbench build, run in the same alternation")
    ap.add_argument("--oha", default=shutil.which("oha") or os.path.expanduser("~/.cargo/bin/oha"))
    args = ap.parse_args()
    for tool in ("nginx", "taskset"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} is needed (apt-get install nginx-light util-linux)")
    if not os.path.exists(args.oha):
        sys.exit("oha is needed (cargo install oha)")

    work = tempfile.mkdtemp(prefix="provbench-vs-oha-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    port = free_port()
    root = os.path.join(work, "www")
    os.makedirs(os.path.join(root, "scim/v2/Users"))
    with open(os.path.join(root, "scim/v2/Users/1"), "w") as f:
        json.dump(USER, f)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {work}/nginx.pid; error_log {work}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server {{ listen 127.0.0.1:{port}; root {root}; default_type application/scim+json; }} }}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    server = subprocess.Popen(["taskset", "-c", "1", nginx, "-c", conf, "-p", work], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/scim/v2/Users/1"
        n, c = args.requests, args.connections

        with open(os.path.join(work, "users.csv"), "w") as f:
            f.write("userName,id\nbench@example.test,1\n")
        per_admin = n // c
        with open(os.path.join(work, "get.toml"), "w") as f:
            f.write(f"""name = "plain-get"
[target]
kind = "scim"
base_url = "http://127.0.0.1:{port}/scim/v2"
[load]
model = "closed"
admins = {c}
iterations = {per_admin}
[[journey]]
name = "get"
steps = ["get_user"]
[users]
feeder = "users.csv"
""")

        def run_oha():
            wall, cpu, rss, _ = measured([args.oha, "-n", str(n), "-c", str(c), "--no-tui", "--output-format", "json", url], 0)
            return cpu / n * 1e6, rss, n / wall

        def run_provbench(binary=args.provbench):
            wall, cpu, rss, _ = measured([binary, "run", os.path.join(work, "get.toml"), "--no-progress",
                                          "--keep-users", "--out", os.path.join(work, "results")], 0)
            summary = json.load(open(os.path.join(work, "results", "summary.json")))
            ops = [m for m in summary["metrics"] if m["metric"] == "api_latency"]
            done, errors = sum(m["count"] for m in ops), sum(m["errors"] for m in ops)
            if errors:
                sys.exit(f"provbench saw {errors} errors: {[m.get('errors_by_reason') for m in ops]}")
            return cpu / done * 1e6, rss, done / wall

        runs = {"oha": [], "provbench": [], "before": []}
        for _ in range(args.repeat):
            runs["oha"].append(run_oha())
            if args.before:
                runs["before"].append(run_provbench(args.before))
            runs["provbench"].append(run_provbench())

        def median(rows):
            return tuple(sorted(col)[len(col) // 2] for col in zip(*rows))

        oha, pb = median(runs["oha"]), median(runs["provbench"])
        print(f"{n} GETs of a {len(json.dumps(USER))}-byte body from nginx, {c} connections, generator pinned to CPU 0, "
              f"nginx to CPU 1; median of {args.repeat} alternating runs")
        print(f"{'generator':<10} {'CPU µs/req':>11} {'peak RSS MiB':>13} {'req/s':>10}")
        print(f"{'oha':<10} {oha[0]:>11.2f} {oha[1]:>13.1f} {oha[2]:>10.0f}")
        print(f"{'provbench':<10} {pb[0]:>11.2f} {pb[1]:>13.1f} {pb[2]:>10.0f}")
        if args.before:
            old = median(runs["before"])
            print(f"{'before':<10} {old[0]:>11.2f} {old[1]:>13.1f} {old[2]:>10.0f}")
            print(f"ratio: before used {old[0] / oha[0]:.2f}x oha's CPU per request")
        print(f"ratio: provbench uses {pb[0] / oha[0]:.2f}x oha's CPU per request")
        for i, (o, p) in enumerate(zip(runs["oha"], runs["provbench"])):
            was = f", before {runs['before'][i][0] / o[0]:.2f}x" if args.before else ""
            print(f"  round {i + 1}: provbench {p[0] / o[0]:.2f}x{was}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
