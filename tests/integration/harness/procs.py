"""procs.py  Child processes stopped by their PID, and rehomed itself.

Every process a test starts is a Proc: its output goes to a log file in
the test's directory, stop() ends it by its own PID (SIGTERM, then
SIGKILL), and an atexit hook stops whatever is still running when the
test program exits. Rehomed writes its config from keyword arguments with
free ports, and after the test tells what went wrong with it: an early
death, an exit status other than 0 on SIGTERM, a sanitizer report.
"""

import atexit
import os
import re
import signal
import subprocess

from .common import (ENGINE_IP, REHOMED, TestFailure, free_port, slow,
                     wait_until)
from .ctl import CTL_TOKEN, Ctl

# Lines of a rehomed log that mean a memory or undefined-behaviour bug
SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
                   'runtime error:', 'SUMMARY: UndefinedBehaviorSanitizer')

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
        """SIGTERM, wait `timeout` (times SLOW: an ASan rehomed checks for
        leaks as it exits), then SIGKILL. Returns the exit status
        (negative: killed by that signal); None if never started."""
        if self.popen is None:
            return None
        if self.popen.poll() is not None:
            self.died_early = self.returncode is None
        else:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(slow(timeout))
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


class Rehomed(Proc):
    """rehomed with a generated config; every port it needs is free.

    listens: list of "PROTO:IP:PORT tag=NAME" (default udp+tcp on
    ENGINE_IP:<free port>, tag "public"); upstream: "PROTO:IP:PORT";
    redis: "HOST:PORT"; shtags: {name: "active"|"backup"}; extra: more
    config lines ("key value") or a dict, appended as given; binary: the
    rehomed to run (default REHOMED); workers: `workers N`, whose worker K
    has its control server at ctl port + K - 1 (worker_ctl()).
    """

    def __init__(self, workdir, name='rehomed', node_id='node1',
                 listens=None, upstream=None, shtags=None,
                 default_shtag='service', redis=None, cluster=None,
                 repl_secret=None, policy=None, ctl_token=CTL_TOKEN,
                 log_level='debug', extra=None, binary=REHOMED,
                 workers=1):
        if listens is None:
            self.sip_addr = '%s:%d' % (ENGINE_IP, free_port())
            listens = ['%s:%s tag=public' % (tp, self.sip_addr)
                       for tp in ('udp', 'tcp')]
        else:
            self.sip_addr = listens[0].split()[0].partition(':')[2]
        self.sip_port = int(self.sip_addr.rpartition(':')[2])
        self.workers = workers
        self.node_id = node_id
        self.ctl_addr = '%s:%d' % (ENGINE_IP, free_port(workers))
        self.token = ctl_token
        if shtags is None:
            shtags = {default_shtag: 'active'}
        lines = ['node_id %s' % node_id]
        lines += ['listen %s' % ln for ln in listens]
        lines += ['shtag %s %s' % kv for kv in shtags.items()]
        lines += ['default_shtag %s' % default_shtag,
                  'ctl_listen %s' % self.ctl_addr,
                  'log_level %s' % log_level]
        if workers > 1:
            lines.append('workers %d' % workers)
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
        super().__init__(name, [binary, '-c', self.conf_path],
                         os.path.join(workdir, name + '.log'), env=env)
        self.ctl = Ctl(self.ctl_addr, ctl_token)

    def start(self, timeout=10.0):
        """Start and wait for the "running" line of the log."""
        super().start()
        ready = wait_until(lambda: not self.alive() or
                           len(re.findall(r"node '.*' running", self.log()))
                           >= self.workers, timeout)
        if not self.alive():
            raise TestFailure('%s exited at start (status %s):\n%s' % (
                self.name, self.popen.returncode, self.log_tail()))
        if not ready:
            raise TestFailure('%s not running after %.0fs:\n%s' % (
                self.name, timeout, self.log_tail()))
        return self

    def worker_ctl(self, k):
        """The Ctl of worker k (from 1) of `workers N`."""
        ip, _, port = self.ctl_addr.rpartition(':')
        return Ctl('%s:%d' % (ip, int(port) + k - 1), self.token)

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
