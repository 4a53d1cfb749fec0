//! System tests: the real `stratus` binary on ephemeral loopback ports, in temporary data directories, driven
//! over HTTPS (reqwest), by its own CLI, and with oathtool and faketime as independent tools.

mod api;
mod auth;
mod bad_input;
mod cli;
mod cluster;
mod console;
mod console_mail;
mod console_resources;
mod console_settings;
mod crash;
mod eap;
mod external;
mod harness;
mod hostile;
mod identity;
mod import;
mod integrity;
mod ldap;
mod mail;
mod master_key;
mod mschap;
mod passwords;
mod policies;
mod public_url;
mod radius;
mod saml;
mod scim;
