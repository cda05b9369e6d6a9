"""test_cluster_scope.py  Replication reaches only the nodes backing a tag up.

Three nodes on one Redis: node1 `shtag A active`, node2 `shtag A backup`
and `shtag B active`, node3 `shtag B backup` only. Each dialog change is
published on its tag's channel (`C:repl:A`, `C:repl:B`), and a node
listens to its own tags only:

- scoped: calls on A through node1 and on B through node2. Redis counts
  two listeners per tag's channel (PUBSUB NUMSUB), node2 holds A's
  replicas and node3 B's, node3 none of A's and node1 none of B's; by
  rehome_repl_messages_received_total, node1 receives nothing (nobody
  else writes A), node2 exactly what node1 sent, node3 exactly what
  node2 sent. Heartbeats say which tags each node listens to (status
  nodes[].repl_tags), and a call counts as protected by a node that
  listens to its tag.
- taken_by_a_stranger: node1 is killed and node3, which never listened
  to A, re-homes it: it subscribes to A, loads A's snapshots, moves
  every call of A, and the calls end normally through it (sipp counts a
  call only with BYE/200 at both ends); node2, A's backup, follows. When
  node2 then takes A, node3 unsubscribes from it.
"""
import harness as h
from harness import metrics as hm
from harness import nodes as lib

t = h.Test(__file__)

CALLS = 10
# long enough for the test's steps, which take SLOW times longer
TALK_MS = int(h.slow(10000))
TAGS = {1: {'A': 'active'},
        2: {'A': 'backup', 'B': 'active'},
        3: {'B': 'backup'}}
DEFAULT = {1: 'A', 2: 'B', 3: 'B'}


def start(ctx):
    """node1..3, a callee, and CALLS calls on A (node1) and on B (node2),
    not started yet."""
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=2 * CALLS)
    nodes = lib.cluster(ctx, uas.target, n=3, node_kw=lambda i: dict(
        shtags=TAGS[i], default_shtag=DEFAULT[i]))
    uacs = [ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node.sip_addr,
                     calls=CALLS, rate=20, duration=TALK_MS)
            for node in nodes[:2]]
    uas.start()
    for uac in uacs:
        uac.start()
    lib.wait_confirmed(nodes[0], CALLS)
    lib.wait_confirmed(nodes[1], CALLS)
    return nodes, uas, uacs


def repl(node):
    return lib.status(node)['repl']


def received(node):
    return hm.scrape(node).value('rehome_repl_messages_received_total')


def tag_replicas(node, tag):
    return hm.scrape(node).value('rehome_dialog_replicas', shtag=tag) or 0


def settled(n1, n2, n3):
    """Every change sent has reached the nodes listening to its tag."""
    return received(n2) == repl(n1)['sent'] and \
        received(n3) == repl(n2)['sent'] and \
        tag_replicas(n2, 'A') == CALLS and tag_replicas(n3, 'B') == CALLS


def listeners(redis, cluster, tag):
    return redis.client.pubsub_numsub('%s:repl:%s' % (cluster, tag))[0][1]


@t.test
def scoped(ctx):
    (n1, n2, n3), uas, uacs = start(ctx)
    redis = n1.redis_server
    cluster = 'rh%d' % redis.port
    assert listeners(redis, cluster, 'A') == 2
    assert listeners(redis, cluster, 'B') == 2
    assert redis.client.pubsub_numsub('%s:repl' % cluster)[0][1] == 0

    assert h.wait_until(lambda: settled(n1, n2, n3), 10), \
        [(repl(n)['sent'], received(n)) for n in (n1, n2, n3)]
    assert repl(n1)['sent'] >= 2 * CALLS, repl(n1)
    assert received(n1) == 0, repl(n1)
    assert tag_replicas(n3, 'A') == 0, n3.dialog_counts()
    assert tag_replicas(n1, 'B') == 0, n1.dialog_counts()
    assert lib.replicas(n3) == CALLS, n3.dialog_counts()

    # each node tells which tags it keeps, and counts its calls protected
    # by a node that does
    info = {x['id']: x.get('repl_tags') for x in lib.status(n1)['nodes']}
    assert info == {'node1': 'A', 'node2': 'A B', 'node3': 'B'}, info
    for node in (n1, n2):
        assert hm.scrape(node).sum('rehome_dialogs_unprotected') == 0

    for sipp in uacs + [uas]:
        assert sipp.result(timeout=20).ok, sipp.result().why()


@t.test
def taken_by_a_stranger(ctx):
    (n1, n2, n3), uas, uacs = start(ctx)
    redis = n1.redis_server
    cluster = 'rh%d' % redis.port
    assert h.wait_until(lambda: tag_replicas(n2, 'A') == CALLS, 5)
    assert tag_replicas(n3, 'A') == 0, n3.dialog_counts()

    lib.take_over(ctx, n1, n3, 'A', CALLS)
    assert n3.wait_log(r'tag A: listening, loading its snapshots')
    assert listeners(redis, cluster, 'A') == 2     # node2, node3

    for sipp in uacs + [uas]:
        result = sipp.result(timeout=20)
        assert result.ok, '%s: %s' % (sipp.name, result.why())
    reinvites = [m for _, m in lib.received(uacs[0], 'INVITE')
                 if n3.sip_addr in (lib.contact_uri(m) or '')]
    assert len(reinvites) == CALLS, '%d re-INVITEs from node3' % len(
        reinvites)
    assert h.wait_until(lambda: n3.active_dialogs() == 0 and
                        lib.replicas(n2) == 0, 5), \
        (n3.dialog_counts(), n2.dialog_counts())

    # node2, A's backup, takes it: node3 lets go of what it never backed up
    code, data = n2.ctl.post('/v1/shtags/A/activate')
    assert code == 200 and data['holder'] == 'node2', (code, data)
    assert n3.wait_log(r'tag A: node2 took it, no longer listening')
    assert h.wait_until(lambda: listeners(redis, cluster, 'A') == 1, 5)
    assert listeners(redis, cluster, 'B') == 2


t.main()
