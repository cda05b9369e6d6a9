"""test_cluster_expiry.py  A replica nobody updates expires after dialog_timeout.

A call goes through node 1 and is replicated to node 2; node 1 dies and
nobody takes its tag over, so no end of the call will ever be replicated.
Node 2 forgets the replica on its own once it has not been updated for
`dialog_timeout` (3 s here), as the owner would have ended the dialog.
"""
import time

import harness as h
from harness import nodes as lib
from harness.rawua import Call, Ua

t = h.Test(__file__)

TIMEOUT = 3


def nodes(ctx, upstream):
    redis = ctx.redis()
    out = []
    for i in (1, 2):
        port = h.free_port()
        out.append(ctx.rehomed(
            name='node%d' % i, node_id='node%d' % i,
            shtags={'service': 'active' if i == 1 else 'backup'},
            listens=['%s:127.0.0.%d:%d tag=public' % (tp, i, port)
                     for tp in ('udp', 'tcp')],
            redis=redis.addr, cluster='rh%d' % redis.port,
            repl_secret='test-secret-0123456789', upstream=upstream,
            extra={'node_timeout': 1000, 'dialog_timeout': TIMEOUT}))
    ok = h.wait_until(lambda: all(lib.synced(x, 2) for x in out), 10)
    assert ok, [x.ctl.get('/v1/status')[1] for x in out]
    return out


@t.test
def replica_expires(ctx):
    caller, callee = Ua(ctx, h.CALLER_IP), Ua(ctx, h.CALLEE_IP)
    node1, node2 = nodes(ctx, 'udp:' + callee.addr)
    call = Call(caller, callee, node1.sip_addr)
    call.setup()
    acked = time.monotonic()
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5), \
        node2.dialog_counts()

    lib.kill(ctx, node1)
    assert lib.replicas(node2) == 1, 'gone before its time'
    assert h.wait_until(lambda: lib.replicas(node2) == 0, TIMEOUT + 3), \
        node2.dialog_counts()
    waited = time.monotonic() - acked
    assert waited >= TIMEOUT - 0.5, 'dropped after %.1f s' % waited
    assert node2.wait_log('replica not updated for dialog_timeout'), \
        node2.log_tail()


t.main()
