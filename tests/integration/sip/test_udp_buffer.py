"""test_udp_buffer.py  The UDP receive buffer absorbs a burst, and what it
cannot absorb is counted.

A node that cannot read for a moment (a scheduling hiccup, a burst of
answers after a fail-over) relies on the kernel's receive buffer. The test
pauses two nodes with SIGSTOP, fires the same burst of OPTIONS at each,
and lets them run again:
- the node with the default `udp_rcvbuf` loses nothing: every datagram
  waited in the buffer and `rehome_sip_udp_drops_total` stays 0;
- the node with a tiny buffer (`udp_rcvbuf 4096`) drops most of them, and
  its drop counter shows it.
The burst is sized to what the default buffer really got (the kernel caps
it at net.core.rmem_max without CAP_NET_ADMIN), so it fits by design.

A burst waiting in the buffer is then read in batches (udpbatch.c, one
recvmmsg per wake-up): 200 OPTIONS sent back-to-back to a paused node are
each answered once, in the order sent, and the node's read counter shows
far fewer reads than datagrams.
"""
import signal
import time

import harness as h
from harness import nodes

t = h.Test(__file__)

SKB_COST = 2500          # bytes of buffer a small loopback datagram uses


def drops(node):
    return nodes.metric(node, 'rehome_sip_udp_drops_total'
                        '{listener="udp:%s"}' % node.sip_addr)


def burst(ctx, node, n):
    """Send n OPTIONS (CSeq 1 to n) to a paused node, then let it run;
    returns the sending peer."""
    peer = ctx.udp(h.CALLER_IP)
    node.popen.send_signal(signal.SIGSTOP)
    try:
        for cseq in range(1, n + 1):
            peer.send(peer.request('OPTIONS', 'sip:%s' % node.sip_addr,
                                   cseq=cseq), node.sip_addr)
    finally:
        node.popen.send_signal(signal.SIGCONT)
    return peer


@t.test
def burst_absorbed_or_counted(ctx):
    roomy = ctx.rehomed(name='roomy')
    tiny = ctx.rehomed(name='tiny', node_id='node2',
                       extra=['udp_rcvbuf 4096'])
    rcvbuf = nodes.metric(roomy, 'rehome_sip_udp_rcvbuf_bytes'
                          '{listener="udp:%s"}' % roomy.sip_addr)
    assert rcvbuf >= 200000, 'default receive buffer only %d bytes' % rcvbuf
    n = int(min(2000, rcvbuf // SKB_COST))

    for node in (roomy, tiny):
        assert drops(node) == 0, '%s drops before the burst' % node.name
        burst(ctx, node, n)

    # (counted as the node reads its socket again after SIGCONT)
    assert h.wait_until(lambda: drops(tiny) >= n // 2, 5), \
        'tiny buffer: %d of %d counted as dropped' % (drops(tiny), n)
    assert drops(roomy) == 0, 'default buffer dropped %d of %d' % (
        drops(roomy), n)


@t.test
def burst_answered_in_order(ctx):
    node = ctx.rehomed()
    n = 200
    reads = nodes.metric(node, 'rehome_sip_udp_reads_total')
    datagrams = nodes.metric(node, 'rehome_sip_udp_datagrams_total')

    peer = burst(ctx, node, n)
    got = []
    deadline = time.monotonic() + h.slow(10)
    while len(got) < n and time.monotonic() < deadline:
        got += peer.recv(timeout=0.5, until_final=False)

    assert [m.status for m in got] == [200] * n, 'answers: %s' % sorted(
        set(m.start_line for m in got))
    assert [m.cseq[0] for m in got] == list(range(1, n + 1)), \
        'answered out of order or twice: %s' % [m.cseq[0] for m in got]
    assert drops(node) == 0, 'dropped %d' % drops(node)
    reads = nodes.metric(node, 'rehome_sip_udp_reads_total') - reads
    datagrams = nodes.metric(node, 'rehome_sip_udp_datagrams_total') - \
        datagrams
    assert datagrams >= n, 'read %d datagrams of %d' % (datagrams, n)
    assert reads <= n // 8, '%d reads for %d datagrams: not batched' % (
        reads, datagrams)


t.main()
