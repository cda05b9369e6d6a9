"""harness  Helpers shared by every rehome integration test.

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

The package is split by concern: common (paths, addresses, ports,
waiting), procs (child processes, rehomed and its generated config), ctl
(control API client), redis_server, sip (SIP messages, a raw UDP peer),
sipp, runner (Test, Ctx), nodes (multi-node helpers), ua (a raw-socket
endpoint) and rawua (endpoints that do nothing by themselves, with
kernel arrival times), the last three imported on their own (`from harness
import nodes`). Everything else is re-exported here.
tests/integration must be on the module path (meson sets PYTHONPATH).

Addresses: the caller is on 127.0.0.10, the callee on 127.0.0.20, rehomed
on 127.0.0.1 and SDP media on 127.0.0.99, so that any leak of one side's
address toward the other can be seen. Ports come from REHOME_TEST_PORTS
("lo-hi", default 26000-26999): give each engineer or CI job its own range.
Set REHOME_KEEP=1 to keep the temporary directories of passing tests too.

Timing: every wait (wait_until, a UA's expected message, sipp's -timeout,
a control request) is scaled by SLOW, 3 in a sanitizer build (meson sets
REHOME_SANITIZE) and 1 otherwise, or REHOME_TEST_SLOW for a slow machine:
wait for the condition itself, never sleep and then assert, and never
wait for an event that can be seen only for a moment (a node up after a
single heartbeat): make it last until it has been seen.
"""

from .common import (CALLEE_IP, CALLER_IP, ENGINE_IP, MEDIA_IP, REHOMECTL,
                     REHOMED, SIPP_DIR, SLOW, SRC, TestFailure, free_port,
                     port_bound, read_text, slow, wait_until)
from .ctl import CTL_TOKEN, Ctl
from .procs import SANITIZER_MARKS, Proc, Rehomed
from .redis_server import Redis
from .runner import Ctx, Test
from .sip import COMPACT, SipMsg, UdpPeer, headers_containing, parse_trace
from .sipp import SIPP_EXIT, Sipp, SippResult, run_pair

__all__ = [
    'CALLEE_IP', 'CALLER_IP', 'COMPACT', 'CTL_TOKEN', 'Ctl', 'Ctx',
    'ENGINE_IP', 'MEDIA_IP', 'Proc', 'REHOMECTL', 'REHOMED', 'Redis',
    'Rehomed', 'SANITIZER_MARKS', 'SIPP_DIR', 'SIPP_EXIT', 'SLOW', 'SRC',
    'SipMsg', 'Sipp', 'SippResult', 'Test', 'TestFailure', 'UdpPeer',
    'free_port', 'headers_containing', 'parse_trace', 'port_bound',
    'read_text', 'run_pair', 'slow', 'wait_until',
]
