//! Write integrity and revocation against the real binary: concurrent SCIM writers (If-Match, member changes),
//! all-or-nothing writes, SCIM token scopes, sessions that end with the access that opened them (a python-ldap
//! connection kept open across the change, admin console sessions), and refusals that cost a verification.

use crate::harness::{libfaketime, Server, Start, ADMIN_PASSWORD, API_KEY};
use crate::ldap::{fixture, Fixture, PW, SVC_PW};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Every concurrent round must end within this; a hang fails the test instead of stalling CI.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

/// A SCIM client that can be cloned into concurrent tasks.
#[derive(Clone)]
struct Scim {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Scim {
    async fn new(s: &Server, body: Value) -> Scim {
        let (st, t) = s.post("/scim-tokens", body).await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        Scim {
            http: s.http.clone(),
            base: format!("{}/scim/v2", s.url),
            token: t["token"].as_str().unwrap().to_string(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        let resp = r.send().await.unwrap();
        let st = resp.status();
        let text = resp.text().await.unwrap();
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_user(&self, name: &str, password: Option<&str>) -> String {
        let mut body = json!({"schemas": [USER], "userName": name, "active": true,
            "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}]});
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        let (st, v) = self.call(Method::POST, "/Users", Some(body), None).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }
}

/// Events of a type, newest first.
async fn events_of(s: &Server, event_type: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/events?type={event_type}&limit=100")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["events"].as_array().cloned().unwrap_or_default()
}

/// A user's id by username.
async fn user_id(s: &Server, username: &str) -> String {
    let (_, v) = s.get(&format!("/users?search={username}")).await;
    v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// Run `n` SCIM writes at once (bounded in time); their statuses.
async fn concurrently<F, Fut>(n: usize, f: F) -> Vec<StatusCode>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = StatusCode> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        set.spawn(f(i));
    }
    let all = tokio::time::timeout(ROUND_LIMIT, set.join_all())
        .await
        .expect("concurrent writers finish in time");
    all.into_iter().collect()
}

fn relaxed_policy(p: &mut Value) {
    p["history"] = json!(0);
}

#[tokio::test]
async fn if_match_lets_exactly_one_of_concurrent_scim_writers_win() {
    let s = Server::start().await;
    let scim = Scim::new(&s, json!({"name": "hr"})).await;
    let uid = scim.create_user("casey", None).await;
    let (_, g) = scim
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "team"})),
            None,
        )
        .await;
    let gid = g["id"].as_str().unwrap().to_string();
    for round in 0..3 {
        let (_, u) = scim
            .call(Method::GET, &format!("/Users/{uid}"), None, None)
            .await;
        let etag = u["meta"]["version"].as_str().unwrap().to_string();
        let (user_path, tag) = (format!("/Users/{uid}"), etag.clone());
        let sc = scim.clone();
        let puts = concurrently(5, move |i| {
            let (sc, path, tag) = (sc.clone(), user_path.clone(), tag.clone());
            async move {
                let body = json!({"schemas": [USER], "userName": "casey",
                    "displayName": format!("Casey {round}-{i}")});
                sc.call(Method::PUT, &path, Some(body), Some(&tag)).await.0
            }
        })
        .await;
        assert_eq!(
            count(&puts, StatusCode::OK),
            1,
            "PUT round {round}: {puts:?}"
        );
        assert_eq!(count(&puts, StatusCode::PRECONDITION_FAILED), 4, "{puts:?}");

        let (_, u) = scim
            .call(Method::GET, &format!("/Users/{uid}"), None, None)
            .await;
        let tag = u["meta"]["version"].as_str().unwrap().to_string();
        assert_ne!(tag, etag, "a change moves the version");
        let (path, sc) = (format!("/Users/{uid}"), scim.clone());
        let patches = concurrently(5, move |i| {
            let (sc, path, tag) = (sc.clone(), path.clone(), tag.clone());
            async move {
                let body = patch(
                    json!([{"op": "replace", "path": "title", "value": format!("T{round}-{i}")}]),
                );
                sc.call(Method::PATCH, &path, Some(body), Some(&tag))
                    .await
                    .0
            }
        })
        .await;
        assert_eq!(count(&patches, StatusCode::OK), 1, "PATCH: {patches:?}");

        let (_, grp) = scim
            .call(Method::GET, &format!("/Groups/{gid}"), None, None)
            .await;
        let tag = grp["meta"]["version"].as_str().unwrap().to_string();
        let (path, sc) = (format!("/Groups/{gid}"), scim.clone());
        let renames = concurrently(4, move |i| {
            let (sc, path, tag) = (sc.clone(), path.clone(), tag.clone());
            async move {
                let body = patch(json!([{"op": "replace", "path": "displayName",
                                         "value": format!("team-{round}-{i}")}]));
                sc.call(Method::PATCH, &path, Some(body), Some(&tag))
                    .await
                    .0
            }
        })
        .await;
        assert_eq!(count(&renames, StatusCode::OK), 1, "group: {renames:?}");
    }
}

fn count(statuses: &[StatusCode], want: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == want).count()
}

#[tokio::test]
async fn concurrent_scim_member_patches_lose_no_member() {
    const WRITERS: usize = 12;
    const ROUNDS: usize = 4;
    let s = Server::start_in(
        &tempfile::tempdir().unwrap().keep().join("data"),
        Start {
            env: vec![
                ("STRATUS_SCIM_RATE_PER_SECOND".into(), "100000".into()),
                ("STRATUS_SCIM_RATE_BURST".into(), "100000".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let scim = Scim::new(&s, json!({"name": "okta"})).await;
    let (_, g) = scim
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "everyone"})),
            None,
        )
        .await;
    let gid = g["id"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..WRITERS * ROUNDS {
        users.push(scim.create_user(&format!("member{i:03}"), None).await);
    }
    for round in 0..ROUNDS {
        let batch: Vec<String> = users[round * WRITERS..(round + 1) * WRITERS].to_vec();
        let (path, sc) = (format!("/Groups/{gid}"), scim.clone());
        let statuses = concurrently(WRITERS, move |i| {
            let (sc, path, member) = (sc.clone(), path.clone(), batch[i].clone());
            async move {
                let body =
                    patch(json!([{"op": "add", "path": "members", "value": [{"value": member}]}]));
                sc.call(Method::PATCH, &path, Some(body), None).await.0
            }
        })
        .await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
        // In the same round, some members leave while others arrive: only what each PATCH names changes.
        let leaving: Vec<String> = users[round * WRITERS..round * WRITERS + 3].to_vec();
        let (path, sc) = (format!("/Groups/{gid}"), scim.clone());
        let statuses = concurrently(3, move |i| {
            let (sc, path, member) = (sc.clone(), path.clone(), leaving[i].clone());
            async move {
                let body = patch(
                    json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
                );
                sc.call(Method::PATCH, &path, Some(body), None).await.0
            }
        })
        .await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
    }
    let (_, grp) = scim
        .call(Method::GET, &format!("/Groups/{gid}"), None, None)
        .await;
    let members: Vec<&str> = grp["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    let expected: Vec<&String> = (0..ROUNDS)
        .flat_map(|r| users[r * WRITERS + 3..(r + 1) * WRITERS].iter())
        .collect();
    assert_eq!(members.len(), expected.len(), "{members:?}");
    for e in expected {
        assert!(members.contains(&e.as_str()), "member {e} was lost");
    }
}

/// Whether `username` logs in with `password` (LDAP simple bind needs a binding; the portal needs none).
async fn logs_in(s: &Server, username: &str, password: &str) -> bool {
    s.portal_login(username, password, None).await.0 == StatusCode::OK
}

#[tokio::test]
async fn a_refused_scim_write_changes_nothing() {
    let s = Server::start().await;
    s.update_policy(relaxed_policy).await;
    let scim = Scim::new(&s, json!({"name": "hr"})).await;
    let uid = scim.create_user("dana", Some("Original-Pass-1")).await;
    scim.create_user("taken", None).await;
    // PUT that renames to a taken userName and sets a password: 409, and the password is unchanged.
    let (st, v) = scim
        .call(
            Method::PUT,
            &format!("/Users/{uid}"),
            Some(json!({"schemas": [USER], "userName": "taken", "password": "Replaced-Pass-2"})),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(logs_in(&s, "dana", "Original-Pass-1").await);
    assert!(!logs_in(&s, "dana", "Replaced-Pass-2").await);
    // PATCH [new password, invalid e-mail]: 400, and again nothing changed.
    let (st, v) = scim
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch(json!([
                {"op": "replace", "path": "password", "value": "Replaced-Pass-3"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "not-an-address"}
            ]))),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["scimType"], "invalidValue", "{v}");
    assert!(logs_in(&s, "dana", "Original-Pass-1").await);
    assert!(!logs_in(&s, "dana", "Replaced-Pass-3").await);
    let (_, u) = s.get(&format!("/users/{uid}")).await;
    assert_eq!(u["email"], "dana@example.com");
    // The admin API's PATCH carries the password in the same transaction and takes expect_revision.
    let rev = u["revision"].as_u64().unwrap();
    let (st, v) = s
        .patch(
            &format!("/users/{uid}"),
            json!({"email": "bad", "password": "Replaced-Pass-4"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(logs_in(&s, "dana", "Original-Pass-1").await);
    let (st, v) = s
        .patch(
            &format!("/users/{uid}"),
            json!({"firstname": "Dana", "expect_revision": rev + 7}),
        )
        .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "{v}");
    let (st, v) = s
        .patch(
            &format!("/users/{uid}"),
            json!({"firstname": "Dana", "password": "Replaced-Pass-5", "expect_revision": rev}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(logs_in(&s, "dana", "Replaced-Pass-5").await);
}

#[tokio::test]
async fn scim_tokens_stay_inside_their_scope() {
    let s = Server::start().await;
    s.update_policy(relaxed_policy).await;
    let svc = s.user("svc", Some(SVC_PW)).await;
    s.patch(&format!("/users/{svc}"), json!({"ldap_bind_dn": true}))
        .await;
    let regular = s.user("regular", Some(PW)).await;
    let (_, g) = s.post("/groups", json!({"name": "ldap-users"})).await;
    let bound = g["id"].as_str().unwrap().to_string();
    s.put(&format!("/groups/{bound}/bindings/ldap"), None).await;
    let scim = Scim::new(&s, json!({"name": "okta"})).await;

    // The default scope: no Bind-DN accounts, no password on them, no deleting or joining bound groups.
    let (_, tokens) = s.get("/scim-tokens").await;
    assert_eq!(tokens[0]["scope"]["users"], "all", "{tokens}");
    assert_eq!(tokens[0]["scope"]["service_accounts"], false);
    let (st, v) = scim
        .call(
            Method::PATCH,
            &format!("/Users/{svc}"),
            Some(patch(
                json!([{"op": "replace", "path": "password", "value": "Stolen-Pass-9"}]),
            )),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("Bind-DN"), "{v}");
    assert!(!logs_in(&s, "svc", "Stolen-Pass-9").await);
    let (st, _) = scim
        .call(Method::DELETE, &format!("/Users/{svc}"), None, None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let own = scim.create_user("okta-made", None).await;
    let (st, v) = scim
        .call(
            Method::PATCH,
            &format!("/Groups/{bound}"),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": own}]}]),
            )),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, _) = scim
        .call(Method::DELETE, &format!("/Groups/{bound}"), None, None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s.get(&format!("/groups/{bound}")).await;
    assert_eq!(st, StatusCode::OK, "the bound group is still there");
    let denied = events_of(&s, "scim_scope_denied").await;
    assert!(denied.len() >= 4, "{denied:?}");
    assert_eq!(denied[0]["details"]["scope"]["users"], "all", "{denied:?}");

    // Okta adopting an existing regular user by userName works, and the user records its owner.
    let (_, list) = scim
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22regular%22",
            None,
            None,
        )
        .await;
    assert_eq!(list["totalResults"], 1);
    let (st, v) = scim
        .call(
            Method::PATCH,
            &format!("/Users/{regular}"),
            Some(patch(
                json!([{"op": "replace", "path": "title", "value": "Adopted"}]),
            )),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, u) = s.get(&format!("/users/{regular}")).await;
    assert!(u["scim_owner"].is_string(), "{u}");

    // An `owned` token cannot touch what another token owns; `members_of` only the chosen group's members.
    let other = Scim::new(&s, json!({"name": "workday", "scope": {"users": "owned"}})).await;
    let (st, _) = other
        .call(
            Method::PATCH,
            &format!("/Users/{regular}"),
            Some(patch(
                json!([{"op": "replace", "path": "title", "value": "Mine"}]),
            )),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, g) = s.post("/groups", json!({"name": "contractors"})).await;
    let contractors = g["id"].as_str().unwrap().to_string();
    let outsider = s.user("outsider", None).await;
    let member = s.user("contractor", None).await;
    s.put(&format!("/groups/{contractors}/members/{member}"), None)
        .await;
    let narrow = Scim::new(
        &s,
        json!({"name": "vendor", "scope": {"users": "members_of", "groups": [contractors]}}),
    )
    .await;
    let title = patch(json!([{"op": "replace", "path": "title", "value": "x"}]));
    let (st, _) = narrow
        .call(
            Method::PATCH,
            &format!("/Users/{member}"),
            Some(title.clone()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = narrow
        .call(
            Method::PATCH,
            &format!("/Users/{outsider}"),
            Some(title),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // A members_of scope without groups is refused when the admin sets it.
    let (st, v) = s
        .post(
            "/scim-tokens",
            json!({"name": "broken", "scope": {"users": "members_of"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Widening the scope takes effect at once.
    let id = tokens[0]["id"].as_str().unwrap();
    let (st, v) = s
        .put(
            &format!("/scim-tokens/{id}/scope"),
            Some(json!({"users": "all", "service_accounts": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = scim
        .call(
            Method::PATCH,
            &format!("/Users/{svc}"),
            Some(patch(
                json!([{"op": "replace", "path": "title", "value": "Service"}]),
            )),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}

/// A python-ldap connection kept open while the test changes the directory (`conformance/ldap/session.py`).
struct LdapSession {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl LdapSession {
    fn open(f: &Fixture, uid: &str, pw: &str) -> LdapSession {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/ldap/session.py"
        );
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(format!("ldap://{}", f.s.ldap))
            .arg(f.ca())
            .arg(f.dn(uid))
            .arg(pw)
            .arg(&f.suffix)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with python-ldap is installed");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = LdapSession {
            child,
            stdin,
            stdout,
        };
        assert_eq!(s.line(), "bound");
        s
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).unwrap();
        l.trim().to_string()
    }

    fn search(&mut self) -> String {
        writeln!(self.stdin, "search").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }
}

impl Drop for LdapSession {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reads_everything(answer: &str) -> bool {
    answer.starts_with("entries ") && !answer.starts_with("entries 0 ")
}

#[tokio::test]
async fn an_open_ldap_session_ends_when_its_access_ends() {
    let f = fixture().await;
    let s = &f.s;
    let svc = user_id(s, "svc").await;
    let (_, groups) = s.get("/groups").await;
    let staff = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "staff")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.update_policy(relaxed_policy).await;
    let mut password = SVC_PW.to_string();

    let cases: [(&str, &str); 4] = [
        ("suspended", "user is suspended"),
        ("unbound", "no group of the user is bound"),
        ("reset", "password, lock or state changed"),
        ("locked", "account is locked"),
    ];
    for (case, reason) in cases {
        let mut session = LdapSession::open(&f, "svc", &password);
        let before = session.search();
        assert!(reads_everything(&before), "{case}: {before}");
        assert!(
            !before.ends_with("samba 0"),
            "a Bind-DN account reads sambaNTPassword: {before}"
        );
        match case {
            "suspended" => {
                s.patch(&format!("/users/{svc}"), json!({"state": "suspended"}))
                    .await;
            }
            "unbound" => {
                s.delete(&format!("/groups/{staff}/members/{svc}")).await;
            }
            "reset" => {
                password = "Reset-By-Admin-1".into();
                let (st, v) = s
                    .post(
                        &format!("/users/{svc}/password"),
                        json!({"password": password}),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{v}");
            }
            _ => {
                s.lockout(2, 0).await;
                for _ in 0..2 {
                    f.tool("ldapwhoami", &["-x", "-D", &f.dn("svc"), "-w", "wrong"]);
                }
            }
        }
        assert_eq!(
            session.search(),
            "error 50",
            "{case}: the open session is cut"
        );
        // The session is anonymous now: it stays cut.
        assert_eq!(session.search(), "error 50", "{case}");
        let events = events_of(s, "ldap_session_revoked").await;
        assert!(
            events[0]["reason"].as_str().unwrap_or("").contains(reason),
            "{case}: {events:?}"
        );
        // Restore access for the next case.
        match case {
            "suspended" => {
                s.patch(&format!("/users/{svc}"), json!({"state": "active"}))
                    .await;
            }
            "unbound" => {
                s.put(&format!("/groups/{staff}/members/{svc}"), None).await;
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_open_ldap_session_ends_when_the_password_expires() {
    // The server's clock comes from a file libfaketime reads on every call, so it can jump mid-session.
    let tmp = tempfile::tempdir().unwrap();
    let clock = tmp.path().join("faketime");
    std::fs::write(&clock, "+0d\n").unwrap();
    let s = Server::start_in(
        &tmp.path().join("data"),
        Start {
            env: vec![
                ("LD_PRELOAD".into(), libfaketime().display().to_string()),
                (
                    "FAKETIME_TIMESTAMP_FILE".into(),
                    clock.display().to_string(),
                ),
                ("FAKETIME_NO_CACHE".into(), "1".into()),
                ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    s.update_policy(|p| p["max_age_days"] = json!(30)).await;
    let id = s.user("expiring", Some(PW)).await;
    s.patch(&format!("/users/{id}"), json!({"ldap_bind_dn": true}))
        .await;
    let (_, g) = s.post("/groups", json!({"name": "ldap"})).await;
    let gid = g["id"].as_str().unwrap();
    s.put(&format!("/groups/{gid}/members/{id}"), None).await;
    s.put(&format!("/groups/{gid}/bindings/ldap"), None).await;
    let (_, org) = s.get("/settings/org").await;
    let f = Fixture {
        suffix: org["ldap_suffix"].as_str().unwrap().to_string(),
        s,
    };
    let mut session = LdapSession::open(&f, "expiring", PW);
    assert!(reads_everything(&session.search()));
    std::fs::write(&clock, "+40d\n").unwrap();
    assert_eq!(session.search(), "error 50");
    let events = events_of(&f.s, "ldap_session_revoked").await;
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("expired"),
        "{events:?}"
    );
}

/// Sign in to the admin console; the session cookie.
async fn console_login(s: &Server, email: &str, password: &str) -> String {
    let resp = s
        .http
        .post(format!("{}/api/v1/auth/login", s.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn console_me(s: &Server, cookie: &str) -> StatusCode {
    s.http
        .get(format!("{}/api/v1/me", s.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn admin_console_sessions_end_with_a_password_reset_or_a_lock() {
    let s = Server::start().await;
    let (st, a) = s
        .post(
            "/admins",
            json!({"email": "ops@example.com", "name": "Ops", "role": "manager",
                   "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    let cookie = console_login(&s, "ops@example.com", ADMIN_PASSWORD).await;
    assert_eq!(console_me(&s, &cookie).await, StatusCode::OK);
    // Another administrator (the API key's) resets the password: the open session ends.
    let (st, v) = s
        .patch(
            &format!("/admins/{id}"),
            json!({"password": "Another-Admin-Pass-7"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(console_me(&s, &cookie).await, StatusCode::UNAUTHORIZED);
    // A new session, then a lock by failed logins elsewhere: it ends too.
    let cookie = console_login(&s, "ops@example.com", "Another-Admin-Pass-7").await;
    s.lockout(2, 0).await;
    for _ in 0..2 {
        s.http
            .post(format!("{}/api/v1/auth/login", s.url))
            .json(&json!({"email": "ops@example.com", "password": "wrong"}))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(console_me(&s, &cookie).await, StatusCode::UNAUTHORIZED);
    let _ = API_KEY;
}

/// The `stratus_password_verifications_total` counter.
async fn verifications(s: &Server) -> u64 {
    let text = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("stratus_password_verifications_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the counter is exported")
}

#[tokio::test]
async fn every_refused_bind_costs_one_password_verification() {
    let f = fixture().await;
    // sam is suspended, dave is staged without a password, `nobody` does not exist, bob is active but not bound.
    f.s.lockout(1, 0).await;
    f.tool("ldapwhoami", &["-x", "-D", &f.dn("carol"), "-w", "wrong"]);
    for uid in ["sam", "dave", "nobody", "bob", "carol"] {
        let before = verifications(&f.s).await;
        let out = f.tool(
            "ldapwhoami",
            &["-x", "-D", &f.dn(uid), "-w", "Wrong-Guess-1"],
        );
        assert_eq!(out.status.code(), Some(49), "{uid}");
        assert_eq!(
            verifications(&f.s).await,
            before + 1,
            "{uid}: a refusal spends exactly one verification"
        );
    }
}

#[tokio::test]
async fn membership_changes_move_both_entries_modify_timestamp() {
    let f = fixture().await;
    // carol is visible (bound group `devs`); `staff` is a bound group she is not in.
    let carol = user_id(&f.s, "carol").await;
    let (_, groups) = f.s.get("/groups").await;
    let staff = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "staff")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stamp = |filter: &str| {
        let (code, out) = f.search_as("svc", SVC_PW, &[filter, "modifyTimestamp"]);
        assert_eq!(code, 0, "{out}");
        out.lines()
            .find_map(|l| l.strip_prefix("modifyTimestamp: "))
            .unwrap_or_default()
            .to_string()
    };
    let (user_before, group_before) = (stamp("(uid=carol)"), stamp("(cn=staff)"));
    assert!(!user_before.is_empty() && !group_before.is_empty());
    // generalizedTime has whole seconds.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, _) =
        f.s.put(&format!("/groups/{staff}/members/{carol}"), None)
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (user_after, group_after) = (stamp("(uid=carol)"), stamp("(cn=staff)"));
    assert!(user_after > user_before, "{user_before} → {user_after}");
    assert!(group_after > group_before, "{group_before} → {group_after}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    f.s.delete(&format!("/groups/{staff}/members/{carol}"))
        .await;
    assert!(stamp("(uid=carol)") > user_after);
    assert!(stamp("(cn=staff)") > group_after);
}

#[tokio::test]
async fn scim_errors_give_advice_that_works_and_okta_renames_pass() {
    let s = Server::start().await;
    let scim = Scim::new(&s, json!({"name": "okta"})).await;
    let (st, v) = scim
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "noemail"})),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("emails"), "{detail}");
    assert!(
        !detail.contains("as userName"),
        "no advice the username rule refuses: {detail}"
    );
    // Okta's path-less rename carries the group's own id.
    let (_, g) = scim
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "Sales"})),
            None,
        )
        .await;
    let gid = g["id"].as_str().unwrap();
    let (st, v) = scim
        .call(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "replace", "value": {"id": gid, "displayName": "Sales EMEA"}}]),
            )),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["displayName"], "Sales EMEA");
    // Another id is still a change of a read-only attribute.
    let (st, v) = scim
        .call(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "replace", "value": {"id": "0123456789abcdef01234567"}}]),
            )),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["scimType"], "mutability");
}

#[tokio::test]
async fn an_open_ldap_session_ends_when_an_access_policy_starts_to_deny_it() {
    let s = Server::start().await;
    let id = s.user("polly", Some(PW)).await;
    s.patch(&format!("/users/{id}"), json!({"ldap_bind_dn": true}))
        .await;
    let (_, g) = s.post("/groups", json!({"name": "ldap"})).await;
    let gid = g["id"].as_str().unwrap().to_string();
    s.put(&format!("/groups/{gid}/members/{id}"), None).await;
    s.put(&format!("/groups/{gid}/bindings/ldap"), None).await;
    let (_, org) = s.get("/settings/org").await;
    let f = Fixture {
        suffix: org["ldap_suffix"].as_str().unwrap().to_string(),
        s,
    };
    let mut session = LdapSession::open(&f, "polly", PW);
    assert!(reads_everything(&session.search()));
    // A policy for another source changes nothing for this connection.
    let (st, l) =
        f.s.post(
            "/ip-lists",
            json!({"name": "Elsewhere", "networks": ["192.0.2.0/24"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let (st, p) = f
        .s
        .post(
            "/access-policies",
            json!({"name": "LDAP from elsewhere", "target": "ldap", "source_in": [l["id"]], "action": "deny"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    assert!(reads_everything(&session.search()));
    // One that covers it cuts it on the next operation.
    let (st, p) =
        f.s.post(
            "/access-policies",
            json!({"name": "LDAP closed", "target": "ldap", "groups": [gid], "action": "deny"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    assert_eq!(session.search(), "error 50");
    let events = events_of(&f.s, "ldap_session_revoked").await;
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("access policy"),
        "{events:?}"
    );
}
