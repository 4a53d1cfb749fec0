//! Discovery (RFC 7644 §4, RFC 7643 §5–7): ServiceProviderConfig, ResourceTypes and Schemas, the schemas built
//! from tables of the attributes Stratus serves.

use crate::resource::{ENTERPRISE, GROUP, USER};
use serde_json::{json, Value};

pub const MAX_RESULTS: usize = 1000;
pub const MAX_BULK_OPERATIONS: usize = 1000;
pub const MAX_PAYLOAD: usize = 1024 * 1024;

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://stratus.local/docs/scim",
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": MAX_BULK_OPERATIONS, "maxPayloadSize": MAX_PAYLOAD},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "Bearer token",
            "description": "A SCIM token created in the Stratus admin API (POST /api/v1/scim-tokens)", "primary": true}],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "User", "name": "User",
               "endpoint": "/Users", "description": "Stratus users", "schema": USER,
               "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
               "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")}}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "Group", "name": "Group",
               "endpoint": "/Groups", "description": "Stratus user groups", "schema": GROUP,
               "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")}}),
    ]
}

/// `(name, type, multi-valued, required, case-exact, mutability, returned, uniqueness, sub-attributes)`.
type Attr = (
    &'static str,
    &'static str,
    bool,
    bool,
    bool,
    &'static str,
    &'static str,
    &'static str,
    &'static [Sub],
);
/// `(name, type, mutability)`.
type Sub = (&'static str, &'static str, &'static str);

/// Stratus keeps one e-mail and one phone number, the work ones: `type` and `primary` are the server's.
const MULTI: &[Sub] = &[
    ("value", "string", "readWrite"),
    ("type", "string", "readOnly"),
    ("primary", "boolean", "readOnly"),
];
const REFS: &[Sub] = &[
    ("value", "string", "readOnly"),
    ("$ref", "reference", "readOnly"),
    ("display", "string", "readOnly"),
];
/// Members are users, named by id; Stratus returns `value` and `$ref` only.
const MEMBERS: &[Sub] = &[
    ("value", "string", "immutable"),
    ("$ref", "reference", "immutable"),
];

const USER_ATTRS: &[Attr] = &[
    (
        "userName",
        "string",
        false,
        true,
        false,
        "readWrite",
        "default",
        "server",
        &[],
    ),
    (
        "name",
        "complex",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[
            ("familyName", "string", "readWrite"),
            ("givenName", "string", "readWrite"),
        ],
    ),
    (
        "displayName",
        "string",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[],
    ),
    (
        "title",
        "string",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[],
    ),
    (
        "active",
        "boolean",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[],
    ),
    (
        "password",
        "string",
        false,
        false,
        false,
        "writeOnly",
        "never",
        "none",
        &[],
    ),
    (
        "emails",
        "complex",
        true,
        true,
        false,
        "readWrite",
        "default",
        "none",
        MULTI,
    ),
    (
        "phoneNumbers",
        "complex",
        true,
        false,
        false,
        "readWrite",
        "default",
        "none",
        MULTI,
    ),
    (
        "groups", "complex", true, false, false, "readOnly", "default", "none", REFS,
    ),
];

const ENTERPRISE_ATTRS: &[Attr] = &[
    (
        "employeeNumber",
        "string",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[],
    ),
    (
        "organization",
        "string",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[],
    ),
    (
        "department",
        "string",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[],
    ),
    (
        "manager",
        "complex",
        false,
        false,
        false,
        "readWrite",
        "default",
        "none",
        &[("value", "string", "readWrite")],
    ),
];

const GROUP_ATTRS: &[Attr] = &[
    (
        "displayName",
        "string",
        false,
        true,
        false,
        "readWrite",
        "default",
        "server",
        &[],
    ),
    (
        "members",
        "complex",
        true,
        false,
        false,
        "readWrite",
        "default",
        "none",
        MEMBERS,
    ),
];

fn attribute(a: &Attr) -> Value {
    let (name, typ, multi, required, exact, mutability, returned, uniqueness, subs) = *a;
    let mut v = json!({"name": name, "type": typ, "multiValued": multi, "description": name, "required": required,
                       "caseExact": exact, "mutability": mutability, "returned": returned, "uniqueness": uniqueness});
    if !subs.is_empty() {
        v["subAttributes"] = subs
            .iter()
            .map(|(n, t, m)| {
                let mut sub = json!({"name": n, "type": t, "multiValued": false, "description": n,
                                     "required": *n == "value", "caseExact": *n == "value" || *n == "$ref",
                                     "mutability": m, "returned": "default", "uniqueness": "none"});
                if *n == "$ref" {
                    sub["referenceTypes"] = json!(if name == "groups" { vec!["Group"] } else { vec!["User", "Group"] });
                }
                sub
            })
            .collect();
    }
    v
}

fn schema(id: &str, name: &str, attrs: &[Attr], base: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": id, "name": name, "description": name,
           "attributes": attrs.iter().map(attribute).collect::<Vec<_>>(),
           "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")}})
}

pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        schema(USER, "User", USER_ATTRS, base),
        schema(ENTERPRISE, "EnterpriseUser", ENTERPRISE_ATTRS, base),
        schema(GROUP, "Group", GROUP_ATTRS, base),
    ]
}
