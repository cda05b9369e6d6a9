"""ctl.py  A tiny client of rehomed's control API (JSON over HTTP)."""

import http.client
import json

from .common import slow

CTL_TOKEN = 'test-token'


class Ctl:
    """Client of one node's control API, with its bearer token."""

    def __init__(self, addr, token=CTL_TOKEN):
        self.host, _, port = addr.rpartition(':')
        self.port = int(port)
        self.token = token

    def request(self, method, path, body=None, timeout=5.0):
        """Returns (status, data): data is the decoded JSON, or the text
        when the reply is not JSON; `timeout` is times SLOW (a busy node
        of the ASan build answers late, not wrong)."""
        headers = {}
        if self.token:
            headers['Authorization'] = 'Bearer ' + self.token
        if body is not None:
            body = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=slow(timeout))
        try:
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            text = resp.read().decode('utf-8', 'replace')
        finally:
            conn.close()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    def get(self, path):
        return self.request('GET', path)

    def post(self, path, body=None):
        return self.request('POST', path, body)
