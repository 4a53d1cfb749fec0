//! # scim-server
//!
//! Will own SCIM 2.0: the service-provider endpoint (`/scim/v2/Users`, `/Groups`, discovery, filters, PATCH,
//! bulk) that HR systems and IdPs provision into, and the outbound connectors that push users and groups to apps
//! from a persistent outbox. Every change is a call on `core_directory::Directory`. It must not depend on any
//! other listener.
//!
//! Not built yet: the crate exists so the workspace has its final shape.
