//! Bad input gets a clear error and leaves nothing half-written.

use crate::harness::{Server, API_KEY};
use reqwest::StatusCode;
use serde_json::json;

async fn raw(s: &Server, body: Vec<u8>, content_type: &str) -> (StatusCode, serde_json::Value) {
    let resp = s
        .http
        .post(format!("{}/api/v1/users", s.url))
        .bearer_auth(API_KEY)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (
        resp.status(),
        resp.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn malformed_oversized_and_unknown_field_json_is_refused_clearly() {
    let s = Server::start().await;
    let (st, e) = raw(&s, b"{\"username\": ".to_vec(), "application/json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON"),
        "{e}"
    );
    let (st, e) = raw(
        &s,
        br#"{"username":"a","email":"a@example.com","admin":true}"#.to_vec(),
        "application/json",
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `admin`"),
        "{e}"
    );
    let mut big = br#"{"username":"a","email":"a@example.com","firstname":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    big.extend_from_slice(b"\"}");
    let (st, e) = raw(&s, big, "application/json").await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    let (st, _) = raw(
        &s,
        b"username=a".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(s.get("/users").await.1["total"], 0);
}

#[tokio::test]
async fn duplicates_and_out_of_range_ids_are_refused() {
    let s = Server::start().await;
    s.user("pam", None).await;
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "PAM", "email": "other@example.com"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(e["error"]["field"], "username");
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "pam2", "email": "PAM@example.com"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(e["error"]["field"], "email");
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "low", "email": "low@example.com", "uid_number": 10}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "uid_number");
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "dupuid", "email": "d@example.com", "uid_number": 5000}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "bad name", "email": "b@example.com"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "bademail", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

    let (st, g) = s
        .post(
            "/groups",
            json!({"name": "ops", "linux_group": {"name": "ops", "gid": 7000}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let (st, e) = s
        .post(
            "/groups",
            json!({"name": "ops2", "linux_group": {"name": "ops2", "gid": 7000}}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["field"], "linux_group.gid");
    let (st, e) = s.post("/groups", json!({"name": "OPS"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    let (st, e) = s
        .post(
            "/groups",
            json!({"name": "low", "linux_group": {"name": "low", "gid": 12}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, e) = s.put("/groups/not-an-id/bindings/ldap", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let gid = g["id"].as_str().unwrap();
    let (st, e) = s
        .put(&format!("/groups/{gid}/bindings/printer"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        s.get("/groups").await.1.as_array().unwrap().len(),
        1,
        "nothing half-written"
    );
    let (st, e) = s
        .post(
            "/radius-servers",
            json!({"name": "r", "networks": ["127.0.0.1/32"], "secret": "short"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, e) = s
        .post(
            "/radius-servers",
            json!({"name": "r", "networks": ["not a net"], "secret": "long-enough-secret"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
}

/// Control characters (CR, LF, ESC, …) are refused in every text field, with a field error, through the admin
/// API and SCIM alike; nothing is stored.
#[tokio::test]
async fn control_characters_are_refused_in_text_fields() {
    let s = Server::start().await;
    for (field, value) in [
        ("firstname", "Ann\r\nInjected: yes"),
        ("lastname", "Lee\u{1b}[31m"),
        ("display_name", "A\u{7}B"),
    ] {
        let mut body = json!({"username": "ctl", "email": "ctl@example.com"});
        body[field] = json!(value);
        let (st, e) = s.post("/users", body).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {e}");
        assert_eq!(e["error"]["field"], field, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("control characters"),
            "{e}"
        );
    }
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "ctl", "email": "ctl@example.com",
                               "employment": {"title": "Boss\nof all"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let id = s.user("ctl", None).await;
    let (st, e) = s
        .patch(&format!("/users/{id}"), json!({"lastname": "x\u{0}y"}))
        .await;
    assert_eq!(
        (st, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("lastname")),
        "{e}"
    );
    let (st, e) = s
        .post(
            "/groups",
            json!({"name": "g", "description": "line\r\nbreak"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (_, u) = s.get(&format!("/users/{id}")).await;
    assert_eq!(u["lastname"], "ctl", "unchanged: {u}");
    // SCIM: the same rule, as a SCIM error.
    let (st, t) = s.post("/scim-tokens", json!({"name": "hr"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let r = s
        .http
        .post(format!("{}/scim/v2/Users", s.url))
        .bearer_auth(t["token"].as_str().unwrap())
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "scimctl",
                   "name": {"givenName": "Eve\r\nX", "familyName": "Ok"},
                   "emails": [{"value": "scimctl@example.com", "primary": true}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["scimType"], "invalidValue", "{e}");
}
