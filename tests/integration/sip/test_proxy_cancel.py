"""test_proxy_cancel.py  CANCEL before answer.

The caller cancels after the 180: the callee must see a CANCEL for the
INVITE rehomed sent it (same Via branch, as RFC 3261 9.1 requires), the
caller must get 200 for its CANCEL and 487 for its INVITE, and the early
dialog must be gone afterwards.
"""
import harness as h

t = h.Test(__file__)


@t.test
def cancel_after_ringing(ctx):
    rh, uac, uas = ctx.proxied('uac_cancel.xml', 'uas_cancel.xml')
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    assert caller.select('received', 'INVITE', 487), 'caller got no 487'
    assert caller.select('received', 'CANCEL', 200), \
        'caller got no 200 for its CANCEL'

    invite, = callee.select('received', 'INVITE')
    cancel, = callee.select('received', 'CANCEL')
    assert cancel.call_id == invite.call_id, 'CANCEL of another call'
    assert cancel.header('Via') == invite.header('Via'), \
        'CANCEL Via %r differs from INVITE Via %r' % (
            cancel.header('Via'), invite.header('Via'))
    assert cancel.cseq[0] == invite.cseq[0], 'CANCEL CSeq number differs'

    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()


t.main()
