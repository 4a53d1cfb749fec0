#!/usr/bin/python3
"""LDAP conformance checks for Stratus with python-ldap (Debian python3-ldap).

Usage: check.py CHECK LDAP_URL LDAPS_URL CA_FILE SUFFIX [ARGS...]
Checks: rootdse | subschema BIND_DN PW | badinput BIND_DN PW | paged BIND_DN PW PAGE_SIZE EXPECTED
Exits non-zero with a message on the first failed expectation.
"""
import socket
import sys
import time

import ldap
import ldap.schema
from ldap.controls import SimplePagedResultsControl


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def connect(url, ca):
    conn = ldap.initialize(url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca)
    conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 10)
    conn.set_option(ldap.OPT_TIMEOUT, 30)
    return conn


def rootdse(url, ldaps, ca, suffix):
    # No bind at all: only the root DSE is readable.
    conn = connect(url, ca)
    attrs = ["namingContexts", "supportedLDAPVersion", "supportedControl", "supportedExtension", "vendorName", "vendorVersion", "subschemaSubentry"]
    res = conn.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", attrs)
    expect(len(res) == 1, "one root DSE entry")
    dse = res[0][1]
    expect(dse["namingContexts"] == [suffix.encode()], "namingContexts is the suffix: %r" % dse.get("namingContexts"))
    expect(dse["supportedLDAPVersion"] == [b"3"], "LDAPv3")
    expect(b"1.2.840.113556.1.4.319" in dse["supportedControl"], "paged results advertised")
    for oid in [b"1.3.6.1.4.1.1466.20037", b"1.3.6.1.4.1.4203.1.11.3", b"1.3.6.1.4.1.4203.1.11.1"]:
        expect(oid in dse["supportedExtension"], "extension %r advertised" % oid)
    expect(dse["vendorName"] == [b"Stratus"], "vendorName")
    try:
        conn.search_s(suffix, ldap.SCOPE_SUBTREE, "(objectClass=*)")
        fail("an unauthenticated search below the root DSE must be refused")
    except ldap.INSUFFICIENT_ACCESS:
        pass
    # LDAPS answers the same.
    conn = connect(ldaps, ca)
    expect(len(conn.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", ["vendorName"])) == 1, "root DSE over LDAPS")
    print("rootdse ok")


def subschema(url, ldaps, ca, suffix, dn, pw):
    conn = connect(url, ca)
    conn.simple_bind_s(dn, pw)
    res = conn.search_s("cn=Subschema", ldap.SCOPE_BASE, "(objectClass=subschema)", ["objectClasses", "attributeTypes"])
    expect(len(res) == 1, "subschema entry")
    schema = ldap.schema.SubSchema(res[0][1])
    for oc in ["posixAccount", "posixGroup", "groupOfNames", "inetOrgPerson", "sambaSamAccount"]:
        expect(schema.get_obj(ldap.schema.ObjectClass, oc) is not None, "object class %s described" % oc)
    for at in ["uidNumber", "memberUid", "memberOf", "sambaNTPassword", "entryUUID"]:
        expect(schema.get_obj(ldap.schema.AttributeType, at) is not None, "attribute %s described" % at)
    must, _ = schema.attribute_types(["posixAccount"])
    expect(any(a.names[0] == "uidNumber" for a in must.values()), "posixAccount MUST uidNumber")
    print("subschema ok")


def raw_exchange(hostport, payload, wait=5.0):
    """Send bytes, return what came back before the server closed (or the wait ran out)."""
    host, port = hostport.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=wait)
    try:
        s.sendall(payload)
    except (ConnectionResetError, BrokenPipeError):
        # The server closed while we were still sending: that is the refusal we want.
        s.close()
        return b"", True
    data = b""
    deadline = time.time() + wait
    try:
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    except ConnectionResetError:
        return data, True
    finally:
        s.close()
    return data, False


def badinput(url, ldaps, ca, suffix, dn, pw):
    hostport = url.split("://", 1)[1]
    # Garbage, a lying length, an oversized PDU, and a bind whose password is not UTF-8: each closes the connection.
    cases = {
        "garbage": b"\xff\xfe\xfd" * 10,
        "lying length": b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01",
        "oversized": b"\x30\x84\x00\x20\x00\x10\x02\x01\x01\x60\x84\x00\x20\x00\x09\x02\x01\x03\x04\x84\x00\x20\x00\x00" + b"a" * (2 * 1024 * 1024 + 64),
        "non-utf8 password": b"\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x00\x80\x02\xff\xfe",
        "truncated": b"\x30\x0c\x02\x01\x01\x60",
    }
    for name, payload in cases.items():
        data, closed = raw_exchange(hostport, payload, wait=3.0 if name == "truncated" else 10.0)
        if name == "truncated":
            expect(not data, "a truncated PDU gets no answer while incomplete")
        else:
            expect(closed, "%s: the server closes the connection" % name)
    conn = connect(url, ca)
    conn.simple_bind_s(dn, pw)
    # Deeply nested and very wide filters get an answer or a closed connection, never a crash.
    for flt in ["(!" * 1000 + "(uid=alice)" + ")" * 1000, "(|" + "".join("(uid=user%05d)" % i for i in range(10000)) + ")"]:
        try:
            c = connect(url, ca)
            c.simple_bind_s(dn, pw)
            c.search_s(suffix, ldap.SCOPE_SUBTREE, flt, ["1.1"])
        except (ldap.SERVER_DOWN, ldap.ADMINLIMIT_EXCEEDED, ldap.PROTOCOL_ERROR, ldap.UNWILLING_TO_PERFORM):
            pass
    # An unknown extended operation is a protocol error.
    try:
        conn.extop_s(ldap.extop.ExtendedRequest("1.2.3.4.5.6.7", None))
        fail("unknown extended operation accepted")
    except ldap.PROTOCOL_ERROR:
        pass
    # A flood of idle connections does not stop service.
    idle = []
    host, port = hostport.rsplit(":", 1)
    for _ in range(200):
        idle.append(socket.create_connection((host, int(port)), timeout=5))
    c = connect(url, ca)
    c.simple_bind_s(dn, pw)
    expect(len(c.search_s(suffix, ldap.SCOPE_SUBTREE, "(uid=alice)", ["1.1"])) == 1, "still serving with 200 idle connections")
    for s in idle:
        s.close()
    print("badinput ok")


def paged(url, ldaps, ca, suffix, dn, pw, size, expected):
    size, expected = int(size), int(expected)
    conn = connect(url, ca)
    conn.simple_bind_s(dn, pw)
    ctrl = SimplePagedResultsControl(True, size=size, cookie=b"")
    seen, pages = [], 0
    while True:
        msgid = conn.search_ext("ou=Users," + suffix, ldap.SCOPE_SUBTREE, "(uid=paged*)", ["uid"], serverctrls=[ctrl])
        _, data, _, rctrls = conn.result3(msgid)
        pages += 1
        expect(len(data) <= size, "page %d has %d entries, more than %d" % (pages, len(data), size))
        seen.extend(attrs["uid"][0].decode() for _, attrs in data)
        pctrls = [c for c in rctrls if c.controlType == SimplePagedResultsControl.controlType]
        expect(pctrls, "the server answers with a paged results control")
        if not pctrls[0].cookie:
            break
        ctrl.cookie = pctrls[0].cookie
        expect(pages <= expected // size + 2, "paging ends")
    expect(len(seen) == expected, "%d entries returned, expected %d" % (len(seen), expected))
    expect(len(set(seen)) == expected, "each entry exactly once (%d duplicates)" % (len(seen) - len(set(seen))))
    print("paged ok: %d entries in %d pages" % (len(seen), pages))


if __name__ == "__main__":
    check, url, ldaps, ca, suffix, *rest = sys.argv[1:]
    {"rootdse": rootdse, "subschema": subschema, "badinput": badinput, "paged": paged}[check](url, ldaps, ca, suffix, *rest)
