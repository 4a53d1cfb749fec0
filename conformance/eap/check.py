#!/usr/bin/env python3
"""Broken EAP conversations against Stratus, sent with pyrad 2.6 (from the venv scripts/test makes).

Usage: check.py HOST PORT SECRET DICTIONARY

Each case starts its own conversation and must end in an Access-Reject carrying EAP-Failure (or, where the
RADIUS layer itself must drop the packet, in no answer). Prints one JSON line and exits non-zero on the first
case that is answered otherwise.
"""
import json
import os
import struct
import sys

import pyrad.packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

PEAP, TTLS, IDENTITY, NAK = 25, 21, 1, 3


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def eap(code, ident, body):
    return struct.pack("!BBH", code, ident, 4 + len(body)) + body


class Peer:
    def __init__(self, host, port, secret, dictionary):
        self.c = Client(server=host, authport=int(port), secret=secret.encode(), dict=Dictionary(dictionary))
        self.c.timeout = 10
        self.c.retries = 2

    def send(self, message, state=None, ma=True):
        # pyrad adds a Message-Authenticator to every Access-Request unless told not to.
        req = self.c.CreateAuthPacket(code=pyrad.packet.AccessRequest, User_Name="anonymous",
                                      message_authenticator=ma)
        for i in range(0, len(message), 253):
            req.AddAttribute("EAP-Message", message[i:i + 253])
        if state is not None:
            req["State"] = state
        # A packet that must go unanswered is waited for briefly; the rest get a generous timeout.
        self.c.timeout, self.c.retries = (10, 2) if ma else (3, 1)
        try:
            reply = self.c.SendPacket(req)
        except Timeout:
            return None
        if not req.VerifyReply(reply, enforce_ma=True):
            fail("reply authenticators do not verify")
        return reply

    @staticmethod
    def eap_of(reply):
        try:
            return b"".join(reply["EAP-Message"])
        except KeyError:
            return b""

    def start(self):
        """Identity response; returns (State, EAP request) of the Challenge."""
        reply = self.send(eap(2, 1, bytes([IDENTITY]) + b"anonymous"))
        if reply is None or reply.code != pyrad.packet.AccessChallenge:
            fail("an Identity response must get an Access-Challenge")
        return reply["State"][0], self.eap_of(reply)


def expect_reject(name, reply):
    if reply is None:
        fail("%s: no answer (expected Access-Reject)" % name)
    if reply.code != pyrad.packet.AccessReject:
        fail("%s: answered with code %d, expected Access-Reject" % (name, reply.code))
    msg = Peer.eap_of(reply)
    if not msg or msg[0] != 4:
        fail("%s: the Access-Reject must carry EAP-Failure" % name)


def main():
    if len(sys.argv) != 5:
        fail(__doc__)
    p = Peer(*sys.argv[1:5])
    results = {}

    state, req = p.start()
    results["proposed"] = req[4]
    expect_reject("unknown State", p.send(eap(2, req[1], bytes([req[4], 0])), os.urandom(16)))

    state, req = p.start()
    other = TTLS if req[4] == PEAP else PEAP
    expect_reject("method switch", p.send(eap(2, req[1], bytes([other, 0])), state))

    state, req = p.start()
    expect_reject("wrong EAP identifier", p.send(eap(2, (req[1] + 5) % 256, bytes([req[4], 0])), state))

    state, req = p.start()
    expect_reject("garbage instead of TLS records", p.send(eap(2, req[1], bytes([req[4], 0]) + os.urandom(300)), state))

    state, req = p.start()
    expect_reject("NAK to nothing Stratus offers", p.send(eap(2, req[1], bytes([NAK, 4, 6])), state))

    state, req = p.start()
    too_long = bytes([req[4], 0xC0]) + struct.pack("!I", 10 * 1024 * 1024) + os.urandom(500)
    expect_reject("declared TLS length over the limit", p.send(eap(2, req[1], too_long), state))

    # A fragment train that never ends: each fragment is acknowledged until the limit ends the conversation.
    state, req = p.start()
    rounds = 0
    while True:
        rounds += 1
        reply = p.send(eap(2, req[1], bytes([req[4], 0x40]) + os.urandom(1000)), state)
        if reply is None:
            fail("fragment train: no answer")
        if reply.code == pyrad.packet.AccessReject:
            expect_reject("fragment train", reply)
            break
        if rounds > 200:
            fail("fragment train over 200 fragments was never stopped")
        state, req = reply["State"][0], p.eap_of(reply)
    results["fragments_before_reject"] = rounds

    expect_reject("EAP Request from a peer", p.send(eap(1, 1, bytes([IDENTITY]))))
    expect_reject("EAP length that lies", p.send(struct.pack("!BBH", 2, 1, 200) + bytes([IDENTITY]) + b"x"))

    # EAP without Message-Authenticator is dropped by the RADIUS layer (RFC 3579 §3.2).
    if p.send(eap(2, 1, bytes([IDENTITY]) + b"anonymous"), ma=False) is not None:
        fail("EAP without Message-Authenticator must not be answered")

    # Handshakes that never finish: many conversations opened and abandoned.
    for _ in range(200):
        p.start()
    results["abandoned"] = 200
    print(json.dumps(results))


if __name__ == "__main__":
    main()
