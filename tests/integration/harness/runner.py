"""runner.py  The test runner: a Test holds test functions, each run with
a fresh Ctx that owns a temporary directory and every process started in
it, and stops them all when the test ends, pass or fail."""

import os
import shutil
import signal
import sys
import tempfile
import traceback

from .common import CALLEE_IP, CALLER_IP, REHOMED, ports_given, release_ports
from .procs import Rehomed
from .redis_server import Redis, cluster_args, cluster_create
from .sip import UdpPeer
from .sipp import Sipp
from .tcpproxy import TcpProxy


def _sigterm(signum, frame):
    raise SystemExit('killed by signal %d' % signum)


class Ctx:
    """Per-test workspace: a temporary directory and the processes
    started in it, all stopped by close()."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix='rehome-test-%s-' % name)
        self.procs = []
        self.peers = []
        self.ports_before = ports_given()

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

    def redis_cluster(self, n=3):
        """n started redis-servers made one Redis Cluster of n masters
        (no replicas), every slot assigned; the list of them."""
        masters = []
        for i in range(1, n + 1):
            name = 'redis-c%d' % i
            r = Redis(self.dir, name=name, args=cluster_args(self.dir, name))
            self.procs.append(r)
            masters.append(r.start())
        return cluster_create(self.dir, masters)

    def tcpproxy(self, target, **kw):
        """A started TcpProxy to target ("HOST:PORT") that the test can
        cut (harness/tcpproxy.py)."""
        p = TcpProxy(self.dir, target, **kw)
        self.procs.append(p)
        return p.start()

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
        release_ports(self.ports_before)
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
