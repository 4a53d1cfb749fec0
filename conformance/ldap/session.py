#!/usr/bin/python3
"""A long-lived python-ldap session driven line by line, for tests of what happens to a bound connection while
the directory changes under it.

Usage: session.py LDAP_URL CA_FILE BIND_DN PASSWORD BASE
Prints `bound` once the simple bind succeeded (or `bind-error CODE`), then answers each line on stdin:
  search [FILTER]   -> `entries N samba M` (M: entries carrying sambaNTPassword) or `error CODE`
  quit              -> exits
"""
import sys

import ldap


def answer(text):
    print(text, flush=True)


def main():
    url, ca, dn, pw, base = sys.argv[1:6]
    conn = ldap.initialize(url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 10)
    conn.set_option(ldap.OPT_TIMEOUT, 30)
    try:
        conn.simple_bind_s(dn, pw)
    except ldap.LDAPError as e:
        answer("bind-error %s" % e.args[0].get("result"))
        return
    answer("bound")
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "quit":
            return
        if cmd != "search":
            answer("unknown command")
            continue
        try:
            res = conn.search_s(base, ldap.SCOPE_SUBTREE, arg or "(objectClass=posixAccount)",
                                ["uid", "sambaNTPassword"])
            entries = [e for e in res if e[0]]
            samba = sum(1 for _, attrs in entries if "sambaNTPassword" in attrs)
            answer("entries %d samba %d" % (len(entries), samba))
        except ldap.LDAPError as e:
            answer("error %s" % e.args[0].get("result"))


if __name__ == "__main__":
    main()
