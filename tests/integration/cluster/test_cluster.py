"""test_cluster.py  Two rehomed nodes and a real redis-server.

- replicas_follow_calls: 50 calls through node 1 appear on node 2 (dialogs
  API) with every field equal, and disappear from both when they end.
- late_node_loads_snapshots: node 2 started while the 50 calls are up
  loads all of them from the snapshots.
- redis_restart: Redis killed and started again (empty) in the middle of
  a run: every call through node 1 completes, and node 2 holds all of them
  again after the reconnect.
- activation_race: both nodes activate the same tag at the same moment,
  100 times: never two actives at one epoch, and the loser steps down.
- replica_request_held: the serving rule of docs/cluster.md, on the wire.
- forged_message_dropped: a replication message with a bad HMAC (and an
  unsigned one) published straight into Redis changes nothing and is
  counted.
- unprotected_dialogs: rehome_dialogs_unprotected on the node serving a
  call: 0 with a backup, then by reason as the tag is released
  (tag_not_held) and Redis goes away (redis_down).
"""
import threading
import time

import json
import re
import subprocess

import harness as h  # noqa: E402
from harness import metrics as hm  # noqa: E402

t = h.Test(__file__)

CALLS = 50
CLUSTER = 'itc'
SECRET = 'it-secret'
TAG = 'service'


def node(ctx, redis, node_id, wish, upstream, start=True):
    return ctx.rehomed(start=start, name=node_id, node_id=node_id,
                       redis=redis.addr, cluster=CLUSTER,
                       repl_secret=SECRET, shtags={TAG: wish},
                       default_shtag=TAG, upstream=upstream,
                       extra={'node_timeout': 600})


def status(rh):
    code, data = rh.ctl.get('/v1/status')
    assert code == 200, 'status %s: %s' % (code, data)
    return data


def synced(rh):
    return status(rh).get('synced') is True


def dialogs(rh):
    """{did: dialog} of the dialogs API (every tag, up to 10000)."""
    code, data = rh.ctl.get('/v1/dialogs?limit=10000')
    assert code == 200, 'dialogs %s: %s' % (code, data)
    return {d['did']: d for d in data['dialogs']}


def confirmed_here(rh):
    return {k: d for k, d in dialogs(rh).items()
            if not d['replica'] and d['state'] == 'confirmed'}


def same_as_replicas(origin, replica_node, want=None):
    """The served dialogs of `origin` and the replicas of `replica_node`
    are the same set, every field equal but `replica`; returns the list
    of differences ([] when equal)."""
    mine = {k: d for k, d in dialogs(origin).items() if not d['replica']}
    theirs = dialogs(replica_node)
    diffs = []
    if want is not None and len(mine) != want:
        diffs.append('%d dialogs on %s, want %d' % (len(mine),
                                                    origin.name, want))
    if set(mine) != set(theirs):
        diffs.append('dids: %d only on %s, %d only on %s' % (
            len(set(mine) - set(theirs)), origin.name,
            len(set(theirs) - set(mine)), replica_node.name))
    for did in set(mine) & set(theirs):
        a, b = dict(mine[did]), dict(theirs[did])
        if not b.pop('replica'):
            diffs.append('%s is not a replica on %s' % (did,
                                                        replica_node.name))
        a.pop('replica')
        if a != b:
            diffs.append('%s differs: %s vs %s' % (did, a, b))
    return diffs


def wait_equal(origin, replica_node, want=None, timeout=10.0):
    diffs = h.wait_until(
        lambda: not same_as_replicas(origin, replica_node, want), timeout)
    assert diffs, '\n'.join(same_as_replicas(origin, replica_node,
                                             want)[:5])


def callee(ctx):
    return ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=CALLS)


@t.test
def replicas_follow_calls(ctx):
    redis = ctx.redis()
    uas = callee(ctx)
    n1 = node(ctx, redis, 'node1', 'active', uas.target)
    n2 = node(ctx, redis, 'node2', 'backup', uas.target)
    assert h.wait_until(lambda: synced(n1) and synced(n2), 10), \
        'not synced: %s / %s' % (status(n1), status(n2))

    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=CALLS, rate=50, duration=int(h.slow(6000)))
    uas.start()
    uac.start()

    assert h.wait_until(lambda: len(confirmed_here(n1)) == CALLS, 10), \
        '%d calls up on node1' % len(confirmed_here(n1))
    wait_equal(n1, n2, CALLS)

    caller, called = uac.result(), uas.result(timeout=5)
    assert caller.ok, caller.why()
    assert called.ok, called.why()
    assert h.wait_until(lambda: not dialogs(n1) and not dialogs(n2), 5), \
        'left: node1 %d, node2 %d' % (len(dialogs(n1)), len(dialogs(n2)))

    repl = status(n2)['repl']
    assert repl['dropped'] == 0, repl
    assert repl['received'] >= 3 * CALLS, repl

    # a clean stop says goodbye: node2 does not wait for the timeout
    assert n1.stop() == 0
    assert n2.wait_log(r'node node1 left \(said goodbye\)', 2), \
        n2.log_tail()


@t.test
def late_node_loads_snapshots(ctx):
    redis = ctx.redis()
    uas = callee(ctx)
    n1 = node(ctx, redis, 'node1', 'active', uas.target)
    assert h.wait_until(lambda: synced(n1), 10)

    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=CALLS, rate=50, duration=int(h.slow(8000)))
    uas.start()
    uac.start()
    assert h.wait_until(lambda: len(confirmed_here(n1)) == CALLS, 10), \
        '%d calls up on node1' % len(confirmed_here(n1))

    n2 = node(ctx, redis, 'node2', 'backup', uas.target)
    assert h.wait_until(lambda: synced(n2), 10)
    loaded = status(n2)['repl']['snapshots_loaded']
    assert loaded == CALLS, 'node2 loaded %d snapshots' % loaded
    wait_equal(n1, n2, CALLS, timeout=2)

    caller = uac.result()
    assert caller.ok, caller.why()
    assert h.wait_until(lambda: not dialogs(n2), 5), \
        'node2 still holds %d' % len(dialogs(n2))


@t.test
def redis_restart(ctx):
    redis = ctx.redis()
    uas = callee(ctx)
    n1 = node(ctx, redis, 'node1', 'active', uas.target)
    n2 = node(ctx, redis, 'node2', 'backup', uas.target)
    assert h.wait_until(lambda: synced(n1) and synced(n2), 10)

    # 10 calls/s for 5 s, each up 9 s: Redis dies with about 15 up
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=CALLS, rate=10, duration=9000)
    uas.start()
    uac.start()
    assert h.wait_until(lambda: len(dialogs(n2)) >= 10, 10)

    redis.stop()
    assert h.wait_until(
        lambda: status(n1)['redis']['state'] != 'up', 5)
    # calls go on meanwhile, unreplicated
    assert h.wait_until(
        lambda: status(n1)['repl']['pending_resnapshot'] > 0, 5), \
        status(n1)['repl']
    assert not status(n1)['synced']

    again = h.Redis(ctx.dir, name='redis-again', port=redis.port)
    ctx.procs.append(again)
    again.start()

    assert h.wait_until(lambda: synced(n1) and synced(n2), 10), \
        'not synced again: %s / %s' % (status(n1)['redis'],
                                       status(n2)['redis'])
    assert h.wait_until(lambda: len(confirmed_here(n1)) == CALLS, 10)
    wait_equal(n1, n2, CALLS)
    assert again.client.hget(CLUSTER + ':shtags', TAG).endswith(' node1')

    caller = uac.result()
    assert caller.ok, caller.why()
    assert h.wait_until(lambda: not dialogs(n1) and not dialogs(n2), 5)


def snapshot_msg(redis, did):
    """What a Redis snapshot "<version> <record>" holds after its version,
    the record "<seal>\\n<dialog>" (repl_publish.c), or None"""
    raw = redis.client.get('%s:dlg:%s' % (CLUSTER, did))
    return raw.partition(' ')[2] if raw else None


def snapshot(redis, did):
    """The dialog as its Redis snapshot holds it: dialog_codec.c's JSON,
    version 5, with short keys ("d" did, "s" state (1: confirmed), "c"
    Call-ID, "ck" its key, "f" From, "t" To, "tt" To tag, "a" the caller
    leg, its "k" contact key)."""
    raw = snapshot_msg(redis, did)
    return json.loads(raw.partition('\n')[2]) if raw else {}


def bye_to(peer, rh, dlg, wait=2.0):
    """A BYE from the caller leg of dlg (a snapshot), sent to rh with the
    identifiers rehomed gave that leg: the final responses received within
    `wait` seconds."""
    ruri = 'sip:rh-%s-a-%s@%s' % (dlg['d'], dlg['a']['k'], rh.sip_addr)
    bye = peer.request('BYE', ruri, call_id=dlg['c'], cseq=2)
    bye = re.sub(r'\r\nFrom: [^\r]*', lambda m: '\r\nFrom: ' + dlg['f'],
                 bye)
    bye = re.sub(r'\r\nTo: [^\r]*',
                 lambda m: '\r\nTo: %s;tag=%s' % (dlg['t'], dlg['tt']),
                 bye)
    peer.send(bye, rh.sip_addr)
    return [m for m in peer.recv(wait) if m.status and m.status >= 200]


def callee_callid(dlg):
    return 'rh-%s-%s' % (dlg['d'], dlg['ck'])


def held(responses):
    """The answer of a node that may not touch the dialog"""
    return (len(responses) == 1 and responses[0].status == 503 and
            responses[0].header('Retry-After'))


def settled(rh, quiet=0.5):
    """True when rh's dialogs stay the same for `quiet` seconds."""
    first = dialogs(rh)
    time.sleep(quiet)
    return dialogs(rh) == first


def call_on_two_nodes(ctx, redis=None):
    """node1 (active) and node2 (backup) with one call through node1, on
    `redis` (default: a new one): (n1, n2, uas, did, the dialog as node2
    holds it, its snapshot)."""
    redis = redis or ctx.redis()
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=1)
    n1 = node(ctx, redis, 'node1', 'active', uas.target)
    n2 = node(ctx, redis, 'node2', 'backup', uas.target)
    assert h.wait_until(lambda: synced(n1) and synced(n2), 10)

    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=1, rate=1, duration=60000)
    uas.start()
    uac.start()
    # the confirmed call: an early one still changes under us
    assert h.wait_until(lambda: len(confirmed_here(n1)) == 1 and
                        [d['state'] for d in dialogs(n2).values()] ==
                        ['confirmed'], 10)
    assert h.wait_until(lambda: settled(n2), 10)
    did, held_dlg = next(iter(dialogs(n2).items()))
    snap = snapshot(redis, did)
    assert snap.get('s') == 1, snap           # confirmed
    return n1, n2, uas, did, held_dlg, snap


@t.test
def replica_request_forwarded(ctx):
    """An in-dialog request that reaches the replica node while the owner
    is alive is forwarded to the owner, which serves it: the BYE ends the
    call at the callee, and on both nodes."""
    n1, n2, uas, did, before, snap = call_on_two_nodes(ctx)
    peer = ctx.udp()

    resp = bye_to(peer, n2, snap, wait=3.0)
    assert [r.status for r in resp] == [200], resp
    called = uas.result(timeout=5)
    byes = called.select('received', 'BYE')
    assert len(byes) == 1, called.why()
    assert byes[0].call_id == callee_callid(snap), byes[0].call_id
    assert n1.sip_addr in byes[0].header('Via'), byes[0].header('Via')
    assert h.wait_until(lambda: not dialogs(n1) and not dialogs(n2), 5)


@t.test
def replica_request_held(ctx):
    """While the owner is down and no node took the tag, an in-dialog
    request is not served (503 + Retry-After, dialog untouched); once the
    replica node takes the tag it serves it."""
    n1, n2, uas, did, before, snap = call_on_two_nodes(ctx)
    peer = ctx.udp()

    # owner down, tag not taken yet: nobody's to touch
    assert n1.stop() == 0
    assert h.wait_until(lambda: [n for n in status(n2)['nodes']
                                 if n['id'] == 'node1' and
                                 n['state'] == 'down'], 3)
    resp = bye_to(peer, n2, snap)
    assert held(resp), resp
    assert dialogs(n2)[did] == before

    # node2 takes the tag: it owns the call now and relays the BYE to the
    # callee (whose sipp answers toward node1, where the INVITE came from:
    # a sipp quirk, so the 200 is not awaited here)
    code, data = n2.ctl.post('/v1/shtags/%s/activate' % TAG)
    assert code == 200 and data['active'], (code, data)
    assert h.wait_until(lambda: not dialogs(n2)[did]['replica'], 3)
    assert dialogs(n2)[did]['owner'] == 'node2'
    resp = bye_to(peer, n2, snap, wait=1.0)
    assert not resp, resp
    called = uas.result(timeout=5)
    byes = called.select('received', 'BYE')
    assert len(byes) >= 1, called.why()
    assert byes[0].call_id == callee_callid(snap), byes[0].call_id
    assert n2.sip_addr in byes[0].header('Via'), byes[0].header('Via')


def activate_both(n1, n2, tag):
    """POST activate on both nodes at the same moment: [(node, code,
    data)]."""
    barrier = threading.Barrier(2)
    out = []

    def go(rh):
        barrier.wait()
        code, data = rh.ctl.post('/v1/shtags/%s/activate' % tag)
        out.append((rh.name, code, data))

    threads = [threading.Thread(target=go, args=(rh,)) for rh in (n1, n2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    return out


def tag_view(rh, tag):
    for s in status(rh)['shtags']:
        if s['name'] == tag:
            return s
    return None


@t.test
def activation_race(ctx):
    redis = ctx.redis()
    n1 = node(ctx, redis, 'node1', 'active', None)
    n2 = node(ctx, redis, 'node2', 'backup', None)
    assert h.wait_until(lambda: synced(n1) and synced(n2), 10)

    tag = 'race'
    wins = {'node1': 0, 'node2': 0}
    conflicts = 0
    for i in range(100):
        results = activate_both(n1, n2, tag)
        assert len(results) == 2, results
        won = [(name, data['epoch']) for name, code, data in results
               if code == 200 and data['active']]
        lost = [name for name, code, data in results if code == 409]
        assert len(won) + len(lost) == 2, 'round %d: %s' % (i, results)
        conflicts += len(lost)
        assert won, 'round %d: nobody won: %s' % (i, results)
        epochs = [e for _, e in won]
        assert len(set(epochs)) == len(epochs), \
            'round %d: two actives at one epoch: %s' % (i, results)

        # the last winner holds it; the other node is backup, same view
        holder = max(won, key=lambda w: w[1])
        other = n2 if holder[0] == 'node1' else n1
        me = n1 if holder[0] == 'node1' else n2

        def settled():
            a, b = tag_view(me, tag), tag_view(other, tag)
            return (a and b and a['active'] and not b['active'] and
                    a['epoch'] == b['epoch'] == holder[1] and
                    b['holder'] == holder[0])
        assert h.wait_until(settled, 3), 'round %d: %s / %s' % (
            i, tag_view(me, tag), tag_view(other, tag))
        wins[holder[0]] += 1

    stored = redis.client.hget(CLUSTER + ':shtags', tag)
    assert stored.split()[1] in wins, stored
    # both sides won sometimes, and compare-and-set refused some: it was
    # a real race
    assert wins['node1'] and wins['node2'], wins
    assert conflicts, 'no round had a loser'
    print('activation_race: wins %s, %d refused activations' % (
        wins, conflicts))


@t.test
def forged_message_dropped(ctx):
    redis = ctx.redis()
    uas = callee(ctx)
    n1 = node(ctx, redis, 'node1', 'active', uas.target)
    n2 = node(ctx, redis, 'node2', 'backup', uas.target)
    assert h.wait_until(lambda: synced(n1) and synced(n2), 10)
    chan = CLUSTER + ':repl:' + TAG
    sub = redis.client.pubsub()
    sub.subscribe(chan)

    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=1, rate=1, duration=int(h.slow(6000)))
    uas.start()
    uac.start()
    # wait for the settled call: an early one, or one whose ACK is still
    # on its way, changes under the comparison
    assert h.wait_until(lambda: [d['state'] for d in dialogs(n2).values()]
                        == ['confirmed'], 10)
    assert h.wait_until(lambda: settled(n2), 10)
    did, before = next(iter(dialogs(n2).items()))

    # a real message (the last with a dialog node1 published; Redis
    # keeps only the dialog), re-targeted: a new version, owned by
    # "mallory"
    real = None
    while True:
        m = sub.get_message(timeout=0.2)
        if not m:
            break
        if m['type'] == 'message' and '\n' in m['data']:
            real = m['data']
    sub.close()
    assert real, 'no replication message heard'
    assert h.wait_until(
        lambda: dict(redis.client.pubsub_numsub(chan))[chan] == 2, 5)
    sig, _, body = real.partition(' ')
    version = before['version']
    body = body.replace('"ver":%d' % version, '"ver":%d' % (version + 9)) \
        .replace('"n":%d' % version, '"n":%d' % (version + 9)) \
        .replace('"o":"node1"', '"o":"mallory"')
    assert '"o":"mallory"' in body
    forged = sig + ' ' + body            # old signature, new body
    unsigned = '-' * 64 + ' ' + body
    assert redis.client.publish(chan, forged) == 2
    assert redis.client.publish(chan, unsigned) == 2

    assert h.wait_until(lambda: status(n2)['repl']['dropped'] == 2, 5), \
        status(n2)['repl']
    after = dialogs(n2)[did]
    assert after == before, '%s\n%s' % (before, after)
    code, text = n2.ctl.get('/metrics')
    assert code == 200
    assert 'rehome_repl_messages_dropped_total{reason="bad_signature"} 1' \
        in text, text
    assert 'rehome_repl_messages_dropped_total{reason="unsigned"} 1' \
        in text, text

    caller = uac.result()
    assert caller.ok, caller.why()


def unprotected(rh, reason):
    """(rehome_dialogs_unprotected{reason}, the sum over reasons)"""
    m = hm.scrape(rh)
    return (m.value('rehome_dialogs_unprotected', reason=reason),
            m.sum('rehome_dialogs_unprotected'))


@t.test
def unprotected_dialogs(ctx):
    redis = ctx.redis()
    n1, n2 = call_on_two_nodes(ctx, redis)[:2]

    # served by the tag's holder, replicated to a live synced backup
    m = hm.scrape(n1)
    assert m.value('rehome_calls_total') == 1, m.text
    assert m.sum('rehome_dialogs_unprotected') == 0, m.text
    assert m.value('rehome_redis_up') == 1, m.text
    assert hm.scrape(n2).value('rehome_calls_total') == 0

    # nobody holds the tag: nobody is set to take the call over
    code, data = n1.ctl.post('/v1/shtags/%s/release' % TAG)
    assert code == 200, (code, data)
    assert h.wait_until(lambda: unprotected(n1, 'tag_not_held') == (1, 1),
                        3), hm.scrape(n1).text

    # Redis gone: nothing is written, whatever the tag
    redis.stop()
    assert h.wait_until(lambda: unprotected(n1, 'redis_down') == (1, 1),
                        5), hm.scrape(n1).text
    assert hm.scrape(n1).value('rehome_redis_up') == 0


def ctl(rh, *args, token=None):
    """Run rehomectl against rh: (exit status, stdout, stderr)."""
    cmd = [h.REHOMECTL, '-s', rh.ctl_addr, '-t', token or rh.token]
    res = subprocess.run(cmd + list(args), capture_output=True, text=True,
                         timeout=15)
    return res.returncode, res.stdout, res.stderr


@t.test
def rehomectl_both_nodes(ctx):
    """rehomectl talks to each node of the cluster: each reports itself and
    sees the other; a tag released on node1 is taken through node2; a wrong
    token is refused with exit status 1."""
    redis = ctx.redis()
    n1 = node(ctx, redis, 'node1', 'active', callee(ctx).target)
    n2 = node(ctx, redis, 'node2', 'backup', callee(ctx).target)
    assert h.wait_until(lambda: synced(n1) and synced(n2), 10)

    for rh, me, other in ((n1, 'node1', 'node2'), (n2, 'node2', 'node1')):
        assert h.wait_until(lambda: len(status(rh)['nodes']) == 2, 5)
        rc, out, err = ctl(rh, '--json', 'status')
        assert rc == 0, err
        st = json.loads(out)
        assert st['node_id'] == me, st['node_id']
        assert {n['id'] for n in st['nodes']} == {me, other}, st['nodes']
        rc, out, err = ctl(rh, 'status')
        assert rc == 0 and me in out and other in out, (rc, out, err)

    rc, out, err = ctl(n1, 'shtag', 'release', TAG)
    assert rc == 0, (rc, out, err)
    rc, out, err = ctl(n2, 'shtag', 'activate', TAG)
    assert rc == 0, (rc, out, err)
    assert h.wait_until(lambda: tag_view(n1, TAG)['holder'] == 'node2' and
                        tag_view(n2, TAG)['active'] and
                        not tag_view(n1, TAG)['active'], 5), \
        (tag_view(n1, TAG), tag_view(n2, TAG))

    for rh in (n1, n2):
        rc, out, err = ctl(rh, 'status', token='not-the-token')
        assert rc == 1 and 'token' in err, (rc, out, err)


t.main()
