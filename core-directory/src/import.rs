//! CSV user import: the reference template `firstname,lastname,username,email,password`, with the optional
//! columns `uid_number`, `gid_number`, `login_shell`, `home_directory`, `groups` (existing groups, `;`-separated),
//! `password_hash` (a hash from another directory, see `legacy_hash`) and `state` (active, staged, suspended).
//!
//! A row without a password (or hash) makes a staged user whose password is pending; a row with one makes an
//! active user, the password still checked against the policy; a `state` column overrides both. A row's
//! memberships are written with the user. Each row is written whole or not at all, and every row gets a
//! result. Passwords are hashed in parallel on the hashing pool; rows are then committed in batches so a large
//! file costs few store transactions.

use crate::access::{Actor, Permission};
use crate::csv::{parse_user_csv, CsvResultRow, CsvUserRow, DEFAULT_MAX_LINE_BYTES};
use crate::directory::Directory;
use crate::error::{DirectoryError, Result};
use crate::model::UserState;
use crate::views::NewUser;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// Rows committed per store transaction.
const COMMIT_CHUNK: usize = 256;

/// The result of one CSV row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportRowResult {
    pub line: usize,
    pub firstname: String,
    pub lastname: String,
    pub username: String,
    pub email: String,
    /// `imported` or `failed`.
    pub status: String,
    /// Why the row failed, or the id of the created user.
    pub message: String,
    pub user_id: Option<String>,
}

/// Results of an import.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    pub imported: usize,
    pub failed: usize,
    pub rows: Vec<ImportRowResult>,
}

impl ImportReport {
    /// The downloadable results file.
    pub fn to_csv(&self) -> String {
        let rows: Vec<CsvResultRow> = self
            .rows
            .iter()
            .map(|r| CsvResultRow {
                line: r.line,
                firstname: r.firstname.clone(),
                lastname: r.lastname.clone(),
                email: r.email.clone(),
                username: r.username.clone(),
                result: if r.status == "imported" {
                    "Success: User Imported".to_string()
                } else {
                    format!("Failed: {}", r.message)
                },
            })
            .collect();
        crate::csv::write_results_csv(&rows)
    }
}

fn result_for(row: &CsvUserRow, outcome: std::result::Result<String, String>) -> ImportRowResult {
    let (status, message, user_id) = match outcome {
        Ok(id) => ("imported", "user imported".to_string(), Some(id)),
        Err(m) => ("failed", m, None),
    };
    ImportRowResult {
        line: row.line,
        firstname: row.firstname.clone(),
        lastname: row.lastname.clone(),
        username: row.username.clone(),
        email: row.email.clone(),
        status: status.into(),
        message,
        user_id,
    }
}

/// The new user a CSV row describes, its optional columns checked (the identity was checked before).
fn row_input(row: &CsvUserRow, email: String) -> std::result::Result<NewUser, String> {
    let number = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| {
                t.parse::<u32>()
                    .map_err(|_| format!("{name} `{t}` is not a number"))
            })
            .transpose()
    };
    let state = match row.state.as_deref() {
        None => None,
        Some(t) => Some(match t.to_ascii_lowercase().as_str() {
            "active" => UserState::Active,
            "staged" => UserState::Staged,
            "suspended" => UserState::Suspended,
            _ => {
                return Err(format!(
                    "state `{t}` is not one of active, staged, suspended"
                ))
            }
        }),
    };
    if row.password.is_some() && row.password_hash.is_some() {
        return Err("give a password or a password_hash, not both".into());
    }
    if let Some(h) = &row.password_hash {
        crate::legacy_hash::import(h)?;
    }
    Ok(NewUser {
        username: row.username.clone(),
        email,
        firstname: row.firstname.clone(),
        lastname: row.lastname.clone(),
        state,
        uid_number: number("uid_number", &row.uid_number)?,
        gid_number: number("gid_number", &row.gid_number)?,
        login_shell: row.login_shell.clone(),
        home_directory: row.home_directory.clone(),
        password_hash: row.password_hash.clone(),
        ..NewUser::default()
    })
}

impl Directory {
    /// Import users from CSV. File-level problems (header, encoding) fail the whole upload; everything else is
    /// reported per row.
    pub async fn import_users_csv(
        self: &Arc<Self>,
        actor: &Actor,
        input: &[u8],
    ) -> Result<ImportReport> {
        self.import_users_csv_with_progress(actor, input, &|_, _| {})
            .await
    }

    /// [`Directory::import_users_csv`], telling `progress(done, total)` how many rows are settled (refused, or
    /// their password hashed) as the import goes: the hashing is what takes the time.
    pub async fn import_users_csv_with_progress(
        self: &Arc<Self>,
        actor: &Actor,
        input: &[u8],
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<ImportReport> {
        actor.require(Permission::ManageUsers)?;
        let parsed = parse_user_csv(input, DEFAULT_MAX_LINE_BYTES)
            .map_err(|e| DirectoryError::invalid("file", e.to_string()))?;
        let snap = self.snapshot();
        let mut results: Vec<Option<ImportRowResult>> = vec![None; parsed.len()];
        let mut pending = Vec::new();
        let mut seen_names = std::collections::HashSet::new();
        let mut seen_emails = std::collections::HashSet::new();
        for (i, row) in parsed.into_iter().enumerate() {
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    results[i] = Some(ImportRowResult {
                        line: e.line,
                        firstname: String::new(),
                        lastname: String::new(),
                        username: String::new(),
                        email: String::new(),
                        status: "failed".into(),
                        message: e.message,
                        user_id: None,
                    });
                    continue;
                }
            };
            let checked = crate::directory::validate_new_identity(&snap, &row.username, &row.email)
                .and_then(|(u, e)| {
                    if !seen_names.insert(u.clone()) {
                        return Err(format!("username `{u}` appears earlier in this file"));
                    }
                    if !seen_emails.insert(e.to_lowercase()) {
                        return Err(format!("e-mail `{e}` appears earlier in this file"));
                    }
                    Ok((u, e))
                });
            match checked.and_then(|(_, email)| row_input(&row, email)) {
                Ok(input) => pending.push((i, row, input)),
                Err(m) => results[i] = Some(result_for(&row, Err(m))),
            }
        }
        // Hash every password in parallel (bounded by the hashing pool).
        let total = results.len();
        let mut done = total - pending.len();
        progress(done, total);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, row, input) in pending {
            let dir = Arc::clone(self);
            let snap = Arc::clone(&snap);
            tasks.spawn(async move {
                let prepared = match row.password.as_deref() {
                    Some(pw) => dir
                        .prepare_password(&snap, None, &input.username, pw)
                        .await
                        .map(Some),
                    None => Ok(None),
                };
                (i, row, input, prepared)
            });
        }
        let mut ready = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (i, row, input, prepared) =
                joined.map_err(|e| DirectoryError::Internal(e.to_string()))?;
            done += 1;
            progress(done, total);
            match prepared {
                Ok(p) => ready.push((i, row, input, p)),
                Err(e) => results[i] = Some(result_for(&row, Err(e.to_string()))),
            }
        }
        ready.sort_by_key(|r| r.0);
        let mut ready = ready.into_iter().peekable();
        while ready.peek().is_some() {
            let chunk: Vec<_> = ready.by_ref().take(COMMIT_CHUNK).collect();
            let actor = actor.clone();
            let outcomes = self
                .write(move |tx| {
                    let mut out = Vec::new();
                    for (i, row, mut input, prepared) in chunk {
                        if input.state.is_none() {
                            let usable = prepared.is_some() || input.password_hash.is_some();
                            input.state = Some(if usable {
                                UserState::Active
                            } else {
                                UserState::Staged
                            });
                        }
                        // Everything that can refuse the row is checked before its first write, so a failed
                        // row leaves nothing.
                        let groups: std::result::Result<Vec<_>, String> = row
                            .groups
                            .iter()
                            .map(|name| {
                                tx.snap
                                    .group_by_group_name(name)
                                    .cloned()
                                    .ok_or_else(|| format!("group `{name}` does not exist"))
                            })
                            .collect();
                        let r = groups.and_then(|groups| {
                            let email = input.email.clone();
                            let user = self
                                .insert_user(tx, &actor, input, email, prepared)
                                .map_err(|e| e.to_string())?;
                            for g in groups {
                                if self
                                    .tx_add_member(tx, &actor, &g, &user.id)
                                    .map_err(|e| e.to_string())?
                                {
                                    tx.touch_group(&g.id);
                                }
                            }
                            Ok(user.id.to_string())
                        });
                        out.push((i, row, r));
                    }
                    Ok(out)
                })
                .await?;
            let mut pending = Vec::new();
            for (i, row, r) in outcomes {
                // Users without a password get their welcome (welcome() skips the others).
                if let Some(id) = r.as_ref().ok().and_then(|id| crate::id::Id::parse(id)) {
                    pending.push(id);
                }
                results[i] = Some(result_for(&row, r));
            }
            self.welcome(&pending).await;
        }
        let rows: Vec<ImportRowResult> = results.into_iter().flatten().collect();
        let imported = rows.iter().filter(|r| r.status == "imported").count();
        let failed = rows.len() - imported;
        self.record(
            crate::directory::admin_event(actor, "user_import")
                .detail("imported", imported)
                .detail("failed", failed),
        )
        .await;
        Ok(ImportReport {
            imported,
            failed,
            rows,
        })
    }
}
