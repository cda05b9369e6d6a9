"""test_rehome_baresip.py  Real clients: a baresip pair survives a
fail-over, over UDP, TCP and TLS.

alice (baresip) calls bob (baresip, auto-answer) through node 1; node 1
is killed with SIGKILL, node 2 re-homes the call (both baresips get a
re-INVITE with node 2's Contact and follow it). Then one side hangs up
(alice in one test, bob in the other): its BYE reaches node 2, which
relays it, so the other side sees the call closed by its peer and node 2
ends the dialog on the BYE's 200.

Over a connection-oriented transport node 2 cannot use node 1's
connections, which died with it: it opens its own to each endpoint's
target from the replicated dialog (its Contact, ;transport=tcp|tls), and
the endpoints then send their requests to node 2's Contact over new
connections of their own. For TLS a CA made here signs every
certificate, and the nodes verify the endpoints against it.

An endpoint node 2 cannot reach (here: gone with its listener; behind a
NAT it would be the same, reachable only over node 1's dead connection)
is reported as a failed leg at once (connection refused, no 32 s
transaction timeout), and the call stays up on the other leg.

baresip is driven through its ctrl_tcp module (harness/baresip.py),
audio through aubridge/nil, so no sound device is needed.
"""
import harness as h
from harness import nodes as lib
from harness import pki as pkilib
from harness.baresip import Baresip, call_up, hang_up

t = h.Test(__file__)


def call_on_node1(ctx, transport):
    """alice calls bob through node 1 of two; node 2 holds the replica:
    (alice, bob, node1, node2)."""
    pki, extra = None, []
    if transport == 'tls':
        pki = pkilib.Pki(ctx.dir)
        extra = ['tls_cert %s' % pki.cert('node'), 'tls_ca %s' % pki.ca]

    def ua(name, ip):
        return Baresip(ctx, name, ip, transport,
                       cert=pki and pki.cert(name, ip),
                       ca=pki and pki.ca).start()
    alice, bob = ua('alice', h.CALLER_IP), ua('bob', h.CALLEE_IP)
    node1, node2 = lib.cluster(
        ctx, 'sip:%s:%d;transport=%s' % (h.CALLEE_IP, bob.sip_port,
                                         transport),
        transports=(transport,), extra=extra)

    call_up(alice, bob, 'sip:bob@%s;transport=%s' % (node1.sip_addr,
                                                     transport))
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5), \
        node2.dialog_counts()
    return alice, bob, node1, node2


def failover(ctx, transport, hangup_by_caller):
    alice, bob, node1, node2 = call_on_node1(ctx, transport)
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5)
    rc, out, err = lib.rehomectl(node2, 'rehome', 'service')
    assert rc == 0 and '1 moved, 0 failed' in out, (rc, out, err)

    hanger, other = (alice, bob) if hangup_by_caller else (bob, alice)
    hang_up(hanger, other)
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5), \
        node2.dialog_counts()
    assert lib.metric(node2, 'rehome_sip_requests_received_total'
                      '{method="BYE"}') == 1, 'node2 got no BYE'


@t.test
def unreachable_caller_fails_its_leg(ctx):
    alice, bob, node1, node2 = call_on_node1(ctx, 'tcp')
    alice.popen.kill()
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5)
    job = lib.post_job(node2, '/v1/rehome', {'tag': 'service'}, timeout=10)
    assert (job['moved'], job['failed']) == (0, 1), job
    assert list(job['reasons']) == ['caller:unreachable'], job
    assert node2.dialog_counts()['confirmed'] == 1, node2.dialog_counts()
    assert not bob.wait_event('CALL_CLOSED', 1), bob.kinds()


@t.test
def caller_hangs_up(ctx):
    failover(ctx, 'udp', True)


@t.test
def callee_hangs_up(ctx):
    failover(ctx, 'udp', False)


@t.test
def tcp_caller_hangs_up(ctx):
    failover(ctx, 'tcp', True)


@t.test
def tcp_callee_hangs_up(ctx):
    failover(ctx, 'tcp', False)


@t.test
def tls_caller_hangs_up(ctx):
    failover(ctx, 'tls', True)


@t.test
def tls_callee_hangs_up(ctx):
    failover(ctx, 'tls', False)


t.main()
