#!/usr/bin/env python3
"""@file cores.py  `workers N`: rehomed with 1 worker against 2, Kamailio with 2

Run by hand (it is not a test): `python3 bench/cores.py [--quick]`.

In one run, the same sipp caller/callee pair (bench/uac.xml, bench/uas.xml)
drives calls through rehomed with `workers 1`, rehomed with `workers 2`
and Kamailio 5.6 with 2 UDP workers (bench/kamailio.cfg), on 127.0.0.1:

- ceiling: stepped call rates, 0-duration calls, a fresh sipp pair per
  step; a step passes with every call successful, 0 retransmissions and
  at least 95 % of the rate achieved (bench_proxy.py's rule). The highest
  step passed is the clean call rate.
- CPU per 1000 calls: utime+stime of every process of the proxy (the
  supervisor and its workers) over one step at a rate every proxy passes,
  read once the proxy's finished transactions are gone (libre keeps them
  32 s), so the timers' work is counted.
- spread: the calls each worker served (rehome_calls_total on each
  worker's control port).
- drops: datagrams the kernel dropped at the proxy's own UDP sockets
  (/proc/net/udp), and on the whole host (RcvbufErrors, which counts
  other jobs' sockets too, sipp's among them).

The caller is `sipp -t un`: one UDP socket per call, as many phones would
be. That matters: SO_REUSEPORT hashes the source address and port, so
calls from a single socket (one trunk) all reach one worker; Kamailio's
workers read one shared socket and do not depend on it. This machine has
2 cores shared by sipp and by other jobs, so 2 workers cannot double the
ceiling here; the figures say how far they get.

Helpers come from bench_proxy.py (processes, CPU, sipp statistics,
Kamailio); every port lies in 31000-31999.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

import bench_proxy as bp

HOST = '127.0.0.1'
PORT_KAMAILIO = 31060
PORT_REHOMED = 31070
PORT_CTL = 31080                 # worker K: PORT_CTL + K - 1
PORT_UAS, PORT_UAC = 31102, 31101
PORT_UAS_CTRL, PORT_UAC_CTRL = 31902, 31901
PORT_UAS_MEDIA, PORT_UAC_MEDIA = 31600, 31700
TOKEN = 'bench'


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def port_bound(port):
    """True once a UDP socket is bound to the port (/proc/net/udp)."""
    with open('/proc/net/udp') as f:
        return any(line.split()[1].endswith(':%04X' % port)
                   for line in list(f)[1:])


def socket_drops(pids):
    """Datagrams the kernel dropped at the UDP sockets of these processes
    (the last column of /proc/net/udp, by the sockets' inodes)."""
    inodes = set()
    for pid in pids:
        fd_dir = '/proc/%d/fd' % pid
        for fd in os.listdir(fd_dir):
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith('socket:['):
                inodes.add(link[8:-1])
    drops = 0
    for table in ('/proc/net/udp', '/proc/net/udp6'):
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    drops += int(cols[-1])
    return drops


class Rehomed:
    """rehomed, no Redis, `workers N`, from a config written here."""

    linger_s = 32  # libre keeps a finished transaction 64*T1

    def __init__(self, binary, workdir, workers):
        self.workers = workers
        self.name = 'rehomed-w%d' % workers
        self.port = PORT_REHOMED
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, 'rehome.conf')
        with open(self.conf, 'w') as f:
            f.write('node_id bench\nlisten udp:%s:%d tag=public\n'
                    'ctl_listen %s:%d\nctl_token %s\nlog_level warn\n'
                    'workers %d\n' % (HOST, self.port, HOST, PORT_CTL,
                                      TOKEN, workers))
        self.argv = [binary, '-c', self.conf]
        self.child, self.pids = None, []

    def describe(self):
        return 'rehomed, workers %d, udp, log_level warn' % self.workers

    def get(self, k, path):
        req = urllib.request.Request(
            'http://%s:%d%s' % (HOST, PORT_CTL + k - 1, path),
            headers={'Authorization': 'Bearer ' + TOKEN})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def up(self):
        try:
            return all(json.loads(self.get(k, '/v1/status'))
                       for k in range(1, self.workers + 1))
        except (OSError, ValueError):
            return False

    def start(self):
        self.child = bp.Child(self.argv, os.path.join(self.dir, 'log'))
        deadline = time.monotonic() + 10
        while not self.up():
            if time.monotonic() > deadline or self.child.poll():
                raise RuntimeError('%s did not start' % self.name)
            time.sleep(0.1)
        self.pids = [self.child.pid] + bp.children_of(self.child.pid)

    def stop(self):
        self.child.stop(grace_s=10)

    def calls_per_worker(self):
        per = []
        for k in range(1, self.workers + 1):
            for line in self.get(k, '/metrics').splitlines():
                if line.startswith('rehome_calls_total '):
                    per.append(int(float(line.split()[1])))
        return per


class Kamailio(bp.Kamailio):
    """bench_proxy.py's Kamailio (2 UDP workers) on this script's port."""

    port = PORT_KAMAILIO

    def __init__(self, binary, workdir):
        super().__init__(binary, workdir, settle_s=None)

    def start(self):
        self.child = bp.Child(self.argv(), self.log_path)
        deadline = time.monotonic() + 10
        while not port_bound(self.port):
            if time.monotonic() > deadline or self.child.poll():
                raise RuntimeError('kamailio did not start')
            time.sleep(0.1)
        time.sleep(1.0)  # its workers fork after the bind
        self.pids = [self.child.pid] + bp.children_of(self.child.pid)

    def calls_per_worker(self):
        return []


def sipp(role, tag, workdir, calls, timeout_s, extra):
    port, ctrl, media = {'uac': (PORT_UAC, PORT_UAC_CTRL, PORT_UAC_MEDIA),
                         'uas': (PORT_UAS, PORT_UAS_CTRL,
                                 PORT_UAS_MEDIA)}[role]
    prefix = os.path.join(workdir, '%s-%s' % (tag, role))
    argv = ['sipp', '-sf', os.path.join(bp.BENCH_DIR, role + '.xml'),
            '-i', HOST, '-p', str(port), '-cp', str(ctrl), '-mp', str(media),
            '-m', str(calls), '-timeout', '%ds' % timeout_s, '-nostdin',
            '-trace_stat', '-stf', prefix + '-stat.csv', '-fd', '1',
            '-trace_err', '-error_file', prefix + '-err.log'] + extra
    return bp.Child(argv, prefix + '.out')


def step(proxy, workdir, rate, seconds, settle_s):
    """One rate step: the figures of the calls and the proxy's CPU until
    settle_s after the caller's end."""
    tag = '%s-%d' % (proxy.name, rate)
    calls = int(rate * seconds)
    max_s = seconds + 20
    drops0, cpu0 = bp.udp_rcvbuf_errors(), bp.proc_cpu_ms(proxy.pids)
    own0 = socket_drops(proxy.pids)
    each0 = [bp.proc_cpu_ms([pid]) for pid in proxy.pids]
    uas = sipp('uas', tag, workdir, calls, max_s + 10, [])
    time.sleep(0.3)
    uac = sipp('uac', tag, workdir, calls, max_s,
               ['-t', 'un', '-max_socket', '5000',
                '-key', 'callee', '%s:%d' % (HOST, PORT_UAS),
                '-r', str(rate), '-l', str(max(2 * rate, 100)),
                '-recv_timeout', '10000', '%s:%d' % (HOST, proxy.port)])
    start = time.monotonic()
    uac.wait(start + max_s + 5)
    end = time.monotonic()
    uas.wait(end + 10)
    time.sleep(max(0.0, end + settle_s - time.monotonic()))
    a = bp.sipp_stats(workdir, tag, 'uac')
    b = bp.sipp_stats(workdir, tag, 'uas')
    elapsed = bp.stat_time(a['CurrentTime']) - bp.stat_time(a['StartTime'])
    res = {'rate': rate, 'calls': calls,
           'ok': int(a['SuccessfulCall(C)']),
           'failed': int(a['FailedCall(C)']) + int(b['FailedCall(C)']),
           'retrans': (int(a['Retransmissions(C)'])
                       + int(b['Retransmissions(C)'])),
           'achieved': int(a['OutgoingCall(C)']) / max(elapsed, 0.001),
           'cpu_ms': bp.proc_cpu_ms(proxy.pids) - cpu0,
           'drops': bp.udp_rcvbuf_errors() - drops0,
           'proxy_drops': socket_drops(proxy.pids) - own0,
           'cpu_each_ms': [bp.proc_cpu_ms([pid]) - c0 for pid, c0
                           in zip(proxy.pids, each0)]}
    res['passed'] = (res['failed'] == 0 and res['retrans'] == 0 and
                     res['ok'] == calls and res['achieved'] >= 0.95 * rate)
    return res


def print_step(s, settled):
    print('  %6d %7d %6d %7d %8.0f %10s %7d %7d  %s'
          % (s['rate'], s['calls'], s['failed'], s['retrans'], s['achieved'],
             '%.0f' % (s['cpu_ms'] * 1000 / s['calls']) if settled else '-',
             s['proxy_drops'], s['drops'],
             'pass' if s['passed'] else 'FAIL'), flush=True)


def bench(proxy, workdir, args):
    print('\n== %s' % proxy.describe(), flush=True)
    print('  %6s %7s %6s %7s %8s %10s %7s %7s' % (
        'cps', 'calls', 'failed', 'retrans', 'achieved', 'ms CPU/',
        'proxy', 'host'))
    print('  %6s %7s %6s %7s %8s %10s %7s %7s' % (
        '', '', '', '', 'cps', '1000 calls', 'drops', 'drops'))
    proxy.start()
    out = {'name': proxy.name}
    try:
        s = step(proxy, workdir, args.cpu_rate, args.cpu_seconds,
                 proxy.linger_s + 1)
        print_step(s, True)
        out['cpu_ms_per_1000'] = s['cpu_ms'] * 1000 / s['calls']
        print('  CPU ms per process (pid order, supervisor first): %s'
              % ' '.join('%.0f' % ms for ms in s['cpu_each_ms']))
        out['ceiling'], fails = 0, 0
        for rate in args.rates:
            s = step(proxy, workdir, rate, args.step_seconds, 3)
            print_step(s, False)
            if s['passed']:
                out['ceiling'] = max(out['ceiling'], rate)
            fails = 0 if s['passed'] else fails + 1
            if fails >= 2:
                break
        out['per_worker'] = proxy.calls_per_worker()
    finally:
        proxy.stop()
    if out['per_worker']:
        print('  calls served per worker: %s' % out['per_worker'])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rehomed', default=os.path.join(bp.REPO_DIR, 'build',
                                                      'rehomed'))
    ap.add_argument('--kamailio', default=shutil.which('kamailio'))
    ap.add_argument('--rates', type=int, nargs='+',
                    default=[1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000])
    ap.add_argument('--step-seconds', type=float, default=5)
    ap.add_argument('--cpu-rate', type=int, default=1000)
    ap.add_argument('--cpu-seconds', type=float, default=8)
    ap.add_argument('--quick', action='store_true',
                    help='two rate steps, shorter steps')
    args = ap.parse_args()
    if args.quick:
        args.rates, args.step_seconds, args.cpu_seconds = [500, 1000], 3, 3

    workdir = tempfile.mkdtemp(prefix='rehome-cores-')
    log('work files in %s; load average %s' % (
        workdir, open('/proc/loadavg').read().split()[:3]))
    proxies = [Rehomed(args.rehomed, workdir, 1),
               Rehomed(args.rehomed, workdir, 2)]
    if args.kamailio:
        proxies.append(Kamailio(args.kamailio, workdir))
    results = []
    try:
        for p in proxies:
            results.append(bench(p, workdir, args))
    finally:
        for child in bp.Child.started:
            child.stop()

    print('\n== summary (%d cores; load average at the end %s)' % (
        os.cpu_count(), ' '.join(open('/proc/loadavg').read().split()[:3])))
    base = results[0]
    for r in results:
        print('  %-12s clean up to %5d cps (x%.2f)  %4.0f ms CPU/1000 calls'
              '%s' % (r['name'], r['ceiling'],
                      r['ceiling'] / max(base['ceiling'], 1),
                      r['cpu_ms_per_1000'],
                      '  per worker %s' % r['per_worker']
                      if r['per_worker'] else ''))


if __name__ == '__main__':
    main()
