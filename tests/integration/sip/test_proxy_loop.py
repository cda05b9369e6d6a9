"""test_proxy_loop.py  Loops and spirals (RFC 3261 16.3 item 4, 16.6 item 3).

- the next hop of a call is rehomed itself (a policy's target): the
  INVITE is answered 482 and sent nowhere;
- its upstream is a stateless proxy (a raw socket) that sends the INVITE
  straight back: rehomed finds the mark it put in its Via, answers 482
  (to that proxy, which passes the answer on, so the caller gets 482) and
  relays nothing more;
- the same proxy retargets the INVITE (another Request-URI) before
  sending it back: a spiral, relayed again as a call of its own, whose
  486 comes back to the caller;
- two rehomed, each the other's upstream: a loop no Via can show, since
  each hop is a new call. Max-Forwards, capped at 70 on every relay, ends
  it: the caller, who sent 255, gets 483 after at most 72 INVITEs in all.
"""
import re
import select
import time

import harness as h

t = h.Test(__file__)


def via_addr(value):
    """("ip", port) of a Via value's sent-by."""
    m = re.match(r'SIP/2\.0/\w+\s+([^;:\s]+):?(\d*)', value)
    return m.group(1), int(m.group(2) or 5060)


class Bouncer:
    """A stateless proxy as rehomed's upstream: the first INVITE goes back
    to rehomed (with our Via on top, and a new R-URI if `retarget`),
    later ones are answered 486; responses are passed down the Vias."""

    def __init__(self, ctx, retarget=None):
        self.peer = ctx.udp(h.CALLEE_IP)
        self.retarget = retarget
        self.invites = []       # INVITEs rehomed sent us, one per branch
        self.bounced = False

    def handle(self, engine):
        msg = h.SipMsg(self.peer.sock.recv(65535).decode('latin-1'))
        if not msg.is_request:
            self.pass_down(msg)
        elif msg.method == 'INVITE':
            if msg.header('Via') in {m.header('Via') for m in self.invites}:
                return                        # a retransmission
            self.invites.append(msg)
            if self.bounced:
                self.peer.send(busy(msg), engine)
            else:
                self.bounced = True
                self.peer.send(self.bounce(msg), engine)

    def bounce(self, msg):
        raw = msg.raw
        if self.retarget:
            line, _, rest = raw.partition('\r\n')
            method, ruri, version = line.split(' ')
            raw = '%s %s %s\r\n%s' % (method, self.retarget(ruri), version,
                                      rest)
        via = 'Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKbounce%d\r\n' % (
            self.peer.ip, self.peer.port, len(self.invites))
        line, _, rest = raw.partition('\r\n')
        return line + '\r\n' + via + rest

    def pass_down(self, resp):
        """Drop our Via, send the response to the next one."""
        vias = [(n, v) for n, v in resp.headers if n.lower() in ('via', 'v')]
        if len(vias) < 2:
            return
        head, _, body = resp.raw.partition('\r\n\r\n')
        lines = head.split('\r\n')
        first = next(i for i, ln in enumerate(lines)
                     if re.match(r'(?i)(via|v)\s*:', ln))
        del lines[first]
        ip, port = via_addr(vias[1][1])
        self.peer.send('\r\n'.join(lines) + '\r\n\r\n' + body,
                       '%s:%d' % (ip, port))


def busy(req):
    to = req.header('To') + ';tag=busy'
    return ''.join(['SIP/2.0 486 Busy Here\r\n'] +
                   ['Via: %s\r\n' % v for v in req.header_all('Via')] +
                   ['From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n' % (
                       req.header('From'), to, req.call_id,
                       req.header('CSeq')),
                    'Content-Length: 0\r\n\r\n'])


def call(ctx, engine, bouncer=None, max_forwards=70, timeout=5.0):
    """An INVITE from a raw caller; its answers, while the bouncer (if
    any) does its part. Returns the caller's responses."""
    caller = ctx.udp()
    caller.send(caller.request('INVITE', 'sip:bob@%s' % engine,
                               max_forwards=max_forwards, body='v=0\r\n'),
                engine)
    answers = []
    deadline = time.monotonic() + timeout
    socks = [caller.sock] + ([bouncer.peer.sock] if bouncer else [])
    while time.monotonic() < deadline:
        ready, _, _ = select.select(socks, [], [],
                                    deadline - time.monotonic())
        if bouncer and bouncer.peer.sock in ready:
            bouncer.handle(engine)
        if caller.sock in ready:
            msg = h.SipMsg(caller.sock.recv(65535).decode('latin-1'))
            answers.append(msg)
            if msg.status >= 200:
                deadline = min(deadline, time.monotonic() + 0.5)
    return answers


def final(answers):
    finals = [m.status for m in answers if m.status >= 200]
    return finals[0] if finals else None


def invites_received(rh):
    status, text = rh.ctl.get('/metrics')
    assert status == 200, status
    m = re.search(r'^rehome_sip_requests_received_total\{method="INVITE"\} '
                  r'(\d+)', text, re.M)
    return int(m.group(1)) if m else 0


POLICY_TO_ITSELF = """
return {
  on_initial_invite = function(req)
    return {target = "sip:%s"}
  end,
}
"""


@t.test
def routed_to_itself(ctx):
    """The call's next hop is rehomed itself: a policy's target (the
    configuration refuses an upstream that is one of its listeners)."""
    port = h.free_port()
    addr = '%s:%d' % (h.ENGINE_IP, port)
    policy = ctx.path('policy.lua')
    with open(policy, 'w') as f:
        f.write(POLICY_TO_ITSELF % addr)
    rh = ctx.rehomed(listens=['udp:%s tag=public' % addr,
                              'tcp:%s tag=public' % addr], policy=policy)
    answers = call(ctx, addr)
    assert final(answers) == 482, [m.start_line for m in answers]
    assert invites_received(rh) == 1


@t.test
def loop_through_a_proxy(ctx):
    bouncer = Bouncer(ctx)
    rh = ctx.rehomed(upstream='udp:%s:%d' % (bouncer.peer.ip,
                                             bouncer.peer.port))
    answers = call(ctx, rh.sip_addr, bouncer)
    assert final(answers) == 482, [m.start_line for m in answers]
    assert len(bouncer.invites) == 1, [m.start_line for m in
                                       bouncer.invites]
    assert ';rhloop=' in bouncer.invites[0].header('Via')
    assert rh.wait_log(r'Loop Detected', timeout=1)


@t.test
def spiral_through_a_proxy(ctx):
    bouncer = Bouncer(ctx, retarget=lambda ruri: ruri.replace('bob@',
                                                              'carol@'))
    rh = ctx.rehomed(upstream='udp:%s:%d' % (bouncer.peer.ip,
                                             bouncer.peer.port))
    answers = call(ctx, rh.sip_addr, bouncer)
    assert final(answers) == 486, [m.start_line for m in answers]
    assert [m.start_line.split()[1].split('@')[0] for m in
            bouncer.invites] == ['sip:bob', 'sip:carol'], bouncer.invites
    assert bouncer.invites[0].call_id != bouncer.invites[1].call_id


@t.test
def loop_between_two_nodes(ctx):
    pa, pb = h.free_port(), h.free_port()
    addr = {'a': '%s:%d' % (h.ENGINE_IP, pa), 'b': '%s:%d' % (h.ENGINE_IP,
                                                              pb)}
    nodes = [ctx.rehomed(name='rehomed-' + me, node_id=me,
                         listens=['udp:%s tag=public' % addr[me],
                                  'tcp:%s tag=public' % addr[me]],
                         upstream='udp:' + addr[other])
             for me, other in (('a', 'b'), ('b', 'a'))]
    answers = call(ctx, addr['a'], max_forwards=255, timeout=15.0)
    assert final(answers) == 483, [m.start_line for m in answers]
    hops = sum(invites_received(rh) for rh in nodes)
    # 255 from the caller, then 70 down to 0: not 256 hops
    assert hops <= 72, hops


t.main()
