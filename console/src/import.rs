//! CSV import, the JumpCloud way: upload a file (the same columns as the API's `/import/users`), watch the
//! progress while each password is hashed, then read a per-row result table (imported, imported with a pending
//! password, refused and why) and download the results file. The file is one call of the core's import in the
//! background, which reports how many rows are settled so the page can show how far it got.

use crate::html::{self, esc};
use crate::{Console, SignedIn};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use core_directory::crypto::random_bytes;
use core_directory::import::{ImportReport, ImportRowResult};
use core_directory::Id;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Largest upload.
pub const MAX_FILE: usize = 16 * 1024 * 1024;
/// Finished jobs kept for their results page.
const KEEP: usize = 50;

/// One import, run in the background.
struct Job {
    admin: Id,
    total: usize,
    done: usize,
    started: Instant,
    finished: bool,
    error: Option<String>,
    report: ImportReport,
}

/// The imports of this process.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<HashMap<String, Job>>,
}

pub fn routes() -> Router<Console> {
    Router::new()
        // Multipart bodies are capped at 2 MiB unless told otherwise: room for the largest file and the form.
        .route(
            "/console/import",
            get(page)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FILE + 64 * 1024)),
        )
        .route("/console/import/{job}", get(progress))
        .route("/console/import/{job}/results.csv", get(results))
}

pub async fn page(admin: SignedIn) -> Response {
    form(&admin, "")
}

fn form(admin: &SignedIn, error: &str) -> Response {
    let body = format!(
        "<h1>Import users from CSV</h1>{}<p>Columns (case-sensitive, any order): <code>firstname,lastname,username,email,password</code>, and any of \
         <code>uid_number</code>, <code>gid_number</code>, <code>login_shell</code>, <code>home_directory</code>, \
         <code>groups</code> (existing groups, separated by <code>;</code>), <code>password_hash</code> (a hash from \
         another directory such as <code>{{SSHA}}…</code> or <code>{{CRYPT}}$6$…</code>, re-hashed at the first sign-in) and \
         <code>state</code> (active, staged, suspended). Rows without a password are imported with a pending password. \
         An LDIF dump of another directory goes in with <code>stratus import ldif FILE</code>.</p>\
         <form method=\"post\" action=\"/console/import\" enctype=\"multipart/form-data\" class=\"record\">{}\
         <div class=\"field\"><label for=\"f-file\">CSV file</label><input type=\"file\" id=\"f-file\" name=\"file\" accept=\".csv,text/csv\" required></div>\
         <button>Import</button></form>",
        html::notice(false, error),
        admin.csrf_field()
    );
    let mut r = html::page(admin, "/console/import", "Import users", &body);
    if !error.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

pub async fn upload(
    State(c): State<Console>,
    admin: SignedIn,
    mut form_data: Multipart,
) -> Response {
    let (mut csrf, mut file) = (String::new(), Vec::new());
    loop {
        match form_data.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or_default().to_string();
                match f.bytes().await {
                    Ok(b) if name == "_csrf" => csrf = String::from_utf8_lossy(&b).into_owned(),
                    Ok(b) if name == "file" => file = b.to_vec(),
                    Ok(_) => {}
                    Err(e) => return form(&admin, &format!("The upload failed: {e}")),
                }
            }
            Ok(None) => break,
            Err(e) => return form(&admin, &format!("The upload failed: {e}")),
        }
    }
    if let Some(r) = admin.csrf_refusal(&c, &[("_csrf".to_string(), csrf)]) {
        return r;
    }
    if file.len() > MAX_FILE {
        return form(&admin, "The file is larger than 16 MiB.");
    }
    let id = data_encoding::BASE32_NOPAD
        .encode(&random_bytes(10))
        .to_lowercase();
    {
        let mut jobs = c.jobs.inner.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.len() >= KEEP {
            if let Some(oldest) = jobs
                .iter()
                .filter(|(_, j)| j.finished)
                .min_by_key(|(_, j)| j.started)
                .map(|(k, _)| k.clone())
            {
                jobs.remove(&oldest);
            }
        }
        jobs.insert(
            id.clone(),
            Job {
                admin: admin.id.clone(),
                total: 0,
                done: 0,
                started: Instant::now(),
                finished: false,
                error: None,
                report: ImportReport::default(),
            },
        );
    }
    let (jobs, dir, actor, job) = (
        Arc::clone(&c.jobs),
        Arc::clone(&c.dir),
        admin.actor.clone(),
        id.clone(),
    );
    tokio::spawn(async move {
        let progress = |done: usize, total: usize| {
            if let Some(j) = jobs
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&job)
            {
                (j.done, j.total) = (done, total);
            }
        };
        let outcome = dir
            .import_users_csv_with_progress(&actor, &file, &progress)
            .await;
        if let Some(j) = jobs
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&job)
        {
            match outcome {
                Ok(report) => j.report = report,
                Err(e) => j.error = Some(e.to_string()),
            }
            j.finished = true;
        }
    });
    html::redirect(&format!("/console/import/{id}"))
}

fn row_outcome(r: &ImportRowResult) -> (&'static str, String) {
    if r.status != "imported" {
        ("refused", r.message.clone())
    } else {
        ("created", String::new())
    }
}

pub async fn progress(
    State(c): State<Console>,
    admin: SignedIn,
    Path(job): Path<String>,
) -> Response {
    let (total, done, finished, error, elapsed, rows, imported, failed) = {
        let jobs = c.jobs.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(j) = jobs.get(&job).filter(|j| j.admin == admin.id) else {
            return html::page(
                &admin,
                "/console/import",
                "Import",
                &html::notice(
                    false,
                    "No such import (imports are kept until the server restarts).",
                ),
            );
        };
        (
            j.total,
            j.done,
            j.finished,
            j.error.clone(),
            j.started.elapsed().as_secs(),
            j.report.rows.clone(),
            j.report.imported,
            j.report.failed,
        )
    };
    let snap = c.dir.snapshot();
    let mut body = String::from("<h1>Import users</h1>");
    if !finished {
        let _ = write!(
            body,
            "<p role=\"status\">Importing: {done} of {total} rows done ({elapsed} s). Each password is hashed with argon2id; \
             this page refreshes itself.</p><progress max=\"{total}\" value=\"{done}\" aria-label=\"Rows imported\">{done}/{total}</progress>\
             <p><a href=\"/console/import/{job}\">Refresh now</a></p>"
        );
    } else {
        let _ = write!(
            body,
            "{}{}<p><a class=\"button\" href=\"/console/import/{job}/results.csv\" download>Download the results file</a> \
             <a class=\"button secondary\" href=\"/console/import\">Import another file</a></p>",
            html::notice(true, &format!("Done in {elapsed} s: {imported} imported, {failed} refused.")),
            error.as_deref().map_or(String::new(), |e| html::notice(false, e)),
        );
    }
    body.push_str("<div class=\"table\"><table><thead><tr><th scope=\"col\">Line</th><th scope=\"col\">User name</th><th scope=\"col\">E-mail</th><th scope=\"col\">Result</th><th scope=\"col\">Why</th></tr></thead><tbody>");
    for r in &rows {
        let (mut outcome, why) = row_outcome(r);
        let name = match r.user_id.as_deref().and_then(Id::parse) {
            Some(id) => {
                if snap.user(&id).is_some_and(|u| u.password_hash.is_none()) {
                    outcome = "pending";
                }
                format!("<a href=\"/console/users/{id}\">{}</a>", esc(&r.username))
            }
            None => esc(&r.username),
        };
        let why = if outcome == "pending" {
            "no password in the file: the user sets one".to_string()
        } else {
            why
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{name}</td><td>{}</td><td><span class=\"badge {outcome}\">{outcome}</span></td><td>{}</td></tr>",
            r.line,
            esc(&r.email),
            esc(&why)
        );
    }
    body.push_str("</tbody></table></div>");
    let mut r = html::page(&admin, "/console/import", "Import users", &body);
    if !finished {
        // Refresh while the import runs (a header, not inline markup: the CSP allows no inline script).
        r.headers_mut()
            .insert(header::REFRESH, HeaderValue::from_static("2"));
    }
    r
}

pub async fn results(
    State(c): State<Console>,
    admin: SignedIn,
    Path(job): Path<String>,
) -> Response {
    let csv = {
        let jobs = c.jobs.inner.lock().unwrap_or_else(|p| p.into_inner());
        match jobs.get(&job).filter(|j| j.admin == admin.id && j.finished) {
            Some(j) => j.report.to_csv(),
            None => {
                return (StatusCode::NOT_FOUND, "no finished import with this id").into_response()
            }
        }
    };
    let mut r = csv.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"import-results.csv\""),
    );
    r
}
