//! `explain`: what the authentication path would decide for a user, a resource, a source address and a time, step
//! by step, assuming the right password. It runs the same checks the path runs (`auth.rs`: the state and lock
//! check, [`crate::auth::decide_access`] for expiry, bindings, policies and MFA) on the live snapshot and has no
//! side effects: no event, no counter, no throttle.

use crate::access::{Actor, Permission};
use crate::auth::{decide_access, state_refusal, AccessChecks, DenyReason, MfaNeed};
use crate::conditional::{PolicyHit, PolicyTrace};
use crate::directory::Directory;
use crate::error::Result;
use crate::model::{Resource, User};
use crate::snapshot::Snapshot;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

/// One step of the path.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExplainStep {
    /// `user`, `state`, `lock`, `password`, `binding`, `policies`, `mfa`.
    pub step: String,
    pub passed: bool,
    pub detail: String,
}

/// What `explain` collects while the path runs.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub steps: Vec<ExplainStep>,
    pub policies: Vec<PolicyTrace>,
}

impl Trace {
    pub fn step(&mut self, step: &str, passed: bool, detail: impl Into<String>) {
        self.steps.push(ExplainStep {
            step: step.to_string(),
            passed,
            detail: detail.into(),
        });
    }
}

/// The outcome in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExplainDecision {
    /// In with the password alone.
    Allow,
    /// In once a TOTP code (or a recovery code) is given.
    RequireMfa,
    Deny,
}

/// The answer to `explain`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    pub user: String,
    /// `portal`, `ldap`, `radius:{id}` or `app:{id}`.
    pub resource: String,
    pub resource_name: String,
    pub source: Option<String>,
    pub at: DateTime<Utc>,
    pub steps: Vec<ExplainStep>,
    /// Every policy in evaluation order, with each condition.
    pub policies: Vec<PolicyTrace>,
    pub decision: ExplainDecision,
    pub reason: Option<DenyReason>,
    /// The enforced policy that decided, if one did.
    pub policy: Option<PolicyHit>,
    /// Report-only policies that matched, with what they would have done.
    pub report_only: Vec<PolicyHit>,
    /// The final answer in one sentence.
    pub summary: String,
}

/// What `explain` is asked.
#[derive(Debug, Clone)]
pub struct ExplainQuery {
    /// A user name, login name or e-mail address.
    pub user: String,
    /// `None`: the user portal.
    pub resource: Option<Resource>,
    pub source: Option<IpAddr>,
    pub at: Option<DateTime<Utc>>,
}

/// A resource as people name it.
pub fn resource_name(snap: &Snapshot, resource: Option<&Resource>) -> String {
    match resource {
        None => "the user portal".to_string(),
        Some(Resource::Ldap) => "LDAP".to_string(),
        Some(Resource::App(id)) => snap
            .apps
            .get(id)
            .map_or_else(|| format!("app {id}"), |a| format!("the app {}", a.name)),
        Some(Resource::Radius(id)) => snap.radius_servers.get(id).map_or_else(
            || format!("RADIUS profile {id}"),
            |r| format!("the RADIUS profile {}", r.name),
        ),
        Some(Resource::Directory(id)) => snap.external_directories.get(id).map_or_else(
            || format!("directory {id}"),
            |d| format!("the directory {}", d.name),
        ),
    }
}

impl Directory {
    /// Explain what the authentication path would decide (see the module's doc).
    pub fn explain(&self, actor: &Actor, q: ExplainQuery) -> Result<Explanation> {
        actor.require(Permission::Read)?;
        let snap = self.snapshot();
        let at = q.at.unwrap_or_else(Utc::now);
        let mut trace = Trace::default();
        let name = self.login_name(&q.user);
        let user = snap.user_by_login_name(&name).cloned();
        let mut out = Explanation {
            user: q.user.clone(),
            resource: q
                .resource
                .as_ref()
                .map_or_else(|| "portal".to_string(), ToString::to_string),
            resource_name: resource_name(&snap, q.resource.as_ref()),
            source: q.source.map(|ip| ip.to_canonical().to_string()),
            at,
            steps: Vec::new(),
            policies: Vec::new(),
            decision: ExplainDecision::Deny,
            reason: None,
            policy: None,
            report_only: Vec::new(),
            summary: String::new(),
        };
        let decision = match &user {
            None => {
                trace.step(
                    "user",
                    false,
                    format!("no user is named `{}`", q.user.trim()),
                );
                Err(DenyReason::UnknownUser)
            }
            Some(u) => {
                trace.step("user", true, format!("{} ({})", u.username, u.id));
                self.explain_user(&snap, u, &q, at, &mut trace, &mut out)
            }
        };
        out.steps = trace.steps;
        out.policies = trace.policies;
        let who = user
            .as_ref()
            .map_or_else(|| q.user.trim().to_string(), |u| u.username.clone());
        let from = out
            .source
            .as_ref()
            .map_or_else(String::new, |s| format!(" from {s}"));
        let by = |p: &Option<PolicyHit>| {
            p.as_ref()
                .map_or_else(String::new, |p| format!(" (policy \"{}\")", p.name))
        };
        match decision {
            Ok(need) => {
                out.decision = need;
                out.summary = match need {
                    ExplainDecision::RequireMfa => format!(
                        "{who} may reach {}{from} with the right password and a verification code{}.",
                        out.resource_name,
                        by(&out.policy)
                    ),
                    _ => format!(
                        "{who} may reach {}{from} with the right password{}.",
                        out.resource_name,
                        by(&out.policy)
                    ),
                };
            }
            Err(reason) => {
                out.decision = ExplainDecision::Deny;
                out.reason = Some(reason);
                out.summary = format!(
                    "{who} is refused {}{from}: {}{}.",
                    out.resource_name,
                    reason.describe(),
                    by(&out.policy)
                );
            }
        }
        Ok(out)
    }

    fn explain_user(
        &self,
        snap: &Snapshot,
        user: &User,
        q: &ExplainQuery,
        at: DateTime<Utc>,
        trace: &mut Trace,
        out: &mut Explanation,
    ) -> std::result::Result<ExplainDecision, DenyReason> {
        if let Some(reason) = state_refusal(user, at) {
            trace.step(
                if reason == DenyReason::Locked {
                    "lock"
                } else {
                    "state"
                },
                false,
                reason.describe(),
            );
            return Err(reason);
        }
        trace.step("state", true, "active, not locked");
        if user.password_hash.is_none() {
            trace.step("password", false, DenyReason::PasswordPending.describe());
            return Err(DenyReason::PasswordPending);
        }
        let checks = AccessChecks {
            resource: q.resource.as_ref(),
            source: q.source,
            at,
            by_certificate: false,
            check_expiry: true,
        };
        match decide_access(snap, user, checks, Some(trace)) {
            Ok(access) => {
                out.policy = access.verdict.decided.clone();
                out.report_only = access.verdict.report_only.clone();
                Ok(match access.need {
                    MfaNeed::Code => ExplainDecision::RequireMfa,
                    _ => ExplainDecision::Allow,
                })
            }
            Err(refusal) => {
                if let Some(v) = refusal.verdict {
                    out.policy = v.decided;
                    out.report_only = v.report_only;
                }
                Err(refusal.reason)
            }
        }
    }
}
