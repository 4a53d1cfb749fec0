#!/usr/bin/python3
"""A SAML service provider built on python3-saml (the OneLogin toolkit), driven headless with requests.

    sp.py BASE_URL CA_PEM SCENARIO JSON_ARGS

Prints one JSON line with what the SP saw. The SP library does all the checking a real SP does (signatures,
issuer, audience, destination, InResponseTo, conditions); xmlsec1 checks the signatures a second time.
Scenarios: login, idp_initiated, slo, refused (a crafted request that must be refused), keys (make an SP key pair),
metadata (the SP's metadata, signed with sign_key/sign_cert when given; without `app` it needs no IdP).
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import zlib

import requests
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.metadata import OneLogin_Saml2_Metadata
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

SP = "https://sp.test"
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}


def settings(base, ca, a):
    if a.get("app"):
        md = browser(ca).get(f"{base}/saml/{a['app']}/metadata", timeout=10)
        md.raise_for_status()
        md_text = md.text
        idp = OneLogin_Saml2_IdPMetadataParser.parse(md_text)
    else:
        # The SP's own metadata needs no IdP (an app is made from it): a placeholder keeps the settings whole.
        md_text = ""
        idp = {"idp": {"entityId": "https://idp.invalid/saml",
                       "singleSignOnService": {"url": "https://idp.invalid/sso",
                                               "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
                       "x509cert": ""}}
    entity = a.get("sp_entity_id", f"{SP}/metadata")
    s = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": entity,
            "assertionConsumerService": {"url": a.get("acs", f"{SP}/acs"),
                                         "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
            "singleLogoutService": {"url": f"{SP}/sls",
                                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
            "NameIDFormat": a.get("nameid_format", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
            "x509cert": a.get("sp_cert", ""),
            "privateKey": a.get("sp_key", ""),
        },
        "security": {
            "authnRequestsSigned": bool(a.get("sign_requests")),
            "logoutRequestSigned": bool(a.get("sign_requests")),
            "wantMessagesSigned": bool(a.get("want_response_signed")),
            "wantAssertionsSigned": bool(a.get("want_assertion_signed", True)),
            "wantAssertionsEncrypted": bool(a.get("want_encrypted")),
            "wantNameId": True,
            "wantAttributeStatement": False,
            "requestedAuthnContext": False,
            "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
        },
    }
    s["idp"] = idp["idp"]
    return s, md_text


class SourceAdapter(requests.adapters.HTTPAdapter):
    """Connections from one local address (a loopback alias such as 127.0.0.7), to play a client elsewhere."""

    def __init__(self, source, **kw):
        self._source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kw)


def browser(ca, source=None):
    """A cookie-keeping client that trusts only the dev CA (environment CA settings would override it)."""
    http = requests.Session()
    http.trust_env = False
    http.verify = ca
    if source:
        http.mount("https://", SourceAdapter(source))
        http.mount("http://", SourceAdapter(source))
    return http


def form_fields(html):
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def unescape(v):
    return v.replace("&quot;", '"').replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_last_code = [None]


def totp(secret, offset_seconds=0):
    """The current code (oathtool), waiting for the next period when this one was used already (each code is
    accepted once). offset_seconds follows a server whose clock was moved."""
    import datetime
    import time
    for _ in range(40):
        now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_seconds)
        code = subprocess.run(["oathtool", "--totp", "-b", "--now", now.strftime("%Y-%m-%d %H:%M:%S UTC"), secret],
                              capture_output=True, text=True, check=True).stdout.strip()
        if code != _last_code[0]:
            _last_code[0] = code
            return code
        time.sleep(1)
    return code


def sign_in(http, base, page, a, trail):
    """Fill the login form (and the TOTP step) until the page is the form posting to the SP."""
    for _ in range(4):
        if 'action="/login"' in page.text:
            f = form_fields(page.text)
            trail.append("password")
            page = http.post(f"{base}/login", data={"login": unescape(f["login"]), "csrf": unescape(f["csrf"]),
                                                     "username": a["username"], "password": a["password"]})
        elif 'action="/login/totp"' in page.text:
            f = form_fields(page.text)
            trail.append("totp")
            page = http.post(f"{base}/login/totp", data={"login": unescape(f["login"]), "csrf": unescape(f["csrf"]),
                                                          "code": totp(a["totp_secret"], a.get("clock_offset", 0))})
        else:
            return page
    return page


def sp_post(page):
    m = re.search(r'<form method="post" action="([^"]+)" id="saml">', page.text)
    if not m:
        return None, None, None
    f = form_fields(page.text)
    return unescape(m.group(1)), unescape(f.get("SAMLResponse", "")), unescape(f["RelayState"]) if "RelayState" in f else None


def xmlsec_verify(xml, cert_pem, node):
    """xmlsec1 --verify of the Response (first signature) or of the Assertion extracted to its own document."""
    doc = etree.fromstring(xml)
    if node == "assertion":
        found = doc.find("saml:Assertion", NS)
        if found is None or found.find("ds:Signature", NS) is None:
            return "absent"
        doc = found
        id_attr = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
    else:
        if doc.find("ds:Signature", NS) is None:
            return "absent"
        id_attr = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
    with tempfile.TemporaryDirectory() as d:
        x, c = os.path.join(d, "m.xml"), os.path.join(d, "idp.pem")
        with open(x, "wb") as fh:
            fh.write(etree.tostring(doc))
        with open(c, "w") as fh:
            fh.write(cert_pem)
        r = subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", c, "--id-attr:ID", id_attr, x],
                           capture_output=True, text=True)
        return "ok" if r.returncode == 0 else "failed: " + r.stderr.strip()[-300:]


def consume(s, action, saml_response, relay, request_id, idp_cert_pem):
    req = {"https": "on", "http_host": "sp.test", "script_name": "/acs", "get_data": {},
           "post_data": {"SAMLResponse": saml_response, "RelayState": relay or ""}}
    auth = OneLogin_Saml2_Auth(req, s)
    auth.process_response(request_id=request_id)
    xml = base64.b64decode(saml_response)
    out = {
        "acs": action,
        "errors": auth.get_errors(),
        "reason": auth.get_last_error_reason(),
        "authenticated": auth.is_authenticated(),
        "nameid": auth.get_nameid(),
        "nameid_format": auth.get_nameid_format(),
        "session_index": auth.get_session_index(),
        "attributes": auth.get_attributes(),
        "relay_state": relay,
        "xmlsec_response": xmlsec_verify(xml, idp_cert_pem, "response"),
        "xmlsec_assertion": xmlsec_verify(xml, idp_cert_pem, "assertion"),
        "encrypted": b"EncryptedAssertion" in xml,
    }
    doc = etree.fromstring(xml)
    out["signature_methods"] = sorted({m.get("Algorithm") for m in doc.iter("{%s}SignatureMethod" % NS["ds"])})
    out["digest_methods"] = sorted({m.get("Algorithm") for m in doc.iter("{%s}DigestMethod" % NS["ds"])})
    ctx = doc.find(".//saml:AuthnContextClassRef", NS)
    out["authn_context"] = ctx.text if ctx is not None else None
    status = doc.find("samlp:Status/samlp:StatusCode", NS)
    out["status"] = status.get("Value") if status is not None else None
    sub = doc.find("samlp:Status/samlp:StatusCode/samlp:StatusCode", NS)
    out["sub_status"] = sub.get("Value") if sub is not None else None
    return out


def idp_cert(md, index=0):
    doc = etree.fromstring(md.encode())
    c = doc.findall(".//ds:X509Certificate", NS)[index].text.strip()
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(c[i:i + 64] for i in range(0, len(c), 64)) + "\n-----END CERTIFICATE-----\n"


def login(base, ca, a, http=None):
    s, md = settings(base, ca, a)
    auth = OneLogin_Saml2_Auth({"https": "on", "http_host": "sp.test", "script_name": "/", "get_data": {},
                                "post_data": {}}, s)
    url = auth.login(return_to=a.get("relay", "https://sp.test/after"), force_authn=bool(a.get("force_authn")),
                     is_passive=bool(a.get("is_passive")))
    request_id = auth.get_last_request_id()
    http = http or browser(ca, a.get("source"))
    trail = []
    page = sign_in(http, base, http.get(url), a, trail)
    action, resp, relay = sp_post(page)
    if action is None:
        return {"page_status": page.status_code, "page": page.text[-600:], "trail": trail}, http
    out = consume(s, action, resp, relay, request_id, idp_cert(md, a.get("cert_index", 0)))
    out["trail"] = trail
    out["request_id"] = request_id
    out["metadata_certificates"] = md.count("<ds:X509Certificate>")
    return out, http


def main():
    base, ca, scenario, a = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if scenario == "keys":
        with tempfile.TemporaryDirectory() as d:
            k, c = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", k, "-out", c,
                            "-days", "30", "-subj", "/CN=sp.test"], check=True, capture_output=True)
            print(json.dumps({"key": open(k).read(), "cert": open(c).read()}))
        return
    if scenario == "metadata":
        s, _ = settings(base, ca, a)
        st = OneLogin_Saml2_Settings(s, sp_validation_only=True)
        md = st.get_sp_metadata()
        if a.get("sign_key"):
            # Signed as the SP itself or its federation would sign it: enveloped, RSA-SHA256.
            md = OneLogin_Saml2_Metadata.sign_metadata(
                md, a["sign_key"], a["sign_cert"],
                sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
        print(json.dumps({"xml": md.decode() if isinstance(md, bytes) else md}))
        return
    if scenario == "login":
        out, http = login(base, ca, a)
        if a.get("again"):
            again, _ = login(base, ca, dict(a, **a["again"]), http)
            out["again"] = again
        if a.get("second_app"):
            b = dict(a, app=a["second_app"], sp_entity_id=a["second_entity"],
                     nameid_format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
            second, _ = login(base, ca, b, http)
            out["second"] = second
        print(json.dumps(out))
    elif scenario == "idp_initiated":
        s, md = settings(base, ca, a)
        http = browser(ca)
        trail = []
        page = sign_in(http, base, http.get(f"{base}/login"), a, trail)
        portal = http.get(f"{base}/portal")
        launch = re.search(rf'href="(/saml/{a["app"]}/launch)"', portal.text)
        if not launch:
            print(json.dumps({"portal": portal.text[-800:], "tiles": False}))
            return
        page = sign_in(http, base, http.get(base + launch.group(1)), a, trail)
        action, resp, relay = sp_post(page)
        out = consume(s, action, resp, relay, None, idp_cert(md))
        out["tiles"] = True
        out["trail"] = trail
        print(json.dumps(out))
    elif scenario == "slo":
        out, http = login(base, ca, a)
        s, _ = settings(base, ca, a)
        auth = OneLogin_Saml2_Auth({"https": "on", "http_host": "sp.test", "script_name": "/", "get_data": {},
                                    "post_data": {}}, s)
        url = auth.logout(name_id=out["nameid"], session_index=out["session_index"],
                          name_id_format=out["nameid_format"], return_to="https://sp.test/bye")
        # Front-channel from the signed-in browser, or (without_cookie) from another client: either ends the
        # session that signed in to the app under this NameID and SessionIndex.
        sender = browser(ca) if a.get("without_cookie") else http
        r = sender.get(url, allow_redirects=False)
        loc = r.headers.get("location", "")
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        req = {"https": "on", "http_host": "sp.test", "script_name": "/sls", "get_data": q, "post_data": {},
               "query_string": urllib.parse.urlsplit(loc).query}
        auth2 = OneLogin_Saml2_Auth(req, s)
        auth2.process_slo(keep_local_session=True, request_id=auth.get_last_request_id())
        after = http.get(f"{base}/portal", allow_redirects=False)
        print(json.dumps({"login_errors": out.get("errors"), "status": r.status_code, "location": loc.split("?")[0],
                          "errors": auth2.get_errors(), "reason": auth2.get_last_error_reason(),
                          "relay_state": q.get("RelayState"), "portal_after": after.status_code,
                          "portal_location": after.headers.get("location")}))
    elif scenario == "expired":
        http = browser(ca)
        trail = []
        page = sign_in(http, base, http.get(f"{base}/login"), a, trail)
        out = {"asked_new_password": 'action="/login/password"' in page.text}
        f = form_fields(page.text)
        fields = {"login": unescape(f["login"]), "csrf": unescape(f["csrf"])}
        weak = http.post(f"{base}/login/password", data=dict(fields, new_password="short", confirm="short"))
        out["weak_status"] = weak.status_code
        out["weak_message"] = re.sub(r"<[^>]+>", " ", weak.text)[-400:]
        ok = http.post(f"{base}/login/password", data=dict(fields, new_password=a["new_password"],
                                                           confirm=a["new_password"]))
        out["back_to_login"] = 'action="/login"' in ok.text and "Your password was changed" in ok.text
        page = sign_in(http, base, ok, dict(a, password=a["new_password"]), trail)
        out["portal"] = "Your apps" in page.text
        out["trail"] = trail
        print(json.dumps(out))
    elif scenario == "portal_login":
        # Sign in at the portal and keep the browser's cookies in a file for portal_status.
        import pickle
        http = browser(ca)
        trail = []
        page = sign_in(http, base, http.get(f"{base}/login"), a, trail)
        with open(a["jar"], "wb") as fh:
            pickle.dump(http.cookies, fh)
        print(json.dumps({"portal": "Your apps" in page.text, "trail": trail}))
    elif scenario == "portal_status":
        import pickle
        http = browser(ca)
        with open(a["jar"], "rb") as fh:
            http.cookies.update(pickle.load(fh))
        r = http.get(f"{base}/portal", allow_redirects=False)
        print(json.dumps({"status": r.status_code, "location": r.headers.get("location")}))
    elif scenario == "logout_without_csrf":
        # A page elsewhere posts the sign-out form without the session's token: refused, the session stays.
        import pickle
        http = browser(ca)
        with open(a["jar"], "rb") as fh:
            http.cookies.update(pickle.load(fh))
        r = http.post(f"{base}/portal/logout", data={"csrf": "forged"}, allow_redirects=False)
        after = http.get(f"{base}/portal", allow_redirects=False)
        print(json.dumps({"status": r.status_code, "cleared": "Max-Age=0" in r.headers.get("set-cookie", ""),
                          "portal_after": after.status_code}))
    elif scenario == "refused":
        print(json.dumps(refused(base, ca, a)))
    elif scenario == "cluster":
        print(json.dumps(cluster(base, ca, a)))


def cluster(base, ca, a):
    """Two nodes behind a load balancer without affinity: the request reaches node A (base), each form post
    goes to the other node in turn, the same request is then replayed to node B, and a signed single logout
    sent to node B by another client ends the session that node A's portal sees."""
    other = a["other"]
    s, md = settings(base, ca, a)
    auth = OneLogin_Saml2_Auth({"https": "on", "http_host": "sp.test", "script_name": "/", "get_data": {},
                                "post_data": {}}, s)
    url = auth.login(return_to="https://sp.test/after")
    request_id = auth.get_last_request_id()
    http = browser(ca)
    trail = []
    page = http.get(url)
    nodes = [other, base]
    for i in range(4):
        at = nodes[i % 2]
        if 'action="/login"' in page.text:
            f = form_fields(page.text)
            trail.append("password@" + ("B" if at == other else "A"))
            page = http.post(f"{at}/login", data={"login": unescape(f["login"]), "csrf": unescape(f["csrf"]),
                                                   "username": a["username"], "password": a["password"]})
        elif 'action="/login/totp"' in page.text:
            f = form_fields(page.text)
            trail.append("totp@" + ("B" if at == other else "A"))
            page = http.post(f"{at}/login/totp", data={"login": unescape(f["login"]), "csrf": unescape(f["csrf"]),
                                                        "code": totp(a["totp_secret"])})
        else:
            break
    action, resp, relay = sp_post(page)
    if action is None:
        return {"page_status": page.status_code, "page": page.text[-600:], "trail": trail}
    out = consume(s, action, resp, relay, request_id, idp_cert(md))
    out["trail"] = trail
    replay = http.get(url.replace(base, other, 1), allow_redirects=False)
    out["replay_status"] = replay.status_code
    out["replay_said"] = "replayed request ID" in replay.text
    out["portal_a"] = http.get(f"{base}/portal", allow_redirects=False).status_code
    out["portal_b"] = http.get(f"{other}/portal", allow_redirects=False).status_code
    logout = auth.logout(name_id=out["nameid"], session_index=out["session_index"],
                         name_id_format=out["nameid_format"], return_to="https://sp.test/bye")
    r = browser(ca).get(logout.replace(base, other, 1), allow_redirects=False)
    out["slo_status"] = r.status_code
    out["slo_location"] = r.headers.get("location", "").split("?")[0]
    out["portal_a_after"] = http.get(f"{base}/portal", allow_redirects=False).status_code
    return out


def refused(base, ca, a):
    """Send a crafted AuthnRequest; report how the IdP answered."""
    if a["kind"] == "none":
        r = browser(ca).get(f"{base}/saml/{a['app']}/sso", params={"SAMLRequest": "x"}, allow_redirects=False)
        return {"status": r.status_code, "location": None, "body": r.text[-500:]}
    s, _ = settings(base, ca, a)
    st = OneLogin_Saml2_Settings(s, sp_validation_only=True)
    req = OneLogin_Saml2_Authn_Request(st)
    xml = req.get_xml()
    if isinstance(xml, bytes):
        xml = xml.decode()
    kind = a["kind"]
    if kind == "acs":
        xml = xml.replace(f'AssertionConsumerServiceURL="{SP}/acs"', 'AssertionConsumerServiceURL="https://evil.test/acs"')
    elif kind == "issuer":
        xml = xml.replace(f">{SP}/metadata<", ">https://unknown-sp.test/metadata<")
    elif kind == "index":
        xml = xml.replace(f'AssertionConsumerServiceURL="{SP}/acs"', f'AssertionConsumerServiceIndex="{a["index"]}"')
    elif kind == "expired":
        xml = re.sub(r'IssueInstant="[^"]+"', 'IssueInstant="2020-01-01T00:00:00Z"', xml)
    elif kind == "future":
        xml = re.sub(r'IssueInstant="[^"]+"', 'IssueInstant="2099-01-01T00:00:00Z"', xml)
    elif kind == "malformed":
        xml = xml[: len(xml) // 2]
    elif kind == "dtd":
        xml = '<!DOCTYPE x [<!ENTITY e "boom">]>' + xml
    elif kind == "oversize":
        xml = xml.replace("</samlp:AuthnRequest>", "<!--" + "x" * 300000 + "--></samlp:AuthnRequest>")
    http = browser(ca)
    sso = f"{base}/saml/{a['app']}/sso"
    if kind in ("wrapped", "wrapped_same_id", "tampered", "signed_post", "index"):
        signed = OneLogin_Saml2_Utils.add_sign(xml, a["sp_key"], a["sp_cert"],
                                               sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                                               digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
        doc = etree.fromstring(signed)
        if kind == "tampered":
            doc.set("AssertionConsumerServiceURL", f"{SP}/acs2")
            body = etree.tostring(doc)
        elif kind.startswith("wrapped"):
            # The signed original hides in an Extensions element; the outer request, carrying the original's
            # signature, asks for something else.
            original = etree.fromstring(signed)
            sig = original.find("ds:Signature", NS)
            original.remove(sig)
            evil = etree.fromstring(signed)
            evil.set("ID", evil.get("ID") if kind == "wrapped_same_id" else "_evil")
            evil.set("ForceAuthn", "true")
            ext = etree.SubElement(evil, "{urn:oasis:names:tc:SAML:2.0:protocol}Extensions")
            original.append(sig)
            ext.append(original)
            body = etree.tostring(evil)
        else:
            body = signed if isinstance(signed, bytes) else signed.encode()
        r = http.post(sso, data={"SAMLRequest": base64.b64encode(body).decode(), "RelayState": "r"},
                      allow_redirects=False)
    elif kind == "bad_base64":
        r = http.get(sso, params={"SAMLRequest": "%%%not base64%%%"}, allow_redirects=False)
    elif kind == "bad_deflate":
        r = http.get(sso, params={"SAMLRequest": base64.b64encode(b"not deflate at all").decode()},
                     allow_redirects=False)
    elif kind == "tampered_redirect":
        # A correctly signed Redirect request whose signature is then altered by one byte.
        auth = OneLogin_Saml2_Auth({"https": "on", "http_host": "sp.test", "script_name": "/", "get_data": {},
                                    "post_data": {}}, s)
        url = auth.login(return_to="r")
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        sig = bytearray(base64.b64decode(q["Signature"]))
        sig[10] ^= 1
        q["Signature"] = base64.b64encode(bytes(sig)).decode()
        r = http.get(sso, params=q, allow_redirects=False)
    else:
        enc = base64.b64encode(zlib.compress(xml.encode())[2:-4]).decode()
        relay = "x" * 2000 if kind == "relay_long" else "r"
        r = http.get(sso, params={"SAMLRequest": enc, "RelayState": relay}, allow_redirects=False)
        if kind == "replay":
            r = http.get(sso, params={"SAMLRequest": enc, "RelayState": "r"}, allow_redirects=False)
    return {"status": r.status_code, "location": r.headers.get("location"), "body": r.text[-500:]}


if __name__ == "__main__":
    main()
