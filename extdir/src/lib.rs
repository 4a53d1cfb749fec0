//! Connectors to external directories, and the loop that runs them: password takeover requests from the core
//! (a user's password in memory, pushed to every directory the user is bound to) and the work that needs no
//! password (attribute updates, disabling accounts of users no longer bound), retried until it holds. Each kind
//! of directory is one module implementing [`Connector`]: `ad` (Active Directory over LDAPS) and `ldap` (an
//! OpenLDAP-style directory). Google Workspace or Microsoft Entra ID would be one module each, speaking their
//! REST APIs behind the same three calls. This crate decides nothing about who is bound or what a password is:
//! the core does; it must not touch the store except through the directory.

mod ad;
mod conn;
mod ldap;

use core_directory::directory::{ExternalWork, TakeoverRequest};
use core_directory::model::{ExternalDirectory, ExternalKind, User};
use core_directory::Directory;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A boxed future, for the connector interface.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What a connector is told about a user.
pub struct Account<'a> {
    pub user: &'a User,
    /// Names of the user's groups bound to this directory.
    pub groups: &'a [String],
}

/// One kind of external directory. Every call connects, acts and disconnects; errors are sentences for the
/// admin (they are recorded on the account and in events).
pub trait Connector: Send + Sync {
    /// Create the account or bring it up to date (enabled, attributes, group memberships), and set its
    /// password when one is given. Returns the account's name there (its DN).
    fn upsert<'a>(&'a self, account: Account<'a>, password: Option<&'a str>)
        -> Pending<'a, String>;
    /// Disable the account (never delete it).
    fn disable<'a>(&'a self, remote_dn: &'a str) -> Pending<'a, ()>;
}

/// The connector for a directory, with its bind password opened.
fn connector(dir: &Directory, d: &ExternalDirectory) -> Result<Box<dyn Connector>, String> {
    let password = dir
        .external_bind_password(d)
        .ok_or("the bind password cannot be opened with this master key")?;
    let target = conn::Target::new(d, password)?;
    Ok(match d.kind {
        ExternalKind::ActiveDirectory => Box::new(ad::ActiveDirectory(target)),
        ExternalKind::Ldap => Box::new(ldap::Ldap(target)),
    })
}

/// How often the work that needs no password is looked at.
const RECONCILE: Duration = Duration::from_secs(5);

/// Start the connectors: the core's takeover requests come through a channel made here.
pub fn start(dir: Arc<Directory>, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = mpsc::channel(1024);
    dir.set_password_takeover(tx);
    tokio::spawn(run(dir, rx, stop))
}

async fn run(
    dir: Arc<Directory>,
    mut requests: mpsc::Receiver<TakeoverRequest>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(RECONCILE);
    loop {
        tokio::select! {
            r = requests.recv() => match r {
                Some(r) => takeover(&dir, r).await,
                None => return,
            },
            _ = tick.tick() => reconcile(&dir).await,
            _ = stop.changed() => return,
        }
    }
}

/// Push a user's password (and attributes) to every directory they are bound to.
async fn takeover(dir: &Directory, r: TakeoverRequest) {
    let Some(user) = dir.snapshot().user(&r.user).cloned() else {
        return;
    };
    for (d, groups) in dir.external_targets(&user.id) {
        let outcome = match connector(dir, &d) {
            Ok(c) => {
                c.upsert(
                    Account {
                        user: &user,
                        groups: &groups,
                    },
                    Some(r.password.as_str()),
                )
                .await
            }
            Err(e) => Err(e),
        };
        record(dir, &d, &user, outcome, true).await;
    }
}

async fn record(
    dir: &Directory,
    d: &ExternalDirectory,
    user: &User,
    outcome: Result<String, String>,
    password: bool,
) {
    let recorded = match outcome {
        Ok(dn) => dir.external_pushed(d, user, dn, password).await,
        Err(e) => {
            tracing::info!(directory = %d.name, user = %user.username, error = %core_directory::events::log_text(&e), "external directory push failed");
            dir.external_failed(d, user, &e, password).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "an external directory outcome could not be recorded");
    }
}

/// Disable accounts of users no longer bound; bring attributes up to date.
async fn reconcile(dir: &Directory) {
    for work in dir.external_work() {
        match work {
            ExternalWork::Disable {
                directory,
                user,
                remote_dn,
            } => {
                let outcome = match connector(dir, &directory) {
                    Ok(c) => c.disable(&remote_dn).await,
                    Err(e) => Err(e),
                };
                let recorded = match outcome {
                    Ok(()) => dir.external_disabled(&directory, &user).await,
                    Err(e) => match dir.snapshot().user(&user).cloned() {
                        Some(u) => dir.external_failed(&directory, &u, &e, false).await,
                        None => {
                            tracing::info!(directory = %directory.name, error = %core_directory::events::log_text(&e), "disabling a deleted user's account failed");
                            Ok(())
                        }
                    },
                };
                if let Err(e) = recorded {
                    tracing::warn!(error = %e, "an external directory outcome could not be recorded");
                }
            }
            ExternalWork::Update {
                directory,
                user,
                remote_dn: _,
                groups,
            } => {
                let outcome = match connector(dir, &directory) {
                    Ok(c) => {
                        c.upsert(
                            Account {
                                user: &user,
                                groups: &groups,
                            },
                            None,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                record(dir, &directory, &user, outcome, false).await;
            }
        }
    }
}
