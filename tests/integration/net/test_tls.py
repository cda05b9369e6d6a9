"""test_tls.py  SIP over TLS: baresip to baresip through rehomed.

A CA made here with openssl signs rehomed's certificate and each
baresip's. rehomed listens on TLS only and is given the CA (tls_ca), so
it verifies the callee it connects to; the caller uses rehomed as its
outbound proxy over TLS and dials the callee's TLS address. A hang-up by
the callee proves that the Contact rehomed wrote (;transport=tls) leads
back over TLS, since rehomed has no other listener. A callee whose
certificate another CA signed is refused, and a certificate rewritten in
place is served once the configuration is reloaded (a broken one refuses
the reload and the running one stays).
"""
import socket
import ssl

import harness as h
from harness import pki as pkilib
from harness.baresip import Baresip, call_up, hang_up

t = h.Test(__file__)


def node(ctx, pki):
    port = h.free_port()
    return ctx.rehomed(listens=['tls:%s:%d tag=public' % (h.ENGINE_IP, port)],
                       extra=['tls_cert %s' % pki.cert('node'),
                              'tls_ca %s' % pki.ca])


def pair(ctx, pki, rh, callee_pki=None):
    signer = callee_pki or pki
    bob = Baresip(ctx, 'bob', h.CALLEE_IP, 'tls',
                  cert=signer.cert('bob', h.CALLEE_IP), ca=pki.ca).start()
    alice = Baresip(ctx, 'alice', h.CALLER_IP, 'tls', outbound=rh.sip_addr,
                    cert=pki.cert('alice', h.CALLER_IP), ca=pki.ca).start()
    return alice, bob


def legs_transports(rh):
    status, data = rh.ctl.get('/v1/dialogs')
    assert status == 200, data
    return [leg.get('transport') for d in data['dialogs']
            for leg in (d['legs'].values() if isinstance(d['legs'], dict)
                        else d['legs'])]


@t.test
def call_over_tls(ctx):
    pki = pkilib.Pki(ctx.dir)
    rh = node(ctx, pki)
    alice, bob = pair(ctx, pki, rh)
    call_up(alice, bob, bob.aor)
    transports = legs_transports(rh)
    assert transports == ['TLS', 'TLS'], transports
    hang_up(bob, alice)
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        rh.dialog_counts()


@t.test
def untrusted_callee_refused(ctx):
    """The callee's certificate comes from a CA rehomed does not trust:
    the TLS handshake fails and the call is not set up."""
    pki = pkilib.Pki(ctx.dir)
    rogue = pkilib.Pki(ctx.path(''), 'rogue')
    rh = node(ctx, pki)
    alice, bob = pair(ctx, pki, rh, callee_pki=rogue)
    alice.cmd('dial', bob.aor)
    assert alice.wait_event('CALL_CLOSED', 15), alice.kinds()
    assert not bob.wait_event('CALL_ESTABLISHED', 0.5), bob.kinds()
    assert not alice.wait_event('CALL_ESTABLISHED', 0), alice.kinds()
    assert h.wait_until(lambda: rh.active_dialogs() == 0, 5), \
        rh.dialog_counts()


def served_cn(rh, ca):
    """The CN of the certificate rehomed presents to a new connection."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ip, _, port = rh.sip_addr.rpartition(':')
    with socket.create_connection((ip, int(port)), 5) as raw:
        with ctx.wrap_socket(raw) as conn:
            subject = dict(x[0] for x in conn.getpeercert()['subject'])
    return subject['commonName']


@t.test
def certificate_reloaded(ctx):
    pki = pkilib.Pki(ctx.dir)
    rh = node(ctx, pki)
    assert served_cn(rh, pki.ca) == 'node'
    pki.cert('node-renewed', path=ctx.path('node.pem'))
    assert served_cn(rh, pki.ca) == 'node', 'changed before the reload'
    status, body = rh.ctl.post('/v1/reload', {})
    assert status == 200, (status, body)
    assert served_cn(rh, pki.ca) == 'node-renewed'


@t.test
def broken_certificate_refuses_reload(ctx):
    pki = pkilib.Pki(ctx.dir)
    rh = node(ctx, pki)
    with open(ctx.path('node.pem'), 'w') as f:
        f.write('-----BEGIN CERTIFICATE-----\nnot one\n')
    status, body = rh.ctl.post('/v1/reload', {})
    assert status == 422, (status, body)
    assert 'tls_cert' in body.get('error', ''), body
    assert served_cn(rh, pki.ca) == 'node', 'the running one was dropped'


t.main()
