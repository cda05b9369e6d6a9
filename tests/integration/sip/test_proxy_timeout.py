"""test_proxy_timeout.py  A dialog without activity for dialog_timeout ends.

rehomed itself sends BYE to both legs (each in its own dialog: the
caller's Call-ID toward the caller, the callee leg's toward the callee)
and forgets the dialog; both endpoints answer 200 and end the call.
"""
import harness as h

t = h.Test(__file__)


@t.test
def idle_dialog_hung_up(ctx):
    rh, uac, uas = ctx.proxied('uac_wait_bye.xml', 'uas.xml',
                               engine={'extra': {'dialog_timeout': 2}})
    uas.start()
    uac.start()
    assert h.wait_until(lambda: rh.dialog_counts()['confirmed'] == 1, 5), \
        'no confirmed dialog while the call is up: %s' % rh.dialog_counts()

    caller, callee = uac.result(timeout=10), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    to_caller, = caller.select('received', 'BYE')
    to_callee, = callee.select('received', 'BYE')
    invite_out, = caller.select('sent', 'INVITE')
    invite_in, = callee.select('received', 'INVITE')
    assert to_caller.call_id == invite_out.call_id, to_caller.call_id
    assert to_callee.call_id == invite_in.call_id, to_callee.call_id
    assert to_caller.header('To') == invite_out.header('From')
    assert to_callee.cseq[0] > invite_in.cseq[0], (to_callee.cseq,
                                                    invite_in.cseq)

    assert 'dialog timeout' in rh.log(), 'no timeout logged'
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()


t.main()
