//! LDAP with real clients: ldapsearch, ldapwhoami, ldappasswd, ldapcompare, ldapmodify (ldap-utils) and
//! python-ldap (`conformance/ldap/check.py`), over plain LDAP, StartTLS and LDAPS with the dev CA.

use crate::harness::Server;
use reqwest::StatusCode;
use serde_json::json;
use std::process::{Command, Output};

pub const SVC_PW: &str = "Service-Pass-123";
pub const PW: &str = "Correct-Horse-99";

/// A directory with: `svc` (Bind DN), `alice` (Samba group `staff`, NT hash), `carol` (group `devs`, no Linux
/// group), `bob` (no group), `sam` (suspended), `dave` (staged), groups `hidden` (not bound) and `empty`.
pub struct Fixture {
    pub s: Server,
    pub suffix: String,
}

impl Fixture {
    pub fn dn(&self, uid: &str) -> String {
        format!("uid={uid},ou=Users,{}", self.suffix)
    }

    pub fn ca(&self) -> String {
        self.s.dir.join("certs/ca.pem").display().to_string()
    }

    /// Run an ldap-utils command against the plain listener.
    pub fn tool(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new(cmd)
            .arg("-H")
            .arg(format!("ldap://{}", self.s.ldap))
            .args(args)
            .env("LDAPTLS_CACERT", self.ca())
            .env("LDAPTLS_REQCERT", "demand")
            .output()
            .unwrap_or_else(|e| {
                panic!("{cmd} is installed (scripts/test installs ldap-utils): {e}")
            })
    }

    pub fn search_as(&self, uid: &str, pw: &str, extra: &[&str]) -> (i32, String) {
        let dn = self.dn(uid);
        let mut args = vec!["-x", "-LLL", "-D", &dn, "-w", pw, "-b", &self.suffix];
        args.extend_from_slice(extra);
        let out = self.tool("ldapsearch", &args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }
}

async fn user(s: &Server, body: serde_json::Value) -> String {
    let (st, v) = s.post("/users", body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn group(s: &Server, body: serde_json::Value, members: &[&str], bind: bool) -> String {
    let (st, g) = s.post("/groups", body).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let id = g["id"].as_str().unwrap().to_string();
    for m in members {
        assert_eq!(
            s.put(&format!("/groups/{id}/members/{m}"), None).await.0,
            StatusCode::NO_CONTENT
        );
    }
    if bind {
        assert_eq!(
            s.put(&format!("/groups/{id}/bindings/ldap"), None).await.0,
            StatusCode::NO_CONTENT
        );
    }
    id
}

pub async fn fixture() -> Fixture {
    let s = Server::start().await;
    let svc = user(&s, json!({"username": "svc", "email": "svc@example.com", "password": SVC_PW, "ldap_bind_dn": true})).await;
    let alice = user(&s, json!({"username": "alice", "email": "alice@example.com", "firstname": "Alice", "lastname": "Smith"})).await;
    let carol = user(&s, json!({"username": "carol", "email": "carol@example.com", "firstname": "Carol", "lastname": "Jones", "password": PW,
                                  "employment": {"title": "Engineer", "department": "R&D", "employee_id": "E-7"}})).await;
    let bob = user(
        &s,
        json!({"username": "bob", "email": "bob@example.com", "password": PW}),
    )
    .await;
    let sam = user(
        &s,
        json!({"username": "sam", "email": "sam@example.com", "password": PW}),
    )
    .await;
    let dave = user(
        &s,
        json!({"username": "dave", "email": "dave@example.com", "state": "staged"}),
    )
    .await;
    group(
        &s,
        json!({"name": "staff", "linux_group": {"name": "staff", "gid": 7000}, "samba": true}),
        &[&svc, &alice, &sam, &dave],
        true,
    )
    .await;
    group(
        &s,
        json!({"name": "devs", "description": "Developers"}),
        &[&carol],
        true,
    )
    .await;
    group(
        &s,
        json!({"name": "hidden", "linux_group": {"name": "hidden"}}),
        &[&alice],
        false,
    )
    .await;
    group(
        &s,
        json!({"name": "empty", "linux_group": {"name": "empty"}}),
        &[],
        true,
    )
    .await;
    // Alice's password is set after she joined the Samba group, so her NT hash exists.
    let (st, _) = s
        .post(&format!("/users/{alice}/password"), json!({"password": PW}))
        .await;
    assert_eq!(st, StatusCode::OK);
    s.patch(&format!("/users/{sam}"), json!({"state": "suspended"}))
        .await;
    let (_, org) = s.get("/settings/org").await;
    let suffix = org["ldap_suffix"].as_str().unwrap().to_string();
    let _ = (bob, dave);
    Fixture { s, suffix }
}

/// Run `conformance/ldap/check.py <check> ...` with Debian's python3 and python-ldap.
pub fn python(f: &Fixture, check: &str, extra: &[&str]) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/ldap/check.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(check)
        .arg(format!("ldap://{}", f.s.ldap))
        .arg(format!("ldaps://{}", f.s.ldaps))
        .arg(f.ca())
        .arg(&f.suffix)
        .args(extra)
        .output()
        .expect("python3 with python-ldap is installed (scripts/test installs python3-ldap)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn service_account_reads_the_tree_with_posix_and_samba_attributes() {
    let f = fixture().await;
    let (rc, out) = f.search_as("svc", SVC_PW, &["(uid=alice)"]);
    assert_eq!(rc, 0, "{out}");
    for line in [
        "objectClass: inetOrgPerson",
        "objectClass: posixAccount",
        "objectClass: shadowAccount",
        "objectClass: sambaSamAccount",
        "uidNumber: 5001",
        "homeDirectory: /home/alice",
        "loginShell: /bin/bash",
        "cn: Alice Smith",
        "sambaAcctFlags: [U          ]",
    ] {
        assert!(out.contains(line), "missing `{line}` in\n{out}");
    }
    assert!(
        out.contains(&format!("memberOf: cn=staff,ou=Users,{}", f.suffix)),
        "{out}"
    );
    assert!(
        !out.contains("cn=hidden"),
        "unbound groups never show: {out}"
    );
    assert!(
        out.contains("sambaNTPassword: "),
        "Bind DN accounts read the NT hash: {out}"
    );
    assert!(!out.to_lowercase().contains("userpassword"), "{out}");

    // Carol: no Samba group, no Samba attributes; employment attributes mapped.
    let (_, out) = f.search_as("svc", SVC_PW, &["(uid=carol)"]);
    assert!(!out.contains("samba"), "{out}");
    assert!(
        out.contains("title: Engineer")
            && out.contains("employeeNumber: E-7")
            && out.contains("departmentNumber: R&D"),
        "{out}"
    );

    // Who is visible: bound and not staged; suspended users show as expired.
    let (_, out) = f.search_as(
        "svc",
        SVC_PW,
        &["(objectClass=posixAccount)", "uid", "shadowExpire"],
    );
    for u in ["svc", "alice", "carol", "sam"] {
        assert!(out.contains(&format!("uid: {u}\n")), "{u} visible: {out}");
    }
    assert!(
        !out.contains("uid: bob") && !out.contains("uid: dave"),
        "{out}"
    );
    assert!(
        out.contains("shadowExpire: 1"),
        "suspended user is expired for PAM: {out}"
    );
}

#[tokio::test]
async fn groups_are_consistent_across_posix_group_of_names_and_member_of() {
    let f = fixture().await;
    let (_, out) = f.search_as(
        "svc",
        SVC_PW,
        &[
            "(&(objectClass=posixGroup)(memberUid=alice))",
            "cn",
            "gidNumber",
            "memberUid",
            "member",
            "objectClass",
        ],
    );
    assert!(
        out.contains("cn: staff") && out.contains("gidNumber: 7000"),
        "{out}"
    );
    assert!(
        out.contains("objectClass: groupOfNames") && out.contains("objectClass: sambaGroupMapping"),
        "{out}"
    );
    for u in ["svc", "alice", "sam"] {
        assert!(out.contains(&format!("memberUid: {u}")), "{out}");
        assert!(
            out.contains(&format!("member: uid={u},ou=Users,{}", f.suffix)),
            "{out}"
        );
    }
    assert!(
        !out.contains("memberUid: dave"),
        "staged users are not members in LDAP: {out}"
    );
    let (_, out) = f.search_as(
        "svc",
        SVC_PW,
        &[&format!("(member={})", f.dn("carol")), "cn", "objectClass"],
    );
    assert!(
        out.contains("cn: devs") && !out.contains("posixGroup"),
        "a group without a Linux group is only groupOfNames: {out}"
    );
    let (_, out) = f.search_as(
        "svc",
        SVC_PW,
        &[&format!("(memberOf=cn=devs,ou=Users,{})", f.suffix), "uid"],
    );
    assert_eq!(out.matches("uid: ").count(), 1, "{out}");
    let (_, out) = f.search_as("svc", SVC_PW, &["(objectClass=groupOfNames)", "cn"]);
    assert!(
        !out.contains("cn: hidden") && !out.contains("cn: empty"),
        "unbound and empty groups never show: {out}"
    );
}

#[tokio::test]
async fn every_filter_type_scope_and_attribute_selection() {
    let f = fixture().await;
    let count = |filter: &str| {
        let (rc, out) = f.search_as("svc", SVC_PW, &[filter, "1.1"]);
        assert!(rc == 0, "{filter}: {out}");
        out.matches("dn: ").count()
    };
    assert_eq!(count("(uid=ALICE)"), 1, "uid is case-insensitive");
    assert_eq!(count("(cn=al*)"), 1);
    assert_eq!(count("(cn=*Jon*)"), 1);
    assert_eq!(count("(&(uidNumber>=5001)(uidNumber<=5002))"), 2);
    assert_eq!(
        count("(!(objectClass=posixAccount))"),
        5,
        "suffix, ou, Samba domain, staff, devs"
    );
    assert_eq!(count("(|(uid=alice)(mail=carol@example.com))"), 2);
    assert_eq!(count("(mail~=Alice@Example.com)"), 1);
    assert_eq!(count("(telephoneNumber=*)"), 0);
    assert_eq!(count("(uidNumber>=abc)"), 0, "undefined is not true");

    let scoped = |base: &str, scope: &str| {
        let out = f.tool(
            "ldapsearch",
            &[
                "-x",
                "-LLL",
                "-D",
                &f.dn("svc"),
                "-w",
                SVC_PW,
                "-b",
                base,
                "-s",
                scope,
                "(objectClass=*)",
                "1.1",
            ],
        );
        String::from_utf8_lossy(&out.stdout).matches("dn: ").count()
    };
    let ou = format!("ou=Users,{}", f.suffix);
    assert_eq!(scoped(&f.suffix, "base"), 1);
    assert_eq!(scoped(&f.suffix, "one"), 2, "ou=Users and the Samba domain");
    assert_eq!(scoped(&ou, "one"), 6, "4 users and 2 groups");
    assert_eq!(scoped(&f.suffix, "sub"), 9);

    // `+` adds operational attributes; `-A` (typesOnly) drops values; explicit names select.
    let (_, out) = f.search_as("svc", SVC_PW, &["(uid=carol)", "+"]);
    assert!(
        out.contains("entryUUID: ") && out.contains("createTimestamp: ") && !out.contains("mail:"),
        "{out}"
    );
    let (_, out) = f.search_as("svc", SVC_PW, &["-A", "(uid=carol)", "mail"]);
    assert!(
        out.contains("mail\n") || out.lines().any(|l| l.trim() == "mail:"),
        "{out}"
    );
    assert!(!out.contains("carol@example.com"), "{out}");

    // Size limit.
    let out = f.tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-z",
            "1",
            "-D",
            &f.dn("svc"),
            "-w",
            SVC_PW,
            "-b",
            &ou,
            "(objectClass=posixAccount)",
            "1.1",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "sizeLimitExceeded");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches("dn: ").count(),
        1
    );
}

#[tokio::test]
async fn ordinary_users_see_only_themselves() {
    let f = fixture().await;
    let (rc, out) = f.search_as("carol", PW, &["(objectClass=*)", "1.1"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(out.matches("dn: ").count(), 1, "{out}");
    assert!(out.contains(&f.dn("carol")));
    let out = f.tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-D",
            &f.dn("carol"),
            "-w",
            PW,
            "-b",
            &f.dn("alice"),
            "-s",
            "base",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(32),
        "another user's entry does not exist for her"
    );
    let (_, own) = f.search_as("carol", PW, &["(uid=carol)", "sambaNTPassword", "mail"]);
    assert!(own.contains("mail: carol@example.com"), "{own}");
}

#[tokio::test]
async fn every_failed_bind_is_invalid_credentials_and_recorded() {
    let f = fixture().await;
    let whoami = |dn: &str, pw: &str| {
        let out = f.tool("ldapwhoami", &["-x", "-D", dn, "-w", pw]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        whoami(&f.dn("carol"), PW),
        (0, format!("dn:{}\n", f.dn("carol")))
    );
    assert_eq!(whoami(&f.dn("carol"), "Wrong-Password-1").0, 49);
    assert_eq!(whoami(&f.dn("nobody"), PW).0, 49);
    assert_eq!(whoami(&f.dn("bob"), PW).0, 49, "not bound to LDAP");
    assert_eq!(whoami(&f.dn("sam"), PW).0, 49, "suspended");
    assert_eq!(whoami(&f.dn("dave"), PW).0, 49, "staged");
    assert_eq!(whoami("cn=admin,dc=example,dc=com", PW).0, 49);
    let anon = f.tool("ldapsearch", &["-x", "-b", &f.suffix]);
    assert_eq!(anon.status.code(), Some(48), "anonymous bind refused");
    let unauth = f.tool("ldapwhoami", &["-x", "-D", &f.dn("carol"), "-w", ""]);
    assert_eq!(
        unauth.status.code(),
        Some(53),
        "unauthenticated bind refused"
    );

    for (user, reason) in [
        ("carol", "wrong password"),
        ("bob", "no group of the user is bound to this resource"),
        ("sam", "user is suspended"),
        ("dave", "user is staged, not yet active"),
    ] {
        let ev = f.s.events("ldap_bind", user).await;
        assert!(
            ev.iter()
                .any(|e| e["reason"] == reason && e["success"] == false),
            "{user}: {ev:?}"
        );
    }
    let ev = f.s.events("ldap_bind", "carol").await;
    assert!(ev
        .iter()
        .any(|e| e["success"] == true && e["client_ip"] == "127.0.0.1"));
}

#[tokio::test]
async fn ldap_failures_lock_the_account_everywhere() {
    let f = fixture().await;
    f.s.lockout(3, 0).await;
    for _ in 0..3 {
        f.tool(
            "ldapwhoami",
            &["-x", "-D", &f.dn("carol"), "-w", "Wrong-Password-1"],
        );
    }
    assert_eq!(
        f.tool("ldapwhoami", &["-x", "-D", &f.dn("carol"), "-w", PW])
            .status
            .code(),
        Some(49)
    );
    assert_eq!(
        f.s.portal_login("carol", PW, None).await.0,
        StatusCode::FORBIDDEN,
        "locked on the portal too"
    );
}

#[tokio::test]
async fn password_modify_compare_and_writes() {
    let f = fixture().await;
    let dn = f.dn("carol");
    // ldappasswd prints the result code and the server's message.
    let weak = f.tool(
        "ldappasswd",
        &["-x", "-D", &dn, "-w", PW, "-a", PW, "-s", "short"],
    );
    let text = String::from_utf8_lossy(&weak.stdout);
    assert!(!weak.status.success());
    assert!(
        text.contains("Constraint violation (19)")
            && text.contains("password must be at least 12 characters long"),
        "{text}"
    );
    let other = f.tool(
        "ldappasswd",
        &[
            "-x",
            "-D",
            &dn,
            "-w",
            PW,
            "-a",
            PW,
            "-s",
            "Brand-New-Pass-9",
            &f.dn("alice"),
        ],
    );
    assert!(
        String::from_utf8_lossy(&other.stdout).contains("(50)"),
        "only one's own password"
    );
    let ok = f.tool(
        "ldappasswd",
        &[
            "-x",
            "-D",
            &dn,
            "-w",
            PW,
            "-a",
            PW,
            "-s",
            "Brand-New-Pass-9",
        ],
    );
    assert!(
        ok.status.success() && ok.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        f.tool("ldapwhoami", &["-x", "-D", &dn, "-w", "Brand-New-Pass-9"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        f.tool("ldapwhoami", &["-x", "-D", &dn, "-w", PW])
            .status
            .code(),
        Some(49),
        "old password no longer works"
    );
    assert!(!f.s.events("password_change", "carol").await.is_empty());

    let compare = |target: &str, assertion: &str| {
        f.tool(
            "ldapcompare",
            &["-x", "-D", &dn, "-w", "Brand-New-Pass-9", target, assertion],
        )
        .status
        .code()
    };
    assert_eq!(compare(&dn, "uid:carol"), Some(6), "compareTrue");
    assert_eq!(
        compare(&dn, "mail:other@example.com"),
        Some(5),
        "compareFalse"
    );
    assert_eq!(
        compare(&dn, "telephoneNumber:1"),
        Some(16),
        "noSuchAttribute"
    );
    assert_eq!(
        compare(&f.dn("alice"), "uid:alice"),
        Some(32),
        "others' entries are invisible"
    );

    let ldif = format!("dn: {dn}\nchangetype: modify\nreplace: mail\nmail: x@example.com\n");
    let mut child = Command::new("ldapmodify")
        .args([
            "-x",
            "-H",
            &format!("ldap://{}", f.s.ldap),
            "-D",
            &f.dn("svc"),
            "-w",
            SVC_PW,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(53), "writes are refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("managed through the Stratus API"));
    let del = f.tool("ldapdelete", &["-x", "-D", &f.dn("svc"), "-w", SVC_PW, &dn]);
    assert_eq!(del.status.code(), Some(53));
}

#[tokio::test]
async fn starttls_and_ldaps_with_the_dev_ca() {
    let f = fixture().await;
    let out = f.tool("ldapwhoami", &["-x", "-ZZ", "-D", &f.dn("carol"), "-w", PW]);
    assert!(
        out.status.success(),
        "StartTLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ldapwhoami")
        .args([
            "-x",
            "-H",
            &format!("ldaps://{}", f.s.ldaps),
            "-D",
            &f.dn("carol"),
            "-w",
            PW,
        ])
        .env("LDAPTLS_CACERT", f.ca())
        .env("LDAPTLS_REQCERT", "demand")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "LDAPS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let untrusted = Command::new("ldapwhoami")
        .args([
            "-x",
            "-H",
            &format!("ldaps://{}", f.s.ldaps),
            "-D",
            &f.dn("carol"),
            "-w",
            PW,
        ])
        .env("LDAPTLS_CACERT", "/etc/ssl/certs/ca-certificates.crt")
        .env("LDAPTLS_REQCERT", "demand")
        .output()
        .unwrap();
    assert!(
        !untrusted.status.success(),
        "a client that does not trust the dev CA refuses the server"
    );
}

#[tokio::test]
async fn python_ldap_root_dse_subschema_paging_and_bad_input() {
    let f = fixture().await;
    let (ok, out) = python(&f, "rootdse", &[]);
    assert!(ok, "{out}");
    let (ok, out) = python(&f, "subschema", &[&f.dn("svc"), SVC_PW]);
    assert!(ok, "{out}");
    let (ok, out) = python(&f, "badinput", &[&f.dn("svc"), SVC_PW]);
    assert!(ok, "{out}");
    // The server is still serving after all that.
    let (rc, out) = f.search_as("svc", SVC_PW, &["(uid=alice)", "1.1"]);
    assert_eq!(rc, 0, "{out}");
}

#[tokio::test]
async fn paged_search_over_2500_users_returns_each_exactly_once() {
    let f = fixture().await;
    let (_, groups) = f.s.get("/groups").await;
    let staff = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "devs")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = std::sync::Arc::new(f.s.http.clone());
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (http, url, staff) = (std::sync::Arc::clone(&s), f.s.url.clone(), staff.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..2500).step_by(8) {
                let name = format!("paged{i:04}");
                let r = http
                    .post(format!("{url}/api/v1/users"))
                    .bearer_auth(crate::harness::API_KEY)
                    .json(&json!({"username": name, "email": format!("{name}@example.com")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let id = r.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let r = http
                    .put(format!("{url}/api/v1/groups/{staff}/members/{id}"))
                    .bearer_auth(crate::harness::API_KEY)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, out) = python(&f, "paged", &[&f.dn("svc"), SVC_PW, "100", "2500"]);
    assert!(ok, "{out}");
}

/// `count` users `many00`… without passwords, in the bound group `devs`, so they are visible in LDAP.
async fn many_users(f: &Fixture, count: usize) {
    let (_, groups) = f.s.get("/groups").await;
    let devs = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "devs")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..count {
        let name = format!("many{i:02}");
        let id = user(
            &f.s,
            json!({"username": name, "email": format!("{name}@example.com")}),
        )
        .await;
        let (st, _) = f.s.put(&format!("/groups/{devs}/members/{id}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
}

/// ldapsearch as the service account under ou=Users with `extra` options: (exit code, entries returned, output).
fn svc_search(f: &Fixture, extra: &[&str], filter: &str) -> (Option<i32>, usize, String) {
    let (dn, ou) = (f.dn("svc"), format!("ou=Users,{}", f.suffix));
    let mut args = vec!["-x", "-LLL", "-D", &dn, "-w", SVC_PW, "-b", &ou];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[filter, "1.1"]);
    let out = f.tool("ldapsearch", &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code(),
        stdout.matches("dn: ").count(),
        stdout + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn client_size_limit_applies_to_the_whole_paged_search() {
    let f = fixture().await;
    many_users(&f, 25).await;
    let search = |extra: &[&str]| {
        let (code, n, out) = svc_search(&f, extra, "(uid=many*)");
        ((code, n), out)
    };
    let (got, out) = search(&["-z", "10", "-E", "pr=50/noprompt"]);
    assert_eq!(got, (Some(4), 10), "one page larger than the limit: {out}");
    let (got, out) = search(&["-z", "10", "-E", "pr=4/noprompt"]);
    assert_eq!(got, (Some(4), 10), "the limit counts every page: {out}");
    let (got, out) = search(&["-z", "25", "-E", "pr=4/noprompt"]);
    assert_eq!(
        got,
        (Some(0), 25),
        "exactly the limit is not exceeded: {out}"
    );
    let (got, out) = search(&["-E", "pr=4/noprompt"]);
    assert_eq!(got, (Some(0), 25), "no limit: {out}");
    let (got, out) = search(&["-z", "10"]);
    assert_eq!(got, (Some(4), 10), "not paged: {out}");
}

#[tokio::test]
async fn critical_controls_stratus_does_not_implement_are_refused() {
    let f = fixture().await;
    // Server-side sort, DirSync and a private OID, each marked critical.
    for control in ["!sss=cn", "!dirSync=0/0", "!1.3.6.1.4.1.99999.1"] {
        let (code, n, out) = svc_search(&f, &["-E", control], "(uid=alice)");
        assert_eq!(
            (code, n),
            (Some(12), 0),
            "{control}: unavailableCriticalExtension: {out}"
        );
    }
    // The same controls without criticality are ignored, as RFC 4511 §4.1.11 asks.
    for control in ["sss=cn", "1.3.6.1.4.1.99999.1"] {
        let (code, n, out) = svc_search(&f, &["-E", control], "(uid=alice)");
        assert_eq!((code, n), (Some(0), 1), "{control}: {out}");
    }
    // Paged results are a search control: critical on any other operation, they are refused too.
    let out = f.tool(
        "ldapwhoami",
        &[
            "-x",
            "-e",
            "!1.2.840.113556.1.4.319",
            "-D",
            &f.dn("carol"),
            "-w",
            PW,
        ],
    );
    // ldapwhoami exits 1 for any failed operation; the result code is in its message.
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("Critical extension is unavailable (12)"),
        "{text}"
    );
    let out = f.tool(
        "ldapwhoami",
        &["-x", "-e", "!manageDSAit", "-D", &f.dn("carol"), "-w", PW],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "ManageDsaIT is honoured: there are no referral objects: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn unknown_non_critical_controls_are_ignored_without_a_warning() {
    let f = fixture().await;
    for _ in 0..3 {
        let (code, n, out) = svc_search(&f, &["-E", "1.3.6.1.4.1.99999.2"], "(uid=alice)");
        assert_eq!((code, n), (Some(0), 1), "{out}");
    }
    let log = std::fs::read_to_string(f.s.dir.with_extension("log")).unwrap();
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.contains("1.3.6.1.4.1.99999.2")),
        "a control any client can send is not worth a warning:\n{log}"
    );
}

#[tokio::test]
async fn the_bind_name_must_be_a_dn_compared_by_dn_rules() {
    let f = fixture().await;
    let whoami = |dn: &str| {
        let out = f.tool("ldapwhoami", &["-x", "-D", dn, "-w", PW]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = whoami("carol");
    assert_eq!(code, Some(34), "a bare username is not a DN: {out}");
    let (code, out) = whoami("uid=carol");
    assert_eq!(code, Some(49), "a DN outside the tree: {out}");
    let (code, out) = whoami("uid=carol,ou=Users,dc=elsewhere,dc=example");
    assert_eq!(code, Some(49), "{out}");
    let (code, out) = whoami(&format!("uid=carol+cn=x,ou=Users,{}", f.suffix));
    assert_eq!(code, Some(49), "a multi-valued RDN names no user: {out}");

    // Attribute types in any case or as OIDs, spaces around separators and values in any case name the same DN.
    let loud = format!("UID=Carol , OU=USERS , {}", f.suffix.to_uppercase());
    let oid = format!(
        "0.9.2342.19200300.100.1.1=carol,2.5.4.11=users,{}",
        f.suffix
    );
    for dn in [loud, oid] {
        let (code, out) = whoami(&dn);
        assert_eq!(code, Some(0), "{dn}: {out}");
        assert!(
            out.contains(&format!("dn:{}", f.dn("carol"))),
            "the bound identity is the entry's own DN: {out}"
        );
    }
    let (_, ev) = f.s.get("/events?type=ldap_bind&limit=100").await;
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "the bind name is not a DN" && e["success"] == false),
        "{ev}"
    );
}

#[tokio::test]
async fn ldap_suffix_is_validated_normalised_and_matched_by_dn_rules() {
    let mut f = fixture().await;
    let (st, e) =
        f.s.patch("/settings/org", json!({"ldap_suffix": "o=Acme+c=US"}))
            .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "ldap_suffix", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one attribute per RDN"),
        "{e}"
    );
    let (st, org) =
        f.s.patch(
            "/settings/org",
            json!({"ldap_suffix": "dc=Example, DC=com"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{org}");
    assert_eq!(org["ldap_suffix"], "dc=Example,dc=com");

    let (st, org) =
        f.s.patch(
            "/settings/org",
            json!({"ldap_suffix": r"o=Acme\2C Inc , DC=com"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{org}");
    assert_eq!(org["ldap_suffix"], r"o=Acme\, Inc,dc=com");
    f.suffix = org["ldap_suffix"].as_str().unwrap().to_string();

    // Clients name the tree with the escaped comma in either form and types and values in any case.
    let out = f.tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-D",
            r"uid=svc,ou=users,O=acme\, inc,dc=COM",
            "-w",
            SVC_PW,
            "-b",
            r"O=ACME\2c INC,DC=com",
            "(uid=alice)",
            "1.1",
        ],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(r"dn: uid=alice,ou=Users,o=Acme\, Inc,dc=com"),
        "{text}"
    );
    let (dn, ou) = (f.dn("svc"), format!("ou=Users,{}", f.suffix));
    let out = f.tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-D",
            &dn,
            "-w",
            SVC_PW,
            "-b",
            "",
            "-s",
            "base",
            "namingContexts",
        ],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(r"namingContexts: o=Acme\, Inc,dc=com"),
        "{text}"
    );
    let (code, n, out) = svc_search(&f, &["-s", "base"], "(objectClass=*)");
    assert_eq!((code, n), (Some(0), 1), "{ou}: {out}");
}
