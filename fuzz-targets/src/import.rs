//! Import targets: the user CSV an admin uploads (through the console or the API) with the checks each row's
//! optional columns get before a user is made, and LDIF.

use core_directory::csv::{parse_user_csv, DEFAULT_MAX_LINE_BYTES};

pub fn csv_import(data: &[u8]) {
    let Ok(rows) = parse_user_csv(data, DEFAULT_MAX_LINE_BYTES) else {
        return;
    };
    for row in rows.into_iter().flatten() {
        if let Some(h) = &row.password_hash {
            let _ = core_directory::legacy_hash::import(h);
        }
        for n in [&row.uid_number, &row.gid_number].into_iter().flatten() {
            let _ = n.parse::<u32>();
        }
    }
}

pub fn ldif_import(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for entry in core_directory::ldif::parse(text).into_iter().flatten() {
        for attr in ["uid", "cn"] {
            let _ = core_directory::ldif::first_rdn_value(&entry.dn, &[attr]);
        }
    }
}
