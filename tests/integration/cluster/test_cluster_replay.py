"""test_cluster_replay.py  Replayed and stale cluster messages; two secrets.

- replayed_heartbeat_ignored: a real signed heartbeat of node1, captured
  from Redis pub/sub, is published again every 50 ms from before node1 is
  frozen (SIGSTOP: it keeps its Redis connection, so only its heartbeats
  can tell, not the closed connection of a killed node) until after:
  node2 still declares node1 down within node_timeout (plus a margin for
  the test's polling), and counts every copy as a replay (metric and
  status).
- stale_message_dropped: a heartbeat of a node nobody knows, correctly
  signed (the test knows the secret) but stamped 10 s in the past, is
  dropped as stale and the node never appears; the same made now (and
  beaten every 100 ms, as a live node does) is accepted (the positive
  control).
- two_secrets: node1 signs with A; node2, configured "B then A", hears
  it; node3, with B only, drops its messages as badly signed and never
  sees it; node2 and node3 (both signing with B) see each other.
"""
import hashlib
import hmac
import os
import signal
import threading
import time

import harness as h
from harness import nodes as lib

t = h.Test(__file__)

SECRET = 'replay-secret-0123456789'
NODE_TIMEOUT_MS = 1000
DETECT_MARGIN_S = h.slow(0.5)    # polling of the status, scheduling
REPLAY = 'rehome_repl_messages_dropped_total{reason="replay"}'
STALE = 'rehome_repl_messages_dropped_total{reason="stale"}'
BAD_SIG = 'rehome_repl_messages_dropped_total{reason="bad_signature"}'


def two_nodes(ctx, redis, cluster, secrets=None):
    """node1 (active) and node2 (backup) on `redis`, each seeing the other
    up; secrets: {node id: [secret, ...]} (default: SECRET for all)."""
    nodes = []
    for i, wish in ((1, 'active'), (2, 'backup')):
        nodes.append(node(ctx, redis, cluster, i, wish,
                          (secrets or {}).get(i, [SECRET])))
    assert h.wait_until(lambda: all(lib.synced(n, 2) for n in nodes), 10), \
        [lib.status(n) for n in nodes]
    return nodes


def node(ctx, redis, cluster, i, wish, secrets):
    """rehomed node<i> with its repl_secret lines in that order."""
    return ctx.rehomed(name='node%d' % i, node_id='node%d' % i,
                       redis=redis.addr, cluster=cluster,
                       repl_secret=secrets[0], shtags={'service': wish},
                       extra=['node_timeout %d' % NODE_TIMEOUT_MS] +
                       ['repl_secret %s' % s for s in secrets[1:]])


def capture_heartbeat(redis, cluster, node_id):
    """A heartbeat of node_id as it went over Redis, byte for byte (the
    client decodes latin-1, so the str publishes back unchanged)."""
    sub = redis.client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(cluster + ':nodes')
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = sub.get_message(timeout=1.0)
            if msg and '"node":"%s"' % node_id in msg['data']:
                return msg['data']
    finally:
        sub.close()
    raise h.TestFailure('no heartbeat of %s in 5 s' % node_id)


class Replayer(threading.Thread):
    """Publishes one message again and again until stopped."""

    def __init__(self, redis, chan, msg, every=0.05):
        super().__init__(daemon=True)
        self.redis, self.chan, self.msg, self.every = redis, chan, msg, every
        self.sent = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.redis.client.publish(self.chan, self.msg)
            self.sent += 1
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.sent


def dropped(node, reason):
    return lib.status(node)['messages']['dropped'][reason]


@t.test
def replayed_heartbeat_ignored(ctx):
    redis = ctx.redis()
    cluster = 'rp%d' % redis.port
    node1, node2 = two_nodes(ctx, redis, cluster)

    heartbeat = capture_heartbeat(redis, cluster, 'node1')
    replayer = Replayer(redis, cluster + ':nodes', heartbeat)
    replayer.start()
    try:
        # alive, its own heartbeats are newer than the copies
        assert h.wait_until(lambda: dropped(node2, 'replay') >= 5, 3), \
            lib.status(node2)['messages']
        assert lib.node_state(node2, 'node1') == 'up'

        killed = time.monotonic()
        os.kill(node1.pid, signal.SIGSTOP)
        down = h.wait_until(lambda: lib.node_state(node2, 'node1') ==
                            'down', NODE_TIMEOUT_MS / 1000 + 5, 0.02)
        detected = time.monotonic() - killed
        assert down, 'node1 kept up by its replayed heartbeat: %s' % \
            lib.status(node2)['nodes']

        time.sleep(1.0)   # and it stays down under the replays
        assert lib.node_state(node2, 'node1') == 'down'
    finally:
        sent = replayer.stop()
        lib.kill(ctx, node1)

    print('  node1 down %.3f s after SIGSTOP, %d copies published' % (
        detected, sent), flush=True)
    assert detected <= NODE_TIMEOUT_MS / 1000 + DETECT_MARGIN_S, \
        'node1 seen down after %.3f s' % detected

    # every copy was dropped as a replay, in the status and the metric
    # (the last copies may still be on their way to node2)
    def counted():
        replays = dropped(node2, 'replay')
        return replays >= sent - 2 and lib.metric(node2, REPLAY) == replays
    assert h.wait_until(counted, 5), '%d of %d copies counted' % (
        dropped(node2, 'replay'), sent)
    assert node2.wait_log(r'message from node1 dropped: a replay')
    assert 'node node1 left (heartbeat timeout)' in node2.log()
    assert lib.status(node2)['messages']['accepted'] > 0


def signed(secret, node_id, ts_ms, body, boot=0x5eed00000000beef, seq=1):
    """A message as cluster_msg.c writes it: "<seal> <stamp> <body>"."""
    stamped = '%016x %d %d %s %s' % (boot, seq, ts_ms, node_id, body)
    seal = hmac.new(secret.encode(), stamped.encode(),
                    hashlib.sha256).hexdigest()
    return seal + ' ' + stamped


def heartbeat_of(node_id):
    return ('{"node":"%s","state":"up","synced":true,"ts":1,'
            '"listeners":[]}' % node_id)


@t.test
def stale_message_dropped(ctx):
    redis = ctx.redis()
    cluster = 'st%d' % redis.port
    node1, node2 = two_nodes(ctx, redis, cluster)
    chan = cluster + ':nodes'

    old = signed(SECRET, 'node9', int(time.time() * 1000) - 10000,
                 heartbeat_of('node9'))
    assert redis.client.publish(chan, old) == 2
    assert h.wait_until(lambda: dropped(node2, 'stale') == 1 and
                        dropped(node1, 'stale') == 1, 3), \
        [lib.status(n)['messages'] for n in (node1, node2)]
    assert lib.metric(node2, STALE) == 1
    assert lib.node_state(node2, 'node9') is None
    assert node2.wait_log(r'message from node9 dropped: its clock is '
                          r'-1\d{4} ms off ours')

    # the same, made now, from another boot: node9 joins. Like a live
    # node it keeps beating (rising seq): one beat alone is forgotten after
    # node_timeout, which a slow poll under ASan could miss entirely.
    seq = [0]

    def beat_then_look():
        seq[0] += 1
        fresh = signed(SECRET, 'node9', int(time.time() * 1000),
                       heartbeat_of('node9'), boot=0x5eed00000000cafe,
                       seq=seq[0])
        assert redis.client.publish(chan, fresh) == 2
        return lib.node_state(node2, 'node9') == 'up'

    assert h.wait_until(beat_then_look, 5, interval=0.1)
    assert dropped(node2, 'stale') == 1


@t.test
def two_secrets(ctx):
    redis = ctx.redis()
    cluster = 'ks%d' % redis.port
    node1 = node(ctx, redis, cluster, 1, 'active', ['key-A-0123456789'])
    node2 = node(ctx, redis, cluster, 2, 'backup',
                 ['key-B-0123456789', 'key-A-0123456789'])
    node3 = node(ctx, redis, cluster, 3, 'backup', ['key-B-0123456789'])

    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'up' and
                        lib.node_state(node2, 'node3') == 'up' and
                        lib.node_state(node3, 'node2') == 'up', 10), \
        [lib.status(n)['nodes'] for n in (node2, node3)]

    # node3 cannot read node1, and says why; node2 reads everybody
    assert h.wait_until(lambda: dropped(node3, 'bad_signature') >= 5, 5)
    assert lib.node_state(node3, 'node1') is None, lib.status(node3)
    assert lib.metric(node3, BAD_SIG) >= 5
    assert dropped(node2, 'bad_signature') == 0, lib.status(node2)
    assert lib.metric(node2, BAD_SIG) == 0


t.main()
