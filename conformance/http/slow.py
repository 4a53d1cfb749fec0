"""Slow and silent HTTPS clients against Stratus, each bounded in time: how long until the server closes them.

usage: slow.py HOST PORT CA_PEM LIMIT_SECONDS
Prints one JSON object: for each kind of client, the seconds until the server closed it (null when it was still
open after LIMIT_SECONDS) and, when it answered, the status line.
"""
import json
import socket
import ssl
import sys
import threading
import time

host, port, ca, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])


h2 = ssl.create_default_context(cafile=ca)
h2.set_alpn_protocols(["h2"])


def connect(context=ctx):
    raw = socket.create_connection((host, port), timeout=5)
    return context.wrap_socket(raw, server_hostname=host)


def wait_closed(s, start, drip=None, whole=False):
    """Read until the server closes; send one byte of `drip` (all of it when `whole`) every half second meanwhile."""
    s.settimeout(0.5)
    got = b""
    while time.monotonic() - start < limit:
        try:
            chunk = s.recv(4096)
            if not chunk:
                return time.monotonic() - start, got
            got += chunk
        except socket.timeout:
            pass
        except (ssl.SSLError, OSError):
            return time.monotonic() - start, got
        if drip:
            try:
                if whole:
                    s.sendall(drip)
                else:
                    s.sendall(drip[:1])
                    drip = drip[1:] or drip
            except OSError:
                return time.monotonic() - start, got
    return None, got


def status(got):
    line = got.split(b"\r\n", 1)[0].decode("latin-1")
    return line or None


results = {}


def slow_headers():
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    t, got = wait_closed(s, time.monotonic(), drip=b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
    results["slow_headers"] = {"closed_after": t, "status": status(got)}


def slow_body():
    s = connect()
    s.sendall(b"POST /portal/api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
    t, got = wait_closed(s, time.monotonic(), drip=b"{" * 400)
    results["slow_body"] = {"closed_after": t, "status": status(got)}


def idle_after_tls():
    s = connect()
    t, got = wait_closed(s, time.monotonic())
    results["idle_after_tls"] = {"closed_after": t, "status": status(got)}


def idle_keep_alive():
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    first = s.recv(4096)
    t, got = wait_closed(s, time.monotonic())
    results["idle_keep_alive"] = {"closed_after": t, "status": status(first)}


def h2_pings():
    """HTTP/2 with no request at all, only a PING frame every half second."""
    s = connect(h2)
    if s.selected_alpn_protocol() != "h2":
        results["h2_pings"] = {"closed_after": None, "status": "h2 not negotiated"}
        return
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"stratus!"
    t, _ = wait_closed(s, time.monotonic(), drip=ping, whole=True)
    results["h2_pings"] = {"closed_after": t, "status": None}


threads = [threading.Thread(target=f) for f in (slow_headers, slow_body, idle_after_tls, idle_keep_alive, h2_pings)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results))
