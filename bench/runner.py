#!/usr/bin/env python3
"""Runs the benchmark's clients, interleaved, and records each run.

    runner.py SPEC.json OUT.jsonl LABEL RUNS WARMUP [rss]

SPEC.json is a list of clients, each {"name", "argv", "env", "stdin"}.
bench/run starts this inside the client network namespace (so the clients'
traffic goes over the delayed link), and the time taken by `ip netns exec`
itself is not part of any measurement.

Every run is a fresh process, timed from just before it is spawned to just
after it is reaped, which is what a caller of sendmail waits for.  Runs are
interleaved and the order alternates (A B, B A, A B, ...) so that a slow
spell of this shared 2-core machine, or a warm cache, favours neither
client.  WARMUP rounds first are run the same way but not recorded.

Each recorded run is one JSON line: client, label, run number, wall time,
wall-clock start and end (the packet capture's clock, so bench/wire.py can
match the run to its TCP connection), exit code and the tail of its
standard error; with "rss", also the client's peak RSS in KiB.

Peak RSS comes from GNU time (`/usr/bin/time -f %M`, i.e. the child's
ru_maxrss), not from this script's own wait4: Linux carries the high-water
mark of the process that fork()ed over exec(), so a child of this Python
process (~14 MiB) could never report less than that, whereas GNU time's
floor is about 1 MiB.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def run_once(client, rss):
    env = dict(os.environ)
    env.update(client.get("env", {}))
    argv = client["argv"]
    with open(client["stdin"], "rb") as stdin, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        if rss:
            argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name] + argv
        start_wall = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err, env=env)
        proc.wait()
        end = time.perf_counter()
        end_wall = time.time()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        result = {
            "wall": end - start,
            "start": start_wall,
            "end": end_wall,
            "rc": proc.returncode,
            "stderr": stderr[-2000:],
        }
        if rss:
            # GNU time writes "Command exited with non-zero status N" first
            # when the command failed; the number is the last line.
            lines = rss_file.read().split()
            result["maxrss_kib"] = int(lines[-1]) if lines else None
    return result


def main():
    # Die of the signal on ^C, so bench/run sees an interrupt, not a failure.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    spec_path, out_path, label, runs, warmup = sys.argv[1:6]
    rss = sys.argv[6:7] == ["rss"]
    with open(spec_path) as f:
        clients = json.load(f)
    runs, warmup = int(runs), int(warmup)
    failed = False
    with open(out_path, "a") as out:
        for i in range(warmup + runs):
            order = clients if i % 2 == 0 else list(reversed(clients))
            for client in order:
                result = run_once(client, rss)
                if result["rc"] != 0:
                    failed = True
                    sys.stderr.write(
                        f"runner: {client['name']} ({label}) exited {result['rc']}:\n"
                        f"{result['stderr']}\n"
                    )
                if i < warmup:
                    continue
                result.update(client=client["name"], label=label, run=i - warmup)
                out.write(json.dumps(result) + "\n")
                out.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
