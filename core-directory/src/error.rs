//! The core's error type. Each listener maps it to its protocol in one place.

use crate::policy::PolicyViolation;
use crate::store::StoreError;

/// Why a directory operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// A uniqueness rule would be broken.
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    /// The input breaks a rule of the model.
    #[error("{message}")]
    Invalid {
        field: Option<&'static str>,
        message: String,
    },
    #[error(transparent)]
    PasswordPolicy(#[from] PolicyViolation),
    /// The write named a revision the entry is no longer at (someone else changed it in between).
    #[error(
        "{kind} {id} has changed since revision {expected} (it is at {current}); read it again"
    )]
    PreconditionFailed {
        kind: &'static str,
        id: String,
        expected: u64,
        current: u64,
    },
    /// A SCIM token's scope does not cover this change.
    #[error("{0}")]
    OutOfScope(String),
    /// The acting admin's role does not allow this.
    #[error("your role does not allow {0}")]
    Forbidden(&'static str),
    /// The store does not answer (a shared database that is down or unreachable): reads go on from the
    /// snapshot, changes are refused until it returns.
    #[error("the directory cannot be changed right now: its store does not answer ({0}); reads go on, try the change again later")]
    Unavailable(String),
    /// The master key does not open the directory's secrets.
    #[error("{0}")]
    WrongMasterKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DirectoryError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DirectoryError::Invalid {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        DirectoryError::Conflict {
            field,
            message: message.into(),
        }
    }

    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        DirectoryError::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;
