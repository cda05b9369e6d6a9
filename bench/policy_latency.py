#!/usr/bin/env python3
"""@file policy_latency.py  What a Lua hook costs a call: INVITE->200 latency and CPU

Run by hand (it is not a test), from the repository's root:

    PYTHONPATH=tests/integration python3 bench/policy_latency.py \
        [--calls 2000] [--rate 200] [--rounds 3] [--rehomed build/rehomed]

The same sipp load (tests/sipp/uac.xml -> rehomed -> uas.xml, 0-duration
calls, one node, no Redis) goes through rehomed three ways:

- none:     no policy at all (the SIP path only checks for a hook);
- trivial:  on_initial_invite returns a constant {shtag = "service"}: the
            fixed price of a hook (request table with every header, the
            Lua call, reading the decision);
- hashring: on_initial_invite picks one of 8 tags by consistent hashing of
            the Call-ID (lua/hashring: FNV-1a in Lua, binary search over
            512 points), a realistic "heavier" policy.

For each it prints the caller's INVITE->200 latency percentiles, taken
from the microsecond timestamps of sipp's message trace (the first
INVITE sent and the 200 received, per call), rehomed's CPU time (utime +
stime from /proc) per 1000 calls over the run, and both as ratios to
"none". The three are run in turn, `--rounds` times, each run with a
fresh rehomed, so that a slow minute of the machine hits all of them.

Trade-offs: the hook costs microseconds, the round trip through two sipp
processes and the proxy a few hundred, on a machine shared with sipp, so
the latency ratio is noisy near 1.0; the CPU per 1000 calls is the
steadier figure. The message trace costs sipp CPU, the same for every
run. Processes are stopped by their PIDs (the integration harness's own
process handling), on 127.0.0.0/8 and ports 32800-32999 only.
"""

import argparse
import os
import shutil
import sys
import time

import harness as h
from common import cpu_ms, log, percentile

os.environ.setdefault('REHOME_TEST_PORTS', '32800-32999')
os.environ.setdefault('REHOME_LUADIR', os.path.join(h.SRC, 'lua'))

POOL = ['pool-%d' % i for i in range(1, 9)]

POLICIES = {
    'none': None,
    'trivial': '''
return {
  on_initial_invite = function(req) return {shtag = "service"} end,
}
''',
    'hashring': '''
local hashring = require "hashring"
local ring = hashring.new({%s})
return {
  on_initial_invite = function(req) return {shtag = ring:get(req.call_id)} end,
}
''' % ', '.join('"%s"' % t for t in POOL),
}


def invite_latencies_ms(result):
    """Per call: first INVITE sent -> 200 (to the INVITE) received, ms."""
    sent, answered = {}, {}
    for m in result.messages:
        if m.direction == 'sent' and m.method == 'INVITE':
            sent.setdefault(m.call_id, m.time)
        elif (m.direction == 'received' and m.status == 200 and
              m.cseq[1] == 'INVITE'):
            answered.setdefault(m.call_id, m.time)
    return [(answered[c] - sent[c]) * 1000.0 for c in answered if c in sent]


def one_run(name, args):
    """One fresh rehomed with policy `name` under the sipp load."""
    ctx = h.Ctx('bench-' + name)
    failed = None
    try:
        engine = {'log_level': 'info', 'binary': args.rehomed,
                  'shtags': dict.fromkeys(['service'] + POOL, 'active')}
        if POLICIES[name]:
            path = ctx.path('policy.lua')
            with open(path, 'w') as f:
                f.write(POLICIES[name])
            engine['policy'] = path
        rh, uac, uas = ctx.proxied(
            'uac.xml', 'uas.xml', engine=engine,
            caller={'calls': args.calls, 'rate': args.rate,
                    'timeout': args.calls // args.rate + 60},
            callee={'calls': args.calls,
                    'timeout': args.calls // args.rate + 60})
        uas.start()
        cpu0 = cpu_ms(rh.pid)
        uac.start()
        caller = uac.result()
        time.sleep(1.0)   # the last calls' BYE and its 200
        cpu = cpu_ms(rh.pid) - cpu0
        callee = uas.result(timeout=10)
        failed = (caller.failed + callee.failed +
                  args.calls - caller.successful)
        return {'lat': invite_latencies_ms(caller), 'cpu_ms': cpu,
                'calls': args.calls, 'failed': failed}
    finally:
        problems = ctx.close()
        if problems or failed:
            log('  %s: %s; logs kept in %s' % (
                name, '; '.join(problems) or '%s failed calls' % failed,
                ctx.dir))
        else:
            shutil.rmtree(ctx.dir, ignore_errors=True)


def summary(runs):
    lat = [x for r in runs for x in r['lat']]
    calls = sum(r['calls'] for r in runs)
    return {
        'samples': len(lat),
        'failed': sum(r['failed'] for r in runs),
        'p50': percentile(lat, 50), 'p90': percentile(lat, 90),
        'p99': percentile(lat, 99), 'max': max(lat),
        'cpu_per_1000': sum(r['cpu_ms'] for r in runs) * 1000.0 / calls,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--calls', type=int, default=2000,
                    help='calls per run (default 2000)')
    ap.add_argument('--rate', type=int, default=200,
                    help='calls per second (default 200)')
    ap.add_argument('--rounds', type=int, default=3,
                    help='runs of each policy, interleaved (default 3)')
    ap.add_argument('--rehomed', default=h.REHOMED,
                    help='binary under test (default %(default)s)')
    args = ap.parse_args()

    runs = {name: [] for name in POLICIES}
    for rnd in range(1, args.rounds + 1):
        for name in POLICIES:
            log('round %d/%d: %s, %d calls at %d/s' % (
                rnd, args.rounds, name, args.calls, args.rate))
            runs[name].append(one_run(name, args))

    sums = {name: summary(r) for name, r in runs.items()}
    base = sums['none']
    print('rehomed %s, %d x %d calls at %d/s per policy; INVITE->200 at '
          'the caller, ms; rehomed CPU ms per 1000 calls' % (
              args.rehomed, args.rounds, args.calls, args.rate))
    print('%-9s %7s %6s %7s %7s %7s %7s %9s   %s' % (
        'policy', 'samples', 'failed', 'p50', 'p90', 'p99', 'max',
        'cpu/1000', 'ratio to none: p50 p99 cpu'))
    for name, s in sums.items():
        print('%-9s %7d %6d %7.3f %7.3f %7.3f %7.2f %9.1f   %.2f %.2f %.2f'
              % (name, s['samples'], s['failed'], s['p50'], s['p90'],
                 s['p99'], s['max'], s['cpu_per_1000'],
                 s['p50'] / base['p50'], s['p99'] / base['p99'],
                 s['cpu_per_1000'] / base['cpu_per_1000']))
    sys.exit(1 if any(s['failed'] for s in sums.values()) else 0)


if __name__ == '__main__':
    main()
