//! The pages people reach from mail, and "Forgot your password?": `/forgot-password` (the same answer whatever
//! is typed; the work happens after the answer, so its timing says nothing either), `/activate` and
//! `/reset-password` (the single-use link's form: the password rules first, then the new password). The core
//! decides everything; these pages only carry the form.

use super::PageForm;
use super::{ip, Idp};
use crate::pages::{self, LinkPage};
use axum::extract::{ConnectInfo, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use core_directory::directory::LinkPurpose;
use core_directory::DirectoryError;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub(super) struct ForgotForm {
    #[serde(default)]
    username: String,
}

pub(super) async fn forgot_page() -> Response {
    pages::forgot_form(None)
}

pub(super) async fn forgot_post(
    AxState(idp): AxState<Idp>,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<ForgotForm>,
) -> Response {
    let typed = f.username.trim().to_string();
    if typed.is_empty() || typed.len() > 320 {
        return pages::forgot_form(Some("Enter your user name or e-mail address."));
    }
    if !idp.dir.mail_settings().enabled {
        return pages::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Password reset unavailable",
            "Resetting a password by e-mail is not set up here. Ask your administrator to set a new password.",
        );
    }
    // Answer first: whether an account matched, and what was sent, never shows in the answer or its timing.
    let dir = idp.dir.clone();
    let source = ip(&c);
    tokio::spawn(async move { dir.forgot_password(&typed, source).await });
    let minutes = idp.dir.mail_settings().reset_minutes;
    pages::info_page(
        "Check your e-mail",
        &format!(
            "If the name or address belongs to an account, a link to choose a new password is on its way to the \
             account's e-mail address. It works once, for {minutes} minutes."
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub(super) struct LinkForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm: String,
}

fn purpose(kind: LinkPage) -> LinkPurpose {
    match kind {
        LinkPage::Activate => LinkPurpose::Activate,
        LinkPage::Reset => LinkPurpose::Reset,
    }
}

fn form(idp: &Idp, kind: LinkPage, token: &str, error: Option<&str>) -> Response {
    match idp.dir.link_user(token, purpose(kind)) {
        Some(user) => {
            let snap = idp.dir.snapshot();
            let org = snap.org.as_ref().map_or("Stratus", |o| o.name.as_str());
            pages::link_password_form(
                kind,
                token,
                org,
                &user.username,
                &core_directory::policy::rules(&snap.policy),
                error,
            )
        }
        None => pages::link_invalid(kind),
    }
}

async fn link_get(idp: Idp, kind: LinkPage, q: TokenQuery) -> Response {
    form(&idp, kind, q.token.trim(), None)
}

async fn link_post(idp: Idp, kind: LinkPage, c: ConnectInfo<SocketAddr>, f: LinkForm) -> Response {
    let token = f.token.trim();
    if idp.dir.link_user(token, purpose(kind)).is_none() {
        return pages::link_invalid(kind);
    }
    if f.new_password != f.confirm {
        return form(&idp, kind, token, Some("The two passwords differ."));
    }
    match idp
        .dir
        .complete_link(token, purpose(kind), &f.new_password, ip(&c))
        .await
    {
        Ok(user) => {
            let mfa_next = user.mfa.required && user.mfa.enrolment_deadline.is_some();
            pages::link_done(kind, &user.username, mfa_next)
        }
        Err(DirectoryError::Invalid {
            field: Some("token"),
            ..
        }) => pages::link_invalid(kind),
        Err(e @ (DirectoryError::PasswordPolicy(_) | DirectoryError::Invalid { .. })) => {
            form(&idp, kind, token, Some(&e.to_string()))
        }
        Err(e) => super::internal(&e.to_string()),
    }
}

pub(super) async fn activate_page(
    AxState(idp): AxState<Idp>,
    Query(q): Query<TokenQuery>,
) -> Response {
    link_get(idp, LinkPage::Activate, q).await
}

pub(super) async fn activate_post(
    AxState(idp): AxState<Idp>,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<LinkForm>,
) -> Response {
    link_post(idp, LinkPage::Activate, c, f).await
}

pub(super) async fn reset_page(
    AxState(idp): AxState<Idp>,
    Query(q): Query<TokenQuery>,
) -> Response {
    link_get(idp, LinkPage::Reset, q).await
}

pub(super) async fn reset_post(
    AxState(idp): AxState<Idp>,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<LinkForm>,
) -> Response {
    link_post(idp, LinkPage::Reset, c, f).await
}
