#!/usr/bin/env python3
"""Counts the round trips each client waited, from a packet capture.

    wire.py PCAP RUNS.jsonl LABEL SERVER_PORT DELAY_MS LADDER.txt

PCAP is tcpdump's capture on the client's end of the link (bench/run takes
it in the client namespace), so its timestamps are the moments the client
sent a packet and the moments one reached it.  RUNS.jsonl is runner.py's
record; each run is matched to the TCP connection whose SYN falls within
the run's start and end.  Prints one JSON line per run with its counts, and
writes a readable ladder of every connection to LADDER.txt.

How round trips are counted
---------------------------
A round trip is one time the client had to wait for the server before it
could send its next bytes.  Within one TCP connection, in capture order,
take the *significant* packets:

  from the client: the SYN; the ACK that completes the handshake (the
    server only greets after accept(), i.e. after that ACK arrives, so it
    is what the greeting waits on); every segment with payload; and the
    first FIN or RST (the client closing).  Nothing after that first
    FIN/RST counts: what the kernel answers to a closed socket is not the
    client waiting.
  from the server: the SYN-ACK, every segment with payload, FIN and RST.

Pure ACKs other than the handshake's are not significant: they carry no
reply the client can act on.  A client significant packet counts one
round trip when, since the client's previous significant packet, a server
significant packet arrived that had seen everything the client had sent
(its acknowledgement number covers the client's last byte, SYN or FIN).
That is: the client sent, the server answered that, and only then did the
client send again.  The acknowledgement test is what keeps races out: at
the end, a server's close_notify and FIN sent in reply to QUIT can cross
the client's own close; they did not answer the client's last bytes, so
the client did not wait for them.  So the handshake counts one (SYN /
SYN-ACK / ACK), the greeting one (ACK / 220 / EHLO), every command whose
reply the client waits for one, and a close that waits for the reply to
QUIT one (QUIT / 221 / FIN); a client that sends QUIT and closes at once
does not pay that last one.  The count does not depend on the delay, and
at 50 ms it can be read off the ladder's timestamps (100 ms per wait).
At 0 ms a few microseconds separate a client's close from a server's
close_notify that did answer the client's own, so now and then a close
counts one more there; bench/run reports the median over the runs and
lists every run's count.

Waits the rule above cannot see are reported separately as *stalls*: a
client significant packet sent at least STALL after the previous one with
no round trip in between (STALL = half the round-trip time, at least
10 ms).  That is the client held back by something other than a reply:
Nagle's algorithm waiting for a bare ACK (with the peer's delayed ACK, about
40 ms on Linux), a timer, or slow work of its own.

The opposite, a reply the *server* held back, hides inside a round trip, so
those are reported too, as *held replies*: a round trip whose last server
packet before the client's next one arrived at least STALL later than one
round-trip time (the SYN to SYN-ACK time) after the client's previous
packet.  The client's own reaction time is not part of it; the server's
work is (an fsync, say), and so is the server's Nagle's algorithm: a reply
written right after an earlier, still unacknowledged small write (TLS 1.3
session tickets, or the reply to the previous pipelined command) waits for
the client's ACK of that write, which the client's kernel may delay by its
~40 ms delayed-ACK timer.  That is what the captures show against Postfix.
"""

import json
import struct
import sys

TLS_TYPES = {20: "CCS", 21: "Alert", 22: "Handshake", 23: "AppData"}
HS_TYPES = {1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket", 11: "Certificate"}


def read_pcap(path):
    """Yields (timestamp, ip_packet_bytes, original_ip_length) from a
    classic pcap file (what `tcpdump -w` writes)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    else:
        endian = ">"
        magic = struct.unpack(">I", data[:4])[0]
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    # Bytes before the IP header for each link type tcpdump may write.
    link_header = {1: 14, 101: 0, 12: 0, 14: 0, 113: 16, 276: 20}
    if linktype not in link_header:
        raise SystemExit(f"wire.py: unsupported link type {linktype}")
    skip = link_header[linktype]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack(endian + "IIII", data[pos : pos + 16])
        pos += 16
        frame = data[pos : pos + caplen]
        pos += caplen
        ts = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1 and frame[12:14] != b"\x08\x00":
            continue  # not IPv4
        yield ts, frame[skip:], origlen - skip


def parse_tcp(ip, iplen):
    """IPv4/TCP header fields; payload length from the IP header (the
    capture keeps only the first bytes of each packet)."""
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    src, dst = ip[12:16], ip[16:20]
    tcp = ip[ihl:]
    sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
    off = (tcp[12] >> 4) * 4
    flags = tcp[13]
    return {
        "src": ".".join(map(str, src)),
        "dst": ".".join(map(str, dst)),
        "sport": sport,
        "dport": dport,
        "flags": flags,
        "seq": seq,
        "ack": ack,
        "len": total - ihl - off,
        "head": tcp[off:],
    }


def flag_text(flags):
    names = [(0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, ".")]
    return "".join(n for bit, n in names if flags & bit)


def describe(head, length):
    """A short description of what a segment carries, from its first
    captured bytes: SMTP text before STARTTLS, TLS record types after."""
    if length == 0:
        return ""
    if head and head[0] in TLS_TYPES and len(head) >= 5 and head[1] == 3:
        records, pos = [], 0
        while pos + 5 <= len(head):
            ctype, rlen = head[pos], struct.unpack("!H", head[pos + 3 : pos + 5])[0]
            if ctype not in TLS_TYPES:
                break
            name = TLS_TYPES[ctype]
            if ctype == 22 and pos + 5 < len(head):
                name += "(" + HS_TYPES.get(head[pos + 5], str(head[pos + 5])) + ")"
            records.append(f"{name}[{rlen}]")
            pos += 5 + rlen
        more = " ..." if pos < length else ""
        return "TLS " + " ".join(records) + more
    text = head.decode("ascii", "replace").replace("\r\n", "|").replace("\n", "|")
    return repr(text[:60])


def connections(pcap, server_port):
    conns = {}
    for ts, ip, iplen in read_pcap(pcap):
        p = parse_tcp(ip, iplen)
        if p is None:
            continue
        if p["dport"] == server_port:
            key, p["dir"] = (p["src"], p["sport"]), "C"
        elif p["sport"] == server_port:
            key, p["dir"] = (p["dst"], p["dport"]), "S"
        else:
            continue
        p["ts"] = ts
        conns.setdefault(key, []).append(p)
    return [c for c in conns.values() if c[0]["dir"] == "C" and c[0]["flags"] & 0x02]


def analyse(packets, stall):
    """Applies the counting rule above; returns the counts and the ladder."""
    significant = []
    handshake_acked = False
    saw_synack = False
    for p in packets:
        f = p["flags"]
        if p["dir"] == "C":
            closing = f & 0x05  # FIN or RST
            is_hs_ack = saw_synack and not handshake_acked and f & 0x10 and not f & 0x02
            if f & 0x02 or p["len"] > 0 or closing or is_hs_ack:
                if is_hs_ack:
                    handshake_acked = True
                significant.append(p)
            if closing:
                break
        else:
            if f & 0x12 == 0x12:
                saw_synack = True
            if f & 0x07 or p["len"] > 0:
                significant.append(p)
    synack = next((p for p in packets if p["dir"] == "S" and p["flags"] & 0x12 == 0x12), None)
    rtt = synack["ts"] - packets[0]["ts"] if synack else 0.0
    round_trips, stalls, held = 0, [], []
    last_client, last_server, answered = None, None, False
    client_isn, client_end = None, 0  # client's bytes so far, relative to its ISN
    marks = {}
    for p in significant:
        if p["dir"] == "C":
            if client_isn is None:
                client_isn = p["seq"]
            if answered:
                round_trips += 1
                marks[id(p)] = f"<- waited (round trip {round_trips})"
                extra = last_server["ts"] - last_client["ts"] - rtt
                if extra >= stall:
                    held.append(extra)
                    marks[id(p)] += f", the reply held {1000 * extra:.1f} ms beyond the RTT"
            elif last_client is not None and p["ts"] - last_client["ts"] >= stall:
                stalls.append(p["ts"] - last_client["ts"])
                marks[id(p)] = f"<- STALL {1000 * (p['ts'] - last_client['ts']):.1f} ms, no reply awaited"
            answered = False
            end = (p["seq"] - client_isn) % 2**32 + p["len"] + (1 if p["flags"] & 0x03 else 0)
            client_end = max(client_end, end)
            last_client = p
        else:
            last_server = p
            # Did this server packet see all the client had sent?
            if client_isn is not None and p["flags"] & 0x10 \
                    and (p["ack"] - client_isn) % 2**32 >= client_end:
                answered = True
    t0 = packets[0]["ts"]
    sig_ids = {id(p) for p in significant}
    lines = []
    for p in packets:
        arrow = "C->S" if p["dir"] == "C" else "S->C"
        note = marks.get(id(p), "")
        star = "*" if id(p) in sig_ids else " "
        lines.append(
            f"  {1000 * (p['ts'] - t0):9.2f} ms {star} {arrow} {flag_text(p['flags']):4} "
            f"{p['len']:6} B  {describe(p['head'], p['len'])} {note}".rstrip()
        )
    client_segments = sum(1 for p in packets if p["dir"] == "C" and p["len"] > 0)
    return {
        # SYN to SYN-ACK: the link's real round-trip time, to check the delay.
        "handshake_rtt_ms": 1000 * (synack["ts"] - t0) if synack else None,
        "round_trips": round_trips,
        "stalls": len(stalls),
        "held_replies": len(held),
        "client_data_segments": client_segments,
        "first_ts": significant[0]["ts"],
        "last_client_ts": last_client["ts"] if last_client else t0,
    }, lines


def main():
    pcap, runs_path, label, port, delay_ms, ladder_path = sys.argv[1:7]
    port, delay_ms = int(port), float(delay_ms)
    stall = max(delay_ms / 1000.0, 0.010)  # half the RTT of 2*delay
    runs = [json.loads(l) for l in open(runs_path) if l.strip()]
    runs = [r for r in runs if r["label"] == label]
    conns = connections(pcap, port)
    unmatched = 0
    with open(ladder_path, "w") as ladder:
        ladder.write(
            f"# {label}: capture at the client's end; * = significant packet "
            f"(see bench/wire.py); stall threshold {1000 * stall:.0f} ms\n"
        )
        for r in runs:
            matching = [c for c in conns if r["start"] <= c[0]["ts"] <= r["end"]]
            if len(matching) != 1:
                unmatched += 1
                sys.stderr.write(f"wire.py: {r['client']} run {r['run']} ({label}): "
                                 f"{len(matching)} connections in the capture, expected 1\n")
                continue
            counts, lines = analyse(matching[0], stall)
            counts.update(
                client=r["client"],
                label=label,
                run=r["run"],
                # Time the process spent before its SYN and after its last
                # packet: start-up, reading the message, exit.
                before_syn_ms=1000 * (counts.pop("first_ts") - r["start"]),
                after_close_ms=1000 * (r["end"] - counts.pop("last_client_ts")),
                wall_ms=1000 * r["wall"],
            )
            ladder.write(
                f"\n== {r['client']} run {r['run']} ({label}): wall {counts['wall_ms']:.1f} ms, "
                f"{counts['before_syn_ms']:.1f} ms before the SYN, "
                f"{counts['after_close_ms']:.1f} ms after its last packet; "
                f"{counts['round_trips']} round trips, {counts['stalls']} stalls, "
                f"{counts['held_replies']} replies held by the server, "
                f"{counts['client_data_segments']} client data segments\n"
            )
            ladder.write("\n".join(lines) + "\n")
            print(json.dumps(counts))
    # An incomplete capture is a setup failure, not a result.
    sys.exit(1 if unmatched else 0)


if __name__ == "__main__":
    main()
