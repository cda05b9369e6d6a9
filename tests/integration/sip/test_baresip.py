"""test_baresip.py  Real calls between two baresip clients through rehomed.

sipp follows scripts; baresip (Debian's 1.0.0) is a real user agent with
its own dialog and offer/answer logic, so a call that works here works
with what people deploy. Each client runs from its own config directory
(docs/baresip.md describes the same set-up by hand): g711 for PCMU,
aubridge as a null audio device, menu for the call commands, ctrl_tcp to
drive it: netstring-framed JSON commands ("dial", "hangup", "hold",
"resume") in, responses and events (CALL_ESTABLISHED, CALL_CLOSED, ...)
out.

The caller uses rehomed as its outbound proxy and dials the callee's own
address, so rehomed routes on the Request-URI. Every test also checks
that rehomed holds the call as one confirmed dialog while it is up (the
call did cross rehomed) and keeps no dialog once it has ended.

Addresses: caller on h.CALLER_IP, callee on h.CALLEE_IP, rehomed on
h.ENGINE_IP; every port from the harness (REHOME_TEST_PORTS).
"""
import harness as h
from harness.baresip import Baresip

t = h.Test(__file__)


def baresip(ctx, name, ip, outbound=None):
    return Baresip(ctx, name, ip, outbound=outbound).start()


def seen(ua, kind):
    event = ua.wait_event(kind)
    assert event, '%s: no %s; events %s' % (ua.name, kind, ua.kinds())
    return event


def call_up(ctx):
    """rehomed, the callee, the caller, and an established call between
    them: (rehomed, caller, callee)."""
    rh = ctx.rehomed()
    bob = baresip(ctx, 'bob', h.CALLEE_IP)
    alice = baresip(ctx, 'alice', h.CALLER_IP, outbound=rh.sip_addr)
    alice.command('dial', bob.aor)
    seen(alice, 'CALL_ESTABLISHED')
    incoming = seen(bob, 'CALL_ESTABLISHED')
    assert incoming.get('direction') == 'incoming', incoming
    counts = rh.dialog_counts()
    assert counts['confirmed'] == 1, \
        'the call is up but rehomed holds %s' % counts
    return rh, alice, bob


def hung_up(rh, alice, bob):
    """Both clients see the call closed, and rehomed keeps no dialog."""
    seen(alice, 'CALL_CLOSED')
    seen(bob, 'CALL_CLOSED')
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left after the call: %s' % rh.dialog_counts()


@t.test
def caller_hangs_up(ctx):
    rh, alice, bob = call_up(ctx)
    alice.command('hangup')
    hung_up(rh, alice, bob)


@t.test
def callee_hangs_up(ctx):
    rh, alice, bob = call_up(ctx)
    bob.command('hangup')
    hung_up(rh, alice, bob)


@t.test
def hold_resume_then_hang_up(ctx):
    """hold and resume are re-INVITEs with a new offer: the callee must
    get each one (a new remote SDP offer) and the call must stay up."""
    rh, alice, bob = call_up(ctx)
    offers = bob.event_count('CALL_REMOTE_SDP')
    alice.command('hold')
    assert bob.wait_event('CALL_REMOTE_SDP', count=offers + 1), bob.kinds()
    alice.command('resume')
    assert bob.wait_event('CALL_REMOTE_SDP', count=offers + 2), bob.kinds()
    assert rh.dialog_counts()['confirmed'] == 1, rh.dialog_counts()
    bob.command('hangup')
    hung_up(rh, alice, bob)


t.main()
