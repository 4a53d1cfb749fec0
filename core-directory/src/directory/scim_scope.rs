//! What a SCIM token may change. The admin gives each token a [`ScimScope`]; the core applies it inside the
//! serialised write, against the working copy, to every change a token makes — so a membership that puts a user
//! in scope, or a binding that takes a group out of it, counts from the moment it is committed.
//!
//! Rules, for an actor acting through a token (every other actor passes):
//! - a user is in scope when the token created or adopted it, or by the scope's `users`: `all` regular users;
//!   `owned` — users no other token owns (the first write adopts them); `members_of` — members of the scope's
//!   groups. LDAP Bind-DN service accounts are never in scope unless `service_accounts` is set.
//! - a group is in scope when the token created it, with `users = all`, or when it is one of the scope's groups.
//! - a group bound to a resource (LDAP, a RADIUS profile, an app) is deleted only with `bound_groups`; its members
//!   change only when the token created it, it is one of the scope's groups, or `bound_groups` is set.

use crate::access::Actor;
use crate::error::{DirectoryError, Result};
use crate::id::Id;
use crate::model::{Group, ScimScope, ScimToken, ScimUsers, User};
use crate::snapshot::Snapshot;
use std::sync::Arc;

/// The token an actor acts through, as the working copy has it (a token deleted meanwhile is refused).
fn token<'a>(snap: &'a Snapshot, actor: &Actor) -> Result<Option<&'a Arc<ScimToken>>> {
    match &actor.scim_token {
        None => Ok(None),
        Some(id) => snap
            .scim_tokens
            .get(id)
            .map(Some)
            .ok_or_else(|| DirectoryError::OutOfScope("the SCIM token has been revoked".into())),
    }
}

fn refuse(t: &ScimToken, what: String) -> DirectoryError {
    DirectoryError::OutOfScope(format!(
        "the scope of SCIM token `{}` does not allow {what}",
        t.name
    ))
}

/// May the actor change this user (attributes, password, state, deletion)?
pub(crate) fn check_user(snap: &Snapshot, actor: &Actor, user: &User) -> Result<()> {
    let Some(t) = token(snap, actor)? else {
        return Ok(());
    };
    if user.ldap_bind_dn && !t.scope.service_accounts {
        return Err(refuse(
            t,
            format!(
                "changing `{}`, an LDAP Bind-DN service account",
                user.username
            ),
        ));
    }
    if user.scim_owner.as_ref() == Some(&t.id) {
        return Ok(());
    }
    let allowed = match t.scope.users {
        ScimUsers::All => true,
        ScimUsers::Owned => user.scim_owner.is_none(),
        ScimUsers::MembersOf => t
            .scope
            .groups
            .iter()
            .any(|g| snap.members.get(g).is_some_and(|m| m.contains(&user.id))),
    };
    if allowed {
        Ok(())
    } else {
        let why = match t.scope.users {
            ScimUsers::Owned => "it belongs to another SCIM token",
            _ => "it is not a member of the token's groups",
        };
        Err(refuse(
            t,
            format!("changing user `{}`: {why}", user.username),
        ))
    }
}

/// The token a user created through, or adopts on its first change: recorded as the user's owner.
pub(crate) fn adopt(actor: &Actor, user: &mut User) {
    if user.scim_owner.is_none() {
        user.scim_owner.clone_from(&actor.scim_token);
    }
}

fn group_in_scope(t: &ScimToken, group: &Group) -> bool {
    group.scim_owner.as_ref() == Some(&t.id)
        || t.scope.users == ScimUsers::All
        || t.scope.groups.contains(&group.id)
}

fn bound(snap: &Snapshot, group: &Id) -> Vec<String> {
    snap.group_bindings
        .get(group)
        .map(|s| s.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

/// May the actor rename or otherwise change this group?
pub(crate) fn check_group(snap: &Snapshot, actor: &Actor, group: &Group) -> Result<()> {
    match token(snap, actor)? {
        Some(t) if !group_in_scope(t, group) => {
            Err(refuse(t, format!("changing group `{}`", group.name)))
        }
        _ => Ok(()),
    }
}

/// May the actor delete this group?
pub(crate) fn check_group_delete(snap: &Snapshot, actor: &Actor, group: &Group) -> Result<()> {
    check_group(snap, actor, group)?;
    let Some(t) = token(snap, actor)? else {
        return Ok(());
    };
    let resources = bound(snap, &group.id);
    if !resources.is_empty() && !t.scope.bound_groups {
        return Err(refuse(
            t,
            format!(
                "deleting group `{}`, which is bound to {}",
                group.name,
                resources.join(", ")
            ),
        ));
    }
    Ok(())
}

/// May the actor add `user` to or remove them from `group`?
pub(crate) fn check_membership(
    snap: &Snapshot,
    actor: &Actor,
    group: &Group,
    user: &User,
) -> Result<()> {
    let Some(t) = token(snap, actor)? else {
        return Ok(());
    };
    check_group(snap, actor, group)?;
    check_user(snap, actor, user)?;
    let resources = bound(snap, &group.id);
    let chosen = group.scim_owner.as_ref() == Some(&t.id) || t.scope.groups.contains(&group.id);
    if !resources.is_empty() && !chosen && !t.scope.bound_groups {
        return Err(refuse(
            t,
            format!(
                "changing the members of group `{}`, which is bound to {}",
                group.name,
                resources.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A scope as an admin sets it: `members_of` needs groups, and every group must exist.
pub(crate) fn validate(snap: &Snapshot, scope: &ScimScope) -> Result<()> {
    if scope.users == ScimUsers::MembersOf && scope.groups.is_empty() {
        return Err(DirectoryError::invalid(
            "scope",
            "a members_of scope needs at least one group",
        ));
    }
    if let Some(g) = scope.groups.iter().find(|g| snap.group(g).is_none()) {
        return Err(DirectoryError::invalid(
            "scope",
            format!("group {g} does not exist"),
        ));
    }
    Ok(())
}
