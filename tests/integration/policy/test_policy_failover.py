"""test_policy_failover.py  policies/failover.lua: a dead node's calls move by themselves.

Three nodes on one Redis (node i on 127.0.0.i, default node_timeout), all
running the shipped failover policy; node1 is active for the tag, node2
and node3 are backups. 50 live calls go through node1, which is killed
with SIGKILL. Without any operator action the deterministic taker (node2,
the live node after node1) takes the tag and re-homes all 50 calls: each
endpoint gets a re-INVITE with node2's Contact, node3 sends nothing and
runs no job. Every call then ends normally (the caller's BYE, 200 at both
ends, sipp counts the call only then). The time from the SIGKILL to node2
seeing node1 down and to the last call re-homed is measured and printed
(targets: 1.5 s and 3 s). Then node1 is started again with its old config
(`shtag service active`): it finds the tag held by live node2, stays
backup, and nothing moves for several seconds (no flapping).
"""
import os
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 50
# long enough for the test's steps, which take SLOW times longer
TALK_MS = int(h.slow(8000))
NODES = 3
POLICY = os.path.join(h.SRC, 'policies', 'failover.lua')
DETECT_MAX_S = 1.5 + h.slow(0.1)  # node_timeout, plus how often we ask
REHOMED_MAX_S = 1.5 + h.slow(1.5)
STABLE_S = 5


def policy_cluster(ctx, upstream):
    """A Redis and three nodes with the failover policy and the default
    node_timeout, every node seeing the others up; returns (nodes, kw),
    kw being what it takes to start a node again (restart())."""
    redis = ctx.redis()
    common = dict(redis=redis.addr, cluster='rh%d' % redis.port,
                  repl_secret='test-secret-0123456789', upstream=upstream,
                  policy=POLICY)
    kws = []
    for i in range(1, NODES + 1):
        ip, port = '127.0.0.%d' % i, h.free_port()
        kws.append(dict(common, name='node%d' % i, node_id='node%d' % i,
                        shtags={'service': 'active' if i == 1 else 'backup'},
                        listens=['%s:%s:%d tag=public' % (tp, ip, port)
                                 for tp in ('udp', 'tcp')]))
    nodes = [ctx.rehomed(**kw) for kw in kws]
    ok = h.wait_until(lambda: all(lib.synced(x, NODES) for x in nodes), 10)
    assert ok, [lib.status(x) for x in nodes]
    return nodes, kws


def tag_state(node, tag='service'):
    """(holder, epoch) of a tag as a node sees it."""
    for x in lib.status(node).get('shtags', []):
        if x.get('name') == tag:
            return x.get('holder'), x.get('epoch')
    return None, None


def jobs(node):
    st, data = node.ctl.get('/v1/jobs')
    assert st == 200, data
    return data['jobs']


def rehome_acks(sipp, node_addr):
    """Times (Unix seconds) at which the endpoint got the ACK of a
    re-INVITE carrying node_addr in its Contact, one per call."""
    pending, done = {}, {}
    for when, m in lib.received(sipp):
        if m.method == 'INVITE' and node_addr in (lib.contact_uri(m) or ''):
            pending[m.call_id] = m.cseq[0]
        elif m.method == 'ACK' and pending.get(m.call_id) == m.cseq[0]:
            done[m.call_id] = when
    return done


@t.test
def failover_to_one_survivor(ctx):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=CALLS, timeout=60)
    (node1, node2, node3), kws = policy_cluster(ctx, uas.target)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=CALLS, rate=100, duration=TALK_MS, timeout=60)
    uas.start()
    uac.start()

    lib.wait_confirmed(node1, CALLS)
    for node in (node2, node3):
        assert h.wait_until(lambda: lib.replicas(node) >= CALLS, 5), \
            node.dialog_counts()
    holder, epoch = tag_state(node3)
    assert holder == 'node1', (holder, epoch)

    killed = time.time()
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5, 0.01), lib.status(node2)
    detected = time.time() - killed

    assert h.wait_until(lambda: node2.dialog_counts()['confirmed'] >= CALLS
                        and all(j['state'] == 'done' for j in jobs(node2))
                        and jobs(node2), 10), (node2.dialog_counts(),
                                               jobs(node2))
    job, = jobs(node2)
    assert (job['kind'], job['tag'], job['moved'], job['failed']) == \
        ('rehome', 'service', CALLS, 0), job
    assert jobs(node3) == [], jobs(node3)
    for node in (node2, node3):
        assert tag_state(node) == ('node2', epoch + 1), tag_state(node)
    assert node2.wait_log(r'takeover: node1 is down, taking tag service')
    assert 'takeover' not in node3.log(), node3.log_tail()

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    last = 0
    for sipp in (uac, uas):
        acks = rehome_acks(sipp, node2.sip_addr)
        assert len(acks) == CALLS, '%s: %d calls re-homed to node2' % (
            sipp.name, len(acks))
        last = max([last] + list(acks.values()))
        assert not rehome_acks(sipp, node3.sip_addr), sipp.name
        bad = lib.per_call_cseqs_ok(sipp)
        assert not bad, '%s: CSeqs not increasing in %s' % (sipp.name, bad)
    rehomed = last - killed
    print('  SIGKILL -> node1 down on node2: %.3f s; '
          '-> last of %d calls re-homed: %.3f s' % (detected, CALLS,
                                                     rehomed), flush=True)
    assert detected <= DETECT_MAX_S, 'detection took %.3f s' % detected
    assert rehomed <= REHOMED_MAX_S, 're-homing took %.3f s' % rehomed

    byes = callee.select('received', 'BYE')
    oks = caller.select('received', None, 200)
    assert len(byes) == CALLS, '%d BYEs at the callee' % len(byes)
    assert len([m for m in oks if m.cseq[1] == 'BYE']) == CALLS
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5), \
        node2.dialog_counts()

    # node1 comes back with its old config: backup, and it stays so
    node1 = ctx.rehomed(**dict(kws[0], name='node1-again'))
    assert h.wait_until(lambda: lib.synced(node1, NODES), 10), \
        lib.status(node1)
    assert node1.wait_log(r'service: held by live node node2'), \
        node1.log_tail()
    deadline = time.monotonic() + STABLE_S
    while time.monotonic() < deadline:
        for node in (node1, node2, node3):
            assert tag_state(node) == ('node2', epoch + 1), (
                node.name, tag_state(node))
        time.sleep(0.2)
    assert jobs(node1) == [] and len(jobs(node2)) == 1
    assert lib.metric(node1, 'rehome_shtag_active{shtag="service"}') == 0
    assert lib.metric(node2, 'rehome_shtag_active{shtag="service"}') == 1
    assert 'stepped down' not in node2.log(), node2.log_tail()


t.main()
