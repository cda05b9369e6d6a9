"""test_dialog_match.py  An in-dialog request is a leg's only when every
identifier of that leg matches (RFC 3261 12.2.2): the Contact user part
rehomed gave the leg (did, leg, key) in the Request-URI, the leg's Call-ID,
and its From and To tags.

Two raw-socket endpoints (class Ua) make a call through rehomed, then
play the attacker with everything they were sent:

- caller_poses_as_callee: the caller sends re-INVITE and BYE to what it
  can work out of the callee leg's identifiers from its own (its Contact
  user part with the leg letter swapped, with or without its key; Call-IDs
  "rh-<did>", "rh-<did>-<its key>", its own, even the callee's real one),
  with the tags swapped as the callee would send them: every one gets 481,
  nothing is relayed to anyone, neither leg's target changes, and the call
  still ends normally.
- wrong_identifiers_481: from each leg, requests to rehomed with one
  identifier wrong (Call-ID, From tag, To tag, tags swapped, the other
  leg's Call-ID or Request-URI, no key, a wrong key, the other leg's
  letter) get 481 and are not relayed; the same request with everything
  right is relayed (positive control).
- legs_share_no_identifier: after a call with a re-INVITE from each side,
  neither endpoint has received the other leg's Call-ID or Contact user
  part, and each of those carries a random part (16 hex digits other than
  the did) that is found nowhere in what the other endpoint received; the
  callee's Call-ID and Contact user part have different random parts.
- replica_matches_after_failover: two nodes; while node 1 serves the call,
  node 2 (replica) answers the same forgeries with 481 and forwards the
  genuine request; after node 1 is killed and node 2 re-homes the call,
  node 2 has given each leg the same Contact user part node 1 did, and
  matches requests as node 1 did.
"""
import re

import harness as h
from harness import nodes as lib
from harness.ua import Ua, call, hostport_of, user_of

t = h.Test(__file__)


def other_letter(user):
    """The same user part with the other leg's letter ("rh-<did>-a-<key>"
    -> "rh-<did>-b-<key>")."""
    return user[:20] + {'a': 'b', 'b': 'a'}[user[20]] + user[21:]


def relayed(sender, receiver, method, dst=None):
    """A request with every identifier right crosses: the receiver gets it
    in its own dialog, and the sender gets the receiver's 200."""
    req = sender.request(method,
                         body=sender.sdp if method == 'INVITE' else '')
    sender.send(req, dst)
    got = receiver.wait(lambda m: m.is_request and m.method == method)
    assert got and got.call_id == receiver.call_id, \
        '%s did not get the %s in its dialog: %s' % (receiver.name,
                                                     method, got)
    resp = sender.final(req)
    assert resp and resp.status == 200, '%s %s: %s' % (
        sender.name, method, resp and resp.start_line)
    if method == 'INVITE':
        sender.send(sender.request('ACK'), dst)
        assert receiver.wait(lambda m: m.is_request and
                             m.method == 'ACK'), 'no ACK relayed'
    return got


def refused(sender, dst, cases, also_quiet=()):
    """Each forged request gets 481 from dst; nobody gets any request."""
    for what, method, kw in cases:
        req = sender.request(method,
                             body=sender.sdp if method == 'INVITE' else '',
                             **kw)
        sender.send(req, dst)
        resp = sender.final(req)
        assert resp and resp.status == 481, '%s %s (%s): %s' % (
            sender.name, method, what, resp and resp.start_line)
    for ua in (sender,) + tuple(also_quiet):
        reqs = ua.requests_received()
        assert not reqs, '%s got %s' % (ua.name, reqs)


def impersonations(caller, callee_call_id):
    """What the caller can build from its own view to pass as the callee:
    (what, method, request overrides)."""
    user = user_of(caller.target)
    did = user[3:19]
    users = {'rh-%s-b' % did, other_letter(user)}
    callids = {'rh-%s' % did, 'rh-%s-%s' % (did, user[22:]),
               caller.call_id, callee_call_id}
    host = hostport_of(caller.target)
    cases = []
    for u in sorted(users):
        for cid in sorted(callids):
            for method in ('INVITE', 'BYE'):
                cases.append(('R-URI %s, Call-ID %s' % (u, cid), method,
                              dict(ruri='sip:%s@%s' % (u, host),
                                   call_id=cid,
                                   from_tag=caller.remote_tag,
                                   to_tag=caller.tag)))
    return cases


def wrong_identifiers(sender, other):
    """Requests to sender's own leg with one identifier wrong."""
    user = user_of(sender.target)
    host = hostport_of(sender.target)
    flipped = user[:-1] + ('0' if user[-1] != '0' else '1')
    one_wrong = [
        ('wrong Call-ID', dict(call_id=sender.call_id + 'x')),
        ('other leg\'s Call-ID', dict(call_id=other.call_id)),
        ('wrong From tag', dict(from_tag=sender.tag + 'x')),
        ('wrong To tag', dict(to_tag=sender.remote_tag + 'x')),
        ('tags swapped', dict(from_tag=sender.remote_tag,
                              to_tag=sender.tag)),
        ('no key', dict(ruri='sip:%s@%s' % (user[:21], host))),
        ('wrong key', dict(ruri='sip:%s@%s' % (flipped, host))),
        ('other leg\'s letter', dict(ruri='sip:%s@%s' % (
            other_letter(user), host))),
        ('other leg\'s R-URI', dict(ruri=other.target)),
    ]
    return [(what, method, kw) for what, kw in one_wrong
            for method in ('INVITE', 'BYE')]


def dialog_of(node):
    """The one dialog of a node (dialogs API), None if there is none."""
    code, data = node.ctl.get('/v1/dialogs')
    assert code == 200, data
    dialogs = data['dialogs']
    assert len(dialogs) <= 1, dialogs
    return dialogs[0] if dialogs else None


def targets(node):
    d = dialog_of(node)
    return d['legs']['caller']['target'], d['legs']['callee']['target']


def hang_up(caller, callee, node, dst=None):
    relayed(caller, callee, 'BYE', dst)
    assert h.wait_until(lambda: node.active_dialogs() == 0, 3), \
        node.dialog_counts()


def two_uas(ctx):
    return Ua(ctx, h.CALLER_IP, 'alice'), Ua(ctx, h.CALLEE_IP, 'bob')


def upstream(ua):
    return 'udp:%s:%d' % (ua.ip, ua.peer.port)


@t.test
def caller_poses_as_callee(ctx):
    caller, callee = two_uas(ctx)
    rh = ctx.rehomed(upstream=upstream(callee))
    call(rh.sip_addr, caller, callee)
    before = targets(rh)
    assert before == (caller.contact, callee.contact), before

    refused(caller, rh.sip_addr, impersonations(caller, callee.call_id),
            also_quiet=(callee,))
    assert targets(rh) == before, targets(rh)

    hang_up(caller, callee, rh)


@t.test
def wrong_identifiers_481(ctx):
    caller, callee = two_uas(ctx)
    rh = ctx.rehomed(upstream=upstream(callee))
    call(rh.sip_addr, caller, callee)

    for sender, other in ((caller, callee), (callee, caller)):
        refused(sender, rh.sip_addr, wrong_identifiers(sender, other),
                also_quiet=(other,))
        relayed(sender, other, 'INFO')
    assert targets(rh) == (caller.contact, callee.contact), targets(rh)

    hang_up(caller, callee, rh)


@t.test
def legs_share_no_identifier(ctx):
    caller, callee = two_uas(ctx)
    rh = ctx.rehomed(upstream=upstream(callee))
    call(rh.sip_addr, caller, callee)
    relayed(caller, callee, 'INVITE')
    relayed(callee, caller, 'INVITE')
    hang_up(caller, callee, rh)

    views = {ua: '\n'.join(m.raw for m in ua.received)
             for ua in (caller, callee)}
    did = user_of(caller.target)[3:19]
    assert did == user_of(callee.target)[3:19], (caller.target,
                                                 callee.target)
    own = {caller: {'Contact user part': user_of(caller.target),
                    'Call-ID': caller.call_id},
           callee: {'Contact user part': user_of(callee.target),
                    'Call-ID': callee.call_id}}

    for ua, other in ((caller, callee), (callee, caller)):
        for what, ident in own[ua].items():
            assert ident not in views[other], '%s of %s seen by %s: %s' % (
                what, ua.name, other.name, ident)

    # what rehomed chose: a random part of its own beyond the did, seen
    # by nobody else (a simple transform of the other leg's would be)
    chosen = [(caller, 'Contact user part'), (callee, 'Contact user part'),
              (callee, 'Call-ID')]
    secrets = {}
    for ua, what in chosen:
        parts = set(re.findall(r'[0-9a-f]{16}', own[ua][what])) - {did}
        assert parts, '%s of %s has nothing but the did: %s' % (
            what, ua.name, own[ua][what])
        other = callee if ua is caller else caller
        for p in parts:
            assert p not in views[other], '%s of %s: %s seen by %s' % (
                what, ua.name, p, other.name)
        secrets[ua, what] = parts
    assert not secrets[callee, 'Call-ID'] & \
        secrets[callee, 'Contact user part'], secrets
    assert user_of(callee.target) not in (
        other_letter(user_of(caller.target)), 'rh-%s-b' % did)
    assert callee.call_id != 'rh-' + did


@t.test
def replica_matches_after_failover(ctx):
    caller, callee = two_uas(ctx)
    n1, n2 = lib.cluster(ctx, upstream(callee))
    call(n1.sip_addr, caller, callee)
    assert h.wait_until(lambda: (dialog_of(n2) or {}).get('state') ==
                        'confirmed', 5), dialog_of(n2)
    users = user_of(caller.target), user_of(callee.target)

    # the replica node matches on its own before forwarding anything
    refused(caller, n2.sip_addr, impersonations(caller, callee.call_id),
            also_quiet=(callee,))
    refused(caller, n2.sip_addr, wrong_identifiers(caller, callee),
            also_quiet=(callee,))
    relayed(caller, callee, 'INFO', n2.sip_addr)

    lib.kill(ctx, n1)
    assert h.wait_until(lambda: lib.node_state(n2, 'node1') == 'down',
                        5), lib.status(n2)
    code, job = n2.ctl.post('/v1/rehome', {'tag': 'service'})
    assert code == 202, (code, job)
    path = '/v1/jobs/%d' % job['job']
    while job.get('state') == 'running':
        caller.recv(0.05)
        callee.recv(0.05)
        code, job = n2.ctl.get(path)
        assert code == 200, job
    assert job.get('state') == 'done' and job.get('moved') == 1, job
    for ua in (caller, callee):
        assert ua.wait(lambda m: m.is_request and m.method == 'ACK'), \
            '%s: no ACK of node 2\'s re-INVITE' % ua.name
        ua.pending.clear()

    # node 2 gave each leg the user part node 1 had given it
    for ua, user in zip((caller, callee), users):
        assert hostport_of(ua.target) == n2.sip_addr, ua.target
        assert user_of(ua.target) == user, (ua.target, user)
    assert targets(n2) == (caller.contact, callee.contact), targets(n2)

    refused(caller, n2.sip_addr, impersonations(caller, callee.call_id),
            also_quiet=(callee,))
    for sender, other in ((caller, callee), (callee, caller)):
        refused(sender, n2.sip_addr, wrong_identifiers(sender, other),
                also_quiet=(other,))
        relayed(sender, other, 'INFO')
    hang_up(caller, callee, n2)


t.main()
