"""test_cluster_join.py  A node joins under traffic and holds exactly the owner's calls.

node1 carries LONG calls (sipp, default 200 to stay short and clear of
UDP receive-buffer drops on a loaded CI machine; REHOME_JOIN_CALLS sets
it, 2000 was measured: every call held at sync) while short calls (1 s each, 100/s)
keep arriving and ending through it. node2 starts in the middle of that:

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

os.environ.setdefault('REHOME_TEST_PORTS', '33800-33999')

import harness as h  # noqa: E402
from harness import nodes as lib  # noqa: E402

t = h.Test(__file__)

LONG = int(os.environ.get('REHOME_JOIN_CALLS', '200'))
LONG_RATE = 250
SHORT = 500
SHORT_RATE = 100
SHORT_MS = 1000
# set up, the short calls, the join, the fail-over and re-homing, a margin
LONG_MS = LONG * 1000 // LONG_RATE + 30000
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


@t.test
def join_under_traffic(ctx):
    redis = ctx.redis()
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=LONG + SHORT,
                   timeout=LONG_MS // 1000 + 60, trace=False)
    node1 = start_node(ctx, redis, 1, uas.target)
    assert h.wait_until(lambda: lib.status(node1).get('synced'), 10)

    long_calls = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                          calls=LONG, rate=LONG_RATE, duration=LONG_MS,
                          timeout=LONG_MS // 1000 + 30, trace=LONG <= 200,
                          name='long')
    uas.start()
    long_calls.start()
    lib.wait_confirmed(node1, LONG, LONG / LONG_RATE + 15)
    before = served(node1)
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
    assert job['moved'] >= LONG * 0.9, job

    caller, callee = long_calls.result(), uas.result(timeout=15)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 10), \
        node2.dialog_counts()


t.main()
