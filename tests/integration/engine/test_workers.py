"""test_workers.py  `workers 2`: two processes share the listener, each
call stays with the worker that took it, and a dead worker comes back.

- Calls from many sources (one UDP socket each, so the kernel's
  SO_REUSEPORT hash spreads them) are all set up and hung up by the
  callee: the callee's in-dialog BYE comes from another address than the
  caller's INVITE, and it reaches the worker holding the dialog because
  each worker's Contact and Via name its own socket. Both workers served
  calls (their metrics, one control port each) and together exactly all.
- A worker killed with SIGKILL is restarted by the supervisor, answers on
  its control port again and serves calls; the supervisor stops cleanly.
"""
import os
import signal
import types

import harness as h
from harness import metrics as hm
from harness.ua import Ua, call, hostport_of

t = h.Test(__file__)

SOURCES = 16       # P(all on one worker) = 2 * 2^-16


def worker_metrics(rh, k):
    return hm.scrape(types.SimpleNamespace(ctl=rh.worker_ctl(k)))


def worker_pids(rh):
    path = '/proc/%d/task/%d/children' % (rh.pid, rh.pid)
    with open(path) as f:
        return [int(p) for p in f.read().split()]


def ctl_up(rh, k):
    try:
        return rh.worker_ctl(k).get('/v1/status')[0] == 200
    except OSError:
        return False


def callee_hangs_up(caller, callee):
    """The callee's BYE reaches the caller, and its 200 comes back."""
    req = callee.request('BYE')
    callee.send(req)
    bye = caller.wait(lambda m: m.is_request and m.method == 'BYE')
    assert bye, 'the callee BYE did not reach the caller'
    caller.answer(bye)
    ok = callee.final(req)
    assert ok and ok.status == 200, 'BYE: %s' % (ok and ok.status)


@t.test
def calls_spread_and_stay(ctx):
    rh = ctx.rehomed(workers=2)
    sip_port = rh.sip_port
    contacts = set()
    for i in range(SOURCES):
        caller = Ua(ctx, h.CALLER_IP, 'alice%d' % i)
        callee = Ua(ctx, h.CALLEE_IP, 'bob%d' % i)
        call(rh.sip_addr, caller, callee, direct=True)
        own = hostport_of(caller.target)
        assert own == hostport_of(callee.target), \
            'caller and callee legs on different sockets: %s %s' % (
                caller.target, callee.target)
        assert int(own.rpartition(':')[2]) != sip_port, \
            'Contact names the shared port: %s' % caller.target
        contacts.add(own)
        callee_hangs_up(caller, callee)

    served = [worker_metrics(rh, k).value('rehome_calls_total')
              for k in (1, 2)]
    assert sum(served) == SOURCES, 'calls per worker: %s' % served
    assert min(served) > 0, 'one worker took every call: %s' % served
    assert len(contacts) == 2, 'own sockets seen: %s' % contacts
    assert rh.wait_log(r'^\S+ info  w2 main +rehomed .* node '
                       r"'node1-w2' running"), 'no log line names w2'


@t.test
def dead_worker_restarted(ctx):
    rh = ctx.rehomed(workers=2)
    pids = worker_pids(rh)
    assert len(pids) == 2, 'workers: %s' % pids

    os.kill(pids[0], signal.SIGKILL)
    assert rh.wait_log(r'worker 1 \(pid %d\) killed by signal 9' % pids[0]), \
        'the supervisor did not see worker 1 die'
    assert h.wait_until(lambda: len(set(worker_pids(rh)) - {pids[0]}) == 2,
                        5), 'worker 1 not restarted: %s' % worker_pids(rh)
    assert h.wait_until(lambda: ctl_up(rh, 1), 5), \
        'the restarted worker 1 does not answer on its control port'

    for i in range(SOURCES):
        caller = Ua(ctx, h.CALLER_IP, 'carol%d' % i)
        callee = Ua(ctx, h.CALLEE_IP, 'dave%d' % i)
        call(rh.sip_addr, caller, callee, direct=True)
        callee_hangs_up(caller, callee)
    served = [worker_metrics(rh, k).value('rehome_calls_total')
              for k in (1, 2)]
    assert sum(served) == SOURCES and min(served) > 0, \
        'calls per worker after the restart: %s' % served


t.main()
