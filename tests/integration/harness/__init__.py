"""harness.py  Helpers shared by every rehome integration test (stdlib only).

A test file registers test functions on a `Test` runner; each function gets
a fresh `Ctx`, which starts processes (rehomed, redis-server, sipp) in a
temporary directory and stops every one of them, by its own PID, when the
test ends, pass or fail. A rehomed that crashed, did not stop on SIGTERM or
printed a sanitizer report fails the test even if its assertions passed.

    import harness as h

    t = h.Test(__file__)

    @t.test
    def one_call(ctx):
        uas = ctx.sipp('uas.xml', ip=h.CALLEE_IP)
        rh = ctx.rehomed(upstream=uas.target)
        uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=rh.sip_addr)
        caller, callee = h.run_pair(uac, uas)
        assert caller.ok, caller.why()

    t.main()

Addresses: the caller is on 127.0.0.10, the callee on 127.0.0.20, rehomed
on 127.0.0.1 and SDP media on 127.0.0.99, so that any leak of one side's
address toward the other can be seen. Ports come from REHOME_TEST_PORTS
("lo-hi", default 26000-26999): give each engineer or CI job its own range.
Set REHOME_KEEP=1 to keep the temporary directories of passing tests too.
"""

import atexit
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SRC = os.environ.get('REHOME_SRC') or os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..'))
REHOMED = os.environ.get('REHOMED') or os.path.join(SRC, 'build', 'rehomed')
REHOMECTL = os.environ.get('REHOMECTL') or os.path.join(SRC, 'build',
                                                        'rehomectl')
SIPP_DIR = os.path.join(SRC, 'tests', 'sipp')

ENGINE_IP = '127.0.0.1'
CALLER_IP = '127.0.0.10'
CALLEE_IP = '127.0.0.20'
MEDIA_IP = '127.0.0.99'

CTL_TOKEN = 'test-token'

# Lines of a rehomed log that mean a memory or undefined-behaviour bug
SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
                   'runtime error:', 'SUMMARY: UndefinedBehaviorSanitizer')


class TestFailure(AssertionError):
    """A harness-detected failure (process crashed, did not start, ...)."""


# ---------------------------------------------------------------- ports

def _port_range():
    lo, _, hi = os.environ.get('REHOME_TEST_PORTS', '26000-26999') \
        .partition('-')
    return int(lo), int(hi)


_ports_given = set()


def _bindable(port):
    """True if nothing holds `port` on any local address, UDP and TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(('0.0.0.0', port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port(count=1):
    """First of `count` consecutive ports free on UDP and TCP.

    Drawn at random from REHOME_TEST_PORTS and never handed out twice by
    this process, so that two servers set up before either binds do not
    get the same port.
    """
    lo, hi = _port_range()
    for _ in range(1000):
        p = random.randrange(lo, hi - count + 2)
        block = range(p, p + count)
        if _ports_given.isdisjoint(block) and all(map(_bindable, block)):
            _ports_given.update(block)
            return p
    raise TestFailure('no free port in %d-%d' % (lo, hi))


def port_bound(ip, port, transport='udp'):
    """True if some process has bound ip:port for `transport`."""
    kind = socket.SOCK_DGRAM if transport == 'udp' else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((ip, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


# --------------------------------------------------------------- waiting

def wait_until(pred, timeout=5.0, interval=0.05):
    """Call pred() until it returns something true; return that, or the
    last (false) value once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ------------------------------------------------------------- processes

_running = {}    # pid -> Proc, for the atexit safety net


class Proc:
    """A child process with its output in a log file, stopped by its PID."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.popen = None
        self.returncode = None
        self.died_early = False   # exited before stop() was asked

    def start(self):
        with open(self.log_path, 'ab') as log:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.env)
        _running[self.popen.pid] = self
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout):
        """Wait for a natural exit; None if still running after timeout."""
        try:
            self.returncode = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        _running.pop(self.popen.pid, None)
        return self.returncode

    def stop(self, timeout=5.0):
        """SIGTERM, wait `timeout`, then SIGKILL. Returns the exit status
        (negative: killed by that signal); None if never started."""
        if self.popen is None:
            return None
        if self.popen.poll() is not None:
            self.died_early = self.returncode is None
        else:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.returncode = self.popen.returncode
        _running.pop(self.popen.pid, None)
        return self.returncode

    def log(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def log_tail(self, lines=25):
        return '\n'.join(self.log().splitlines()[-lines:])


@atexit.register
def _stop_all():
    for proc in list(_running.values()):
        proc.stop(timeout=2.0)


def _sigterm(signum, frame):
    raise SystemExit('killed by signal %d' % signum)


# ---------------------------------------------------------------- rehomed

class Rehomed(Proc):
    """rehomed with a generated config; every port it needs is free.

    listens: list of "PROTO:IP:PORT tag=NAME" (default udp+tcp on
    ENGINE_IP:<free port>, tag "public"); upstream: "PROTO:IP:PORT";
    redis: "HOST:PORT"; shtags: {name: "active"|"backup"}; extra: more
    config lines ("key value") or a dict, appended as given.
    """

    def __init__(self, workdir, name='rehomed', node_id='node1',
                 listens=None, upstream=None, shtags=None,
                 default_shtag='service', redis=None, cluster=None,
                 repl_secret=None, policy=None, ctl_token=CTL_TOKEN,
                 log_level='debug', extra=None):
        if listens is None:
            self.sip_addr = '%s:%d' % (ENGINE_IP, free_port())
            listens = ['%s:%s tag=public' % (tp, self.sip_addr)
                       for tp in ('udp', 'tcp')]
        else:
            self.sip_addr = listens[0].split()[0].partition(':')[2]
        self.sip_port = int(self.sip_addr.rpartition(':')[2])
        self.ctl_addr = '%s:%d' % (ENGINE_IP, free_port())
        self.token = ctl_token
        if shtags is None:
            shtags = {default_shtag: 'active'}
        lines = ['node_id %s' % node_id]
        lines += ['listen %s' % ln for ln in listens]
        lines += ['shtag %s %s' % kv for kv in shtags.items()]
        lines += ['default_shtag %s' % default_shtag,
                  'ctl_listen %s' % self.ctl_addr,
                  'log_level %s' % log_level]
        for key, value in (('upstream', upstream), ('redis', redis),
                           ('cluster', cluster),
                           ('repl_secret', repl_secret),
                           ('policy', policy), ('ctl_token', ctl_token)):
            if value:
                lines.append('%s %s' % (key, value))
        if isinstance(extra, dict):
            extra = ['%s %s' % kv for kv in extra.items()]
        lines += list(extra or [])

        self.conf_text = '\n'.join(lines) + '\n'
        self.conf_path = os.path.join(workdir, name + '.conf')
        with open(self.conf_path, 'w') as f:
            f.write(self.conf_text)

        env = dict(os.environ)
        env.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
        env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')
        super().__init__(name, [REHOMED, '-c', self.conf_path],
                         os.path.join(workdir, name + '.log'), env=env)
        self.ctl = Ctl(self.ctl_addr, ctl_token)

    def start(self, timeout=10.0):
        """Start and wait for the "running" line of the log."""
        super().start()
        ready = wait_until(lambda: not self.alive() or
                           re.search(r"node '.*' running", self.log()),
                           timeout)
        if not self.alive():
            raise TestFailure('%s exited at start (status %s):\n%s' % (
                self.name, self.popen.returncode, self.log_tail()))
        if not ready:
            raise TestFailure('%s not running after %.0fs:\n%s' % (
                self.name, timeout, self.log_tail()))
        return self

    def problems(self):
        """What went wrong with this process, [] if nothing; call after
        stop()."""
        found = []
        if self.died_early:
            found.append('%s died during the test (status %s)' % (
                self.name, self.returncode))
        elif self.returncode not in (0, None):
            found.append('%s exit status %s after SIGTERM' % (
                self.name, self.returncode))
        log = self.log()
        found += ['%s: %s' % (self.name, line.strip())
                  for line in log.splitlines()
                  if any(mark in line for mark in SANITIZER_MARKS)]
        return found

    def dialog_counts(self):
        """The "dialogs" object of GET /v1/status: total, early,
        confirmed, ended, replicas, by_shtag."""
        status, data = self.ctl.get('/v1/status')
        if status != 200:
            raise TestFailure('GET /v1/status: %s %s' % (status, data))
        return data['dialogs']

    def active_dialogs(self):
        """Dialogs not ended yet (early + confirmed)."""
        counts = self.dialog_counts()
        return counts['early'] + counts['confirmed']

    def wait_log(self, pattern, timeout=5.0):
        """Wait for a log line matching the regex; return the match."""
        return wait_until(lambda: re.search(pattern, self.log(), re.M),
                          timeout)


# ------------------------------------------------------------------ redis

class Redis(Proc):
    """A throw-away redis-server on ENGINE_IP (no persistence)."""

    def __init__(self, workdir, name='redis'):
        self.port = free_port()
        self.addr = '%s:%d' % (ENGINE_IP, self.port)
        super().__init__(name, [
            'redis-server', '--port', str(self.port), '--bind', ENGINE_IP,
            '--save', '', '--appendonly', 'no', '--dir', workdir,
            '--daemonize', 'no'], os.path.join(workdir, name + '.log'))

    def start(self, timeout=10.0):
        super().start()
        if not wait_until(self._pong, timeout):
            raise TestFailure('redis-server not answering:\n' +
                              self.log_tail())
        return self

    def _pong(self):
        try:
            return self.cmd('PING') == 'PONG'
        except OSError:
            return False

    def cmd(self, *args):
        """Run one command; returns str, int, list or None (RESP types).
        A Redis error reply raises RuntimeError."""
        req = b'*%d\r\n' % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            req += b'$%d\r\n%s\r\n' % (len(a), a)
        with socket.create_connection((ENGINE_IP, self.port), 2) as s:
            s.sendall(req)
            return _resp_read(s.makefile('rb'))


def _resp_read(f):
    line = f.readline()
    if not line:
        raise OSError('redis closed the connection')
    kind, rest = line[:1], line[1:-2]
    if kind == b'+':
        return rest.decode()
    if kind == b'-':
        raise RuntimeError(rest.decode())
    if kind == b':':
        return int(rest)
    if kind == b'$':
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode('latin-1')
    if kind == b'*':
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise OSError('bad RESP line %r' % line)


# ------------------------------------------------------------ control API

class Ctl:
    """Tiny client of the control API (JSON over HTTP, bearer token)."""

    def __init__(self, addr, token=CTL_TOKEN):
        self.host, _, port = addr.rpartition(':')
        self.port = int(port)
        self.token = token

    def request(self, method, path, body=None, timeout=5.0):
        """Returns (status, data): data is the decoded JSON, or the text
        when the reply is not JSON."""
        headers = {}
        if self.token:
            headers['Authorization'] = 'Bearer ' + self.token
        if body is not None:
            body = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            text = resp.read().decode('utf-8', 'replace')
        finally:
            conn.close()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    def get(self, path):
        return self.request('GET', path)

    def post(self, path, body=None):
        return self.request('POST', path, body)


# ----------------------------------------------------------- SIP messages

COMPACT = {'i': 'call-id', 'm': 'contact', 'e': 'content-encoding',
           'l': 'content-length', 'c': 'content-type', 'f': 'from',
           's': 'subject', 'k': 'supported', 't': 'to', 'v': 'via'}


class SipMsg:
    """One SIP message: direction ('sent'/'received', seen from its
    sipp or socket), start line, headers [(name, value)] in order, body."""

    def __init__(self, raw, direction=None, transport=None):
        self.raw = raw
        self.direction = direction
        self.transport = transport
        self.time = None    # set by parse_trace
        sep = '\r\n\r\n' if '\r\n\r\n' in raw else '\n\n'
        head, _, body = raw.partition(sep)
        lines = head.replace('\r\n', '\n').split('\n')
        self.start_line = lines[0].strip()
        self.headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(':')
            if colon:
                self.headers.append((name.strip(), value.strip()))
        length = self.header('Content-Length')
        self.body = body[:int(length)] if length and length.isdigit() \
            else body

    @property
    def is_request(self):
        return not self.start_line.startswith('SIP/')

    @property
    def method(self):
        """Request method, or the CSeq method of a response."""
        if self.is_request:
            return self.start_line.split(' ', 1)[0]
        return self.cseq[1]

    @property
    def status(self):
        """Response code (int); None for a request."""
        return None if self.is_request else int(self.start_line.split()[1])

    @property
    def call_id(self):
        return self.header('Call-ID')

    @property
    def cseq(self):
        """(number, method)"""
        num, _, method = (self.header('CSeq') or '0 ?').partition(' ')
        return int(num), method.strip()

    def header_all(self, name):
        """Every value of that header (compact forms included), in order."""
        name = name.lower()
        return [v for n, v in self.headers
                if COMPACT.get(n.lower(), n.lower()) == name]

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def __repr__(self):
        return '<%s %s %s>' % (self.direction, self.start_line,
                               self.call_id)


# "UDP message sent (480 bytes):" / "TCP message received [255] bytes :"
_TRACE_HEAD = re.compile(r'^(\w+) message (sent|received) [\[(]\d+')


# "----------------------------------------------- 2024-05-01 10:00:00.123"
_TRACE_SEP = re.compile(r'^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n',
                        re.M)


def parse_trace(text):
    """sipp -trace_msg file -> [SipMsg], each with .time (Unix seconds,
    float) of its trace entry; other trace blocks are skipped."""
    msgs = []
    parts = _TRACE_SEP.split(text)
    for stamp, block in zip(parts[1::2], parts[2::2]):
        first, _, rest = block.partition('\n')
        m = _TRACE_HEAD.match(first)
        if m:
            msg = SipMsg(rest.lstrip('\r\n'), m.group(2), m.group(1))
            msg.time = datetime.datetime.strptime(
                stamp, '%Y-%m-%d %H:%M:%S.%f').timestamp()
            msgs.append(msg)
    return msgs


def headers_containing(msgs, needles):
    """[(start line, header name, value)] of every header of every message
    whose value contains one of the needle strings."""
    return [(m.start_line, n, v) for m in msgs for n, v in m.headers
            if any(x in v for x in needles)]


class UdpPeer:
    """A raw UDP socket on ip:<free port>, for hand-made SIP messages."""

    def __init__(self, ip=CALLER_IP):
        self.ip = ip
        self.port = free_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, self.port))

    def close(self):
        self.sock.close()

    def send(self, data, dst):
        """data: str or bytes; dst: "IP:PORT"."""
        host, _, port = dst.rpartition(':')
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendto(data, (host, int(port)))

    def recv(self, timeout=1.0, until_final=True):
        """Messages received within `timeout`; stops early after a final
        response when until_final is true."""
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return msgs
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                return msgs
            msg = SipMsg(data.decode('latin-1'), 'received', 'UDP')
            msgs.append(msg)
            if until_final and msg.status and msg.status >= 200:
                return msgs

    def request(self, method, ruri, call_id=None, cseq=1,
                max_forwards=70, headers=(), body=''):
        """A well-formed request from this peer, as a str; `headers` are
        extra "Name: value" lines."""
        call_id = call_id or '%x@%s' % (random.getrandbits(48), self.ip)
        tag = '%x' % random.getrandbits(32)
        branch = 'z9hG4bK%x' % random.getrandbits(48)
        lines = ['%s %s SIP/2.0' % (method, ruri),
                 'Via: SIP/2.0/UDP %s:%d;branch=%s;rport' % (
                     self.ip, self.port, branch),
                 'Max-Forwards: %d' % max_forwards,
                 'From: <sip:alice@example.com>;tag=%s' % tag,
                 'To: <sip:bob@example.com>',
                 'Call-ID: %s' % call_id,
                 'CSeq: %d %s' % (cseq, method),
                 'Contact: <sip:alice@%s:%d>' % (self.ip, self.port)]
        lines += list(headers)
        lines.append('Content-Length: %d' % len(body.encode()))
        return '\r\n'.join(lines) + '\r\n\r\n' + body


# ------------------------------------------------------------------- sipp

SIPP_EXIT = {0: 'all calls successful', 1: 'at least one call failed',
             97: 'exit on internal command', 99: 'no call processed',
             255: 'fatal error', 254: 'fatal error binding a socket',
             -15: 'stopped by the harness', -9: 'killed by the harness'}


class SippResult:
    """What a sipp run left: exit status, call counters, message trace."""

    def __init__(self, sipp):
        self.name = sipp.name
        self.rc = sipp.returncode
        self.calls = sipp.calls
        self.stats = _last_stat_row(sipp.stat_path)
        self.successful = int(self.stats.get('SuccessfulCall(C)', 0))
        self.failed = int(self.stats.get('FailedCall(C)', 0))
        self.messages = _read_trace(sipp.trace_path)
        self.errors = _read(sipp.err_path)
        self.screen = _read(sipp.screen_path)

    @property
    def ok(self):
        """Exit 0 and every call of -m successful."""
        return (self.rc == 0 and self.failed == 0 and
                self.successful == self.calls)

    def why(self):
        """One paragraph for a failed assertion."""
        return '%s: exit %s (%s), %d successful, %d failed of %d\n%s' % (
            self.name, self.rc, SIPP_EXIT.get(self.rc, '?'),
            self.successful, self.failed, self.calls,
            self.errors[-1500:])

    def select(self, direction=None, method=None, status=None):
        """Messages by direction ('sent'/'received'); with a method and
        no status: requests of that method; with a status: responses of
        that code (to `method` if given, by CSeq)."""
        return [m for m in self.messages
                if (direction is None or m.direction == direction) and
                (method is None or m.method == method) and
                (m.status == status or method is None and status is None)]


def _read(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('latin-1')
    except FileNotFoundError:
        return ''


def _read_trace(path):
    return parse_trace(_read(path))


def _last_stat_row(path):
    rows = [r for r in _read(path).splitlines() if r.strip()]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0].split(';'), rows[-1].split(';')))


class Sipp(Proc):
    """sipp with a scenario of tests/sipp; a UAC if `remote` is given.

    ip/port: local SIP address (port: a free one); transport 'udp' or
    'tcp' (-t u1 / t1); calls (-m), rate (-r, calls/s), duration (-d, ms:
    length of the scenario's <pause/>); ruri: the INVITE's Request-URI
    (default sip:bob@<remote>); timeout: -timeout in seconds, reaching it
    is an error (-timeout_error); args: more sipp options.
    """

    def __init__(self, workdir, scenario, ip, remote=None, port=None,
                 transport='udp', calls=1, rate=10, duration=0, ruri=None,
                 timeout=30, args=(), name=None):
        self.name = name or os.path.splitext(os.path.basename(scenario))[0]
        self.ip = ip
        self.port = port or free_port()
        self.transport = transport
        self.calls = calls
        self.timeout = timeout
        self.is_uac = remote is not None
        self.target = '%s:%s:%d' % (transport, ip, self.port)
        base = os.path.join(workdir, '%s-%d' % (self.name, self.port))
        self.trace_path = base + '.msg'
        self.err_path = base + '.err'
        self.stat_path = base + '.csv'
        self.screen_path = base + '.screen'
        path = scenario if os.path.isabs(scenario) else \
            os.path.join(SIPP_DIR, scenario)
        argv = ['sipp', '-sf', path, '-i', ip, '-p', str(self.port),
                '-t', {'udp': 'u1', 'tcp': 't1'}[transport],
                '-m', str(calls), '-d', str(duration),
                '-mi', MEDIA_IP, '-mp', str(free_port(4)),
                '-cp', str(free_port()), '-nostdin',
                '-timeout', '%ds' % timeout, '-timeout_error',
                '-trace_msg', '-message_file', self.trace_path,
                '-trace_err', '-error_file', self.err_path,
                '-trace_stat', '-stf', self.stat_path, '-fd', '1',
                '-trace_screen', '-screen_file', self.screen_path]
        if remote:
            argv[3:3] = [remote]
            argv += ['-r', str(rate),
                     '-key', 'ruri', ruri or 'sip:bob@%s' % remote]
        super().__init__(self.name, argv + list(args), base + '.out')

    def start(self, timeout=5.0):
        """Start; a UAS is waited for until its SIP port is bound (a UAC
        may be done before it could be seen: its result tells)."""
        super().start()
        if self.is_uac:
            return self
        if not wait_until(lambda: port_bound(self.ip, self.port,
                                             self.transport) or
                          not self.alive(), timeout) or not self.alive():
            raise TestFailure('sipp %s did not start:\n%s' % (
                self.name, self.log_tail()))
        return self

    def result(self, timeout=None):
        """Wait for sipp to end (its -timeout plus a margin), kill it if
        it does not, and return its SippResult."""
        if self.wait(timeout or self.timeout + 10) is None:
            self.stop(timeout=2.0)
        return SippResult(self)


def run_pair(uac, uas, grace=5.0):
    """Start the UAS, then the UAC; wait for both: (uac, uas) results.
    The UAS gets `grace` seconds to finish once the UAC has ended."""
    uas.start()
    uac.start()
    caller = uac.result()
    return caller, uas.result(timeout=grace)


# ---------------------------------------------------------------- runner

class Ctx:
    """Per-test workspace: a temporary directory and the processes
    started in it, all stopped by close()."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix='rehome-test-%s-' % name)
        self.procs = []
        self.peers = []

    def path(self, filename):
        return os.path.join(self.dir, filename)

    def rehomed(self, start=True, **kw):
        """A Rehomed (see its arguments), started unless start=False."""
        rh = Rehomed(self.dir, **kw)
        self.procs.append(rh)
        return rh.start() if start else rh

    def redis(self, **kw):
        r = Redis(self.dir, **kw)
        self.procs.append(r)
        return r.start()

    def sipp(self, scenario, **kw):
        """A Sipp (see its arguments), not started yet: see run_pair."""
        s = Sipp(self.dir, scenario, **kw)
        self.procs.append(s)
        return s

    def udp(self, ip=CALLER_IP):
        """A UdpPeer on ip, closed at the end of the test."""
        peer = UdpPeer(ip)
        self.peers.append(peer)
        return peer

    def proxied(self, uac, uas, transport='udp', engine=None, caller=None,
                callee=None):
        """A call from a caller (scenario `uac`, on CALLER_IP) to a callee
        (`uas`, on CALLEE_IP) through a new rehomed whose upstream is the
        callee. Returns (rehomed, caller sipp, callee sipp): rehomed is
        running, the sipps are not started yet (see run_pair).
        engine / caller / callee: more keyword arguments for Rehomed /
        Sipp (e.g. caller={'calls': 100, 'transport': 'tcp'})."""
        callee_sipp = self.sipp(uas, ip=CALLEE_IP, **dict(
            {'transport': transport}, **(callee or {})))
        rh = self.rehomed(upstream=callee_sipp.target, **(engine or {}))
        caller_sipp = self.sipp(uac, ip=CALLER_IP, remote=rh.sip_addr,
                                **dict({'transport': transport},
                                       **(caller or {})))
        return rh, caller_sipp, callee_sipp

    def close(self):
        """Stop everything, newest first; returns the problems found."""
        for peer in self.peers:
            peer.close()
        problems = []
        for proc in reversed(self.procs):
            proc.stop()
            if isinstance(proc, Rehomed):
                problems += proc.problems()
        return problems

    def report(self):
        """Log tails of the rehomed processes, for a failure message."""
        out = ['  logs in %s' % self.dir]
        for proc in self.procs:
            if isinstance(proc, Rehomed) and proc.popen:
                out.append('  --- %s (%s) ---\n%s' % (
                    proc.name, proc.log_path, proc.log_tail()))
        return '\n'.join(out)


class Test:
    """Runs the registered test functions (each gets a fresh Ctx), prints
    "PASS name" / "FAIL name: why" and "N passed, M failed", and exits 1
    if any failed. Names given on the command line select tests;
    `name` (the test file) labels setup failures."""

    def __init__(self, name=None):
        self.name = os.path.basename(name or sys.argv[0])
        self.tests = []

    def test(self, fn):
        """Decorator: register fn(ctx) as a test."""
        self.tests.append(fn)
        return fn

    def run_one(self, fn):
        ctx = Ctx(fn.__name__)
        why = None
        try:
            fn(ctx)
        except AssertionError as e:
            why = str(e) or traceback.format_exc(limit=-1).strip()
        except Exception:
            why = traceback.format_exc()
        finally:
            problems = ctx.close()
        if problems and not why:
            why = '; '.join(problems)
        elif problems:
            why += '\n  also: ' + '; '.join(problems)
        if why:
            print('FAIL %s: %s\n%s' % (fn.__name__, why, ctx.report()),
                  flush=True)
        else:
            print('PASS %s' % fn.__name__, flush=True)
            if not os.environ.get('REHOME_KEEP'):
                shutil.rmtree(ctx.dir, ignore_errors=True)
        return why is None

    def main(self):
        signal.signal(signal.SIGTERM, _sigterm)
        if not os.access(REHOMED, os.X_OK):
            print('FAIL %s: no rehomed at %s (set REHOMED)' % (self.name,
                                                              REHOMED))
            sys.exit(1)
        chosen = sys.argv[1:]
        unknown = set(chosen) - {fn.__name__ for fn in self.tests}
        if unknown:
            print('FAIL %s: no test named %s' % (self.name,
                                                ', '.join(unknown)))
            sys.exit(1)
        results = [self.run_one(fn) for fn in self.tests
                   if not chosen or fn.__name__ in chosen]
        passed = sum(results)
        failed = len(results) - passed
        print('%d passed, %d failed' % (passed, failed), flush=True)
        sys.exit(1 if failed or not results else 0)
