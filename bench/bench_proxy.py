#!/usr/bin/env python3
"""@file bench_proxy.py  rehomed against Kamailio 5.6: call rate, CPU, memory

Run by hand (it is not a test): `python3 bench/bench_proxy.py [--quick]`.

In one run, the same sipp caller/callee pair (bench/uac.xml, bench/uas.xml)
drives calls through each proxy in turn, on 127.0.0.1 only (the method of
bench/README.md), so the figures of the two proxies come from the same
machine, load and minute:

- memory: a fresh proxy, a short warm-up, then N concurrent calls (5000 at
  500 cps) that come in two halves with a pause between. The growth from
  the half-way plateau to the full one, divided by the dialogs added, is
  the marginal memory of a dialog; growth from idle also holds what
  short-lived peaks (buffers, allocator slack) left behind. Each plateau
  is read once the proxy's finished transactions are gone: Kamailio's tm
  keeps them 5 s, libre (rehomed) 64*T1 = 32 s; the calls are held until
  both plateaus are read. Kamailio's own allocator counters (core.shmmem)
  give the exact figure; for both proxies PSS (anonymous + shared memory,
  summed over their processes) gives the like-for-like one. rehomed keeps
  each leg's SDP, so the SDP bytes kept per dialog and the figure beyond
  them are printed as well.
- rate: stepped call rates, a fresh sipp pair per step, 0-duration calls
  (INVITE, 100, 180, 200, ACK, BYE, 200). A step passes only with every
  call successful, 0 failed calls and 0 retransmissions at both ends, and
  at least 95 % of the target rate achieved. After each step the script
  waits for the proxy's finished transactions to go, so each step starts
  from a quiet proxy.
- CPU: utime+stime from /proc/PID/stat of every proxy process over each
  step and its settling time (the timers' work for these calls counts),
  per 1000 calls; sipp's own CPU from its rusage.

Trade-offs: sipp is single-threaded and shares the 2 cores with the proxy,
so the highest rate is a noisy figure (UDP bursts overflow socket buffers
before the cores are saturated: RcvbufErrors are shown); CPU per 1000
calls is the steadier one. Process memory growth includes allocator slack
and is less exact than Kamailio's counters. Every process is a child of
this script, bounded in time and stopped by its PID.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
HOST = '127.0.0.1'

# Every port this script uses lies in one range of 1000 (--ports; default
# 28000-28999): these are offsets from its start, set by use_ports().
PORT_OFFSETS = {'PORT_KAMAILIO': 60, 'PORT_REHOMED': 70,
                'PORT_REHOMED_CTL': 80, 'PORT_UAC': 101, 'PORT_UAS': 102,
                'PORT_PROBE': 199, 'PORT_UAC_CTRL': 901,
                'PORT_UAS_CTRL': 902, 'PORT_UAC_MEDIA': 700,
                'PORT_UAS_MEDIA': 600}
PORTS_DEFAULT = '28000-28999'
REHOMED_TOKEN = 'bench'


def use_ports(spec):
    """Set the PORT_* globals from 'LO-HI', a range of at least 1000."""
    lo, _, hi = spec.partition('-')
    lo, hi = int(lo), int(hi or -1)
    if hi - lo < 999 or lo < 1024 or hi > 65535:
        raise SystemExit('--ports %s: need LO-HI, 1000 ports or more'
                         % spec)
    for name, offset in PORT_OFFSETS.items():
        globals()[name] = lo + offset


use_ports(PORTS_DEFAULT)

CLK_TCK = os.sysconf('SC_CLK_TCK')


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

class Child:
    """A child process, waited for with its rusage, stopped by its PID.
    Every one is listed in `started`, so that none outlives the script."""

    started = []

    def __init__(self, argv, logpath):
        self.argv = argv
        self.logfile = open(logpath, 'wb')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logfile,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.status = None
        self.cpu_s = 0.0
        Child.started.append(self)

    def poll(self):
        """True once the child has exited (status and CPU then known)."""
        if self.status is None:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.status  # reaped: Popen keep off
                self.cpu_s = ru.ru_utime + ru.ru_stime
                self.logfile.close()
        return self.status is not None

    def wait(self, deadline):
        """Wait until `deadline` (monotonic); past it, stop the child."""
        while not self.poll():
            if time.monotonic() >= deadline:
                log('  %s: still running at its deadline, stopped'
                    % os.path.basename(self.argv[0]))
                self.stop()
                break
            time.sleep(0.05)
        return self.status

    def stop(self, grace_s=5.0):
        """SIGTERM, then SIGKILL after `grace_s`; always reaped."""
        if self.poll():
            return self.status
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while not self.poll():
            if time.monotonic() >= deadline:
                os.kill(self.pid, signal.SIGKILL)
                deadline = float('inf')
            time.sleep(0.05)
        return self.status


def proc_cpu_ms(pids):
    """utime+stime of the processes (all their threads), in ms."""
    total = 0
    for pid in pids:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total * 1000.0 / CLK_TCK


def proc_mem_bytes(pids):
    """{'rss': bytes, 'pss': bytes} summed over the processes. 'pss' counts
    only anonymous and shared-memory pages (heap, Kamailio's shm): the
    file-backed share of libc moves whenever sipp starts or stops."""
    mem = {'rss': 0, 'pss': 0}
    for pid in pids:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                key, _, rest = line.partition(':')
                kb = rest.split()[0] if rest.strip() else '0'
                if key == 'Rss':
                    mem['rss'] += int(kb) * 1024
                elif key in ('Pss_Anon', 'Pss_Shmem'):
                    mem['pss'] += int(kb) * 1024
    return mem


def children_of(pid):
    """PIDs whose parent is `pid`."""
    kids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except OSError:
            continue
        if ppid == pid:
            kids.append(int(entry))
    return kids


def udp_rcvbuf_errors():
    """UDP RcvbufErrors of the host (/proc/net/snmp): datagrams dropped."""
    with open('/proc/net/snmp') as f:
        rows = [line.split() for line in f if line.startswith('Udp:')]
    return int(rows[1][rows[0].index('RcvbufErrors')])


def sip_ping(port, timeout_s):
    """True when an OPTIONS to 127.0.0.1:port gets any SIP response."""
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, PORT_PROBE))
        s.settimeout(0.2)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            msg = ('OPTIONS sip:%s:%d SIP/2.0\r\n'
                   'Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-probe%d;rport\r\n'
                   'Max-Forwards: 70\r\n'
                   'From: <sip:probe@example.com>;tag=probe\r\n'
                   'To: <sip:%s:%d>\r\n'
                   'Call-ID: bench-probe-%d@%s\r\n'
                   'CSeq: %d OPTIONS\r\n'
                   'Content-Length: 0\r\n\r\n'
                   % (HOST, port, HOST, PORT_PROBE, n, HOST, port,
                      os.getpid(), HOST, n))
            s.sendto(msg.encode(), (HOST, port))
            try:
                data = s.recv(65535)
            except socket.timeout:
                continue
            if data.startswith(b'SIP/2.0 '):
                return True
    return False


# ---------------------------------------------------------------- proxies

class Proxy:
    """What both proxies share: a child process of this script that
    answers OPTIONS once it is ready, its processes and its settling time
    (its finished transactions' lifetime + 1 s unless --settle says)."""

    holds_dialogs = True  # a memory phase means something

    def __init__(self, binary, workdir, settle_s=None):
        self.binary = binary
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, self.name + '.log')
        self.settle_s = self.linger_s + 1 if settle_s is None else settle_s
        self.child = None
        self.pids = []

    @property
    def port(self):
        return globals()[self.port_name]  # read after use_ports()

    def start(self):
        self.child = Child(self.argv(), self.log_path)
        if not sip_ping(self.port, 10):
            self.stop()
            raise RuntimeError('%s did not answer OPTIONS; see %s'
                               % (self.name, self.log_path))
        self.pids = [self.child.pid] + children_of(self.child.pid)

    def stop(self):
        if self.child:
            status = self.child.stop(grace_s=10)
            if status:
                log('  %s exited with status %s; see %s'
                    % (self.name, status, self.log_path))
        self.pids = []

    def memory(self):
        return proc_mem_bytes(self.pids)

    def own_drops(self):
        """Datagrams the proxy's own sockets dropped, None if unknown."""
        return None


class Kamailio(Proxy):
    """Kamailio 5.6 with bench/kamailio.cfg (see the notes in that file)."""

    name = 'kamailio'
    port_name = 'PORT_KAMAILIO'
    linger_s = 5  # tm keeps a finished transaction (wait timer)

    def describe(self):
        out = subprocess.run([self.binary, '-v'], capture_output=True,
                             text=True, timeout=10).stdout
        version = out.split('\n', 1)[0].replace('version: ', '').strip()
        return '%s, 2 UDP workers, -m 1024 -x tlsf, topoh + dialog' % version

    def ctl(self):
        return 'unix:' + os.path.join(self.dir, 'ctl.sock')

    def argv(self):
        return [self.binary, '-f', os.path.join(BENCH_DIR, 'kamailio.cfg'),
                '-A', 'BENCH_LISTEN=udp:%s:%d' % (HOST, self.port),
                '-A', 'BENCH_CTL="%s"' % self.ctl(),
                '-P', os.path.join(self.dir, 'pid'), '-Y', self.dir,
                '-w', self.dir, '-m', '1024', '-M', '8', '-x', 'tlsf',
                '-DD', '-E']

    def rpc(self, *cmd):
        out = subprocess.run(['kamcmd', '-s', self.ctl()] + list(cmd),
                             capture_output=True, text=True, timeout=10)
        return out.stdout

    def dialogs(self):
        """Confirmed dialogs, from the dialog module's statistics."""
        out = self.rpc('stats.get_statistics', 'active_dialogs')
        return int(re.search(r'active_dialogs = (\d+)', out).group(1))

    def memory(self):
        """Process PSS/RSS plus shm 'used' and 'real_used' (with the
        allocator's own overhead), in bytes."""
        mem = super().memory()
        out = self.rpc('core.shmmem')
        for key in ('used', 'real_used'):
            mem['shm_' + key] = int(re.search(r'\b%s: (\d+)' % key,
                                              out).group(1))
        return mem


class Rehomed(Proxy):
    """rehomed, single node, no Redis, from a config written here."""

    name = 'rehomed'
    port_name = 'PORT_REHOMED'
    linger_s = 32  # libre keeps a finished transaction 64*T1

    def describe(self):
        out = subprocess.run([self.binary, '-V'], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        return '%s (%s), single node, udp, log_level warn' % (out,
                                                               self.binary)

    def argv(self):
        conf = os.path.join(self.dir, 'rehome.conf')
        with open(conf, 'w') as f:
            f.write('# written by bench_proxy.py: one node, no Redis\n'
                    'node_id       bench\n'
                    'listen        udp:%s:%d tag=public\n'
                    'shtag         service active\n'
                    'default_shtag service\n'
                    'ctl_listen    %s:%d\n'
                    'ctl_token     %s\n'
                    'log_level     warn\n'
                    % (HOST, self.port, HOST, PORT_REHOMED_CTL,
                       REHOMED_TOKEN))
        return [self.binary, '-c', conf]

    def get(self, path):
        req = urllib.request.Request(
            'http://%s:%d%s' % (HOST, PORT_REHOMED_CTL, path),
            headers={'Authorization': 'Bearer ' + REHOMED_TOKEN})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read()

    def dialogs(self):
        """Dialogs in the table (GET /v1/status), None if not known."""
        try:
            return json.loads(self.get('/v1/status'))['dialogs']['total']
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def own_drops(self):
        """rehome_sip_udp_drops_total over its listeners (the kernel's
        count for its sockets: SO_RXQ_OVFL)."""
        try:
            text = self.get('/metrics').decode()
        except OSError:
            return None
        return sum(int(float(m.group(1))) for m in re.finditer(
            r'^rehome_sip_udp_drops_total\S* (\S+)$', text, re.M))


class Direct(Proxy):
    """No proxy: the sipp caller sends straight to the callee. Its clean
    rate is the harness's ceiling on this machine (the issue's target is
    1.5x Kamailio's rate or this ceiling, whichever is lower)."""

    name = 'direct'
    port_name = 'PORT_UAS'
    linger_s = 4  # the callee's timewait
    holds_dialogs = False

    def describe(self):
        return 'sipp caller straight to sipp callee (the harness ceiling)'

    def start(self):
        self.pids = []

    def stop(self):
        pass

    def dialogs(self):
        return None


# ---------------------------------------------------------------- sipp

def sdp_bytes(scenario, first_line):
    """Size on the wire of the SDP in the message of `scenario` that starts
    with `first_line` (sipp strips indentation and ends lines with CRLF)."""
    with open(os.path.join(BENCH_DIR, scenario)) as f:
        text = f.read()
    for block in re.findall(r'<!\[CDATA\[(.*?)\]\]>', text, re.S):
        lines = [line.strip() for line in block.strip().splitlines()]
        if lines[0].startswith(first_line):
            body = lines[lines.index('') + 1:]
            return sum(len(line) + 2 for line in body)
    raise ValueError('%s: no message starting with %r' % (scenario,
                                                        first_line))


def sdp_kept_per_dialog():
    """rehomed keeps the SDP last sent to each leg: the offer and the
    answer of the call."""
    return sdp_bytes('uac.xml', 'INVITE') + sdp_bytes('uas.xml',
                                                      'SIP/2.0 200')


def sipp_argv(role, tag, workdir, calls, timeout_s, extra):
    port, ctrl, media = {'uac': (PORT_UAC, PORT_UAC_CTRL, PORT_UAC_MEDIA),
                         'uas': (PORT_UAS, PORT_UAS_CTRL, PORT_UAS_MEDIA)}[role]
    prefix = os.path.join(workdir, '%s-%s' % (tag, role))
    return ['sipp', '-sf', os.path.join(BENCH_DIR, role + '.xml'),
            '-i', HOST, '-p', str(port), '-cp', str(ctrl), '-mp', str(media),
            '-m', str(calls), '-timeout', '%ds' % timeout_s, '-nostdin',
            '-trace_stat', '-stf', prefix + '-stat.csv', '-fd', '1',
            '-trace_err', '-error_file', prefix + '-err.log'] + extra


def sipp_stats(workdir, tag, role):
    """Last line of sipp's statistics file, as a dict."""
    path = os.path.join(workdir, '%s-%s-stat.csv' % (tag, role))
    with open(path) as f:
        rows = [line.rstrip('\n').split(';') for line in f if line.strip()]
    return dict(zip(rows[0], rows[-1]))


def stat_time(value):
    """sipp's 'date<TAB>time<TAB>epoch' cell -> epoch seconds."""
    return float(value.split('\t')[2])


def stat_duration_ms(value):
    """sipp's 'hh:mm:ss:usec' cell -> ms."""
    h, m, s, us = (int(x) for x in value.split(':'))
    return ((h * 60 + m) * 60 + s) * 1000.0 + us / 1000.0


class CallRun:
    """A sipp caller and callee pair through one proxy."""

    def __init__(self, proxy, workdir, tag, rate, calls, hold_ms,
                 paused_s=0.0):
        self.workdir, self.tag, self.calls = workdir, tag, calls
        self.max_s = calls / rate + hold_ms / 1000.0 + paused_s + 20
        self.uas = Child(sipp_argv('uas', tag, workdir, calls,
                                   self.max_s + 10, []),
                         os.path.join(workdir, tag + '-uas.out'))
        time.sleep(0.3)  # the callee must be bound before the first INVITE
        limit = max(2 * rate, calls if hold_ms else 0, 100)
        self.uac = Child(sipp_argv('uac', tag, workdir, calls, self.max_s,
                                   ['-key', 'callee', '%s:%d' % (HOST,
                                                                 PORT_UAS),
                                    '-r', str(rate), '-d', str(hold_ms),
                                    '-l', str(limit),
                                    '-recv_timeout', '10000',
                                    '%s:%d' % (HOST, proxy.port)]),
                         os.path.join(workdir, tag + '-uac.out'))
        self.started = time.monotonic()

    def toggle_pause(self):
        """Pause (or resume) the caller's new calls: sipp's 'p' command on
        its control port."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b'p', (HOST, PORT_UAC_CTRL))

    def current_calls(self):
        """Calls the caller holds now (its stats file, 1 s resolution)."""
        return int(sipp_stats(self.workdir, self.tag, 'uac')['CurrentCall'])

    def finish(self):
        """Wait for both ends; returns the figures of the run."""
        self.uac.wait(self.started + self.max_s + 5)
        uac_end = time.monotonic()
        self.uas.wait(uac_end + 10)  # the callee's 4 s timewait
        uac = sipp_stats(self.workdir, self.tag, 'uac')
        uas = sipp_stats(self.workdir, self.tag, 'uas')
        elapsed = stat_time(uac['CurrentTime']) - stat_time(uac['StartTime'])
        return {
            'calls': self.calls,
            'ok': int(uac['SuccessfulCall(C)']),
            'failed': int(uac['FailedCall(C)']) + int(uas['FailedCall(C)']),
            'retrans': (int(uac['Retransmissions(C)'])
                        + int(uas['Retransmissions(C)'])),
            'achieved_cps': int(uac['OutgoingCall(C)']) / elapsed,
            'invite_200_ms': stat_duration_ms(uac['ResponseTime1(C)']),
            'sipp_cpu_ms': (self.uac.cpu_s + self.uas.cpu_s) * 1000,
            'exit': (self.uac.status, self.uas.status),
            'uac_end': uac_end,
        }


# ---------------------------------------------------------------- phases

def rate_step(proxy, workdir, rate, seconds):
    """One rate step; the proxy's CPU is read until its finished
    transactions are gone, so that their timers' work is counted and the
    next step starts from a quiet proxy."""
    tag = '%s-%d' % (proxy.name, rate)
    calls = int(rate * seconds)
    drops0 = udp_rcvbuf_errors()
    own0 = proxy.own_drops()
    cpu0 = proc_cpu_ms(proxy.pids)
    res = CallRun(proxy, workdir, tag, rate, calls, 0).finish()
    time.sleep(max(0.0, res.pop('uac_end') + proxy.settle_s
                   - time.monotonic()))
    res['proxy_cpu_ms'] = proc_cpu_ms(proxy.pids) - cpu0
    res['rcvbuf_drops'] = udp_rcvbuf_errors() - drops0
    own = proxy.own_drops()
    res['proxy_drops'] = None if own is None else own - own0
    res['rate'] = rate
    res['passed'] = (res['exit'] == (0, 0) and res['failed'] == 0
                     and res['retrans'] == 0 and res['ok'] == calls
                     and res['achieved_cps'] >= 0.95 * rate)
    return res


def memory_level(proxy, run):
    """(memory, dialogs) once the proxy's finished transactions are gone;
    dialogs as the proxy counts them, else as the caller holds them."""
    time.sleep(proxy.settle_s)
    mem = proxy.memory()
    dialogs = proxy.dialogs()
    return mem, dialogs if dialogs is not None else run.current_calls()


def memory_phase(proxy, workdir, calls, rate):
    """Memory per dialog at `calls` concurrent calls.

    Growth from idle counts what a process keeps after short-lived peaks
    (transactions, buffers) as well as the dialogs. So the calls come in
    two halves at the same rate, with a pause between: the growth from
    the first plateau to the second is the marginal cost of a dialog, as
    the peaks of both halves are alike. Each level is read once the
    proxy's finished transactions are gone; calls last until both are."""
    CallRun(proxy, workdir, proxy.name + '-warmup', 200, 400, 0).finish()
    time.sleep(proxy.settle_s)
    idle = proxy.memory()
    hold_s = calls / rate + 2 * proxy.settle_s + 5
    run = CallRun(proxy, workdir, proxy.name + '-memory', rate, calls,
                  int(hold_s * 1000), paused_s=proxy.settle_s + 5)
    time.sleep(calls / 2 / rate)
    run.toggle_pause()
    half, half_dialogs = memory_level(proxy, run)
    run.toggle_pause()
    time.sleep(calls / 2 / rate)
    full, dialogs = memory_level(proxy, run)
    held = run.current_calls()
    res = run.finish()
    time.sleep(proxy.settle_s)
    added = max(dialogs - half_dialogs, 1)
    return {'dialogs': dialogs, 'dialogs_half': half_dialogs,
            'calls_held_sipp': held, 'dialogs_after': proxy.dialogs(),
            'failed': res['failed'], 'ok': res['ok'],
            'idle': idle, 'half': half, 'full': full,
            'per_dialog': {k: (full[k] - half[k]) / added for k in full},
            'per_dialog_from_idle': {k: (full[k] - idle[k]) / max(dialogs, 1)
                                     for k in full}}


def run_rate_steps(proxy, workdir, rates, seconds, max_fails):
    steps, fails = [], 0
    for rate in rates:
        log('  %s: %d cps for %g s' % (proxy.name, rate, seconds))
        step = rate_step(proxy, workdir, rate, seconds)
        steps.append(step)
        print_step(step)
        fails = 0 if step['passed'] else fails + 1
        if fails >= max_fails:
            log('  %s: %d failed steps in a row, stopping here'
                % (proxy.name, fails))
            break
    return steps


def bench(proxy, workdir, args):
    """Memory phase then the rate steps, on one proxy process."""
    result = {'proxy': proxy.name, 'describe': proxy.describe()}
    print('\n== %s: %s' % (proxy.name, result['describe']), flush=True)
    proxy.start()
    try:
        if args.mem_calls and proxy.holds_dialogs:
            log('  %s: memory at %d concurrent calls' % (proxy.name,
                                                         args.mem_calls))
            result['memory'] = memory_phase(proxy, workdir, args.mem_calls,
                                            args.mem_rate)
            print_memory(proxy.name, result['memory'])
        print_step_header()
        result['steps'] = run_rate_steps(proxy, workdir, args.rates,
                                         args.step_seconds,
                                         args.stop_after_failures)
    finally:
        proxy.stop()
    summarize(result)
    print_summary(result)
    return result


def summarize(result):
    passed = [s for s in result['steps'] if s['passed']]
    calls = sum(s['calls'] for s in passed)
    result['max_clean_cps'] = max((s['rate'] for s in passed), default=0)
    result['clean_up_to_cps'] = 0
    for s in result['steps']:
        if not s['passed']:
            break
        result['clean_up_to_cps'] = s['rate']
    result['cpu_ms_per_1000'] = (sum(s['proxy_cpu_ms'] for s in passed)
                                 / calls * 1000 if calls else None)
    result['sipp_cpu_ms_per_1000'] = (sum(s['sipp_cpu_ms'] for s in passed)
                                      / calls * 1000 if calls else None)


# ---------------------------------------------------------------- output

def print_step_header():
    print('  %6s %7s %6s %7s %8s %10s %9s %7s %8s  %s'
          % ('cps', 'calls', 'failed', 'retrans', 'achieved',
             'proxy ms/', 'sipp ms/', 'rcvbuf', 'INV->200', 'verdict'))
    print('  %6s %7s %6s %7s %8s %10s %9s %7s %8s'
          % ('', '', '', '', 'cps', '1000 calls', '1000 c.', 'drops', 'ms'))


def print_step(s):
    per_k = 1000.0 / max(s['calls'], 1)
    print('  %6d %7d %6d %7d %8.0f %10.0f %9.0f %7d %8.1f  %s%s'
          % (s['rate'], s['calls'], s['failed'], s['retrans'],
             s['achieved_cps'], s['proxy_cpu_ms'] * per_k,
             s['sipp_cpu_ms'] * per_k, s['rcvbuf_drops'], s['invite_200_ms'],
             'pass' if s['passed'] else 'FAIL',
             '' if s['exit'] == (0, 0) else ' (sipp exit %s/%s)' % s['exit'])
          + ('' if s.get('proxy_drops') is None else
             ' (%d of the drops by the proxy)' % s['proxy_drops']),
          flush=True)


def print_memory(name, m):
    pd, pi = m['per_dialog'], m['per_dialog_from_idle']
    print('  memory at %d dialogs (%d at the half-way plateau; sipp holds'
          ' %d calls; %d failed), per dialog:'
          % (m['dialogs'], m['dialogs_half'], m['calls_held_sipp'],
             m['failed']))
    print('    %-34s %9s %9s' % ('', 'marginal', 'from idle'))
    rows = [('PSS, anon+shm (B)', 'pss'), ('RSS, summed (B)', 'rss')]
    if 'shm_used' in pd:
        rows += [('shm used (B)', 'shm_used'),
                 ('shm used + allocator (B)', 'shm_real_used')]
    for label, key in rows:
        print('    %-34s %9.0f %9.0f' % (label, pd[key], pi[key]))
    if name == 'rehomed':
        sdp = sdp_kept_per_dialog()
        print('    %-34s %9d' % ('of which SDP kept (B)', sdp))
        print('    %-34s %9.0f %9.0f' % ('PSS beyond SDP (B)', pd['pss'] - sdp,
                                         pi['pss'] - sdp))
    print('    dialogs left after the calls ended: %s' % m['dialogs_after'],
          flush=True)


def fmt(value):
    return '-' if value is None else '%.0f' % value


def print_summary(r):
    print('  highest clean rate: %d cps (0 failed, 0 retransmissions,'
          ' >= 95 %% of target); every step clean up to %d cps'
          % (r['max_clean_cps'], r['clean_up_to_cps']))
    print('  proxy CPU per 1000 calls: %s ms; sipp (both ends): %s ms'
          ' (over the passing steps)'
          % (fmt(r['cpu_ms_per_1000']), fmt(r['sipp_cpu_ms_per_1000'])),
          flush=True)


def ratio(a, b):
    return '-' if not a or not b else '%.2f' % (a / b)


def print_ratios(kam, reh):
    nothing = {'pss': None, 'shm_real_used': None}
    km = kam['memory']['per_dialog'] if 'memory' in kam else nothing
    rm = reh['memory']['per_dialog'] if 'memory' in reh else nothing
    sdp = sdp_kept_per_dialog()
    rows = [
        ('highest clean rate (cps)', kam['max_clean_cps'],
         reh['max_clean_cps']),
        ('every step clean up to (cps)', kam['clean_up_to_cps'],
         reh['clean_up_to_cps']),
        ('proxy CPU per 1000 calls (ms)', kam['cpu_ms_per_1000'],
         reh['cpu_ms_per_1000']),
        ('memory per dialog, marginal PSS (B)', km['pss'], rm['pss']),
        ('  Kamailio shm+allocator vs rehomed PSS (B)',
         km['shm_real_used'], rm['pss']),
        ('  same, rehomed beyond its %d B of SDP (B)' % sdp,
         km['shm_real_used'], rm['pss'] and rm['pss'] - sdp),
    ]
    print('\n== rehomed / Kamailio')
    print('  %-62s %9s %9s %7s' % ('figure', 'kamailio', 'rehomed', 'ratio'))
    for label, k, r in rows:
        print('  %-62s %9s %9s %7s' % (label, fmt(k), fmt(r), ratio(r, k)))
    print('  (rate: higher is better; CPU and memory: lower is better)')


def print_rate_target(results):
    """Issue 15's rate target: 1.5x Kamailio's clean rate, or the
    harness's ceiling (sipp straight to sipp) if that is lower."""
    target = 1.5 * results['kamailio']['max_clean_cps']
    ceiling = results.get('direct', {}).get('max_clean_cps')
    if ceiling is not None:
        print('  harness ceiling (direct sipp to sipp): %d cps' % ceiling)
        target = min(target, ceiling)
    got = results['rehomed']['max_clean_cps']
    print('  rate target: %d cps; rehomed %d cps: %s'
          % (target, got, 'met' if got >= target else 'missed'))


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(
        description='Benchmark rehomed against Kamailio 5.6 with sipp '
                    '(loopback, ports 28000-28999 unless --ports).')
    p.add_argument('--proxies', default='kamailio,rehomed',
                   help='comma-separated, in order (default: %(default)s);'
                        ' "direct" also runs sipp caller to callee with no'
                        ' proxy: the harness ceiling')
    p.add_argument('--rehomed', default=os.path.join(REPO_DIR, 'build',
                                                     'rehomed'),
                   help='rehomed binary (default: %(default)s)')
    p.add_argument('--kamailio', default='/usr/sbin/kamailio')
    p.add_argument('--rates', default='500,1000,1500,2000,2500,3000,4000',
                   help='call rates of the steps, cps (default: '
                        '%(default)s)')
    p.add_argument('--step-seconds', type=float, default=8)
    p.add_argument('--stop-after-failures', type=int, default=2,
                   help='stop the steps after this many failures in a row')
    p.add_argument('--mem-calls', type=int, default=5000,
                   help='concurrent calls of the memory phase; 0: no '
                        'memory phase')
    p.add_argument('--mem-rate', type=int, default=500)
    p.add_argument('--settle', type=float,
                   help='seconds to wait after calls for the proxy to be '
                        'quiet (default: its transaction lifetime + 1 s: '
                        'Kamailio 6, rehomed 33)')
    p.add_argument('--quick', action='store_true',
                   help='smoke run: 2 short steps, 500 calls for memory, '
                        '2 s settle (its figures are not measurements)')
    p.add_argument('--ports', default=PORTS_DEFAULT,
                   help='LO-HI, the 1000 ports (or more) the bench may use'
                        ' (default: %(default)s)')
    p.add_argument('--json', help='also write the results to this file')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (sipp stats, logs)')
    args = p.parse_args()
    if args.quick:
        args.rates, args.step_seconds = '200,500', 3
        args.mem_calls, args.mem_rate, args.settle = 500, 250, 2
    args.rates = [int(r) for r in args.rates.split(',')]
    args.proxies = args.proxies.split(',')
    use_ports(args.ports)
    return args


def make_proxy(name, args, workdir):
    if name == 'kamailio':
        return Kamailio(args.kamailio, workdir, args.settle)
    if name == 'direct':
        return Direct(None, workdir, args.settle)
    if name == 'rehomed':
        if not os.access(args.rehomed, os.X_OK):
            raise RuntimeError('no rehomed at %s (--rehomed)' % args.rehomed)
        return Rehomed(os.path.abspath(args.rehomed), workdir, args.settle)
    raise RuntimeError('unknown proxy %r' % name)


def on_sigterm(signum, frame):
    raise SystemExit('stopped by signal %d' % signum)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = tempfile.mkdtemp(prefix='rehome-bench-')
    results = {}
    try:
        for name in args.proxies:
            try:
                results[name] = bench(make_proxy(name, args, workdir),
                                      workdir, args)
            except RuntimeError as e:
                print('\n== %s: not measured: %s' % (name, e), flush=True)
        if 'kamailio' in results and 'rehomed' in results:
            print_ratios(results['kamailio'], results['rehomed'])
            print_rate_target(results)
        if args.quick:
            print('\n(--quick: a smoke run; its figures are not measurements)')
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(results, f, indent=1)
    finally:
        for child in Child.started:
            child.stop()
        if args.keep:
            log('work directory kept: %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if results else 1


if __name__ == '__main__':
    sys.exit(main())
