//! Conditional access policies and IP lists: creating, changing and deleting them inside the serialised write,
//! with the checks that keep a policy meaningful (it names things that exist and can match someone) and a list
//! in use from disappearing. Evaluation is `crate::conditional`; applying it is the authentication path's.

use super::{admin_event, Directory, Tx};
use crate::access::{Actor, Permission};
use crate::conditional::{
    minutes, parse_network, AccessPolicy, IpList, PolicyAction, PolicyTarget, TimeWindow,
};
use crate::error::{DirectoryError, Result};
use crate::id::Id;
use crate::model::Resource;
use crate::snapshot::Snapshot;
use crate::store::Kind;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Most networks one IP list holds.
const MAX_NETWORKS: usize = 5_000;
/// Most policies (each is evaluated on every login it covers).
const MAX_POLICIES: usize = 1_000;

/// Create or replace an IP list.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpListInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Addresses and networks in CIDR notation, IPv4 or IPv6.
    pub networks: Vec<String>,
}

/// An IP list as the API shows it, with the policies that use it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IpListView {
    #[serde(flatten)]
    pub list: IpList,
    pub used_by: Vec<String>,
}

/// Create or replace a conditional access policy. Groups and IP lists are named by id.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicyInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub report_only: bool,
    /// Lower first; absent places the policy after every other one.
    #[serde(default)]
    pub priority: Option<u32>,
    /// `portal`, `apps`, `app:{id}`, `radius`, `radius:{id}` or `ldap`.
    pub target: String,
    #[serde(default)]
    pub groups: Vec<Id>,
    #[serde(default)]
    pub excluded_groups: Vec<Id>,
    #[serde(default)]
    pub source_in: Vec<Id>,
    #[serde(default)]
    pub source_not_in: Vec<Id>,
    #[serde(default)]
    pub time: Option<TimeWindow>,
    #[serde(default)]
    pub mfa_enrolled: Option<bool>,
    pub action: PolicyAction,
}

/// `HH:MM` written the one way (`8:00` → `08:00`).
fn hhmm(text: &str) -> String {
    let m = minutes(text).unwrap_or(0);
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn yes() -> bool {
    true
}

fn name_of(field: &'static str, text: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} must be 1–100 characters"),
        ));
    }
    Ok(t.to_string())
}

fn description(text: &Option<String>) -> Result<Option<String>> {
    let d = text.as_deref().map(str::trim).filter(|d| !d.is_empty());
    if d.is_some_and(|d| d.chars().count() > 500) {
        return Err(DirectoryError::invalid(
            "description",
            "description must be at most 500 characters",
        ));
    }
    Ok(d.map(str::to_string))
}

fn networks(input: &[String]) -> Result<Vec<ipnet::IpNet>> {
    let mut out: Vec<ipnet::IpNet> = Vec::new();
    for text in input.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let n = parse_network(text).ok_or_else(|| {
            DirectoryError::invalid(
                "networks",
                format!(
                    "`{}` is not an address or a network like 10.0.0.0/8 or 2001:db8::/32",
                    shown(text)
                ),
            )
        })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        return Err(DirectoryError::invalid(
            "networks",
            "an IP list needs at least one address or network",
        ));
    }
    if out.len() > MAX_NETWORKS {
        return Err(DirectoryError::invalid(
            "networks",
            format!("an IP list holds at most {MAX_NETWORKS} networks"),
        ));
    }
    Ok(out)
}

/// A bounded, printable prefix of what someone typed, for an error message.
fn shown(text: &str) -> String {
    text.chars()
        .take(60)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The checks that need the current state: everything named exists, and the policy can match someone.
fn check_policy(snap: &Snapshot, input: &AccessPolicyInput) -> Result<PolicyTarget> {
    let target = PolicyTarget::parse(&input.target).ok_or_else(|| {
        DirectoryError::invalid(
            "target",
            "target must be portal, apps, app:<id>, radius, radius:<id> or ldap",
        )
    })?;
    match &target {
        PolicyTarget::App(id) if !snap.apps.contains_key(id) => {
            return Err(DirectoryError::invalid(
                "target",
                format!("there is no SSO app {id}"),
            ));
        }
        PolicyTarget::Radius(id) if !snap.radius_servers.contains_key(id) => {
            return Err(DirectoryError::invalid(
                "target",
                format!("there is no RADIUS profile {id}"),
            ));
        }
        _ => {}
    }
    for (field, ids) in [
        ("groups", &input.groups),
        ("excluded_groups", &input.excluded_groups),
    ] {
        if let Some(id) = ids.iter().find(|id| !snap.groups.contains_key(*id)) {
            return Err(DirectoryError::invalid(
                field,
                format!("there is no group {id}"),
            ));
        }
    }
    for (field, ids) in [
        ("source_in", &input.source_in),
        ("source_not_in", &input.source_not_in),
    ] {
        if let Some(id) = ids.iter().find(|id| !snap.ip_lists.contains_key(*id)) {
            return Err(DirectoryError::invalid(
                field,
                format!("there is no IP list {id}"),
            ));
        }
    }
    if let Some(g) = input
        .groups
        .iter()
        .find(|g| input.excluded_groups.contains(g))
    {
        let name = snap.groups.get(g).map_or("", |g| g.name.as_str());
        return Err(DirectoryError::invalid(
            "excluded_groups",
            format!(
                "group {name} is both covered and excluded: the policy could match nobody in it"
            ),
        ));
    }
    if let Some(l) = input
        .source_in
        .iter()
        .find(|l| input.source_not_in.contains(l))
    {
        let name = snap.ip_lists.get(l).map_or("", |l| l.name.as_str());
        return Err(DirectoryError::invalid(
            "source_not_in",
            format!("IP list {name} is both required and excluded: the policy could match nobody"),
        ));
    }
    if let Some(w) = &input.time {
        let (start, end) = (minutes(&w.start), minutes(&w.end));
        if start.is_none() || end.is_none() {
            return Err(DirectoryError::invalid(
                "time",
                "time.start and time.end must be HH:MM (00:00–24:00)",
            ));
        }
        if w.days.is_empty() {
            return Err(DirectoryError::invalid(
                "time",
                "time.days must name at least one day: the policy could match nobody",
            ));
        }
        if start == end || start == Some(0) && end == Some(1440) && w.outside && w.days.len() == 7 {
            return Err(DirectoryError::invalid(
                "time",
                "time.start and time.end make an empty window: the policy could match nobody",
            ));
        }
    }
    Ok(target)
}

impl Directory {
    fn ip_list_view(snap: &Snapshot, l: &IpList) -> IpListView {
        IpListView {
            list: l.clone(),
            used_by: snap
                .policy_order
                .iter()
                .filter(|p| p.source_in.contains(&l.id) || p.source_not_in.contains(&l.id))
                .map(|p| p.name.clone())
                .collect(),
        }
    }

    pub fn list_ip_lists(&self, actor: &Actor) -> Result<Vec<IpListView>> {
        actor.require(Permission::Read)?;
        let snap = self.snapshot();
        let mut all: Vec<_> = snap
            .ip_lists
            .values()
            .map(|l| Self::ip_list_view(&snap, l))
            .collect();
        all.sort_by_key(|v| v.list.name.to_lowercase());
        Ok(all)
    }

    pub fn get_ip_list(&self, actor: &Actor, id: &Id) -> Result<IpListView> {
        actor.require(Permission::Read)?;
        let snap = self.snapshot();
        let l = snap
            .ip_lists
            .get(id)
            .ok_or_else(|| DirectoryError::not_found("IP list", id))?;
        Ok(Self::ip_list_view(&snap, l))
    }

    /// Create (`id` `None`) or replace an IP list.
    pub async fn put_ip_list(
        &self,
        actor: &Actor,
        id: Option<&Id>,
        input: IpListInput,
    ) -> Result<IpListView> {
        actor.require(Permission::ManageOrg)?;
        let name = name_of("name", &input.name)?;
        let description = description(&input.description)?;
        let networks = networks(&input.networks)?;
        let actor = actor.clone();
        let id = id.cloned();
        let list = self
            .write(move |tx| {
                let current = match &id {
                    Some(id) => Some(
                        tx.snap
                            .ip_lists
                            .get(id)
                            .cloned()
                            .ok_or_else(|| DirectoryError::not_found("IP list", id))?,
                    ),
                    None => None,
                };
                let id = id.unwrap_or_else(Id::generate);
                if tx
                    .snap
                    .ip_lists
                    .values()
                    .any(|l| l.id != id && l.name.eq_ignore_ascii_case(&name))
                {
                    return Err(DirectoryError::conflict(
                        "name",
                        format!("an IP list named `{name}` exists"),
                    ));
                }
                let l = IpList {
                    id: id.clone(),
                    name,
                    description,
                    networks,
                    created_at: current.as_ref().map_or(tx.now, |c| c.created_at),
                    updated_at: tx.now,
                };
                tx.batch.put_json(Kind::IpList, l.id.as_str(), &l);
                tx.snap.ip_lists.insert(l.id.clone(), Arc::new(l.clone()));
                let kind = if current.is_some() {
                    "ip_list_update"
                } else {
                    "ip_list_create"
                };
                tx.event(
                    admin_event(&actor, kind)
                        .target("ip_list", &l.id)
                        .detail("name", l.name.clone())
                        .detail("networks", l.networks.len()),
                );
                Ok(l)
            })
            .await?;
        Ok(Self::ip_list_view(&self.snapshot(), &list))
    }

    /// Delete an IP list no policy uses.
    pub async fn delete_ip_list(&self, actor: &Actor, id: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            let Some(l) = tx.snap.ip_lists.get(&id).cloned() else {
                return Err(DirectoryError::not_found("IP list", &id));
            };
            let users: Vec<String> = Self::ip_list_view(&tx.snap, &l).used_by;
            if !users.is_empty() {
                return Err(DirectoryError::conflict(
                    "ip_list",
                    format!(
                        "IP list `{}` is used by the policies {}: change them first",
                        l.name,
                        users.join(", ")
                    ),
                ));
            }
            tx.snap.ip_lists.remove(&id);
            tx.batch.delete(Kind::IpList, id.as_str());
            tx.event(
                admin_event(&actor, "ip_list_delete")
                    .target("ip_list", &id)
                    .detail("name", l.name.clone()),
            );
            Ok(())
        })
        .await
    }

    pub fn list_access_policies(&self, actor: &Actor) -> Result<Vec<AccessPolicy>> {
        actor.require(Permission::Read)?;
        Ok(self
            .snapshot()
            .policy_order
            .iter()
            .map(|p| (**p).clone())
            .collect())
    }

    pub fn get_access_policy(&self, actor: &Actor, id: &Id) -> Result<AccessPolicy> {
        actor.require(Permission::Read)?;
        self.snapshot()
            .access_policies
            .get(id)
            .map(|p| (**p).clone())
            .ok_or_else(|| DirectoryError::not_found("access policy", id))
    }

    /// Create (`id` `None`) or replace a conditional access policy. Everything it names is checked against the
    /// state the write sees.
    pub async fn put_access_policy(
        &self,
        actor: &Actor,
        id: Option<&Id>,
        input: AccessPolicyInput,
    ) -> Result<AccessPolicy> {
        actor.require(Permission::ManageOrg)?;
        let name = name_of("name", &input.name)?;
        let description = description(&input.description)?;
        let actor = actor.clone();
        let id = id.cloned();
        self.write(move |tx| {
            let current = match &id {
                Some(id) => Some(
                    tx.snap
                        .access_policies
                        .get(id)
                        .cloned()
                        .ok_or_else(|| DirectoryError::not_found("access policy", id))?,
                ),
                None => None,
            };
            if current.is_none() && tx.snap.access_policies.len() >= MAX_POLICIES {
                return Err(DirectoryError::invalid(
                    "name",
                    format!("at most {MAX_POLICIES} access policies"),
                ));
            }
            let id = id.unwrap_or_else(Id::generate);
            if tx
                .snap
                .access_policies
                .values()
                .any(|p| p.id != id && p.name.eq_ignore_ascii_case(&name))
            {
                return Err(DirectoryError::conflict(
                    "name",
                    format!("an access policy named `{name}` exists"),
                ));
            }
            let target = check_policy(&tx.snap, &input)?;
            let priority = input.priority.unwrap_or_else(|| {
                current.as_ref().map_or_else(
                    || {
                        tx.snap
                            .policy_order
                            .iter()
                            .map(|p| p.priority)
                            .max()
                            .map_or(10, |m| m.saturating_add(10))
                    },
                    |c| c.priority,
                )
            });
            let dedup = |ids: &[Id]| {
                let mut out: Vec<Id> = Vec::new();
                for i in ids {
                    if !out.contains(i) {
                        out.push(i.clone());
                    }
                }
                out
            };
            let p = AccessPolicy {
                id: id.clone(),
                name,
                description,
                enabled: input.enabled,
                report_only: input.report_only,
                priority,
                target,
                groups: dedup(&input.groups),
                excluded_groups: dedup(&input.excluded_groups),
                source_in: dedup(&input.source_in),
                source_not_in: dedup(&input.source_not_in),
                time: input.time.clone().map(|mut w| {
                    let mut seen = Vec::new();
                    w.days.retain(|d| {
                        let first = !seen.contains(d);
                        seen.push(*d);
                        first
                    });
                    w.start = hhmm(&w.start);
                    w.end = hhmm(&w.end);
                    w
                }),
                mfa_enrolled: input.mfa_enrolled,
                action: input.action,
                created_at: current.as_ref().map_or(tx.now, |c| c.created_at),
                updated_at: tx.now,
            };
            tx.batch.put_json(Kind::AccessPolicy, p.id.as_str(), &p);
            tx.snap.put_access_policy(Arc::new(p.clone()));
            let kind = if current.is_some() {
                "access_policy_update"
            } else {
                "access_policy_create"
            };
            tx.event(
                admin_event(&actor, kind)
                    .target("access_policy", &p.id)
                    .detail("name", p.name.clone())
                    .detail("action", p.action.as_str())
                    .detail("enabled", p.enabled)
                    .detail("report_only", p.report_only),
            );
            Ok(p)
        })
        .await
    }

    pub async fn delete_access_policy(&self, actor: &Actor, id: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            let Some(p) = tx.snap.access_policies.get(&id).cloned() else {
                return Err(DirectoryError::not_found("access policy", &id));
            };
            tx.snap.remove_access_policy(&id);
            tx.batch.delete(Kind::AccessPolicy, id.as_str());
            tx.event(
                admin_event(&actor, "access_policy_delete")
                    .target("access_policy", &id)
                    .detail("name", p.name.clone()),
            );
            Ok(())
        })
        .await
    }
}

/// The policies that name a group (so it cannot be deleted from under them).
pub(crate) fn policies_naming_group(snap: &Snapshot, group: &Id) -> Vec<String> {
    snap.policy_order
        .iter()
        .filter(|p| p.groups.contains(group) || p.excluded_groups.contains(group))
        .map(|p| p.name.clone())
        .collect()
}

/// Delete the policies aimed at one app or RADIUS profile, in the write that deletes it: nothing can reach it
/// any more, and a policy left behind would name nothing.
pub(crate) fn drop_policies_targeting(tx: &mut Tx, actor: &Actor, resource: &Resource) {
    let doomed: Vec<Arc<AccessPolicy>> = tx
        .snap
        .policy_order
        .iter()
        .filter(|p| match (&p.target, resource) {
            (PolicyTarget::App(a), Resource::App(b)) => a == b,
            (PolicyTarget::Radius(a), Resource::Radius(b)) => a == b,
            _ => false,
        })
        .cloned()
        .collect();
    for p in doomed {
        tx.snap.remove_access_policy(&p.id);
        tx.batch.delete(Kind::AccessPolicy, p.id.as_str());
        tx.event(
            admin_event(actor, "access_policy_delete")
                .target("access_policy", &p.id)
                .detail("name", p.name.clone())
                .detail("because", format!("{resource} was deleted")),
        );
    }
}
