//! Password policy checks that need no hashing (length, complexity, username). The history rule needs argon2id
//! and is checked by the directory after these pass.

use crate::model::PasswordPolicy;
use serde::Serialize;

/// Longest password accepted (bytes). RADIUS PAP carries at most 128 octets; longer passphrases would be
/// unusable there, and an upper bound keeps argon2id input sizes sane.
pub const MAX_PASSWORD_BYTES: usize = 128;

/// A broken password rule, named so clients can show the right message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct PolicyViolation {
    /// `min_length`, `max_length`, `lowercase`, `uppercase`, `digit`, `special`, `username`, `history`.
    pub rule: &'static str,
    pub message: String,
}

impl PolicyViolation {
    fn new(rule: &'static str, message: impl Into<String>) -> Self {
        PolicyViolation {
            rule,
            message: message.into(),
        }
    }
}

/// One complexity rule: required?, the character test, the rule name, and how the message names the class.
type CharClassRule = (bool, fn(char) -> bool, &'static str, &'static str);

/// Check every rule except history.
pub fn check_password(
    policy: &PasswordPolicy,
    username: &str,
    password: &str,
) -> Result<(), PolicyViolation> {
    let chars = password.chars().count();
    if chars < usize::from(policy.min_length) {
        return Err(PolicyViolation::new(
            "min_length",
            format!(
                "password must be at least {} characters long",
                policy.min_length
            ),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyViolation::new(
            "max_length",
            format!("password must be at most {MAX_PASSWORD_BYTES} bytes long"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(PolicyViolation::new(
            "characters",
            "password must not contain control characters",
        ));
    }
    let classes: [CharClassRule; 4] = [
        (
            policy.require_lowercase,
            |c| c.is_lowercase(),
            "lowercase",
            "a lowercase letter",
        ),
        (
            policy.require_uppercase,
            |c| c.is_uppercase(),
            "uppercase",
            "an uppercase letter",
        ),
        (
            policy.require_digit,
            |c| c.is_ascii_digit(),
            "digit",
            "a number",
        ),
        (
            policy.require_special,
            |c| !c.is_alphanumeric() && !c.is_whitespace(),
            "special",
            "a special character",
        ),
    ];
    for (required, test, rule, what) in classes {
        if required && !password.chars().any(test) {
            return Err(PolicyViolation::new(
                rule,
                format!("password must include {what}"),
            ));
        }
    }
    if policy.disallow_username
        && !username.is_empty()
        && password.to_lowercase().contains(&username.to_lowercase())
    {
        return Err(PolicyViolation::new(
            "username",
            "password may not contain the username",
        ));
    }
    Ok(())
}

/// The violation for a password found in the history.
/// The rules of a policy as sentences, for the pages that ask for a new password (shown before typing).
pub fn rules(policy: &PasswordPolicy) -> Vec<String> {
    let mut out = vec![format!("At least {} characters.", policy.min_length)];
    let mut kinds = Vec::new();
    if policy.require_lowercase {
        kinds.push("a lowercase letter");
    }
    if policy.require_uppercase {
        kinds.push("an uppercase letter");
    }
    if policy.require_digit {
        kinds.push("a digit");
    }
    if policy.require_special {
        kinds.push("a symbol");
    }
    if !kinds.is_empty() {
        out.push(format!("At least {}.", join_and(&kinds)));
    }
    if policy.disallow_username {
        out.push("Not containing your user name.".into());
    }
    if policy.history > 0 {
        out.push(format!(
            "Not one of your last {} passwords.",
            policy.history
        ));
    }
    out
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

pub fn history_violation(policy: &PasswordPolicy) -> PolicyViolation {
    PolicyViolation::new(
        "history",
        format!(
            "password must not match any of the {} most recent passwords",
            policy.history
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 11,
            require_lowercase: true,
            require_uppercase: true,
            require_digit: true,
            require_special: true,
            disallow_username: true,
            ..PasswordPolicy::default()
        }
    }

    #[test]
    fn each_rule_is_named_when_broken() {
        let p = strict();
        let rule = |pw: &str| check_password(&p, "alice", pw).unwrap_err().rule;
        assert_eq!(rule("Sh0rt!"), "min_length");
        assert_eq!(rule("NOLOWERCASE1!"), "lowercase");
        assert_eq!(rule("nouppercase1!"), "uppercase");
        assert_eq!(rule("NoDigitsHere!"), "digit");
        assert_eq!(rule("NoSpecial123"), "special");
        assert_eq!(rule("xxAlice123!yy"), "username");
        assert_eq!(rule(&"Aa1!".repeat(40)), "max_length");
        assert!(check_password(&p, "alice", "Correct-Horse-9").is_ok());
    }

    #[test]
    fn messages_name_the_rule() {
        let err = check_password(&strict(), "bob", "short").unwrap_err();
        assert_eq!(err.message, "password must be at least 11 characters long");
    }
}
