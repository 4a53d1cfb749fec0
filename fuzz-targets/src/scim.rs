//! SCIM targets: filters and attribute paths (the `filter`, `sortBy` and `attributes` parameters and PATCH
//! paths) evaluated against resources shaped like ours, and JSON bodies through PATCH and the resource readers
//! (POST and PUT).

use scim_server::{filter, patch, resource};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The attributes PATCH may not change, as the service provider passes them.
const USER_READ_ONLY: &[&str] = &["id", "meta", "groups"];
const GROUP_READ_ONLY: &[&str] = &["id", "meta"];

pub fn scim_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = filter::parse(text) {
        let _ = filter::lookups(&f, false);
        let _ = filter::lookups(&f, true);
        let (user, group) = resources();
        let _ = filter::matches(&f, user);
        let _ = filter::matches(&f, group);
    }
    let _ = filter::parse_path(text);
    for p in text.split(',') {
        if let Ok(path) = filter::attr_path(p) {
            let (user, _) = resources();
            let _ = filter::container(user, &path);
        }
    }
}

/// A request body: a PatchOp applied to a user and to a group, and the same body read as a full resource.
pub fn scim_patch(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (user, group) = resources();
    if let Ok(after) = patch::apply(user, &body, USER_READ_ONLY) {
        let _ = resource::read_user(&after);
    }
    if let Ok(after) = patch::apply(group, &body, GROUP_READ_ONLY) {
        let _ = resource::read_group(&after);
    }
    let _ = patch::sets_members(&body);
    let _ = resource::read_user(&body);
    let _ = resource::read_group(&body);
}

/// A user and a group as the service provider renders them.
fn resources() -> (&'static Value, &'static Value) {
    static RESOURCES: OnceLock<(Value, Value)> = OnceLock::new();
    let (u, g) = RESOURCES.get_or_init(|| {
        let user = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "0123456789abcdef01234567",
            "externalId": "00u1a2b3c4",
            "userName": "alice@example.com",
            "name": {"givenName": "Alice", "familyName": "Example", "formatted": "Alice Example"},
            "displayName": "Alice Example",
            "active": true,
            "emails": [
                {"value": "alice@example.com", "type": "work", "primary": true},
                {"value": "alice@home.example", "type": "home"}
            ],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            "title": "Engineer",
            "groups": [{"value": "abcdef0123456789abcdef01", "display": "staff"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "42",
                "department": "R&D",
                "manager": {"value": "fedcba9876543210fedcba98"}
            },
            "meta": {
                "resourceType": "User",
                "created": "2024-01-01T00:00:00Z",
                "lastModified": "2024-01-02T00:00:00Z",
                "version": "W/\"3\"",
                "location": "https://idp.example/scim/v2/Users/0123456789abcdef01234567"
            }
        });
        let group = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "abcdef0123456789abcdef01",
            "displayName": "staff",
            "members": [
                {"value": "0123456789abcdef01234567", "display": "alice@example.com", "type": "User"}
            ],
            "meta": {"resourceType": "Group", "version": "W/\"7\""}
        });
        (user, group)
    });
    (u, g)
}
