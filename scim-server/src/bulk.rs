//! Bulk (RFC 7644 §3.7): operations run in order; `bulkId:<id>` references in later paths and data are replaced
//! by the ids earlier POSTs created; `failOnErrors` stops after that many failures. Each operation is whole or
//! not at all, as its single-resource form is; the batch as a whole is not one transaction.

use crate::discovery::MAX_BULK_OPERATIONS;
use crate::error::ScimError;
use crate::ops::{Ctx, Kind};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Replace `bulkId:x` strings everywhere in `v`.
fn resolve(v: &mut Value, ids: &HashMap<String, String>) -> Result<(), String> {
    match v {
        Value::String(s) => {
            if let Some(r) = s.strip_prefix("bulkId:") {
                let id = ids
                    .get(r)
                    .ok_or_else(|| format!("bulkId `{r}` is not (yet) defined"))?;
                *s = id.clone();
            }
        }
        Value::Array(a) => {
            for x in a {
                resolve(x, ids)?;
            }
        }
        Value::Object(o) => {
            for x in o.values_mut() {
                resolve(x, ids)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn error_body(e: &ScimError) -> Value {
    let mut v = json!({"schemas": [crate::error::ERROR_SCHEMA], "status": e.status.as_u16().to_string(),
                       "detail": e.detail});
    if let Some(t) = e.scim_type {
        v["scimType"] = json!(t);
    }
    v
}

pub async fn run(ctx: &Ctx<'_>, body: &Value) -> Result<Value, ScimError> {
    if !body["schemas"]
        .as_array()
        .is_some_and(|s| s.iter().any(|u| u == BULK_REQUEST))
    {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            "a Bulk body must name the BulkRequest schema",
        ));
    }
    let ops = body["Operations"]
        .as_array()
        .ok_or_else(|| ScimError::bad_request("invalidSyntax", "a Bulk body needs Operations"))?;
    if ops.len() > MAX_BULK_OPERATIONS {
        return Err(ScimError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            Some("tooMany"),
            format!("at most {MAX_BULK_OPERATIONS} operations"),
        ));
    }
    let fail_on = body["failOnErrors"].as_u64().unwrap_or(u64::MAX);
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut results = Vec::new();
    let mut failures = 0u64;
    for op in ops {
        if failures >= fail_on {
            break;
        }
        let method = op["method"].as_str().unwrap_or("").to_ascii_uppercase();
        let bulk_id = op["bulkId"].as_str().map(str::to_string);
        let outcome = one(ctx, op, &method, &mut ids, bulk_id.as_deref()).await;
        let mut r = json!({"method": method});
        if let Some(b) = &bulk_id {
            r["bulkId"] = json!(b);
        }
        match outcome {
            Ok((status, resource)) => {
                r["status"] = json!(status.to_string());
                if let Some(res) = resource {
                    r["location"] = res["meta"]["location"].clone();
                    r["version"] = res["meta"]["version"].clone();
                }
            }
            Err(e) => {
                failures += 1;
                r["status"] = json!(e.status.as_u16().to_string());
                r["response"] = error_body(&e);
            }
        }
        results.push(r);
    }
    Ok(json!({"schemas": [BULK_RESPONSE], "Operations": results}))
}

async fn one(
    ctx: &Ctx<'_>,
    op: &Value,
    method: &str,
    ids: &mut HashMap<String, String>,
    bulk_id: Option<&str>,
) -> Result<(u16, Option<Value>), ScimError> {
    let mut path = Value::String(op["path"].as_str().unwrap_or("").to_string());
    let mut data = op.get("data").cloned().unwrap_or(Value::Null);
    resolve(&mut path, ids).map_err(|e| ScimError::bad_request("invalidValue", e))?;
    resolve(&mut data, ids).map_err(|e| ScimError::bad_request("invalidValue", e))?;
    let path = path
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    let version = op["version"].as_str();
    let (kind, id) = match path.split_once('/') {
        Some((k, i)) => (k.to_string(), Some(i.to_string())),
        None => (path.clone(), None),
    };
    let kind = match kind.as_str() {
        "Users" => Kind::Users,
        "Groups" => Kind::Groups,
        _ => {
            return Err(ScimError::bad_request(
                "invalidPath",
                format!("unknown bulk path `/{path}`"),
            ))
        }
    };
    match (method, id) {
        ("POST", None) => {
            let bulk_id = bulk_id
                .ok_or_else(|| ScimError::bad_request("invalidValue", "POST needs a bulkId"))?;
            let v = ctx.create(kind, &data).await?;
            if let Some(id) = v["id"].as_str() {
                ids.insert(bulk_id.to_string(), id.to_string());
            }
            Ok((201, Some(v)))
        }
        ("PUT", Some(id)) => Ok((200, Some(ctx.replace(kind, &id, &data, version).await?))),
        ("PATCH", Some(id)) => Ok((200, Some(ctx.patch(kind, &id, &data, version).await?))),
        ("DELETE", Some(id)) => {
            ctx.delete(kind, &id, version).await?;
            Ok((204, None))
        }
        _ => Err(ScimError::bad_request(
            "invalidSyntax",
            format!("`{method} /{path}` is not a bulk operation"),
        )),
    }
}
