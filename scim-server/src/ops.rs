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
use core_directory::model::UserState;
use core_directory::views::{GroupPatch, NewGroup, NewUser, UserPatch, UserView};
use core_directory::{Actor, Directory, Id};
use serde_json::{json, Value};

/// Who is asking, and where resources live.
pub struct Ctx<'a> {
    pub dir: &'a Directory,
    pub actor: &'a Actor,
    /// `https://host/scim/v2`
    pub base: String,
}

/// The two resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Groups,
}

/// Attributes a client may never write.
const USER_READ_ONLY: &[&str] = &["id", "meta", "groups"];
const GROUP_READ_ONLY: &[&str] = &["id", "meta"];

fn parse_id(id: &str) -> Result<Id, ScimError> {
    Id::parse(id).ok_or_else(|| ScimError::not_found(format!("no resource {id}")))
}

fn check_version(current: &Value, if_match: Option<&str>) -> Result<(), ScimError> {
    match if_match {
        Some(m) if m.trim() != "*" => {
            let have = resource::version(current);
            let ok = m
                .split(',')
                .any(|t| t.trim() == have || t.trim() == have.trim_start_matches("W/"));
            if ok {
                Ok(())
            } else {
                Err(ScimError::new(
                    StatusCode::PRECONDITION_FAILED,
                    None,
                    "the resource changed since that version (If-Match)",
                ))
            }
        }
        _ => Ok(()),
    }
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
        let email = u
            .email
            .clone()
            .or_else(|| user_name.contains('@').then(|| user_name.clone()))
            .ok_or_else(|| {
                ScimError::bad_request(
                    "invalidValue",
                    "Stratus needs an e-mail address: send emails, or an e-mail address as userName",
                )
            })?;
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

    /// Apply the difference between two readings of a user (PUT: `keep_absent`; PATCH: absent means removed).
    async fn change_user(
        &self,
        id: &Id,
        before: &UserInput,
        after: &UserInput,
        keep_absent: bool,
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
            ..Default::default()
        };
        if let Some(pw) = &after.password {
            self.dir.set_password(self.actor, id, pw).await?;
        }
        let view = self.dir.update_user(self.actor, id, patch).await?;
        Ok(resource::user_json(&view, &self.dir.snapshot(), &self.base))
    }

    pub async fn replace_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let id = parse_id(id)?;
        let current = resource::user_json(&self.user_view(&id)?, &self.dir.snapshot(), &self.base);
        check_version(&current, if_match)?;
        let after = resource::read_user(body)?;
        if after.user_name.is_none() {
            return Err(ScimError::bad_request(
                "invalidValue",
                "userName is required",
            ));
        }
        self.change_user(&id, &resource::read_user(&current)?, &after, true)
            .await
    }

    pub async fn patch_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let id = parse_id(id)?;
        let current = resource::user_json(&self.user_view(&id)?, &self.dir.snapshot(), &self.base);
        check_version(&current, if_match)?;
        let after = patch::apply(&current, body, USER_READ_ONLY)?;
        self.change_user(
            &id,
            &resource::read_user(&current)?,
            &resource::read_user(&after)?,
            false,
        )
        .await
    }

    pub async fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
        let id = parse_id(id)?;
        let current = resource::user_json(&self.user_view(&id)?, &self.dir.snapshot(), &self.base);
        check_version(&current, if_match)?;
        Ok(self.dir.delete_user(self.actor, &id).await?)
    }

    pub fn get_group(&self, id: &str) -> Result<Value, ScimError> {
        let id = parse_id(id)?;
        let snap = self.dir.snapshot();
        let g = snap
            .group(&id)
            .ok_or_else(|| ScimError::not_found(format!("no group {id}")))?;
        Ok(resource::group_json(g, &snap, &self.base))
    }

    /// Member ids checked against the directory before anything is written.
    fn member_ids(&self, members: &[String]) -> Result<Vec<Id>, ScimError> {
        let snap = self.dir.snapshot();
        members
            .iter()
            .map(|m| {
                Id::parse(m)
                    .filter(|id| snap.user(id).is_some())
                    .ok_or_else(|| {
                        ScimError::bad_request(
                            "invalidValue",
                            format!("member `{m}` is not a user"),
                        )
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
        let members = self.member_ids(g.members.as_deref().unwrap_or_default())?;
        let view = self
            .dir
            .create_group(
                self.actor,
                NewGroup {
                    name,
                    external_id: g.external_id.clone(),
                    ..Default::default()
                },
            )
            .await?;
        for m in &members {
            self.dir.add_member(self.actor, &view.group.id, m).await?;
        }
        self.get_group(view.group.id.as_str())
    }

    async fn change_group(
        &self,
        id: &Id,
        before: &GroupInput,
        after: &GroupInput,
        keep_absent: bool,
    ) -> Result<Value, ScimError> {
        if after.display_name.is_none() && !keep_absent {
            return Err(ScimError::bad_request(
                "mutability",
                "displayName cannot be removed",
            ));
        }
        let members = match &after.members {
            Some(m) => Some(self.member_ids(m)?),
            None if !keep_absent => Some(Vec::new()),
            None => None,
        };
        let patch = GroupPatch {
            name: after
                .display_name
                .clone()
                .filter(|n| Some(n) != before.display_name.as_ref()),
            external_id: match (&before.external_id, &after.external_id) {
                (b, Some(a)) if Some(a) != b.as_ref() => Some(a.clone()),
                (Some(_), None) if !keep_absent => Some(String::new()),
                _ => None,
            },
            ..Default::default()
        };
        if patch.name.is_some() || patch.external_id.is_some() {
            self.dir.update_group(self.actor, id, patch).await?;
        }
        if let Some(wanted) = members {
            let current = self.dir.group_members(id)?;
            for m in wanted.iter().filter(|m| !current.contains(m)) {
                self.dir.add_member(self.actor, id, m).await?;
            }
            for m in current.iter().filter(|m| !wanted.contains(m)) {
                self.dir.remove_member(self.actor, id, m).await?;
            }
        }
        self.get_group(id.as_str())
    }

    pub async fn replace_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let current = self.get_group(id)?;
        check_version(&current, if_match)?;
        let after = resource::read_group(body)?;
        if after.display_name.is_none() {
            return Err(ScimError::bad_request(
                "invalidValue",
                "displayName is required",
            ));
        }
        self.change_group(
            &parse_id(id)?,
            &resource::read_group(&current)?,
            &after,
            true,
        )
        .await
    }

    pub async fn patch_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ScimError> {
        let current = self.get_group(id)?;
        check_version(&current, if_match)?;
        let after = patch::apply(&current, body, GROUP_READ_ONLY)?;
        self.change_group(
            &parse_id(id)?,
            &resource::read_group(&current)?,
            &resource::read_group(&after)?,
            false,
        )
        .await
    }

    pub async fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
        let current = self.get_group(id)?;
        check_version(&current, if_match)?;
        Ok(self.dir.delete_group(self.actor, &parse_id(id)?).await?)
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

    /// Every resource of a kind that matches `filter`, as SCIM JSON.
    pub fn search(&self, groups: bool, filter: Option<&Filter>) -> Vec<Value> {
        let snap = self.dir.snapshot();
        let now = chrono::Utc::now();
        if groups {
            return snap
                .groups
                .values()
                .map(|g| resource::group_json(g, &snap, &self.base))
                .filter(|v| filter.is_none_or(|f| filter::matches(f, v)))
                .collect();
        }
        let indexed = match filter {
            Some(f) => match (filter::user_name_equals(f), filter::email_equals(f)) {
                (Some(name), _) => Some(snap.user_by_username(name)),
                (None, Some(mail)) => Some(snap.user_by_mail(mail)),
                _ => None,
            },
            None => None,
        };
        if let Some(found) = indexed {
            return found
                .map(|u| resource::user_json(&UserView::of(u, &snap, now), &snap, &self.base))
                .into_iter()
                .collect();
        }
        snap.users
            .values()
            .map(|u| resource::user_json(&UserView::of(u, &snap, now), &snap, &self.base))
            .filter(|v| filter.is_none_or(|f| filter::matches(f, v)))
            .collect()
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
