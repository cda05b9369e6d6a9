#!/usr/bin/env python3
"""Control API and rehomectl against a real rehomed.

Starts rehomed with a generated config (SIP on udp 127.0.0.1, control API
on 127.0.0.1, free ports of REHOME_TEST_PORTS), checks the HTTP API with
urllib and the command line client, then stops rehomed with SIGTERM and
expects exit status 0. Long operations (jobs) are checked against a small
fake control server on 127.0.0.1, because serving them is the re-home
module's job.

Environment: REHOMED, REHOMECTL (default build/rehomed, build/rehomectl).
"""
import http.server
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

from harness import REHOMECTL, REHOMED, free_port
from harness import metrics as hm

SIP_PORT = free_port()
CTL_PORT = free_port()
FAKE_PORT = free_port()
DEAD_PORT = free_port()      # nothing listens here
MUTE_PORT = free_port()      # accepts connections, never answers
CTL = "127.0.0.1:%d" % CTL_PORT
TOKEN = secrets.token_hex(16)
NODE = "ctl-it"
STARTED = 0.0                # when rehomed was started (time.time())

results = {"passed": 0, "failed": 0}


def check(name, fn):
    try:
        fn()
    except Exception:  # any failure, assertion or not, fails the check
        results["failed"] += 1
        print("FAIL", name)
        traceback.print_exc()
    else:
        results["passed"] += 1
        print("ok  ", name)


def request(path, token=TOKEN, method="GET", data=None, port=CTL_PORT):
    """(status, headers, body bytes) of one request; errors included."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 method=method, data=data)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def http_json(path, **kw):
    status, headers, body = request(path, **kw)
    assert headers["Content-Type"].startswith("application/json"), headers
    return status, headers, json.loads(body)


def ctl(*args, token=TOKEN, server=CTL, env_token=None, timeout=15):
    argv = [REHOMECTL, "-s", server]
    if token is not None:
        argv += ["-t", token]
    env = dict(os.environ)
    env.pop("REHOME_TOKEN", None)
    if env_token is not None:
        env["REHOME_TOKEN"] = env_token
    return subprocess.run(argv + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_port(port, deadline_s=5.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


# ---- the real node ----

def t_status():
    status, _, od = http_json("/v1/status")
    assert status == 200, status
    assert od["node_id"] == NODE, od
    assert isinstance(od["version"], str) and od["version"], od
    assert isinstance(od["uptime"], int) and od["uptime"] >= 0, od
    d = od["dialogs"]
    assert d["total"] == 0 and d["served"] == 0 and d["replicas"] == 0, d
    assert d["early"] == 0 and d["confirmed"] == 0, d
    assert d["by_shtag"] == {}, d


def t_dialogs():
    status, _, od = http_json("/v1/dialogs")
    assert status == 200, status
    assert od == {"dialogs": [], "count": 0, "truncated": False}, od
    status, _, od = http_json("/v1/dialogs?tag=service&limit=5")
    assert status == 200 and od["dialogs"] == [], (status, od)


def t_dialogs_bad_limit():
    for q in ("limit=0", "limit=x", "limit=10001"):
        status, _, od = http_json("/v1/dialogs?" + q)
        assert status == 400, (q, status)
        assert "limit" in od["error"], od


def t_metrics():
    status, headers, body = request("/metrics")
    assert status == 200, status
    assert headers["Content-Type"].startswith("text/plain"), headers
    text = body.decode()
    problems = hm.lint(text)
    assert not problems, "\n".join(problems)
    for line in ("# TYPE rehome_sip_requests_received_total counter",
                 "# TYPE rehome_dialogs gauge",
                 "# TYPE rehome_calls_total counter",
                 "# TYPE rehome_calls_rehomed_total counter",
                 "# TYPE rehome_call_rehome_duration_seconds histogram",
                 "rehome_calls_total 0",
                 'rehome_sip_requests_received_total{method="INVITE"} 0'):
        assert line in text.splitlines(), line
    # a single node: nothing of Redis, replication, tags or nodes
    m = hm.Metrics(text)
    for name in m.types:
        assert not name.startswith(("rehome_redis_", "rehome_repl_",
                                    "rehome_shtag_", "rehome_cluster_",
                                    "rehome_dialogs_unprotected")), name


def t_metrics_process():
    """process_* as Prometheus' client libraries name them, plausible."""
    m = hm.Metrics(request("/metrics")[2].decode())
    now = time.time()
    for name in ("process_cpu_seconds_total", "process_open_fds",
                 "process_max_fds", "process_resident_memory_bytes",
                 "process_virtual_memory_bytes",
                 "process_start_time_seconds"):
        assert name in m.types, name
    start = m.value("process_start_time_seconds")
    assert STARTED - 1 <= start <= now, (STARTED, start, now)
    cpu = m.value("process_cpu_seconds_total")
    assert 0 <= cpu <= now - STARTED + 1, cpu
    rss = m.value("process_resident_memory_bytes")
    assert 1 << 20 < rss < 1 << 30, rss
    assert m.value("process_virtual_memory_bytes") >= rss
    fds = m.value("process_open_fds")
    assert 4 <= fds < m.value("process_max_fds"), fds
    # one more connection to the control API is one more fd
    with socket.create_connection(("127.0.0.1", CTL_PORT)):
        more = hm.Metrics(request("/metrics")[2].decode())
        assert more.value("process_open_fds") > fds, more.text


def sample(text, line_start):
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def t_metrics_sip():
    """An OPTIONS to the engine moves the request and response counters."""
    req_name = 'rehome_sip_requests_received_total{method="OPTIONS"}'
    resp_name = 'rehome_sip_responses_sent_total{code="200"}'
    before = request("/metrics")[2].decode()
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.bind(("127.0.0.1", port))
        s.sendto(("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
                  "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKctl1\r\n"
                  "Max-Forwards: 70\r\n"
                  "From: <sip:probe@127.0.0.1>;tag=p1\r\n"
                  "To: <sip:127.0.0.1:%d>\r\n"
                  "Call-ID: ctl-metrics-1\r\n"
                  "CSeq: 1 OPTIONS\r\n"
                  "Content-Length: 0\r\n\r\n" % (SIP_PORT, port, SIP_PORT))
                 .encode(), ("127.0.0.1", SIP_PORT))
        reply = s.recv(4096).decode()
    assert reply.startswith("SIP/2.0 200"), reply
    after = request("/metrics")[2].decode()
    assert sample(after, req_name) == sample(before, req_name) + 1, after
    assert sample(after, resp_name) == sample(before, resp_name) + 1, after


def t_auth():
    for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
        for path in ("/v1/status", "/v1/dialogs", "/metrics", "/nope"):
            status, headers, body = request(path, token=token)
            assert status == 401, (token, path, status)
            assert json.loads(body) == {"error": "bad or missing token"}
            assert headers["WWW-Authenticate"].startswith("Bearer"), headers


def t_not_found():
    status, _, od = http_json("/v1/nope")
    assert status == 404, status
    assert "error" in od and "/v1/nope" in od["error"], od
    status, _, od = http_json("/v1/status/extra")
    assert status == 404, status


def t_wrong_method():
    status, headers, od = http_json("/v1/status", method="POST", data=b"{}")
    assert status == 405, status
    assert headers["Allow"] == "GET", headers
    assert "error" in od, od


def t_ctl_status_human():
    r = ctl("status")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert "node_id" in r.stdout and NODE in r.stdout, r.stdout
    assert "dialogs" in r.stdout, r.stdout


def t_ctl_status_json():
    r = ctl("--json", "status")
    assert r.returncode == 0, (r.returncode, r.stderr)
    od = json.loads(r.stdout)
    assert od["node_id"] == NODE and od["dialogs"]["total"] == 0, od


def t_ctl_env_token():
    r = ctl("status", "--json", token=None, env_token=TOKEN)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert json.loads(r.stdout)["node_id"] == NODE


def t_ctl_dialogs():
    r = ctl("dialogs", "--tag", "service", "--limit", "3")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert "no dialogs" in r.stdout, r.stdout
    r = ctl("dialogs", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["count"] == 0, r


def t_ctl_wrong_token():
    for kw in ({"token": "wrong"}, {"token": None}):
        r = ctl("status", **kw)
        assert r.returncode == 1, (kw, r.returncode)
        assert "bad or missing token" in r.stderr, r.stderr
        assert r.stdout == "", r.stdout


def t_ctl_unreachable():
    r = ctl("status", server="127.0.0.1:%d" % DEAD_PORT)
    assert r.returncode == 1, r.returncode
    assert "cannot reach rehomed at 127.0.0.1:%d" % DEAD_PORT in r.stderr, \
        r.stderr


def t_ctl_timeout():
    mute = socket.socket()
    mute.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    mute.bind(("127.0.0.1", MUTE_PORT))
    mute.listen(4)
    try:
        start = time.monotonic()
        r = ctl("status", server="127.0.0.1:%d" % MUTE_PORT)
        took = time.monotonic() - start
    finally:
        mute.close()
    assert r.returncode == 1, r.returncode
    assert "cannot reach" in r.stderr and "timed out" in r.stderr, r.stderr
    assert 4.5 < took < 8, took


def t_ctl_usage():
    cases = [[], ["bogus"], ["status", "extra"], ["status", "--tag", "a"],
             ["dialogs", "--limit", "0"], ["shtag", "activate"],
             ["shtag", "take", "a"], ["move", "a", "--to", "n2"],
             ["move", "a", "--count", "3"],
             ["move", "a", "--to", "n2", "--count", "1", "--percent", "5"],
             ["rehome", "a", "--mode", "sideways"],
             ["rehome", "a", "--body", "maybe"],
             ["rehome", "a/b"], ["--nope", "status"]]
    for args in cases:
        r = ctl(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert "usage: rehomectl" in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    r = subprocess.run([REHOMECTL, "-s", "nonsense", "status"],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 2 and "bad server address" in r.stderr, r


# ---- jobs, against a fake control server ----

class FakeNode(http.server.BaseHTTPRequestHandler):
    """rehome/move/drain answer a job; each poll advances it a third."""
    jobs = {}
    posts = []

    def log_message(self, *args):
        pass

    def reply(self, status, od):
        body = json.dumps(od).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        if self.headers.get("Authorization") == "Bearer " + TOKEN:
            return True
        self.reply(401, {"error": "bad or missing token"})
        return False

    def do_POST(self):
        if not self.authorized():
            return
        n = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(n) or b"{}")
        FakeNode.posts.append((self.path, body))
        if body.get("tag") == "nosuch":
            return self.reply(404, {"error": "unknown sharing tag 'nosuch'"})
        fail = 1 if body.get("tag") == "flaky" else 0
        job = {"job": len(FakeNode.jobs) + 1, "state": "running",
               "total": 9, "moved": 0, "failed": 0, "reasons": {},
               "_fail": fail}
        if body.get("tag") == "broken":
            job.update(state="done", total=0, error="redis is down")
        FakeNode.jobs[str(job["job"])] = job
        self.reply(202, {k: v for k, v in job.items() if k[0] != "_"})

    def do_GET(self):
        if not self.authorized():
            return
        job = FakeNode.jobs.get(self.path.rsplit("/", 1)[-1])
        if not self.path.startswith("/v1/jobs/") or not job:
            return self.reply(404, {"error": "no such job"})
        done = job["moved"] + job["failed"] + 3
        job["failed"] = job["_fail"] if done >= 9 else 0
        job["moved"] = min(done, 9) - job["failed"]
        if done >= 9:
            job["state"] = "done"
            if job["failed"]:
                job["reasons"] = {"timeout": job["failed"]}
        self.reply(200, {k: v for k, v in job.items() if k[0] != "_"})


def fake(*args, **kw):
    return ctl(*args, server="127.0.0.1:%d" % FAKE_PORT, **kw)


def t_job_done():
    FakeNode.posts.clear()
    r = fake("rehome", "svc", "--mode", "challenge-callee", "--body", "none",
             "--rate", "50")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert "rehome svc: 9 moved, 0 failed, of 9" in r.stdout, r.stdout
    assert FakeNode.posts == [("/v1/rehome", {
        "tag": "svc", "mode": "challenge-callee", "body": "none",
        "rate": 50})], FakeNode.posts


def t_job_failed():
    r = fake("move", "flaky", "--to", "n2", "--percent", "30")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "8 moved, 1 failed, of 9" in r.stdout, r.stdout
    assert "timeout" in r.stdout, r.stdout
    assert FakeNode.posts[-1] == ("/v1/move", {
        "tag": "flaky", "to": "n2", "percent": 30}), FakeNode.posts


def t_job_json():
    r = fake("--json", "drain", "--to", "n3")
    assert r.returncode == 0, (r.returncode, r.stderr)
    od = json.loads(r.stdout)
    assert od["state"] == "done" and od["moved"] == 9, od
    assert FakeNode.posts[-1] == ("/v1/drain", {"to": "n3"}), FakeNode.posts


def t_job_error():
    r = fake("rehome", "broken")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "error: redis is down" in r.stdout, r.stdout


def t_unknown_tag():
    r = fake("rehome", "nosuch")
    assert r.returncode == 1, r.returncode
    assert "unknown sharing tag 'nosuch'" in r.stderr, r.stderr


def main():
    tmp = tempfile.mkdtemp(prefix="rehome-ctl-")
    conf = os.path.join(tmp, "rehome.conf")
    with open(conf, "w") as f:
        f.write("node_id %s\n"
                "listen udp:127.0.0.1:%d tag=public\n"
                "ctl_listen %s\n"
                "ctl_token %s\n"
                "log_level info\n" % (NODE, SIP_PORT, CTL, TOKEN))

    log = open(os.path.join(tmp, "rehomed.log"), "w+")
    global STARTED
    STARTED = time.time()
    node = subprocess.Popen([REHOMED, "-c", conf], stdout=log, stderr=log)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", FAKE_PORT),
                                             FakeNode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_port(CTL_PORT)
        for name, fn in sorted(globals().items()):
            if name.startswith("t_") and callable(fn):
                check(name[2:], fn)

        def t_sigterm():
            node.send_signal(signal.SIGTERM)
            assert node.wait(timeout=5) == 0, node.returncode
        check("sigterm", t_sigterm)
    finally:
        server.shutdown()
        server.server_close()
        if node.poll() is None:
            node.kill()
            node.wait(timeout=5)
        log.seek(0)
        if results["failed"]:
            print("--- rehomed log ---\n" + log.read())
        log.close()

    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
