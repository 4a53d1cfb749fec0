//! # saml-idp
//!
//! Will own the SAML 2.0 identity provider: per-app keys and metadata, SP- and IdP-initiated SSO over
//! HTTP-Redirect and HTTP-POST, signed (and optionally encrypted) assertions, SLO, the login page with its TOTP
//! step, and the user portal pages. Logins go through `core_directory::Directory::authenticate` with service
//! `sso`. It must not depend on any other listener.
//!
//! Not built yet: the crate exists so the workspace has its final shape.
