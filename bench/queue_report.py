#!/usr/bin/env python3
"""Prints bench/queue's table from runner.py's records.

    queue_report.py RUNS.jsonl PHASES.jsonl MESSAGES

RUNS.jsonl has one record per process (runner.py), labelled "queueing"
(the `tlsend -odq` runs), "queue-run" (the one `tlsend -q`) and "loops"
(the tlsend and msmtp processes, interleaved).  PHASES.jsonl has, per
label, the messages and connections the server saw during it.  A case's
time is the sum of its processes' wall times.  Numbers are printed, never
judged: the targets live in README.md, not here.
"""

import json
import statistics
import sys


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    runs, phases = load(sys.argv[1]), load(sys.argv[2])
    messages = int(sys.argv[3])
    phase = {p["label"]: p for p in phases}

    def walls(label, client):
        return [r["wall"] for r in runs if r["label"] == label and r["client"] == client]

    cases = [
        # (name, label, client, messages delivered, connections)
        ("queueing: tlsend -odq, a process per message", "queueing", "tlsend -odq",
         phase["queueing"]["messages"], str(phase["queueing"]["connections"])),
        ("queue run: one tlsend -q", "queue-run", "tlsend -q",
         phase["queue-run"]["messages"], str(phase["queue-run"]["connections"])),
        ("msmtp loop: a process per message", "loops", "msmtp", messages, "*"),
        ("tlsend loop: a process per message", "loops", "tlsend", messages, "*"),
    ]
    total = {}
    print()
    print(f"{messages} small messages (~3 KB, STARTTLS + AUTH PLAIN, verified certificate); a")
    print("case's time is the sum of its processes' wall times; messages per second are")
    print(f"{messages} over that time (queueing delivers nothing: it is the rate messages are queued):")
    print()
    cols = [("case", 44), ("processes", 9), ("delivered", 9), ("connections", 11),
            ("time", 9), ("messages/s", 10), ("per process: median", 19), ("min", 8), ("max", 9)]
    print("| " + " | ".join(f"{n:<{w}}" if i == 0 else f"{n:>{w}}"
                            for i, (n, w) in enumerate(cols)) + " |")
    print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
    for name, label, client, delivered, connections in cases:
        w = walls(label, client)
        total[label, client] = sum(w)
        cells = [name, str(len(w)), str(delivered), connections,
                 f"{sum(w):.2f} s", f"{messages / sum(w):.1f}",
                 f"{1000 * statistics.median(w):.1f} ms",
                 f"{1000 * min(w):.1f} ms", f"{1000 * max(w):.1f} ms"]
        print("| " + " | ".join(f"{c:<{w_}}" if i == 0 else f"{c:>{w_}}"
                                for i, (c, (_, w_)) in enumerate(zip(cells, cols))) + " |")
    print()
    print(f"* the two loops made {phase['loops']['connections']} connections together "
          f"(the server cannot tell the clients' apart; it received "
          f"{phase['loops']['messages']} messages in all, {messages} for each client's recipient)")

    queue_run = total["queue-run", "tlsend -q"]
    queueing = total["queueing", "tlsend -odq"]
    msmtp = total["loops", "msmtp"]
    tlsend = total["loops", "tlsend"]
    print()
    print("Messages per second, relative to the msmtp loop:")
    print(f"  queue run / msmtp loop:                {msmtp / queue_run:8.1f}x")
    print(f"  queueing + queue run / msmtp loop:     {msmtp / (queueing + queue_run):8.1f}x")
    print(f"  tlsend loop / msmtp loop:              {msmtp / tlsend:8.1f}x")


if __name__ == "__main__":
    main()
