//! Users and groups as SCIM resources (RFC 7643 §4, enterprise extension §4.3), both ways.
//!
//! | SCIM | Stratus |
//! | --- | --- |
//! | `userName` | a POSIX-safe username (letters, digits, `.` `_` `-`; stored lower-case), or an e-mail-shaped login name (Okta's and Entra's defaults) kept as sent, from which the core derives the POSIX username that LDAP `uid`, RADIUS and Linux use; matched case-insensitively |
//! | `name.givenName` / `familyName`, `displayName` | first / last / display name |
//! | `emails` (the primary one, else `work`, else the first) | e-mail; required — an e-mail-shaped `userName` is used when no e-mail is sent |
//! | `active` | state Active ↔ Suspended (a staged user reads as inactive) |
//! | `externalId`, `title`, `phoneNumbers` (first) | external id, title, phone |
//! | enterprise `employeeNumber`, `department`, `organization`, `manager.value` | employment fields |
//! | `password` | write-only, checked against the policy |
//! | `groups` | read-only: the user's groups |
//! | Group `displayName`, `members[].value`, `externalId` | group name, members (user ids), external id |

use crate::error::ScimError;
use crate::filter::key_of;
use core_directory::model::{Employment, Group, UserState};
use core_directory::views::UserView;
use core_directory::Snapshot;
use serde_json::{json, Map, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The weak ETag of a resource at a revision: the core moves a user's or group's revision with every change
/// (a member added, a name changed), and a write that names it is checked inside the core's serialised write.
pub fn version_of(revision: u64) -> String {
    format!("W/\"{revision}\"")
}

/// The revision an entity tag names (`W/"12"` or `"12"`), if it is one of ours.
pub fn revision_of(tag: &str) -> Option<u64> {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

fn with_meta(
    mut v: Value,
    kind: &str,
    location: String,
    created: String,
    modified: String,
    revision: u64,
) -> Value {
    v["meta"] = json!({"resourceType": kind, "created": created, "lastModified": modified,
                       "location": location, "version": version_of(revision)});
    v
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn user_json(u: &UserView, snap: &Snapshot, base: &str) -> Value {
    let mut v = json!({
        "schemas": [USER],
        "id": u.id.as_str(),
        "userName": u.login_name.as_deref().unwrap_or(&u.username),
        "emails": [{"value": u.email, "type": "work", "primary": true}],
        "active": u.state == UserState::Active,
    });
    let mut name = Map::new();
    for (k, val) in [("givenName", &u.firstname), ("familyName", &u.lastname)] {
        if !val.is_empty() {
            name.insert(k.into(), json!(val));
        }
    }
    if !name.is_empty() {
        v["name"] = Value::Object(name);
    }
    if let Some(d) = &u.display_name {
        v["displayName"] = json!(d);
    }
    if let Some(e) = &u.external_id {
        v["externalId"] = json!(e);
    }
    if let Some(t) = &u.employment.title {
        v["title"] = json!(t);
    }
    if let Some(p) = &u.phone {
        v["phoneNumbers"] = json!([{"value": p, "type": "work"}]);
    }
    let groups: Vec<Value> = u
        .groups
        .iter()
        .filter_map(|g| snap.group(g))
        .map(|g| json!({"value": g.id.as_str(), "display": g.name, "$ref": format!("{base}/Groups/{}", g.id)}))
        .collect();
    if !groups.is_empty() {
        v["groups"] = json!(groups);
    }
    let e = &u.employment;
    let mut ext = Map::new();
    for (k, val) in [
        ("employeeNumber", &e.employee_id),
        ("department", &e.department),
        ("organization", &e.company),
    ] {
        if let Some(x) = val {
            ext.insert(k.into(), json!(x));
        }
    }
    if let Some(m) = &e.manager {
        ext.insert("manager".into(), json!({"value": m}));
    }
    if !ext.is_empty() {
        v[ENTERPRISE] = Value::Object(ext);
        v["schemas"] = json!([USER, ENTERPRISE]);
    }
    with_meta(
        v,
        "User",
        format!("{base}/Users/{}", u.id),
        time(u.created_at),
        time(u.updated_at),
        u.revision,
    )
}

pub fn group_json(g: &Group, snap: &Snapshot, base: &str) -> Value {
    let members: Vec<Value> = snap
        .members_of(&g.id)
        .map(|u| json!({"value": u.id.as_str(), "$ref": format!("{base}/Users/{}", u.id)}))
        .collect();
    let mut v =
        json!({"schemas": [GROUP], "id": g.id.as_str(), "displayName": g.name, "members": members});
    if let Some(e) = &g.external_id {
        v["externalId"] = json!(e);
    }
    with_meta(
        v,
        "Group",
        format!("{base}/Groups/{}", g.id),
        time(g.created_at),
        time(g.updated_at),
        g.revision,
    )
}

fn field<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    let o = v.as_object()?;
    key_of(o, name)
        .and_then(|k| o.get(k))
        .filter(|x| !x.is_null())
}

fn text(v: &Value, name: &str) -> Result<Option<String>, ScimError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::bad_request(
            "invalidValue",
            format!("`{name}` must be a string"),
        )),
    }
}

/// What a client sent for a user; `None` is "not sent".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserInput {
    pub user_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: Option<bool>,
    pub external_id: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub organization: Option<String>,
    pub manager: Option<String>,
    pub password: Option<String>,
}

impl UserInput {
    pub fn employment(&self) -> Employment {
        Employment {
            title: self.title.clone(),
            department: self.department.clone(),
            company: self.organization.clone(),
            employee_id: self.employee_number.clone(),
            manager: self.manager.clone(),
        }
    }
}

fn primary_value(v: &Value, name: &str) -> Result<Option<String>, ScimError> {
    let Some(list) = field(v, name) else {
        return Ok(None);
    };
    let Value::Array(items) = list else {
        return Err(ScimError::bad_request(
            "invalidValue",
            format!("`{name}` must be a list"),
        ));
    };
    let is_primary = |i: &&Value| match field(i, "primary") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let is_work = |i: &&Value| {
        field(i, "type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("work"))
    };
    let pick = items
        .iter()
        .find(is_primary)
        .or_else(|| items.iter().find(is_work))
        .or_else(|| items.first());
    match pick {
        None => Ok(None),
        Some(i) => text(i, "value"),
    }
}

/// Read a User resource.
pub fn read_user(v: &Value) -> Result<UserInput, ScimError> {
    if !v.is_object() {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            "a User must be a JSON object",
        ));
    }
    let name = field(v, "name").cloned().unwrap_or(Value::Null);
    let ext = v
        .as_object()
        .and_then(|o| key_of(o, ENTERPRISE).and_then(|k| o.get(k)))
        .cloned()
        .unwrap_or(Value::Null);
    let active = match field(v, "active") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        Some(_) => {
            return Err(ScimError::bad_request(
                "invalidValue",
                "`active` must be a boolean",
            ))
        }
    };
    let manager = match field(&ext, "manager") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(m) => text(m, "value")?,
    };
    Ok(UserInput {
        user_name: text(v, "userName")?,
        given_name: text(&name, "givenName")?,
        family_name: text(&name, "familyName")?,
        display_name: text(v, "displayName")?,
        email: primary_value(v, "emails")?,
        active,
        external_id: text(v, "externalId")?,
        title: text(v, "title")?,
        phone: primary_value(v, "phoneNumbers")?,
        employee_number: text(&ext, "employeeNumber")?,
        department: text(&ext, "department")?,
        organization: text(&ext, "organization")?,
        manager,
        password: text(v, "password")?,
    })
}

/// What a client sent for a group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupInput {
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    /// User ids, when `members` was sent.
    pub members: Option<Vec<String>>,
}

pub fn read_group(v: &Value) -> Result<GroupInput, ScimError> {
    if !v.is_object() {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            "a Group must be a JSON object",
        ));
    }
    let members = match field(v, "members") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|m| {
                    text(m, "value")?.ok_or_else(|| {
                        ScimError::bad_request("invalidValue", "each member needs a value")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(ScimError::bad_request(
                "invalidValue",
                "`members` must be a list",
            ))
        }
    };
    Ok(GroupInput {
        display_name: text(v, "displayName")?,
        external_id: text(v, "externalId")?,
        members,
    })
}
