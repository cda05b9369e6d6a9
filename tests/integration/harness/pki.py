"""pki.py  A throw-away certificate authority for the TLS tests.

openssl makes a CA and, per name, a key and a certificate signed by it
(subjectAltName IP and DNS, so a peer that checks the host finds it), in
the test's directory. Each name's key and certificate are written into
one PEM, the form rehomed's tls_cert and baresip's sip_certificate take.
Imported on its own (`from harness import pki`).
"""
import os
import subprocess


def _openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True,
                   capture_output=True, timeout=30)


class Pki:
    """A CA in `workdir`; cert() issues a PEM (key + certificate)."""

    def __init__(self, workdir, name='ca'):
        self.dir = workdir
        self.ca_key = os.path.join(workdir, name + '.key')
        self.ca = os.path.join(workdir, name + '.crt')
        self.serial = 0
        _openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
                 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
                 '-subj', '/CN=rehome test CA ' + name, '-keyout',
                 self.ca_key, '-out', self.ca)

    def cert(self, name, ip='127.0.0.1', path=None):
        """A PEM with the key and a certificate for CN=name (IP and DNS
        alt names); returns its path (default DIR/name.pem)."""
        self.serial += 1
        key = os.path.join(self.dir, name + '.key')
        csr = os.path.join(self.dir, name + '.csr')
        crt = os.path.join(self.dir, name + '.crt')
        ext = os.path.join(self.dir, name + '.ext')
        with open(ext, 'w') as f:
            f.write('subjectAltName=IP:%s,DNS:%s\n' % (ip, name))
        _openssl('req', '-newkey', 'ec', '-pkeyopt',
                 'ec_paramgen_curve:prime256v1', '-nodes', '-subj',
                 '/CN=' + name, '-keyout', key, '-out', csr)
        _openssl('x509', '-req', '-in', csr, '-CA', self.ca, '-CAkey',
                 self.ca_key, '-set_serial', str(self.serial), '-days', '2',
                 '-extfile', ext, '-out', crt)
        path = path or os.path.join(self.dir, name + '.pem')
        with open(path + '.tmp', 'w') as out:
            for part in (crt, key):
                with open(part) as f:
                    out.write(f.read())
        os.replace(path + '.tmp', path)   # a reader never sees half
        return path
