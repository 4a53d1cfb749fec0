//! User groups, memberships and bindings.

use super::settings::admin_event;
use super::{required, scim_scope, Directory, ReplyAttributeCheck, Tx};
use crate::access::{Actor, Permission};
use crate::error::{DirectoryError, Result};
use crate::id::Id;
use crate::model::*;
use crate::snapshot::fold;
use crate::store::Kind;
use crate::views::{GroupPatch, GroupView, LinuxGroupInput, NewGroup};

fn validate_group_name(text: &str) -> Result<String> {
    let v = required("name", text)?;
    if v.len() > 128 {
        return Err(DirectoryError::invalid(
            "name",
            "name must be at most 128 characters",
        ));
    }
    Ok(v)
}

fn validate_linux_name(text: &str) -> Result<String> {
    let v = required("linux_group.name", text)?;
    let ok = v.len() <= 32
        && v.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(DirectoryError::invalid(
            "linux_group.name",
            "Linux group names are 1–32 lowercase letters, digits, '_' or '-', starting with a letter or '_'",
        ));
    }
    Ok(v)
}

fn validate_reply(attrs: &[ReplyAttribute], check: Option<&ReplyAttributeCheck>) -> Result<()> {
    if attrs.len() > 64 {
        return Err(DirectoryError::invalid(
            "radius_reply",
            "a group has at most 64 reply attributes",
        ));
    }
    for a in attrs {
        let ok = !a.attribute.is_empty()
            && a.attribute.len() <= 64
            && a.attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':' || c == '_');
        if !ok || a.value.len() > 253 {
            return Err(DirectoryError::invalid(
                "radius_reply",
                format!(
                    "reply attribute `{}` must be a dictionary name and its value at most 253 bytes",
                    a.attribute
                ),
            ));
        }
        if let Some(check) = check {
            (check.0)(a).map_err(|why| {
                DirectoryError::invalid(
                    "radius_reply",
                    format!("reply attribute `{}`: {why}", a.attribute),
                )
            })?;
        }
    }
    Ok(())
}

/// Resolve a Linux group input to a unique name and GID (allocating one from the org range when absent).
fn linux_group(tx: &mut Tx, me: Option<&Id>, input: LinuxGroupInput) -> Result<LinuxGroup> {
    let name = validate_linux_name(&input.name)?;
    let range = tx.org()?.gid_range;
    let gid = match input.gid {
        Some(gid) => {
            if !range.contains(gid) {
                return Err(DirectoryError::invalid(
                    "linux_group.gid",
                    format!(
                        "gid {gid} is outside the GID range {}–{}",
                        range.start, range.end
                    ),
                ));
            }
            if gid >= tx.snap.allocators.next_gid {
                tx.snap.allocators.next_gid = gid.saturating_add(1);
                tx.put_allocators();
            }
            gid
        }
        None => {
            let mut next = tx.snap.allocators.next_gid.max(range.start);
            while tx.snap.group_by_gid.contains_key(&next) {
                next = next.saturating_add(1);
            }
            if !range.contains(next) {
                return Err(DirectoryError::conflict(
                    "linux_group.gid",
                    "the GID range is exhausted",
                ));
            }
            tx.snap.allocators.next_gid = next + 1;
            tx.put_allocators();
            next
        }
    };
    let other = |id: Option<&Id>| id.is_some_and(|id| Some(id) != me);
    if other(tx.snap.group_by_gid.get(&gid)) {
        return Err(DirectoryError::conflict(
            "linux_group.gid",
            format!("gid {gid} is already used by another group"),
        ));
    }
    if other(tx.snap.group_by_linux_name.get(&fold(&name))) {
        return Err(DirectoryError::conflict(
            "linux_group.name",
            format!("Linux group name `{name}` is already used by another group"),
        ));
    }
    Ok(LinuxGroup { name, gid })
}

fn check_group_name(tx: &Tx, me: Option<&Id>, name: &str) -> Result<()> {
    if tx
        .snap
        .group_by_name
        .get(&fold(name))
        .is_some_and(|id| Some(id) != me)
    {
        return Err(DirectoryError::conflict(
            "name",
            format!("a group named `{name}` already exists"),
        ));
    }
    Ok(())
}

impl Directory {
    pub fn get_group(&self, id: &Id) -> Result<GroupView> {
        let snap = self.snapshot();
        let g = snap
            .group(id)
            .ok_or_else(|| DirectoryError::not_found("group", id))?;
        Ok(GroupView::of(g, &snap))
    }

    pub fn list_groups(&self) -> Vec<GroupView> {
        let snap = self.snapshot();
        let mut out: Vec<GroupView> = snap
            .groups
            .values()
            .map(|g| GroupView::of(g, &snap))
            .collect();
        out.sort_by(|a, b| a.group.name.cmp(&b.group.name));
        out
    }

    pub fn group_members(&self, id: &Id) -> Result<Vec<Id>> {
        let snap = self.snapshot();
        snap.group(id)
            .ok_or_else(|| DirectoryError::not_found("group", id))?;
        Ok(snap.members_of(id).map(|u| u.id.clone()).collect())
    }

    /// Create a group, with its first members when the input names them, in one transaction.
    pub async fn create_group(&self, actor: &Actor, mut input: NewGroup) -> Result<GroupView> {
        actor.require(Permission::ManageUsers)?;
        validate_reply(&input.radius_reply, self.reply_check.as_ref())?;
        let members = std::mem::take(&mut input.members);
        let who = actor.clone();
        let group = self
            .write_as(actor, move |tx| {
                let name = validate_group_name(&input.name)?;
                check_group_name(tx, None, &name)?;
                let id = Id::generate();
                let lg = match input.linux_group {
                    Some(l) => Some(linux_group(tx, Some(&id), l)?),
                    None => None,
                };
                let g = Group {
                    id,
                    name,
                    description: super::text("description", &input.description, 1024)?,
                    linux_group: lg,
                    samba: input.samba,
                    attributes: input.attributes,
                    radius_reply: input.radius_reply,
                    priority: input.priority,
                    external_id: input.external_id.filter(|e| !e.trim().is_empty()),
                    scim_owner: who.scim_token.clone(),
                    revision: 0,
                    created_at: tx.now,
                    updated_at: tx.now,
                };
                tx.event(
                    admin_event(&who, "group_create")
                        .target("group", &g.id)
                        .detail("name", g.name.clone()),
                );
                let g = tx.put_group(g);
                for m in &members {
                    self.tx_add_member(tx, &who, &g, m)
                        .map_err(|e| member_error(e, m))?;
                }
                Ok(tx.snap.group(&g.id).cloned().unwrap_or(g))
            })
            .await?;
        Ok(GroupView::of(&group, &self.snapshot()))
    }

    /// Change a group — its fields and its members (a full list, or members to add and to remove) — in one
    /// transaction: all of it or, when anything is refused, none of it. Members are applied as changes to the
    /// list as it is at commit time, so concurrent changes of other members are never lost. With
    /// `expect_revision`, only if the group is still at it.
    pub async fn update_group(
        &self,
        actor: &Actor,
        id: &Id,
        patch: GroupPatch,
    ) -> Result<GroupView> {
        actor.require(Permission::ManageUsers)?;
        if let Some(v) = &patch.radius_reply {
            validate_reply(v, self.reply_check.as_ref())?;
        }
        if patch.members.is_some()
            && (!patch.add_members.is_empty() || !patch.remove_members.is_empty())
        {
            return Err(DirectoryError::invalid(
                "members",
                "give either the full member list or members to add and remove, not both",
            ));
        }
        let who = actor.clone();
        let id = id.clone();
        let group = self
            .write_as(actor, move |tx| {
                let current = tx.group_at(&id, patch.expect_revision)?;
                scim_scope::check_group(&tx.snap, &who, &current)?;
                let mut g = (*current).clone();
                let mut changed = Vec::new();
                if let Some(v) = patch.name {
                    let name = validate_group_name(&v)?;
                    if name != g.name {
                        check_group_name(tx, Some(&id), &name)?;
                        g.name = name;
                        changed.push("name");
                    }
                }
                if let Some(v) = patch.description {
                    g.description = super::text("description", &v, 1024)?;
                    changed.push("description");
                }
                if let Some(lg) = patch.linux_group {
                    g.linux_group = match lg {
                        Some(l) => Some(linux_group(tx, Some(&id), l)?),
                        None => None,
                    };
                    changed.push("linux_group");
                }
                if let Some(v) = patch.samba {
                    g.samba = v;
                    changed.push("samba");
                }
                if let Some(v) = patch.attributes {
                    g.attributes = v;
                    changed.push("attributes");
                }
                if let Some(v) = patch.radius_reply {
                    g.radius_reply = v;
                    changed.push("radius_reply");
                }
                if let Some(v) = patch.priority {
                    g.priority = v;
                    changed.push("priority");
                }
                if let Some(v) = patch.external_id {
                    g.external_id = Some(v).filter(|e| !e.trim().is_empty());
                    changed.push("external_id");
                }
                if !changed.is_empty() {
                    tx.event(
                        admin_event(&who, "group_update")
                            .target("group", &g.id)
                            .detail("fields", changed.clone()),
                    );
                }
                // The revision moves once, for the fields or the members, and not for a change that changes nothing.
                let g = if changed.is_empty() {
                    current
                } else {
                    tx.put_group(g)
                };
                let (add, remove) = match patch.members {
                    Some(wanted) => {
                        let now: Vec<Id> = tx.snap.members_of(&id).map(|u| u.id.clone()).collect();
                        let add = wanted
                            .iter()
                            .filter(|m| !now.contains(m))
                            .cloned()
                            .collect();
                        let remove = now.into_iter().filter(|m| !wanted.contains(m)).collect();
                        (add, remove)
                    }
                    None => (patch.add_members, patch.remove_members),
                };
                let mut members_changed = false;
                for m in &add {
                    members_changed |= self
                        .tx_add_member(tx, &who, &g, m)
                        .map_err(|e| member_error(e, m))?;
                }
                for m in &remove {
                    members_changed |= self
                        .tx_remove_member(tx, &who, &g, m)
                        .map_err(|e| member_error(e, m))?;
                }
                if members_changed && changed.is_empty() {
                    tx.touch_group(&id);
                }
                // A new name changes every member's memberOf.
                if changed.contains(&"name") {
                    let members: Vec<Id> = tx.snap.members_of(&id).map(|u| u.id.clone()).collect();
                    for m in &members {
                        tx.touch_user(m);
                    }
                }
                Ok(tx.snap.group(&id).cloned().unwrap_or(g))
            })
            .await?;
        Ok(GroupView::of(&group, &self.snapshot()))
    }

    pub async fn delete_group(&self, actor: &Actor, id: &Id) -> Result<()> {
        self.delete_group_at(actor, id, None).await
    }

    /// Delete a group; with `expect`, only if the group is still at that revision.
    pub async fn delete_group_at(&self, actor: &Actor, id: &Id, expect: Option<u64>) -> Result<()> {
        actor.require(Permission::ManageUsers)?;
        let who = actor.clone();
        let id = id.clone();
        self.write_as(actor, move |tx| {
            let current = tx.group_at(&id, expect)?;
            scim_scope::check_group_delete(&tx.snap, &who, &current)?;
            let policies = super::policies_naming_group(&tx.snap, &id);
            if !policies.is_empty() {
                return Err(DirectoryError::conflict(
                    "group",
                    format!(
                        "group `{}` is named by the access policies {}: change them first",
                        current.name,
                        policies.join(", ")
                    ),
                ));
            }
            let members: Vec<Id> = tx.snap.members_of(&id).map(|u| u.id.clone()).collect();
            let resources: Vec<Resource> = tx
                .snap
                .group_bindings
                .get(&id)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let old = tx
                .snap
                .remove_group(&id)
                .ok_or_else(|| DirectoryError::not_found("group", &id))?;
            for u in &members {
                tx.batch.delete(Kind::Membership, format!("{id}/{u}"));
                drop_unneeded_nt_hash(tx, u);
                tx.touch_user(u);
            }
            for r in resources {
                tx.batch.delete(Kind::Binding, format!("{id}/{r}"));
            }
            tx.batch.delete(Kind::Group, id.as_str());
            tx.event(
                admin_event(&who, "group_delete")
                    .target("group", &id)
                    .detail("name", old.name.clone()),
            );
            Ok(())
        })
        .await
    }

    pub async fn add_member(&self, actor: &Actor, group: &Id, user: &Id) -> Result<()> {
        actor.require(Permission::ManageUsers)?;
        let who = actor.clone();
        let (group, user) = (group.clone(), user.clone());
        self.write_as(actor, move |tx| {
            let g = tx.group_at(&group, None)?;
            if self.tx_add_member(tx, &who, &g, &user)? {
                tx.touch_group(&group);
            }
            Ok(())
        })
        .await
    }

    pub async fn remove_member(&self, actor: &Actor, group: &Id, user: &Id) -> Result<()> {
        actor.require(Permission::ManageUsers)?;
        let who = actor.clone();
        let (group, user) = (group.clone(), user.clone());
        self.write_as(actor, move |tx| {
            let g = tx.group_at(&group, None)?;
            if !self.tx_remove_member(tx, &who, &g, &user)? {
                return Err(DirectoryError::not_found(
                    "membership",
                    format!("{group}/{user}"),
                ));
            }
            tx.touch_group(&group);
            Ok(())
        })
        .await
    }

    /// Add `user` to `group` inside a transaction: scope checked, the user's entry touched (its groups changed),
    /// the event recorded. False when the user already was a member. The caller moves the group's revision.
    pub(crate) fn tx_add_member(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        g: &Group,
        user: &Id,
    ) -> Result<bool> {
        let u = tx.user_at(user, None)?;
        scim_scope::check_membership(&tx.snap, actor, g, &u)?;
        if tx.snap.members.get(&g.id).is_some_and(|m| m.contains(user)) {
            return Ok(false);
        }
        tx.snap.add_member(&g.id, user);
        tx.batch
            .put(Kind::Membership, format!("{}/{user}", g.id), Vec::new());
        let needs_nt = tx.snap.in_samba_group(user) || tx.snap.needs_nt_hash_for_radius(user);
        let mut ev = admin_event(actor, "group_member_add")
            .user(&u.username)
            .target("group", &g.id)
            .detail("user_id", user.to_string())
            .detail("group", g.name.clone());
        if needs_nt && u.nt_hash.is_none() {
            ev = ev.detail(
                "nt_hash_needs_password_set",
                "the user has no NT hash; Samba and PEAP-MSCHAPv2 work after their next password set",
            );
        }
        tx.event(ev);
        tx.touch_user(user);
        Ok(true)
    }

    /// Remove `user` from `group` inside a transaction; false when the user was not a member.
    fn tx_remove_member(&self, tx: &mut Tx, actor: &Actor, g: &Group, user: &Id) -> Result<bool> {
        let u = tx.user_at(user, None)?;
        scim_scope::check_membership(&tx.snap, actor, g, &u)?;
        if !tx.snap.members.get(&g.id).is_some_and(|m| m.contains(user)) {
            return Ok(false);
        }
        tx.snap.remove_member(&g.id, user);
        tx.batch
            .delete(Kind::Membership, format!("{}/{user}", g.id));
        drop_unneeded_nt_hash(tx, user);
        tx.event(
            admin_event(actor, "group_member_remove")
                .user(&u.username)
                .target("group", &g.id)
                .detail("user_id", user.to_string()),
        );
        tx.touch_user(user);
        Ok(true)
    }

    pub async fn bind_group(&self, actor: &Actor, group: &Id, resource: Resource) -> Result<()> {
        actor.require(Permission::ManageUsers)?;
        let actor = actor.clone();
        let group = group.clone();
        self.write(move |tx| {
            tx.snap
                .group(&group)
                .ok_or_else(|| DirectoryError::not_found("group", &group))?;
            let exists = match &resource {
                Resource::Ldap => true,
                Resource::Radius(id) => tx.snap.radius_servers.contains_key(id),
                Resource::App(id) => tx.snap.apps.contains_key(id),
                Resource::Directory(id) => tx.snap.external_directories.contains_key(id),
            };
            if !exists {
                return Err(DirectoryError::not_found("resource", &resource));
            }
            tx.snap.bind(&group, resource.clone());
            tx.batch
                .put(Kind::Binding, format!("{group}/{resource}"), Vec::new());
            tx.event(
                admin_event(&actor, "group_bind")
                    .target("group", &group)
                    .detail("resource", resource.to_string()),
            );
            Ok(())
        })
        .await
    }

    pub async fn unbind_group(&self, actor: &Actor, group: &Id, resource: Resource) -> Result<()> {
        actor.require(Permission::ManageUsers)?;
        let actor = actor.clone();
        let group = group.clone();
        self.write(move |tx| {
            tx.snap
                .group(&group)
                .ok_or_else(|| DirectoryError::not_found("group", &group))?;
            if !tx
                .snap
                .group_bindings
                .get(&group)
                .is_some_and(|s| s.contains(&resource))
            {
                return Err(DirectoryError::not_found(
                    "binding",
                    format!("{group}/{resource}"),
                ));
            }
            tx.snap.unbind(&group, &resource);
            tx.batch
                .delete(Kind::Binding, format!("{group}/{resource}"));
            tx.event(
                admin_event(&actor, "group_unbind")
                    .target("group", &group)
                    .detail("resource", resource.to_string()),
            );
            Ok(())
        })
        .await
    }
}

/// A member named in a list that is not a user is the input's fault, not a missing resource.
fn member_error(e: DirectoryError, member: &Id) -> DirectoryError {
    match e {
        DirectoryError::NotFound { kind: "user", .. } => {
            DirectoryError::invalid("members", format!("member {member} is not a user"))
        }
        e => e,
    }
}

/// Drop a user's NT hash once no Samba group or PEAP-enabled RADIUS binding needs it.
pub(crate) fn drop_unneeded_nt_hash(tx: &mut Tx, user: &Id) {
    let Some(u) = tx.snap.user(user).cloned() else {
        return;
    };
    // A user who came with an NT hash only signs in with it until their first login re-hashes the password.
    if u.nt_hash.is_some()
        && u.password_hash.as_deref() != Some(crate::legacy_hash::NT_ONLY)
        && !tx.snap.in_samba_group(user)
        && !tx.snap.needs_nt_hash_for_radius(user)
    {
        let mut u = (*u).clone();
        u.nt_hash = None;
        tx.put_user(u);
    }
}
