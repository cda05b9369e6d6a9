"""test_proxy_reinvite.py  re-INVITE from each side, offer/answer through.

A re-INVITE after the call is up (hold: new o= version, a=sendonly) must
reach the other leg with its SDP offer unchanged, in that leg's dialog
(its Call-ID, to its Contact), and the answer of the other side must come
back in the 200. Both calls then end normally with a BYE.
"""
import harness as h

t = h.Test(__file__)


def reinvite_crossed(sender, receiver, offer, answer):
    """The in-dialog INVITE `sender` sent reached `receiver` with `offer`
    in its body, and the 200 back to `sender` carried `answer`."""
    sent = [m for m in sender.select('sent', 'INVITE')
            if ';tag=' in m.header('To')]
    got = [m for m in receiver.select('received', 'INVITE')
           if ';tag=' in m.header('To')]
    assert len(sent) == 1 and len(got) == 1, \
        're-INVITEs: %d sent, %d received' % (len(sent), len(got))
    assert offer in got[0].body and 'a=sendonly' in got[0].body, \
        'offer changed on the way:\n' + got[0].body
    dialog_ids = {m.call_id for m in receiver.messages}
    assert dialog_ids == {got[0].call_id}, 'not in the receiver\'s dialog'
    ok = [m for m in sender.select('received', 'INVITE', 200)
          if m.cseq[0] == sent[0].cseq[0]]
    assert ok, 'no 200 for the re-INVITE'
    assert answer in ok[0].body, 'answer changed:\n' + ok[0].body


@t.test
def reinvite_from_caller(ctx):
    rh, uac, uas = ctx.proxied('uac_reinvite.xml', 'uas.xml',
                               caller={'duration': 500})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    reinvite_crossed(caller, callee, 'o=alice 1000 1001', 'o=bob 2000 2000')
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()


@t.test
def reinvite_from_callee(ctx):
    rh, uac, uas = ctx.proxied('uac.xml', 'uas_reinvite.xml',
                               caller={'duration': 1500},
                               callee={'duration': 300})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    reinvite_crossed(callee, caller, 'o=bob 2000 2001', 'o=alice 1000 1000')
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()


t.main()
