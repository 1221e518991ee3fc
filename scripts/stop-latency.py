#!/usr/bin/env python3
"""Measures how long a graceful stop of `train` under mpirun takes (docs/stopping.md, BENCHMARKS.md).

For each trial: starts a training job (the seed model unless --args says otherwise) under mpirun, waits until
it has trained for a random time (--after seconds, at least one finished epoch), sends the stop signal, and
reads the ranks' FLOW_LOG_LEVEL=debug "stop:" lines, whose times are CLOCK_MONOTONIC seconds, comparable with
this script's time.monotonic() on the same host. Reports per trial and as medians / maxima:
  forward    signal sent -> the signal reached the last rank (mpirun's forwarding)
  agree      signal reached rank 0 -> the step in progress finished with the stop agreed on every rank
  checkpoint agreed -> rank 0's checkpoint written (fsync and rename included)
  exit       signal sent -> the launcher exited
  steps      steps taken after the one in progress when the signal arrived (0 or 1 by construction)

  scripts/stop-latency.py --ranks 2 3 --via launch.sh mpirun-usr1 mpirun-term --trials 5
Needs a release build (.build/release/flow-mpirun, or FLOW_BIN).
"""
import argparse, os, random, re, signal, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOP = re.compile(r"\[rank (\d+)/\d+\].*stop: (SIG\w+) arrived at ([\d.]+), seen after step (\d+); agreed after step (\d+) at ([\d.]+); checkpoint written at ([\d.]+)")
STOP1 = re.compile(r"stop: (SIG\w+) arrived at ([\d.]+), seen after step (\d+); agreed after step (\d+) at ([\d.]+); checkpoint written at ([\d.]+)")


def command(via, ranks, binary, args):
    if via == "launch.sh":
        return [os.path.join(REPO, "cluster", "launch.sh"), "-n", str(ranks)] + args, signal.SIGTERM
    mpirun = ["mpirun", "-np", str(ranks), "--bind-to", "none", "-x", "FLOW_LOG_LEVEL", "-x", "OPENBLAS_NUM_THREADS=1"]
    if ranks > os.cpu_count():
        mpirun += ["--oversubscribe"]
    if os.getuid() == 0:
        mpirun += ["--allow-run-as-root"]
    return mpirun + [binary] + args, signal.SIGUSR1 if via == "mpirun-usr1" else signal.SIGTERM


def trial(via, ranks, binary, args, after, out):
    cmd, sig = command(via, ranks, binary, args + ["--out", out, "--force"])
    env = dict(os.environ, FLOW_LOG_LEVEL="debug", FLOW_BIN=binary)
    log = open(os.path.join(out + ".log"), "w+")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                         preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, []))
    while p.poll() is None and not os.path.exists(os.path.join(out, "metrics.csv")):
        time.sleep(0.02)
    time.sleep(after)
    if p.poll() is not None:
        return None
    sent = time.monotonic()
    p.send_signal(sig)
    p.wait()
    ended = time.monotonic()
    log.seek(0)
    text = log.read()
    lines = [STOP.search(l) or STOP1.search(l) for l in text.splitlines()]
    stops = []
    for m in filter(None, lines):
        g = m.groups()
        if len(g) == 7:
            g = g[1:]
        stops.append(dict(signal=g[0], arrived=float(g[1]), seen=int(g[2]), agreed_step=int(g[3]),
                          agreed=float(g[4]), written=float(g[5])))
    if not stops:
        return dict(status=p.returncode, failed=text[-2000:])
    first = min(s["arrived"] for s in stops)
    return dict(status=p.returncode,
                forward=max(s["arrived"] for s in stops) - sent,
                agree=max(s["agreed"] for s in stops) - first,
                checkpoint=max(s["written"] for s in stops) - max(s["agreed"] for s in stops),
                exit=ended - sent,
                steps=max(s["agreed_step"] - s["seen"] for s in stops),
                ranks_reporting=len(stops))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--via", nargs="+", default=["launch.sh", "mpirun-usr1", "mpirun-term"],
                    help="launch.sh (SIGTERM to cluster/launch.sh), mpirun-usr1, mpirun-term (the signal to plain mpirun)")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--after", type=float, nargs=2, default=[0.0, 1.0], help="random wait range after the first epoch (s)")
    ap.add_argument("--args", default="train --threads 1 --no-plots --epochs 300", help="flow-mpirun arguments")
    a = ap.parse_args()
    binary = os.environ.get("FLOW_BIN", os.path.join(REPO, ".build", "release", "flow-mpirun"))
    random.seed(0)
    print(f"binary {binary}; arguments: {a.args}")
    print("| launcher | ranks | trials | forward ms (median / max) | agree ms | checkpoint ms | exit s | steps after the one in progress (max) | statuses |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for via in a.via:
            for ranks in a.ranks:
                rows = []
                for t in range(a.trials):
                    r = trial(via, ranks, binary, a.args.split(), random.uniform(*a.after), os.path.join(tmp, f"{via}-{ranks}-{t}"))
                    if r is None:
                        continue
                    if "failed" in r:
                        print(f"{via} {ranks} ranks trial {t}: no stop line (status {r['status']}):\n{r['failed']}", file=sys.stderr)
                    rows.append(r)
                ok = [r for r in rows if "failed" not in r]
                def col(k, scale):
                    v = [r[k] * scale for r in ok]
                    return f"{statistics.median(v):.0f} / {max(v):.0f}" if v else "-"
                def cols(k):
                    v = [r[k] for r in ok]
                    return f"{statistics.median(v):.2f} / {max(v):.2f}" if v else "-"
                statuses = ",".join(sorted({str(r["status"]) for r in rows}))
                failed = len(rows) - len(ok)
                print(f"| {via} | {ranks} | {len(ok)}{f' ({failed} killed before the stop line)' if failed else ''} | {col('forward', 1e3)} | {col('agree', 1e3)} | "
                      f"{col('checkpoint', 1e3)} | {cols('exit')} | {max((r['steps'] for r in ok), default='-')} | {statuses} |", flush=True)


if __name__ == "__main__":
    main()
