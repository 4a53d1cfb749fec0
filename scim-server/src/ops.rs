//! The SCIM operations on users and groups, shared by the HTTP handlers and Bulk. Each turns a SCIM document into
//! core calls; everything a request could get wrong is checked before the first write.
//!
//! PUT rule (Okta sends full replacements that leave out what it does not manage): a PUT replaces the attributes
//! it carries and leaves the ones it omits as they are; `active` in particular changes only when sent, so a PUT
//! without it never suspends anyone. PATCH removes what its operations remove.

use crate::error::ScimError;
use crate::filter::{self, Filter};
use crate::patch;
use crate::resource::{self, GroupInput, UserInput};
use axum::http::StatusCode;
use core_directory::model::{Group, User, UserState};
use core_directory::views::{GroupPatch, NewGroup, NewUser, UserPatch, UserView};
use core_directory::Snapshot;
use core_directory::{Actor, Directory, Id};
use serde_json::{json, Value};
use std::sync::Arc;

/// Who is asking, and where resources live.
pub struct Ctx<'a> {
    pub dir: &'a Directory,
    pub actor: &'a Actor,
    /// `{public base URL}/scim/v2`, from the configuration (never the request's Host).
    pub base: String,
}

/// The two resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Groups,
}

/// How a group write treats its member list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberEdit {
    /// PUT: a list sent replaces the members; attributes left out stay.
    Put,
    /// A PATCH that replaces (or removes all) members: the resulting list is set.
    Replace,
    /// A PATCH that adds or removes members: only those changes are made.
    Delta,
}

/// Attributes a client may never write.
const USER_READ_ONLY: &[&str] = &["id", "meta", "groups"];
const GROUP_READ_ONLY: &[&str] = &["id", "meta"];

fn parse_id(id: &str) -> Result<Id, ScimError> {
    Id::parse(id).ok_or_else(|| ScimError::not_found(format!("no resource {id}")))
}

/// The revision an `If-Match` asks for, to be checked by the core inside its write: `None` for no header or
/// `*`. Of several entity tags, the one naming the current revision is taken; a tag that is not one of ours can
/// never match.
fn expected_revision(current: u64, if_match: Option<&str>) -> Result<Option<u64>, ScimError> {
    let Some(m) = if_match.map(str::trim).filter(|m| *m != "*") else {
        return Ok(None);
    };
    let tags: Vec<Option<u64>> = m.split(',').map(resource::revision_of).collect();
    if tags.contains(&Some(current)) {
        return Ok(Some(current));
    }
    Err(ScimError::new(
        StatusCode::PRECONDITION_FAILED,
        None,
        "the resource changed since that version (If-Match)",
    ))
}

fn state_of(active: bool) -> UserState {
    if active {
        UserState::Active
    } else {
        UserState::Suspended
    }
}

impl Ctx<'_> {
    fn user_view(&self, id: &Id) -> Result<UserView, ScimError> {
        Ok(self.dir.get_user(id)?)
    }

    pub fn get_user(&self, id: &str) -> Result<Value, ScimError> {
        let u = self.user_view(&parse_id(id)?)?;
        Ok(resource::user_json(&u, &self.dir.snapshot(), &self.base))
    }

    fn check_password(&self, user_name: &str, password: Option<&str>) -> Result<(), ScimError> {
        if let Some(pw) = password {
            let snap = self.dir.snapshot();
            core_directory::policy::check_password(&snap.policy, user_name, pw)
                .map_err(|v| ScimError::bad_request("invalidValue", format!("password: {v}")))?;
        }
        Ok(())
    }

    pub async fn create_user(&self, body: &Value) -> Result<Value, ScimError> {
        let u = resource::read_user(body)?;
        let user_name = u
            .user_name
            .clone()
            .ok_or_else(|| ScimError::bad_request("invalidValue", "userName is required"))?;
        let email = match (&u.email, user_name.contains('@')) {
            (Some(e), _) => e.clone(),
            (None, true) => user_name.clone(),
            (None, false) => {
                return Err(ScimError::bad_request(
                    "invalidValue",
                    "Stratus needs an e-mail address for every user: send it in emails \
                     ([{\"value\": \"…\", \"type\": \"work\", \"primary\": true}])",
                ))
            }
        };
        self.check_password(&user_name, u.password.as_deref())?;
        let input = NewUser {
            username: user_name,
            email,
            firstname: u.given_name.clone().unwrap_or_default(),
            lastname: u.family_name.clone().unwrap_or_default(),
            display_name: u.display_name.clone(),
            password: u.password.clone(),
            state: Some(state_of(u.active.unwrap_or(true))),
            employment: Some(u.employment()),
            phone: u.phone.clone(),
            external_id: u.external_id.clone(),
            ..Default::default()
        };
        let view = self.dir.create_user(self.actor, input).await?;
        Ok(resource::user_json(&view, &self.dir.snapshot(), &self.base))
    }

    /// Apply the difference between two readings of a user (PUT: `keep_absent`; PATCH: absent means removed) as
    /// one core update — the password included — made only if the user is still at `expect` when given.
    async fn change_user(
        &self,
        id: &Id,
        before: &UserInput,
        after: &UserInput,
        keep_absent: bool,
        expect: Option<u64>,
    ) -> Result<Value, ScimError> {
        let pick = |b: &Option<String>, a: &Option<String>| -> Option<String> {
            match (b, a) {
                (_, Some(x)) if Some(x) != b.as_ref() => Some(x.clone()),
                (Some(_), None) if !keep_absent => Some(String::new()),
                _ => None,
            }
        };
        let required = |name: &str, v: &Option<String>| -> Result<(), ScimError> {
            if v.is_none() && !keep_absent {
                return Err(ScimError::bad_request(
                    "mutability",
                    format!("{name} cannot be removed"),
                ));
            }
            Ok(())
        };
        if !keep_absent && after.active.is_none() && before.active.is_some() {
            return Err(ScimError::bad_request(
                "mutability",
                "active cannot be removed: set it to false to suspend the user",
            ));
        }
        required("userName", &after.user_name)?;
        required("emails", &after.email)?;
        let user_name = after
            .user_name
            .clone()
            .or(before.user_name.clone())
            .unwrap_or_default();
        self.check_password(&user_name, after.password.as_deref())?;
        let employment_fields = |u: &UserInput| {
            [
                &u.title,
                &u.department,
                &u.organization,
                &u.employee_number,
                &u.manager,
            ]
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
        };
        let merge = |b: &Option<String>, a: &Option<String>| {
            if keep_absent {
                a.clone().or_else(|| b.clone())
            } else {
                a.clone()
            }
        };
        let wanted = UserInput {
            title: merge(&before.title, &after.title),
            department: merge(&before.department, &after.department),
            organization: merge(&before.organization, &after.organization),
            employee_number: merge(&before.employee_number, &after.employee_number),
            manager: merge(&before.manager, &after.manager),
            ..Default::default()
        };
        let employment =
            (employment_fields(&wanted) != employment_fields(before)).then(|| wanted.employment());
        let patch = UserPatch {
            username: pick(&before.user_name, &after.user_name),
            email: pick(&before.email, &after.email),
            firstname: pick(&before.given_name, &after.given_name),
            lastname: pick(&before.family_name, &after.family_name),
            display_name: pick(&before.display_name, &after.display_name),
            state: match (before.active, after.active) {
                (b, Some(a)) if b != Some(a) => Some(state_of(a)),
                _ => None,
            },
            employment,
            phone: pick(&before.phone, &after.phone),
            external_id: pick(&before.external_id, &after.external_id),
            password: after.password.clone(),
            expect_revision: expect,
            ..Default::default()
        };
        let view = self.dir.update_user(self.actor, id, patch).await?;
        Ok(resource::user_json(&view, &self.dir.snapshot(), &self.base))
    }

    /// The user as it is now, its SCIM form, and the revision an `If-Match` asks for.
    fn user_for_write(
        &self,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(Id, Value, Option<u64>), ScimError> {
        let id = parse_id(id)?;
        let view = self.user_view(&id)?;
        let expect = expected_revision(view.revision, if_match)?;
        let current = resource::user_json(&view, &self.dir.snapshot(), &self.base);
        Ok((id, current, expect))
    }

    pub async fn replace_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let (id, current, expect) = self.user_for_write(id, if_match)?;
        let after = resource::read_user(body)?;
        if after.user_name.is_none() {
            return Err(ScimError::bad_request(
                "invalidValue",
                "userName is required",
            ));
        }
        self.change_user(&id, &resource::read_user(&current)?, &after, true, expect)
            .await
    }

    pub async fn patch_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let (id, current, expect) = self.user_for_write(id, if_match)?;
        let after = patch::apply(&current, body, USER_READ_ONLY)?;
        self.change_user(
            &id,
            &resource::read_user(&current)?,
            &resource::read_user(&after)?,
            false,
            expect,
        )
        .await
    }

    pub async fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
        let id = parse_id(id)?;
        let expect = expected_revision(self.user_view(&id)?.revision, if_match)?;
        Ok(self.dir.delete_user_at(self.actor, &id, expect).await?)
    }

    pub fn get_group(&self, id: &str) -> Result<Value, ScimError> {
        let id = parse_id(id)?;
        let snap = self.dir.snapshot();
        let g = snap
            .group(&id)
            .ok_or_else(|| ScimError::not_found(format!("no group {id}")))?;
        Ok(resource::group_json(g, &snap, &self.base))
    }

    /// The group as it is now, its SCIM form, and the revision an `If-Match` asks for.
    fn group_for_write(
        &self,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(Id, Value, Option<u64>), ScimError> {
        let id = parse_id(id)?;
        let snap = self.dir.snapshot();
        let g = snap
            .group(&id)
            .ok_or_else(|| ScimError::not_found(format!("no group {id}")))?;
        let expect = expected_revision(g.revision, if_match)?;
        Ok((id, resource::group_json(g, &snap, &self.base), expect))
    }

    /// Member ids as written; whether each is a user the core checks inside the write.
    fn member_ids(members: &[String]) -> Result<Vec<Id>, ScimError> {
        members
            .iter()
            .map(|m| {
                Id::parse(m).ok_or_else(|| {
                    ScimError::bad_request("invalidValue", format!("member `{m}` is not a user"))
                })
            })
            .collect()
    }

    pub async fn create_group(&self, body: &Value) -> Result<Value, ScimError> {
        let g = resource::read_group(body)?;
        let name = g
            .display_name
            .clone()
            .ok_or_else(|| ScimError::bad_request("invalidValue", "displayName is required"))?;
        let members = Self::member_ids(g.members.as_deref().unwrap_or_default())?;
        let view = self
            .dir
            .create_group(
                self.actor,
                NewGroup {
                    name,
                    external_id: g.external_id.clone(),
                    members,
                    ..Default::default()
                },
            )
            .await?;
        self.get_group(view.group.id.as_str())
    }

    /// Apply a group change as one core update. `members` says how: a full list (PUT, or a PATCH that
    /// replaces the members) is set as it stands; otherwise only the members the PATCH added or removed are
    /// changed, against the list as it is at commit time, so concurrent PATCHes never undo each other.
    async fn change_group(
        &self,
        id: &Id,
        before: &GroupInput,
        after: &GroupInput,
        members: MemberEdit,
        expect: Option<u64>,
    ) -> Result<Value, ScimError> {
        let keep_absent = members == MemberEdit::Put;
        if after.display_name.is_none() && !keep_absent {
            return Err(ScimError::bad_request(
                "mutability",
                "displayName cannot be removed",
            ));
        }
        let listed = |g: &GroupInput| g.members.clone().unwrap_or_default();
        let mut patch = GroupPatch {
            name: after
                .display_name
                .clone()
                .filter(|n| Some(n) != before.display_name.as_ref()),
            external_id: match (&before.external_id, &after.external_id) {
                (b, Some(a)) if Some(a) != b.as_ref() => Some(a.clone()),
                (Some(_), None) if !keep_absent => Some(String::new()),
                _ => None,
            },
            expect_revision: expect,
            ..Default::default()
        };
        match members {
            MemberEdit::Put | MemberEdit::Replace => {
                if after.members.is_some() || !keep_absent {
                    patch.members = Some(Self::member_ids(&listed(after))?);
                }
            }
            MemberEdit::Delta => {
                let (was, now) = (listed(before), listed(after));
                let added: Vec<String> = now.iter().filter(|m| !was.contains(m)).cloned().collect();
                let gone: Vec<String> = was.iter().filter(|m| !now.contains(m)).cloned().collect();
                patch.add_members = Self::member_ids(&added)?;
                patch.remove_members = Self::member_ids(&gone)?;
            }
        }
        self.dir.update_group(self.actor, id, patch).await?;
        self.get_group(id.as_str())
    }

    pub async fn replace_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let (id, current, expect) = self.group_for_write(id, if_match)?;
        let after = resource::read_group(body)?;
        if after.display_name.is_none() {
            return Err(ScimError::bad_request(
                "invalidValue",
                "displayName is required",
            ));
        }
        self.change_group(
            &id,
            &resource::read_group(&current)?,
            &after,
            MemberEdit::Put,
            expect,
        )
        .await
    }

    pub async fn patch_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let (id, current, expect) = self.group_for_write(id, if_match)?;
        let after = patch::apply(&current, body, GROUP_READ_ONLY)?;
        let edit = if patch::sets_members(body) {
            MemberEdit::Replace
        } else {
            MemberEdit::Delta
        };
        self.change_group(
            &id,
            &resource::read_group(&current)?,
            &resource::read_group(&after)?,
            edit,
            expect,
        )
        .await
    }

    pub async fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
        let (id, _, expect) = self.group_for_write(id, if_match)?;
        Ok(self.dir.delete_group_at(self.actor, &id, expect).await?)
    }

    pub fn get(&self, kind: Kind, id: &str) -> Result<Value, ScimError> {
        match kind {
            Kind::Users => self.get_user(id),
            Kind::Groups => self.get_group(id),
        }
    }

    pub async fn create(&self, kind: Kind, body: &Value) -> Result<Value, ScimError> {
        match kind {
            Kind::Users => self.create_user(body).await,
            Kind::Groups => self.create_group(body).await,
        }
    }

    pub async fn replace(
        &self,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        match kind {
            Kind::Users => self.replace_user(id, body, if_match).await,
            Kind::Groups => self.replace_group(id, body, if_match).await,
        }
    }

    pub async fn patch(
        &self,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        match kind {
            Kind::Users => self.patch_user(id, body, if_match).await,
            Kind::Groups => self.patch_group(id, body, if_match).await,
        }
    }

    pub async fn delete(
        &self,
        kind: Kind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        match kind {
            Kind::Users => self.delete_user(id, if_match).await,
            Kind::Groups => self.delete_group(id, if_match).await,
        }
    }

    /// Every resource of a kind that matches `filter`, as SCIM JSON. The filters IdPs send are answered from
    /// the snapshot's indexes (`filter::lookups`): JSON is built only for the resources found there, and the
    /// filter is still applied to each, so an index that finds more (a case-insensitive name) never widens the
    /// answer. Any other filter scans.
    pub fn search(&self, groups: bool, filter: Option<&Filter>) -> Vec<Value> {
        let snap = self.dir.snapshot();
        let now = chrono::Utc::now();
        let keep = |v: &Value| filter.is_none_or(|f| filter::matches(f, v));
        let planned = filter.and_then(|f| filter::lookups(f, groups));
        if groups {
            let found: Vec<Arc<Group>> = match &planned {
                Some(lookups) => once_each(lookups, |l| group_candidates(&snap, l), |g| &g.id),
                None => snap.groups.values().cloned().collect(),
            };
            return found
                .iter()
                .map(|g| resource::group_json(g, &snap, &self.base))
                .filter(keep)
                .collect();
        }
        let found: Vec<Arc<User>> = match &planned {
            Some(lookups) => once_each(lookups, |l| user_candidates(&snap, l), |u| &u.id),
            None => snap.users.values().cloned().collect(),
        };
        found
            .iter()
            .map(|u| resource::user_json(&UserView::of(u, &snap, now), &snap, &self.base))
            .filter(keep)
            .collect()
    }
}

/// What the look-ups find, each resource once, in the order found.
fn once_each<T>(
    lookups: &[filter::Lookup<'_>],
    find: impl Fn(&filter::Lookup<'_>) -> Vec<Arc<T>>,
    id: impl Fn(&T) -> &Id,
) -> Vec<Arc<T>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for l in lookups {
        for r in find(l) {
            if seen.insert(id(&r).clone()) {
                out.push(r);
            }
        }
    }
    out
}

/// The users an index look-up finds.
fn user_candidates(snap: &Snapshot, l: &filter::Lookup<'_>) -> Vec<Arc<User>> {
    use filter::Lookup;
    match *l {
        Lookup::Id(id) => Id::parse(id)
            .and_then(|id| snap.user(&id).cloned())
            .into_iter()
            .collect(),
        Lookup::UserName(name) => snap.user_by_login_name(name).cloned().into_iter().collect(),
        Lookup::Email(mail) => snap.user_by_mail(mail).cloned().into_iter().collect(),
        Lookup::ExternalId(e) => snap.users_by_external_id(e).cloned().collect(),
        Lookup::DisplayName(_) | Lookup::Member(_) => Vec::new(),
    }
}

/// The groups an index look-up finds.
fn group_candidates(snap: &Snapshot, l: &filter::Lookup<'_>) -> Vec<Arc<Group>> {
    use filter::Lookup;
    match *l {
        Lookup::Id(id) => Id::parse(id)
            .and_then(|id| snap.group(&id).cloned())
            .into_iter()
            .collect(),
        Lookup::DisplayName(name) => snap
            .group_by_group_name(name)
            .cloned()
            .into_iter()
            .collect(),
        Lookup::ExternalId(e) => snap.groups_by_external_id(e).cloned().collect(),
        Lookup::Member(user) => Id::parse(user)
            .map(|u| snap.groups_of(&u).cloned().collect())
            .unwrap_or_default(),
        Lookup::UserName(_) | Lookup::Email(_) => Vec::new(),
    }
}

/// A page of every resource of a kind in creation order (ties by id), building JSON for that page only: what
/// an IdP's full sync asks for, page after page.
pub fn unfiltered_page(
    ctx: &Ctx<'_>,
    groups: bool,
    start: usize,
    count: usize,
) -> (usize, Vec<Value>) {
    let snap = ctx.dir.snapshot();
    let now = chrono::Utc::now();
    if groups {
        let mut all: Vec<_> = snap.groups.values().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let page = all
            .iter()
            .skip(start - 1)
            .take(count)
            .map(|g| resource::group_json(g, &snap, &ctx.base))
            .collect();
        return (all.len(), page);
    }
    let mut all: Vec<_> = snap.users.values().collect();
    all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let page = all
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|u| resource::user_json(&UserView::of(u, &snap, now), &snap, &ctx.base))
        .collect();
    (all.len(), page)
}

/// A ListResponse page (RFC 7644 §3.4.2).
pub fn list_response(
    all: Vec<Value>,
    start: usize,
    count: usize,
    project: impl Fn(Value) -> Value,
) -> Value {
    let total = all.len();
    let page: Vec<Value> = all
        .into_iter()
        .skip(start - 1)
        .take(count)
        .map(project)
        .collect();
    json!({"schemas": [crate::LIST_RESPONSE], "totalResults": total, "startIndex": start,
           "itemsPerPage": page.len(), "Resources": page})
}
