#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""msce-mef's admin API ([admin] listen) over real TLS, checked against its OpenAPI description.

Makes an operators' CA, the admin server's certificate, an operator's client certificate
(CN alice), one from the same CA whose CN is no valid operator name, and one from another CA
(openssl). Starts msce-mef with [admin] on port 0, then:
- no client certificate, a certificate of another CA, and a PSK ClientHello (openssl s_client
  -psk, and msce-loadgen: the gateways' own stack) get no HTTP answer at all; a certificate
  whose CN is not an operator name gets 403;
- calls every operation of docs/admin-api.openapi.json with Python's ssl (OpenSSL: a stack
  msce did not write) and validates each answer's status and body against the description;
- checks that every documented operation was called, that an undocumented path is 404, that
  no answer carries a key, and that the audit trail names api:alice for each change;
- adds a node through the API, then enrols it with msce-loadgen (real PSK exchanges);
- with rows written into the store as the server would: a node's 1001 enrolments come as the
  newest 1000 and where the rest go on; an export of MBs read by a client that first waits
  past [store] busy_timeout arrives whole (request_timeout bounds its writing).
Usage: mef-admin.py BUILDDIR [OPENAPI_JSON]. TAP; skips (1..0 # SKIP) without openssl.
"""
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
SPEC = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../docs/admin-api.openapi.json")
MEF = os.path.join(BUILD, "msce-mef")
LOADGEN = os.path.join(BUILD, "msce-loadgen")
N = 0


def ok(what):
    global N
    N += 1
    print(f"ok {N} - {what}", flush=True)


def fail(what):
    global N
    N += 1
    print(f"not ok {N} - {what}", flush=True)
    print(f"1..{N}")
    sys.exit(1)


def check(cond, what, detail=""):
    if not cond:
        fail(f"{what}{': ' + str(detail) if detail else ''}")
    ok(what)


if not shutil.which("openssl"):
    print("1..0 # SKIP openssl is missing")
    sys.exit(0)
for p in (MEF, LOADGEN):
    if not os.access(p, os.X_OK):
        print(f"1..0 # SKIP {p} not built")
        sys.exit(0)

T = tempfile.mkdtemp(prefix="msce-mef-admin.")
os.chmod(T, 0o700)
mef = None


def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def cert(name, ca, cn, ext=None):
    """A P-256 key and a certificate for cn signed by ca (None: self-signed CA)."""
    key, crt = f"{T}/{name}.key", f"{T}/{name}.crt"
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    if ca is None:
        run("openssl", "req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}", "-days", "2", "-out", crt,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    else:
        run("openssl", "req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", f"{T}/{name}.csr")
        with open(f"{T}/{name}.ext", "w") as f:
            f.write(ext or "extendedKeyUsage=clientAuth\n")
        run("openssl", "x509", "-req", "-in", f"{T}/{name}.csr", "-CA", f"{T}/{ca}.crt", "-CAkey", f"{T}/{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", crt, "-extfile", f"{T}/{name}.ext")
    return crt, key


# ---- the spec, and a validator for the part of JSON Schema it uses ----
with open(SPEC) as f:
    spec = json.load(f)


def resolve(s):
    while "$ref" in s:
        s = spec["components"]["schemas"][s["$ref"].rsplit("/", 1)[1]]
    return s


def validate(v, s, where="$"):
    s = resolve(s)
    if v is None:
        if s.get("nullable"):
            return
        raise ValueError(f"{where}: null")
    t = s.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{where}: not an integer")
    elif t and not isinstance(v, types[t]):
        raise ValueError(f"{where}: not {t}")
    if "enum" in s and v not in s["enum"]:
        raise ValueError(f"{where}: {v!r} not in {s['enum']}")
    if t == "object":
        for k in s.get("required", []):
            if k not in v:
                raise ValueError(f"{where}: {k} missing")
        props = s.get("properties", {})
        for k, x in v.items():
            if k in props:
                validate(x, props[k], f"{where}.{k}")
            elif s.get("additionalProperties") is False:
                raise ValueError(f"{where}: {k} not described")
    if t == "array":
        for i, x in enumerate(v):
            validate(x, s["items"], f"{where}[{i}]")


def template_of(path):
    """The spec's path template that path matches, or None."""
    for tpl in spec["paths"]:
        if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", tpl), path.split("?")[0]):
            return tpl
    return None


called = set()
bodies = []
last_headers = {}


def api(method, path, body=None, ctype="application/json", ctx=None, expect=None):
    """One request on its own connection; the answer validated against the spec."""
    c = http.client.HTTPSConnection("127.0.0.1", ADMIN_PORT, context=ctx or CTX, timeout=10)
    headers = {"Content-Type": ctype} if body is not None else {}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read().decode()
    c.close()
    bodies.append(data)
    last_headers.clear()
    last_headers.update({k.lower(): v for k, v in r.getheaders()})
    # every status the API answers has its reason phrase (RFC 9110) on the status line
    if r.reason in ("", "Unknown"):
        fail(f"{method} {path}: status line {r.status} {r.reason!r}")
    tpl = template_of(path)
    if tpl and method.lower() in spec["paths"][tpl]:
        op = spec["paths"][tpl][method.lower()]
        called.add(op["operationId"])
        resp = op["responses"].get(str(r.status))
        if resp is None:
            fail(f"{method} {path}: status {r.status} not described ({data})")
        content = resp.get("content", {})
        ct = (r.getheader("Content-Type") or "").split(";")[0]
        if content:
            if ct not in content:
                fail(f"{method} {path}: Content-Type {ct} not described")
            if ct == "application/json":
                try:
                    validate(json.loads(data), content[ct]["schema"])
                except ValueError as e:
                    fail(f"{method} {path} -> {r.status}: {e}: {data}")
    if expect is not None and r.status != expect:
        fail(f"{method} {path}: status {r.status}, want {expect}: {data}")
    try:
        return r.status, json.loads(data) if r.getheader("Content-Type") == "application/json" else data
    except ValueError:
        fail(f"{method} {path}: not JSON: {data}")


def refused(ctx, what):
    """No HTTP answer at all: the handshake (or the first read after a TLS 1.3 one) fails."""
    try:
        c = http.client.HTTPSConnection("127.0.0.1", ADMIN_PORT, context=ctx, timeout=10)
        c.request("GET", "/admin/v1/nodes")
        r = c.getresponse()
        fail(f"{what}: answered {r.status}")
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, OSError):
        ok(f"{what}: refused in the handshake, nothing served")


try:
    cert("ops-ca", None, "msce test operators")
    cert("rogue-ca", None, "rogue")
    srv = cert("server", "ops-ca", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    alice = cert("alice", "ops-ca", "alice")
    badcn = cert("badcn", "ops-ca", "bad name!")
    mallory = cert("mallory", "rogue-ca", "mallory")
    conf = f"""[server]
listen = 127.0.0.1:0
fqdn = 127.0.0.1
[store]
path = {T}/mef.db
master_key = {T}/master.key
[limits]
enrolments_per_node = 0
[admin]
listen = 127.0.0.1:0
certificate = {srv[0]}
key = {srv[1]}
ca = {T}/ops-ca.crt
"""

    def start(config):
        """msce-mef serve on config; its gateway and admin ports from its stdout."""
        with open(f"{T}/mef.conf", "w") as f:
            f.write(config)
        out = open(f"{T}/mef.out", "w+")
        proc = subprocess.Popen([MEF, "--config", f"{T}/mef.conf", "serve"], stdout=out,
                                stderr=open(f"{T}/mef.err", "a"))
        ports = {}
        deadline = time.monotonic() + 20
        while len(ports) < 2:
            out.seek(0)
            lines = out.read().splitlines()
            for line in lines:
                m = re.match(r"(listening|admin) on 127\.0\.0\.1:(\d+)$", line)
                if m:
                    ports[m.group(1)] = int(m.group(2))
            if proc.poll() is not None or time.monotonic() > deadline:
                fail(f"msce-mef did not start: {open(T + '/mef.err').read()}")
            time.sleep(0.05)  # polling its output for the ports; not a wait for a state
        return proc, ports, out

    mef, ports, out = start(conf)
    GW_PORT, ADMIN_PORT = ports["listening"], ports["admin"]
    ok(f"msce-mef serves the gateways on {GW_PORT} and the admin API on {ADMIN_PORT}")

    def ctx_with(client):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(f"{T}/ops-ca.crt")
        if client:
            c.load_cert_chain(*client)
        return c

    CTX = ctx_with(alice)

    # ---- who gets nothing ----
    refused(ctx_with(None), "a client without a certificate")
    refused(ctx_with(mallory), "a client certificate of another CA")
    s = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{ADMIN_PORT}", "-psk_identity", "gw-1",
                        "-psk", "00112233445566778899aabbccddeeff", "-tls1_3", "-ign_eof"],
                       input="GET /admin/v1/nodes HTTP/1.1\r\nHost: x\r\n\r\n", capture_output=True, text=True,
                       timeout=20)
    check(s.returncode != 0 and "HTTP/1.1" not in s.stdout, "a TLS 1.3 PSK ClientHello (openssl s_client -psk) is refused",
          s.stdout[-300:])
    s = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{ADMIN_PORT}", "-psk_identity", "gw-1",
                        "-psk", "00112233445566778899aabbccddeeff", "-tls1_2", "-cipher", "PSK", "-ign_eof"],
                       input="GET /admin/v1/nodes HTTP/1.1\r\nHost: x\r\n\r\n", capture_output=True, text=True,
                       timeout=20)
    check(s.returncode != 0 and "HTTP/1.1" not in s.stdout, "a TLS 1.2 PSK ClientHello is refused", s.stdout[-300:])
    st, body = api("GET", "/admin/v1/nodes", ctx=ctx_with(badcn))
    check(st == 403 and body["error"] == "forbidden", "a certificate of the CA whose CN is no operator name: 403", body)

    # ---- every operation ----
    KPM = "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677"
    node = {"nodeID": "urn:dev:ops:api-1", "kpmID": "kpm-api-1", "kpm": KPM, "cseID": "/mn-api-1",
            "cseBase": "https://in.example.net/base", "poll": 600, "lifetime": 7200}
    st, body = api("POST", "/admin/v1/nodes", node, expect=201)
    check(body["nodeID"] == "urn:dev:ops:api-1" and body["auth"] == "psk", "addNode: 201 with the node", body)
    api("POST", "/admin/v1/nodes", node, expect=409)
    st, body = api("POST", "/admin/v1/nodes", {"nodeID": "urn:dev:ops:api-x", "cseID": "/x"}, expect=422)
    check("cseBase" in body["reason"], "addNode: a missing field is 422 with the import's rule", body)
    st, body = api("POST", "/admin/v1/nodes", dict(node, nodeID="urn:dev:ops:api-t", kpmID="kpm-t", cseID="/mn-t",
                                                   targets=["/in-cse;/other"]), expect=422)
    check(body["reason"].startswith("targets[0]: "), "addNode: a target holding ';' is 422 naming the element", body)
    api("POST", "/admin/v1/nodes", dict(node, nodeID="urn:dev:ops:api-f", kpmID="kpm-f", kpm=None, kpmFile="/etc/shadow",
                                        cseID="/mn-f"), expect=422)
    ok("addNode: kpmFile (a path on the MEF) is refused")
    api("POST", "/admin/v1/nodes", "not json", ctype="application/json", expect=400)
    ok("addNode: a body that is not a JSON object is 400")

    csv = ("nodeID,kpmID,kpm,cseID,cseBase,targets\n"
           f"urn:dev:ops:api-2,kpm-api-2,{KPM[:32]},/mn-api-2,https://in.example.net/base,/in-cse\n"
           f"urn:dev:ops:api-3,kpm-api-3,{KPM[32:]},/mn-api-3,https://in.example.net/base,\n")
    st, body = api("POST", "/admin/v1/import?dry_run=true", csv, ctype="text/csv", expect=200)
    check(body["dryRun"] and body["wouldAdd"] == 2 and not body["imported"], "importNodes dry_run: checked, nothing added", body)
    bad = csv + "urn:dev:ops:api-4,kpm-api-4,zz,/mn-api-4,https://x/y,\n"
    st, body = api("POST", "/admin/v1/import", bad, ctype="text/csv", expect=422)
    check(body["errors"][0]["line"] == 4 and "kpm" in body["errors"][0]["error"] and not body["imported"],
          "importNodes: a bad row named by line and rule, nothing imported", body)
    # a header that is not the import's: the same ImportResult shape as a bad row (api() checks the
    # spec), a column name that is not UTF-8 quoted printable, not a 500
    st, body = api("POST", "/admin/v1/import", "foo,bar\n1,2\n", ctype="text/csv", expect=422)
    check(body["errors"] == [{"line": 1, "error": "header: unknown column 'foo'"}] and not body["imported"],
          "importNodes: a bad header is 422 with line 1 in errors[], nothing imported", body)
    st, body = api("POST", "/admin/v1/import", "nodeID,k\xff\n", ctype="text/csv", expect=422)
    check(body["errors"][0]["error"] == "header: unknown column 'k?'",
          "importNodes: a header's bytes that are not ASCII are quoted as '?'", body)
    st, body = api("POST", "/admin/v1/import", csv, ctype="text/csv", expect=200)
    check(body["imported"] and body["added"] == 2, "importNodes: CSV imported", body)
    jsonl = json.dumps({"nodeID": "urn:dev:ops:api-5", "certFingerprint": "ab" * 32, "cseID": "/mn-api-5",
                        "cseBase": "https://in.example.net/base"}) + "\n"
    st, body = api("POST", "/admin/v1/import", jsonl, ctype="application/jsonl", expect=200)
    check(body["added"] == 1, "importNodes: JSON Lines imported", body)
    jsonl = json.dumps({"nodeID": "urn:dev:ops:api-6", "certFingerprint": "ac" * 32, "cseID": "/mn-api-6",
                        "cseBase": "https://in.example.net/base", "targets": ["/in-cse", ""]}) + "\n"
    st, body = api("POST", "/admin/v1/import", jsonl, ctype="application/jsonl", expect=422)
    check(body["errors"][0]["error"] == "targets[1]: empty" and not body["imported"],
          "importNodes: an empty target in JSON Lines is refused by its index", body)

    st, body = api("GET", "/admin/v1/nodes?limit=2", expect=200)
    check(len(body["items"]) == 2 and body["next"] == body["items"][1]["nodeID"], "listNodes: a full page says next", body)
    seen = [n["nodeID"] for n in body["items"]]
    st, body = api("GET", "/admin/v1/nodes?limit=2&after=" + body["next"].replace(":", "%3A"), expect=200)
    seen += [n["nodeID"] for n in body["items"]]
    while body["next"]:
        st, body = api("GET", "/admin/v1/nodes?limit=2&after=" + body["next"], expect=200)
        seen += [n["nodeID"] for n in body["items"]]
    check(seen == sorted(seen) and len(seen) == 4, "listNodes: limit/after walks every node once", seen)
    api("GET", "/admin/v1/nodes?state=bogus", expect=400)
    api("GET", "/admin/v1/nodes?colour=red", expect=400)
    ok("listNodes: a bad state or an unknown parameter is 400")

    st, body = api("GET", "/admin/v1/nodes/urn:dev:ops:api-1", expect=200)
    check(body["kpmID"] == "kpm-api-1" and body["enrolments"] == [], "getNode: the node and its enrolments", body)
    api("GET", "/admin/v1/nodes/urn:dev:ops:nope", expect=404)

    st, body = api("GET", "/admin/v1/export?format=csv", expect=200)
    check(body.startswith("nodeID,kpmID,certFingerprint") and "urn:dev:ops:api-2" in body, "exportNodes: CSV", body[:200])
    st, body = api("GET", "/admin/v1/export", expect=200)
    rows = [json.loads(line) for line in body.splitlines()]
    check(len(rows) == 4 and all("kpm" not in r for r in rows), "exportNodes: JSON Lines without a key", body[:200])

    tgt = {"id": "/in-cse", "pskID": "in-cse-psk", "psk": "00" * 16 + "11" * 16}
    api("POST", "/admin/v1/targets", tgt, expect=201)
    api("POST", "/admin/v1/targets", {"id": "/in-cse/Cmaf", "certFingerprint": "cd" * 32}, expect=201)
    api("POST", "/admin/v1/targets", {"id": "/bad", "pskID": "p"}, expect=422)
    st, body = api("GET", "/admin/v1/targets", expect=200)
    check(sorted(t["id"] for t in body["items"]) == ["/in-cse", "/in-cse/Cmaf"], "addTarget, listTargets", body)
    api("DELETE", "/admin/v1/targets/%2Fin-cse%2FCmaf", expect=200)
    api("DELETE", "/admin/v1/targets/%2Fin-cse%2FCmaf", expect=404)
    ok("removeTarget: removed, then 404")

    # ---- the API's node enrols ----
    gw = f"{T}/gateways"
    with open(gw, "w") as f:
        f.write(f"urn:dev:ops:api-1 kpm-api-1 {KPM}\n")
    os.chmod(gw, 0o600)
    lg = subprocess.run([LOADGEN, "--gateways", gw, "--timeout", "30", f"https://127.0.0.1:{GW_PORT}/msce"],
                        capture_output=True, text=True, timeout=60)
    check(lg.returncode == 0, "msce-loadgen enrols the node added through the API", lg.stdout[-400:] + lg.stderr[-400:])
    st, body = api("GET", "/admin/v1/enrolments?node=urn:dev:ops:api-1", expect=200)
    check(len(body["items"]) == 1 and body["items"][0]["state"] == "active", "listEnrolments: its enrolment", body)
    api("GET", "/admin/v1/enrolments?state=active&limit=1", expect=200)
    api("GET", "/admin/v1/enrolments?node=urn:dev:ops:nope", expect=404)
    lg = subprocess.run([LOADGEN, "--gateways", gw, "--timeout", "3", f"https://127.0.0.1:{ADMIN_PORT}/msce"],
                        capture_output=True, text=True, timeout=60)
    check(lg.returncode != 0, "the same gateway (PSK) against the admin port gets nowhere",
          lg.stdout[-300:] + lg.stderr[-300:])

    for op in ("reenrol", "revoke", "activate"):
        st, body = api("POST", f"/admin/v1/nodes/urn:dev:ops:api-1/{op}", expect=200)
        want = {"reenrol": "reenrol", "revoke": "revoked", "activate": "active"}[op]
        check(body["state"] == want, f"{op}Node: state {want}", body)
        if op == "revoke":  # reenrol would let it enrol again (an enrolment sets it active)
            st, body = api("POST", "/admin/v1/nodes/urn:dev:ops:api-1/reenrol", expect=409)
            check(body["error"] == "conflict", "reenrolNode of a revoked node: 409", body)
            st, body = api("GET", "/admin/v1/nodes/urn:dev:ops:api-1", expect=200)
            check(body["state"] == "revoked", "reenrolNode of a revoked node: still revoked", body)
    st, body = api("GET", "/admin/v1/enrolments?node=urn:dev:ops:api-1", expect=200)
    check(body["items"][0]["state"] == "revoked", "revoke took the node's enrolment with it", body)
    api("POST", "/admin/v1/nodes/urn:dev:ops:nope/revoke", expect=404)
    api("DELETE", "/admin/v1/nodes/urn:dev:ops:api-3", expect=200)
    api("GET", "/admin/v1/nodes/urn:dev:ops:api-3", expect=404)
    ok("removeNode: removed, then 404")

    st, body = api("GET", "/admin/v1/audit?limit=50", expect=200)
    mine = [(a["actor"], a["action"]) for a in body["items"] if a["actor"] == "api:alice"]
    for action in ("node-add", "node-import", "target-add", "target-remove", "node-reenrol", "node-revoke",
                   "node-activate", "node-remove"):
        if ("api:alice", action) not in mine:
            fail(f"audit: no {action} by api:alice: {body}")
    ok("the audit trail names api:alice for every change")
    st, body = api("GET", "/admin/v1/audit?action=api-refused&limit=1000", expect=200)
    check(any(a["actor"] == "api:alice" and a["detail"].startswith("POST -> 409") for a in body["items"]),
          "a refused change is audited with its status and why", body["items"][:3])
    st, body = api("GET", "/admin/v1/audit?action=node-add&limit=1", expect=200)
    check(len(body["items"]) == 1 and body["next"], "listAudit: filtered, paged", body)
    api("GET", f"/admin/v1/audit?limit=1&after={body['next']}", expect=200)

    # ---- answers beyond the protocol's 64 KiB ----
    bulk = "nodeID,certFingerprint,cseID,cseBase\n" + "".join(
        f"urn:dev:ops:bulk-{i:04d},{i:064x},/mn-bulk-{i:04d},https://in.example.net/base/with/a/longer/path\n"
        for i in range(400))
    st, body = api("POST", "/admin/v1/import", bulk, ctype="text/csv", expect=200)
    check(body["added"] == 400, "importNodes: 400 rows in one request", body["added"])
    st, body = api("GET", "/admin/v1/nodes?limit=1000", expect=200)
    check(len(body["items"]) == 403 and len(bodies[-1]) > 65536 and body["next"] is None,
          f"listNodes: a page of {len(bodies[-1])} bytes", len(body["items"]))
    api("GET", "/admin/v1/nodes?limit=1001", expect=400)
    st, body = api("GET", "/admin/v1/nodes", expect=200)
    check(len(body["items"]) == 100 and body["next"], "listNodes: 100 by default, then next")
    st, body = api("GET", "/admin/v1/export?limit=250", expect=200)
    check(len(body.splitlines()) == 250 and last_headers.get("x-next-after") == json.loads(body.splitlines()[-1])["nodeID"],
          "exportNodes: a full export names where to go on (X-Next-After)", last_headers)
    st, body = api("GET", "/admin/v1/export?after=" + last_headers["x-next-after"], expect=200)
    check(len(body.splitlines()) == 153 and "x-next-after" not in last_headers, "exportNodes: the rest, and no more")

    # ---- the description and the implementation agree ----
    ops = {op["operationId"] for p in spec["paths"].values() for m, op in p.items() if m != "parameters"}
    check(ops <= called, "every operation of the OpenAPI description was called", sorted(ops - called))
    for method, path in (("GET", "/admin/v1/secrets"), ("GET", "/admin/v1"), ("GET", "/admin/v2/nodes"),
                         ("GET", "/metrics"), ("GET", "/admin/v1/nodes/a/b/c/d")):
        st, body = api(method, path)
        if st != 404:
            fail(f"{method} {path}: {st}, want 404")
        validate(body, {"$ref": "#/components/schemas/Error"})
    ok("undocumented paths are 404 with an Error body")
    st, body = api("PUT", "/admin/v1/nodes")
    check(st == 405, "a method a path does not take is 405", body)
    check(not any(KPM in b or KPM[:32] in b or KPM[32:] in b or "11" * 32 in b for b in bodies),
          "no answer carried a key")
    log = open(f"{T}/mef.err").read()
    check(KPM not in log and KPM[:32] not in log, "no key in the MEF's log")
    check("admin: api:alice" in log, "requests are logged with the operator", log[-300:])

    # ---- with workers: one process serves the admin API ----
    mef.terminate()
    mef.wait(10)
    mef, ports, out = start(conf.replace("fqdn = 127.0.0.1", "fqdn = 127.0.0.1\nworkers = 3"))
    ADMIN_PORT = ports["admin"]
    st, body = api("GET", "/admin/v1/nodes?limit=1", expect=200)
    out.seek(0)
    n_admin = sum(1 for line in out.read().splitlines() if line.startswith("admin on "))
    check(n_admin == 1 and len(body["items"]) == 1, "workers = 3: the admin API in one worker, serving", n_admin)
    log = open(f"{T}/mef.err").read()
    check(log.count("admin on https://127.0.0.1:") == 2, "each start says where the admin API is, once", log[-600:])

    # ---- rows as the server writes them (the API adds no enrolment, and 64 KiB a request makes
    # MBs of nodes slow): a node enrolled 1001 times, 1500 nodes of about 4.7 KB each ----
    mef.terminate()
    mef.wait(10)
    now = int(time.time())
    db = sqlite3.connect(f"{T}/mef.db")
    db.executemany("INSERT INTO enrolments (ke_id, node_id, key_enc, ltk_transported, state, created, exp) "
                   "VALUES (?, 'urn:dev:ops:api-2', x'00', 0, 'retired', ?, ?)",
                   [(f"{i:032x}@127.0.0.1", now - 2000 + i, now + 86400) for i in range(1001)])
    big_targets = json.dumps([f"/in-cse-{'t' * 200}-{k:02d}" for k in range(16)])
    big_base = "https://in.example.net/" + "p" * 1000
    db.executemany("INSERT INTO nodes (node_id, cert_fp, cse_id, cse_base, targets, poll, lifetime, created) "
                   "VALUES (?, ?, ?, ?, ?, 600, 7200, ?)",
                   [(f"urn:dev:ops:big-{i:04d}", f"{100000 + i:064x}", f"/mn-big-{i:04d}", big_base, big_targets, now)
                    for i in range(1500)])
    db.commit()
    db.close()
    mef, ports, out = start(conf.replace("[store]\n", "[store]\nbusy_timeout = 500\n"))
    ADMIN_PORT = ports["admin"]

    # ---- a node's enrolments are bounded as a page is ----
    st, body = api("GET", "/admin/v1/nodes/urn:dev:ops:api-2", expect=200)
    enr = body["enrolments"]
    check(len(enr) == 1000 and enr[0]["keID"] == f"{1000:032x}@127.0.0.1" and body["enrolmentsNext"],
          "getNode: the newest 1000 of 1001 enrolments, and enrolmentsNext", (len(enr), body.get("enrolmentsNext")))
    st, rest = api("GET", "/admin/v1/enrolments?node=urn:dev:ops:api-2&after=" + body["enrolmentsNext"], expect=200)
    check([e["keID"] for e in rest["items"]] == [f"{0:032x}@127.0.0.1"] and rest["next"] is None,
          "listEnrolments after enrolmentsNext: the rest", rest)

    # ---- an answer larger than the sockets hold, to a client that reads it late ----
    # The store thread answers well within [store] busy_timeout; the answer then has the rest of
    # request_timeout (10 s) to be written, not what is left of busy_timeout.
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    raw.settimeout(30)
    raw.connect(("127.0.0.1", ADMIN_PORT))
    tls = CTX.wrap_socket(raw, server_hostname="127.0.0.1")
    tls.sendall(b"GET /admin/v1/export?limit=1500&after=urn:dev:ops:big- HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(1.5)  # the client not reading for 3 x busy_timeout: what the test is about, not a wait for a state
    tls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    chunks, err = [], None
    try:
        while True:
            chunk = tls.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as e:  # ssl.SSLError among them
        err = e
    tls.close()
    data = b"".join(chunks)
    head, _, payload = data.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    want = int(m.group(1)) if m else -1
    check(head.startswith(b"HTTP/1.1 200 ") and want > 4_000_000 and len(payload) == want
          and len(payload.splitlines()) == 1500,
          f"exportNodes: {want} bytes read 1.5 s late arrive whole", (head[:200], len(payload), err))
    log = open(f"{T}/mef.err").read()
    check("timed out writing the response" not in log, "no write timed out", log[-600:])
finally:
    if mef:
        mef.terminate()
        try:
            mef.wait(10)
        except subprocess.TimeoutExpired:
            mef.kill()
    # the sanitizer build's reports from the MEF, for tests/sanitize-wrap.sh
    if os.path.exists(f"{T}/mef.err"):
        report = re.findall(r"(?:ERROR: (?:Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer).*",
                            open(f"{T}/mef.err", errors="replace").read())
        for line in report:
            print(line, file=sys.stderr)
    shutil.rmtree(T, ignore_errors=True)
print(f"1..{N}")
