#!/usr/bin/env python3
"""A user-space stand-in for `tc qdisc ... netem delay`, for kernels built
without sch_netem (this sandbox's: CONFIG_NET_SCH_NETEM is not set and
modules cannot be loaded).

It creates one TUN device in each of two network namespaces and forwards
every IP packet from one to the other after a fixed delay, in each
direction, exactly what `netem delay D` on both ends of a veth pair does:
the TCP handshake, every data segment and every ACK are delayed, so the
clients see a real round-trip time of 2*D.  Packets keep their order (the
delay is constant, so one FIFO per direction suffices) and none are dropped.

    delayline.py NS_A IF_A NS_B IF_B DELAY_MS

NS_A and NS_B are names under /run/netns (made by `ip netns add`).  The
devices exist only while this process holds them; bench/run gives them
addresses, and ends this process (SIGTERM) when it is done.  It prints
"ready" on stdout once both devices exist.
"""

import collections
import ctypes
import fcntl
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)


# This process's own network namespace, to come back to.
HOME_NS = os.open("/proc/self/ns/net", os.O_RDONLY)


def setns(fd):
    """Moves this (single-threaded) process into the network namespace open
    as fd; os.setns only exists from Python 3.12 on, hence ctypes."""
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def open_tun(netns, name):
    """Creates TUN device `name` inside namespace `netns`: a TUN device is
    created in the namespace of the process that opens /dev/net/tun, so step
    in, open it, and step back."""
    ns = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    setns(ns)
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    finally:
        setns(HOME_NS)
        os.close(ns)
    return fd


def main():
    ns_a, if_a, ns_b, if_b, delay_ms = sys.argv[1:6]
    delay = float(delay_ms) / 1000.0
    a = open_tun(ns_a, if_a)
    b = open_tun(ns_b, if_b)
    peer = {a: b, b: a}
    # (due time, packet) per destination; constant delay keeps them sorted.
    queues = {a: collections.deque(), b: collections.deque()}

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)

    while True:
        now = time.monotonic()
        # Deliver everything that is due.
        for dst, queue in queues.items():
            while queue and queue[0][0] <= now:
                _, packet = queue.popleft()
                try:
                    os.write(dst, packet)
                except BlockingIOError:
                    pass  # device queue full: a loss, as on a real link
                except OSError:
                    pass  # device down (namespace being torn down)
        due = [q[0][0] for q in queues.values() if q]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        readable, _, _ = select.select([a, b], [], [], timeout)
        for src in readable:
            # Drain the device: a burst of segments should be stamped with
            # the time each was read, not wait a whole select round.
            while True:
                try:
                    packet = os.read(src, 65536)
                except BlockingIOError:
                    break
                queues[peer[src]].append((time.monotonic() + delay, packet))


if __name__ == "__main__":
    main()
