"""test_cluster_join.py  A node joins under traffic and holds exactly the owner's calls.

node1 carries LONG calls (sipp, default 100 to stay short and clear of
UDP receive-buffer drops on a loaded CI machine, also under ASan;
REHOME_JOIN_CALLS sets it, 2000 was measured: every call held at sync)
while short calls (1 s each, 20/s) keep arriving and ending through it. node2 starts in the middle of that:

- when node2 first reports itself synced, it holds every long call node1
  served before node2 started, each with every field equal (the sync
  completeness is printed: held / expected);
- once the short calls are over, node1's served set and node2's replicas
  are the same set, field by field: none missing, none brought back
  after it ended (a snapshot read just before its call ended must not
  outlive the "ended" message, which may arrive first);
- node1 is killed; node2 re-homes every long call (rehome service; on a
  loaded machine a few may end before their turn), and every call ends
  normally with its BYE through node2.
"""
import os
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

LONG = int(os.environ.get('REHOME_JOIN_CALLS', '100'))
LONG_RATE = 50
SHORT_RATE = 20
SHORT_MS = 1000
# the short calls keep arriving for 6 s (times SLOW): node2, started 1.5 s
# in, is synced before they are over, also in a slow build
SHORT = int(h.slow(6) * SHORT_RATE)
# the pause outlasts set-up, the short calls, the join and the fail-over;
# sipp starts it again after the re-homing re-INVITE, so a call lasts
# about re-homing + LONG_MS, and the time-outs allow for a slow re-homing
LONG_MS = (LONG * 1000 // LONG_RATE + SHORT * 1000 // SHORT_RATE +
           24000)
SIPP_TIMEOUT_S = 2 * LONG_MS // 1000 + 40
CLUSTER = 'itj'


def start_node(ctx, redis, i, upstream):
    ip, port = '127.0.0.%d' % i, h.free_port()
    return ctx.rehomed(name='node%d' % i, node_id='node%d' % i,
                       redis=redis.addr, cluster=CLUSTER,
                       repl_secret='join-secret', upstream=upstream,
                       shtags={'service': 'active' if i == 1 else 'backup'},
                       listens=['%s:%s:%d tag=public' % (tp, ip, port)
                                for tp in ('udp', 'tcp')],
                       log_level=os.environ.get('REHOME_JOIN_LOG', 'info'),
                       extra=['node_timeout 1000'])


def served(node):
    return {k: d for k, d in lib.dialogs(node).items() if not d['replica']}


def settled(node):
    """node's served dialogs once two reads 0.3 s apart agree (the last
    ACKs and their 2xx bookkeeping change the calls just set up)."""
    last = {}
    for _ in range(30):
        now = served(node)
        if now == last:
            return now
        last = now
        time.sleep(0.3)
    raise AssertionError('the calls on %s do not settle' % node.name)


@t.test
def join_under_traffic(ctx):
    redis = ctx.redis()
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=LONG + SHORT,
                   timeout=SIPP_TIMEOUT_S + 10, trace=False)
    node1 = start_node(ctx, redis, 1, uas.target)
    assert h.wait_until(lambda: lib.status(node1).get('synced'), 10)

    long_calls = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                          calls=LONG, rate=LONG_RATE, duration=LONG_MS,
                          timeout=SIPP_TIMEOUT_S, trace=LONG <= 200,
                          name='long')
    uas.start()
    long_calls.start()
    lib.wait_confirmed(node1, LONG, LONG / LONG_RATE + 15)
    before = settled(node1)
    assert len(before) == LONG, len(before)

    short_calls = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                           calls=SHORT, rate=SHORT_RATE, duration=SHORT_MS,
                           timeout=60, trace=False, name='short')
    short_calls.start()
    time.sleep(1.5)     # short calls come and go all the time now

    started = time.monotonic()
    node2 = start_node(ctx, redis, 2, uas.target)
    assert h.wait_until(lambda: lib.status(node2).get('synced'), 20, 0.02)
    took = time.monotonic() - started
    at_sync = lib.dialogs(node2)
    held = {did for did in before if did in at_sync}
    equal = {did for did in held
             if not lib.replica_diffs({did: before[did]},
                                      {did: at_sync[did]})}
    print('  sync under traffic: %d of %d long calls held, %d equal, '
          'synced %.2f s after start, %d dialogs there' % (
              len(held), LONG, len(equal), took, len(at_sync)), flush=True)
    assert len(equal) == LONG, (len(held), len(equal))
    assert short_calls.alive(), 'the short calls were over before the join'

    short = short_calls.result()
    assert short.ok, short.why()

    def diffs():
        return lib.replica_diffs(served(node1), lib.dialogs(node2))
    assert h.wait_until(lambda: not diffs(), 5), diffs()[:5]
    assert len(served(node1)) == LONG

    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5), lib.status(node2)
    job = lib.post_job(node2, '/v1/rehome', {'tag': 'service'}, 60)
    assert job['failed'] == 0 and job['moved'] + job['ended'] == LONG, job

    caller, callee = long_calls.result(), uas.result(timeout=15)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 10), \
        node2.dialog_counts()


t.main()
