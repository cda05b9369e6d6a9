"""sipp.py  sipp runs: a scenario of tests/sipp as a child process, and
what it left (exit status, call counters, message trace)."""

import os

from .common import (MEDIA_IP, SIPP_DIR, TestFailure, free_port,
                     port_bound, read_text, slow, wait_until)
from .procs import Proc
from .sip import parse_trace

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
        self.stats = sipp.stats()
        self.successful = int(self.stats.get('SuccessfulCall(C)', 0))
        self.failed = int(self.stats.get('FailedCall(C)', 0))
        self.messages = parse_trace(read_text(sipp.trace_path))
        self.errors = read_text(sipp.err_path)
        self.screen = read_text(sipp.screen_path)

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
        that code (to `method` if given, by CSeq). Each once: a
        retransmission (the same start line, Call-ID, CSeq and top Via
        again, its answer having come after T1, as on a loaded machine)
        is no new message."""
        seen = set()
        out = []
        for m in self.messages:
            key = (m.direction, m.start_line, m.call_id, m.cseq,
                   m.header('Via'))
            if key not in seen and \
                    (direction is None or m.direction == direction) and \
                    (method is None or m.method == method) and \
                    (m.status == status or method is None and
                     status is None):
                out.append(m)
            seen.add(key)
        return out


class Sipp(Proc):
    """sipp with a scenario of tests/sipp; a UAC if `remote` is given.

    ip/port: local SIP address (port: a free one); transport 'udp' or
    'tcp' (-t u1 / t1); calls (-m), rate (-r, calls/s), duration (-d, ms:
    length of the scenario's <pause/>); ruri: the INVITE's Request-URI
    (default sip:bob@<remote>); timeout: -timeout in seconds (times SLOW),
    reaching it is an error (-timeout_error); trace: keep the message
    trace (off for thousands of calls, where writing it would be what is
    measured); args: more sipp options.
    """

    def __init__(self, workdir, scenario, ip, remote=None, port=None,
                 transport='udp', calls=1, rate=10, duration=0, ruri=None,
                 timeout=30, trace=True, args=(), name=None):
        self.name = name or os.path.splitext(os.path.basename(scenario))[0]
        self.ip = ip
        self.port = port or free_port()
        self.transport = transport
        self.calls = calls
        self.timeout = slow(timeout)
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
                '-timeout', '%ds' % self.timeout, '-timeout_error',
                '-trace_err', '-error_file', self.err_path,
                '-trace_stat', '-stf', self.stat_path, '-fd', '1',
                '-trace_screen', '-screen_file', self.screen_path]
        if trace:
            argv += ['-trace_msg', '-message_file', self.trace_path]
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

    def stats(self):
        """The latest row of sipp's statistics file, {column: value};
        sipp writes one every second (-fd 1) while it runs."""
        rows = [r for r in read_text(self.stat_path).splitlines()
                if r.strip()]
        if len(rows) < 2:
            return {}
        return dict(zip(rows[0].split(';'), rows[-1].split(';')))

    def result(self, timeout=None):
        """Wait for sipp to end (`timeout` times SLOW, default its
        -timeout plus a margin), kill it if it does not, and return its
        SippResult."""
        if self.wait(slow(timeout) if timeout else self.timeout + 10) \
                is None:
            self.stop(timeout=2.0)
        return SippResult(self)


def run_pair(uac, uas, grace=5.0):
    """Start the UAS, then the UAC; wait for both: (uac, uas) results.
    The UAS gets `grace` seconds to finish once the UAC has ended."""
    uas.start()
    uac.start()
    caller = uac.result()
    return caller, uas.result(timeout=grace)
