//! SCIM 2.0 against the real binary: scim2-tester (PyPI, `conformance/scim/check.py`), and requests shaped as
//! Okta and Entra ID send them, over HTTPS with a SCIM token from the admin API.

use crate::harness::Server;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Scim {
    s: Server,
    token: String,
}

async fn start(env: &[(&str, &str)]) -> Scim {
    let s = Server::start_with_env(env).await;
    let (st, t) = s.post("/scim-tokens", json!({"name": "okta"})).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap().to_string();
    Scim { s, token }
}

impl Scim {
    async fn req(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut r = self
            .s
            .http
            .request(method, format!("{}/scim/v2{path}", self.s.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        let (st, h) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        (st, serde_json::from_str(&text).unwrap_or(Value::Null), h)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.req(Method::GET, path, None, &[]).await;
        (s, v)
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.req(method, path, Some(body), &[]).await;
        (s, v)
    }
}

fn okta_user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
           "userName": name, "externalId": format!("00u{name}"),
           "name": {"givenName": "Pat", "familyName": name},
           "emails": [{"primary": true, "value": format!("{name}@example.com"), "type": "work"}],
           "displayName": format!("Pat {name}"), "active": true, "title": "Engineer",
           ENTERPRISE: {"employeeNumber": "E-1", "department": "R&D", "manager": {"value": "boss"}}})
}

#[tokio::test]
async fn scim2_tester_passes_every_check_but_the_documented_ones() {
    let f = start(&[
        ("STRATUS_SCIM_RATE_PER_SECOND", "100000"),
        ("STRATUS_SCIM_RATE_BURST", "100000"),
    ])
    .await;
    // scim2-tester writes random UUIDs as passwords: let the policy take them.
    f.s.update_policy(|p| {
        p["require_uppercase"] = json!(false);
        p["require_digit"] = json!(false);
    })
    .await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = std::process::Command::new(crate::radius::conformance_python())
        .arg(format!("{root}/conformance/scim/check.py"))
        .arg(format!("{}/scim/v2", f.s.url))
        .arg(&f.token)
        .arg(f.s.dir.join("certs/ca.pem"))
        .output()
        .expect("the conformance venv exists (scripts/test makes it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let summary: Value =
        serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or(Value::Null);
    assert!(
        summary["counts"]["SUCCESS"].as_u64().unwrap_or(0) >= 80,
        "{text}"
    );
    assert_eq!(summary["failed"], json!([]), "{text}");
}

#[tokio::test]
async fn okta_shaped_provisioning_creates_finds_updates_and_suspends() {
    let f = start(&[]).await;
    let (st, created, h) = f
        .req(Method::POST, "/Users", Some(okta_user("pat")), &[])
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(h["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/scim/v2/Users/{id}")));
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(created[ENTERPRISE]["department"], "R&D");
    // The directory has the user, with the mapping applied.
    let (_, u) = f.s.get(&format!("/users/{id}")).await;
    assert_eq!(
        (u["email"].as_str(), u["employment"]["employee_id"].as_str()),
        (Some("pat@example.com"), Some("E-1"))
    );
    assert_eq!(u["external_id"], "00upat");

    // Okta looks the user up by userName before every push.
    let (st, list) = f
        .get("/Users?filter=userName%20eq%20%22PAT%22&startIndex=1&count=100")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (
            list["totalResults"].as_u64(),
            list["Resources"][0]["id"].as_str()
        ),
        (Some(1), Some(id.as_str()))
    );

    // By e-mail (answered from the index too).
    let (_, list) = f
        .get("/Users?filter=emails.value%20eq%20%22pat@example.com%22")
        .await;
    assert_eq!(list["Resources"][0]["id"], id.as_str(), "{list}");

    // A duplicate userName is a conflict.
    let (st, e) = f.send(Method::POST, "/Users", okta_user("pat")).await;
    assert_eq!(
        (st, e["scimType"].as_str(), e["status"].as_str()),
        (StatusCode::CONFLICT, Some("uniqueness"), Some("409"))
    );

    // Okta's full-replace PUT leaves out what it does not manage: those attributes stay, and no `active` means
    // no change of state.
    let (st, put) = f
        .send(
            Method::PUT,
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
             "userName": "pat", "name": {"givenName": "Patricia", "familyName": "pat"},
             "emails": [{"primary": true, "value": "pat@example.com"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{put}");
    assert_eq!(
        (put["active"].as_bool(), put["name"]["givenName"].as_str()),
        (Some(true), Some("Patricia"))
    );
    assert_eq!(put["title"], "Engineer");
    assert_eq!(put[ENTERPRISE]["employeeNumber"], "E-1");

    // Deactivation as Okta sends it: path-less replace.
    let (st, v) = f
        .send(
            Method::PATCH,
            &format!("/Users/{id}"),
            json!({"schemas": [PATCH_OP],
             "Operations": [{"op": "replace", "value": {"active": false}}]}),
        )
        .await;
    assert_eq!(
        (st, v["active"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{v}"
    );
    let (_, u) = f.s.get(&format!("/users/{id}")).await;
    assert_eq!(u["state"], "suspended");
    let ev = f.s.events("user_update", "pat").await;
    assert!(ev.iter().any(|e| e["actor"] == "scim-token:okta"), "{ev:?}");
}

#[tokio::test]
async fn entra_shaped_patches_groups_paging_and_etags() {
    let f = start(&[]).await;
    let mut ids = Vec::new();
    for n in ["ann", "bob", "cat", "dan", "eve"] {
        let (st, v) = f.send(Method::POST, "/Users", okta_user(n)).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Entra: capitalised ops, string booleans, value-filter paths, extension attributes by URN path.
    let (st, v) = f
        .send(Method::PATCH, &format!("/Users/{}", ids[0]), json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ann.new@example.com"},
            {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Sales"},
            {"op": "Remove", "path": "title"}]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["active"].as_bool(), v["emails"][0]["value"].as_str()),
        (Some(false), Some("ann.new@example.com"))
    );
    assert_eq!(v[ENTERPRISE]["department"], "Sales");
    assert!(v.get("title").is_none(), "{v}");

    // Groups: create with members, add and remove the ways Okta and Entra do.
    let (st, g) = f
        .send(
            Method::POST,
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
             "displayName": "Sales", "members": [{"value": ids[0]}, {"value": ids[1]}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    let (st, _) = f
        .send(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": ids[2]}]},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
            {"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, members) = f.s.get(&format!("/groups/{gid}/members")).await;
    assert_eq!(members, json!([ids[2]]));
    let (st, e) = f
        .send(
            Method::POST,
            "/Groups",
            json!({"displayName": "Bad", "members": [{"value": "not-a-user"}]}),
        )
        .await;
    assert_eq!(
        (st, e["scimType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalidValue"))
    );
    let (_, groups) = f.s.get("/groups").await;
    assert!(
        !groups.to_string().contains("\"Bad\""),
        "a refused group is not half-created"
    );

    // Paging without a filter walks every user once, in a stable order.
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        let (_, page) = f.get(&format!("/Users?startIndex={start}&count=2")).await;
        assert_eq!(page["totalResults"], 5);
        for r in page["Resources"].as_array().unwrap() {
            seen.push(r["id"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(seen, all);

    // Paging and sorting.
    let (_, page) = f
        .get("/Users?startIndex=2&count=2&sortBy=userName&sortOrder=descending")
        .await;
    let names: Vec<&str> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        (page["totalResults"].as_u64(), names),
        (Some(5), vec!["dan", "cat"])
    );
    let (_, some) = f.get("/Users?filter=emails.value%20co%20%22example.com%22%20and%20active%20eq%20true&attributes=userName").await;
    assert_eq!(some["totalResults"], 4);
    assert!(some["Resources"][0].get("emails").is_none() && some["Resources"][0]["id"].is_string());

    // ETags: a stale If-Match is refused, a current one accepted; If-None-Match gives 304.
    let (_, _, h) = f
        .req(Method::GET, &format!("/Users/{}", ids[3]), None, &[])
        .await;
    let etag = h["etag"].to_str().unwrap().to_string();
    let (st, _, _) = f
        .req(
            Method::GET,
            &format!("/Users/{}", ids[3]),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_MODIFIED);
    let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "D"}]});
    let (st, _, _) = f
        .req(
            Method::PATCH,
            &format!("/Users/{}", ids[3]),
            Some(body.clone()),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e, _) = f
        .req(
            Method::PATCH,
            &format!("/Users/{}", ids[3]),
            Some(body),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(
        (st, e["status"].as_str()),
        (StatusCode::PRECONDITION_FAILED, Some("412"))
    );
}

#[tokio::test]
async fn bulk_resolves_bulk_ids_and_stops_at_fail_on_errors() {
    let f = start(&[]).await;
    let (st, v) = f
        .send(Method::POST, "/Bulk", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
             "failOnErrors": 1, "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "u1", "data": okta_user("kim")},
                {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"displayName": "Ops", "members": [{"value": "bulkId:u1"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "u2", "data": okta_user("kim")},
                {"method": "POST", "path": "/Users", "bulkId": "u3", "data": okta_user("lee")}]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ops = v["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        vec!["201", "201", "409"],
        "stops after the first failure: {v}"
    );
    let (_, groups) = f.get("/Groups?filter=displayName%20eq%20%22Ops%22").await;
    let kim = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(groups["Resources"][0]["members"][0]["value"], kim);
}

/// A request and the status and scimType it must get.
type Case<'a> = (Method, &'a str, Option<Value>, StatusCode, Option<&'a str>);

#[tokio::test]
async fn bad_requests_get_scim_errors_and_only_scim_tokens_get_in() {
    let f = start(&[
        ("STRATUS_SCIM_RATE_PER_SECOND", "1"),
        ("STRATUS_SCIM_RATE_BURST", "30"),
    ])
    .await;
    let url = format!("{}/scim/v2/Users", f.s.url);
    // No token, a wrong one, or an admin API key: 401.
    for token in [
        None,
        Some("stratus_scim_wrong"),
        Some(crate::harness::API_KEY),
    ] {
        let mut r = f.s.http.get(&url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(resp.headers().contains_key("www-authenticate"));
        let e: Value = resp.json().await.unwrap();
        assert_eq!(
            e["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    // A SCIM token is no admin API key.
    let resp =
        f.s.http
            .get(format!("{}/api/v1/users", f.s.url))
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/Users?filter=userName%20eq",
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
        ),
        (
            Method::GET,
            "/Users?filter=userName%20xx%20%22a%22",
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
        ),
        (
            Method::GET,
            "/Users/ffffffffffffffffffffffff",
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::GET,
            "/Users?sortBy=bad%20path",
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidPath"),
        ),
        (
            Method::POST,
            "/Users",
            Some(json!({"emails": [{"value": "x@example.com"}]})),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users",
            Some(json!({"userName": "has space", "emails": [{"value": "x@example.com"}]})),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users",
            Some(
                json!({"userName": "pw", "password": "short", "emails": [{"value": "pw@example.com"}]}),
            ),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users",
            Some(json!({"userName": 7})),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users",
            Some(json!([1, 2])),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Bulk",
            Some(json!({"Operations": []})),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
    ];
    for (method, path, body, status, scim_type) in cases {
        let (st, e, _) = f.req(method.clone(), path, body, &[]).await;
        assert_eq!(
            (st, e["scimType"].as_str()),
            (status, scim_type),
            "{method} {path}: {e}"
        );
        assert_eq!(e["status"], status.as_u16().to_string(), "{e}");
    }
    let (_, users) = f.s.get("/users?search=pw").await;
    assert_eq!(users["total"], 0, "a refused create writes nothing");

    let (_, u) = f.send(Method::POST, "/Users", okta_user("ida")).await;
    let id = u["id"].as_str().unwrap();
    let (st, e) = f
        .send(Method::PATCH, &format!("/Users/{id}"), json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "id", "value": "x"}]}))
        .await;
    assert_eq!(
        (st, e["scimType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("mutability"))
    );
    let (st, e) = f
        .send(Method::PATCH, &format!("/Users/{id}"), json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "emails[type", "value": "x"}]}))
        .await;
    assert_eq!(
        (st, e["scimType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalidPath"))
    );

    // Malformed JSON, a wrong content type, a body over 1 MiB.
    for (ct, body, status) in [
        (
            "application/scim+json",
            "{\"userName\": ".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "text/plain",
            "{}".to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/scim+json",
            format!("{{\"userName\": \"{}\"}}", "a".repeat(1_100_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let resp =
            f.s.http
                .post(&url)
                .bearer_auth(&f.token)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status(), status, "{ct}");
        let e: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(e["status"], status.as_u16().to_string());
    }

    // Rate limit: the burst runs out and the answer says when to come back.
    let mut limited = None;
    for _ in 0..40 {
        let resp =
            f.s.http
                .get(&url)
                .bearer_auth(&f.token)
                .send()
                .await
                .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            break;
        }
    }
    assert!(
        limited.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)),
        "no 429 with Retry-After"
    );

    // A revoked token stops working.
    let (_, tokens) = f.s.get("/scim-tokens").await;
    let tid = tokens[0]["id"].as_str().unwrap();
    assert_eq!(
        f.s.delete(&format!("/scim-tokens/{tid}")).await.0,
        StatusCode::NO_CONTENT
    );
    let resp =
        f.s.http
            .get(&url)
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// A free loopback port (bound and released: the target starts on it later).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// scim2-server (PyPI) on `port`, killed when dropped.
pub(crate) struct Target(std::process::Child);

impl Target {
    pub(crate) fn start(port: u16) -> Target {
        let python = crate::radius::conformance_python();
        let bin = std::path::Path::new(&python).with_file_name("scim2-server");
        let child = std::process::Command::new(bin)
            .args(["--bearer-token", "app-token-1", "--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("scim2-server is in the conformance venv (scripts/test installs it)");
        Target(child)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll the target until `check` holds (bounded: 60 s).
pub(crate) async fn eventually(port: u16, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let http = reqwest::Client::new();
    let mut last = Value::Null;
    for _ in 0..240 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth("app-token-1")
            .send()
            .await
        {
            last = r.json().await.unwrap_or(Value::Null);
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("the app never reached the expected state; last: {last}");
}

#[tokio::test]
async fn outbound_provisioning_creates_updates_deactivates_and_resumes_after_the_app_was_down() {
    let f = start(&[]).await;
    let port = free_port();
    let (st, app) = f
        .s
        .post("/apps", json!({"name": "vault", "sp_entity_id": "https://vault.example", "acs_urls": ["https://vault.example/acs"]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    let app = app["id"].as_str().unwrap().to_string();
    let (st, c) = f
        .s
        .put(&format!("/apps/{app}/scim-connector"), Some(json!({"base_url": format!("http://127.0.0.1:{port}"), "token": "app-token-1", "group_push": true, "allow_insecure_http": true})))
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let ann = f.s.user("ann", None).await;
    let (st, g) = f.s.post("/groups", json!({"name": "vault-users"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let g = g["id"].as_str().unwrap().to_string();
    f.s.put(&format!("/groups/{g}/members/{ann}"), None).await;
    f.s.put(&format!("/groups/{g}/bindings/app:{app}"), None)
        .await;

    // The app is down: deliveries fail, stay in the outbox with the error, and are retried.
    let mut failed = Value::Null;
    for _ in 0..120 {
        let (_, c) = f.s.get(&format!("/apps/{app}/scim-connector")).await;
        if c["outbox"]
            .as_array()
            .is_some_and(|o| o.iter().any(|i| i["last_error"].is_string()))
        {
            failed = c;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        failed["outbox"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("request failed"),
        "{failed}"
    );
    let ev = f.s.events("scim_push", "ann").await;
    assert!(ev.iter().any(|e| e["success"] == false), "{ev:?}");

    // The app comes up: the user and the group arrive.
    let _target = Target::start(port);
    let users = eventually(port, "/Users", |v| v["totalResults"] == 1).await;
    let remote = users["Resources"][0].clone();
    assert_eq!(
        (remote["userName"].as_str(), remote["active"].as_bool()),
        (Some("ann"), Some(true))
    );
    assert_eq!(remote["externalId"], ann.as_str());
    let rid = remote["id"].as_str().unwrap().to_string();
    eventually(port, "/Groups", |v| {
        v["Resources"][0]["members"][0]["value"] == rid.as_str()
    })
    .await;
    let (_, c) = f.s.get(&format!("/apps/{app}/scim-connector")).await;
    assert_eq!(c["provisioned"], 2, "{c}");

    // Changes follow; suspension and the end of access deactivate (never delete).
    f.s.patch(&format!("/users/{ann}"), json!({"lastname": "Lovelace"}))
        .await;
    eventually(port, &format!("/Users/{rid}"), |v| {
        v["name"]["familyName"] == "Lovelace"
    })
    .await;
    f.s.patch(&format!("/users/{ann}"), json!({"state": "suspended"}))
        .await;
    eventually(port, &format!("/Users/{rid}"), |v| v["active"] == false).await;
    f.s.patch(&format!("/users/{ann}"), json!({"state": "active"}))
        .await;
    eventually(port, &format!("/Users/{rid}"), |v| v["active"] == true).await;
    f.s.delete(&format!("/groups/{g}/bindings/app:{app}")).await;
    eventually(port, &format!("/Users/{rid}"), |v| v["active"] == false).await;
    eventually(port, "/Groups", |v| v["totalResults"] == 0).await;
    let users = eventually(port, "/Users", |v| v["totalResults"] == 1).await;
    assert_eq!(
        users["Resources"][0]["userName"], "ann",
        "deactivated, not deleted"
    );
    let ev = f.s.events("scim_push", "ann").await;
    assert!(
        ev.iter()
            .any(|e| e["success"] == true && e["details"]["action"] == "deactivate_user"),
        "{ev:?}"
    );
}

async fn new_app(f: &Scim, name: &str) -> String {
    let (st, app) = f
        .s
        .post("/apps", json!({"name": name, "sp_entity_id": format!("https://{name}.example"), "acs_urls": [format!("https://{name}.example/acs")]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    app["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn changing_the_connector_base_url_requires_the_token_again() {
    let f = start(&[]).await;
    let app = new_app(&f, "vault").await;
    let path = format!("/apps/{app}/scim-connector");
    let (st, c) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://vault.example/scim/v2/", "token": "secret-1"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(c["base_url"], "https://vault.example/scim/v2");
    // The same URL (trailing slash aside) keeps the sealed token.
    let (st, c) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://vault.example/scim/v2"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    // Another URL without the token is refused and changes nothing.
    let (st, e) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://collector.example/scim/v2"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("token"), "{e}");
    let (_, c) = f.s.get(&path).await;
    assert_eq!(c["base_url"], "https://vault.example/scim/v2", "{c}");
    // With the token, the move is accepted.
    let (st, c) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://vault2.example/scim/v2", "token": "secret-2"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    // URLs that smuggle credentials or another host are refused.
    for bad in [
        "https://user:pw@vault.example/scim",
        "https://vault.example\\@collector.example/scim",
        "https://vault.example/scim?x=1",
        "ftp://vault.example/scim",
        "vault.example/scim",
    ] {
        let (st, e) =
            f.s.put(&path, Some(json!({"base_url": bad, "token": "secret-3"})))
                .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {e}");
    }
}

#[tokio::test]
async fn plain_http_connectors_need_the_opt_in_and_a_loopback_address() {
    let f = start(&[]).await;
    let app = new_app(&f, "vault").await;
    let path = format!("/apps/{app}/scim-connector");
    let (st, e) =
        f.s.put(
            &path,
            Some(json!({"base_url": "http://127.0.0.1:9/scim", "token": "t"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("https"), "{e}");
    let (st, e) = f
        .s
        .put(&path, Some(json!({"base_url": "http://vault.example/scim", "token": "t", "allow_insecure_http": true})))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("loopback"), "{e}");
    let (st, c) = f
        .s
        .put(&path, Some(json!({"base_url": "http://127.0.0.1:9/scim", "token": "t", "allow_insecure_http": true})))
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(c["insecure_http"], true, "{c}");
    let (st, ev) = f.s.get("/events?type=scim_connector_set&limit=10").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ev["events"][0]["details"]["insecure_http"], true, "{ev}");
    let (_, c) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://vault.example/scim", "token": "t"})),
        )
        .await;
    assert_eq!(c["insecure_http"], false, "{c}");
}

#[tokio::test]
async fn a_connector_put_without_group_push_keeps_the_current_setting() {
    let f = start(&[]).await;
    let app = new_app(&f, "vault").await;
    let path = format!("/apps/{app}/scim-connector");
    let (_, c) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://vault.example/scim", "token": "t"})),
        )
        .await;
    assert_eq!(
        c["group_push"], false,
        "a new connector pushes users only: {c}"
    );
    let (_, c) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://vault.example/scim", "group_push": true})),
        )
        .await;
    assert_eq!(c["group_push"], true, "{c}");
    let (st, c) =
        f.s.put(
            &path,
            Some(json!({"base_url": "https://vault.example/scim"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(c["group_push"], true, "left out, the setting stays: {c}");
}

#[tokio::test]
async fn the_provisioner_follows_no_redirect_with_the_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = start(&[]).await;
    // A collector that would receive the token if a redirect were followed, and an endpoint that redirects to it.
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_port = collector.local_addr().unwrap().port();
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hits = std::sync::Arc::clone(&reached);
    tokio::spawn(async move {
        while let Ok((_c, _)) = collector.accept().await {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = redirector.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = redirector.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{collector_port}/scim/Users\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = c.write_all(reply.as_bytes()).await;
            });
        }
    });
    let app = new_app(&f, "vault").await;
    let (st, c) = f
        .s
        .put(&format!("/apps/{app}/scim-connector"), Some(json!({"base_url": format!("http://127.0.0.1:{port}/scim"), "token": "app-token-1", "allow_insecure_http": true})))
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let ann = f.s.user("ann", None).await;
    let (_, g) = f.s.post("/groups", json!({"name": "vault-users"})).await;
    let g = g["id"].as_str().unwrap().to_string();
    f.s.put(&format!("/groups/{g}/members/{ann}"), None).await;
    f.s.put(&format!("/groups/{g}/bindings/app:{app}"), None)
        .await;
    let mut error = String::new();
    for _ in 0..120 {
        let (_, c) = f.s.get(&format!("/apps/{app}/scim-connector")).await;
        if let Some(e) = c["outbox"][0]["last_error"].as_str() {
            error = e.to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        error.contains("307"),
        "the delivery fails with the redirect's status: {error:?}"
    );
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the token never went to the redirect target"
    );
}

/// Percent-encode a filter for a query string.
fn q(filter: &str) -> String {
    filter
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_filters_okta_and_entra_send_are_answered_exactly() {
    let f = start(&[]).await;
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let (st, u) = f.send(Method::POST, "/Users", okta_user(name)).await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    let (st, g) = f
        .send(
            Method::POST,
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering",
                   "externalId": "grp-eng", "members": [{"value": ids[0]}, {"value": ids[1]}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let (st, other) = f
        .send(
            Method::POST,
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales",
                   "members": [{"value": ids[1]}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{other}");
    let names = |v: &Value, key: &str| -> Vec<String> {
        let mut n: Vec<String> = v["Resources"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|r| r[key].as_str().unwrap_or("").to_string())
            .collect();
        n.sort();
        n
    };
    for (filter, want) in [
        (r#"userName eq "ANN""#.to_string(), vec!["ann"]),
        (r#"externalId eq "00ubob""#.to_string(), vec!["bob"]),
        (r#"externalId eq "00UBOB""#.to_string(), vec![]),
        (
            r#"emails[type eq "work"].value eq "cy@example.com""#.to_string(),
            vec!["cy"],
        ),
        (
            r#"emails[type eq "home"].value eq "cy@example.com""#.to_string(),
            vec![],
        ),
        (
            r#"emails[type eq "work" and value eq "Ann@Example.com"]"#.to_string(),
            vec!["ann"],
        ),
        (format!(r#"id eq "{}""#, ids[2]), vec!["cy"]),
        (
            r#"userName eq "ann" or externalId eq "00ucy""#.to_string(),
            vec!["ann", "cy"],
        ),
        (
            r#"userName eq "ann" and active eq false"#.to_string(),
            vec![],
        ),
        (r#"userName sw "b""#.to_string(), vec!["bob"]),
    ] {
        let (st, v) = f.get(&format!("/Users?filter={}", q(&filter))).await;
        assert_eq!(st, StatusCode::OK, "{filter}: {v}");
        assert_eq!(names(&v, "userName"), want, "{filter}");
        assert_eq!(v["totalResults"], want.len(), "{filter}");
    }
    for (filter, want) in [
        (
            r#"displayName eq "engineering""#.to_string(),
            vec!["Engineering"],
        ),
        (
            r#"externalId eq "grp-eng""#.to_string(),
            vec!["Engineering"],
        ),
        (
            format!(r#"members[value eq "{}"]"#, ids[1]),
            vec!["Engineering", "Sales"],
        ),
        (format!(r#"members[value eq "{}"]"#, ids[2]), vec![]),
        (
            format!(
                r#"displayName eq "Sales" and members[value eq "{}"]"#,
                ids[0]
            ),
            vec![],
        ),
        (r#"displayName co "ale""#.to_string(), vec!["Sales"]),
    ] {
        let (st, v) = f.get(&format!("/Groups?filter={}", q(&filter))).await;
        assert_eq!(st, StatusCode::OK, "{filter}: {v}");
        assert_eq!(names(&v, "displayName"), want, "{filter}");
    }
    // An external id that changes moves in the index.
    let (st, u) = f
        .send(
            Method::PATCH,
            &format!("/Users/{}", ids[0]),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "externalId", "value": "00unew"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    let (_, v) = f
        .get(&format!("/Users?filter={}", q(r#"externalId eq "00uann""#)))
        .await;
    assert_eq!(v["totalResults"], 0, "{v}");
    let (_, v) = f
        .get(&format!("/Users?filter={}", q(r#"externalId eq "00unew""#)))
        .await;
    assert_eq!(names(&v, "userName"), vec!["ann"]);
}
