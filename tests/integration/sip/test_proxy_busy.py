"""test_proxy_busy.py  A failed INVITE: the callee's 486 reaches the caller.

Proves that a final error is relayed (with the caller's own Via and To
tag of the answer), that rehomed ACKs the callee itself, and that the
failed INVITE leaves no dialog behind.
"""
import harness as h

t = h.Test(__file__)


@t.test
def busy_486_relayed(ctx):
    rh, uac, uas = ctx.proxied('uac_busy.xml', 'uas_busy.xml')
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    busy = caller.select('received', 'INVITE', 486)
    assert len(busy) >= 1, 'caller got no 486'
    assert h.CALLER_IP in busy[0].header('Via'), 'not the caller\'s Via'
    assert ';tag=' in busy[0].header('To'), '486 without To tag'
    assert not caller.select('received', 'INVITE', 200), 'caller got a 200'
    assert callee.select('received', 'ACK'), 'callee\'s 486 was not ACKed'

    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()


t.main()
