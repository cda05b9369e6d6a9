#!/usr/bin/env python3
"""@file dialog_memory.py  Memory per established dialog: owner, replica, Redis

Run by hand (it is not a test), from the repository's root, after
`meson compile -C build`:
    PYTHONPATH=tests/integration python3 bench/dialog_memory.py \
        [--calls 5000] [--rate 500] [--rehomed PATH]

A redis-server, node1 (active for the tag, serves every call) and node2
(backup, holds a replica of each), all on 127.0.0.1 (the integration
harness starts them in a temporary directory, ports in REHOME_TEST_PORTS,
default 30000-30999); sipp (tests/sipp/uac.xml -> uas.xml) sets up
--calls calls through node1, in two halves (two callers), and holds them
all up. It samples idle, then at each plateau: once node2 holds every
replica and Redis every snapshot of that half, and --settle seconds more
for node1's finished transactions to go (the method of bench_proxy.py):

- each node's marginal memory per dialog: PSS of anonymous + shared
  pages (smaps_rollup Pss_Anon + Pss_Shmem: the heap, not the share of
  libc that moves when other processes start) and RSS, growth from the
  half-way plateau to the full one divided by the dialogs added (from
  idle too: that also holds what short-lived peaks left behind). It
  includes the allocator's slack and the dialog table, as an operator
  sees it;
- Redis: used_memory (INFO memory) growth per snapshot key, MEMORY USAGE
  of one snapshot key, its encoding and the length of what it stores
  after its version (a record "<seal>\\n<dialog>"; the whole replication
  message in builds before records)
  (--listpack-value: with that hash-max-listpack-value, for the hash
  snapshots of a build from before dialog format 5; snapshots are strings
  since);
- the SDP bytes a dialog keeps: the distinct SDP bodies of one snapshot
  (a node keeps the last SDP of each direction once), so that "beyond
  the SDPs" is printed explicitly.

Trade-offs: the calls are not hung up: sampling done, everything is
stopped; everything shares
this machine, but memory, unlike CPU, does not depend on the load.
"""

import argparse
import json
import os
import sys
import time

import harness as h

os.environ.setdefault('REHOME_TEST_PORTS', '30000-30999')

CLUSTER = 'bench'
TAG = 'service'
SETTLE_S = 2.0


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--calls', type=int, default=5000)
    ap.add_argument('--rate', type=int, default=500,
                    help='calls per second (default 500)')
    ap.add_argument('--rehomed', default=h.REHOMED,
                    help='rehomed binary (default %(default)s)')
    ap.add_argument('--settle', type=float, default=34.0,
                    help='seconds from all calls up to a sample, for '
                    'the finished transactions to go (libre keeps them '
                    '64*T1 = 32 s; default %(default)s)')
    ap.add_argument('--listpack-value', type=int, metavar='BYTES',
                    help="Redis's hash-max-listpack-value (CONFIG SET) "
                    'before the calls: a snapshot hash whose message fits '
                    "stays a listpack (Redis's default, 64, makes it a "
                    'hash table); only builds from before dialog format 5 '
                    'store hashes')
    ap.add_argument('--dump', metavar='FILE',
                    help='write one stored snapshot message to FILE')
    return ap.parse_args()


def proc_mem(pid):
    """{'pss': anonymous + shmem PSS, 'rss': RSS} of one process, bytes."""
    mem = {'rss': 0, 'pss': 0}
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            key, _, rest = line.partition(':')
            kb = rest.split()[0] if rest.strip() else '0'
            if key == 'Rss':
                mem['rss'] += int(kb) * 1024
            elif key in ('Pss_Anon', 'Pss_Shmem'):
                mem['pss'] += int(kb) * 1024
    return mem


def status(rh):
    code, data = rh.ctl.get('/v1/status')
    if code != 200:
        raise h.TestFailure('status %s: %s' % (code, data))
    return data


def snapshot_keys(redis):
    return redis.client.keys('%s:dlg:*' % CLUSTER)


def sample(n1, n2, redis):
    return {'node1': proc_mem(n1.pid), 'node2': proc_mem(n2.pid),
            'redis': redis.client.info('memory')['used_memory']}


def snapshot_message(client, key):
    """What a snapshot stores after its version: the string "<version>
    <record>" (or "<version> <message>" before records) from
    dialog format 5 on, the hash {v, m} before."""
    if client.type(key) == 'hash':
        return client.hget(key, 'm')
    return client.get(key).partition(' ')[2]


def snapshot_dialog(message):
    """The dialog object of a stored record "<seal>\\n<dialog>" (or
    replication message "<signature> <header>\\n<dialog>")."""
    if isinstance(message, bytes):
        message = message.decode()
    return json.loads(message.split('\n', 1)[1])


def sdp_bytes(dlg):
    """Bytes of the distinct SDP bodies of a dialog (as a node keeps them);
    the reader of either form: a copy or a reference to the other leg's."""
    bodies = set()
    for leg in ('caller', 'callee', 'a', 'b'):     # long keys, short (5)
        for key in ('sdp_in', 'sdp_out', 'i', 'o'):
            v = dlg.get(leg, {}).get(key)
            if isinstance(v, str):
                bodies.add(v)
    return sum(len(b.encode()) for b in bodies), len(bodies)


def node(ctx, args, redis, node_id, wish, upstream):
    return ctx.rehomed(name=node_id, node_id=node_id, redis=redis.addr,
                       cluster=CLUSTER, repl_secret='bench-secret',
                       shtags={TAG: wish}, default_shtag=TAG,
                       upstream=upstream, log_level='info',
                       binary=args.rehomed)


def caller(ctx, args, n1, calls, hold_ms):
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=calls, rate=args.rate, duration=hold_ms,
                   timeout=hold_ms // 1000 + 60, trace=False)
    uac.start()
    return uac


def plateau(args, n1, n2, redis, calls):
    """Wait for `calls` dialogs up everywhere and the transactions gone."""
    all_up = h.wait_until(
        lambda: status(n2)['dialogs']['replicas'] >= calls and
        status(n1)['dialogs']['served'] >= calls and
        len(snapshot_keys(redis)) >= calls,
        calls / args.rate + 20)
    if not all_up:
        raise h.TestFailure('not all up: node1 %s, node2 %s' % (
            status(n1)['dialogs'], status(n2)['dialogs']))
    time.sleep(args.settle)
    return sample(n1, n2, redis)


def run(ctx, args):
    half = args.calls // 2
    hold_ms = int((args.calls / args.rate + 2 * args.settle + 60) * 1000)
    redis = ctx.redis()
    if args.listpack_value:
        redis.client.config_set('hash-max-listpack-value',
                                args.listpack_value)
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=args.calls,
                   timeout=hold_ms // 1000 + 60, trace=False)
    n1 = node(ctx, args, redis, 'node1', 'active', uas.target)
    n2 = node(ctx, args, redis, 'node2', 'backup', uas.target)
    if not h.wait_until(lambda: status(n1)['synced'] and
                        status(n2)['synced'], 10):
        raise h.TestFailure('nodes not synced')

    time.sleep(SETTLE_S)
    idle = sample(n1, n2, redis)
    uas.start()
    caller(ctx, args, n1, half, hold_ms)
    mid = plateau(args, n1, n2, redis, half)
    caller(ctx, args, n1, args.calls - half, hold_ms)
    up = plateau(args, n1, n2, redis, args.calls)

    keys = snapshot_keys(redis)
    message = snapshot_message(redis.client, keys[0])
    one_key = redis.client.memory_usage(keys[0])
    encoding = redis.client.object('encoding', keys[0])
    sdp, bodies = sdp_bytes(snapshot_dialog(message))
    if args.dump:
        with open(args.dump, 'w') as f:
            f.write(message)
    n = float(args.calls - half)

    print('calls: %d held up at %d/s; %d snapshot keys' % (
        args.calls, args.rate, len(keys)))
    print('SDP bytes kept per dialog: %d (%d distinct bodies)' % (
        sdp, bodies))
    for name, role in (('node1', 'owner'), ('node2', 'replica')):
        pss = (up[name]['pss'] - mid[name]['pss']) / n
        rss = (up[name]['rss'] - mid[name]['rss']) / n
        pss0 = (up[name]['pss'] - idle[name]['pss']) / float(args.calls)
        print('%s (%s): marginal PSS %.0f B/dialog (%.0f beyond SDP), '
              'RSS %.0f B/dialog; from idle: PSS %.0f B/dialog' % (
                  name, role, pss, pss - sdp, rss, pss0))
    print('redis: used_memory growth %.0f B/dialog (from idle: %.0f); '
          'one snapshot key: MEMORY USAGE %d B, encoding %s, record %d B'
          % ((up['redis'] - mid['redis']) / n,
             (up['redis'] - idle['redis']) / float(len(keys)), one_key,
             encoding, len(message)))


def main():
    args = parse_args()
    if not os.access(args.rehomed, os.X_OK):
        sys.exit('no rehomed at %s (use --rehomed)' % args.rehomed)

    ctx = h.Ctx('dialog-memory')
    failed = None
    try:
        run(ctx, args)
    except (AssertionError, h.TestFailure) as e:
        failed = str(e)
    finally:
        problems = ctx.close()
    if failed or problems:
        print('FAILED: %s %s\n%s' % (failed or '', '; '.join(problems),
                                     ctx.report()))
        sys.exit(1)


if __name__ == '__main__':
    main()
