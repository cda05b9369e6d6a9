"""test_policy_failback.py  failover.lua's FAILBACK option: the tags come home.

Two nodes on one Redis, both running policies/failover.lua with FAILBACK
set (and FAILBACK_DELAY_MS 1000, FAILBACK_RATE 20, to keep the test
short); node1 is active for the tag, node2 backup. 20 long calls go
through node1, which is killed: node2 takes the tag and re-homes them.
node1 is started again with its old config: it stays backup until it has
been up and synced for the delay, then takes the tag back by itself (one
forced rehome job, paced at 20/s), every endpoint gets a re-INVITE with
node1's Contact, node2 steps down, and every call ends normally through
node1.
"""
import os
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 20
# long enough for the test's steps, which take SLOW times longer
TALK_MS = int(h.slow(14000))
RATE = 20
DELAY_MS = 1000


def failback_policy(ctx):
    """failover.lua with FAILBACK on, beside a link to the Lua library."""
    src = open(os.path.join(h.SRC, 'policies', 'failover.lua')).read()
    for old, new in (('local FAILBACK = false', 'local FAILBACK = true'),
                     ('local FAILBACK_DELAY_MS = 5000',
                      'local FAILBACK_DELAY_MS = %d' % DELAY_MS),
                     ('local FAILBACK_RATE = 50',
                      'local FAILBACK_RATE = %d' % RATE)):
        assert old in src, old
        src = src.replace(old, new)
    os.makedirs(ctx.path('policies'), exist_ok=True)
    os.symlink(os.path.join(h.SRC, 'lua'), ctx.path('lua'))
    path = ctx.path('policies/failover.lua')
    with open(path, 'w') as f:
        f.write(src)
    return path


def tag_state(node, tag='service'):
    for x in lib.status(node).get('shtags', []):
        if x.get('name') == tag:
            return x.get('holder'), x.get('epoch')
    return None, None


def jobs(node):
    st, data = node.ctl.get('/v1/jobs')
    assert st == 200, data
    return data['jobs']


def rehomed_to(sipp, node):
    """Call-IDs that got a re-INVITE with node's Contact."""
    return {m.call_id for m in lib.reinvites(sipp)
            if node.sip_addr in (lib.contact_uri(m) or '')}


@t.test
def failback_after_restart(ctx):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=CALLS, timeout=60)
    redis = ctx.redis()
    common = dict(redis=redis.addr, cluster='rh%d' % redis.port,
                  repl_secret='test-secret-0123456789', upstream=uas.target,
                  policy=failback_policy(ctx))
    kws = []
    for i in (1, 2):
        ip, port = '127.0.0.%d' % i, h.free_port()
        kws.append(dict(common, name='node%d' % i, node_id='node%d' % i,
                        shtags={'service': 'active' if i == 1 else 'backup'},
                        listens=['%s:%s:%d tag=public' % (tp, ip, port)
                                 for tp in ('udp', 'tcp')]))
    node1, node2 = [ctx.rehomed(**kw) for kw in kws]
    assert h.wait_until(lambda: lib.synced(node1, 2) and
                        lib.synced(node2, 2), 10)

    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=CALLS, rate=100, duration=TALK_MS, timeout=60)
    uas.start()
    uac.start()
    lib.wait_confirmed(node1, CALLS)
    assert h.wait_until(lambda: lib.replicas(node2) >= CALLS, 5)
    _, epoch = tag_state(node2)

    lib.kill(ctx, node1)
    assert h.wait_until(lambda: jobs(node2) and
                        jobs(node2)[0]['state'] == 'done', 10), jobs(node2)
    assert jobs(node2)[0]['moved'] == CALLS, jobs(node2)
    assert tag_state(node2) == ('node2', epoch + 1)

    back = time.monotonic()
    node1 = ctx.rehomed(**dict(kws[0], name='node1-again'))
    assert h.wait_until(lambda: lib.synced(node1, 2), 10)
    synced = time.monotonic()
    assert node1.wait_log(r'service: held by live node node2')
    assert h.wait_until(lambda: tag_state(node2) == ('node1', epoch + 2),
                        DELAY_MS / 1000 + 8), tag_state(node2)
    took = time.monotonic()
    # (less the lag of the test's own polling behind node1's sync)
    assert took - synced >= DELAY_MS / 1000 - h.slow(0.3), (took - synced)
    assert node1.wait_log(r'fail-back: taking tag service back from node2')
    assert node2.wait_log(r'service: stepped down to backup, node1 holds')

    assert h.wait_until(lambda: jobs(node1) and
                        jobs(node1)[0]['state'] == 'done', 10), jobs(node1)
    job, = jobs(node1)
    assert (job['kind'], job['tag'], job['moved'], job['failed'],
            job['rate']) == ('rehome', 'service', CALLS, 0, RATE), job
    assert len(jobs(node2)) == 1, jobs(node2)
    print('  node1 back -> synced %.2f s -> tag back %.2f s' % (
        synced - back, took - back), flush=True)

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    for sipp in (uac, uas):
        assert len(rehomed_to(sipp, node1)) == CALLS, sipp.name
        bad = lib.per_call_cseqs_ok(sipp)
        assert not bad, '%s: CSeqs not increasing in %s' % (sipp.name, bad)
    byes = [m for _, m in lib.received(uas, 'BYE')]
    assert len(byes) == CALLS, len(byes)
    assert h.wait_until(lambda: node1.active_dialogs() == 0, 5)


t.main()
