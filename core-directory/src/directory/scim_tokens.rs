//! SCIM bearer tokens: created and revoked by admins, shown once, stored as SHA-256, good for SCIM only.

use super::settings::admin_event;
use super::{required, scim_scope, Directory};
use crate::access::{Actor, Permission};
use crate::crypto;
use crate::error::{DirectoryError, Result};
use crate::events::Service;
use crate::id::Id;
use crate::model::AdminRole;
use crate::model::{ScimScope, ScimToken};
use crate::store::Kind;
use crate::views::ScimTokenView;
use std::net::IpAddr;
use std::sync::Arc;

/// What every SCIM token starts with, so a leaked one is recognisable.
pub const SCIM_TOKEN_PREFIX: &str = "stratus_scim_";

impl Directory {
    pub fn list_scim_tokens(&self) -> Vec<ScimTokenView> {
        let mut v: Vec<_> = self
            .snapshot()
            .scim_tokens
            .values()
            .map(|t| ScimTokenView::from(&**t))
            .collect();
        v.sort_by_key(|t| t.created_at);
        v
    }

    /// Create a SCIM token; the token itself is returned this once.
    pub async fn create_scim_token(
        &self,
        actor: &Actor,
        name: &str,
        scope: ScimScope,
    ) -> Result<(ScimTokenView, String)> {
        actor.require(Permission::ManageOrg)?;
        let name = required("name", name)?;
        let token = format!(
            "{SCIM_TOKEN_PREFIX}{}",
            data_encoding::BASE64URL_NOPAD.encode(&crypto::random_bytes(32))
        );
        let actor = actor.clone();
        let digest = crypto::sha256_hex(token.as_bytes());
        let prefix: String = token.chars().take(SCIM_TOKEN_PREFIX.len() + 4).collect();
        let t = self
            .write(move |tx| {
                scim_scope::validate(&tx.snap, &scope)?;
                if tx.snap.scim_tokens.values().any(|t| t.name == name) {
                    return Err(DirectoryError::conflict(
                        "name",
                        format!("a SCIM token named `{name}` already exists"),
                    ));
                }
                let t = ScimToken {
                    id: Id::generate(),
                    name: name.clone(),
                    prefix,
                    token_sha256: digest,
                    scope: scope.clone(),
                    created_at: tx.now,
                };
                tx.batch.put_json(Kind::ScimToken, t.id.as_str(), &t);
                tx.snap.put_scim_token(Arc::new(t.clone()));
                tx.event(
                    admin_event(&actor, "scim_token_create")
                        .target("scim_token", &t.id)
                        .detail("name", name)
                        .detail("scope", serde_json::to_value(&scope).unwrap_or_default()),
                );
                Ok(t)
            })
            .await?;
        Ok((ScimTokenView::from(&t), token))
    }

    /// Change what a token may manage; from the next change it makes.
    pub async fn set_scim_token_scope(
        &self,
        actor: &Actor,
        id: &Id,
        scope: ScimScope,
    ) -> Result<ScimTokenView> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        let t = self
            .write(move |tx| {
                scim_scope::validate(&tx.snap, &scope)?;
                let mut t = (**tx
                    .snap
                    .scim_tokens
                    .get(&id)
                    .ok_or_else(|| DirectoryError::not_found("scim token", &id))?)
                .clone();
                t.scope = scope;
                tx.batch.put_json(Kind::ScimToken, t.id.as_str(), &t);
                tx.snap.put_scim_token(Arc::new(t.clone()));
                tx.event(
                    admin_event(&actor, "scim_token_scope")
                        .target("scim_token", &t.id)
                        .detail("name", t.name.clone())
                        .detail("scope", serde_json::to_value(&t.scope).unwrap_or_default()),
                );
                Ok(t)
            })
            .await?;
        Ok(ScimTokenView::from(&t))
    }

    pub async fn delete_scim_token(&self, actor: &Actor, id: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            tx.snap
                .remove_scim_token(&id)
                .ok_or_else(|| DirectoryError::not_found("scim token", &id))?;
            tx.batch.delete(Kind::ScimToken, id.as_str());
            tx.event(admin_event(&actor, "scim_token_delete").target("scim_token", &id));
            Ok(())
        })
        .await
    }

    /// The actor a SCIM token stands for: a manager (users and groups) named after the token, on service SCIM.
    /// Lookup is by SHA-256, so no token is compared in clear.
    pub fn resolve_scim_token(&self, token: &str, ip: Option<IpAddr>) -> Option<Actor> {
        let snap = self.snapshot();
        let id = snap
            .scim_token_by_hash
            .get(&crypto::sha256_hex(token.as_bytes()))?;
        let t = snap.scim_tokens.get(id)?;
        Some(Actor {
            admin_id: None,
            label: format!("scim-token:{}", t.name),
            via: Some(format!("scim-token:{}", t.id)),
            role: AdminRole::Manager,
            service: Service::Scim,
            client_ip: ip,
            scim_token: Some(t.id.clone()),
        })
    }
}
