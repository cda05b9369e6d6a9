"""test_ws.py  A WebSocket client (RFC 7118) calls a UDP callee through
rehomed.

The caller is harness.ws's WsUa, which speaks as a browser would: its
Contact's host is made up (.invalid), so rehomed can only reach it over
the connection it came on. The call is set up, rehomed's Contact toward
the caller names transport=ws (or wss), and a BYE from either side
crosses: the callee's BYE must reach the caller over its connection,
also after the 32 s at which libre 1.1.0 would close it (wsconn.c).

Re-homing cannot move a WebSocket leg: the client connected to node 1,
and no node can connect to it (its Contact names no reachable host). The
leg is reported failed, the other leg moves; the client must come back
on its own (reconnect and call again).
"""
import time

import harness as h
from harness import nodes as lib
from harness import pki as pkilib
from harness.ua import Ua, call
from harness.ws import WsUa

t = h.Test(__file__)


def ws_call(ctx, scheme='ws'):
    callee = Ua(ctx, h.CALLEE_IP, 'bob')
    extra, ca = [], None
    if scheme == 'wss':
        pki = pkilib.Pki(ctx.dir)
        extra, ca = ['tls_cert %s' % pki.cert('node')], pki.ca
    ws, udp = h.free_port(), h.free_port()
    rh = ctx.rehomed(listens=['%s:%s:%d tag=public' % (scheme, h.ENGINE_IP,
                                                       ws),
                              'udp:%s:%d tag=public' % (h.ENGINE_IP, udp)],
                     upstream='udp:%s:%d' % (h.CALLEE_IP, callee.peer.port),
                     extra=extra)
    caller = WsUa(ctx, rh.sip_addr, 'alice', ca)
    call(rh.sip_addr, caller, callee)
    assert caller.target.endswith(';transport=%s' % scheme), caller.target
    assert h.wait_until(lambda: rh.dialog_counts()['confirmed'] == 1, 3), \
        rh.dialog_counts()
    return rh, caller, callee


def bye(rh, hanger, other):
    req = hanger.request('BYE')
    hanger.send(req)
    got = other.wait(lambda m: m.is_request and m.method == 'BYE')
    assert got, '%s never got the BYE' % other.name
    final = hanger.final(req)
    assert final and final.status == 200, final
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        rh.dialog_counts()


@t.test
def callee_hangs_up(ctx):
    rh, caller, callee = ws_call(ctx)
    bye(rh, callee, caller)


@t.test
def caller_hangs_up(ctx):
    rh, caller, callee = ws_call(ctx)
    bye(rh, caller, callee)


@t.test
def wss_callee_hangs_up(ctx):
    rh, caller, callee = ws_call(ctx, 'wss')
    bye(rh, callee, caller)



@t.test
def call_outlives_32s(ctx):
    rh, caller, callee = ws_call(ctx)
    time.sleep(34)
    bye(rh, callee, caller)


@t.test
def rehome_fails_the_ws_leg(ctx):
    callee = Ua(ctx, h.CALLEE_IP, 'bob')
    node1, node2 = lib.cluster(ctx, 'udp:%s:%d' % (h.CALLEE_IP,
                                                   callee.peer.port),
                               transports=('ws', 'udp'))
    caller = WsUa(ctx, node1.sip_addr, 'alice')
    call(node1.sip_addr, caller, callee)
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5), \
        node2.dialog_counts()
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5)
    status, job = node2.ctl.post('/v1/rehome', {'tag': 'service'})
    assert status == 202, (status, job)
    assert callee.wait(lambda m: m.is_request and m.method == 'INVITE'), \
        'the callee got no re-INVITE from node 2'
    callee.wait(lambda m: m.is_request and m.method == 'ACK')
    job = lib.wait_job(node2, job, 10)
    assert (job['moved'], job['failed']) == (0, 1), job
    assert list(job['reasons']) == ['caller:unreachable'], job


t.main()
