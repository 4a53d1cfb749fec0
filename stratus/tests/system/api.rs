//! Create, read, update and delete of every entity over the admin API, with the events each leaves.

use crate::harness::{Server, ADMIN_EMAIL};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn users_are_created_read_updated_listed_and_deleted() {
    let s = Server::start().await;
    let id = s.user("alice", Some("Correct-Horse-99")).await;
    let (st, u) = s.get(&format!("/users/{id}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(u["username"], "alice");
    assert_eq!(u["state"], "active");
    assert_eq!(u["password_status"], "active");
    assert_eq!(u["uid_number"], 5000);
    assert!(
        u.get("password_hash").is_none(),
        "no secret leaves the API: {u}"
    );

    let pending = s.user("bob", None).await;
    let (_, b) = s.get(&format!("/users/{pending}")).await;
    assert_eq!(b["password_status"], "pending");
    assert_eq!(b["uid_number"], 5001, "UIDs are allocated in order");

    let (st, u) = s
        .patch(
            &format!("/users/{id}"),
            json!({"firstname": "Alice", "state": "suspended", "attributes": {"costCenter": "42"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["firstname"], "Alice");
    assert_eq!(u["state"], "suspended");
    assert_eq!(u["attributes"]["costCenter"], "42");

    let (st, page) = s.get("/users?search=ali").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(page["total"], 1);

    let (st, _) = s.delete(&format!("/users/{id}")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = s.get(&format!("/users/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(e["error"]["code"], "not_found");

    // A deleted user's UID is never handed out again.
    let carol = s.user("carol", None).await;
    let (_, c) = s.get(&format!("/users/{carol}")).await;
    assert_eq!(c["uid_number"], 5002);

    for t in ["user_create", "user_update", "user_delete"] {
        assert!(!s.events(t, "alice").await.is_empty(), "event {t} recorded");
    }
}

#[tokio::test]
async fn groups_members_bindings_and_inherited_attributes() {
    let s = Server::start().await;
    let uid = s.user("dave", Some("Correct-Horse-99")).await;
    let (st, g) = s
        .post(
            "/groups",
            json!({"name": "Engineering", "linux_group": {"name": "eng"}, "samba": true,
                   "attributes": {"department": "R&D", "costCenter": "7"},
                   "radius_reply": [{"attribute": "Tunnel-Private-Group-Id", "value": "42"}], "priority": 10}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(
        g["linux_group"]["gid"], 5000,
        "GID allocated from the range"
    );

    assert_eq!(
        s.put(&format!("/groups/{gid}/members/{uid}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, members) = s.get(&format!("/groups/{gid}/members")).await;
    assert_eq!(members, json!([uid]));

    // The user's own attribute wins over the group's.
    s.patch(
        &format!("/users/{uid}"),
        json!({"attributes": {"costCenter": "99"}}),
    )
    .await;
    let (_, u) = s.get(&format!("/users/{uid}")).await;
    assert_eq!(u["effective_attributes"]["department"], "R&D");
    assert_eq!(u["effective_attributes"]["costCenter"], "99");
    assert_eq!(u["groups"], json!([gid]));
    assert_eq!(
        u["nt_hash_needs_password_set"], true,
        "Samba group member without an NT hash is flagged"
    );

    // Bindings to the LDAP directory and to a RADIUS server.
    let (st, r) = s
        .post("/radius-servers", json!({"name": "Office Wi-Fi", "networks": ["127.0.0.1/32"], "secret": "a-long-shared-secret", "mfa": "require_all_except_enrolling"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap();
    assert!(r.get("secret").is_none(), "the shared secret is write-only");
    assert_eq!(
        s.put(&format!("/groups/{gid}/bindings/ldap"), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.put(&format!("/groups/{gid}/bindings/radius:{rid}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, g) = s.get(&format!("/groups/{gid}")).await;
    assert_eq!(g["bindings"].as_array().unwrap().len(), 2);
    let (_, r) = s.get(&format!("/radius-servers/{rid}")).await;
    assert_eq!(r["bound_groups"], json!([gid]));
    assert_eq!(
        s.put(
            &format!("/groups/{gid}/bindings/radius:ffffffffffffffffffffffff"),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        s.delete(&format!("/groups/{gid}/bindings/ldap")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete(&format!("/groups/{gid}/members/{uid}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (st, g) = s
        .patch(
            &format!("/groups/{gid}"),
            json!({"name": "Eng", "linux_group": null}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(g["linux_group"], json!(null));
    assert_eq!(
        s.delete(&format!("/groups/{gid}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, r) = s.get(&format!("/radius-servers/{rid}")).await;
    assert_eq!(
        r["bound_groups"],
        json!([]),
        "deleting a group removes its bindings"
    );
    for t in [
        "group_create",
        "group_member_add",
        "group_bind",
        "group_unbind",
        "group_member_remove",
        "group_delete",
    ] {
        let (_, ev) = s.get(&format!("/events?type={t}")).await;
        assert!(
            !ev["events"].as_array().unwrap().is_empty(),
            "event {t} recorded"
        );
    }
}

#[tokio::test]
async fn radius_servers_and_apps_have_full_crud() {
    let s = Server::start().await;
    let (st, r) = s
        .post("/radius-servers", json!({"name": "VPN", "networks": ["10.1.0.0/16"], "secret": "another-long-secret", "methods": ["pap", "peap_mschapv2"]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap();
    let (st, r) = s
        .patch(
            &format!("/radius-servers/{rid}"),
            json!({"mfa": "require_all", "secret": "rotated-secret-value-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["mfa"], "require_all");
    assert_eq!(
        s.get("/radius-servers").await.1.as_array().unwrap().len(),
        1
    );
    assert_eq!(
        s.delete(&format!("/radius-servers/{rid}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/radius-servers/{rid}")).await.0,
        StatusCode::NOT_FOUND
    );

    let (st, a) = s
        .post("/apps", json!({"name": "Wiki", "sp_entity_id": "https://wiki.example.com", "acs_urls": ["https://wiki.example.com/acs"],
                              "attributes": [{"name": "email", "source": "email"}]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    assert_eq!(a["signature_algorithm"], "rsa-sha256");
    let aid = a["id"].as_str().unwrap();
    let (st, dup) = s.post("/apps", json!({"name": "Wiki 2", "sp_entity_id": "https://wiki.example.com", "acs_urls": ["https://x.example.com/acs"]})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{dup}");
    let (st, a) = s
        .patch(
            &format!("/apps/{aid}"),
            json!({"nameid_format": "persistent", "sign": "both"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(a["sign"], "both");
    assert_eq!(
        s.delete(&format!("/apps/{aid}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(!s
        .events("app_delete", crate::harness::ADMIN_EMAIL)
        .await
        .is_empty());
}

#[tokio::test]
async fn settings_admins_and_api_keys() {
    let s = Server::start().await;
    let (st, org) = s.get("/settings/org").await;
    assert_eq!(st, StatusCode::OK);
    assert!(org["ldap_suffix"]
        .as_str()
        .unwrap()
        .ends_with(",dc=stratus,dc=local"));
    let (st, org) = s
        .patch(
            "/settings/org",
            json!({"name": "Acme", "mfa_enrolment_days": 14}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{org}");
    assert_eq!(org["mfa_enrolment_days"], 14);
    let (st, e) = s
        .patch("/settings/org", json!({"mfa_enrolment_days": 400}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "mfa_enrolment_days");

    let p = s.update_policy(|p| p["min_length"] = json!(14)).await;
    assert_eq!(p["min_length"], 14);

    // A help-desk admin may unlock but not create users.
    let (st, a) = s
        .post("/admins", json!({"email": "helpdesk@example.com", "name": "HD", "role": "help_desk", "password": "Desk-Pass-123-Abc"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let login = s
        .http
        .post(format!("{}/api/v1/auth/login", s.url))
        .json(&json!({"email": "helpdesk@example.com", "password": "Desk-Pass-123-Abc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("HttpOnly"));
    let forbidden = s
        .http
        .post(format!("{}/api/v1/users", s.url))
        .header("cookie", &cookie)
        .json(&json!({"username": "x", "email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let me = s
        .http
        .get(format!("{}/api/v1/me", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.json::<serde_json::Value>().await.unwrap()["role"],
        "help_desk"
    );

    // API keys: shown once, stored hashed, revocable.
    let (st, k) = s.post("/api-keys", json!({"name": "ci"})).await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let token = k["token"].as_str().unwrap().to_string();
    let (_, keys) = s.get("/api-keys").await;
    assert!(keys
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k.get("token").is_none() && k.get("token_sha256").is_none()));
    let ok = s
        .http
        .get(format!("{}/api/v1/users", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    s.delete(&format!("/api-keys/{}", k["id"].as_str().unwrap()))
        .await;
    let gone = s
        .http
        .get(format!("{}/api/v1/users", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);

    // Admins cannot delete themselves; the admin list and events show what happened.
    let (_, admins) = s.get("/admins").await;
    let root = admins
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == ADMIN_EMAIL)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = s.delete(&format!("/admins/{root}")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let hd = a["id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/admins/{hd}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, ev) = s.get("/events?service=admin&type=admin_login").await;
    assert!(ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"] == "helpdesk@example.com" && e["success"] == true));
}

#[tokio::test]
async fn events_page_and_export_as_json_lines() {
    let s = Server::start().await;
    for i in 0..5 {
        s.user(&format!("user{i}"), None).await;
    }
    let (_, p1) = s.get("/events?type=user_create&limit=2").await;
    let first: Vec<u64> = p1["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(first.len(), 2);
    let cursor = p1["next_cursor"].as_u64().unwrap();
    let (_, p2) = s
        .get(&format!("/events?type=user_create&limit=2&cursor={cursor}"))
        .await;
    let second: Vec<u64> = p2["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(second.iter().all(|id| *id < cursor), "next page is older");
    let resp = s
        .http
        .get(format!("{}/api/v1/events/export?service=admin", s.url))
        .bearer_auth(crate::harness::API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().filter(|e| e["type"] == "user_create").count() >= 5);
    let since = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (_, none) = s
        .get(&format!("/events?since={}", since.replace('+', "%2B")))
        .await;
    assert_eq!(none["events"], json!([]));
}

#[tokio::test]
async fn openapi_document_and_operational_endpoints() {
    let s = Server::start().await;
    let doc: serde_json::Value = s
        .http
        .get(format!("{}/api/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/api/v1/users",
        "/api/v1/groups/{id}/bindings/{resource}",
        "/api/v1/import/users",
        "/api/v1/events",
        "/portal/api/login",
    ] {
        assert!(doc["paths"].get(p).is_some(), "OpenAPI documents {p}");
    }
    // A RADIUS profile's realm rule and the MS-CHAPv2 methods are part of the documented shape.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["RealmMode"]["enum"],
        serde_json::json!(["keep", "strip", "require"]),
        "{schemas}"
    );
    let methods = schemas["RadiusMethod"]["enum"].as_array().unwrap();
    for m in ["mschapv2", "eap_ttls_mschapv2"] {
        assert!(methods.iter().any(|v| v == m), "{methods:?}");
    }
    assert_eq!(
        s.http
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.http
            .get(format!("{}/readyz", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    s.user("m", None).await;
    let metrics = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("stratus_users 1"), "{metrics}");
    assert!(metrics.contains("stratus_http_responses_total{class=\"2xx\"}"));
    let unauth = s
        .http
        .get(format!("{}/api/v1/users", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = unauth.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn first_start_prints_generated_bootstrap_credentials_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let opts = crate::harness::Start {
        generated_bootstrap: true,
        ..Default::default()
    };
    let s = Server::start_in(&dir, opts.clone()).await;
    let lines = s.stdout.lock().unwrap().clone();
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
            .unwrap_or_else(|| panic!("`{prefix}` printed: {lines:?}"))
    };
    let password = find("stratus: bootstrap admin one-time password: ");
    let key = find("stratus: bootstrap admin API key: ");
    assert!(lines.iter().any(|l| l.contains("generated development CA")));
    let me = s
        .http
        .get(format!("{}/api/v1/me", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let login = s
        .http
        .post(format!("{}/api/v1/auth/login", s.url))
        .json(&json!({"email": ADMIN_EMAIL, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let (ok, _, _) = s.terminate().await;
    assert!(ok);
    let again = Server::start_in(&dir, opts).await;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let lines = again.stdout.lock().unwrap().clone();
    assert!(
        !lines.iter().any(|l| l.contains("bootstrap")),
        "printed once only: {lines:?}"
    );
    let me = again
        .http
        .get(format!("{}/api/v1/me", again.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the bootstrap key survives a restart"
    );
    drop(again);
    drop(tmp);
}

/// Every HTTPS answer carries Strict-Transport-Security; answers that carry a secret (a new API key, a SCIM token,
/// a TOTP secret) and every page and API answer forbid caching; published metadata stays cacheable.
#[tokio::test]
async fn https_answers_carry_hsts_and_secrets_are_never_cached() {
    let s = Server::start().await;
    let user = s.user("hsts", Some("Cache-Password-12")).await;
    let secret_bearing = [
        ("/api/v1/api-keys", json!({"name": "ci"})),
        ("/api/v1/scim-tokens", json!({"name": "hr"})),
        (&*format!("/api/v1/users/{user}/mfa/totp"), json!(null)),
    ];
    for (path, body) in secret_bearing {
        let r = s
            .http
            .post(format!("{}{path}", s.url))
            .bearer_auth(crate::harness::API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["strict-transport-security"], "max-age=31536000", "{path}");
    }
    for path in [
        "/login",
        "/portal",
        "/saml/nope/sso",
        "/console/login",
        "/scim/v2/Users",
        "/healthz",
    ] {
        let r = s.http.get(format!("{}{path}", s.url)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(
            h.get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{path}"
        );
        assert_eq!(
            h.get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{path}"
        );
    }
}
