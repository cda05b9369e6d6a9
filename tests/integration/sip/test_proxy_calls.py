"""test_proxy_calls.py  Load: 100 UDP calls at 50/s through rehomed.

Proves that the basic relay (INVITE, 100/180/200, ACK, BYE) holds under
concurrency (up to ~50 calls up at once), that every callee leg gets its
own Call-ID, and that no dialog is left once every call has hung up
(and rehome_calls_total counted each call once).
"""
import harness as h
from harness import metrics as hm

t = h.Test(__file__)

CALLS = 100


@t.test
def calls_100_udp_rate_50(ctx):
    rh, uac, uas = ctx.proxied(
        'uac.xml', 'uas.xml',
        caller={'calls': CALLS, 'rate': 50, 'duration': 1000},
        callee={'calls': CALLS})
    caller, callee = h.run_pair(uac, uas)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()

    invites = callee.select('received', 'INVITE')
    assert len(invites) == CALLS, '%d INVITEs at the callee' % len(invites)
    caller_ids = {m.call_id for m in caller.select('sent', 'INVITE')}
    callee_ids = {m.call_id for m in invites}
    assert len(caller_ids) == CALLS, 'caller trace: %d' % len(caller_ids)
    assert len(callee_ids) == CALLS, 'callee Call-IDs not unique'
    assert not caller_ids & callee_ids, 'caller Call-IDs reached the callee'

    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        'dialogs left: %s' % rh.dialog_counts()
    m = hm.scrape(rh)
    assert m.value('rehome_calls_total') == CALLS, m.text


t.main()
