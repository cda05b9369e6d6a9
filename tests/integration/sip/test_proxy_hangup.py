"""test_proxy_hangup.py  The callee hangs up.

The BYE comes from the callee leg and must reach the caller at the
Contact the caller gave, in the caller's dialog (its Call-ID, tags
swapped). The dialog is counted as confirmed while the call is up (so
the "no dialog left" check below can fail) and is gone after the BYE.
"""
import harness as h

t = h.Test(__file__)


@t.test
def callee_hangs_up(ctx):
    rh, uac, uas = ctx.proxied('uac_wait_bye.xml', 'uas_hangup.xml',
                               callee={'duration': 1500})
    uas.start()
    uac.start()
    assert h.wait_until(lambda: rh.dialog_counts()['confirmed'] == 1, 5), \
        'no confirmed dialog while the call is up: %s' % rh.dialog_counts()
    caller, callee = uac.result(), uas.result(timeout=5)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    bye, = caller.select('received', 'BYE')
    invite, = caller.select('sent', 'INVITE')
    assert bye.start_line.startswith('BYE sip:alice@%s:%d' % (
        h.CALLER_IP, uac.port)), 'BYE not sent to the caller\'s Contact: ' \
        + bye.start_line
    assert bye.call_id == invite.call_id, 'BYE with another Call-ID'
    assert bye.header('To') == invite.header('From'), \
        'BYE To %r is not the caller\'s From %r' % (bye.header('To'),
                                                    invite.header('From'))

    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()


t.main()
