//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON, in the dialects Okta and Entra ID really send.
//!
//! Operations run in order on a copy; the caller turns the result into a change of the directory only when every
//! operation succeeded, so a failing PATCH writes nothing. Accepted besides the RFC's own shapes: op names in any
//! case (`Replace`, `Add`), a path-less `replace`/`add` whose value object holds attribute paths as keys
//! (`{"name.givenName": "x"}`, `{"urn:…:User:department": "x"}`), `"True"`/`"False"` strings for booleans, and
//! Entra's `remove` of members with a `value` array instead of a filter.

use crate::error::ScimError;
use crate::filter::{self, key_of, AttrPath, PatchPath};
use serde_json::{Map, Value};

/// One operation of a PatchOp request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Replace,
    Remove,
}

/// Attributes that hold booleans, for Entra's string forms.
const BOOLEANS: &[&str] = &["active", "primary"];

fn coerce(name: &str, v: Value) -> Value {
    match (&v, BOOLEANS.iter().any(|b| b.eq_ignore_ascii_case(name))) {
        (Value::String(s), true) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
        (Value::String(s), true) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
        _ => v,
    }
}

/// Apply a PatchOp body to `resource`. `read_only` names attributes clients may not change.
pub fn apply(resource: &Value, body: &Value, read_only: &[&str]) -> Result<Value, ScimError> {
    let schemas_ok = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u == crate::PATCH_OP));
    if !schemas_ok {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            "a PATCH body must name the PatchOp schema",
        ));
    }
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::bad_request("invalidSyntax", "a PATCH body needs Operations"))?;
    let mut doc = resource.clone();
    for op in ops {
        let kind = match op
            .get("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => Kind::Add,
            Some("replace") => Kind::Replace,
            Some("remove") => Kind::Remove,
            _ => {
                return Err(ScimError::bad_request(
                    "invalidSyntax",
                    "each operation's op must be add, replace or remove",
                ))
            }
        };
        let value = op.get("value").cloned();
        match op.get("path").and_then(Value::as_str) {
            None | Some("") => {
                if kind == Kind::Remove {
                    return Err(ScimError::bad_request("noTarget", "remove needs a path"));
                }
                let Some(Value::Object(fields)) = value else {
                    return Err(ScimError::bad_request(
                        "invalidValue",
                        "an operation without a path needs an object value",
                    ));
                };
                for (k, v) in fields {
                    let path = whole_extension(&k).map_or_else(
                        || {
                            filter::parse_path(&k)
                                .map_err(|e| ScimError::bad_request("invalidPath", e.0))
                        },
                        Ok,
                    )?;
                    one(&mut doc, kind, &path, Some(v), read_only)?;
                }
            }
            Some(p) => {
                let path = whole_extension(p).map_or_else(
                    || {
                        filter::parse_path(p)
                            .map_err(|e| ScimError::bad_request("invalidPath", e.0))
                    },
                    Ok,
                )?;
                if kind != Kind::Remove && value.is_none() {
                    return Err(ScimError::bad_request(
                        "invalidValue",
                        "add and replace need a value",
                    ));
                }
                one(&mut doc, kind, &path, value, read_only)?;
            }
        }
    }
    Ok(doc)
}

/// Whether a PatchOp body sets the member list as a whole — a `replace` of `members` (with a path or inside a
/// path-less value), or a `remove` of `members` without a filter or value — rather than adding or removing
/// particular members.
pub fn sets_members(body: &Value) -> bool {
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array);
    ops.into_iter().flatten().any(|op| {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let path = op.get("path").and_then(Value::as_str).map(str::trim);
        let is_members = |p: &str| p.eq_ignore_ascii_case("members");
        match (kind.as_deref(), path) {
            (Some("replace"), None | Some("")) => op
                .get("value")
                .and_then(Value::as_object)
                .is_some_and(|o| o.keys().any(|k| is_members(k))),
            (Some("replace"), Some(p)) => is_members(p),
            (Some("remove"), Some(p)) => is_members(p) && op.get("value").is_none(),
            _ => false,
        }
    })
}

/// A path naming a whole extension (`urn:…:enterprise:2.0:User`) addresses the extension object itself.
fn whole_extension(path: &str) -> Option<PatchPath> {
    path.trim()
        .eq_ignore_ascii_case(crate::resource::ENTERPRISE)
        .then(|| PatchPath {
            attr: AttrPath {
                schema: None,
                name: crate::resource::ENTERPRISE.to_string(),
                sub: None,
            },
            filter: None,
            sub: None,
        })
}

/// The object a path's attribute lives in, created when asked to.
fn container_mut<'v>(
    doc: &'v mut Value,
    attr: &AttrPath,
    create: bool,
) -> Option<&'v mut Map<String, Value>> {
    let root = doc.as_object_mut()?;
    match &attr.schema {
        None => Some(root),
        Some(urn) => {
            let key = match key_of(root, urn) {
                Some(k) => k.clone(),
                None if create => {
                    root.insert(urn.clone(), Value::Object(Map::new()));
                    urn.clone()
                }
                None => return None,
            };
            root.get_mut(&key)?.as_object_mut()
        }
    }
}

fn one(
    doc: &mut Value,
    kind: Kind,
    path: &PatchPath,
    value: Option<Value>,
    read_only: &[&str],
) -> Result<(), ScimError> {
    let name = &path.attr.name;
    if read_only.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        // Okta renames a group with a path-less replace that also carries the group's own `id`: a read-only
        // attribute given its current value changes nothing, so it is not refused.
        let current = doc
            .as_object()
            .and_then(|o| key_of(o, name).and_then(|k| o.get(k)));
        let unchanged = kind != Kind::Remove
            && path.filter.is_none()
            && path.attr.sub.is_none()
            && value.is_some()
            && current == value.as_ref();
        if unchanged {
            return Ok(());
        }
        return Err(ScimError::bad_request(
            "mutability",
            format!("`{name}` is read-only"),
        ));
    }
    let value = value.map(|v| coerce(path.attr.sub.as_deref().unwrap_or(name), v));
    let Some(obj) = container_mut(doc, &path.attr, kind != Kind::Remove) else {
        return Ok(()); // removing from an extension that is not there
    };
    let key = key_of(obj, name).cloned().unwrap_or_else(|| name.clone());
    match (&path.filter, &path.attr.sub) {
        (None, None) => {
            match kind {
                Kind::Remove => match (obj.get_mut(&key), value) {
                    // Entra: remove members listed by value.
                    (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                        items.retain(|i| !gone.iter().any(|g| same_value(i, g)));
                    }
                    _ => {
                        obj.remove(&key);
                    }
                },
                Kind::Add => {
                    let v = value.unwrap_or(Value::Null);
                    match (obj.get_mut(&key), v) {
                        (Some(Value::Array(items)), Value::Array(new)) => {
                            for n in new {
                                if !items.iter().any(|i| same_value(i, &n)) {
                                    items.push(n);
                                }
                            }
                        }
                        (Some(Value::Object(existing)), Value::Object(new)) => {
                            for (k, v) in new {
                                existing.insert(k, v);
                            }
                        }
                        (_, v) => {
                            obj.insert(key, v);
                        }
                    }
                }
                Kind::Replace => {
                    let v = value.unwrap_or(Value::Null);
                    match (obj.get_mut(&key), v) {
                        (Some(Value::Object(existing)), Value::Object(new)) => {
                            for (k, v) in new {
                                existing.insert(k, v);
                            }
                        }
                        (_, v) => {
                            obj.insert(key, v);
                        }
                    }
                }
            }
            Ok(())
        }
        (None, Some(sub)) => {
            // name.sub on a single complex attribute (name.givenName, manager.value).
            let entry = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(inner) = entry else {
                return Err(ScimError::bad_request(
                    "invalidPath",
                    format!("`{name}` has no sub-attributes"),
                ));
            };
            let sub_key = key_of(inner, sub).cloned().unwrap_or_else(|| sub.clone());
            match kind {
                Kind::Remove => {
                    inner.remove(&sub_key);
                }
                _ => {
                    inner.insert(sub_key, value.unwrap_or(Value::Null));
                }
            }
            Ok(())
        }
        (Some(f), _) => {
            let sub = &path.sub;
            let items = match obj.get_mut(&key) {
                Some(Value::Array(items)) => items,
                _ if kind == Kind::Remove => return Ok(()),
                _ => {
                    return Err(ScimError::bad_request(
                        "noTarget",
                        format!("`{name}` has no values the filter could select"),
                    ))
                }
            };
            let hits: Vec<usize> = (0..items.len())
                .filter(|i| filter::matches(f, &items[*i]))
                .collect();
            if hits.is_empty() && kind != Kind::Remove {
                return Err(ScimError::bad_request(
                    "noTarget",
                    "the value filter matched nothing",
                ));
            }
            match (kind, sub) {
                (Kind::Remove, None) => {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !hits.contains(&i);
                        i += 1;
                        keep
                    });
                }
                (Kind::Remove, Some(sub)) => {
                    for i in hits {
                        if let Some(o) = items[i].as_object_mut() {
                            if let Some(k) = key_of(o, sub).cloned() {
                                o.remove(&k);
                            }
                        }
                    }
                }
                (_, Some(sub)) => {
                    for i in hits {
                        if let Some(o) = items[i].as_object_mut() {
                            let k = key_of(o, sub).cloned().unwrap_or_else(|| sub.clone());
                            o.insert(k, value.clone().unwrap_or(Value::Null));
                        }
                    }
                }
                (_, None) => {
                    for i in hits {
                        match (&mut items[i], value.clone()) {
                            (Value::Object(o), Some(Value::Object(new))) => {
                                for (k, v) in new {
                                    o.insert(k, v);
                                }
                            }
                            (slot, Some(v)) => *slot = v,
                            _ => {}
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Two elements of a multi-valued attribute are the same when their `value`s are (or they are equal).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(doc: Value, ops: Value) -> Result<Value, ScimError> {
        apply(
            &doc,
            &json!({"schemas": [crate::PATCH_OP], "Operations": ops}),
            &["id"],
        )
    }

    #[test]
    fn okta_and_entra_shapes_apply() {
        let doc = json!({"userName": "a", "active": true, "name": {"givenName": "A"},
                         "emails": [{"value": "a@x", "type": "work"}], "members": [{"value": "1"}, {"value": "2"}]});
        let d = patch(
            doc.clone(),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .unwrap();
        assert_eq!(d["active"], false);
        let d = patch(
            doc.clone(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .unwrap();
        assert_eq!(d["active"], false);
        let d = patch(doc.clone(), json!([{"op": "Add", "value": {"name.familyName": "B", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D"}}])).unwrap();
        assert_eq!(d["name"]["familyName"], "B");
        assert_eq!(d["name"]["givenName"], "A");
        assert_eq!(
            d["urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"]["department"],
            "R&D"
        );
        let d = patch(
            doc.clone(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x"}]),
        )
        .unwrap();
        assert_eq!(d["emails"][0]["value"], "new@x");
        let d = patch(
            doc.clone(),
            json!([{"op": "remove", "path": "members[value eq \"1\"]"}]),
        )
        .unwrap();
        assert_eq!(d["members"], json!([{"value": "2"}]));
        let d = patch(
            doc.clone(),
            json!([{"op": "Remove", "path": "members", "value": [{"value": "2"}]}]),
        )
        .unwrap();
        assert_eq!(d["members"], json!([{"value": "1"}]));
        let d = patch(
            doc.clone(),
            json!([{"op": "add", "path": "members", "value": [{"value": "2"}, {"value": "3"}]}]),
        )
        .unwrap();
        assert_eq!(d["members"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn bad_operations_are_refused_with_their_scim_type() {
        let doc = json!({"userName": "a", "id": "x"});
        let t = |ops: Value| patch(doc.clone(), ops).unwrap_err().scim_type;
        assert_eq!(
            t(json!([{"op": "move", "path": "userName"}])),
            Some("invalidSyntax")
        );
        assert_eq!(
            t(json!([{"op": "replace", "path": "id", "value": "y"}])),
            Some("mutability")
        );
        assert_eq!(
            t(json!([{"op": "replace", "path": "emails[type eq", "value": "y"}])),
            Some("invalidPath")
        );
        assert_eq!(t(json!([{"op": "remove"}])), Some("noTarget"));
        assert_eq!(
            t(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "v"}])),
            Some("noTarget")
        );
        assert!(apply(&doc, &json!({"Operations": []}), &[]).is_err());
    }
}
