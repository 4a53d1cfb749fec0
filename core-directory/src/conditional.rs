//! Conditional access: policies that, after the bindings have let a login through, allow it, deny it or ask for a
//! second factor, depending on who the user is (groups in, groups excluded, MFA enrolment), where the attempt
//! comes from (named IP lists) and when (a weekly time window in the organisation's time zone). This module holds
//! the policy types and their evaluation, which reads one snapshot and changes nothing; the authentication path
//! (`auth.rs`) applies the verdict, `directory/conditional.rs` stores policies and lists. It must not grant: a
//! policy is evaluated only once a binding has granted access, and the strictest matching action wins.

use crate::id::Id;
use crate::model::{Resource, User};
use crate::snapshot::Snapshot;
use chrono::{DateTime, Datelike, Timelike, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use utoipa::ToSchema;

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a /32 or /128. Host bits are
/// cleared (`10.0.0.9/8` is `10.0.0.0/8`).
pub fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if let Ok(n) = text.parse::<IpNet>() {
        return Some(n.trunc());
    }
    if text.contains('/') {
        return None;
    }
    text.parse::<IpAddr>()
        .ok()
        .map(|a| IpNet::from(a.to_canonical()))
}

/// Whether a source address is in a network; IPv4 clients seen through an IPv6 socket (`::ffff:a.b.c.d`) are
/// matched as IPv4.
pub fn in_network(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip.to_canonical())
}

/// A named, reusable list of networks that policies name as a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IpList {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub networks: Vec<IpNet>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl IpList {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| in_network(n, ip))
    }
}

/// What a policy covers: `portal`, `apps` (every SSO app), `app:{id}`, `radius` (every RADIUS profile),
/// `radius:{id}`, `ldap`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyTarget {
    Portal,
    AllApps,
    App(Id),
    AllRadius,
    Radius(Id),
    Ldap,
}

impl PolicyTarget {
    pub fn parse(text: &str) -> Option<PolicyTarget> {
        match text.trim() {
            "portal" => Some(PolicyTarget::Portal),
            "apps" => Some(PolicyTarget::AllApps),
            "radius" => Some(PolicyTarget::AllRadius),
            "ldap" => Some(PolicyTarget::Ldap),
            t => match t.split_once(':')? {
                ("app", id) => Id::parse(id).map(PolicyTarget::App),
                ("radius", id) => Id::parse(id).map(PolicyTarget::Radius),
                _ => None,
            },
        }
    }

    /// Whether an attempt on `resource` (`None`: the user portal) is covered.
    pub fn covers(&self, resource: Option<&Resource>) -> bool {
        match (self, resource) {
            (PolicyTarget::Portal, None) => true,
            (PolicyTarget::AllApps, Some(Resource::App(_))) => true,
            (PolicyTarget::App(a), Some(Resource::App(b))) => a == b,
            (PolicyTarget::AllRadius, Some(Resource::Radius(_))) => true,
            (PolicyTarget::Radius(a), Some(Resource::Radius(b))) => a == b,
            (PolicyTarget::Ldap, Some(Resource::Ldap)) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for PolicyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyTarget::Portal => f.write_str("portal"),
            PolicyTarget::AllApps => f.write_str("apps"),
            PolicyTarget::App(id) => write!(f, "app:{id}"),
            PolicyTarget::AllRadius => f.write_str("radius"),
            PolicyTarget::Radius(id) => write!(f, "radius:{id}"),
            PolicyTarget::Ldap => f.write_str("ldap"),
        }
    }
}

impl Serialize for PolicyTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PolicyTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PolicyTarget::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a target (portal, apps, app:<id>, radius, radius:<id>, ldap)"
            ))
        })
    }
}

/// What a matching policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// Let the user in with the password alone: no second factor is asked, whatever the resource or the
    /// user's enrolment would ask (the rule for a trusted network). Never grants what no binding grants.
    Allow,
    /// Ask for a second factor (TOTP or a recovery code), whatever the resource's own setting.
    RequireMfa,
    /// Refuse the login.
    Deny,
}

impl PolicyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyAction::Allow => "allow",
            PolicyAction::RequireMfa => "require_mfa",
            PolicyAction::Deny => "deny",
        }
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn of(w: chrono::Weekday) -> Day {
        match w {
            chrono::Weekday::Mon => Day::Mon,
            chrono::Weekday::Tue => Day::Tue,
            chrono::Weekday::Wed => Day::Wed,
            chrono::Weekday::Thu => Day::Thu,
            chrono::Weekday::Fri => Day::Fri,
            chrono::Weekday::Sat => Day::Sat,
            chrono::Weekday::Sun => Day::Sun,
        }
    }
}

/// A weekly window in the organisation's time zone: on `days`, from `start` (included) to `end` (excluded),
/// `HH:MM`. An `end` before `start` runs past midnight into the next day (the day it starts on is the one
/// listed). With `outside`, the condition is met when the time is *not* in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub days: Vec<Day>,
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub outside: bool,
}

/// `HH:MM` as minutes after midnight (`24:00` is the end of the day).
pub fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

impl TimeWindow {
    /// Whether local time `at` is inside the window (before `outside` is applied).
    fn inside(&self, at: chrono::NaiveDateTime) -> bool {
        let (Some(start), Some(end)) = (minutes(&self.start), minutes(&self.end)) else {
            return false;
        };
        let now = at.hour() * 60 + at.minute();
        let today = Day::of(at.weekday());
        let yesterday = Day::of(at.weekday().pred());
        if start < end {
            self.days.contains(&today) && (start..end).contains(&now)
        } else {
            // Past midnight: the evening part belongs to today, the morning part to yesterday's window.
            self.days.contains(&today) && now >= start
                || self.days.contains(&yesterday) && now < end
        }
    }

    fn describe(&self) -> String {
        let days: Vec<&str> = self
            .days
            .iter()
            .map(|d| match d {
                Day::Mon => "Mon",
                Day::Tue => "Tue",
                Day::Wed => "Wed",
                Day::Thu => "Thu",
                Day::Fri => "Fri",
                Day::Sat => "Sat",
                Day::Sun => "Sun",
            })
            .collect();
        format!(
            "{}{} {}–{}",
            if self.outside { "outside " } else { "" },
            days.join(","),
            self.start,
            self.end
        )
    }
}

/// A conditional access policy as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccessPolicy {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub enabled: bool,
    /// Evaluated and recorded in events, never enforced.
    pub report_only: bool,
    /// Lower numbers first, in lists, in `explain` and among policies of the same action.
    pub priority: u32,
    #[schema(value_type = String)]
    pub target: PolicyTarget,
    /// The policy covers members of any of these groups; empty covers every user.
    pub groups: Vec<Id>,
    /// Members of any of these groups are never covered (a break-glass group).
    pub excluded_groups: Vec<Id>,
    /// Met when the source address is in any of these IP lists (empty: any source).
    pub source_in: Vec<Id>,
    /// Met when the source address is in none of these IP lists. An attempt with no known source is in no list.
    pub source_not_in: Vec<Id>,
    pub time: Option<TimeWindow>,
    /// Met only when the user's TOTP enrolment is (`true`) or is not (`false`) active.
    pub mfa_enrolled: Option<bool>,
    pub action: PolicyAction,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The policy that decided, or one a report-only policy would have decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyHit {
    pub id: Id,
    pub name: String,
    pub action: PolicyAction,
}

impl PolicyHit {
    fn of(p: &AccessPolicy) -> PolicyHit {
        PolicyHit {
            id: p.id.clone(),
            name: p.name.clone(),
            action: p.action,
        }
    }
}

/// The policies' verdict on one attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// The enforced policy whose action applies (the strictest that matched; the first by priority among
    /// equals), or `None` when no enforced policy matched.
    pub decided: Option<PolicyHit>,
    /// Report-only policies that matched, with what they would have done.
    pub report_only: Vec<PolicyHit>,
}

impl Verdict {
    pub fn action(&self) -> Option<PolicyAction> {
        self.decided.as_ref().map(|h| h.action)
    }
}

/// One condition of one policy, as `explain` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConditionTrace {
    pub condition: String,
    pub met: bool,
}

/// One policy's evaluation, as `explain` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyTrace {
    pub id: Id,
    pub name: String,
    pub priority: u32,
    pub action: PolicyAction,
    pub enabled: bool,
    pub report_only: bool,
    /// The policy's target covers this resource.
    pub covers: bool,
    pub conditions: Vec<ConditionTrace>,
    /// Enabled, covering, and every condition met.
    pub matched: bool,
}

/// What an attempt is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// `None`: the user portal.
    pub resource: Option<&'a Resource>,
    pub source: Option<IpAddr>,
    pub at: DateTime<Utc>,
}

/// The organisation's time zone (`UTC` when none is set or it is unknown).
pub fn org_time_zone(snap: &Snapshot) -> chrono_tz::Tz {
    snap.org
        .as_ref()
        .and_then(|o| o.time_zone.as_deref())
        .and_then(|t| t.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

fn list_names(snap: &Snapshot, ids: &[Id]) -> String {
    ids.iter()
        .map(|id| {
            snap.ip_lists
                .get(id)
                .map_or_else(|| format!("(deleted list {id})"), |l| l.name.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn group_names(snap: &Snapshot, ids: &[Id]) -> String {
    ids.iter()
        .map(|id| {
            snap.groups
                .get(id)
                .map_or_else(|| format!("(deleted group {id})"), |g| g.name.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evaluate every policy on one attempt. Without a trace this allocates nothing for policies that do not match;
/// with one, every policy and each of its conditions is described.
pub fn evaluate(
    snap: &Snapshot,
    user: &User,
    attempt: Attempt<'_>,
    mut trace: Option<&mut Vec<PolicyTrace>>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let set = &snap.policy_order;
    if set.is_empty() {
        return verdict;
    }
    let mut local: Option<chrono::NaiveDateTime> = None;
    // The user's groups among those the policies name, once; room for what the lists say (one allocation).
    let mut words = vec![0u64; set.group_words + 2 * set.list_words];
    let (mine, rest) = words.split_at_mut(set.group_words);
    let (known, inside) = rest.split_at_mut(set.list_words);
    if let Some(m) = snap.memberships.get(&user.id) {
        for g in m.iter() {
            if let Some(&i) = set.groups.get(g) {
                mine[i / 64] |= 1 << (i % 64);
            }
        }
    }
    let mut lists = ListMemo {
        snap,
        source: attempt.source,
        known,
        inside,
    };
    let source_text = || {
        attempt
            .source
            .map_or("(unknown)".to_string(), |ip| ip.to_canonical().to_string())
    };
    for (i, h) in set.heads.iter().enumerate() {
        let covers = h.target.covers(attempt.resource);
        let explaining = trace.is_some();
        if !explaining && (!h.enabled || !covers) {
            continue;
        }
        let p = &set.order[i];
        let (groups, excluded, source_in, source_not_in) = set.masks(i);
        let mut conditions = Vec::new();
        let mut all = h.enabled && covers;
        let mut check = |all: &mut bool, met: bool, what: &dyn Fn() -> String| {
            *all &= met;
            if explaining {
                conditions.push(ConditionTrace {
                    condition: what(),
                    met,
                });
            }
        };
        if h.groups && (all || explaining) {
            let met = meets(groups, mine);
            check(&mut all, met, &|| {
                format!("member of any of: {}", group_names(snap, &p.groups))
            });
        }
        if h.excluded && (all || explaining) {
            let met = !meets(excluded, mine);
            check(&mut all, met, &|| {
                format!(
                    "member of none of: {}",
                    group_names(snap, &p.excluded_groups)
                )
            });
        }
        if h.source_in && (all || explaining) {
            let met = lists.any(set, source_in);
            check(&mut all, met, &|| {
                format!(
                    "source {} in any of: {}",
                    source_text(),
                    list_names(snap, &p.source_in)
                )
            });
        }
        if h.source_not_in && (all || explaining) {
            let met = !lists.any(set, source_not_in);
            check(&mut all, met, &|| {
                format!(
                    "source {} in none of: {}",
                    source_text(),
                    list_names(snap, &p.source_not_in)
                )
            });
        }
        let (time, mfa) = if h.rest {
            (p.time.as_ref(), p.mfa_enrolled)
        } else {
            (None, None)
        };
        if let Some(w) = time {
            if all || explaining {
                let at = *local.get_or_insert_with(|| {
                    attempt.at.with_timezone(&org_time_zone(snap)).naive_local()
                });
                let met = w.inside(at) != w.outside;
                check(&mut all, met, &|| {
                    format!(
                        "time {} ({}) {}",
                        at.format("%a %H:%M"),
                        org_time_zone(snap).name(),
                        w.describe()
                    )
                });
            }
        }
        if let Some(want) = mfa {
            if all || explaining {
                let met = user.totp_active() == want;
                check(&mut all, met, &|| {
                    if want {
                        "the user's TOTP is active".to_string()
                    } else {
                        "the user's TOTP is not active".to_string()
                    }
                });
            }
        }
        if let Some(t) = trace.as_deref_mut() {
            t.push(PolicyTrace {
                id: p.id.clone(),
                name: p.name.clone(),
                priority: p.priority,
                action: p.action,
                enabled: p.enabled,
                report_only: p.report_only,
                covers,
                conditions,
                matched: all,
            });
        }
        if !all {
            continue;
        }
        if p.report_only {
            verdict.report_only.push(PolicyHit::of(p));
        } else if verdict.action().is_none_or(|a| p.action > a) {
            verdict.decided = Some(PolicyHit::of(p));
        }
    }
    verdict
}

/// The policies in evaluation order (priority, then name), with the groups and IP lists they name numbered: an
/// attempt learns the user's groups among them once and each list's verdict at most once, and each policy's
/// group and list conditions are then bit tests. Built when a policy changes.
#[derive(Debug, Default)]
pub struct PolicySet {
    order: Vec<Arc<AccessPolicy>>,
    /// What the hot loop reads of each policy, side by side in memory.
    heads: Vec<Head>,
    /// Each policy's group, excluded-group, source-in and source-not-in bits, `stride` words per policy.
    masks: Vec<u64>,
    stride: usize,
    /// Group id → bit.
    groups: std::collections::HashMap<Id, usize>,
    /// Bit → IP list id.
    lists: Vec<Id>,
    group_words: usize,
    list_words: usize,
}

/// Which conditions a policy has, and what it covers.
#[derive(Debug)]
struct Head {
    target: PolicyTarget,
    enabled: bool,
    groups: bool,
    excluded: bool,
    source_in: bool,
    source_not_in: bool,
    /// A time window or an MFA-enrolment condition (read from the policy itself).
    rest: bool,
}

fn bits(ids: &[Id], index: &dyn Fn(&Id) -> usize, out: &mut [u64]) {
    for id in ids {
        let i = index(id);
        out[i / 64] |= 1 << (i % 64);
    }
}

fn meets(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

impl std::ops::Deref for PolicySet {
    type Target = [Arc<AccessPolicy>];
    fn deref(&self) -> &Self::Target {
        &self.order
    }
}

impl PolicySet {
    /// Policy `i`'s bits: groups, excluded groups, source-in lists, source-not-in lists.
    fn masks(&self, i: usize) -> (&[u64], &[u64], &[u64], &[u64]) {
        let m = &self.masks[i * self.stride..(i + 1) * self.stride];
        let (g, rest) = m.split_at(self.group_words);
        let (x, rest) = rest.split_at(self.group_words);
        let (si, sn) = rest.split_at(self.list_words);
        (g, x, si, sn)
    }

    pub fn new(policies: &imbl::HashMap<Id, Arc<AccessPolicy>>) -> PolicySet {
        let mut order: Vec<_> = policies.values().cloned().collect();
        order.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
        });
        let mut groups = std::collections::HashMap::new();
        let mut lists: Vec<Id> = Vec::new();
        for p in &order {
            for g in p.groups.iter().chain(&p.excluded_groups) {
                let next = groups.len();
                groups.entry(g.clone()).or_insert(next);
            }
            for l in p.source_in.iter().chain(&p.source_not_in) {
                if !lists.contains(l) {
                    lists.push(l.clone());
                }
            }
        }
        let group_words = groups.len().div_ceil(64).max(1);
        let list_words = lists.len().div_ceil(64).max(1);
        let group_bit = |id: &Id| groups.get(id).copied().unwrap_or(0);
        let list_bit = |id: &Id| lists.iter().position(|l| l == id).unwrap_or(0);
        let stride = 2 * group_words + 2 * list_words;
        let mut masks = vec![0u64; stride * order.len()];
        for (p, m) in order.iter().zip(masks.chunks_mut(stride)) {
            let (g, rest) = m.split_at_mut(group_words);
            let (x, rest) = rest.split_at_mut(group_words);
            let (i, n) = rest.split_at_mut(list_words);
            bits(&p.groups, &group_bit, g);
            bits(&p.excluded_groups, &group_bit, x);
            bits(&p.source_in, &list_bit, i);
            bits(&p.source_not_in, &list_bit, n);
        }
        let heads = order
            .iter()
            .map(|p| Head {
                target: p.target.clone(),
                enabled: p.enabled,
                groups: !p.groups.is_empty(),
                excluded: !p.excluded_groups.is_empty(),
                source_in: !p.source_in.is_empty(),
                source_not_in: !p.source_not_in.is_empty(),
                rest: p.time.is_some() || p.mfa_enrolled.is_some(),
            })
            .collect();
        PolicySet {
            order,
            heads,
            masks,
            stride,
            groups,
            lists,
            group_words,
            list_words,
        }
    }
}

/// What one attempt has learnt of the lists it needed: known and in, as bits.
struct ListMemo<'a> {
    snap: &'a Snapshot,
    source: Option<IpAddr>,
    known: &'a mut [u64],
    inside: &'a mut [u64],
}

impl ListMemo<'_> {
    /// Whether the source is in any list of `mask`.
    fn any(&mut self, set: &PolicySet, mask: &[u64]) -> bool {
        let Some(ip) = self.source else {
            return false;
        };
        for (w, word) in mask.iter().enumerate() {
            let mut rest = *word;
            while rest != 0 {
                let b = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let bit = 1u64 << b;
                if self.known[w] & bit == 0 {
                    self.known[w] |= bit;
                    let inside = set
                        .lists
                        .get(w * 64 + b)
                        .and_then(|id| self.snap.ip_lists.get(id))
                        .is_some_and(|l| l.contains(ip));
                    if inside {
                        self.inside[w] |= bit;
                    }
                }
                if self.inside[w] & bit != 0 {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = parse_network("10.1.0.0/16").expect("cidr");
        assert!(in_network(&n, "10.1.200.3".parse().expect("ip")));
        assert!(!in_network(&n, "10.2.0.1".parse().expect("ip")));
        assert!(in_network(&n, "::ffff:10.1.0.9".parse().expect("ip")));
        let h = parse_network("127.0.0.7").expect("host");
        assert_eq!(h.to_string(), "127.0.0.7/32");
        assert!(!in_network(&h, "127.0.0.8".parse().expect("ip")));
        let six = parse_network("2001:db8::/32").expect("v6");
        assert!(in_network(&six, "2001:db8:1::1".parse().expect("ip")));
        assert!(!in_network(&six, "10.1.0.1".parse().expect("ip")));
        assert_eq!(
            parse_network("10.0.0.9/8").expect("cidr").to_string(),
            "10.0.0.0/8"
        );
        assert!(in_network(
            &parse_network("0.0.0.0/0").expect("all"),
            "8.8.8.8".parse().expect("ip")
        ));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "10.0.0.0/", "::/129"] {
            assert!(parse_network(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn windows_and_midnight() {
        let at =
            |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
        let office = TimeWindow {
            days: vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
            start: "08:00".into(),
            end: "18:00".into(),
            outside: false,
        };
        // 2026-12-07 is a Monday.
        assert!(office.inside(at("2026-12-07 08:00")));
        assert!(!office.inside(at("2026-12-07 18:00")));
        assert!(!office.inside(at("2026-12-06 12:00")));
        let night = TimeWindow {
            days: vec![Day::Fri],
            start: "22:00".into(),
            end: "06:00".into(),
            outside: false,
        };
        assert!(night.inside(at("2026-12-11 23:30")));
        assert!(night.inside(at("2026-12-12 05:59")));
        assert!(!night.inside(at("2026-12-12 06:00")));
        assert!(!night.inside(at("2026-12-10 23:30")));
        assert_eq!(minutes("24:00"), Some(1440));
        assert_eq!(minutes("24:01"), None);
        assert_eq!(minutes("7:5"), None);
    }

    #[test]
    fn targets() {
        let id = Id::generate();
        let t = PolicyTarget::parse(&format!("app:{id}")).expect("target");
        assert!(t.covers(Some(&Resource::App(id.clone()))));
        assert!(!t.covers(None));
        assert!(PolicyTarget::AllApps.covers(Some(&Resource::App(id.clone()))));
        assert!(PolicyTarget::Portal.covers(None));
        assert!(!PolicyTarget::Ldap.covers(Some(&Resource::Radius(id))));
        assert_eq!(PolicyTarget::parse("radius"), Some(PolicyTarget::AllRadius));
        assert_eq!(PolicyTarget::parse("directory:x"), None);
    }
}
