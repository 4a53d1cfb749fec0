#!/usr/bin/env python3
"""Compare Stratus's RADIUS dictionary with the one FreeRADIUS ships (Debian freeradius-common).

Usage: dictionary.py STRATUS_DICTIONARY_DIR [FREERADIUS_SHARE_DIR]

Every attribute Stratus defines that FreeRADIUS also defines (by name, case-insensitive) must have the same
vendor, number and base type, and every named value the same number. Attributes FreeRADIUS lacks are listed;
only the ones in ONLY_OURS may be among them. Prints a summary line of JSON and exits non-zero on a difference.
"""
import glob
import json
import os
import sys

# Names Stratus defines that FreeRADIUS 3.2 does not: a second name for Cisco's AV pair, and an RFC 2548
# attribute FreeRADIUS leaves out.
ONLY_OURS = {"cisco-av-pair", "ms-arap-challenge"}
# FreeRADIUS gives Vendor-Specific its own `vsa` type; Stratus reads it as octets.
SAME_TYPE = {("octets", "vsa")}


def tokens(line):
    return line.split("#", 1)[0].split()


def load_ours(root):
    attrs, values, vendors = {}, {}, {}

    def read(name):
        vendor = 0
        with open(os.path.join(root, name), encoding="utf-8") as f:
            for t in map(tokens, f):
                if not t:
                    continue
                if t[0] == "$INCLUDE":
                    read(t[1])
                elif t[0] == "VENDOR":
                    vendors[t[1].lower()] = int(t[2])
                elif t[0] == "BEGIN-VENDOR":
                    vendor = vendors[t[1].lower()]
                elif t[0] == "END-VENDOR":
                    vendor = 0
                elif t[0] == "ATTRIBUTE":
                    attrs[t[1].lower()] = (vendor, int(t[2]), t[3])
                elif t[0] == "VALUE":
                    values[(t[1].lower(), t[2].lower())] = int(t[3])

    read("dictionary")
    return attrs, values


def load_freeradius(share):
    attrs, values, vendors = {}, {}, {}
    files = sorted(glob.glob(os.path.join(share, "dictionary.*")))
    # Vendors first: attribute lines may name a vendor defined in another file.
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for t in map(tokens, f):
                if len(t) >= 3 and t[0] == "VENDOR":
                    vendors[t[1].lower()] = int(t[2], 0)
    for path in files:
        stack = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for t in map(tokens, f):
                if not t:
                    continue
                if t[0] == "BEGIN-VENDOR":
                    stack.append(vendors.get(t[1].lower(), -1))
                elif t[0] == "END-VENDOR" and stack:
                    stack.pop()
                elif t[0] == "ATTRIBUTE" and len(t) >= 4 and t[2].isdigit():
                    vendor = stack[-1] if stack else 0
                    for extra in t[4:]:
                        if extra.lower() in vendors:
                            vendor = vendors[extra.lower()]
                    base = t[3].split("[", 1)[0].lower()
                    attrs.setdefault(t[1].lower(), []).append((vendor, int(t[2]), base))
                elif t[0] == "VALUE" and len(t) >= 4:
                    try:
                        values.setdefault((t[1].lower(), t[2].lower()), set()).add(int(t[3], 0))
                    except ValueError:
                        pass
    return attrs, values


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    ours, our_values = load_ours(sys.argv[1])
    theirs, their_values = load_freeradius(sys.argv[2] if len(sys.argv) > 2 else "/usr/share/freeradius")
    if not theirs:
        print("FAIL: no FreeRADIUS dictionaries found")
        sys.exit(1)
    problems, missing = [], []
    for name, (vendor, number, typ) in sorted(ours.items()):
        cands = theirs.get(name)
        if not cands:
            missing.append(name)
            if name not in ONLY_OURS:
                problems.append("%s: not in FreeRADIUS" % name)
            continue
        match = [c for c in cands if c[0] == vendor and c[1] == number]
        if not match:
            problems.append("%s: ours vendor %d number %d, FreeRADIUS %s" % (name, vendor, number, cands))
        elif match[0][2] != typ and (typ, match[0][2]) not in SAME_TYPE:
            problems.append("%s: ours type %s, FreeRADIUS %s" % (name, typ, match[0][2]))
    compared_values = 0
    for key, number in sorted(our_values.items()):
        theirs_v = their_values.get(key)
        if theirs_v is None:
            continue
        compared_values += 1
        if number not in theirs_v:
            problems.append("VALUE %s %s: ours %d, FreeRADIUS %s" % (key[0], key[1], number, sorted(theirs_v)))
    for p in problems:
        print("FAIL: " + p)
    print(json.dumps({"attributes": len(ours), "only_ours": missing, "values_compared": compared_values,
                      "problems": len(problems)}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
