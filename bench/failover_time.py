#!/usr/bin/env python3
"""@file failover_time.py  SIGKILL of the active node -> last call re-homed, with default settings

Run by hand (it is not a test), from the repository's root:
`PYTHONPATH=tests/integration python3 bench/failover_time.py [--runs 10]
[--calls 1000] [--cps 100]`, after `meson compile` (REHOMED / REHOMECTL
point at the binaries, default build/).

Each run: a Redis and two rehomed nodes (tests/integration harness,
loopback, ports in REHOME_TEST_PORTS, default 30000-30999), both running
policies/failover.lua with every setting at its default (node_timeout,
rehome_rate); sipp places N calls through node 1 (tests/sipp/uac.xml ->
uas.xml, held for the whole run); once node 2 holds the N replicas, node
1 is killed with SIGKILL and nothing else is done: node 2 finds node 1
down by itself, takes the tag and re-homes every call (mode challenge: a
re-INVITE to each caller, then to each callee).

A run in which sipp lost calls while setting them up (its callee aborts
a few on a loaded machine, and node 2's re-INVITEs to those would only
time out) is done again, up to 3 times.

Printed per run: how many calls node 2 moved and failed, the time from the
SIGKILL to node 2 reporting node 1 down (polled every 10 ms on its
control API, so a little late), and to the last call re-homed: the
latest first copy of a re-INVITE at an endpoint (sipp's message traces
stamp each message on arrival; retransmissions do not count); then min,
median and max over the runs. Target: every run <= 1 s.

Trade-offs: everything shares this machine's cores (two sipps, two
nodes, Redis), so the figures are a ceiling; the calls are held, never
hung up, because only the fail-over is measured.
"""

import argparse
import json
import os
import statistics
import time

import harness as h
from harness import nodes as lib
from common import in_ctx, log

os.environ.setdefault('REHOME_TEST_PORTS', '30000-30999')

HOLD_MS = 600000                 # calls stay up for the whole run
POLICY = os.path.join(h.SRC, 'policies', 'failover.lua')
TRIES = 3


def run(i, calls, cps):
    """One run; again (up to TRIES times) when sipp lost calls while
    they were set up, since their re-INVITEs would only time out."""
    for _ in range(TRIES):
        r = in_ctx(h, 'failover-%d' % i, measure, calls, cps)
        if r:
            return r
        log('run %d: sipp lost calls while they were set up, again' % (
            i + 1))
    raise SystemExit('sipp keeps losing calls: lower --cps')


def measure(ctx, calls, cps):
    extra = ['-l', str(calls + 100), '-max_socket', '65000', '-buff_size',
             str(4 << 20)]
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=calls, timeout=900,
                   args=extra)
    node1, node2 = lib.cluster(ctx, uas.target, node_timeout=None,
                               log_level='info', policy=POLICY)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=calls, rate=cps, duration=HOLD_MS, timeout=900,
                   args=extra)
    uas.start()
    uac.start()

    up = h.wait_until(lambda: node1.dialog_counts()['confirmed'] >= calls,
                      calls / cps * 3 + 20, 0.5)
    assert up, 'only %s calls up on node1' % node1.dialog_counts()
    ok = h.wait_until(lambda: lib.replicas(node2) >= calls, 30, 0.5)
    assert ok, 'node2 holds %d replicas' % lib.replicas(node2)
    time.sleep(1.2)   # a fresh statistics row from both sipps
    if any(int(s.stats().get('FailedCall(C)', 0)) for s in (uac, uas)):
        return None

    killed = time.time()
    lib.kill(ctx, node1)
    h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down', 10, 0.01)
    detected = time.time() - killed

    def job():
        st, data = node2.ctl.get('/v1/jobs')
        jobs = data.get('jobs', []) if st == 200 else []
        return jobs[0] if jobs and jobs[0]['state'] != 'running' else None

    done = h.wait_until(job, 60, 0.5)
    assert done, 'node2 did not re-home the calls: %s' % (
        node2.ctl.get('/v1/jobs'),)
    # the first copy of each call's re-INVITE (not a retransmission)
    firsts = [log[0][0] for s in (uac, uas)
              for log in lib.reinvite_log(s).values()]
    return {'calls': calls, 'moved': done['moved'],
            'failed': done['failed'], 'detected_ms': int(detected * 1000),
            'last_reinvite_ms': int((max(firsts) - killed) * 1000)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--calls', type=int, default=1000)
    ap.add_argument('--cps', type=int, default=100,
                    help='call set-up rate through node 1 (default 100)')
    ap.add_argument('--json', action='store_true', help='JSON output')
    a = ap.parse_args()

    results = []
    for i in range(a.runs):
        results.append(run(i, a.calls, a.cps))
        log('run %d: %s' % (i + 1, results[-1]))
    if a.json:
        print(json.dumps(results, indent=2))
        return

    print('%4s %6s %6s %6s %12s %16s' % (
        'run', 'calls', 'moved', 'failed', 'detected_ms',
        'last_reinvite_ms'))
    for i, r in enumerate(results):
        print('%4d %6d %6d %6d %12d %16d' % (
            i + 1, r['calls'], r['moved'], r['failed'], r['detected_ms'],
            r['last_reinvite_ms']))
    last = [r['last_reinvite_ms'] for r in results]
    print('SIGKILL -> last re-INVITE, ms: min %d, median %d, max %d' % (
        min(last), statistics.median(last), max(last)))


if __name__ == '__main__':
    main()
