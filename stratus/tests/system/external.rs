//! Password takeover into external directories, against real ones started by the test: an OpenLDAP slapd
//! (Debian's package) as the generic LDAP directory. A user bound through a group gets an account there at
//! their next portal sign-in, with their Stratus password; a password change follows; attribute changes follow
//! without a password; unbinding disables the account (it stays, binds fail).

use crate::harness::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUFFIX: &str = "dc=example,dc=com";
const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
const ROOT_PW: &str = "Slapd-Root-Secret-1";

/// A private slapd on a loopback port, stopped when dropped.
pub struct Slapd {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn slapd_bin() -> PathBuf {
    ["/usr/sbin/slapd", "/usr/local/libexec/slapd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("slapd is installed (scripts/test installs it)")
}

impl Slapd {
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {pid}\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 database mdb\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\nrootpw {ROOT_PW}\n\
                 directory {db}\n\
                 access to attrs=userPassword by self write by anonymous auth by * none\n\
                 access to * by * read\n",
                pid = dir.path().join("slapd.pid").display(),
                db = db.display()
            ),
        )
        .unwrap();
        let base = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: ou=People,{SUFFIX}\nobjectClass: organizationalUnit\nou: People\n\n\
             dn: ou=Groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: Groups\n"
        );
        let ldif = dir.path().join("base.ldif");
        std::fs::write(&ldif, base).unwrap();
        let add = Command::new("slapadd")
            .args(["-f", conf.to_str().unwrap(), "-l", ldif.to_str().unwrap()])
            .output()
            .expect("slapadd runs");
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let child = Command::new(slapd_bin())
            .args([
                "-f",
                conf.to_str().unwrap(),
                "-h",
                &format!("{url}/"),
                "-d",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd starts");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "slapd did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Slapd {
            child,
            url,
            _dir: dir,
        }
    }

    /// `ldapwhoami` as an entry: the exit code.
    pub fn whoami(&self, dn: &str, pw: &str) -> Option<i32> {
        Command::new("ldapwhoami")
            .args(["-x", "-H", &self.url, "-D", dn, "-w", pw])
            .output()
            .expect("ldapwhoami runs")
            .status
            .code()
    }

    /// `ldapsearch` as the root DN: the LDIF printed.
    pub fn search(&self, base: &str, filter: &str) -> String {
        let out = Command::new("ldapsearch")
            .args([
                "-x", "-LLL", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PW, "-b", base, filter,
            ])
            .output()
            .expect("ldapsearch runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Poll until `check` holds, at most 20 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn portal_password(s: &Server, user: &str, current: &str, new: &str) -> StatusCode {
    let r = s
        .http
        .post(format!("{}/portal/api/login", s.url))
        .json(&json!({"username": user, "password": current}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    s.http
        .post(format!("{}/portal/api/password", s.url))
        .header("cookie", cookie)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
        .status()
}

pub fn bound_directory_body(
    kind: &str,
    url: &str,
    users_dn: &str,
    groups_dn: &str,
    bind: (&str, &str),
) -> Value {
    json!({"name": format!("{kind} directory"), "kind": kind, "url": url, "bind_dn": bind.0,
           "bind_password": bind.1, "users_dn": users_dn, "groups_dn": groups_dn})
}

#[tokio::test]
async fn a_bound_users_password_is_taken_over_into_an_ldap_directory_and_unbinding_disables_the_account(
) {
    let ldap = Slapd::start();
    let s = Server::start().await;
    let id = s.user("tess", Some("Takeover-Pass-11")).await;
    let (st, g) = s.post("/groups", json!({"name": "staff"})).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let g = g["id"].as_str().unwrap().to_string();
    s.put(&format!("/groups/{g}/members/{id}"), None).await;
    let people = format!("ou=People,{SUFFIX}");
    let (st, d) = s
        .post(
            "/external-directories",
            bound_directory_body(
                "ldap",
                &ldap.url,
                &people,
                &format!("ou=Groups,{SUFFIX}"),
                (ROOT_DN, ROOT_PW),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{d}");
    assert!(d.get("bind_password").is_none(), "{d}");
    let d = d["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .put(&format!("/groups/{g}/bindings/directory:{d}"), None)
        .await;
    assert!(st.is_success());
    let dn = format!("uid=tess,{people}");
    assert_ne!(
        ldap.whoami(&dn, "Takeover-Pass-11"),
        Some(0),
        "no account before a sign-in"
    );

    // The next portal sign-in takes the password over.
    let (st, _) = s.portal_login("tess", "Takeover-Pass-11", None).await;
    assert_eq!(st, StatusCode::OK);
    eventually("the account was made with the Stratus password", || {
        ldap.whoami(&dn, "Takeover-Pass-11") == Some(0)
    })
    .await;
    let entry = ldap.search(&people, "(uid=tess)");
    assert!(
        entry.contains("mail: tess@example.com") && entry.contains("objectClass: inetOrgPerson"),
        "{entry}"
    );
    assert!(entry.contains("userPassword::"), "{entry}");
    let group = ldap.search(&format!("ou=Groups,{SUFFIX}"), "(cn=staff)");
    assert!(group.contains(&format!("member: {dn}")), "{group}");
    let (_, accounts) = s.get(&format!("/users/{id}/external-accounts")).await;
    assert_eq!(accounts[0]["password_synced"], true, "{accounts}");
    assert_eq!(accounts[0]["remote_dn"], dn, "{accounts}");
    let pushes = s.events("external_push", "tess").await;
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["details"]["password"], true);
    assert!(
        !pushes
            .iter()
            .any(|e| e.to_string().contains("Takeover-Pass-11")),
        "the password is never recorded"
    );

    // Another sign-in with nothing changed pushes nothing; the portal (in Chromium) tells the user where their
    // password was updated.
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/saml/browser/portal.mjs"
        ))
        .args([
            &s.url,
            "tess",
            "Takeover-Pass-11",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/selfservice-screenshots"
            ),
            "takeover-notice",
        ])
        .output()
        .expect("node runs (scripts/test installs playwright-core)");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "portal.mjs printed no JSON: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["external"],
        json!(["ldap directory: your password there was updated to your current one"]),
        "{v}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.events("external_push", "tess").await.len(), 1);

    // A password changed in Stratus goes there at once.
    assert!(
        portal_password(&s, "tess", "Takeover-Pass-11", "Changed-Pass-22")
            .await
            .is_success()
    );
    eventually("the new password works there", || {
        ldap.whoami(&dn, "Changed-Pass-22") == Some(0)
    })
    .await;
    assert_ne!(
        ldap.whoami(&dn, "Takeover-Pass-11"),
        Some(0),
        "the old one does not"
    );

    // An attribute change follows without a password.
    let (st, _) = s
        .patch(&format!("/users/{id}"), json!({"lastname": "Renamed"}))
        .await;
    assert_eq!(st, StatusCode::OK);
    eventually("the new last name is there", || {
        ldap.search(&people, "(uid=tess)").contains("sn: Renamed")
    })
    .await;

    // Unbinding disables the account: the entry stays, binds fail.
    let (st, _) = s
        .delete(&format!("/groups/{g}/bindings/directory:{d}"))
        .await;
    assert!(st.is_success());
    eventually("the account is disabled", || {
        ldap.whoami(&dn, "Changed-Pass-22") != Some(0)
    })
    .await;
    assert!(
        ldap.search(&people, "(uid=tess)").contains("uid: tess"),
        "never deleted"
    );
    assert_eq!(s.events("external_disable", "tess").await.len(), 1);
    let (_, accounts) = s.get(&format!("/users/{id}/external-accounts")).await;
    assert_eq!(accounts[0]["active"], false, "{accounts}");

    // Bound again: the next sign-in enables it with the current password.
    s.put(&format!("/groups/{g}/bindings/directory:{d}"), None)
        .await;
    let (st, _) = s.portal_login("tess", "Changed-Pass-22", None).await;
    assert_eq!(st, StatusCode::OK);
    eventually("the account works again", || {
        ldap.whoami(&dn, "Changed-Pass-22") == Some(0)
    })
    .await;
}

#[tokio::test]
async fn external_directories_are_validated_and_a_failing_one_is_visible_per_user() {
    let s = Server::start().await;
    for (field, body) in [
        (
            "url",
            bound_directory_body(
                "ldap",
                "ldap://ldap.example.com",
                "ou=People,dc=x",
                "",
                ("cn=a,dc=x", "p"),
            ),
        ),
        (
            "users_dn",
            bound_directory_body(
                "ldap",
                "ldaps://ldap.example.com",
                "People",
                "",
                ("cn=a,dc=x", "p"),
            ),
        ),
        (
            "bind_password",
            bound_directory_body(
                "active_directory",
                "ldaps://dc.example.com",
                "cn=Users,dc=x",
                "",
                ("cn=a,dc=x", ""),
            ),
        ),
    ] {
        let (st, e) = s.post("/external-directories", body).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    // Binding a group to a directory that does not exist is refused.
    let (_, g) = s.post("/groups", json!({"name": "nowhere"})).await;
    let g = g["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .put(
            &format!("/groups/{g}/bindings/directory:0123456789abcdef01234567"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A directory nobody answers for: the push fails, is recorded, and the sign-in is not held up by it.
    let port = free_port();
    let (st, d) = s
        .post(
            "/external-directories",
            bound_directory_body(
                "ldap",
                &format!("ldap://127.0.0.1:{port}"),
                "ou=People,dc=x",
                "",
                ("cn=a,dc=x", "p"),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{d}");
    let d = d["id"].as_str().unwrap().to_string();
    let id = s.user("uma", Some("Failing-Dir-Pass-1")).await;
    s.put(&format!("/groups/{g}/members/{id}"), None).await;
    s.put(&format!("/groups/{g}/bindings/directory:{d}"), None)
        .await;
    let (st, _) = s.portal_login("uma", "Failing-Dir-Pass-1", None).await;
    assert_eq!(st, StatusCode::OK);
    let start = Instant::now();
    loop {
        let failed = s.events("external_push", "uma").await;
        if let Some(e) = failed.first() {
            assert_eq!(e["success"], false, "{e}");
            assert!(
                e["reason"].as_str().unwrap().contains("cannot connect"),
                "{e}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no push event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, accounts) = s.get(&format!("/users/{id}/external-accounts")).await;
    assert_eq!(accounts[0]["active"], false, "{accounts}");
    assert!(
        accounts[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{accounts}"
    );
    let (_, list) = s.get("/external-directories").await;
    assert_eq!(list[0]["failing"], 1, "{list}");
    let (st, _) = s.delete(&format!("/external-directories/{d}")).await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a bound directory is not deleted"
    );
}

/// A throwaway Samba Active Directory domain controller on 127.0.0.77 (`conformance/ad/start-ad.sh`), stopped
/// and wiped when dropped.
struct SambaAd {
    env: std::collections::HashMap<String, String>,
    dir: tempfile::TempDir,
}

impl SambaAd {
    fn start() -> SambaAd {
        // A short path: Samba's unix sockets live under it.
        let dir = tempfile::Builder::new()
            .prefix("sad")
            .tempdir_in("/tmp")
            .unwrap();
        let ad_dir = dir.path().join("dc");
        let out = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/ad/start-ad.sh"
        ))
        .arg("start")
        .env("AD_DIR", &ad_dir)
        .env("AD_MAX_RUNTIME", "900")
        .output()
        .expect("start-ad.sh runs (scripts/test installs samba)");
        assert!(
            out.status.success(),
            "the domain controller did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SambaAd { env, dir }
    }

    fn get(&self, k: &str) -> &str {
        self.env
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{k} in {:?}", self.env))
    }

    /// A simple bind as `dn` over LDAPS (verifying the DC's certificate): the exit code of ldapsearch.
    fn bind(&self, dn: &str, pw: &str) -> Option<i32> {
        Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                self.get("AD_LDAPS_URL"),
                "-D",
                dn,
                "-w",
                pw,
                "-b",
                "",
                "-s",
                "base",
                "(objectClass=*)",
            ])
            .env("LDAPTLS_CACERT", self.get("AD_CA_CERT"))
            .env("LDAPTLS_REQCERT", "demand")
            .output()
            .expect("ldapsearch runs")
            .status
            .code()
    }

    fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                self.get("AD_LDAPS_URL"),
            ])
            .args([
                "-D",
                self.get("AD_ADMIN_DN"),
                "-w",
                self.get("AD_ADMIN_PASS"),
                "-b",
                base,
                filter,
            ])
            .args(attrs)
            .env("LDAPTLS_CACERT", self.get("AD_CA_CERT"))
            .env("LDAPTLS_REQCERT", "demand")
            .output()
            .expect("ldapsearch runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for SambaAd {
    fn drop(&mut self) {
        let _ = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/ad/start-ad.sh"
        ))
        .arg("stop")
        .env("AD_DIR", self.dir.path().join("dc"))
        .output();
    }
}

#[tokio::test]
async fn a_bound_users_password_is_taken_over_into_active_directory() {
    let ad = SambaAd::start();
    let s = Server::start().await;
    let users = ad.get("AD_USERS_DN").to_string();
    let ca = std::fs::read_to_string(ad.get("AD_CA_CERT")).unwrap();
    let mut body = bound_directory_body(
        "active_directory",
        ad.get("AD_LDAPS_URL"),
        &users,
        &users,
        (ad.get("AD_ADMIN_DN"), ad.get("AD_ADMIN_PASS")),
    );
    body["ca_certificate"] = json!(ca);
    let (st, d) = s.post("/external-directories", body).await;
    assert_eq!(st, StatusCode::CREATED, "{d}");
    let d = d["id"].as_str().unwrap().to_string();
    let id = s.user("vic", Some("Ad-Takeover-Pass-31")).await;
    let (_, g) = s.post("/groups", json!({"name": "engineering"})).await;
    let g = g["id"].as_str().unwrap().to_string();
    s.put(&format!("/groups/{g}/members/{id}"), None).await;
    s.put(&format!("/groups/{g}/bindings/directory:{d}"), None)
        .await;
    let dn = format!("CN=vic,{users}");

    let (st, _) = s.portal_login("vic", "Ad-Takeover-Pass-31", None).await;
    assert_eq!(st, StatusCode::OK);
    eventually("vic binds to the domain with the Stratus password", || {
        ad.bind(&dn, "Ad-Takeover-Pass-31") == Some(0)
    })
    .await;
    let entry = ad.search(
        &users,
        "(sAMAccountName=vic)",
        &[
            "userAccountControl",
            "mail",
            "userPrincipalName",
            "memberOf",
        ],
    );
    assert!(entry.contains("userAccountControl: 512"), "{entry}");
    assert!(entry.contains("mail: vic@example.com"), "{entry}");
    assert!(
        entry.contains("userPrincipalName: vic@stratus.test"),
        "{entry}"
    );
    assert!(
        entry.contains(&format!("memberOf: CN=engineering,{users}")),
        "{entry}"
    );

    // A password set by an admin in Stratus goes there too.
    let (st, _) = s
        .post(
            &format!("/users/{id}/password"),
            json!({"password": "Ad-Admin-Set-Pass-32"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    eventually("the new password works in the domain", || {
        ad.bind(&dn, "Ad-Admin-Set-Pass-32") == Some(0)
    })
    .await;
    assert_ne!(ad.bind(&dn, "Ad-Takeover-Pass-31"), Some(0));

    // Unbinding disables the account there (userAccountControl 514), never deletes it.
    s.delete(&format!("/groups/{g}/bindings/directory:{d}"))
        .await;
    eventually("the account is disabled in the domain", || {
        ad.search(&users, "(sAMAccountName=vic)", &["userAccountControl"])
            .contains("userAccountControl: 514")
    })
    .await;
    assert_ne!(
        ad.bind(&dn, "Ad-Admin-Set-Pass-32"),
        Some(0),
        "a disabled account cannot bind"
    );
}
