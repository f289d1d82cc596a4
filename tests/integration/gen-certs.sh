#!/bin/sh
# SPDX-License-Identifier: MIT
# Test PKI for the TLS tests, EC P-256 throughout:
#   ca.pem                 trusted CA
#   server.pem/.key        server cert: DNS:mef.test, IP:127.0.0.1 (signed by ca)
#   client.pem/.key        client cert: CN=urn:dev:ops:test-node (signed by ca)
#   client.der             client leaf in DER (its SHA-256 is the expected fingerprint)
#   client-rsa.pem/.key    client cert with an RSA-2048 key: CN=urn:dev:ops:test-node-rsa (signed by ca)
#   rogue-ca.pem           a second, untrusted CA
#   rogue-server.pem/.key  server cert with the same names, signed by rogue-ca
#   cn-ip-server.pem/.key  server cert with CN=127.0.0.1 and no SAN (signed by ca): an IP
#                          only counts in an iPAddress SAN
#   cn-dns-server.pem/.key CN=localhost and no SAN (signed by ca): a name only counts in a
#                          dNSName SAN
#   clientauth-server.pem/.key  server names, extendedKeyUsage clientAuth only (signed by ca)
#   critext-server.pem/.key     server names and an unknown critical extension (signed by ca)
#   keyagree-server.pem/.key    server names, keyUsage keyAgreement only: not for signing
#   wild-*.pem/.key        server certs (signed by ca) whose dNSNames have wildcards, no
#                          IP and a CN that names nothing (RFC 9525 6.3):
#     wild-server          DNS:*.example.net: names mef.example.net, not example.net or
#                          a.b.example.net
#     wild-bare-server     DNS:*                 names nothing (wolfSSL takes it for any
#                                                one-label host)
#     wild-m-server        DNS:m*                names nothing (wolfSSL: "mef")
#     wild-partial-server  DNS:m*.example.net    names nothing (wolfSSL: mef.example.net)
#     wild-local-server    DNS:local*            names nothing (wolfSSL: localhost)
#     wild-labels-server   DNS:*.*.net           names nothing (wolfSSL: mef.example.net)
#     wild-tld-server      DNS:*.net, DNS:*.localhost   name nothing: a wildcard needs two
#                                                labels to its right (wolfSSL: example.net,
#                                                mef.localhost)
#     wild-among-server    DNS:m*.example.net, DNS:*.net, DNS:other.example.net,
#                          DNS:mef.example.net: names mef.example.net (the last one)
# Usage: gen-certs.sh DIR [STAMP]   (STAMP: a file touched when done, for meson)
set -eu

dir=${1:?usage: gen-certs.sh DIR [STAMP]}
stamp=${2:-}
command -v openssl >/dev/null || { echo "gen-certs.sh: openssl not found" >&2; exit 77; }
mkdir -p "$dir"
umask 077
cd "$dir"

key() {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
        chmod 0600 "$1"
}

ca() { # name subject
        key "$1.key"
        openssl req -x509 -new -key "$1.key" -subj "$2" -days 3650 -sha256 \
                -addext basicConstraints=critical,CA:TRUE \
                -addext keyUsage=critical,keyCertSign,cRLSign \
                -out "$1.pem"
}

leaf() { # name subject ca extfile-content [key-function]
        ${5:-key} "$1.key"
        openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
        printf '%s\n' "$4" >"$1.ext"
        openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
                -days 3650 -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
        rm -f "$1.csr" "$1.ext"
}

server_ext='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:mef.test,IP:127.0.0.1'
client_ext='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'

ca ca "/CN=msce test CA"
leaf server "/CN=mef.test" ca "$server_ext"
leaf client "/CN=urn:dev:ops:test-node" ca "$client_ext"
openssl x509 -in client.pem -outform DER -out client.der
rsa_key() {
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
        chmod 0600 "$1"
}
leaf client-rsa "/CN=urn:dev:ops:test-node-rsa" ca "$client_ext" rsa_key

leaf cn-ip-server "/CN=127.0.0.1" ca 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth'

leaf cn-dns-server "/CN=localhost" ca 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth'
leaf clientauth-server "/CN=mef.test" ca 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=DNS:mef.test,IP:127.0.0.1'
leaf critext-server "/CN=mef.test" ca "$server_ext
1.3.6.1.4.1.32473.1=critical,ASN1:UTF8String:unknown"
leaf keyagree-server "/CN=mef.test" ca 'basicConstraints=CA:FALSE
keyUsage=critical,keyAgreement
extendedKeyUsage=serverAuth
subjectAltName=DNS:mef.test,IP:127.0.0.1'

wild() { # name SAN-list
        leaf "$1" "/CN=msce test wildcard" ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$2"
}
wild wild-server 'DNS:*.example.net'
wild wild-bare-server 'DNS:*'
wild wild-m-server 'DNS:m*'
wild wild-partial-server 'DNS:m*.example.net'
wild wild-local-server 'DNS:local*'
wild wild-labels-server 'DNS:*.*.net'
wild wild-tld-server 'DNS:*.net,DNS:*.localhost'
wild wild-among-server 'DNS:m*.example.net,DNS:*.net,DNS:other.example.net,DNS:mef.example.net'

ca rogue-ca "/CN=msce rogue CA"
leaf rogue-server "/CN=mef.test" rogue-ca "$server_ext"

chmod 0644 ./*.pem client.der
if [ -n "$stamp" ]; then
        cd - >/dev/null
        touch "$stamp"
fi
