"""test_redis_ha.py  Redis high availability: Sentinel fail-over, passwords.

- sentinel_failover: a password-protected master, a replica and three
  sentinels on loopback; two rehomed nodes find the master through the
  sentinels (redis_sentinel, redis_master, redis_password) and run
  policies/failover.lua. Long calls go through node1, half hung up by the
  callers, half by the callees. The master is killed (SIGKILL): once
  Sentinel promoted the replica, both nodes follow (status: redis addr is
  the new master, up, synced), every call is still replicated on node2,
  and a new call through node1 works and is replicated to node2. Then
  node1 is killed too: node2's policy takes the tag and re-homes every
  call, and every call ends normally, its BYEs going through node2 both
  ways (callers' and callees').
- sentinel_switch_while_connected: SENTINEL FAILOVER (the old master
  stays up and becomes a replica): the node follows the +switch-master
  announcement, not a broken connection.
- redis_password: a Redis with requirepass: the right password (and an
  ACL user) connects, the wrong one is refused with one clear error line
  naming the keys to check, and the node stays unsynced.
"""
import os
import time

import redis as redispy

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

MASTER = 'rhmaster'
PASSWORD = 'redis-pass-0123456789'
SECRET = 'ha-secret-0123456789'
POLICY = os.path.join(h.SRC, 'policies', 'failover.lua')
CALLS = 10                   # per direction of hang-up
TALK_MS = 25000
NEW_TALK_MS = 15000
NODE_TIMEOUT_MS = 1000
FAILOVER_S = 15              # SIGKILL of the master to nodes following


def client(port, password=None):
    """A redis-py client of a server or sentinel on ENGINE_IP."""
    return redispy.Redis(h.ENGINE_IP, port, password=password,
                         socket_timeout=2, decode_responses=True,
                         encoding='latin-1')


class Server(h.Redis):
    """redis-server with more arguments; with a password, the test's own
    client authenticates too."""

    def __init__(self, workdir, name, args=(), password=None):
        super().__init__(workdir, name)
        self.argv += list(args)
        if password:
            self.argv += ['--requirepass', password, '--masterauth',
                          password]
            self.client = client(self.port, password)

    def role(self):
        """ROLE, or None while the server resets its clients: Sentinel
        has it drop them when it turns a master into a replica."""
        try:
            return self.client.execute_command('ROLE')[0]
        except redispy.ConnectionError:
            return None


class Sentinel(h.Proc):
    """redis-sentinel watching MASTER, with its own (rewritten) config."""

    def __init__(self, workdir, name, master, password=None):
        self.port = h.free_port()
        self.addr = '%s:%d' % (h.ENGINE_IP, self.port)
        conf = os.path.join(workdir, name + '.conf')
        lines = ['port %d' % self.port, 'bind %s' % h.ENGINE_IP,
                 'daemonize no', 'dir %s' % workdir,
                 'sentinel monitor %s %s %d 2' % (MASTER, h.ENGINE_IP,
                                                  master.port),
                 'sentinel down-after-milliseconds %s 1000' % MASTER,
                 'sentinel failover-timeout %s 3000' % MASTER,
                 'sentinel parallel-syncs %s 1' % MASTER]
        if password:
            lines.append('sentinel auth-pass %s %s' % (MASTER, password))
        with open(conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        self.client = client(self.port)
        super().__init__(name, ['redis-sentinel', conf],
                         os.path.join(workdir, name + '.log'))

    def start(self, timeout=10.0):
        super().start()
        if not h.wait_until(self._pong, timeout):
            raise h.TestFailure('%s not answering:\n%s' % (
                self.name, self.log_tail()))
        return self

    def stop(self, timeout=5.0):
        self.client.close()
        return super().stop(timeout)

    def _pong(self):
        try:
            return self.client.ping()
        except redispy.ConnectionError:
            return False

    def master(self):
        """{field: value} of SENTINEL MASTER (as the sentinel gives it),
        {} if it does not answer."""
        try:
            flat = self.client.execute_command('SENTINEL', 'MASTER',
                                               MASTER)
        except redispy.RedisError:
            return {}
        return dict(zip(flat[::2], flat[1::2]))

    def failover(self):
        return self.client.execute_command('SENTINEL', 'FAILOVER', MASTER)


def servers(ctx, password=None):
    """A master, its replica in sync and three sentinels that see both
    servers and each other: (master, replica, sentinels)."""
    master = Server(ctx.dir, 'redis-master', password=password)
    ctx.procs.append(master)
    master.start()
    replica = Server(ctx.dir, 'redis-replica', password=password,
                     args=['--replicaof', h.ENGINE_IP, str(master.port)])
    ctx.procs.append(replica)
    replica.start()
    sentinels = []
    for i in range(3):
        s = Sentinel(ctx.dir, 'sentinel%d' % (i + 1), master, password)
        ctx.procs.append(s)
        sentinels.append(s.start())

    def in_sync():
        info = master.client.info('replication')
        return info.get('slave0', {}).get('state') == 'online'

    def watched(s):
        m = s.master()
        return m.get('num-slaves') == '1' and \
            m.get('num-other-sentinels') == '2' and \
            m.get('flags') == 'master'
    assert h.wait_until(in_sync, 10), master.client.info('replication')
    assert h.wait_until(lambda: all(map(watched, sentinels)), 20), \
        [s.master() for s in sentinels]
    return master, replica, sentinels


def ha_nodes(ctx, sentinels, password):
    """node1 (active) and node2 (backup), both through the sentinels,
    with the failover policy, node i on 127.0.0.i."""
    extra = ['node_timeout %d' % NODE_TIMEOUT_MS,
             'redis_sentinel %s' % ','.join(s.addr for s in sentinels),
             'redis_master %s' % MASTER]
    if password:
        extra.append('redis_password %s' % password)
    nodes = []
    for i in (1, 2):
        ip, port = '127.0.0.%d' % i, h.free_port()
        nodes.append(ctx.rehomed(
            name='node%d' % i, node_id='node%d' % i,
            cluster='ha%d' % sentinels[0].port, repl_secret=SECRET,
            policy=POLICY, extra=extra,
            shtags={'service': 'active' if i == 1 else 'backup'},
            listens=['%s:%s:%d tag=public' % (tp, ip, port)
                     for tp in ('udp', 'tcp')]))
    assert h.wait_until(lambda: all(lib.synced(n, 2) for n in nodes), 15), \
        [lib.status(n) for n in nodes]
    return nodes


def calls(ctx, node, n, callee_hangs_up, talk_ms, name):
    """n calls through node to their own callee sipp (routed by the
    Request-URI); (caller, callee) sipps, started."""
    if callee_hangs_up:
        uac, uas = 'uac_wait_bye.xml', 'uas_hangup.xml'
        uac_d, uas_d = 0, talk_ms
    else:
        uac, uas = 'uac.xml', 'uas.xml'
        uac_d, uas_d = talk_ms, 0
    callee = ctx.sipp(uas, ip=h.CALLEE_IP, calls=n, duration=uas_d,
                      timeout=90, name=name + '-callee')
    caller = ctx.sipp(uac, ip=h.CALLER_IP, remote=node.sip_addr, calls=n,
                      rate=20, duration=uac_d, timeout=90,
                      ruri='sip:bob@%s:%d' % (h.CALLEE_IP, callee.port),
                      name=name + '-caller')
    callee.start()
    caller.start()
    return caller, callee


def redis_view(node):
    return lib.status(node)['redis']


def following(node, addr):
    st = lib.status(node)
    return (st['redis']['addr'] == addr and st['redis']['state'] == 'up'
            and st.get('synced'))


def dids(node, replica):
    code, data = node.ctl.get('/v1/dialogs?limit=10000')
    assert code == 200, data
    return {d['did'] for d in data['dialogs'] if d['replica'] == replica}


def byes_via(result, direction, node):
    """The BYEs an endpoint sent (their Request-URI) or received (their
    Via) that did not go through node: [] when all did."""
    byes = result.select(direction, 'BYE')
    assert byes, '%s: no BYE %s' % (result.name, direction)
    if direction == 'sent':
        return [m.start_line for m in byes
                if node.sip_addr not in m.start_line]
    return [m.header('Via') for m in byes
            if node.sip_addr not in (m.header('Via') or '')]


@t.test
def sentinel_failover(ctx):
    master, replica, sentinels = servers(ctx, PASSWORD)
    node1, node2 = ha_nodes(ctx, sentinels, PASSWORD)
    for n in (node1, node2):
        view = redis_view(n)
        assert view['addr'] == master.addr, view
        assert view['sentinel']['master'] == MASTER, view
        assert view['sentinel']['watching'], view

    pairs = [calls(ctx, node1, CALLS, False, TALK_MS, 'callers-bye'),
             calls(ctx, node1, CALLS, True, TALK_MS, 'callees-bye')]
    lib.wait_confirmed(node1, 2 * CALLS)
    assert h.wait_until(lambda: len(dids(node2, True)) == 2 * CALLS, 5)

    # the master dies; Sentinel promotes the replica; the nodes follow
    killed = time.monotonic()
    lib.kill(ctx, master)
    assert h.wait_until(lambda: all(following(n, replica.addr)
                                    for n in (node1, node2)),
                        FAILOVER_S, 0.1), \
        [redis_view(n) for n in (node1, node2)]
    print('  nodes on the new master %.1f s after SIGKILL' % (
        time.monotonic() - killed), flush=True)
    for n in (node1, node2):
        assert redis_view(n)['sentinel']['switches'] >= 1, redis_view(n)
        assert n.wait_log(r'master %s is 127\.0\.0\.1:%d' % (
            MASTER, replica.port))
    served = dids(node1, False)
    assert len(served) == 2 * CALLS, len(served)
    assert h.wait_until(lambda: dids(node2, True) == served, 5), \
        len(dids(node2, True))
    assert replica.role() == 'master'

    # a new call through node1 works and reaches node2's replicas
    pairs.append(calls(ctx, node1, 1, False, NEW_TALK_MS, 'new-call'))
    assert h.wait_until(lambda: len(dids(node1, False)) == 2 * CALLS + 1,
                        5)
    new = dids(node1, False) - served
    assert h.wait_until(lambda: new <= dids(node2, True), 5), new

    # node1 dies too: node2 takes the tag and re-homes every call
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        NODE_TIMEOUT_MS / 1000 + 2, 0.05)
    total = 2 * CALLS + 1
    assert h.wait_until(lambda: len(dids(node2, False)) == total, 10), \
        node2.dialog_counts()
    assert node2.wait_log(r'takeover: node1 is down, taking tag service')

    for caller, callee in pairs:
        a, b = caller.result(), callee.result(timeout=10)
        assert a.ok, a.why()
        assert b.ok, b.why()
        hung_up_by_callee = 'callees' in a.name
        ender, other = (b, a) if hung_up_by_callee else (a, b)
        assert not byes_via(ender, 'sent', node2), byes_via(
            ender, 'sent', node2)
        assert not byes_via(other, 'received', node2), byes_via(
            other, 'received', node2)
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5), \
        node2.dialog_counts()


@t.test
def sentinel_switch_while_connected(ctx):
    """A fail-over asked of Sentinel leaves the old master running (it
    becomes a replica): the node does not wait for its connection to
    break, it follows the +switch-master announcement."""
    master, replica, sentinels = servers(ctx)
    node1, _ = ha_nodes(ctx, sentinels, None)

    assert sentinels[1].failover()
    assert h.wait_until(lambda: following(node1, replica.addr), 10, 0.1), \
        redis_view(node1)
    assert node1.wait_log(r'Sentinel: master %s moved to 127\.0\.0\.1:%d'
                          % (MASTER, replica.port))
    assert master.alive()
    assert h.wait_until(lambda: master.role() == 'slave', 10)


@t.test
def redis_password(ctx):
    redis = Server(ctx.dir, 'redis', password=PASSWORD)
    ctx.procs.append(redis)
    redis.start()
    redis.client.acl_setuser('rehome', enabled=True,
                             passwords=['+user-pass-0123'], keys=['*'],
                             channels=['*'], categories=['+@all'])
    common = dict(redis=redis.addr, cluster='pw%d' % redis.port,
                  repl_secret=SECRET, shtags={'service': 'backup'})

    good = ctx.rehomed(name='good', node_id='good', **common,
                       extra=['redis_password %s' % PASSWORD])
    user = ctx.rehomed(name='user', node_id='user', **common,
                       extra=['redis_user rehome',
                              'redis_password user-pass-0123'])
    bad = ctx.rehomed(name='bad', node_id='bad', **common,
                      extra=['redis_password not-the-password'])

    assert h.wait_until(lambda: lib.synced(good, 2) and
                        lib.synced(user, 2), 10), \
        [lib.status(n) for n in (good, user)]
    assert redis.client.exists('pw%d:node:user' % redis.port) == 1

    assert bad.wait_log(r'refused AUTH'), bad.log_tail()
    time.sleep(3)   # several attempts: still one error line
    st = lib.status(bad)
    assert st['redis']['state'] != 'up' and not st['synced'], st
    assert 'WRONGPASS' in st['redis']['last_error'], st['redis']
    lines = [ln for ln in bad.log().splitlines() if 'refused AUTH' in ln]
    assert len(lines) == 1, lines
    assert 'check redis_password' in lines[0], lines[0]
    assert 'not-the-password' not in bad.log()
    assert lib.node_state(good, 'bad') is None


t.main()
