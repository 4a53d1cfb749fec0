#!/usr/bin/env python3
"""RADIUS conformance checks for Stratus with pyrad 2.6 and pyotp (from PyPI, in the venv scripts/test makes).

Usage: check.py CHECK HOST AUTH_PORT ACCT_PORT SECRET DICTIONARY [ARGS...]
Checks:
  login USER PASSWORD [TOTP_SECRET]   one login; answers an Access-Challenge with the current TOTP code.
                                      Prints one JSON line: {"first", "final", "reply_message", "state_len",
                                      "session_timeout", "attributes"}.
  replay USER PASSWORD TOTP_SECRET    a login answered with the current code, then a second login answered
                                      with the same code: the first must be accepted, the second rejected.
  wrongstate USER PASSWORD            an answer with a State that was never issued is rejected.
  duplicate USER PASSWORD             the same request sent twice gets byte-identical replies.
  proxystate USER PASSWORD            a request with two Proxy-State attributes sent twice: both replies (the
                                      second from the duplicate cache) carry them unmodified and in order.
                                      Prints {"code", "proxy_states" (hex, in order)}.
  flood USER PASSWORD COUNT           COUNT distinct requests sent at once; prints how many were answered.
  badinput USER PASSWORD              malformed datagrams get no answer and break nothing: the server still
                                      accepts USER afterwards.
Exits non-zero with a message on the first failed expectation.
"""
import json
import os
import socket
import struct
import sys

import pyotp
import pyrad.packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


CODES = {
    pyrad.packet.AccessAccept: "accept",
    pyrad.packet.AccessReject: "reject",
    pyrad.packet.AccessChallenge: "challenge",
}


def client(host, port, acct, secret, dictionary):
    c = Client(server=host, authport=port, acctport=acct, secret=secret.encode(),
               dict=Dictionary(dictionary))
    # Generous: under a loaded test machine argon2id queues; the timeout only bounds a failing run.
    c.timeout = 10
    c.retries = 2
    return c


def request(c, user, password, state=None):
    req = c.CreateAuthPacket(code=pyrad.packet.AccessRequest, User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    req["NAS-Identifier"] = "conformance"
    if state is not None:
        req["State"] = state
    # pyrad adds and fills Message-Authenticator when the attribute is present.
    req.add_message_authenticator()
    return req


def send(c, req):
    reply = c.SendPacket(req)
    # Response Authenticator, and a Message-Authenticator that must be present and verify.
    expect(req.VerifyReply(reply, enforce_ma=True), "reply authenticators do not verify")
    return reply


def first(reply, name):
    try:
        v = reply[name]
    except KeyError:
        return None
    return v[0] if v else None


def attributes(reply):
    out = {}
    for key in reply.keys():
        name = key if isinstance(key, str) else str(key)
        vals = []
        for v in reply[key]:
            if isinstance(v, bytes):
                try:
                    v = v.decode()
                except UnicodeDecodeError:
                    v = v.hex()
            vals.append(v if isinstance(v, (str, int)) else str(v))
        out[name] = vals
    # Tagged attributes: pyrad drops the tag when decoding, so read the raw tag octet as well.
    return out


def raw_tags(reply):
    """The tag octet of every Tunnel-* attribute, from the raw packet."""
    tags = {}
    data = reply.raw_packet
    at = 20
    while at + 2 <= len(data):
        t, ln = data[at], data[at + 1]
        if ln < 2:
            break
        if t in (64, 65, 81):
            tags.setdefault(str(t), []).append(data[at + 2])
        at += ln
    return tags


def login(c, user, password, totp_secret=None):
    reply = send(c, request(c, user, password))
    result = {"first": CODES.get(reply.code, str(reply.code)), "final": None,
              "reply_message": None, "state_len": None, "session_timeout": None}
    msg = first(reply, "Reply-Message")
    result["reply_message"] = msg.decode() if isinstance(msg, bytes) else msg
    if reply.code == pyrad.packet.AccessChallenge:
        state = first(reply, "State")
        result["state_len"] = len(state) if state else 0
        result["session_timeout"] = first(reply, "Session-Timeout")
        if totp_secret:
            code = pyotp.TOTP(totp_secret).now()
            reply = send(c, request(c, user, code, state))
            result["code"] = code
    result["final"] = CODES.get(reply.code, str(reply.code))
    result["attributes"] = attributes(reply)
    result["tags"] = raw_tags(reply)
    return result


def replay(c, user, password, totp_secret):
    code = pyotp.TOTP(totp_secret).now()
    outcomes = []
    for _ in range(2):
        reply = send(c, request(c, user, password))
        expect(reply.code == pyrad.packet.AccessChallenge, "expected an Access-Challenge")
        reply = send(c, request(c, user, code, first(reply, "State")))
        outcomes.append(CODES.get(reply.code))
    expect(outcomes == ["accept", "reject"], "replayed code: outcomes %s" % outcomes)
    print(json.dumps({"outcomes": outcomes}))


def wrongstate(c, user, password):
    reply = send(c, request(c, user, password, os.urandom(16)))
    expect(reply.code == pyrad.packet.AccessReject, "an unknown State must be rejected")
    print(json.dumps({"final": "reject"}))


def duplicate(host, port, c, user, password):
    req = request(c, user, password)
    raw = req.RequestPacket()
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(20)
        s.bind(("127.0.0.1", 0))
        for _ in range(2):
            s.sendto(raw, (host, port))
            replies.append(s.recvfrom(4096)[0])
    expect(replies[0] == replies[1], "a retransmission must get the same reply")
    print(json.dumps({"reply_code": replies[0][0]}))


def raw_attributes(data, typ):
    """Values of one attribute type in a raw packet, in order."""
    out, at = [], 20
    while at + 2 <= len(data):
        t, ln = data[at], data[at + 1]
        if ln < 2:
            break
        if t == typ:
            out.append(data[at + 2:at + ln])
        at += ln
    return out


def proxystate(host, port, c, user, password):
    sent = [b"\x01hop-2", b"hop-1\x00"]
    req = c.CreateAuthPacket(code=pyrad.packet.AccessRequest, User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    for state in sent:
        req.AddAttribute("Proxy-State", state)
    req.add_message_authenticator()
    raw = req.RequestPacket()
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(20)
        s.bind(("127.0.0.1", 0))
        for _ in range(2):
            s.sendto(raw, (host, port))
            replies.append(s.recvfrom(4096)[0])
    expect(replies[0] == replies[1], "a retransmission must get the same reply")
    reply = pyrad.packet.AuthPacket(packet=replies[1], secret=c.secret, dict=c.dict)
    expect(req.VerifyReply(reply, replies[1], enforce_ma=True), "reply authenticators do not verify")
    got = raw_attributes(replies[1], 33)
    expect(got == sent, "Proxy-State %r came back as %r" % (sent, got))
    print(json.dumps({"code": replies[1][0], "proxy_states": [v.hex() for v in got]}))


def flood(host, port, c, user, password, count):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for i in range(int(count)):
            req = request(c, user, password)
            req.id = i % 256
            s.sendto(req.RequestPacket(), (host, port))
        answered = 0
        s.settimeout(5)
        try:
            while True:
                s.recvfrom(4096)
                answered += 1
        except socket.timeout:
            pass
    print(json.dumps({"sent": int(count), "answered": answered}))


def badinput(host, port, c, user, password):
    good = request(c, user, password).RequestPacket()
    header = lambda code, ident, length: struct.pack("!BBH", code, ident, length) + os.urandom(16)
    datagrams = [
        b"",
        b"\x01",
        good[:19],                                   # shorter than a header
        good[:len(good) - 3],                        # truncated: fewer octets than declared
        header(1, 1, 4000) + good[20:],              # length that lies
        header(1, 2, 19),                            # length below the minimum
        header(1, 3, 24) + b"\x01\x00\x00\x00",      # attribute length 0
        header(1, 4, 24) + b"\x01\xff\x00\x00",      # attribute overrunning the packet
        header(1, 5, 23) + b"\x01\x03\x00",          # attribute of length 3, then nothing
        header(99, 6, 20),                           # unknown code
        header(2, 7, 20),                            # an Access-Accept sent to a server
        header(4, 8, 20),                            # accounting on the authentication port
        header(1, 9, 4096) + b"\x1a\xff" + os.urandom(253) * 15 + os.urandom(4096 - 20 - 255 * 15 - 2)[:0],
        header(1, 10, 4096) + os.urandom(4076),     # 4,096 octets of noise
        os.urandom(5000),                            # over 4,096 octets
        header(1, 11, 38) + b"\x50\x12" + os.urandom(16),  # Message-Authenticator that does not verify
        header(1, 12, 56) + b"\x50\x12" + os.urandom(16) + b"\x50\x12" + os.urandom(16),  # two of them
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.bind(("127.0.0.1", 0))
        for i, d in enumerate(datagrams):
            s.sendto(d, (host, port))
            try:
                data, _ = s.recvfrom(4096)
                fail("datagram %d (%d octets) got an answer of code %d" % (i, len(d), data[0]))
            except socket.timeout:
                pass
        for _ in range(500):
            s.sendto(os.urandom(100), (host, port))
    reply = send(c, request(c, user, password))
    expect(reply.code == pyrad.packet.AccessAccept, "server must still accept after bad input")
    print(json.dumps({"sent": len(datagrams) + 500, "answered": 0, "still_serving": True}))


def main():
    if len(sys.argv) < 7:
        fail(__doc__)
    check, host, port, acct, secret, dictionary = sys.argv[1:7]
    args = sys.argv[7:]
    c = client(host, int(port), int(acct), secret, dictionary)
    try:
        if check == "login":
            print(json.dumps(login(c, *args)))
        elif check == "replay":
            replay(c, *args)
        elif check == "wrongstate":
            wrongstate(c, *args)
        elif check == "duplicate":
            duplicate(host, int(port), c, *args)
        elif check == "proxystate":
            proxystate(host, int(port), c, *args)
        elif check == "flood":
            flood(host, int(port), c, *args)
        elif check == "badinput":
            badinput(host, int(port), c, *args)
        else:
            fail("unknown check " + check)
    except Timeout:
        print(json.dumps({"final": "timeout"}))


if __name__ == "__main__":
    main()
