#!/usr/bin/env python3
"""@file media_move.py  How fast one node moves the media of N calls to another rtpengine

Run by hand (it is not a test), from the repository's root:
`PYTHONPATH=tests/integration python3 bench/media_move.py [--calls 1000]
[--cps 200] [--rate 100000]`, after `meson compile` (REHOMED points at the
binary, default build/).

Two real rtpengines (userspace, loopback) A and B, one rehomed anchoring
in both (weights 1000 and 1, so new calls go to A), sipp placing N calls
through it (tests/sipp/uac.xml -> uas.xml, held up for the whole run).
Then ONE API call, POST /v1/media/move {"from": A, "to": B}, moves every
call's media: B gets each call's SDPs (offer, answer), both legs get a
re-INVITE with B's SDP, A gets a delete.

Printed: the job's own time and the calls per second, moved / failed,
the ng requests per call at set-up (offer + answer) and per move (B's
offer + answer, A's delete), from the relays' own counters in GET
/v1/media/relays minus the pings of the same period (one a second per
relay), and the CPU seconds of rehomed, the sipps and each rtpengine
during the move.

Trade-offs: everything shares this machine's cores (two sipps, two
rtpengines, rehomed), so the figures are a floor; no RTP flows (the sipp
scenarios carry SDP only), so the relays do signalling work only.
"""

import argparse
import json
import os
import time

import harness as h
from harness import nodes as lib
from harness import rtpengine
from common import cpu_s, in_ctx, log

os.environ.setdefault('REHOME_TEST_PORTS', '20000-32000')

HOLD_MS = 600000


def sent(rh, relay):
    return rtpengine.relays(rh)[relay.ng]['sent']


def run(calls, cps, rate):
    return in_ctx(h, 'bench-media-%d' % calls, measure, calls, cps, rate)


def measure(ctx, calls, cps, rate):
    ports = 4 * calls + 100           # RTP + RTCP for each leg
    a = rtpengine.start(ctx, name='rtp_a', ip='127.0.0.30',
                        media_ports=ports)
    b = rtpengine.start(ctx, name='rtp_b', ip='127.0.0.31',
                        media_ports=ports)
    extra = ['-l', str(calls + 100), '-max_socket', '65000',
             '-buff_size', str(4 << 20)]
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=calls, timeout=900,
                   trace=False, args=extra)
    rh = ctx.rehomed(upstream=uas.target, log_level='info', extra=[
        'media_relay %s weight=1000' % a.ng, 'media_relay %s weight=1' % b.ng])
    assert h.wait_until(lambda: all(r['state'] == 'up' for r in
                                    rtpengine.relays(rh).values()), 5)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=rh.sip_addr,
                   calls=calls, rate=cps, duration=HOLD_MS, timeout=900,
                   trace=False, args=extra)
    t_setup, a0 = time.monotonic(), sent(rh, a)
    uas.start()
    uac.start()
    log('%d calls: placing at %d/s' % (calls, cps))
    up = h.wait_until(lambda: rh.dialog_counts()['confirmed'] >= calls,
                      calls / cps * 3 + 20, 0.5)
    assert up, 'only %s calls up' % rh.dialog_counts()
    setup_s = time.monotonic() - t_setup
    setup_ng = sent(rh, a) - a0 - setup_s      # minus a ping a second
    on_a = rtpengine.relays(rh)[a.ng]['calls']

    procs = {'rehomed': rh, 'caller': uac, 'callee': uas, 'rtp_a': a,
             'rtp_b': b}
    cpu0 = {k: cpu_s(p) for k, p in procs.items()}
    a1, b1, t0 = sent(rh, a), sent(rh, b), time.monotonic()
    log('%d calls: %d on A; moving them to B' % (calls, on_a))
    status, job = rh.ctl.post('/v1/media/move', {'from': a.ng, 'to': b.ng,
                                                 'rate': rate})
    assert status == 202, (status, job)
    job = lib.wait_job(rh, job, timeout=300)
    wall = time.monotonic() - t0
    cpu = {k: round(cpu_s(p) - cpu0[k], 2) for k, p in procs.items()}
    moves_ng = (sent(rh, a) - a1) + (sent(rh, b) - b1) - 2 * wall
    moved = max(job['moved'], 1)
    return {'calls': calls, 'on_a': on_a, 'job_ms': job['elapsed_ms'],
            'per_s': int(job['moved'] / max(job['elapsed_ms'], 1) * 1000),
            'moved': job['moved'], 'failed': job['failed'],
            'reasons': job['reasons'],
            'ng_per_call_setup': round(setup_ng / calls, 2),
            'ng_per_call_move': round(moves_ng / moved, 2),
            'cpu_s': cpu}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--calls', default='1000',
                    help='comma-separated call counts (default 1000)')
    ap.add_argument('--cps', type=int, default=200,
                    help='call set-up rate (default 200)')
    ap.add_argument('--rate', type=int, default=100000,
                    help='moves per second asked (default 100000)')
    ap.add_argument('--json', action='store_true', help='JSON output')
    a = ap.parse_args()

    results = [run(int(n), a.cps, a.rate) for n in a.calls.split(',')]
    if a.json:
        print(json.dumps(results, indent=2))
        return

    print('%7s %7s %7s %8s %6s %6s %9s %9s  %s' % (
        'calls', 'on_A', 'job_ms', 'calls/s', 'moved', 'failed',
        'ng/setup', 'ng/move', 'cpu_s during the move'))
    for r in results:
        print('%7d %7d %7d %8d %6d %6d %9.2f %9.2f  %s%s' % (
            r['calls'], r['on_a'], r['job_ms'], r['per_s'], r['moved'],
            r['failed'], r['ng_per_call_setup'], r['ng_per_call_move'],
            json.dumps(r['cpu_s']),
            '  ' + json.dumps(r['reasons']) if r['reasons'] else ''))


if __name__ == '__main__':
    main()
