#!/usr/bin/env python3
"""@file repl_lag.py  Replication lag and Redis memory per dialog, two nodes

Run by hand (it is not a test), from the repository's root:
    PYTHONPATH=tests/integration python3 bench/repl_lag.py \
        [--calls 1000] [--rate 200] [--rehomed PATH]

A redis-server, node1 (active for the tag) and node2 (backup), all on
127.0.0.1, and a sipp caller/callee pair that sets up --calls calls through
node1 and holds them all up at once, then hangs them up. It prints:

- replication lag: for every replication message node2 applied, the time
  from node1's change (the `ts` node1 puts in the message, microseconds,
  same host so same clock) to node2 having it in its dialog table; p50,
  p99 and max, from node2's status (`repl.lag_us`, the last 8192 samples,
  so keep --calls * 4 below that). It includes node1 encoding and signing,
  the Redis script (fence, version, snapshot write, publish), node2's
  verification, decoding and table update.
- Redis memory per dialog: used_memory (INFO memory) with every call up
  minus the idle figure, divided by the number of snapshot keys; plus
  MEMORY USAGE of one snapshot key (the key alone, no allocator slack).

Every process is a child of this script (the integration harness starts
them in a temporary directory) and is stopped by its PID at the
end. Ports: REHOME_TEST_PORTS, default 27100-27299.
"""

import argparse
import os
import sys
import time

import harness as h

os.environ.setdefault('REHOME_TEST_PORTS', '27100-27299')

CLUSTER = 'bench'
TAG = 'service'


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--calls', type=int, default=1000)
    ap.add_argument('--rate', type=int, default=200,
                    help='calls per second (default 200)')
    ap.add_argument('--rehomed', default=h.REHOMED,
                    help='rehomed binary (default %(default)s)')
    ap.add_argument('--sipp-nice', type=int, default=0,
                    help='run both sipps at this nice level: on a machine '
                    'with fewer cores than busy processes, the nodes and '
                    'Redis then get a CPU as soon as they wake up, so the '
                    'lag measured is the pipeline\'s, not the wait for a '
                    'core (default 0: no change)')
    ap.add_argument('--rt', action='store_true',
                    help='run both nodes and Redis SCHED_FIFO (root): they '
                    'never wait for a core behind the sipps, so the lag '
                    'left is the pipeline\'s own (a diagnostic, not a '
                    'deployment setting)')
    return ap.parse_args()


def info_memory(redis):
    return redis.client.info('memory')['used_memory']


def snapshot_keys(redis):
    return redis.client.keys('%s:dlg:*' % CLUSTER)


def cpu_s(proc):
    """utime + stime of a child, in seconds."""
    with open('/proc/%d/stat' % proc.pid) as f:
        fields = f.read().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def status(rh):
    code, data = rh.ctl.get('/v1/status')
    if code != 200:
        raise h.TestFailure('status %s: %s' % (code, data))
    return data


def node(ctx, args, redis, node_id, wish, upstream):
    return ctx.rehomed(name=node_id, node_id=node_id, redis=redis.addr,
                       cluster=CLUSTER, repl_secret='bench-secret',
                       shtags={TAG: wish}, default_shtag=TAG,
                       upstream=upstream, log_level='info',
                       binary=args.rehomed)


def run(ctx, args):
    hold_ms = int(args.calls / args.rate * 1000) + 8000
    redis = ctx.redis()
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=args.calls,
                   timeout=hold_ms // 1000 + 60)
    n1 = node(ctx, args, redis, 'node1', 'active', uas.target)
    n2 = node(ctx, args, redis, 'node2', 'backup', uas.target)
    if not h.wait_until(lambda: status(n1)['synced'] and
                        status(n2)['synced'], 10):
        raise h.TestFailure('nodes not synced')

    idle = info_memory(redis)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=n1.sip_addr,
                   calls=args.calls, rate=args.rate, duration=hold_ms,
                   timeout=hold_ms // 1000 + 60)
    uas.start()
    uac.start()
    for sipp in (uas, uac):
        os.setpriority(os.PRIO_PROCESS, sipp.pid, args.sipp_nice)
    for proc in (n1, n2, redis) if args.rt else ():
        os.sched_setscheduler(proc.pid, os.SCHED_FIFO, os.sched_param(1))
    procs = {'node1': n1, 'node2': n2, 'redis': redis, 'caller': uac,
             'callee': uas}
    cpu0 = {k: cpu_s(p) for k, p in procs.items()}

    started = time.monotonic()
    all_up = h.wait_until(
        lambda: status(n2)['dialogs']['replicas'] >= args.calls and
        len(snapshot_keys(redis)) >= args.calls,
        args.calls / args.rate + 20, interval=0.5)
    if not all_up:
        raise h.TestFailure('only %d replicas on node2' %
                            status(n2)['dialogs']['replicas'])
    setup_s = time.monotonic() - started
    cpu = {k: round(cpu_s(p) - cpu0[k], 2) for k, p in procs.items()}

    keys = snapshot_keys(redis)
    used = info_memory(redis)
    one_key = redis.client.memory_usage(keys[0])
    # "<version> <message>", or a hash {v, m} before dialog format 5
    msg_len = len(redis.client.get(keys[0]).partition(' ')[2]
                  if redis.client.type(keys[0]) == 'string'
                  else redis.client.hget(keys[0], 'm'))

    caller = uac.result()
    if not caller.ok:
        raise h.TestFailure(caller.why())
    h.wait_until(lambda: status(n2)['dialogs']['replicas'] == 0, 10)
    repl = status(n2)['repl']
    lag = repl['lag_us']

    print('calls: %d at %d/s (all up after %.1f s), hung up: %d ok' % (
        args.calls, args.rate, setup_s, caller.successful))
    print('replication lag node1 -> node2 over %d messages: '
          'p50 %.2f ms, p99 %.2f ms, max %.2f ms' % (
              lag['samples'], lag.get('p50', 0) / 1000.0,
              lag.get('p99', 0) / 1000.0, lag.get('max', 0) / 1000.0))
    print('CPU seconds while the calls were set up: %s' % ', '.join(
        '%s %.2f' % kv for kv in cpu.items()))
    print('node2 received %d, dropped %d; node1 sent %d' % (
        repl['received'], repl['dropped'], status(n1)['repl']['sent']))
    print('redis memory: %d dialogs, %d bytes more than idle = %.0f '
          'bytes per dialog (one snapshot key: MEMORY USAGE %d bytes, '
          'message %d bytes)' % (len(keys), used - idle,
                                 (used - idle) / float(len(keys)),
                                 one_key, msg_len))


def main():
    args = parse_args()
    if not os.access(args.rehomed, os.X_OK):
        sys.exit('no rehomed at %s (use --rehomed)' % args.rehomed)

    ctx = h.Ctx('repl-lag')
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
