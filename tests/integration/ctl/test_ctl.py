#!/usr/bin/env python3
"""Control API and rehomectl against a real rehomed.

Starts rehomed with a generated config (SIP on udp 127.0.0.1, control API
on 127.0.0.1, free ports of REHOME_TEST_PORTS), checks the HTTP API with
urllib and the command line client, then stops rehomed with SIGTERM and
expects exit status 0. Following long operations (progress, failed
dialogs) is checked against a small fake control server on 127.0.0.1.
Commands about calls (dialogs, dialog show/end) run against calls made
with sipp, and those that need a cluster (drain, undrain, jobs of a
drain, a replica's dialog) against two nodes and a Redis, each in a
harness context of its own (tests/integration/harness).

Environment: REHOMED, REHOMECTL (default build/rehomed, build/rehomectl).
"""
import http.server
import json
import os
import re
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

import harness as h
from harness import REHOMECTL, REHOMED, free_port
from harness import nodes
from harness import metrics as hm

SIP_PORT = free_port()
CTL_PORT = free_port()
FAKE_PORT = free_port()
DEAD_PORT = free_port()      # nothing listens here
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
    end = time.monotonic() + h.slow(deadline_s)
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
    assert od["synced"] is True, od   # a single node always is
    d = od["dialogs"]
    assert d["total"] == 0 and d["served"] == 0 and d["replicas"] == 0, d
    assert d["early"] == 0 and d["confirmed"] == 0, d
    assert d["by_shtag"] == {}, d


def t_dialogs():
    status, _, od = http_json("/v1/dialogs")
    assert status == 200, status
    assert isinstance(od.pop("now"), int), od
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
        assert r.stderr.startswith("rehomectl: %s GET /v1/status: 401 bad "
                                   "or missing token" % CTL), r.stderr
        assert r.stdout == "", r.stdout


def t_ctl_unreachable():
    r = ctl("status", server="127.0.0.1:%d" % DEAD_PORT)
    assert r.returncode == 1, r.returncode
    assert r.stderr.startswith("rehomectl: 127.0.0.1:%d GET /v1/status: "
                               "cannot reach rehomed: " % DEAD_PORT), r.stderr


def t_ctl_timeout():
    mute = socket.socket()     # accepts connections, never answers
    mute.bind(("127.0.0.1", 0))  # any port: a test port may be in use by
    mute.listen(4)               # then (an outgoing connection's)
    try:
        start = time.monotonic()
        r = ctl("status", server="127.0.0.1:%d" % mute.getsockname()[1])
        took = time.monotonic() - start
    finally:
        mute.close()
    assert r.returncode == 1, r.returncode
    assert "cannot reach" in r.stderr and "timed out" in r.stderr, r.stderr
    assert 4.5 < took < 5 + h.slow(3), took


DID = "0123456789abcdef"     # a well-formed dialog id no node has


def t_ctl_usage():
    """Bad usage: exit 2, no call, the problem and the usage of the
    command at fault (the whole help only without a command)."""
    cases = [["bogus"], ["status", "extra"], ["status", "--tag", "a"],
             ["dialogs", "--limit", "0"], ["shtag", "activate"],
             ["shtag", "take", "a"], ["move", "a", "--to", "n2"],
             ["move", "a", "--count", "3"],
             ["move", "a", "--to", "n2", "--count", "1", "--percent", "5"],
             ["rehome", "a", "--mode", "sideways"],
             ["rehome", "a", "--body", "maybe"],
             ["rehome", "a/b"], ["--nope", "status"],
             ["dialog"], ["dialog", "show"], ["dialog", "show", "xyz"],
             ["dialog", "end", DID + "0"], ["dialog", "kill", DID],
             ["dialog", "show", DID, "--tag", "a"],
             ["log-level"], ["log-level", "loud"], ["undrain", "now"],
             ["jobs", "--to", "n2"], ["reload", "all"], ["version", "2"],
             ["help", "me"]]
    for args in cases:
        r = ctl(*args, server="127.0.0.1:%d" % DEAD_PORT)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) >= 2 and lines[0].startswith("rehomectl: "), \
            (args, r.stderr)
        assert lines[1].startswith("usage: rehomectl "), (args, r.stderr)
        assert "commands:" not in r.stderr, (args, "whole help dumped")
        assert "cannot reach" not in r.stderr, (args, "a call was made")
        assert r.stdout == "", (args, r.stdout)
    r = ctl("dialog", "show", "xyz")
    assert "bad dialog id 'xyz'" in r.stderr, r.stderr
    assert "usage: rehomectl dialog show DID" in r.stderr, r.stderr
    r = ctl("log-level", "loud")
    assert r.stderr.splitlines() == [
        "rehomectl: unknown log level 'loud'",
        "usage: rehomectl log-level LEVEL"], r.stderr
    r = ctl()
    assert r.returncode == 2 and "commands:" in r.stderr, r
    r = subprocess.run([REHOMECTL, "-s", "nonsense", "status"],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 2 and "bad server address" in r.stderr, r


# every command of rehomectl, as its help lists them
COMMANDS = ["status", "dialogs [--tag T] [--limit N]", "dialog show DID",
            "dialog end DID", "shtag activate T", "shtag release T",
            "rehome T", "move T --to NODE", "drain [--to NODE]", "undrain",
            "jobs", "policy reload", "reload", "log-level LEVEL", "version",
            "help"]


def t_ctl_help():
    for args in (["help"], ["--help"], ["-h"], ["status", "-h"]):
        r = ctl(*args, server="127.0.0.1:%d" % DEAD_PORT)
        assert r.returncode == 0 and r.stderr == "", (args, r)
        listed = [ln.strip() for ln in r.stdout.splitlines()]
        for cmd in COMMANDS:
            assert any(ln.startswith(cmd) for ln in listed), (args, cmd)
        assert "exit status: 0 success, 1 failed operation, 2 bad usage" \
            in r.stdout, r.stdout


def t_ctl_version():
    version = http_json("/v1/status")[2]["version"]
    r = ctl("version")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout.splitlines() == [
        "rehomectl %s" % version,
        "rehomed %s (node %s at %s)" % (version, NODE, CTL)], r.stdout
    r = ctl("version", "--json")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert json.loads(r.stdout) == {"rehomectl": version, "rehomed": version,
                                    "node_id": NODE}, r.stdout
    dead = "127.0.0.1:%d" % DEAD_PORT
    r = ctl("version", server=dead)
    assert r.returncode == 1, r.returncode
    assert r.stdout == "rehomectl %s\n" % version, r.stdout
    assert r.stderr.startswith("rehomectl: %s GET /v1/status: cannot reach"
                               % dead), r.stderr
    r = ctl("--json", "version", server=dead)
    assert r.returncode == 1 and json.loads(r.stdout) == {
        "rehomectl": version}, r


def t_ctl_log_level():
    r = ctl("log-level", "debug")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout == "log level debug\n", r.stdout
    r = ctl("--json", "log-level", "warn")
    assert r.returncode == 0 and json.loads(r.stdout) == {"level": "warn"}, r
    r = ctl("log-level", "info")
    assert r.returncode == 0, r
    r = ctl("log-level", "info", token="wrong")
    assert r.returncode == 1, r.returncode
    assert r.stderr.startswith("rehomectl: %s POST /v1/log_level: 401 "
                               % CTL), r.stderr


def t_ctl_no_cluster():
    """On a single node, commands that need a cluster say so plainly."""
    for args, path in ((["shtag", "activate", "service"],
                        "/v1/shtags/service/activate"),
                       (["shtag", "release", "service"],
                        "/v1/shtags/service/release"),
                       (["move", "service", "--to", "n2", "--count", "1"],
                        "/v1/move"),
                       (["drain"], "/v1/drain"),
                       (["drain", "--to", "n2"], "/v1/drain")):
        r = ctl(*args)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert r.stderr == ("rehomectl: %s POST %s: no cluster (this node "
                            "runs without redis)\n" % (CTL, path)), \
            (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)


def t_ctl_undrain_single():
    r = ctl("undrain")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout == "not draining: new calls are taken\n", r.stdout
    r = ctl("undrain", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {"draining": False,
                                    "was_draining": False}, r.stdout


def t_ctl_jobs():
    r = ctl("jobs")
    assert r.returncode == 0, (r.returncode, r.stderr)
    before = json.loads(ctl("--json", "jobs").stdout)["jobs"]
    r = ctl("rehome", "service")
    assert r.returncode == 0, (r.returncode, r.stderr)
    r = ctl("--json", "jobs")
    assert r.returncode == 0, r
    jobs = json.loads(r.stdout)["jobs"]
    assert len(jobs) == len(before) + 1, jobs
    job = jobs[-1]
    assert job["kind"] == "rehome" and job["tag"] == "service", job
    assert job["state"] == "done", job
    r = ctl("jobs")
    assert r.returncode == 0, r
    assert r.stdout.split("\n")[0].split() == [
        "JOB", "KIND", "STATE", "TAG", "NODE", "PROGRESS", "MOVED", "FAILED",
        "ENDED", "ELAPSED", "ERROR"], r.stdout
    row = table(r.stdout)[-1]
    assert row == dict(row, JOB=str(job["job"]), KIND="rehome", STATE="done",
                       TAG="service", NODE="-", PROGRESS="0/0 100%",
                       ERROR=""), row


def t_dialog_api():
    status, _, od = http_json("/v1/dialogs/" + DID)
    assert status == 404 and DID in od["error"], (status, od)
    for path in ("/v1/dialogs/xyz", "/v1/dialogs/" + DID + "/x",
                 "/v1/dialogs/"):
        status, _, od = http_json(path)
        assert status == 404, (path, status)
        status, _, od = http_json(path, method="DELETE")
        assert status == 404, (path, status)
    status, headers, od = http_json("/v1/dialogs/" + DID, method="POST",
                                    data=b"{}")
    assert status == 405, status
    assert set(headers["Allow"].split(", ")) == {"GET", "DELETE"}, headers
    status, _, od = http_json("/v1/dialogs")
    assert abs(od["now"] / 1000 - time.time()) < 5, od


def t_ctl_dialog_missing():
    for sub, method in (("show", "GET"), ("end", "DELETE")):
        r = ctl("dialog", sub, DID)
        assert r.returncode == 1, (sub, r.returncode)
        assert r.stderr == ("rehomectl: %s %s /v1/dialogs/%s: 404 no such "
                            "dialog: %s\n" % (CTL, method, DID, DID)), \
            r.stderr
        assert r.stdout == "", r.stdout


def t_ctl_reload():
    """POST /v1/reload: what the CLI says depends on the node having it."""
    status, _, od = http_json("/v1/reload", method="POST", data=b"{}")
    r = ctl("reload")
    if status == 404:       # a node without config reload
        assert r.returncode == 1, r
        assert r.stderr.startswith("rehomectl: %s POST /v1/reload: 404 "
                                   % CTL), r.stderr
    else:
        assert status == 200, (status, od)
        assert r.returncode == 0, (r.returncode, r.stderr)
        r = ctl("--json", "reload")
        assert r.returncode == 0 and isinstance(json.loads(r.stdout), dict)


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
    assert r.stderr == ("rehomectl: 127.0.0.1:%d POST /v1/rehome: 404 "
                        "unknown sharing tag 'nosuch'\n" % FAKE_PORT), r.stderr


# ---- calls and a cluster, each test in a harness context of its own ----

def in_ctx(fn):
    """Run fn(ctx) in a fresh harness context; what went wrong with its
    processes (a crash, a sanitizer report) fails the test too."""
    def run():
        ctx = h.Ctx(fn.__name__)
        try:
            fn(ctx)
        except Exception:
            print(ctx.report())
            raise
        finally:
            problems = ctx.close()
        assert not problems, problems
    run.__name__ = fn.__name__
    return run


def node_ctl(node, *args):
    return ctl(*args, token=node.token, server=node.ctl_addr)


def dialog_list(node):
    r = node_ctl(node, "--json", "dialogs")
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def table(stdout):
    """[{COLUMN: cell}] of a table rehomectl printed: each column starts
    where its header does."""
    head, *rows = stdout.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", head)]
    ends = starts[1:] + [None]
    return [{head[a:b].strip(): row[a:b].strip()
             for a, b in zip(starts, ends)} for row in rows]


@in_ctx
def t_call_dialog_show_end(ctx):
    """A call: listed with its age, shown, ended by rehomectl (a BYE to
    each leg, both end well); ending it again is a 404 naming the path."""
    rh, uac, uas = ctx.proxied("uac_wait_bye.xml", "uas.xml",
                               caller={"timeout": 20},
                               callee={"timeout": 20})
    uas.start()
    uac.start()
    assert h.wait_until(lambda: rh.dialog_counts()["confirmed"] == 1, 5), \
        rh.dialog_counts()
    time.sleep(1.0)

    listing = dialog_list(rh)
    dlg, = listing["dialogs"]
    did = dlg["did"]
    assert listing["now"] - dlg["created"] >= 1000, listing

    r = node_ctl(rh, "dialogs")
    assert r.returncode == 0, r
    row, = table(r.stdout)
    assert row["DID"] == did and row["SERVED"] == "here", row
    assert row["STATE"] == "confirmed" and row["OWNER"] == "node1", row
    age = float(row["AGE"].rstrip("s"))
    assert 1.0 <= age < 30, row

    r = node_ctl(rh, "dialog", "show", did)
    assert r.returncode == 0, r
    assert "callid     %s" % dlg["callid"] in r.stdout, r.stdout
    assert "state      confirmed" in r.stdout, r.stdout
    r = node_ctl(rh, "--json", "dialog", "show", did)
    assert r.returncode == 0, r
    shown = json.loads(r.stdout)
    assert shown["did"] == did and shown["legs"] == dlg["legs"], shown

    r = node_ctl(rh, "dialog", "end", did)
    assert r.returncode == 0, r
    assert r.stdout == "dialog %s ended: BYE sent to both legs\n" % did, r
    caller, callee = uac.result(timeout=10), uas.result(timeout=10)
    assert caller.ok, caller.why()
    assert callee.ok, callee.why()
    assert len(caller.select("received", "BYE")) == 1
    assert len(callee.select("received", "BYE")) == 1
    assert "ended through the control API" in rh.log()
    assert rh.active_dialogs() == 0, rh.dialog_counts()

    r = node_ctl(rh, "dialog", "end", did)
    assert r.returncode == 1, r
    assert r.stderr == ("rehomectl: %s DELETE /v1/dialogs/%s: 404 no such "
                        "dialog: %s\n" % (rh.ctl_addr, did, did)), r.stderr


@in_ctx
def t_call_early_not_ended(ctx):
    """A ringing call is no BYE's to end: 409, and it keeps ringing."""
    callee = ctx.udp(h.CALLEE_IP)
    rh = ctx.rehomed(upstream="udp:%s:%d" % (callee.ip, callee.port))
    caller = ctx.udp(h.CALLER_IP)
    caller.send(caller.request("INVITE", "sip:bob@%s" % rh.sip_addr),
                rh.sip_addr)
    assert any(m.method == "INVITE" for m in callee.recv(3.0)), \
        "the INVITE did not reach the callee"
    did = dialog_list(rh)["dialogs"][0]["did"]

    r = node_ctl(rh, "dialog", "end", did)
    assert r.returncode == 1, r
    assert r.stderr == ("rehomectl: %s DELETE /v1/dialogs/%s: 409 dialog %s "
                        "is not answered yet\n" % (rh.ctl_addr, did, did)), \
        r.stderr
    assert rh.dialog_counts()["early"] == 1, rh.dialog_counts()


def probe_invite(ctx, node, callee):
    """An INVITE to node for callee (a UdpPeer): the node's final answer
    (a draining node's 503), or None once the callee got the INVITE,
    which it turns down (486) so that no call is left ringing."""
    caller = ctx.udp(h.CALLER_IP)
    caller.send(caller.request("INVITE", "sip:bob@%s:%d" % (callee.ip,
                                                           callee.port)),
                node.sip_addr)
    final = [m for m in caller.recv(2.0) if m.status and m.status >= 200]
    if final:
        return final[0].status
    invite = [m for m in callee.recv(2.0) if m.method == "INVITE"]
    assert invite, "INVITE neither refused nor relayed"
    inv = invite[0]
    busy = ["SIP/2.0 486 Busy Here"]
    busy += ["Via: %s" % v for v in inv.header_all("Via")]
    busy += ["From: %s" % inv.header("From"),
             "To: %s;tag=busy" % inv.header("To"),
             "Call-ID: %s" % inv.call_id,
             "CSeq: %d INVITE" % inv.cseq[0], "Content-Length: 0"]
    callee.send("\r\n".join(busy) + "\r\n\r\n", node.sip_addr)
    assert any(m.status == 486 for m in caller.recv(2.0)), "no 486 relayed"
    return None


@in_ctx
def t_cluster_drain_undrain(ctx):
    """Two nodes: a replica's dialog is shown but ended only where it is
    served; drain shows up in jobs; undrain takes calls again; a node
    restarted after a drain comes back undrained."""
    uas = ctx.sipp("uas.xml", ip=h.CALLEE_IP, calls=1, timeout=40)
    node1, node2 = nodes.cluster(ctx, None)   # the Request-URI routes
    uas.start()
    uac = ctx.sipp("uac_wait_bye.xml", ip=h.CALLER_IP,
                   remote=node1.sip_addr, timeout=40,
                   ruri="sip:bob@%s:%d" % (uas.ip, uas.port))
    uac.start()
    nodes.wait_confirmed(node1, 1)
    assert h.wait_until(lambda: nodes.replicas(node2) == 1, 5)
    did = dialog_list(node1)["dialogs"][0]["did"]

    row, = table(node_ctl(node1, "dialogs").stdout)
    assert row["SERVED"] == "here" and row["OWNER"] == "node1", row
    row, = table(node_ctl(node2, "dialogs").stdout)
    assert row["SERVED"] == "replica" and row["OWNER"] == "node1", row
    assert dialog_list(node2)["dialogs"][0]["replica"] is True

    r = node_ctl(node2, "dialog", "show", did)
    assert r.returncode == 0 and "replica    yes" in r.stdout, r
    r = node_ctl(node2, "dialog", "end", did)
    assert r.returncode == 1, r
    assert r.stderr == ("rehomectl: %s DELETE /v1/dialogs/%s: 409 dialog %s "
                        "is served by node1: end it there\n" % (
                            node2.ctl_addr, did, did)), r.stderr

    r = node_ctl(node1, "move", "service", "--to", "node9", "--count", "1")
    assert r.returncode == 1, r
    assert r.stderr == ("rehomectl: %s POST /v1/move: 404 no such node: "
                        "node9\n" % node1.ctl_addr), r.stderr

    # drain node1: the call moves to node2, the job is listed with it
    r = node_ctl(node1, "drain", "--to", "node2")
    assert r.returncode == 0, r
    assert "drain: 1 moved, 0 failed, of 1" in r.stdout, r.stdout
    jobs = json.loads(node_ctl(node1, "--json", "jobs").stdout)["jobs"]
    job = jobs[-1]
    assert (job["kind"], job["state"], job["to"], job["moved"]) == \
        ("drain", "done", "node2", 1), job
    row = table(node_ctl(node1, "jobs").stdout)[-1]
    assert row == dict(row, KIND="drain", STATE="done", TAG="-",
                       NODE="node2", PROGRESS="1/1 100%", MOVED="1",
                       FAILED="0"), row
    assert nodes.status(node1)["rehome"]["draining"] is True
    assert h.wait_until(lambda: nodes.node_state(node2, "node1") ==
                        "draining", 3)
    callee = ctx.udp(h.CALLEE_IP)
    assert probe_invite(ctx, node1, callee) == 503

    # the call is node2's now: ended there
    assert h.wait_until(lambda: dialog_list(node2)["dialogs"] and not
                        dialog_list(node2)["dialogs"][0]["replica"], 5)
    r = node_ctl(node2, "--json", "dialog", "end", did)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["state"] == "ended", r.stdout
    caller = uac.result(timeout=10)
    assert caller.ok, caller.why()
    assert uas.result(timeout=10).ok

    r = node_ctl(node1, "undrain")
    assert r.returncode == 0, r
    assert r.stdout == "undrained: new calls are taken again\n", r.stdout
    r = node_ctl(node1, "--json", "undrain")
    assert json.loads(r.stdout) == {"draining": False,
                                    "was_draining": False}, r.stdout
    assert nodes.status(node1)["rehome"]["draining"] is False
    assert h.wait_until(lambda: nodes.node_state(node2, "node1") == "up", 3)
    assert probe_invite(ctx, node1, callee) is None
    assert h.wait_until(lambda: node1.active_dialogs() == 0, 3), \
        node1.dialog_counts()

    # drained again, then restarted: undrained
    r = node_ctl(node1, "drain", "--to", "node2")
    assert r.returncode == 0, r
    assert nodes.status(node1)["rehome"]["draining"] is True
    node1.stop()
    node1.start()

    def back():
        try:
            return nodes.synced(node1, 2)
        except OSError:         # not listening yet: the log is appended
            return False        # to, so start() saw the first run's line
    assert h.wait_until(back, 10), "node1 did not come back"
    assert nodes.status(node1)["rehome"]["draining"] is False
    assert h.wait_until(lambda: nodes.node_state(node2, "node1") == "up", 3)


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
            assert node.wait(timeout=h.slow(5)) == 0, node.returncode
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
