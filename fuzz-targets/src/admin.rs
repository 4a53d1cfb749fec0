//! The admin API's JSON bodies: the first octet picks the body type of one endpoint, the rest goes through the
//! extractor's decoder (`axum::Json::from_bytes`: syntax, then the type with its `deny_unknown_fields`).

use admin_api::{admins, portal, users};
use core_directory::directory::ScimConnectorInput;
use core_directory::model::{PasswordPolicy, ScimScope};
use core_directory::views::{
    AdminPatch, AppPatch, GroupPatch, NewAdmin, NewApp, NewGroup, NewIdpKey, NewRadiusServer,
    NewUser, OrgPatch, RadiusServerPatch, UserPatch,
};
use serde::de::DeserializeOwned;

fn body<T: DeserializeOwned>(data: &[u8]) {
    let _ = axum::Json::<T>::from_bytes(data);
}

/// Every body type the API accepts, in a fixed order (the selector is the first octet modulo its length).
const BODIES: &[fn(&[u8])] = &[
    body::<NewUser>,
    body::<UserPatch>,
    body::<NewGroup>,
    body::<GroupPatch>,
    body::<NewRadiusServer>,
    body::<RadiusServerPatch>,
    body::<NewApp>,
    body::<AppPatch>,
    body::<NewIdpKey>,
    body::<ScimConnectorInput>,
    body::<PasswordPolicy>,
    body::<OrgPatch>,
    body::<NewAdmin>,
    body::<AdminPatch>,
    body::<ScimScope>,
    body::<admins::LoginBody>,
    body::<admins::NewKeyBody>,
    body::<admins::NewScimTokenBody>,
    body::<users::CodeBody>,
    body::<users::PasswordBody>,
    body::<portal::PortalLogin>,
    body::<portal::PasswordChange>,
];

pub fn admin_json(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    BODIES[usize::from(selector) % BODIES.len()](rest);
}
