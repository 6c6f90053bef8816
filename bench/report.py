#!/usr/bin/env python3
"""Prints bench/run's table from runner.py's and wire.py's records.

    report.py RUNS.jsonl WIRE.jsonl RSS.jsonl LINKS.json

LINKS.json maps each timing label to how its delay was made, e.g.
{"0 ms": "veth", "50 ms": "TUN delay line"}.  Numbers are printed, never
judged: the targets live in README.md, not here.
"""

import json
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def median_of(rows, client, label, key):
    values = [r[key] for r in rows if r["client"] == client and r["label"] == label and key in r]
    return statistics.median(values) if values else None, values


def fmt(value, spec, missing="n/a"):
    return missing if value is None else format(value, spec)


def main():
    runs, wire, rss = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
    with open(sys.argv[4]) as f:
        links = json.load(f)  # label -> link, in the order measured
    a, b = "tlsend", "msmtp"

    print()
    print("Wall time per submission (STARTTLS + AUTH PLAIN, ~3 KB message; median of the")
    print("interleaved runs), and the round trips each client waited, counted in the capture")
    print("(median per run; rule in bench/wire.py; \"stalls\": waits for a bare ACK or a")
    print("timer, not for a reply):")
    print()
    cols = [("one-way delay", 14), ("link", 24), (a + " median", 13), (b + " median", 12),
            (a + "/" + b, 12), (a + " RTs", 10), (b + " RTs", 9),
            (a + " stalls", 13), (b + " stalls", 12)]
    print("| " + " | ".join(f"{name:>{w}}" if i > 1 else f"{name:<{w}}"
                            for i, (name, w) in enumerate(cols)) + " |")
    print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
    for label, link in links.items():
        ta, _ = median_of(runs, a, label, "wall")
        tb, _ = median_of(runs, b, label, "wall")
        ratio = ta / tb if ta and tb else None
        cells = [
            label, link,
            fmt(ta and 1000 * ta, ".1f") + " ms" if ta else "n/a",
            fmt(tb and 1000 * tb, ".1f") + " ms" if tb else "n/a",
            fmt(ratio, ".2f") + "x" if ratio else "n/a",
        ] + [fmt(median_of(wire, c, label, k)[0], "g")
             for k in ("round_trips",) for c in (a, b)] \
          + [fmt(median_of(wire, c, label, k)[0], "g")
             for k in ("stalls",) for c in (a, b)]
        print("| " + " | ".join(f"{cell:>{w}}" if i > 1 else f"{cell:<{w}}"
                                for i, (cell, (_, w)) in enumerate(zip(cells, cols))) + " |")
    print()
    for label in links:
        for client in (a, b):
            _, walls = median_of(runs, client, label, "wall")
            if not walls:
                continue
            _, rts = median_of(wire, client, label, "round_trips")
            _, stalls = median_of(wire, client, label, "stalls")
            before, _ = median_of(wire, client, label, "before_syn_ms")
            after, _ = median_of(wire, client, label, "after_close_ms")
            rtt, _ = median_of(wire, client, label, "handshake_rtt_ms")
            print(f"  {label:>6} {client:<7} n={len(walls):<2} wall min {1000 * min(walls):7.1f} "
                  f"max {1000 * max(walls):7.1f} ms; RTs per run {sorted(set(rts))}, "
                  f"stalls per run {sorted(set(stalls))}; median {fmt(before, '.1f')} ms "
                  f"before its SYN, {fmt(after, '.1f')} ms after its last packet; "
                  f"SYN to SYN-ACK {fmt(rtt, '.2f')} ms")

    if rss:
        print()
        print("Peak RSS submitting a 100 MiB message over loopback, no delay (GNU time %M, median):")
        print()
        ma, vma = median_of(rss, a, "rss", "maxrss_kib")
        mb, vmb = median_of(rss, b, "rss", "maxrss_kib")
        wa, _ = median_of(rss, a, "rss", "wall")
        wb, _ = median_of(rss, b, "rss", "wall")
        print(f"| {'client':<12} | {'peak RSS':>10} | {'wall time':>9} |")
        print(f"|{'-' * 14}|{'-' * 12}|{'-' * 11}|")
        for client, m, w in ((a, ma, wa), (b, mb, wb)):
            print(f"| {client:<12} | {fmt(m and m / 1024, '6.1f'):>6} MiB | {fmt(w, '7.2f'):>7} s |")
        if ma and mb:
            print(f"| {a + '/' + b:<12} | {ma / mb:>9.2f}x | {wa / wb:>8.2f}x |")
        print()
        print(f"  runs: {a} {[round(v / 1024, 1) for v in vma]} MiB, "
              f"{b} {[round(v / 1024, 1) for v in vmb]} MiB")


if __name__ == "__main__":
    main()
