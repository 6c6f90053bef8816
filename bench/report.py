#!/usr/bin/env python3
"""Prints bench/run's table from runner.py's and wire.py's records.

    report.py RUNS.jsonl WIRE.jsonl RSS.jsonl LINKS.jsonl

LINKS.jsonl has one line per timing label, in the order measured, with the
peer, the one-way delay and how that delay was made (or why it was not
measured), e.g. {"label": "postfix 50 ms", "peer": "postfix", "delay":
"50 ms", "link": "TUN delay line"}.  One table is printed per peer.  The
RSS records are labelled "rss PEER".  Numbers are printed, never judged:
the targets live in README.md, not here.
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
    links = load(sys.argv[4])
    a, b = "tlsend", "msmtp"
    peers = list(dict.fromkeys(l["peer"] for l in links))

    print()
    print("Wall time per submission (STARTTLS + AUTH PLAIN, ~3 KB message; median of the")
    print("interleaved runs), and the round trips each client waited, counted in the capture")
    print("(median per run; rule in bench/wire.py; \"stalls\": waits for a bare ACK or a")
    print("timer, not for a reply), one table per peer:")
    cols = [("one-way delay", 14), ("link", 24), (a + " median", 13), (b + " median", 12),
            (a + "/" + b, 12), (a + " RTs", 10), (b + " RTs", 9),
            (a + " stalls", 13), (b + " stalls", 12)]
    for peer in peers:
        print()
        print(f"Peer: {peer}")
        print()
        print("| " + " | ".join(f"{name:>{w}}" if i > 1 else f"{name:<{w}}"
                                for i, (name, w) in enumerate(cols)) + " |")
        print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
        for link in (l for l in links if l["peer"] == peer):
            label = link["label"]
            ta, _ = median_of(runs, a, label, "wall")
            tb, _ = median_of(runs, b, label, "wall")
            ratio = ta / tb if ta and tb else None
            cells = [
                link["delay"], link["link"],
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
    for link in links:
        label = link["label"]
        for client in (a, b):
            _, walls = median_of(runs, client, label, "wall")
            if not walls:
                continue
            _, rts = median_of(wire, client, label, "round_trips")
            _, stalls = median_of(wire, client, label, "stalls")
            _, held = median_of(wire, client, label, "held_replies")
            before, _ = median_of(wire, client, label, "before_syn_ms")
            after, _ = median_of(wire, client, label, "after_close_ms")
            rtt, _ = median_of(wire, client, label, "handshake_rtt_ms")
            print(f"  {label:>17} {client:<7} n={len(walls):<2} wall min {1000 * min(walls):7.1f} "
                  f"max {1000 * max(walls):7.1f} ms; RTs per run {sorted(set(rts))}, "
                  f"stalls per run {sorted(set(stalls))}, held replies per run "
                  f"{sorted(set(held))}; median {fmt(before, '.1f')} ms "
                  f"before its SYN, {fmt(after, '.1f')} ms after its last packet; "
                  f"SYN to SYN-ACK {fmt(rtt, '.2f')} ms")

    rss_peers = [p for p in peers if any(r["label"] == "rss " + p for r in rss)]
    if rss_peers:
        print()
        print("Peak RSS submitting a 100 MiB message over loopback, no delay (GNU time %M, median):")
        print()
        print(f"| {'peer':<12} | {a + ' RSS':>10} | {b + ' RSS':>10} | {a + '/' + b:>12} "
              f"| {a + ' wall':>11} | {b + ' wall':>10} | {a + '/' + b:>12} |")
        print(f"|{'-' * 14}|{'-' * 12}|{'-' * 12}|{'-' * 14}|{'-' * 13}|{'-' * 12}|{'-' * 14}|")
        details = []
        for peer in rss_peers:
            label = "rss " + peer
            ma, vma = median_of(rss, a, label, "maxrss_kib")
            mb, vmb = median_of(rss, b, label, "maxrss_kib")
            wa, vwa = median_of(rss, a, label, "wall")
            wb, vwb = median_of(rss, b, label, "wall")
            print(f"| {peer:<12} | {fmt(ma and ma / 1024, '6.1f'):>6} MiB | {fmt(mb and mb / 1024, '6.1f'):>6} MiB "
                  f"| {fmt(ma and mb and ma / mb, '.2f') + 'x':>12} "
                  f"| {fmt(wa, '7.2f'):>9} s | {fmt(wb, '6.2f'):>8} s "
                  f"| {fmt(wa and wb and wa / wb, '.2f') + 'x':>12} |")
            details.append(f"  {peer}: {a} {[round(v / 1024, 1) for v in vma]} MiB "
                           f"{[round(v, 2) for v in vwa]} s, "
                           f"{b} {[round(v / 1024, 1) for v in vmb]} MiB {[round(v, 2) for v in vwb]} s")
        print()
        print("\n".join(details))


if __name__ == "__main__":
    main()
