#!/usr/bin/env python3
"""A NAS's Dynamic Authorization port (RFC 5176), for the system tests: it receives Disconnect-Requests,
checks them with the shared secret using nothing but the Python standard library, and answers.

    nas.py SECRET ANSWER [--ignore N] [--error-cause N] [--wait SECONDS]

ANSWER is `ack` or `nak`. It binds 127.0.0.1 on an ephemeral port, prints {"port": P} on one line, then takes
datagrams until one Disconnect-Request verifies: the first N verified ones are ignored (to make the sender
retransmit), the next is answered (a Disconnect-ACK, or a Disconnect-NAK with the Error-Cause) and described as
one JSON line on stdout, and the program exits 0. Anything that does not verify is described on stderr and
makes the exit status 1 once the wait is over (default 60 s) or after 50 datagrams.
"""

import hashlib
import hmac
import json
import socket
import struct
import sys
import time

DISCONNECT_REQUEST, DISCONNECT_ACK, DISCONNECT_NAK = 40, 41, 42
NAMES = {1: "User-Name", 4: "NAS-IP-Address", 31: "Calling-Station-Id", 32: "NAS-Identifier",
         44: "Acct-Session-Id", 55: "Event-Timestamp", 80: "Message-Authenticator"}


def attributes(packet):
    out, at, length = [], 20, len(packet)
    while at < length:
        if at + 2 > length or packet[at + 1] < 2 or at + packet[at + 1] > length:
            raise ValueError("attribute overruns the packet")
        t, n = packet[at], packet[at + 1]
        out.append((t, at + 2, packet[at + 2:at + n]))
        at += n
    return out


def check(packet, secret):
    """Return a description of a Disconnect-Request, with whether each authenticator verifies."""
    code, ident, length = struct.unpack("!BBH", packet[:4])
    packet = packet[:length]
    attrs = attributes(packet)
    zeroed = bytearray(packet)
    zeroed[4:20] = b"\0" * 16
    # RFC 5176 §2.3: Request Authenticator = MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret).
    request_ok = hmac.compare_digest(hashlib.md5(bytes(zeroed) + secret).digest(), packet[4:20])
    # RFC 5176 §3.5 / RFC 3579 §3.2: HMAC-MD5 over the packet with a zero authenticator and the
    # Message-Authenticator value zeroed.
    message_ok = None
    for t, at, value in attrs:
        if t == 80:
            m = bytearray(zeroed)
            m[at:at + 16] = b"\0" * 16
            message_ok = hmac.compare_digest(hmac.new(secret, bytes(m), hashlib.md5).digest(), value)
    named = {}
    for t, _, value in attrs:
        name = NAMES.get(t, str(t))
        if t == 4:
            named[name] = socket.inet_ntoa(value)
        elif t == 55:
            named[name] = struct.unpack("!I", value)[0]
        elif t == 80:
            named[name] = value.hex()
        else:
            named[name] = value.decode("utf-8", "replace")
    return {"code": code, "identifier": ident, "request_authenticator_ok": request_ok,
            "message_authenticator_ok": message_ok, "first_attribute": attrs[0][0] if attrs else None,
            "attributes": named}


def answer(request, secret, code, error_cause):
    ident, authenticator = request[1], request[4:20]
    attrs = b""
    if error_cause is not None:
        attrs += struct.pack("!BBI", 101, 6, error_cause)
    # A Message-Authenticator first, computed with the request's authenticator in the header.
    body = bytes([80, 18]) + b"\0" * 16 + attrs
    header = struct.pack("!BBH", code, ident, 20 + len(body))
    mac = hmac.new(secret, header + authenticator + body, hashlib.md5).digest()
    body = bytes([80, 18]) + mac + attrs
    response = hashlib.md5(header + authenticator + body + secret).digest()
    return header + response + body


def main():
    args = sys.argv[1:]
    secret, mode = args[0].encode(), args[1]
    opt = dict(zip(args[2::2], args[3::2]))
    ignore = int(opt.get("--ignore", "0"))
    error_cause = int(opt["--error-cause"]) if "--error-cause" in opt else None
    wait = float(opt.get("--wait", "60"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    deadline = time.monotonic() + wait
    seen = []
    for _ in range(50):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data, peer = sock.recvfrom(4096)
        except socket.timeout:
            break
        try:
            d = check(data, secret)
        except (ValueError, struct.error) as e:
            print(f"malformed datagram: {e}", file=sys.stderr)
            continue
        if d["code"] != DISCONNECT_REQUEST or not d["request_authenticator_ok"] or d["message_authenticator_ok"] is False:
            print(f"refused: {json.dumps(d)}", file=sys.stderr)
            continue
        seen.append(d)
        if len(seen) <= ignore:
            continue
        code = DISCONNECT_ACK if mode == "ack" else DISCONNECT_NAK
        sock.sendto(answer(data, secret, code, error_cause), peer)
        d["received"] = len(seen)
        d["identifiers"] = sorted({s["identifier"] for s in seen})
        print(json.dumps(d), flush=True)
        return 0
    print(json.dumps({"timeout": True, "received": len(seen)}), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
