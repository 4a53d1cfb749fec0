"""A real SMTP server for Stratus's tests (aiosmtpd): it accepts mail on a loopback port and writes each message
to a directory as `<n>.eml`, with `<n>.json` holding the envelope, whether the session used TLS and AUTH, and
the message as a mail reader shows it (Subject, To, the plain-text and HTML parts, decoded).

usage: smtp_sink.py DIR [--port P] [--tls-cert PEM --tls-key PEM] [--implicit-tls] [--user NAME --password PW]
       [--fail-first N]
Prints `ready PORT` once listening, then runs until killed. With a certificate it offers STARTTLS (and requires
it before AUTH), or with --implicit-tls speaks TLS from the first byte. With --user, AUTH PLAIN/LOGIN is required
before MAIL. With --fail-first N, the first N messages are refused with a temporary error (451), to exercise the
sender's retries.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--port", type=int, default=0)
p.add_argument("--tls-cert")
p.add_argument("--tls-key")
p.add_argument("--implicit-tls", action="store_true")
p.add_argument("--user")
p.add_argument("--password")
p.add_argument("--fail-first", type=int, default=0)
args = p.parse_args()
os.makedirs(args.dir, exist_ok=True)

context = None
if args.tls_cert:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert, args.tls_key)


class Sink:
    def __init__(self):
        self.count = 0
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refused < args.fail_first:
            self.refused += 1
            return "451 4.3.0 try again later"
        self.count += 1
        base = os.path.join(args.dir, str(self.count))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        meta = {
            "subject": str(msg["Subject"] or ""),
            "to": str(msg["To"] or ""),
            "from": str(msg["From"] or ""),
            "text": plain.get_content() if plain is not None else "",
            "html": html.get_content() if html is not None else "",
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None or args.implicit_tls,
            "authenticated": bool(session.authenticated),
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == args.user
        and auth_data.password.decode() == args.password
    )
    return AuthResult(success=ok)


kwargs = {}
if args.user:
    kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=context is not None)
if context is not None and not args.implicit_tls:
    kwargs.update(tls_context=context, require_starttls=True)
# aiosmtpd's controller cannot listen on port 0: take a free port from the kernel and use it at once.
port = args.port
if port == 0:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
controller = Controller(
    Sink(),
    hostname="127.0.0.1",
    port=port,
    ssl_context=context if args.implicit_tls else None,
    server_hostname="127.0.0.1",
    ready_timeout=10,
    **kwargs,
)
controller.start()
print(f"ready {port}", flush=True)
try:
    asyncio.run(asyncio.Event().wait())
except KeyboardInterrupt:
    pass
finally:
    controller.stop()
