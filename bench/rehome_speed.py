#!/usr/bin/env python3
"""@file rehome_speed.py  How fast node 2 re-homes N calls after a fail-over

Run by hand (it is not a test), from the repository's root:
`PYTHONPATH=tests/integration python3 bench/rehome_speed.py
[--calls 1000,10000] [--cps 400] [--rate 100000]`, after `meson compile`
(REHOMED / REHOMECTL point at the binaries, default build/).

For each N: a Redis and two rehomed nodes (tests/integration harness,
loopback, ports in REHOME_TEST_PORTS, default 30000-30999); sipp places N
calls through node 1 (tests/sipp/uac.xml -> uas.xml, held up for the
whole run); once node 2 holds the N replicas, node 1 is killed with
SIGKILL, node 2 sees it down, and ONE API call, POST /v1/rehome
{"tag":"service","rate":R}, moves every call: a re-INVITE with node 2's
Contact to each caller, then to each callee (mode challenge).

Printed per N: the job's own time (from the POST to the last outcome,
the tag's compare-and-set included), the wall time the client saw, the
dialogs per second, moved / failed, and the SIP retransmissions of the
re-home, between a snapshot taken before the kill and one taken after
the job: every `Retrans` counter of both sipps (requests received again,
responses sent again, from -trace_counts), plus the datagrams the kernel
dropped on the three SIP sockets (a dropped message is retransmitted, and
sipp takes that copy for the first), printed apart: caller sipp, callee
sipp, kernel drops. Target (issue 15): 10 000 in
<= 2 s, 0 failures, 0 retransmissions. --perf PATH records a
profile of node 2 during the move (perf record -g, PATH.<calls>);
--syscalls counts its system calls per re-homed dialog (perf stat).

Trade-offs: everything shares this machine's cores (two sipps, two
nodes, Redis), so the figures are a floor; the calls are held, never
hung up, because only the move is measured.
"""

import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import harness as h
from harness import nodes as lib

os.environ.setdefault('REHOME_TEST_PORTS', '30000-30999')

HOLD_MS = 600000                 # calls stay up for the whole run


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def retrans(sipp):
    """Sum of every *_Retrans column of sipp's latest counts row."""
    paths = glob.glob(os.path.join(os.path.dirname(sipp.trace_path),
                                   '*_%d_counts.csv' % sipp.popen.pid))
    if not paths:
        return 0
    with open(paths[0]) as f:
        rows = list(csv.reader(f, delimiter=';'))
    if len(rows) < 2:
        return 0
    head, last = rows[0], rows[-1]
    return sum(int(v) for k, v in zip(head, last)
               if k.endswith('_Retrans') and v.isdigit())


def udp_drops(ports):
    """Datagrams the kernel dropped (full receive buffer) on these local
    UDP ports: each one is a message its sender has to retransmit, which
    sipp cannot see (the copy it gets first is the retransmission)."""
    total = 0
    with open('/proc/net/udp') as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rpartition(':')[2], 16) in ports:
                total += int(fields[-1])
    return total


def cpu_s(proc):
    """utime + stime of a child, in seconds."""
    with open('/proc/%d/stat' % proc.pid) as f:
        fields = f.read().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def wait_counts():
    """Let both sipps write a fresh counts row (-fd 1)."""
    time.sleep(1.2)


def perf_start(path, proc):
    """perf record -g on proc into path (None: no profile)."""
    if not path:
        return None
    return subprocess.Popen(['perf', 'record', '-q', '-F', '999',
                             '--call-graph', 'dwarf,16384', '-o', path,
                             '-p', str(proc.pid)],
                            stdout=subprocess.DEVNULL)


SYSCALLS = ('raw_syscalls:sys_enter', 'syscalls:sys_enter_epoll_ctl',
            'syscalls:sys_enter_epoll_wait', 'syscalls:sys_enter_write',
            'syscalls:sys_enter_sendto')


def syscalls_start(path, proc):
    """perf stat of node 2's system calls into path (None: not counted)."""
    if not path:
        return None
    return subprocess.Popen(['perf', 'stat', '-x', ',', '-o', path, '-e',
                             ','.join(SYSCALLS), '-p', str(proc.pid)],
                            stdout=subprocess.DEVNULL)


def syscalls_read(path, calls):
    """{event: count per re-homed dialog} from perf stat's CSV."""
    counts = {}
    with open(path) as f:
        for line in f:
            fields = line.strip().split(',')
            if len(fields) > 2 and fields[0].isdigit():
                name = fields[2].rpartition(':')[2]
                name = name.replace('sys_enter_', '').replace('sys_enter',
                                                              'all')
                counts[name] = round(int(fields[0]) / calls, 2)
    return counts


def perf_stop(perf):
    if perf:
        perf.send_signal(2)
        perf.wait(30)


def run(calls, cps, rate, perf, syscalls):
    ctx = h.Ctx('bench-%d' % calls)
    try:
        return measure(ctx, calls, cps, rate, perf, syscalls)
    finally:
        for problem in ctx.close():
            log('problem: ' + problem)
        if not os.environ.get('REHOME_KEEP'):
            shutil.rmtree(ctx.dir, ignore_errors=True)


def measure(ctx, calls, cps, rate, perf_path, syscalls):
    extra = ['-trace_counts', '-l', str(calls + 100), '-max_socket',
             '65000', '-buff_size', str(4 << 20)]
    uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP, calls=calls, timeout=900,
                   trace=False, args=extra)
    node1, node2 = lib.cluster(ctx, uas.target, log_level='info')
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   calls=calls, rate=cps, duration=HOLD_MS, timeout=900,
                   trace=False, args=extra)
    uas.start()
    uac.start()

    log('%d calls: placing at %d/s' % (calls, cps))
    up = h.wait_until(lambda: node1.dialog_counts()['confirmed'] >= calls,
                      calls / cps * 3 + 20, 0.5)
    assert up, 'only %s calls up on node1' % node1.dialog_counts()
    ok = h.wait_until(lambda: lib.replicas(node2) >= calls, 30, 0.5)
    assert ok, 'node2 holds %d replicas' % lib.replicas(node2)

    wait_counts()
    lost = [s.name for s in (uac, uas)
            if int(s.stats().get('FailedCall(C)', 0))]
    assert not lost, '%s lost calls while they were set up: lower --cps' % (
        ' and '.join(lost))
    ports = {node2.sip_port, uac.port, uas.port}
    before = (retrans(uac), retrans(uas), udp_drops(ports))
    procs = {'node2': node2, 'caller': uac, 'callee': uas}

    lib.kill(ctx, node1)
    down = h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        10, 0.02)
    assert down, 'node2 does not see node1 down'

    log('%d calls: node1 killed and seen down; re-homing' % calls)
    perf = perf_start(perf_path and '%s.%d' % (perf_path, calls), node2)
    stat_path = os.path.join(ctx.dir, 'syscalls.csv')
    stat = syscalls_start(syscalls and stat_path, node2)
    sent0 = lib.status(node2)['repl']['sent']
    cpu0 = {k: cpu_s(p) for k, p in procs.items()}
    t0 = time.monotonic()
    status, job = node2.ctl.post('/v1/rehome', {'tag': 'service',
                                                'rate': rate})
    assert status == 202, (status, job)
    job = lib.wait_job(node2, job, timeout=120)
    wall = time.monotonic() - t0
    cpu = {k: round(cpu_s(p) - cpu0[k], 2) for k, p in procs.items()}
    perf_stop(perf)
    perf_stop(stat)
    if stat:
        log('%d calls: node 2 system calls per dialog: %s' % (
            calls, syscalls_read(stat_path, calls)))
    sent = lib.status(node2)['repl']['sent'] - sent0
    log('%d calls: CPU seconds during the move: %s' % (calls, cpu))

    wait_counts()
    after = (retrans(uac), retrans(uas), udp_drops(ports))
    rt = [a - b for a, b in zip(after, before)]
    return {'calls': calls, 'job_ms': job['elapsed_ms'],
            'wall_ms': int(wall * 1000),
            'per_s': int(job['moved'] / max(job['elapsed_ms'], 1) * 1000),
            'moved': job['moved'], 'failed': job['failed'],
            'reasons': job['reasons'], 'retrans': sum(rt),
            'retrans_caller': rt[0], 'retrans_callee': rt[1],
            'udp_drops': rt[2], 'repl_per_dialog': round(sent / calls, 2),
            'cpu_s': cpu}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--calls', default='1000,10000',
                    help='comma-separated call counts (default 1000,10000)')
    ap.add_argument('--cps', type=int, default=400,
                    help='call set-up rate through node 1 (default 400)')
    ap.add_argument('--rate', type=int, default=100000,
                    help='re-home rate asked of node 2 (default 100000)')
    ap.add_argument('--perf', metavar='PATH',
                    help='perf record -g node 2 during the move, into '
                    'PATH.<calls>')
    ap.add_argument('--syscalls', action='store_true',
                    help='count node 2\'s system calls during the move '
                    '(perf stat, needs tracepoint access)')
    ap.add_argument('--json', action='store_true', help='JSON output')
    a = ap.parse_args()

    results = [run(int(n), a.cps, a.rate, a.perf, a.syscalls)
               for n in a.calls.split(',')]
    if a.json:
        print(json.dumps(results, indent=2))
        return

    print('%8s %8s %8s %9s %7s %7s %8s %8s %6s %9s' % (
        'calls', 'job_ms', 'wall_ms', 'dialog/s', 'moved', 'failed',
        'rtx_uac', 'rtx_uas', 'drops', 'repl/dlg'))
    for r in results:
        print('%8d %8d %8d %9d %7d %7d %8d %8d %6d %9.2f%s' % (
            r['calls'], r['job_ms'], r['wall_ms'], r['per_s'], r['moved'],
            r['failed'], r['retrans_caller'], r['retrans_callee'],
            r['udp_drops'], r['repl_per_dialog'],
            '  ' + json.dumps(r['reasons']) if r['reasons'] else ''))


if __name__ == '__main__':
    main()
