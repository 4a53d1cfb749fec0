//! The RADIUS target: a datagram (or a RadSec record, the same octets) through the packet codec, then every
//! attribute reading a handler does before it asks the core: authenticators, text and integer attributes,
//! vendor-specific attributes, User-Password and salted values, MS-CHAPv2, the realm rules, the EAP-Message.

use core_directory::model::{RealmMode, RealmRule};
use core_directory::realm;
use radius_server::eap::packet::Eap;
use radius_server::packet::{attr, response_valid, Packet};
use radius_server::{crypt, mschap};

/// The secret every check uses; the radclient seeds in the corpus were made with it.
pub const SECRET: &[u8] = b"testing123";

const MICROSOFT: u32 = 311;

pub fn radius_packet(data: &[u8]) {
    // A reply to one of our Disconnect-Requests is judged on the raw octets first.
    let _ = response_valid(data, SECRET, &[0; 16]);
    let Ok(p) = Packet::decode(data) else {
        return;
    };
    let _ = p.code.as_u8();
    let _ = p.message_authenticator_valid(SECRET, false);
    let _ = p.message_authenticator_valid(SECRET, true);
    let _ = p.accounting_authenticator_valid(SECRET);
    for a in &p.attributes {
        let _ = p.text(a.typ);
        let _ = p.integer(a.typ);
    }
    for vendor_type in [1, 2, 11, 16, 17, 25, 26] {
        let _ = p.vendor(MICROSOFT, vendor_type);
    }
    if let Some(hidden) = p.get(attr::USER_PASSWORD) {
        let _ = crypt::unhide_user_password(SECRET, &p.authenticator, hidden);
    }
    for a in &p.attributes {
        let _ = crypt::salt_decrypt(SECRET, &p.authenticator, &a.value);
    }
    let name = p.text(attr::USER_NAME).unwrap_or_default();
    let _ = realm::split(&name);
    for mode in [RealmMode::Keep, RealmMode::Strip, RealmMode::Require] {
        let rule = RealmRule {
            mode,
            realms: vec!["example.com".into()],
        };
        let _ = rule.user_name(&name);
    }
    if mschap::present(&p) {
        let _ = mschap::ident(&p);
        let _ = mschap::read(&p, &name);
    }
    if let Some(Ok(eap)) = Eap::from_radius(&p) {
        crate::eap::eap(&eap.encode());
    }
}
