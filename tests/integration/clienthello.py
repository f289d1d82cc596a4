#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What msce-agent's ClientHello offers, read by a parser that is not wolfSSL (TAP output).

For each configuration below this script listens on 127.0.0.1 port 0, runs the real
`msce-agent --once` against it, reads the first TLS record(s) of the connection, parses the
ClientHello itself (legacy version, cipher suites, supported_versions, supported_groups,
key_share groups, psk_key_exchange_modes, server_name, signature_algorithms, pre_shared_key
identity) and closes the connection; then it checks what docs/protocol.md "ClientHello" says.
The agent then fails (transient, 75); its retries are not looked at. (The TLS 1.2 retry after a
TLS 1.2 ServerHello uses the context of "TLS 1.2 only" below.)

Usage: clienthello.py BUILDDIR. Exit 77 (skip) without root or keyctl. Certificate cases need
MSCE_TEST_CERTS (the test PKI of gen-certs.sh) and are skipped without it. What differs between
wolfSSL releases follows MSCE_WOLFSSL_VERSION (set by meson; pkg-config otherwise): up to 5.5.4
(Debian 12) or newer (Debian 13's 5.7.2; docs/interop.md, "wolfSSL 5.5 and 5.7").
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

TLS13_AES128 = 0x1301
ECDHE_PSK_AES128_CBC = 0xC037
ECDHE_ECDSA_AES128_GCM = 0xC02B
ECDHE_ECDSA_AES128_CBC = 0xC023
X25519, P256 = 0x001D, 0x0017
PSK_KE, PSK_DHE_KE = 0, 1
EXT = {"server_name": 0, "supported_groups": 10, "signature_algorithms": 13, "pre_shared_key": 41,
       "supported_versions": 43, "psk_key_exchange_modes": 45, "key_share": 51}
ID = "msce-test-tls-clienthello"


class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def take(self, n):
        if self.i + n > len(self.d):
            raise ValueError("truncated")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def vec(self, lenbytes):
        n = int.from_bytes(self.take(lenbytes), "big")
        return Reader(self.take(n))

    def done(self):
        return self.i == len(self.d)


def u16_list(r):
    out = []
    while not r.done():
        out.append(r.u16())
    return out


def read_client_hello(conn):
    """The handshake bytes of the first records (type 22) until one ClientHello is complete."""
    conn.settimeout(15)
    buf, hs = b"", b""
    while True:
        while len(buf) < 5 or len(buf) < 5 + struct.unpack(">H", buf[3:5])[0]:
            chunk = conn.recv(65536)
            if not chunk:
                raise ValueError("connection closed before a complete ClientHello")
            buf += chunk
        n = struct.unpack(">H", buf[3:5])[0]
        if buf[0] != 22:
            raise ValueError("first record type %d, not handshake" % buf[0])
        hs += buf[5:5 + n]
        buf = buf[5 + n:]
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            break
    if hs[0] != 1:
        raise ValueError("handshake type %d, not ClientHello" % hs[0])
    return hs[4:4 + int.from_bytes(hs[1:4], "big")]


def parse_client_hello(body):
    r = Reader(body)
    ch = {"legacy_version": r.u16()}
    r.take(32)
    r.vec(1)  # legacy_session_id
    ch["suites"] = u16_list(r.vec(2))
    r.vec(1)  # compression
    ch["ext"] = {}
    exts = r.vec(2)
    order = []
    while not exts.done():
        t = exts.u16()
        ch["ext"][t] = exts.vec(2)
        order.append(t)
    if not r.done():
        raise ValueError("bytes after the extensions")
    e = ch["ext"]
    if EXT["supported_versions"] in e:
        ch["versions"] = u16_list(e[EXT["supported_versions"]].vec(1))
    if EXT["supported_groups"] in e:
        ch["groups"] = u16_list(e[EXT["supported_groups"]].vec(2))
    if EXT["key_share"] in e:
        ks, groups = e[EXT["key_share"]].vec(2), []
        while not ks.done():
            groups.append(ks.u16())
            ks.vec(2)
        ch["key_share"] = groups
    if EXT["psk_key_exchange_modes"] in e:
        ch["psk_modes"] = list(e[EXT["psk_key_exchange_modes"]].vec(1).d)
    if EXT["server_name"] in e:
        names = e[EXT["server_name"]].vec(2)
        ch["sni"] = []
        while not names.done():
            kind = names.u8()
            ch["sni"].append((kind, names.vec(2).d.decode()))
    if EXT["signature_algorithms"] in e:
        ch["sigalgs"] = u16_list(e[EXT["signature_algorithms"]].vec(2))
    if EXT["pre_shared_key"] in e:
        ids = e[EXT["pre_shared_key"]].vec(2)
        ch["psk_ids"] = []
        while not ids.done():
            ch["psk_ids"].append(ids.vec(2).d.decode())
            ids.take(4)
        ch["pre_shared_key_last"] = order[-1] == EXT["pre_shared_key"]
    return ch


def wolfssl_version():
    v = os.environ.get("MSCE_WOLFSSL_VERSION")
    if not v:
        try:
            v = subprocess.run(["pkg-config", "--modversion", "wolfssl"], capture_output=True, text=True,
                               check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    try:
        return tuple(int(x) for x in v.split(".")[:3])
    except ValueError:
        return None


def capture(agent, tmp, mode, host, extra, certs):
    """Run msce-agent --once against a listener that reads one ClientHello; return it parsed."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    state = os.path.join(tmp, "state")
    shutil.rmtree(state, ignore_errors=True)
    if mode == "cert":
        cred = "mode = cert\ncertificate = %s/client.pem\nkey = %s/client.key\ntrust_anchors = %s/ca.pem\n" % (
            certs, certs, certs)
    else:
        cred = "psk_identity = %s\npsk_file = %s/kpm.hex\n" % (ID, tmp)
    conf = os.path.join(tmp, "agent.conf")
    with open(conf, "w") as f:
        f.write("[node]\nid = urn:dev:ops:clienthello\n[mef]\nuri = https://%s:%d/msce\n%s%s\n"
                "[consumer]\nuser = nobody\n[seal]\nbackend = host\nstate_dir = %s\nruntime_dir = %s/run\n"
                "[timing]\nconnect_timeout = 5s\nexchange_timeout = 10s\n" % (host, port, cred, extra, state, tmp))
    agent = subprocess.Popen(["keyctl", "session", "-", agent, "--once", "-c", conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        lsock.settimeout(15)
        conn, _ = lsock.accept()
        with conn:
            return parse_client_hello(read_client_hello(conn))
    finally:
        lsock.close()
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def main():
    if len(sys.argv) != 2:
        print("usage: clienthello.py BUILDDIR", file=sys.stderr)
        return 2
    agent = os.path.join(os.path.abspath(sys.argv[1]), "msce-agent")
    if os.geteuid() != 0 or not shutil.which("keyctl") or not os.access(agent, os.X_OK):
        print("1..0 # SKIP needs root, keyctl and %s" % agent)
        return 77
    wolf = wolfssl_version()
    if wolf is None:
        print("1..0 # SKIP the wolfSSL version is unknown (MSCE_WOLFSSL_VERSION, pkg-config)")
        return 77
    wolf55 = wolf <= (5, 5, 4)
    print("# wolfSSL %s: expectations for %s" % (".".join(map(str, wolf)), "5.5.4" if wolf55 else "5.7"))
    certs = os.environ.get("MSCE_TEST_CERTS", "")
    if not os.access(os.path.join(certs, "client.key"), os.R_OK):
        certs = ""
    tmp = tempfile.mkdtemp(prefix="msce-test-tls-clienthello-")
    os.chmod(tmp, 0o700)
    with open(os.path.join(tmp, "kpm.hex"), "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(os.path.join(tmp, "kpm.hex"), 0o600)

    n, failed = 0, 0

    def check(name, cond, detail=""):
        nonlocal n, failed
        n += 1
        if cond:
            print("ok %d - %s" % (n, name))
        else:
            failed += 1
            print("not ok %d - %s%s" % (n, name, ": " + detail if detail else ""))

    # (name, mode, host, extra config, versions, suites, groups, key_share)
    cases = [
        ("psk, default versions", "psk", "localhost", "", [0x0304, 0x0303],
         [TLS13_AES128, ECDHE_PSK_AES128_CBC], [X25519, P256], [X25519]),
        ("psk, TLS 1.3 only", "psk", "localhost", "tls_min_version = 1.3", [0x0304],
         [TLS13_AES128], [X25519, P256], [X25519]),
        ("psk, TLS 1.2 only", "psk", "127.0.0.1", "tls_max_version = 1.2", None,
         [ECDHE_PSK_AES128_CBC], [X25519, P256], None),
        ("cert, default versions", "cert", "localhost", "", [0x0304, 0x0303],
         [TLS13_AES128, ECDHE_ECDSA_AES128_GCM, ECDHE_ECDSA_AES128_CBC], [X25519, P256], [X25519]),
        ("cert, TLS 1.2 only", "cert", "127.0.0.1", "tls_max_version = 1.2", None,
         [ECDHE_ECDSA_AES128_GCM, ECDHE_ECDSA_AES128_CBC], [X25519, P256], None),
    ]
    for name, mode, host, extra, versions, suites, groups, key_share in cases:
        if mode == "cert" and not certs:
            n += 1
            print("ok %d - %s # SKIP no test PKI (MSCE_TEST_CERTS)" % (n, name))
            continue
        try:
            ch = capture(agent, tmp, mode, host, extra, certs)
        except (OSError, ValueError) as e:
            check("%s: a ClientHello arrives and parses" % name, False, str(e))
            continue
        fmt = lambda v: "[%s]" % ", ".join("0x%04x" % x for x in v) if v is not None else "none"
        print("# %s: cipher suites as sent %s, psk_key_exchange_modes %s" % (name, fmt(ch["suites"]), ch.get("psk_modes")))
        check("%s: legacy_version 0x0303" % name, ch["legacy_version"] == 0x0303, "0x%04x" % ch["legacy_version"])
        # TLS_EMPTY_RENEGOTIATION_INFO_SCSV (0x00ff) is a signal, not a suite (RFC 5746). Nothing
        # else: since the suites are set by their bytes (proto/tls-ctx.c ctx_set_suites), wolfSSL
        # 5.7.2 no longer ends a TLS 1.3-only list with 0x0000 as it did with the name list.
        offered = [s for s in ch["suites"] if s != 0x00FF]
        check("%s: cipher suites %s" % (name, fmt(suites)), offered == suites, fmt(ch["suites"]))
        check("%s: supported_versions %s" % (name, fmt(versions)), ch.get("versions") == versions,
              fmt(ch.get("versions")))
        check("%s: supported_groups %s" % (name, fmt(groups)), ch.get("groups") == groups, fmt(ch.get("groups")))
        check("%s: key_share %s" % (name, fmt(key_share)), ch.get("key_share") == key_share,
              fmt(ch.get("key_share")))
        if host == "127.0.0.1":
            check("%s: no server_name for an IP literal" % name, "sni" not in ch, str(ch.get("sni")))
        else:
            check("%s: server_name %s" % (name, host), ch.get("sni") == [(0, host)], str(ch.get("sni")))
        if mode == "psk" and not versions:
            check("%s: no signature_algorithms (PSK suites only)" % name, "sigalgs" not in ch, fmt(ch.get("sigalgs")))
        else:
            check("%s: signature_algorithms present" % name, bool(ch.get("sigalgs")), fmt(ch.get("sigalgs")))
            print("# %s: signature_algorithms %s" % (name, fmt(ch.get("sigalgs"))))
        if mode == "psk" and versions:
            # wolfSSL 5.5.4 always lists psk_ke before psk_dhe_ke (docs/protocol.md): the agent
            # refuses a server that picks psk_ke (test-tls psk_ke_only_server_refused). 5.6 and
            # later offer psk_dhe_ke alone (wolfSSL_CTX_only_dhe_psk, HAVE_WOLFSSL_CTX_ONLY_DHE_PSK).
            if wolf55:
                check("%s: psk_key_exchange_modes psk_ke, psk_dhe_ke (wolfSSL 5.5.4)" % name,
                      ch.get("psk_modes") == [PSK_KE, PSK_DHE_KE], str(ch.get("psk_modes")))
            else:
                check("%s: psk_key_exchange_modes psk_dhe_ke only (wolfSSL 5.7)" % name,
                      ch.get("psk_modes") == [PSK_DHE_KE], str(ch.get("psk_modes")))
            check("%s: pre_shared_key with identity %s, the last extension" % (name, ID),
                  ch.get("psk_ids") == [ID] and ch.get("pre_shared_key_last"), str(ch.get("psk_ids")))
        else:
            check("%s: no pre_shared_key" % name, "psk_ids" not in ch, str(ch.get("psk_ids")))
    shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
