"""test_redis_cluster.py  Two nodes on a three-master Redis Cluster.

`redis_cluster HOST:PORT` names one master of a Redis Cluster (harness:
ctx.redis_cluster). node1 serves calls on tag A and backs up B, node2
the reverse; A and B are chosen so that their replication channels
(`rhc:repl:A`, `rhc:repl:B`) hash to slots of two different masters
(CLUSTER KEYSLOT, CLUSTER SLOTS):

- sharded: every key carries the hash tag {rhc}, so all of them sit on
  the one master of that slot and the others hold none; each backup
  holds the other node's calls as replicas; the dialog changes went out
  with SPUBLISH on the master of each tag's channel (INFO commandstats
  cmdstat_spublish on both), nothing with PUBLISH; each tag's channel
  has its two listeners on its own master (PUBSUB SHARDNUMSUB); no
  message is dropped (a sender's order holds per master only).
  Then node1 is killed: node2 re-homes A, every call on A moves to it
  and every call ends normally (sipp counts a call only with BYE/200 at
  both ends).
- taken_by_a_stranger: node1 holds A, node2 only B (nobody backs A up):
  node1 is killed, node2 re-homes A, joining its channel while up (an
  SSUBSCRIBE on a live connection) and loading its snapshots from the
  keys' master; the calls end normally through it.
- plain_redis_refused: a Redis Cluster node named with `redis`, or a
  standalone Redis named with `redis_cluster`, is refused with one
  error line and the node stays down without writing anything.
"""
import time

import harness as h
from harness import metrics as hm
from harness import nodes as lib
from harness.common import free_port

t = h.Test(__file__)

CALLS = 10
# long enough for the test's steps, which take SLOW times longer
TALK_MS = int(h.slow(10000))
CLUSTER = 'rhc'
SECRET = 'test-secret-0123456789'


def owner(master, name):
    """host:port of the master serving name's slot."""
    slot = master.client.execute_command('CLUSTER', 'KEYSLOT', name)
    for lo, hi, node, *_ in master.client.execute_command('CLUSTER',
                                                          'SLOTS'):
        if lo <= slot <= hi:
            host = node[0].decode() if isinstance(node[0], bytes) \
                else node[0]
            return '%s:%d' % (host, node[1])
    raise AssertionError('slot %d of %s unassigned' % (slot, name))


def two_tags(master):
    """Two tag names whose channels are served by different masters."""
    seen = {}
    for tag in 'ABCDEFGHIJKLMNOP':
        addr = owner(master, '%s:repl:%s' % (CLUSTER, tag))
        if seen and addr not in seen.values():
            return list(seen)[0], tag
        seen.setdefault(tag, addr)
    raise AssertionError('all tags on one master: %s' % seen)


def node(ctx, i, seed, upstream, shtags, default):
    port = free_port(2)
    ip = '127.0.0.%d' % i
    return ctx.rehomed(
        name='node%d' % i, node_id='node%d' % i, cluster=CLUSTER,
        repl_secret=SECRET, upstream=upstream, shtags=shtags,
        default_shtag=default,
        listens=['%s:%s:%d tag=public' % (tp, ip, port)
                 for tp in ('udp', 'tcp')],
        extra=['redis_cluster %s' % seed, 'node_timeout 1000'])


def cmdstat(master, cmd):
    stats = master.client.info('commandstats')
    return stats.get('cmdstat_%s' % cmd, {}).get('calls', 0)


def tag_replicas(n, tag):
    return hm.scrape(n).value('rehome_dialog_replicas', shtag=tag) or 0


@t.test
def sharded(ctx):
    masters = ctx.redis_cluster(3)
    by_addr = {m.addr: m for m in masters}
    a, b = two_tags(masters[0])
    keys = by_addr[owner(masters[0], '{%s}' % CLUSTER)]

    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=2 * CALLS)
    # named through a master that does not hold the keys: it is followed
    seed = next(m for m in masters if m is not keys).addr
    n1 = node(ctx, 1, seed, uas.target, {a: 'active', b: 'backup'}, a)
    n2 = node(ctx, 2, seed, uas.target, {a: 'backup', b: 'active'}, b)
    assert h.wait_until(lambda: lib.synced(n1, 2) and lib.synced(n2, 2),
                        10), (lib.status(n1), lib.status(n2))
    assert lib.status(n1)['redis']['addr'] == keys.addr, lib.status(n1)

    uacs = [ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=x.sip_addr,
                     calls=CALLS, rate=20, duration=TALK_MS)
            for x in (n1, n2)]
    uas.start()
    for uac in uacs:
        uac.start()
    lib.wait_confirmed(n1, CALLS)
    lib.wait_confirmed(n2, CALLS)
    assert h.wait_until(lambda: tag_replicas(n2, a) == CALLS and
                        tag_replicas(n1, b) == CALLS, 10), \
        (n1.dialog_counts(), n2.dialog_counts())

    # keys on one master only
    assert keys.client.dbsize() > 0
    assert [m.client.dbsize() for m in masters if m is not keys] == \
        [0, 0]

    # each tag's changes went through SPUBLISH on its own master
    chan = {tag: by_addr[owner(keys, '%s:repl:%s' % (CLUSTER, tag))]
            for tag in (a, b)}
    assert chan[a] is not chan[b]
    for tag in (a, b):
        assert cmdstat(chan[tag], 'spublish') >= 2 * CALLS, \
            (tag, chan[tag].addr, chan[tag].client.info('commandstats'))
        listeners = chan[tag].client.execute_command(
            'PUBSUB', 'SHARDNUMSUB', '%s:repl:%s' % (CLUSTER, tag))
        assert listeners[1] == 2, listeners
    assert sum(cmdstat(m, 'publish') for m in masters) == 0
    # one sender's messages keep their order per master: none dropped
    for x in (n1, n2):
        assert hm.scrape(x).sum('rehome_repl_messages_dropped_total') == 0

    # node1 dies: node2 re-homes A and the calls go on through it
    lib.take_over(ctx, n1, n2, a, CALLS)
    for sipp in uacs + [uas]:
        result = sipp.result(timeout=20)
        assert result.ok, '%s: %s' % (sipp.name, result.why())
    reinvites = [m for _, m in lib.received(uacs[0], 'INVITE')
                 if n2.sip_addr in (lib.contact_uri(m) or '')]
    assert len(reinvites) == CALLS, '%d re-INVITEs from node2' % len(
        reinvites)


@t.test
def taken_by_a_stranger(ctx):
    masters = ctx.redis_cluster(3)
    a, b = two_tags(masters[0])
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=CALLS)
    n1 = node(ctx, 1, masters[0].addr, uas.target, {a: 'active'}, a)
    n2 = node(ctx, 2, masters[0].addr, uas.target, {b: 'active'}, b)
    assert h.wait_until(lambda: lib.synced(n1, 2) and lib.synced(n2, 2),
                        10), (lib.status(n1), lib.status(n2))
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=CALLS, rate=20, duration=TALK_MS)
    uas.start()
    uac.start()
    lib.wait_confirmed(n1, CALLS)
    assert tag_replicas(n2, a) == 0, n2.dialog_counts()

    # node2 joins A's channel while up (SSUBSCRIBE on a live connection)
    lib.take_over(ctx, n1, n2, a, CALLS)
    assert n2.wait_log(r'tag %s: listening, loading its snapshots' % a)
    chan = '%s:repl:%s' % (CLUSTER, a)
    master = next(m for m in masters if m.addr == owner(masters[0], chan))
    assert master.client.execute_command('PUBSUB', 'SHARDNUMSUB',
                                         chan)[1] == 1
    for sipp in (uac, uas):
        result = sipp.result(timeout=20)
        assert result.ok, '%s: %s' % (sipp.name, result.why())


@t.test
def plain_redis_refused(ctx):
    masters = ctx.redis_cluster(3)
    plain = ctx.redis()
    n1 = ctx.rehomed(name='node1', node_id='node1', redis=masters[0].addr,
                     cluster=CLUSTER, repl_secret=SECRET)
    n2 = ctx.rehomed(name='node2', node_id='node2', cluster=CLUSTER,
                     repl_secret=SECRET,
                     extra=['redis_cluster %s' % plain.addr])
    assert n1.wait_log(r'error redis +%s is a Redis Cluster node '
                       r'\(cluster_enabled:1\): name it with '
                       r'`redis_cluster`' % masters[0].addr), n1.log()
    assert n2.wait_log(r'error redis +%s is not a Redis Cluster node '
                       r'\(cluster_enabled:0\): name it with `redis`'
                       % plain.addr), n2.log()
    # retried with backoff, logged once
    time.sleep(1.5)
    for n in (n1, n2):
        assert hm.scrape(n).value('rehome_redis_up') == 0
        assert n.log().count('error redis') == 1, n.log()
    assert [m.client.dbsize() for m in masters] == [0, 0, 0]
    assert plain.client.dbsize() == 0


t.main()
