"""test_rehome_errors.py  Endpoints that do not simply say 200.

Each test re-homes one call (mode challenge: caller first, then callee)
whose callee misbehaves, and checks the outcome the job reports and what
happens to the call:
  glare      the callee sends its own re-INVITE at the same moment: both
             sides answer 491, the engine tries again after the RFC 3261
             back-off (2.1-4 s: it owns the callee leg's Call-ID): moved;
  488        after a fail-over the callee refuses the re-INVITE: failed
             ("callee:488"), never moved; the call stays up on the caller
             leg, and the caller's BYE still ends it at both ends;
  481        the callee lost the call: failed ("callee:481"), and the
             engine ends the call on both legs with BYE;
  bye        the callee hangs up instead of answering: the BYE is
             relayed, the re-home is dropped ("ended", not failed);
  timeout    the callee never answers: failed ("callee:timeout") after
             the transaction timeout (32 s), the call stays up.
"""
import harness as h
from harness import nodes as lib

t = h.Test(__file__)

REHOME = {'tag': 'service', 'all': True}


def one_call(ctx, uac, uas, duration=6000, timeout=30):
    rh, caller, callee = ctx.proxied(
        uac, uas,
        caller={'duration': duration if uac == 'uac.xml' else 0,
                'timeout': timeout},
        callee={'timeout': timeout})
    callee.start()
    caller.start()
    lib.wait_confirmed(rh, 1)
    return rh, caller, callee


def outcome(job):
    return (job['moved'], job['failed'], job['ended'], job['reasons'])


@t.test
def glare(ctx):
    rh, uac, uas = one_call(ctx, 'uac.xml', 'rehome_uas_glare.xml',
                            duration=9000)
    job = lib.post_job(rh, '/v1/rehome', REHOME)
    assert outcome(job) == (1, 0, 0, {}), job

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    tries = [(ts, m) for ts, m in lib.received(uas, 'INVITE')
             if 'tag=' in (m.header('To') or '')]
    assert len(tries) == 2, tries
    assert tries[1][1].cseq[0] > tries[0][1].cseq[0]
    wait = tries[1][0] - tries[0][0]
    assert 2.1 <= wait <= 4.0 + h.slow(0.5), 'back-off %.2f s' % wait
    assert callee.select('received', 'INVITE', 491), 'no 491 to the callee'


@t.test
def refused_488_after_failover(ctx):
    uas = ctx.sipp('rehome_uas_488.xml', ip=h.CALLEE_IP)
    node1, node2 = lib.cluster(ctx, uas.target)
    uac = ctx.sipp('uac.xml', ip=h.CALLER_IP, remote=node1.sip_addr,
                   duration=int(h.slow(7000)))
    uas.start()
    uac.start()
    lib.wait_confirmed(node1, 1)
    assert h.wait_until(lambda: lib.replicas(node2) == 1, 5)
    lib.kill(ctx, node1)
    assert h.wait_until(lambda: lib.node_state(node2, 'node1') == 'down',
                        5)

    job = lib.post_job(node2, '/v1/rehome', {'tag': 'service'})
    assert outcome(job) == (0, 1, 0, {'callee:488': 1}), job
    st, dialogs = node2.ctl.get('/v1/jobs/%d/dialogs' % job['job'])
    assert st == 200 and dialogs['dialogs'][0]['outcome'] == 'failed', \
        dialogs

    # kept on the leg that moved: the caller's BYE reaches the callee
    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert [m for m in lib.reinvites(uac)
            if node2.sip_addr in (lib.contact_uri(m) or '')]
    bye = caller.select('sent', 'BYE')
    assert bye and node2.sip_addr in bye[0].start_line, bye
    assert h.wait_until(lambda: node2.active_dialogs() == 0, 5)


@t.test
def lost_481_ends_call(ctx):
    rh, uac, uas = one_call(ctx, 'uac_wait_bye.xml', 'rehome_uas_481.xml')
    job = lib.post_job(rh, '/v1/rehome', REHOME)
    assert outcome(job) == (0, 1, 0, {'callee:481': 1}), job

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert caller.select('received', 'BYE'), 'caller got no BYE'
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5)


@t.test
def bye_while_pending(ctx):
    rh, uac, uas = one_call(ctx, 'uac_wait_bye.xml', 'rehome_uas_bye.xml')
    job = lib.post_job(rh, '/v1/rehome', REHOME)
    assert outcome(job) == (0, 0, 1, {'bye': 1}), job
    assert job['total'] == 0, job

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5)


@t.test
def timeout(ctx):
    # the call outlasts the 32 s of the re-INVITE's transaction
    rh, uac, uas = one_call(ctx, 'uac.xml', 'rehome_uas_silent.xml',
                            duration=32000 + int(h.slow(4000)), timeout=60)
    job = lib.post_job(rh, '/v1/rehome', REHOME, timeout=45)
    assert outcome(job) == (0, 1, 0, {'callee:timeout': 1}), job
    assert job['elapsed_ms'] >= 31000, job

    caller, callee = uac.result(), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()


t.main()
