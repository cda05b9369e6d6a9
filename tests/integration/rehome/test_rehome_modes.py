"""test_rehome_modes.py  Every re-home mode x body, on one node.

One call (sipp rehome_uac.xml -> rehomed -> sipp rehome_uas.xml) is
re-homed by the node that carries it ({"all": true}: the dialog is
already homed there, so only a forced re-home touches it), then the
caller hangs up. What each endpoint received is checked against the
mode and body rules of docs/rehoming.md:
  - which legs got the refresh, in which order, with which method;
  - CSeq: each endpoint sees strictly increasing numbers (the refresh
    continues the engine's direction, the later BYE is renumbered);
  - Contact: the engine's own, with the dialog id, on the same listener;
  - SDP: outbound/inbound carry the other party's description with its
    o= line unchanged; the second leg is offered what the first leg
    answered; with body none the first leg offers in its 200, the second
    leg gets that offer and its answer comes back in the first leg's ACK.
"""
import harness as h
from harness import nodes as lib

t = h.Test(__file__)

LEGS = {'challenge': ('caller', 'callee'),
        'challenge-callee': ('callee', 'caller'),
        'caller': ('caller',),
        'callee': ('callee',),
        'update': ('caller', 'callee')}
OTHER = {'caller': 'callee', 'callee': 'caller'}


def run_combo(ctx, mode, body):
    # the caller hangs up once the re-home is done, also in a slow build
    rh, uac, uas = ctx.proxied('rehome_uac.xml', 'rehome_uas.xml',
                               caller={'duration': int(h.slow(2500))})
    uas.start()
    uac.start()
    lib.wait_confirmed(rh, 1)

    job = lib.post_job(rh, '/v1/rehome', {'tag': 'service', 'mode': mode,
                                          'body': body, 'all': True})
    assert (job['total'], job['moved'], job['failed']) == (1, 1, 0), job

    caller, callee = uac.result(), uas.result(timeout=5)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    check_wire(rh, mode, body, {'caller': uac, 'callee': uas})
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        rh.dialog_counts()


def check_wire(rh, mode, body, sipps):
    method = 'UPDATE' if mode == 'update' else 'INVITE'
    orig = {}     # o= line each party put in its initial INVITE / 200
    got = {}      # leg -> received requests [(time, msg)]
    for leg, sipp in sipps.items():
        got[leg] = lib.received(sipp)
        sent = [m for m in lib.trace(sipp)
                if m.direction == 'sent' and lib.o_line(m.body)]
        orig[leg] = lib.o_line(sent[0].body)

    refresh = {}
    for leg in ('caller', 'callee'):
        msgs = [m for _, m in got[leg]]
        assert lib.cseqs_increase(msgs), '%s CSeqs: %s' % (
            leg, [m.cseq for m in msgs])
        # the callee also got the initial INVITE, relayed
        initial = 1 if leg == 'callee' and method == 'INVITE' else 0
        refreshes = [(ts, m) for ts, m in got[leg]
                     if m.method == method][initial:]
        if leg not in LEGS[mode]:
            assert not refreshes, '%s got %s' % (leg, refreshes)
            continue
        assert len(refreshes) == 1, '%s got %s' % (leg, refreshes)
        refresh[leg] = refreshes[0]

    order = LEGS[mode]
    if len(order) == 2:
        assert refresh[order[0]][0] <= refresh[order[1]][0], \
            'order: %s before %s' % (order[1], order[0])

    for i, leg in enumerate(order):
        ts, msg = refresh[leg]
        contact = lib.contact_uri(msg)
        assert contact and contact.startswith('sip:rh-') and \
            rh.sip_addr in contact, '%s Contact %s' % (leg, contact)
        # the callee saw INVITE 1 (relayed); the caller nothing before
        assert msg.cseq[0] == (2 if leg == 'callee' else 1), msg.cseq
        if i == 0:
            expect_offer = None if body == 'none' else orig[OTHER[leg]]
        elif body == 'none' and method == 'UPDATE':
            expect_offer = None   # no offer anywhere: a target refresh
        else:
            expect_offer = orig[order[0]]   # what the first leg sent
        assert lib.o_line(msg.body) == expect_offer, \
            '%s offered %r, expected %r' % (leg, lib.o_line(msg.body),
                                            expect_offer)
        if method != 'INVITE':
            continue
        acks = [m for t2, m in got[leg] if m.method == 'ACK' and t2 >= ts]
        assert acks and acks[0].cseq[0] == msg.cseq[0], \
            '%s ACK %s' % (leg, acks[:1])
        expect_answer = None
        if body == 'none' and i == 0:
            # answered by the second leg, or (one leg) with what it had
            expect_answer = orig[order[1]] if len(order) == 2 else \
                orig[OTHER[leg]]
        assert lib.o_line(acks[0].body) == expect_answer, \
            '%s ACK body %r, expected %r' % (leg, acks[0].body,
                                             expect_answer)

    # the caller's BYE 2 reaches the callee above every earlier number
    byes = [m for _, m in got['callee'] if m.method == 'BYE']
    assert len(byes) == 1, byes
    last = max(m.cseq[0] for _, m in got['callee'] if m.method != 'BYE')
    assert byes[0].cseq[0] > last, (byes[0].cseq, last)


def combo_test(mode, body):
    def fn(ctx):
        run_combo(ctx, mode, body)
    fn.__name__ = '%s_%s' % (mode.replace('-', '_'), body)
    return fn


for m in LEGS:
    for b in ('outbound', 'inbound', 'none'):
        t.test(combo_test(m, b))

t.main()
