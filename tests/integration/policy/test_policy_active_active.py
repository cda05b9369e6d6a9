"""test_policy_active_active.py  policies/active_active.lua: one tag per node.

Two nodes on one Redis, both running the shipped active-active policy:
node N has `shtag N active` and the other node's tag as backup. A caller
sends 20 calls to each node; each node gives its calls its own tag (seen
in GET /v1/dialogs: every call served by node1 has tag node1, every call
served by node2 tag node2). node1 is killed with SIGKILL; node2, the only
survivor, takes tag node1 and re-homes node1's 20 calls (both endpoints
get a re-INVITE with node2's Contact), while node2's own 20 calls see no
re-INVITE at all, at either end. Every call then ends normally (BYE, 200).
"""
import os

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 20                # per node
# long enough for the test's steps, which take SLOW times longer
TALK_MS = int(h.slow(7000))
POLICY = os.path.join(h.SRC, 'policies', 'active_active.lua')


def aa_cluster(ctx, upstream):
    redis = ctx.redis()
    common = dict(redis=redis.addr, cluster='rh%d' % redis.port,
                  repl_secret='test-secret-0123456789', upstream=upstream,
                  policy=POLICY)
    nodes = []
    for i in (1, 2):
        me, other = 'node%d' % i, 'node%d' % (3 - i)
        ip, port = '127.0.0.%d' % i, h.free_port()
        nodes.append(ctx.rehomed(
            name=me, node_id=me, shtags={me: 'active', other: 'backup'},
            default_shtag=me, listens=['%s:%s:%d tag=public' % (tp, ip, port)
                                       for tp in ('udp', 'tcp')],
            **common))
    ok = h.wait_until(lambda: all(lib.synced(x, 2) for x in nodes), 10)
    assert ok, [lib.status(x) for x in nodes]
    return nodes


def served_tags(node):
    """{tag: number of dialogs} of the dialogs the node serves itself."""
    st, data = node.ctl.get('/v1/dialogs?limit=10000')
    assert st == 200, data
    tags = {}
    for d in data['dialogs']:
        if not d['replica']:
            tags[d['shtag']] = tags.get(d['shtag'], 0) + 1
    return tags


def calls_by_node(uas, addrs):
    """{node address: [call-ids]} of the callee's calls, by the Contact
    of the initial INVITE (which node set the call up)."""
    out = {a: [] for a in addrs}
    for _, m in lib.received(uas, 'INVITE'):
        if 'tag=' in (m.header('To') or ''):
            continue
        contact = lib.contact_uri(m) or ''
        for a in addrs:
            if a in contact:
                out[a].append(m.call_id)
    return out


@t.test
def dead_nodes_calls_move_others_untouched(ctx):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=2 * CALLS, timeout=60)
    node1, node2 = aa_cluster(ctx, uas.target)
    uac1 = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                    calls=CALLS, rate=100, duration=TALK_MS, timeout=60,
                    name='uac-node1')
    uac2 = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node2.sip_addr,
                    calls=CALLS, rate=100, duration=TALK_MS, timeout=60,
                    name='uac-node2')
    uas.start()
    uac1.start()
    uac2.start()

    lib.wait_confirmed(node1, CALLS)
    lib.wait_confirmed(node2, CALLS)
    assert served_tags(node1) == {'node1': CALLS}, served_tags(node1)
    assert served_tags(node2) == {'node2': CALLS}, served_tags(node2)
    assert h.wait_until(lambda: lib.replicas(node2) >= CALLS, 5), \
        node2.dialog_counts()

    lib.kill(ctx, node1)
    done = h.wait_until(lambda: served_tags(node2) ==
                        {'node1': CALLS, 'node2': CALLS} and
                        lib.status(node2)['rehome']['jobs_running'] == 0,
                        10)
    assert done, (served_tags(node2), lib.status(node2)['rehome'])
    assert node2.wait_log(r'takeover: node1 is down, taking tag node1')

    results = [s.result() for s in (uac1, uac2)] + \
        [uas.result(timeout=10)]
    for r in results:
        assert r.ok, r.why()

    by_node = calls_by_node(uas, (node1.sip_addr, node2.sip_addr))
    assert len(by_node[node1.sip_addr]) == CALLS, by_node
    assert len(by_node[node2.sip_addr]) == CALLS, by_node
    moved = {m.call_id for m in lib.reinvites(uas)}
    assert moved == set(by_node[node1.sip_addr]), \
        'callee re-INVITEd on %d calls of node1, %d of node2' % (
            len(moved & set(by_node[node1.sip_addr])),
            len(moved & set(by_node[node2.sip_addr])))
    for m in lib.reinvites(uas) + lib.reinvites(uac1):
        assert node2.sip_addr in (lib.contact_uri(m) or ''), m.raw
    assert len(lib.reinvites(uac1)) == CALLS, len(lib.reinvites(uac1))
    assert lib.reinvites(uac2) == [], lib.reinvites(uac2)

    byes = results[2].select('received', 'BYE')
    assert len(byes) == 2 * CALLS, '%d BYEs at the callee' % len(byes)
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5), \
        node2.dialog_counts()


t.main()
