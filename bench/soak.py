#!/usr/bin/env python3
"""@file soak.py  Two nodes under mixed calls, moves and a restart for N
minutes: does memory, descriptors or Redis grow?

Run by hand (it is not a test), from the repository's root:
`PYTHONPATH=tests/integration python3 bench/soak.py [--minutes 30]
[--cps 4] [--hold 120] [--reinvite-cps 1] [--move-percent 50]
[--restart-at M] [--json]`,
after `meson compile` (REHOMED / REHOMECTL point at the binaries, default
build/).

A Redis and two rehomed nodes (tests/integration harness, loopback,
ports in REHOME_TEST_PORTS, default 30000-30999), node 1 active for the
tag `service`, node 2 its backup. Two sipp callers place calls through
node 1 for the whole run, toward one sipp callee: `uac.xml` at --cps
calls/s held --hold s, and `uac_reinvite.xml` at --reinvite-cps, whose
caller puts the callee on hold with a re-INVITE halfway through the same
hold time; so about (cps + reinvite_cps) x hold calls are up at once
(600 by default). The hold is longer than a minute so that some of the
calls moved one minute are still up to be moved back the next.
Every minute one node hands --move-percent of its calls to the other
(POST /v1/move: node 1 -> node 2 under the sub-tag `service.node2` on
odd minutes, node 2 -> node 1 back under `service` on even ones). At
--restart-at (default: the middle of the run) node 2 is restarted the
way an operator would: drained to node 1 (POST /v1/drain), stopped with
SIGTERM, started again with the same config, and waited for until both
nodes are synced.

Every minute, before the move, each rehomed's RSS, PSS and anonymous
pages (/proc/PID/smaps_rollup), its heap in use and kept free (GET
/metrics: rehome_heap_bytes, glibc's mallinfo2), dialogs (GET /v1/status:
served, replicas), open descriptors (/proc/PID/fd), and Redis's
used_memory and key count are sampled, and both callers' successful and
failed calls (sipp's statistics file).

Verdict, printed after the table:
- memory flat: each node's RSS at equal dialog counts after its
  fill-up grows less than 2 MiB per hour, i.e. under about 2 MiB /
  (calls per hour) per call. Its steady window: the second half of the
  run, from 2 minutes after a restart of that node, and from the minute
  its dialog count (served + replicas) stays within 10 % of the last
  sample's in the same phase (below). The moves alternate direction every minute, so a node
  serves about as many calls every other minute: the growth is the mean
  of the least-squares slopes through the window's even minutes and
  through its odd ones. Also shown: the last sample against the
  window's first in the same phase, and the same slopes for PSS, the
  heap in use and free, and Redis's used_memory (over the second half);
- no call failed: sipp's failed counts (both callers, the callee) and
  every move and drain's failed dialogs are 0, and every call placed
  succeeded;
- descriptors flat: each node's open descriptors vary by at most 2 over
  the same window.
Exit status 1 if any part of the verdict fails. The work directory
(every process's log, sipp's statistics and error files) is kept and
named at the end (REHOME_KEEP=1 unless set otherwise).

Trade-offs: everything shares this machine's cores (three sipps, two
nodes, Redis) with whatever else runs on it; the call rate is low
(steady, not a load test) so the figures measure growth, not speed.
"""

import argparse
import json
import os
import re
import sys
import time

import harness as h
from harness import metrics as hm
from harness import nodes as lib
from common import fds, in_ctx, log, mem_kib, slope, table

os.environ.setdefault('REHOME_TEST_PORTS', '30000-30999')
os.environ.setdefault('REHOME_KEEP', '1')   # the logs explain any failure

SLOPE_MAX_KIB_H = 2048          # "flat": under 2 MiB per hour
FDS_SPREAD_MAX = 2
# a move waits for its slowest re-INVITE: 64 in flight, each up to 32 s
# when an endpoint does not answer; the next sample is taken late then
MOVE_TIMEOUT = 300


def redis_of(ctx):
    return next(p for p in ctx.procs if isinstance(p, h.Redis))


def heap_kib(metrics, kind):
    """rehome_heap_bytes{kind} in KiB (0 from a binary without it)."""
    return int(metrics.value('rehome_heap_bytes', kind=kind)) // 1024


def sample(minute, nodes, redis, callers, callee):
    """One row: per node RSS, PSS, descriptors, dialogs; Redis; calls."""
    row = {'minute': minute, 'time': time.time()}
    for node in nodes:
        counts = lib.status(node)['dialogs']
        heap = hm.scrape(node)
        row[node.name] = dict(mem_kib(node), fds=fds(node),
                              served=counts['served'],
                              replicas=counts['replicas'], pid=node.pid,
                              heap=heap_kib(heap, 'in_use'),
                              free=heap_kib(heap, 'free'))
    info = redis.client.info('memory')
    row['redis'] = {'used_kib': info['used_memory'] // 1024,
                    'keys': redis.client.dbsize()}
    stats = [s.stats() for s in callers + [callee]]
    row['calls'] = {
        'ok': sum(int(s.get('SuccessfulCall(C)', 0)) for s in stats[:-1]),
        'failed': sum(int(s.get('FailedCall(C)', 0)) for s in stats),
    }
    return row


def move(minute, node1, node2, percent):
    """Odd minutes node 1 -> node 2, even ones node 2 -> node 1 back."""
    src, dst, tag = (node1, node2, 'service') if minute % 2 else \
        (node2, node1, 'service.node2')
    status, job = src.ctl.post('/v1/move', {'tag': tag, 'to': dst.name,
                                            'percent': percent})
    if status != 202:
        return {'action': 'move %s->%s' % (src.name, dst.name),
                'moved': 0, 'failed': 0, 'error': '%s %s' % (status, job)}
    job = lib.wait_job(src, job, timeout=MOVE_TIMEOUT)
    return {'action': 'move %s->%s' % (src.name, dst.name),
            'moved': job['moved'], 'failed': job['failed'],
            'reasons': job.get('reasons')}


def restart(node1, node2):
    """Drain node 2 to node 1, stop it with SIGTERM, start it again."""
    status, job = node2.ctl.post('/v1/drain', {'to': node1.name})
    assert status == 202, 'drain: %s %s' % (status, job)
    job = lib.wait_job(node2, job, timeout=MOVE_TIMEOUT)
    rc = node2.stop()
    assert rc == 0, 'node2 exit status %s on SIGTERM' % rc
    node2.start()
    synced = h.wait_until(lambda: lib.synced(node1, 2) and
                          lib.synced(node2, 2), 30, 0.2)
    assert synced, 'node2 not synced after its restart'
    return {'action': 'drain + restart node2',
            'moved': job['moved'], 'failed': job['failed'],
            'reasons': job.get('reasons')}


def soak(ctx, a):
    total = a.cps * a.minutes * 60
    total_re = a.reinvite_cps * a.minutes * 60
    timeout = a.minutes * 60 + a.hold * 3 + 120
    extra = ['-l', '100000', '-max_socket', '65000', '-buff_size',
             str(4 << 20)]
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=total + total_re,
                   timeout=timeout, trace=False, args=extra)
    node1, node2 = lib.cluster(ctx, uas.target, log_level='info',
                               node_timeout=None, binary=a.rehomed)
    callers = [
        ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                 calls=total, rate=a.cps, duration=a.hold * 1000,
                 timeout=timeout, trace=False, args=extra),
        ctx.sipp('uac_reinvite.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                 calls=total_re, rate=a.reinvite_cps,
                 duration=a.hold * 500, timeout=timeout, trace=False,
                 args=extra)]
    redis = redis_of(ctx)
    uas.start()
    for uac in callers:
        uac.start()
    t0 = time.monotonic()
    rows, actions = [], []
    for minute in range(a.minutes + 1):
        h.wait_until(lambda: time.monotonic() >= t0 + 60 * minute, 120, 0.5)
        rows.append(sample(minute, (node1, node2), redis, callers, uas))
        if minute == a.restart_at:
            act = restart(node1, node2)
        elif 0 < minute < a.minutes:
            act = move(minute, node1, node2, a.move_percent)
        else:
            act = {'action': '', 'moved': 0, 'failed': 0}
        actions.append(act)
        log('minute %d: %s; %s' % (minute, json.dumps(rows[-1]),
                                   json.dumps(act)))

    results = [uac.result(timeout=a.hold * 3 + 60) for uac in callers]
    results.append(uas.result(timeout=30))
    return {'args': vars(a), 'rows': rows, 'actions': actions,
            'sipp': [dict(sipp_events(r.errors), name=r.name, rc=r.rc,
                          calls=r.calls, successful=r.successful,
                          failed=r.failed)
                     for r in results],
            'verdict': verdict(a, rows, actions, results)}


def sipp_events(errors):
    """What a sipp's error file says: its aborted calls by reason and
    how often its watchdog found it starved of CPU (a stalled sipp
    retransmits, answers late, and may abort calls by itself)."""
    aborts = {}
    for why in re.findall(r'Aborting call on ([a-zA-Z ]+?) for Call',
                          errors):
        aborts[why] = aborts.get(why, 0) + 1
    return {'aborted': aborts,
            'watchdog_trips': len(re.findall(r'watchdog timer', errors))}


def dialogs(row, name):
    return row[name]['served'] + row[name]['replicas']


def window(a, rows, name):
    """The steady rows of one node: the second half of the run, from 2
    minutes after a restart of that node, and after its fill-up: from
    the row after the last one whose dialog count (served + replicas) is
    more than 10 % off the last row's in the same phase of the moves
    (below); the last 4 rows when fewer are left. Redis: the second
    half."""
    start = a.minutes / 2.0
    if name == 'node2' and a.restart_at is not None:
        start = max(start, a.restart_at + 2)
    if name != 'redis':
        last = {r['minute'] % 2: dialogs(r, name) for r in rows}
        for r in rows:
            ref = last[r['minute'] % 2]
            if abs(dialogs(r, name) - ref) > 0.1 * max(ref, 1):
                start = max(start, r['minute'] + 1)
    win = [r for r in rows if r['minute'] >= start]
    return win if len(win) >= 4 else rows[-4:]


def same_phase(win):
    """The first steady row in the last row's phase of the moves: the
    moves alternate direction every minute, so a node serves about as
    many calls every other minute."""
    return next(r for r in win
                if r['minute'] % 2 == win[-1]['minute'] % 2)


def growth(rows, get):
    """KiB per hour at equal dialog counts: the mean of the
    least-squares slopes through the even and the odd minutes' rows
    (through all the rows when either phase has fewer than 2)."""
    phases = [[r for r in rows if r['minute'] % 2 == p] for p in (0, 1)]
    if min(len(ph) for ph in phases) < 2:
        phases = [rows]
    return sum(slope([(r['time'] / 3600.0, get(r)) for r in ph])
               for ph in phases) / len(phases)


def verdict(a, rows, actions, results):
    v = {'nodes': {}}
    calls_per_h = (a.cps + a.reinvite_cps) * 3600
    for name in ('node1', 'node2'):
        win = window(a, rows, name)
        last = rows[-1]
        ref = same_phase(win)
        rss_h = growth(win, lambda r: r[name]['rss'])
        v['nodes'][name] = {
            'window_minutes': [win[0]['minute'], win[-1]['minute']],
            'rss_kib_per_h': round(rss_h),
            'pss_kib_per_h': round(growth(win, lambda r: r[name]['pss'])),
            'heap_kib_per_h': round(growth(win,
                                           lambda r: r[name]['heap'])),
            'free_kib_per_h': round(growth(win,
                                           lambda r: r[name]['free'])),
            'bytes_per_call': round(rss_h * 1024 / calls_per_h, 1),
            'rss_vs_same_dialogs_kib': [ref['minute'], ref[name]['rss'],
                                        last[name]['rss']],
            'fds_spread': (max(r[name]['fds'] for r in win) -
                           min(r[name]['fds'] for r in win)),
        }
    win = window(a, rows, 'redis')
    v['redis_kib_per_h'] = round(growth(win,
                                        lambda r: r['redis']['used_kib']))
    v['keys_per_h'] = round(growth(win, lambda r: r['redis']['keys']))
    placed = (a.cps + a.reinvite_cps) * a.minutes * 60
    v['calls'] = {'placed': placed,
                  'successful': sum(r.successful for r in results[:-1]),
                  'failed': sum(r.failed for r in results),
                  'moves_failed': sum(x['failed'] for x in actions),
                  'moves_refused': sum(1 for x in actions if 'error' in x),
                  'moved': sum(x['moved'] for x in actions)}
    c = v['calls']
    v['memory_flat'] = all(
        n['rss_kib_per_h'] < SLOPE_MAX_KIB_H for n in v['nodes'].values()) \
        and v['redis_kib_per_h'] < SLOPE_MAX_KIB_H
    v['no_call_failed'] = (c['failed'] == 0 and c['moves_failed'] == 0 and
                           c['successful'] == placed)
    v['fds_flat'] = all(n['fds_spread'] <= FDS_SPREAD_MAX
                        for n in v['nodes'].values())
    return v


def print_report(r):
    cols = [('min', '%d')]
    for name in ('node1', 'node2'):
        cols += [(name + ' rss', '%d'), ('anon', '%d'), ('heap', '%d'),
                 ('free', '%d'), ('fds', '%d'), ('served', '%d'),
                 ('repl', '%d')]
    cols += [('redis KiB', '%d'), ('keys', '%d'), ('calls ok', '%d'),
             ('failed', '%d'), ('then', '%s')]
    rows = []
    for row, act in zip(r['rows'], r['actions']):
        cells = [row['minute']]
        for name in ('node1', 'node2'):
            n = row[name]
            cells += [n['rss'], n['anon'], n['heap'], n['free'], n['fds'],
                      n['served'], n['replicas']]
        cells += [row['redis']['used_kib'], row['redis']['keys'],
                  row['calls']['ok'], row['calls']['failed'],
                  '%s %s' % (act['action'], '(%d moved, %d failed)' % (
                      act['moved'], act['failed']) if act['action'] else
                             '') + (' ' + act['error'] if 'error' in act
                                    else '')]
        rows.append(cells)
    print('RSS, anonymous pages (anon), heap in use and kept free by '
          'malloc in KiB; served / repl: dialogs served / replicas; '
          'calls: both callers, cumulative')
    print(table(cols, rows))
    v = r['verdict']
    for name, n in v['nodes'].items():
        print('%s, minutes %d-%d: RSS %+d KiB/h (%+.1f B per call), PSS '
              '%+d KiB/h, heap in use %+d KiB/h, free %+d KiB/h; RSS at '
              'minute %d %d KiB -> last %d KiB at the same dialog count; '
              'fds spread %d' % (
                  name, n['window_minutes'][0], n['window_minutes'][1],
                  n['rss_kib_per_h'], n['bytes_per_call'],
                  n['pss_kib_per_h'], n['heap_kib_per_h'],
                  n['free_kib_per_h'], n['rss_vs_same_dialogs_kib'][0],
                  n['rss_vs_same_dialogs_kib'][1],
                  n['rss_vs_same_dialogs_kib'][2], n['fds_spread']))
    print('redis: used_memory %+d KiB/h, keys %+d/h' % (
        v['redis_kib_per_h'], v['keys_per_h']))
    c = v['calls']
    print('calls: %d placed, %d successful, %d failed; %d moved by %d '
          'jobs, %d failed, %d refused' % (
              c['placed'], c['successful'], c['failed'], c['moved'],
              len([x for x in r['actions'] if x['action']]),
              c['moves_failed'], c['moves_refused']))
    for x in r['sipp']:
        print('sipp %s: exit %s, %d of %d calls successful, %d failed; '
              'aborted: %s; CPU watchdog trips: %d' % (
                  x['name'], x['rc'], x['successful'], x['calls'],
                  x['failed'], json.dumps(x['aborted']),
                  x['watchdog_trips']))
    print('verdict: memory %s (limit %d KiB/h), calls %s, fds %s' % (
        'flat' if v['memory_flat'] else 'GROWS', SLOPE_MAX_KIB_H,
        'none failed' if v['no_call_failed'] else 'SOME FAILED',
        'flat' if v['fds_flat'] else 'GROW'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--minutes', type=int, default=30)
    ap.add_argument('--cps', type=int, default=4,
                    help='plain calls per second (default 4)')
    ap.add_argument('--reinvite-cps', type=int, default=1,
                    help='calls per second with a re-INVITE (default 1)')
    ap.add_argument('--hold', type=int, default=120,
                    help='seconds each call is up (default 120)')
    ap.add_argument('--move-percent', type=int, default=50,
                    help='share of its calls a node hands over each '
                    'minute (default 50)')
    ap.add_argument('--restart-at', type=int, default=None,
                    help='minute of the restart of node 2 (default: the '
                    'middle; -1: none)')
    ap.add_argument('--rehomed', default=h.REHOMED,
                    help='binary under test (default %(default)s)')
    ap.add_argument('--json', action='store_true', help='JSON output')
    a = ap.parse_args()
    if a.restart_at is None:
        a.restart_at = a.minutes // 2
    elif a.restart_at < 0:
        a.restart_at = None

    r = in_ctx(h, 'soak', soak, a)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print_report(r)
    v = r['verdict']
    return 0 if v['memory_flat'] and v['no_call_failed'] and \
        v['fds_flat'] else 1


if __name__ == '__main__':
    sys.exit(main())
