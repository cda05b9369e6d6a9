"""test_media_cluster.py  Anchored calls survive their node: the node that
takes them over talks to each call's relay.

Two nodes and a Redis, two real rtpengines (A at 127.0.0.30, B at
127.0.0.31), raw-socket endpoints with real media sockets; calls go
through node 1, node 1 is killed (SIGKILL), then node 2 takes the tag:
- same_relay: `rehome service` on node 2: each leg gets one re-INVITE,
  with node 2's Contact and the SDP of the call's relay, replicated from
  node 1 (no new relay session, no SDP of the other endpoint); RTP still
  flows; the BYEs through node 2 delete the calls on that relay, a relay
  node 2 had never talked to about them.
- with_media_to: `rehome service` with media_to B: one re-INVITE per leg
  carries both moves, node 2's Contact and B's SDP, for the call that was
  on A as for the one already on B; RTP flows through B.
"""
import harness as h
from harness import nodes as lib
from harness import rtpengine
from harness.rtpengine import media_flows, sdp_media
from harness.ua import call, hang_up, uri_of

t = h.Test(__file__)

CALLS = 2


def setup(ctx):
    a = rtpengine.start(ctx, name='rtp_a', ip='127.0.0.30')
    b = rtpengine.start(ctx, name='rtp_b', ip='127.0.0.31')
    node1, node2 = lib.cluster(ctx, None, extra=[
        'media_relay %s' % a.ng, 'media_relay %s weight=1' % b.ng])
    for node in (node1, node2):
        assert h.wait_until(lambda: all(
            r['state'] == 'up'
            for r in rtpengine.relays(node).values()), 3)
    pairs = [rtpengine.endpoints(ctx) for _ in range(CALLS)]
    for caller, callee in pairs:
        call(node1.sip_addr, caller, callee, direct=True)
    assert h.wait_until(lambda: lib.replicas(node2) == CALLS, 5), \
        node2.dialog_counts()
    relays = dialogs_by_relay(node2)
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5)
    return (a, b), node2, pairs, relays


def dialogs_by_relay(node):
    status, data = node.ctl.get('/v1/dialogs')
    assert status == 200, data
    return {d['callid']: d['media_relay'] for d in data['dialogs']}


def rehome(node2, pairs, body):
    status, job = node2.ctl.post('/v1/rehome', body)
    assert status == 202, (status, job)

    def step():
        for caller, callee in pairs:
            caller.recv(0.01)
            callee.recv(0.01)
        return node2.ctl.get('/v1/jobs/%d' % job['job'])[1]['state'] == \
            'done'
    assert h.wait_until(step, 20, interval=0), 'job not done'
    done = node2.ctl.get('/v1/jobs/%d' % job['job'])[1]
    assert done['moved'] == CALLS and done['failed'] == 0, done


def reinvites(ua, first):
    """The in-dialog INVITEs ua got (the callee's first is the call's)."""
    invs = [m for m in ua.received if m.is_request and m.method == 'INVITE']
    return invs[1:] if first else invs


def one_reinvite_each(pairs, node2, relay_ip):
    """Each leg: exactly one re-INVITE, from node 2, with relay_ip's SDP;
    RTP flows through it."""
    for caller, callee in pairs:
        got = {}
        for ua, first in ((caller, False), (callee, True)):
            invs = reinvites(ua, first)
            assert len(invs) == 1, '%s got %d re-INVITEs' % (ua.name,
                                                             len(invs))
            inv = invs[0]
            assert node2.sip_addr in uri_of(inv.header('Contact')), \
                inv.header('Contact')
            assert sdp_media(inv.body)[0] == relay_ip, inv.body
            got[ua.name] = inv.body
        media_flows(caller, callee, got['alice'], got['bob'])


@t.test
def same_relay(ctx):
    (a, b), node2, pairs, relays = setup(ctx)
    by_ng = {a.ng: a, b.ng: b}
    for caller, callee in pairs:
        relay = by_ng[relays[caller.call_id]]
        for ua, first in ((caller, False), (callee, True)):
            ua.relay = relay
    rehome(node2, pairs, {'tag': 'service'})
    for caller, callee in pairs:
        one_reinvite_each([(caller, callee)], node2, caller.relay.ip)
    for caller, callee in pairs:
        did = [d for d in node2.ctl.get('/v1/dialogs')[1]['dialogs']
               if d['callid'] == caller.call_id][0]['did']
        assert caller.relay.knows('rh-' + did)
        hang_up(caller, callee)
        assert h.wait_until(lambda: not caller.relay.knows('rh-' + did), 3), \
            'the relay still has the call after the BYE via node 2'


@t.test
def with_media_to(ctx):
    (a, b), node2, pairs, relays = setup(ctx)
    # calls are shared by weight: one on each relay; all end up on dst
    dst = b
    assert set(relays.values()) == {a.ng, b.ng}, relays
    rehome(node2, pairs, {'tag': 'service', 'media_to': dst.ng})
    one_reinvite_each(pairs, node2, dst.ip)
    assert set(dialogs_by_relay(node2).values()) == {dst.ng}
    for caller, callee in pairs:
        hang_up(caller, callee)


t.main()
