//! Replacing an expired password during a login (`/login/password`): the new password goes through the core's
//! self-service change, then the login starts again at the password step.

use super::login::{app_name, expired_login, posted_login, render_stage};
use super::PageForm;
use super::{ip, Idp};
use crate::pages;
use crate::sessions::Stage;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use core_directory::Service;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub(super) struct NewPasswordForm {
    login: String,
    csrf: String,
    new_password: String,
    confirm: String,
}

pub(super) async fn login_new_password(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<NewPasswordForm>,
) -> Response {
    let Some(mut login) = posted_login(&idp, &headers, &f.login, &f.csrf) else {
        return expired_login();
    };
    let Stage::NewPassword { user } = login.stage.clone() else {
        return render_stage(&idp, &f.login, &login, None);
    };
    if f.new_password != f.confirm {
        return render_stage(&idp, &f.login, &login, Some("The two passwords differ."));
    }
    match idp
        .dir
        .change_own_password(&user, &f.new_password, Service::Portal, ip(&c))
        .await
    {
        Ok(_) => {
            login.stage = Stage::Password;
            idp.state.update_login(&f.login, login.clone());
            pages::login_after_new_password(
                &f.login,
                &login.csrf,
                app_name(&idp, &login).as_deref(),
                &login.username,
            )
        }
        Err(e) => render_stage(&idp, &f.login, &login, Some(&e.to_string())),
    }
}
