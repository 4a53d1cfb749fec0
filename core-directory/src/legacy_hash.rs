//! Password hashes brought from other directories, kept until the user's next successful login re-hashes the
//! password to argon2id.
//!
//! Stored with their RFC 2307 scheme prefix, as OpenLDAP writes `userPassword`:
//! - `{SSHA}`, `{SSHA256}`, `{SSHA512}`: base64 of digest(password ‖ salt) ‖ salt; `{SHA}`, `{SHA256}`,
//!   `{SHA512}` are the unsalted forms.
//! - `{CRYPT}` with a crypt(3) string: `$1$` (MD5-crypt), `$5$`/`$6$` (SHA-crypt), `$2a$`/`$2b$`/`$2y$`
//!   (bcrypt), `$y$` (yescrypt). The traditional 13-character DES crypt is not taken.
//! - `{ARGON2}` with an argon2 PHC string (OpenLDAP's argon2 module).
//! - `{PBKDF2-SHA256}<iterations>$<salt>$<hash>` in the adapted base64 of OpenLDAP's pbkdf2 module.
//! - `{NT}`: the user came with a Samba NT hash only; the hash itself is sealed in the user's `nt_hash`, and the
//!   core checks it there.
//!
//! Only this module and `password.rs` read these strings. Verification is constant-time in the digest
//! comparison and bounded in cost (iteration counts and memory are capped), since an imported hash may be
//! hostile.

use crate::crypto::constant_time_eq;
use aws_lc_rs::digest;
use data_encoding::{Encoding, BASE64};

/// What a stored hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ssha,
    Ssha256,
    Ssha512,
    Sha,
    Sha256,
    Sha512,
    Md5Crypt,
    Sha256Crypt,
    Sha512Crypt,
    Bcrypt,
    Yescrypt,
    Argon2,
    Pbkdf2Sha256,
    Nt,
}

impl Scheme {
    /// The name events and the admin API use.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ssha => "SSHA",
            Scheme::Ssha256 => "SSHA256",
            Scheme::Ssha512 => "SSHA512",
            Scheme::Sha => "SHA",
            Scheme::Sha256 => "SHA256",
            Scheme::Sha512 => "SHA512",
            Scheme::Md5Crypt => "CRYPT-MD5",
            Scheme::Sha256Crypt => "CRYPT-SHA256",
            Scheme::Sha512Crypt => "CRYPT-SHA512",
            Scheme::Bcrypt => "CRYPT-BCRYPT",
            Scheme::Yescrypt => "CRYPT-YESCRYPT",
            Scheme::Argon2 => "ARGON2",
            Scheme::Pbkdf2Sha256 => "PBKDF2-SHA256",
            Scheme::Nt => "NT",
        }
    }
}

/// The marker stored as the password hash of a user who came with an NT hash only.
pub const NT_ONLY: &str = "{NT}";

/// The most PBKDF2 iterations an imported hash may ask for.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The highest bcrypt cost an imported hash may ask for (2^16 rounds).
const MAX_BCRYPT_COST: u32 = 16;
/// The most SHA-crypt rounds an imported hash may ask for.
const MAX_SHA_CRYPT_ROUNDS: u64 = 5_000_000;

/// OpenLDAP's pbkdf2 module writes base64 with '.' for '+' and no padding.
fn ab64() -> Encoding {
    let mut spec = data_encoding::Specification::new();
    spec.symbols
        .push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./");
    spec.encoding().unwrap_or_else(|_| BASE64.clone())
}

fn split_prefix(hash: &str) -> Option<(String, &str)> {
    let rest = hash.strip_prefix('{')?;
    let (scheme, value) = rest.split_once('}')?;
    Some((scheme.to_ascii_uppercase(), value))
}

/// The scheme of a stored hash; `None` for Stratus's own argon2id PHC strings (and anything unknown).
pub fn scheme(hash: &str) -> Option<Scheme> {
    let (prefix, value) = split_prefix(hash)?;
    Some(match prefix.as_str() {
        "SSHA" => Scheme::Ssha,
        "SSHA256" => Scheme::Ssha256,
        "SSHA512" => Scheme::Ssha512,
        "SHA" => Scheme::Sha,
        "SHA256" => Scheme::Sha256,
        "SHA512" => Scheme::Sha512,
        "ARGON2" => Scheme::Argon2,
        "PBKDF2-SHA256" => Scheme::Pbkdf2Sha256,
        "NT" => Scheme::Nt,
        "CRYPT" => match value.get(..3) {
            Some("$1$") => Scheme::Md5Crypt,
            Some("$5$") => Scheme::Sha256Crypt,
            Some("$6$") => Scheme::Sha512Crypt,
            Some("$2a" | "$2b" | "$2y") => Scheme::Bcrypt,
            Some("$y$") => Scheme::Yescrypt,
            _ => return None,
        },
        _ => return None,
    })
}

/// Check an imported `userPassword`-style value and return what to store. Accepts the schemes above (prefix
/// in any case) and a bare crypt(3) string (`$6$…`, as `/etc/shadow` holds it) or argon2 PHC string.
pub fn import(value: &str) -> Result<String, String> {
    let value = value.trim();
    let stored = if value.starts_with("$argon2") {
        format!("{{ARGON2}}{value}")
    } else if value.starts_with('$') {
        format!("{{CRYPT}}{value}")
    } else if let Some((prefix, rest)) = split_prefix(value) {
        format!("{{{prefix}}}{rest}")
    } else {
        return Err(
            "a password hash must start with a scheme such as {SSHA}, {CRYPT}$6$ or {ARGON2}"
                .into(),
        );
    };
    let Some(s) = scheme(&stored) else {
        return Err(format!(
            "the password hash scheme of `{}` is not supported (SSHA, SSHA256, SSHA512, SHA, CRYPT with $1$ $5$ $6$ \
             $2b$ $y$, ARGON2, PBKDF2-SHA256)",
            value.chars().take(12).collect::<String>()
        ));
    };
    if s == Scheme::Nt {
        return Err(
            "an NT hash is imported as the NT hash (sambaNTPassword), not as a password hash"
                .into(),
        );
    }
    if !well_formed(&stored) {
        return Err(format!("the {} password hash is malformed", s.name()));
    }
    Ok(stored)
}

/// Whether a stored hash has the shape its scheme needs (so an import refuses it instead of a login failing).
fn well_formed(stored: &str) -> bool {
    let Some((_, value)) = split_prefix(stored) else {
        return false;
    };
    match scheme(stored) {
        Some(
            Scheme::Ssha
            | Scheme::Ssha256
            | Scheme::Ssha512
            | Scheme::Sha
            | Scheme::Sha256
            | Scheme::Sha512,
        ) => salted_digest(stored).is_some(),
        Some(Scheme::Pbkdf2Sha256) => pbkdf2_parts(value).is_some(),
        Some(Scheme::Argon2) => argon2::PasswordHash::new(value).is_ok(),
        Some(Scheme::Md5Crypt) => md5_crypt_parts(value).is_some(),
        Some(Scheme::Sha256Crypt | Scheme::Sha512Crypt | Scheme::Bcrypt | Scheme::Yescrypt) => {
            value.split('$').count() >= 4
        }
        Some(Scheme::Nt) | None => false,
    }
}

/// (algorithm, expected digest, salt) of a `{SSHA*}`/`{SHA*}` value.
fn salted_digest(stored: &str) -> Option<(&'static digest::Algorithm, Vec<u8>, Vec<u8>)> {
    let (_, value) = split_prefix(stored)?;
    let (alg, salted): (&'static digest::Algorithm, bool) = match scheme(stored)? {
        Scheme::Ssha => (&digest::SHA1_FOR_LEGACY_USE_ONLY, true),
        Scheme::Ssha256 => (&digest::SHA256, true),
        Scheme::Ssha512 => (&digest::SHA512, true),
        Scheme::Sha => (&digest::SHA1_FOR_LEGACY_USE_ONLY, false),
        Scheme::Sha256 => (&digest::SHA256, false),
        Scheme::Sha512 => (&digest::SHA512, false),
        _ => return None,
    };
    let raw = BASE64.decode(value.trim().as_bytes()).ok()?;
    let n = alg.output_len();
    if raw.len() < n || (salted && raw.len() == n) || (!salted && raw.len() != n) {
        return None;
    }
    let (d, salt) = raw.split_at(n);
    Some((alg, d.to_vec(), salt.to_vec()))
}

fn pbkdf2_parts(value: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let mut parts = value.split('$');
    let iterations: u32 = parts.next()?.parse().ok()?;
    let enc = ab64();
    let salt = enc.decode(parts.next()?.as_bytes()).ok()?;
    let hash = enc.decode(parts.next()?.as_bytes()).ok()?;
    if parts.next().is_some()
        || iterations == 0
        || iterations > MAX_PBKDF2_ITERATIONS
        || salt.is_empty()
        || hash.is_empty()
    {
        return None;
    }
    Some((iterations, salt, hash))
}

/// Whether `password` matches a stored legacy hash. `{NT}` never matches here (the core checks the sealed NT
/// hash itself); argon2 hashes are checked by the caller's argon2 verifier (`argon2_verify`).
pub fn verify(
    stored: &str,
    password: &str,
    argon2_verify: impl FnOnce(&str, &str) -> bool,
) -> bool {
    let Some((_, value)) = split_prefix(stored) else {
        return false;
    };
    let pw = password.as_bytes();
    match scheme(stored) {
        Some(
            Scheme::Ssha
            | Scheme::Ssha256
            | Scheme::Ssha512
            | Scheme::Sha
            | Scheme::Sha256
            | Scheme::Sha512,
        ) => {
            let Some((alg, expected, salt)) = salted_digest(stored) else {
                return false;
            };
            let mut ctx = digest::Context::new(alg);
            ctx.update(pw);
            ctx.update(&salt);
            constant_time_eq(ctx.finish().as_ref(), &expected)
        }
        Some(Scheme::Pbkdf2Sha256) => {
            let Some((iterations, salt, hash)) = pbkdf2_parts(value) else {
                return false;
            };
            let Some(iterations) = std::num::NonZeroU32::new(iterations) else {
                return false;
            };
            aws_lc_rs::pbkdf2::verify(
                aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
                iterations,
                &salt,
                pw,
                &hash,
            )
            .is_ok()
        }
        Some(Scheme::Argon2) => argon2_verify(value, password),
        Some(Scheme::Md5Crypt) => md5_crypt_verify(value, pw),
        Some(Scheme::Sha256Crypt | Scheme::Sha512Crypt) => {
            use sha_crypt::PasswordVerifier;
            if sha_crypt_rounds(value) > MAX_SHA_CRYPT_ROUNDS {
                return false;
            }
            sha_crypt::ShaCrypt::default()
                .verify_password(pw, value)
                .is_ok()
        }
        Some(Scheme::Bcrypt) => {
            let cost: u32 = value
                .get(4..6)
                .and_then(|c| c.parse().ok())
                .unwrap_or(u32::MAX);
            cost <= MAX_BCRYPT_COST && bcrypt::verify(pw, value).unwrap_or(false)
        }
        Some(Scheme::Yescrypt) => {
            use yescrypt::PasswordVerifier;
            yescrypt::Yescrypt::default()
                .verify_password(pw, value)
                .is_ok()
        }
        Some(Scheme::Nt) | None => false,
    }
}

fn sha_crypt_rounds(value: &str) -> u64 {
    value
        .split('$')
        .nth(2)
        .and_then(|p| p.strip_prefix("rounds="))
        .map_or(5000, |r| r.parse().unwrap_or(u64::MAX))
}

/// `$1$<salt>$<hash>`: (salt, hash) when well formed.
fn md5_crypt_parts(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix("$1$")?;
    let (salt, hash) = rest.split_once('$')?;
    (salt.len() <= 8 && hash.len() == 22).then_some((salt, hash))
}

/// MD5-crypt (the FreeBSD `$1$` scheme), which no maintained crate verifies: 1000 rounds of MD5 over the
/// password, salt and magic, encoded in crypt's base64 order.
fn md5_crypt_verify(value: &str, pw: &[u8]) -> bool {
    use md5::{Digest, Md5};
    let Some((salt, expected)) = md5_crypt_parts(value) else {
        return false;
    };
    let salt = salt.as_bytes();
    let alt = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(b"$1$")
        .chain_update(salt);
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut bits = pw.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        bits >>= 1;
    }
    let mut fin = ctx.finalize();
    for i in 0..1000 {
        let mut c = Md5::new();
        if i & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if i % 3 != 0 {
            c.update(salt);
        }
        if i % 7 != 0 {
            c.update(pw);
        }
        if i & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize();
    }
    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(22);
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize]);
            v >>= 6;
        }
    };
    let f = |i: usize| u32::from(fin[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    put(f(11), 2);
    constant_time_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stored: &str, pw: &str) -> bool {
        verify(stored, pw, |_, _| false)
    }

    #[test]
    fn schemes_are_recognised_and_argon2id_phc_is_not_legacy() {
        assert_eq!(scheme("{ssha}abc"), Some(Scheme::Ssha));
        assert_eq!(scheme("{CRYPT}$6$salt$x"), Some(Scheme::Sha512Crypt));
        assert_eq!(scheme("{CRYPT}$2b$10$x"), Some(Scheme::Bcrypt));
        assert_eq!(scheme("{CRYPT}abcdefghijklm"), None);
        assert_eq!(scheme("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), None);
        assert_eq!(import("$6$abc$def").unwrap(), "{CRYPT}$6$abc$def");
        assert!(import("{CRYPT}abcdefghijklm").is_err());
        assert!(import("plain-text").is_err());
        assert!(import("{SSHA}not base64!").is_err());
        assert!(import("{NT}").is_err());
    }

    // Vectors made with slappasswd (OpenLDAP 2.5), `openssl passwd -1/-5/-6`, libxcrypt's crypt(3) (bcrypt,
    // yescrypt) and Python's hashlib (SSHA256/512, PBKDF2 in OpenLDAP's format), each for the password "secret".
    #[test]
    fn hashes_from_other_tools_verify() {
        for stored in [
            "{SSHA}obE2/ZPI2pDqToyE/gUxALAZ8L9OhwjZ",
            "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
            "{SSHA256}HqGBcI28Hlhgup2Hs77eO3/9e4hP41JrqvhQUmzTSOYwMTIz",
            "{SSHA512}8WK763ECVvHAYhcCHRORpcLLkuvA8FgFh6eVCD4IokTOs0+39B8E86BFp03MiIz3+aVss3nL2yiR92lSIN+5fjAxMjM=",
            "{CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
            "{CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "{CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
            "{CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
            "{CRYPT}$y$j9T$saltsaltsaltsalt$.Zt5W26jjocuW0wIHGgB6AJelofw6GEpOypHGyow2y5",
            "{PBKDF2-SHA256}1000$c2FsdHNhbHRzYWx0c2FsdA$dClvKSmj66n6MdMWNv3Go4mvH1Ym2WIGiJvquqa.mfE",
        ] {
            assert_eq!(import(stored).as_deref(), Ok(stored), "{stored}");
            assert!(check(stored, "secret"), "{stored}");
            assert!(!check(stored, "Secret"), "{stored}");
        }
    }

    #[test]
    fn hostile_costs_never_verify() {
        assert!(!check(
            "{CRYPT}$2b$31$Fd3ovHrjqdcZ5n1HyXaLV.QOD6QrHFmTZbYhxyOyOmhtBxTeOZNNy",
            "secret"
        ));
        assert!(import("{PBKDF2-SHA256}4000000000$c2FsdA$c2FsdA").is_err());
        assert!(!check("{CRYPT}$6$rounds=999999999$salt$x", "secret"));
    }
}
