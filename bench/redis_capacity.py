#!/usr/bin/env python3
"""@file redis_capacity.py  Redis work per call, one Redis's capacity on this
machine, and a model of where one Redis saturates from 2 to 100 nodes

Run by hand (it is not a test), from the repository's root:
`PYTHONPATH=tests/integration python3 bench/redis_capacity.py
[--nodes 2,3,4] [--calls 1000] [--cps 100] [--held 500] [--repeat 3]
[--json]`, after
`meson compile` (REHOMED points at the binary, default build/rehomed).

1. Per call, for each cluster size n of --nodes: a Redis and n rehomed
   nodes (tests/integration harness, loopback, ports in
   REHOME_TEST_PORTS, default 30000-30999), node 1 active for `service`.
   Redis's INFO commandstats and used_cpu are read before and after each
   phase, and a pattern subscriber counts every message published on the
   cluster's channels (and its bytes); PUBSUB NUMSUB gives each
   channel's subscribers, so deliveries = messages x subscribers (the
   counting subscriber left out). Phases: idle (heartbeats and leases
   only, --idle s, giving the background per second, subtracted from the
   other phases); --calls calls through node 1 (uac.xml, set up and
   hung up at once, at --cps); --held calls held, then moved to node 2
   in one POST /v1/move (100 %: the tag's compare-and-set, a re-INVITE
   per leg and its replicated changes), divided by the calls moved. The
   nodes' own rehome_repl_messages_received_total is shown beside the
   deliveries counted at Redis.
2. Capacity: a fresh Redis and redis-benchmark (-c 50), not pipelined
   and pipelined (-P 16), --repeat times each (the median kept):
   PUBLISH of a dialog's replication message (the last one with a
   dialog phase 1 published) with 0, 1, 4 and 16 subscribers (redis-cli
   processes), and
   EVALSHA of rehomed's own snapshot script (read from
   core/repl/repl_publish.c) writing a new dialog each time (random key)
   with that message, which also publishes it. Each run gives the rate
   the client saw and Redis's own CPU per request (INFO cpu): the CPU
   is what saturates Redis, and it does not depend on how much CPU the
   clients got. The cost of one delivery is the slope of PUBLISH's CPU
   over the subscribers.
3. The model: Redis CPU per call = the EVALSHAs measured per call x
   their benchmarked CPU + deliveries per call x the delivery CPU, plus
   the background per second (heartbeats: each node publishes, every node
   receives, so n^2 deliveries; leases: per node), at n = 2 .. 100; one
   Redis saturates when that reaches one core (Redis runs commands on
   one thread). Deliveries per change: today every node subscribes to
   the one replication channel (n per change); with per-tag channels,
   only the tag's backups (1 with one backup per tag). Redis Cluster with
   sharded pub/sub (SPUBLISH, a tag's channel and snapshot keys in one
   slot) divides the per-call work over the masters; the heartbeat
   fan-out stays n^2 wherever its channel lives.

Trade-offs: everything shares this machine's 2 cores with the nodes,
the sipps, redis-benchmark and its subscribers, and whatever else runs:
the costs are ceilings (a dedicated Redis core does better), the
pipelined figures are what Redis itself spends, the unpipelined ones
include a system call per command as at low load.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

import redis as redispy

import harness as h
from harness import nodes as lib
from common import in_ctx, log, slope

os.environ.setdefault('REHOME_TEST_PORTS', '30000-30999')

HOLD_MS = 600000
SUBSCRIBERS = (0, 1, 4, 16)
PIPELINES = (1, 16)
MODEL_NODES = (2, 3, 5, 10, 20, 50, 100)
MASTERS = 3                      # Redis Cluster masters in the model
OURS = ('info', 'pubsub|numsub', 'psubscribe')    # this script's commands


# ------------------------------------------------------------ counting

class Monitor:
    """A pattern subscriber counting messages and bytes per channel."""

    def __init__(self, redis, pattern):
        self.client = redispy.Redis(h.ENGINE_IP, redis.port)
        self.ps = self.client.pubsub(ignore_subscribe_messages=True)
        self.ps.psubscribe(pattern)
        self.counts = {}
        self.message = None    # the last replication message with a dialog
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            m = self.ps.get_message(timeout=0.2)
            if not m:
                continue
            chan = m['channel'].decode()
            with self.lock:
                n, size = self.counts.get(chan, (0, 0))
                self.counts[chan] = (n + 1, size + len(m['data']))
                if ':repl:' in chan and b'\n' in m['data']:
                    self.message = m['data'].decode()

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.ps.close()
        self.client.close()


def redis_state(redis, monitor, nodes):
    """Everything counted so far: Redis commands and CPU, messages per
    channel and their subscribers, the nodes' received counters."""
    c = redis.client
    stats = c.info('commandstats')
    cpu = c.info('cpu')
    msgs = monitor.snapshot()
    subs = dict(c.pubsub_numsub(*msgs)) if msgs else {}
    return {'time': time.monotonic(),
            'cmds': {k[len('cmdstat_'):]: v['calls']
                     for k, v in stats.items()},
            'cpu_s': cpu['used_cpu_sys'] + cpu['used_cpu_user'],
            'msgs': msgs, 'subs': subs,
            'received': sum(lib.metric(n, 'rehome_repl_messages_received_'
                                       'total') for n in nodes)}


def delta(a, b, idle=None, per=1.0):
    """b - a, less `idle` (per second) over the interval, divided by
    `per`: commands, CPU, messages, bytes, deliveries, received."""
    secs = b['time'] - a['time']
    idle = idle or {'cmds': {}, 'cpu_s': 0, 'msgs': {}, 'deliveries': 0,
                    'received': 0, 'bytes': 0}
    cmds = {k: (v - a['cmds'].get(k, 0) - idle['cmds'].get(k, 0) * secs)
            / per for k, v in b['cmds'].items()}
    msgs, size, deliveries = {}, 0, 0
    for chan, (n, nbytes) in b['msgs'].items():
        n0, b0 = a['msgs'].get(chan, (0, 0))
        msgs[chan] = (n - n0 - idle['msgs'].get(chan, 0) * secs) / per
        size += nbytes - b0
        deliveries += (n - n0) * b['subs'].get(chan, 0)
    return {'cmds': {k: v for k, v in cmds.items()
                     if abs(v) >= 0.005 and k not in OURS},
            'cpu_s': (b['cpu_s'] - a['cpu_s'] - idle['cpu_s'] * secs) / per,
            'msgs': msgs,
            'bytes': size / max(sum(n - a['msgs'].get(c, (0, 0))[0]
                                    for c, (n, _) in b['msgs'].items()), 1),
            'deliveries': (deliveries - idle['deliveries'] * secs) / per,
            'received': (b['received'] - a['received'] -
                         idle['received'] * secs) / per,
            'subs': b['subs']}


def per_call(ctx, n, a):
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=a.calls + a.held,
                   timeout=900, trace=False,
                   args=['-l', '100000', '-buff_size', str(4 << 20)])
    nodes = lib.cluster(ctx, uas.target, n=n, log_level='info',
                        node_timeout=None)
    redis = next(p for p in ctx.procs if isinstance(p, h.Redis))
    monitor = Monitor(redis, 'rh%d:*' % redis.port)
    try:
        return phases(ctx, nodes, redis, monitor, uas, a)
    finally:
        monitor.close()


def phases(ctx, nodes, redis, monitor, uas, a):
    node1 = nodes[0]
    uas.start()
    time.sleep(2)
    s0 = redis_state(redis, monitor, nodes)
    time.sleep(a.idle)
    s1 = redis_state(redis, monitor, nodes)
    idle = delta(s0, s1, per=s1['time'] - s0['time'])

    log('%d nodes: %d calls at %d/s' % (len(nodes), a.calls, a.cps))
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=a.calls, rate=a.cps, timeout=300, trace=False)
    uac.start()
    res = uac.result()
    if res.failed:
        log('%d calls failed (counted anyway): %s' % (res.failed,
                                                      res.why()[:300]))
    if not h.wait_until(lambda: all(x.dialog_counts()['total'] == 0
                                    for x in nodes), 40):
        log('dialogs left: %s' % [x.dialog_counts() for x in nodes])
    time.sleep(1)
    s2 = redis_state(redis, monitor, nodes)
    calls = delta(s1, s2, idle, a.calls)

    log('%d nodes: %d held calls, moved to node2' % (len(nodes), a.held))
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=a.held, rate=a.cps, duration=HOLD_MS, timeout=900,
                   trace=False, args=['-l', '100000'])
    uac.start()
    lib.wait_confirmed(node1, a.held, a.held / a.cps * 3 + 20)
    assert h.wait_until(lambda: all(
        lib.replicas(x) >= a.held for x in nodes[1:]), 30)
    msg = monitor.message
    assert msg, 'no replication message with a dialog seen'
    time.sleep(1)
    s3 = redis_state(redis, monitor, nodes)
    job = lib.post_job(node1, '/v1/move', {'tag': 'service', 'to': 'node2',
                                           'percent': 100}, timeout=120)
    time.sleep(1)
    s4 = redis_state(redis, monitor, nodes)
    moved = delta(s3, s4, idle, max(job['moved'], 1))
    return {'nodes': len(nodes), 'idle_per_s': idle, 'per_call': calls,
            'calls_failed': res.failed,
            'per_moved_call': moved, 'moved': job['moved'],
            'move_failed': job['failed'], 'snapshot_bytes':
            len(snapshot_record(redis)), 'message': msg}


def snapshot_record(redis):
    """One dialog's snapshot as Redis keeps it, after its version: a
    record "<seal>\\n<dialog>" (core/repl/repl_publish.c)."""
    c = redis.client
    for key in c.scan_iter(match='*:dlg:*', count=100):
        if c.type(key) == 'string':
            return c.get(key).partition(' ')[2]
    raise AssertionError('no snapshot in Redis')


# ------------------------------------------------------------ capacity

def put_script():
    """rehomed's snapshot script, from the C string in repl_publish.c."""
    with open(os.path.join(h.SRC, 'core', 'repl', 'repl_publish.c')) as f:
        src = f.read()
    body = re.search(r'put_lua\[\] =(.*?);\n', src, re.S).group(1)
    return ''.join(json.loads('"%s"' % s)
                   for s in re.findall(r'"((?:[^"\\]|\\.)*)"', body))


def redis_cpu_s(redis):
    cpu = redis.client.info('cpu')
    return cpu['used_cpu_sys'] + cpu['used_cpu_user']


def bench(redis, pipeline, requests, argv):
    """One redis-benchmark run: (requests per second as the client saw
    them, Redis's own CPU microseconds per request). The CPU is the
    figure that tells when Redis saturates: on this shared machine the
    rate also depends on how much CPU the client and subscribers got."""
    cpu0 = redis_cpu_s(redis)
    out = subprocess.run(
        ['redis-benchmark', '-h', h.ENGINE_IP, '-p', str(redis.port),
         '-c', '50', '-n', str(requests), '-P', str(pipeline),
         '-r', '100000000', '--csv'] + argv,
        capture_output=True, text=True, timeout=600, check=True).stdout
    head, row = out.strip().split('\n', 1)
    # the test's name (the command line, newlines and quotes unescaped)
    # comes first, so the figures are counted from the end
    rps = float(row.rsplit(',', head.count(','))[1].strip('"'))
    return rps, (redis_cpu_s(redis) - cpu0) * 1e6 / requests


def subscribers(ctx, redis, chan, k, procs):
    """k redis-cli processes subscribed to chan (started as needed)."""
    while len(procs) < k:
        p = h.Proc('sub%d' % len(procs), [
            'redis-cli', '-h', h.ENGINE_IP, '-p', str(redis.port),
            'subscribe', chan], os.devnull)
        ctx.procs.append(p)
        procs.append(p.start())
    ok = h.wait_until(lambda: dict(redis.client.pubsub_numsub(chan))
                      .get(chan) == k, 30)
    assert ok, 'subscribers: %s' % redis.client.pubsub_numsub(chan)


def median(runs):
    """The run of median Redis CPU, of [(rate, CPU)]."""
    return sorted(runs, key=lambda r: r[1])[len(runs) // 2]


def capacity(ctx, message, requests, repeat):
    redis = ctx.redis(name='redis-bench')
    chan = 'bench:repl'
    # a subscriber starved of CPU must not be cut off (32 MB by default)
    redis.client.config_set('client-output-buffer-limit', 'pubsub 0 0 0')
    sha = redis.client.script_load(put_script())
    # the record: an unsigned seal, the dialog cut out of the message
    put = ['EVALSHA', sha, '2', 'bench:dlg:__rand_int__', 'bench:shtags',
           'service', 'node1', '1', '1', message, '60000', chan, '0',
           '-' * 43, str(message.index('\n') + 1)]
    rows, procs = [], []
    for k in SUBSCRIBERS:
        subscribers(ctx, redis, chan, k, procs)
        for p in PIPELINES:
            pubs, evs = [], []
            for _ in range(repeat):
                pubs.append(bench(redis, p, requests,
                                  ['PUBLISH', chan, message]))
                evs.append(bench(redis, p, requests // 2, put))
                redis.client.flushall()
            pub, pub_us = median(pubs)
            ev, ev_us = median(evs)
            rows.append({'subscribers': k, 'pipeline': p,
                         'publish_per_s': round(pub),
                         'publish_us': round(pub_us, 2),
                         'evalsha_per_s': round(ev),
                         'evalsha_us': round(ev_us, 2)})
            log('capacity: %s' % rows[-1])
    return rows


def costs(rows, pipeline):
    """Redis CPU microseconds: PUBLISH to nobody, one delivery (the
    slope over the subscribers), one EVALSHA of a new dialog (its
    PUBLISH to nobody included), at this pipeline."""
    pts = [(r['subscribers'], r['publish_us']) for r in rows
           if r['pipeline'] == pipeline]
    ev = [(r['subscribers'], r['evalsha_us']) for r in rows
          if r['pipeline'] == pipeline]
    deliv = slope(pts)
    return {'publish_us': dict(pts)[0], 'delivery_us': deliv,
            'evalsha_us': dict(ev)[0],
            'evalsha_delivery_us': slope(ev)}


# ------------------------------------------------------------ the model

def model(measured, cost):
    """Redis microseconds per call and background per second at n nodes,
    today and with per-tag channels (one backup per tag), and the call
    rates that fill one Redis core (one Redis; Redis Cluster of MASTERS
    with sharded per-tag channels, the heartbeats on one of them)."""
    big = max(measured, key=lambda m: m['nodes'])
    nb = float(big['nodes'])
    pc = big['per_call']
    evals = pc['cmds'].get('evalsha', 0)
    changes = sum(v for c, v in pc['msgs'].items() if c.endswith(':repl'))
    # background per node per second: messages published, of which the
    # ones on channels every node subscribes to (heartbeats: n
    # deliveries each), the others delivered to their subscribers (the
    # node's own probe); lease renewals
    bg = big['idle_per_s']
    subs = bg['subs']
    pub = sum(bg['msgs'].values()) / nb
    fan = sum(v for c, v in bg['msgs'].items() if subs.get(c) == nb) / nb
    own = sum(v * subs.get(c, 0) for c, v in bg['msgs'].items()
              if subs.get(c) != nb) / nb
    leases = bg['cmds'].get('evalsha', 0) / nb
    out = []
    for n in MODEL_NODES:
        base = evals * cost['evalsha_us']
        today = base + changes * n * cost['delivery_us']
        tagged = base + changes * 1 * cost['delivery_us']
        back = n * (pub * cost['publish_us'] + leases * cost['evalsha_us'] +
                    (fan * n + own) * cost['delivery_us'])
        free = max(1e6 - back, 0)
        out.append({'nodes': n, 'us_per_call_today': round(today, 1),
                    'us_per_call_per_tag': round(tagged, 1),
                    'background_us_per_s': round(back),
                    'max_cps_today': int(free / today),
                    'max_cps_per_tag': int(free / tagged),
                    'max_cps_per_tag_cluster': int(MASTERS * free /
                                                   tagged)})
    return {'evalsha_per_call': round(evals, 2),
            'changes_per_call': round(changes, 2),
            'messages_per_node_s': round(pub, 2),
            'broadcasts_per_node_s': round(fan, 2),
            'lease_evals_per_node_s': round(leases, 2), 'rows': out}


# ------------------------------------------------------------ output

def show(r):
    for m in r['measured']:
        print('== %d nodes (snapshot record %d B)' % (
            m['nodes'], m['snapshot_bytes']))
        for what in ('idle_per_s', 'per_call', 'per_moved_call'):
            d = m[what]
            print('  %-15s Redis CPU %.1f us; commands %s' % (
                what, d['cpu_s'] * 1e6, ', '.join(
                    '%s %.2f' % kv for kv in sorted(d['cmds'].items()))))
            print('  %-15s messages %s (mean %d B); deliveries %.2f; '
                  'received by the nodes %.2f' % (
                      '', ', '.join('%s %.2f' % (c.partition(':')[2], v)
                                    for c, v in sorted(d['msgs'].items())),
                      d['bytes'], d['deliveries'], d['received']))
        print('  subscribers: %s' % ', '.join(
            '%s %d' % (c.partition(':')[2], k)
            for c, k in sorted(m['per_call']['subs'].items())))
        print('  calls failed %d; moved %d calls, %d failed' % (
            m['calls_failed'], m['moved'], m['move_failed']))
    print('== one Redis, redis-benchmark -c 50, requests per second '
          '(message %d B)' % r['message_bytes'])
    print('%12s %9s %12s %12s %12s %12s' % (
        'subscribers', 'pipeline', 'PUBLISH/s', 'Redis us', 'EVALSHA/s',
        'Redis us'))
    for c in r['capacity']:
        print('%12d %9d %12d %12.2f %12d %12.2f' % (
            c['subscribers'], c['pipeline'], c['publish_per_s'],
            c['publish_us'], c['evalsha_per_s'], c['evalsha_us']))
    for p, c in r['costs'].items():
        print('Redis CPU, pipeline %s: PUBLISH %.2f us + %.2f us per '
              'delivery; EVALSHA put %.2f us (+ %.2f us per subscriber)' % (
                  p, c['publish_us'], c['delivery_us'], c['evalsha_us'],
                  c['evalsha_delivery_us']))
    for p, mod in r['model'].items():
        print('== model, costs at pipeline %s: %.2f EVALSHA and %.2f '
              'messages per call; background per node and second: %.2f '
              'messages (%.2f to every node), %.2f lease EVALSHA' % (
                  p, mod['evalsha_per_call'], mod['changes_per_call'],
                  mod['messages_per_node_s'], mod['broadcasts_per_node_s'],
                  mod['lease_evals_per_node_s']))
        print('%6s %12s %12s %14s %12s %12s %16s' % (
            'nodes', 'us/call now', 'us/call tag', 'background',
            'max cps now', 'max cps tag', 'tag, %d masters' % MASTERS))
        print('measured Redis CPU per call (phase 1, %d cps): %s' % (
            r['cps'], ', '.join('%d nodes %.0f us' % (
                m['nodes'], m['per_call']['cpu_s'] * 1e6)
                for m in r['measured'])))
        for x in mod['rows']:
            print('%6d %12.1f %12.1f %11d us %12d %12d %16d' % (
                x['nodes'], x['us_per_call_today'],
                x['us_per_call_per_tag'], x['background_us_per_s'],
                x['max_cps_today'], x['max_cps_per_tag'],
                x['max_cps_per_tag_cluster']))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--nodes', default='2,3,4',
                    help='cluster sizes measured (default 2,3,4)')
    ap.add_argument('--calls', type=int, default=1000)
    ap.add_argument('--cps', type=int, default=100)
    ap.add_argument('--held', type=int, default=500)
    ap.add_argument('--idle', type=float, default=10.0,
                    help='seconds of the idle phase (default 10)')
    ap.add_argument('--requests', type=int, default=100000,
                    help='redis-benchmark requests per PUBLISH run '
                    '(EVALSHA: half)')
    ap.add_argument('--repeat', type=int, default=3,
                    help='redis-benchmark runs of each kind, the median '
                    'kept (default 3)')
    ap.add_argument('--json', action='store_true', help='JSON output')
    a = ap.parse_args()

    measured = [in_ctx(h, 'redis-calls-%s' % n, per_call, int(n), a)
                for n in a.nodes.split(',')]
    message = measured[-1]['message']
    for m in measured:
        del m['message']
    cap = in_ctx(h, 'redis-capacity', capacity, message, a.requests,
                 a.repeat)
    cost = {p: costs(cap, p) for p in PIPELINES}
    r = {'measured': measured, 'message_bytes': len(message), 'cps': a.cps,
         'capacity': cap, 'costs': cost,
         'model': {p: model(measured, c) for p, c in cost.items()}}
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        show(r)


if __name__ == '__main__':
    sys.exit(main())
