"""common.py  What every part of the harness shares: where the binaries
and scenarios are, the loopback addresses, free ports and waiting."""

import fcntl
import os
import random
import socket
import tempfile
import time

SRC = os.environ.get('REHOME_SRC') or os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..', '..'))
REHOMED = os.environ.get('REHOMED') or os.path.join(SRC, 'build', 'rehomed')
REHOMECTL = os.environ.get('REHOMECTL') or os.path.join(SRC, 'build',
                                                        'rehomectl')
SIPP_DIR = os.path.join(SRC, 'tests', 'sipp')

ENGINE_IP = '127.0.0.1'
CALLER_IP = '127.0.0.10'
CALLEE_IP = '127.0.0.20'
MEDIA_IP = '127.0.0.99'


def _slowness():
    """How much slower than a plain build the node under test runs:
    REHOME_TEST_SLOW if set (a slow CI machine), else 3 for a sanitizer
    build (ASan costs 2-5x), told by meson (REHOME_SANITIZE, the build's
    b_sanitize) or, run by hand, by the rehomed's build-asan path."""
    if os.environ.get('REHOME_TEST_SLOW'):
        return float(os.environ['REHOME_TEST_SLOW'])
    sanitize = os.environ.get('REHOME_SANITIZE')
    if sanitize is None:
        sanitize = 'address' if 'build-asan' in REHOMED else 'none'
    return 1.0 if sanitize in ('', 'none') else 3.0


SLOW = _slowness()


def slow(seconds):
    """`seconds` of a plain build's margin, scaled to this build (SLOW):
    for a bound that is not the behaviour under test but a margin for a
    loaded machine."""
    return seconds * SLOW


class TestFailure(AssertionError):
    """A harness-detected failure (process crashed, did not start, ...)."""


# ---------------------------------------------------------------- ports

def _port_range():
    # the default is below the kernel's ephemeral ports (32768-60999),
    # which an outgoing connection may take between our check and a bind
    lo, _, hi = os.environ.get('REHOME_TEST_PORTS', '26000-26999') \
        .partition('-')
    return int(lo), int(hi)


_ports_given = set()
# A port handed out is also claimed with a lock file that the process
# holds until it releases the port or exits, so that the test programs
# meson runs side by side in one range never hand out the same port
# (each checks that a port is free, but a process gets its port only
# when it starts, later).
_PORT_LOCKS = os.path.join(tempfile.gettempdir(), 'rehome-test-ports')
_port_locks = {}


def _claim(block):
    """Lock every port of block for this process; False (nothing held)
    if another process holds one."""
    os.makedirs(_PORT_LOCKS, exist_ok=True)
    for port in block:
        fd = os.open(os.path.join(_PORT_LOCKS, str(port)),
                     os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            _unclaim(p for p in block if p < port)
            return False
        _port_locks[port] = fd
    return True


def _unclaim(ports):
    for port in list(ports):
        fd = _port_locks.pop(port, None)
        if fd is not None:
            os.close(fd)


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
        if _ports_given.isdisjoint(block) and all(map(_bindable, block)) \
                and _claim(block):
            _ports_given.update(block)
            return p
    raise TestFailure('no free port in %d-%d' % (lo, hi))


def ports_given():
    """The ports free_port() has handed out so far (a copy)."""
    return set(_ports_given)


def release_ports(keep):
    """Hand out again (once free) every port given since ports_given()
    returned `keep`: a test's processes are stopped when it ends, and a
    program of many tests would otherwise fill its range until no block
    of consecutive ports (an rtpengine's) is left in it."""
    _unclaim(_ports_given - set(keep))
    _ports_given.intersection_update(keep)


def port_bound(ip, port, transport='udp'):
    """True if some process has bound ip:port for `transport`."""
    kind = socket.SOCK_DGRAM if transport == 'udp' else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET6 if ':' in ip else socket.AF_INET, kind)
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
    last (false) value once `timeout` seconds, times SLOW, have passed:
    waiting longer for a condition costs time only when it fails, while
    a bound a plain build meets with little room would fail the ASan
    build or a loaded machine. A bound that is itself the behaviour
    under test is measured, not waited for."""
    deadline = time.monotonic() + slow(timeout)
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def read_text(path):
    """A file written by a child process, '' if it has not been yet."""
    try:
        with open(path, 'rb') as f:
            return f.read().decode('latin-1')
    except FileNotFoundError:
        return ''
