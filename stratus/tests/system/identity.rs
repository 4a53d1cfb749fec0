//! Moving in: e-mail-shaped user names as Okta and Entra ID provision them, used over LDAP (ldapwhoami), RADIUS
//! (radclient) and SAML (python3-saml); legacy password hashes imported from an OpenLDAP dump.

use crate::harness::Server;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;

const PW: &str = "Correct-Horse-9";
const DEE_PW: &str = "Other-Horse-8";
const SECRET: &str = crate::radius::SECRET;

async fn scim(
    s: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = s
        .http
        .request(method, format!("{}/scim/v2{path}", s.url))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let st = resp.status();
    (
        st,
        serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

async fn suffix(s: &Server) -> String {
    let (_, org) = s.get("/settings/org").await;
    org["ldap_suffix"].as_str().unwrap().to_string()
}

/// `ldapwhoami` as `uid=<uid>` with a password: (exit code, output).
pub fn whoami(s: &Server, suffix: &str, uid: &str, pw: &str) -> (Option<i32>, String) {
    let out = Command::new("ldapwhoami")
        .args(["-x", "-H", &format!("ldap://{}", s.ldap)])
        .args(["-D", &format!("uid={uid},ou=Users,{suffix}"), "-w", pw])
        .output()
        .expect("ldapwhoami is installed (scripts/test installs ldap-utils)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn pap(s: &Server, user: &str, pw: &str) -> bool {
    let (ok, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        SECRET,
        &format!("User-Name=\"{user}\",User-Password=\"{pw}\",Message-Authenticator=0x00"),
    );
    ok && out.contains("Access-Accept")
}

/// A group bound to LDAP, a RADIUS profile for loopback and a SAML app; returns (group id, app id).
async fn everything_bound(s: &Server) -> (String, String) {
    let (st, p) = s
        .post(
            "/radius-servers",
            json!({"name": "ap", "networks": ["127.0.0.1/32"], "secret": SECRET}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let profile = p["id"].as_str().unwrap().to_string();
    let (st, a) = s
        .post(
            "/apps",
            json!({"name": "Example SP", "sp_entity_id": "https://sp.test/metadata",
                   "acs_urls": ["https://sp.test/acs"], "sign": "both"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let app = a["id"].as_str().unwrap().to_string();
    let group = crate::radius::group(
        s,
        json!({"name": "everyone"}),
        &[],
        Some(&format!("radius:{profile}")),
    )
    .await;
    for r in ["ldap".to_string(), format!("app:{app}")] {
        let (st, _) = s.put(&format!("/groups/{group}/bindings/{r}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
    (group, app)
}

#[tokio::test]
async fn e_mail_user_names_from_okta_and_entra_work_on_every_protocol() {
    let s = Server::start().await;
    let (_, t) = s.post("/scim-tokens", json!({"name": "idp"})).await;
    let token = t["token"].as_str().unwrap().to_string();
    let (group, app) = everything_bound(&s).await;

    // Okta's default: the Okta username (an e-mail address, mixed case as typed) with a pushed password.
    let okta = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Jane.Doe@Example.com", "externalId": "00u1",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"primary": true, "value": "jane.doe@example.com", "type": "work"}],
        "password": PW, "active": true});
    let (st, jane) = scim(&s, &token, Method::POST, "/Users", Some(okta.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{jane}");
    assert_eq!(jane["userName"], "Jane.Doe@Example.com", "case is kept");
    let jane_id = jane["id"].as_str().unwrap().to_string();
    // Entra's default: the userPrincipalName, whose local part collides with Jane's.
    let entra = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jane.doe@contoso.onmicrosoft.com", "externalId": "a7f0",
        "name": {"givenName": "Jane", "familyName": "Dee"},
        "emails": [{"primary": true, "value": "jdee@contoso.com", "type": "work"}],
        "active": true});
    let (st, dee) = scim(&s, &token, Method::POST, "/Users", Some(entra)).await;
    assert_eq!(st, StatusCode::CREATED, "{dee}");
    let dee_id = dee["id"].as_str().unwrap().to_string();

    // The POSIX user names derived from them, collision handled.
    let (_, u) = s.get(&format!("/users/{jane_id}")).await;
    assert_eq!(
        (u["username"].as_str(), u["login_name"].as_str()),
        (Some("jane.doe"), Some("Jane.Doe@Example.com"))
    );
    let (_, u) = s.get(&format!("/users/{dee_id}")).await;
    assert_eq!(u["username"], "jane.doe2", "{u}");

    // The lookups both IdPs make before every push find them, whatever the case.
    for (filter, id) in [
        ("JANE.DOE@example.COM", &jane_id),
        ("Jane.Doe@Contoso.onmicrosoft.com", &dee_id),
    ] {
        let (st, list) = scim(
            &s,
            &token,
            Method::GET,
            &format!("/Users?filter=userName%20eq%20%22{filter}%22"),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            (
                list["totalResults"].as_u64(),
                list["Resources"][0]["id"].as_str()
            ),
            (Some(1), Some(id.as_str())),
            "{filter}: {list}"
        );
    }
    // The same login name in another case is the same name.
    let mut again = okta.clone();
    again["userName"] = json!("JANE.DOE@EXAMPLE.COM");
    again["emails"][0]["value"] = json!("other@example.com");
    let (st, e) = scim(&s, &token, Method::POST, "/Users", Some(again)).await;
    assert_eq!(
        (st, e["scimType"].as_str()),
        (StatusCode::CONFLICT, Some("uniqueness")),
        "{e}"
    );

    // Entra sends no password: the admin sets one. Both join the group bound to LDAP, RADIUS and the app.
    let (st, _) = s
        .post(
            &format!("/users/{dee_id}/password"),
            json!({"password": DEE_PW}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    for id in [&jane_id, &dee_id] {
        let (st, _) = s.put(&format!("/groups/{group}/members/{id}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }

    // LDAP: the uid is the POSIX name.
    let suffix = suffix(&s).await;
    for (uid, pw) in [("jane.doe", PW), ("jane.doe2", DEE_PW)] {
        let (code, out) = whoami(&s, &suffix, uid, pw);
        assert_eq!(code, Some(0), "{uid}: {out}");
        assert!(out.contains(&format!("dn:uid={uid},ou=Users,")), "{out}");
    }
    // RADIUS: the POSIX name or the login name.
    assert!(pap(&s, "jane.doe", PW));
    assert!(pap(&s, "jane.doe2", DEE_PW));
    assert!(pap(&s, "Jane.Doe@Example.com", PW));
    assert!(pap(&s, "jane.doe@contoso.onmicrosoft.com", DEE_PW));
    assert!(!pap(&s, "jane.doe", "Wrong-Horse-9"));
    // A profile that strips realms still takes a login name as its own user, never as the user whose name the
    // stripped local part happens to be; other names lose their realm.
    let (_, profiles) = s.get("/radius-servers").await;
    let profile = profiles[0]["id"]
        .as_str()
        .or(profiles["servers"][0]["id"].as_str())
        .unwrap()
        .to_string();
    let (st, v) = s
        .patch(
            &format!("/radius-servers/{profile}"),
            json!({"realm": {"mode": "strip", "realms": []}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(pap(&s, "jane.doe@contoso.onmicrosoft.com", DEE_PW));
    assert!(!pap(&s, "jane.doe@contoso.onmicrosoft.com", PW));
    assert!(pap(&s, "jane.doe2@corp.example", DEE_PW));
    let back = json!({"realm": {"mode": "keep", "realms": []}});
    assert_eq!(
        s.patch(&format!("/radius-servers/{profile}"), back).await.0,
        StatusCode::OK
    );
    // SAML: the login page takes the login name as the IdP sent it, in any case.
    let out = crate::saml::sp(
        &s,
        "login",
        json!({"app": app, "username": "jane.doe@example.com", "password": PW,
               "want_response_signed": true, "want_assertion_signed": true}),
    );
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["authenticated"], true, "{out}");
    assert_eq!(out["nameid"], "jane.doe@example.com");

    // Okta renames (the user's address changed): the login name follows, the POSIX name stays, and so does
    // everything keyed on it.
    let (st, v) = scim(
        &s,
        &token,
        Method::PATCH,
        &format!("/Users/{jane_id}"),
        Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"userName": "Jane.Smith@Example.com"}}]})),
    )
    .await;
    assert_eq!(
        (st, v["userName"].as_str()),
        (StatusCode::OK, Some("Jane.Smith@Example.com")),
        "{v}"
    );
    let (_, u) = s.get(&format!("/users/{jane_id}")).await;
    assert_eq!(u["username"], "jane.doe");
    assert_eq!(whoami(&s, &suffix, "jane.doe", PW).0, Some(0));
    assert!(pap(&s, "jane.smith@example.com", PW));
    assert!(
        !pap(&s, "Jane.Doe@Example.com", PW),
        "the old login name is gone"
    );
    let (_, list) = scim(
        &s,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22jane.doe@example.com%22",
        None,
    )
    .await;
    assert_eq!(list["totalResults"], 0, "{list}");
}

/// Output of a hashing tool, trimmed.
fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} runs (scripts/test installs slapd, openssl): {e}"));
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// libxcrypt's crypt(3) through Python, for the schemes neither slappasswd nor openssl writes.
fn crypt3(password: &str, salt: &str) -> String {
    tool(
        "/usr/bin/python3",
        &[
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))",
            password,
            salt,
        ],
    )
}

#[tokio::test]
async fn imported_password_hashes_sign_in_once_and_become_argon2id() {
    let s = Server::start().await;
    let (group, _) = everything_bound(&s).await;
    let old = "Old-Password-7";
    let hashes = [
        ("ssha", tool("slappasswd", &["-h", "{SSHA}", "-s", old])),
        (
            "sha512crypt",
            format!("{{CRYPT}}{}", tool("openssl", &["passwd", "-6", old])),
        ),
        (
            "md5crypt",
            format!("{{CRYPT}}{}", tool("openssl", &["passwd", "-1", old])),
        ),
        ("sha256crypt", tool("openssl", &["passwd", "-5", old])),
        (
            "bcrypt",
            format!("{{CRYPT}}{}", crypt3(old, "$2b$05$abcdefghijklmnopqrstuu")),
        ),
        (
            "yescrypt",
            format!("{{CRYPT}}{}", crypt3(old, "$y$j9T$saltsaltsaltsalt$")),
        ),
    ];
    let mut ids = Vec::new();
    for (name, hash) in &hashes {
        let (st, u) = s
            .post("/users", json!({"username": name, "email": format!("{name}@example.com"), "password_hash": hash}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{name} {hash}: {u}");
        assert!(u["legacy_password_scheme"].is_string(), "{u}");
        assert_eq!(u["password_status"], "active");
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    // A Samba user who comes with the NT hash only (of "password").
    let (st, u) = s
        .post("/users", json!({"username": "smb", "email": "smb@example.com", "nt_hash": "8846F7EAEE8FB117AD06BDD830B7586C"}))
        .await;
    assert_eq!(
        (st, u["legacy_password_scheme"].as_str()),
        (StatusCode::CREATED, Some("NT")),
        "{u}"
    );
    ids.push(u["id"].as_str().unwrap().to_string());
    for id in &ids {
        assert_eq!(
            s.put(&format!("/groups/{group}/members/{id}"), None)
                .await
                .0,
            StatusCode::NO_CONTENT
        );
    }
    // What an import refuses, it refuses with the reason.
    for (bad, why) in [
        ("{CRYPT}abcdefghijklm", "not supported"),
        ("{SSHA}@@@", "malformed"),
        ("cleartext", "scheme"),
    ] {
        let (st, e) = s
            .post(
                "/users",
                json!({"username": "bad", "email": "bad@example.com", "password_hash": bad}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {e}");
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
    let (_, page) = s.get("/users?legacy_hash=true").await;
    assert_eq!(page["total"], 7, "{page}");

    // A wrong password changes nothing; the right one signs in (LDAP for some, RADIUS for others) and the hash
    // is argon2id from then on.
    let suffix = suffix(&s).await;
    for (i, (name, _)) in hashes.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(
                whoami(&s, &suffix, name, "Wrong-Password-7").0,
                Some(49),
                "{name}"
            );
            let (code, out) = whoami(&s, &suffix, name, old);
            assert_eq!(code, Some(0), "{name}: {out}");
        } else {
            assert!(!pap(&s, name, "Wrong-Password-7"), "{name}");
            assert!(pap(&s, name, old), "{name}");
        }
        let (_, u) = s.get(&format!("/users/{}", ids[i])).await;
        assert!(u["legacy_password_scheme"].is_null(), "{name}: {u}");
        let ev = s.events("password_rehashed", name).await;
        assert_eq!(ev.len(), 1, "{name}: {ev:?}");
        // And the same password still works against the new hash.
        assert_eq!(whoami(&s, &suffix, name, old).0, Some(0), "{name}");
    }
    assert_eq!(whoami(&s, &suffix, "smb", "password").0, Some(0));
    let ev = s.events("password_rehashed", "smb").await;
    assert_eq!(ev[0]["details"]["from"], "NT", "{ev:?}");
    let (_, page) = s.get("/users?legacy_hash=true").await;
    assert_eq!(page["total"], 0, "{page}");
}

/// A tree in a real OpenLDAP database (slapadd), dumped with slapcat: what a migration starts from.
fn slapcat_dump(dir: &std::path::Path, people: &[(&str, &str, Option<&str>, u32)]) -> String {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let conf = dir.join("slapd.conf");
    std::fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\ndatabase mdb\nsuffix \"dc=example,dc=com\"\n\
             directory {}\n",
            db.display()
        ),
    )
    .unwrap();
    let mut ldif = String::from(
        "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=People,dc=example,dc=com\nobjectClass: organizationalUnit\nou: People\n\n\
         dn: ou=Groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: Groups\n\n",
    );
    for (uid, hash, mail, number) in people {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=People,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: {uid}\ncn: {uid} Example\nsn: Example\ngivenName: {uid}\nuidNumber: {number}\ngidNumber: 10000\n\
             homeDirectory: /home/{uid}\nloginShell: /bin/zsh\nuserPassword: {hash}\n"
        ));
        if let Some(m) = mail {
            ldif.push_str(&format!("mail: {m}\n"));
        }
        ldif.push('\n');
    }
    ldif.push_str(
        "dn: cn=staff,ou=Groups,dc=example,dc=com\nobjectClass: posixGroup\ncn: staff\ngidNumber: 10000\n\
         memberUid: ssha\nmemberUid: crypt6\nmemberUid: ghost\n\n\
         dn: cn=vpn,ou=Groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: vpn\ndescription: VPN users\n\
         member: uid=argon,ou=People,dc=example,dc=com\nmember: uid=crypt6,ou=People,dc=example,dc=com\n",
    );
    let input = dir.join("input.ldif");
    std::fs::write(&input, ldif).unwrap();
    let conf = conf.to_str().unwrap();
    tool("slapadd", &["-f", conf, "-l", input.to_str().unwrap()]);
    tool("slapcat", &["-f", conf])
}

#[tokio::test]
async fn an_openldap_dump_moves_in_with_its_password_hashes() {
    let s = Server::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let pw = "Migrated-Pass-3";
    let ssha = tool("slappasswd", &["-h", "{SSHA}", "-s", pw]);
    let crypt6 = tool("slappasswd", &["-h", "{CRYPT}", "-c", "$6$%.16s", "-s", pw]);
    let argon = tool(
        "slappasswd",
        &[
            "-o",
            "module-path=/usr/lib/ldap",
            "-o",
            "module-load=argon2",
            "-h",
            "{ARGON2}",
            "-s",
            pw,
        ],
    );
    assert!(argon.starts_with("{ARGON2}$argon2"), "{argon}");
    let dump = slapcat_dump(
        tmp.path(),
        &[
            ("ssha", &ssha, Some("ssha@example.com"), 10001),
            ("crypt6", &crypt6, Some("crypt6@example.com"), 10002),
            ("argon", &argon, Some("argon@example.com"), 10003),
            ("nomail", &ssha, None, 10004),
            ("lowuid", &ssha, Some("lowuid@example.com"), 1001),
        ],
    );
    // slapcat writes the hashes base64-encoded and adds operational attributes.
    assert!(dump.contains("userPassword:: "), "{dump}");
    let file = tmp.path().join("dump.ldif");
    std::fs::write(&file, &dump).unwrap();
    let results = tmp.path().join("results.csv");
    let (ok, out, err) = crate::cli::stratus(
        &s,
        &[
            "import",
            "ldif",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
    );
    let printed = out + &err;
    assert!(ok, "{printed}");
    assert!(
        printed.contains("imported 3 users and 2 groups, failed 2"),
        "{printed}"
    );
    let report = std::fs::read_to_string(&results).unwrap();
    assert!(report.contains("no mail attribute"), "{report}");
    assert!(report.contains("outside the UID range"), "{report}");
    assert!(report.contains("not found: ghost"), "{report}");
    assert!(
        report.contains("\"ou=People,dc=example,dc=com\",other,skipped"),
        "{report}"
    );

    // The POSIX attributes and groups came along.
    let (_, page) = s.get("/users?search=crypt6").await;
    let u = &page["users"][0];
    assert_eq!(
        (u["uid_number"].as_u64(), u["login_shell"].as_str()),
        (Some(10002), Some("/bin/zsh")),
        "{u}"
    );
    assert_eq!(u["legacy_password_scheme"], "CRYPT-SHA512");
    assert_eq!(u["groups"].as_array().map(Vec::len), Some(2), "{u}");
    let (_, groups) = s.get("/groups").await;
    let staff = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "staff")
        .unwrap();
    assert_eq!(
        (
            staff["member_count"].as_u64(),
            staff["linux_group"]["gid"].as_u64()
        ),
        (Some(2), Some(10000)),
        "{staff}"
    );

    // The old passwords work over LDAP once the tree is bound, and the hashes are argon2id afterwards.
    let vpn = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "vpn")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let staff = staff["id"].as_str().unwrap().to_string();
    for g in [&staff, &vpn] {
        assert_eq!(
            s.put(&format!("/groups/{g}/bindings/ldap"), None).await.0,
            StatusCode::NO_CONTENT
        );
    }
    let suffix = suffix(&s).await;
    for uid in ["ssha", "crypt6", "argon"] {
        let (code, out) = whoami(&s, &suffix, uid, pw);
        assert_eq!(code, Some(0), "{uid}: {out}");
    }
    let (_, page) = s.get("/users?legacy_hash=true").await;
    assert_eq!(page["total"], 0, "{page}");
    let ev = s.events("password_rehashed", "argon").await;
    assert_eq!(ev[0]["details"]["from"], "ARGON2", "{ev:?}");

    // Importing the same dump again creates nothing twice.
    let (_, printed, _) = crate::cli::stratus(
        &s,
        &[
            "import",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert!(
        printed.contains("imported 0 users and 0 groups"),
        "{printed}"
    );
    let (_, groups) = s.get("/groups").await;
    assert_eq!(groups.as_array().map(Vec::len), Some(2));
}
