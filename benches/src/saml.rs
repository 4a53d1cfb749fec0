//! `saml`: what one SAML login costs the IdP, from the RSA signature up to a complete SP-initiated login over
//! HTTPS against the real `stratus` binary.
//!
//! Three layers, every run bounded by a count and a time limit:
//!
//! 1. **The ceiling**: raw RSA-2048 PKCS#1 v1.5 SHA-256 signatures with aws-lc-rs (`RsaKeyPair`), with a key
//!    made by `core_directory::idp_keys::generate` as every app's IdP key is, on 1 and 2 OS threads. Every
//!    login signs once (the app signs the assertion), so no login rate can pass this one.
//! 2. **Assertion signings**, in process: what the IdP does per login to produce the SAMLResponse once the
//!    core said yes: `saml_idp::protocol::assertion` with five attributes, `Signer::sign_enveloped`
//!    (canonicalisation, digest, the RSA signature), `protocol::response` around it, `xml::to_string` and
//!    base64, on 1 and 2 threads, next to the raw rate. A third row also loads the key (`Signer::new`) each
//!    time, as the server does per login.
//! 3. **Complete SP-initiated logins** against the real binary on 127.0.0.1 (HTTPS, the data directory's
//!    development CA): an AuthnRequest on the Redirect binding, then either the login page and its password form
//!    (a browser without an IdP session: a new client per login, so a new cookie jar and TLS connection, or one
//!    client per browser on a connection opened before the clock, its cookies cleared before each login) or, for
//!    a browser signed in before the clock, the SAMLResponse form straight away. With 1 and 4 browsers at once,
//!    with the credential cache on (each user's first verification before the clock, so every password check is
//!    a cache hit) and, after a restart on the same data directory, off (an argon2id verification per
//!    no-session login).
//!
//! See `benches/saml/README.md` for what each row means.

use crate::radius::load::{cpu_time, machine_busy};
use crate::radius::stratus;
use crate::scim::load::{Failure, Tally};
use crate::{format_duration, BoxError, Run, Stop};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use chrono::Utc;
use clap::Args;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use saml_idp::dsig::{self, Alg, Signer};
use saml_idp::protocol as p;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The SP of the benchmark app: it is never contacted, the benchmark stops at the form that would post to it.
const SP_ENTITY: &str = "https://sp.bench/metadata";
const ACS: &str = "https://sp.bench/acs";
/// The opening of the auto-submitting form that carries the SAMLResponse to the ACS URL.
const ACS_FORM: &str = "<form method=\"post\" action=\"https://sp.bench/acs\" id=\"saml\">";
const PASSWORD: &str = "Bench-Saml-Passw0rd-1";
const GROUP: &str = "bench-saml";
/// Longest one HTTP request may take before the login counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// About the length of the canonical SignedInfo an enveloped signature signs; what the raw rows sign.
const SIGNED_INFO_BYTES: usize = 700;
/// The signing rows run on 1 and on 2 threads.
const SIGN_THREADS: [usize; 2] = [1, 2];
/// Above this share of the machine's CPU time going to neither the server nor the load generator, a row is
/// flagged: something else ran.
const OTHER_ALARM: f64 = 0.2;

const RAW: &str = "raw RSA-2048 PKCS#1 SHA-256";
const ASSERTION: &str = "assertion: build+sign+serialize";
const WITH_KEY: &str = "the same + Signer::new each";

const FRESH_ON: &str = "no session, cache on, new conn";
const KEPT_ON: &str = "no session, cache on, kept conn";
const FRESH_OFF: &str = "no session, cache off, new conn";
const SESSION: &str = "with session";

#[derive(Args)]
pub struct SamlArgs {
    /// Smoke run: 2 s runs, at most 200 logins and 5,000 signatures each.
    #[arg(long)]
    quick: bool,
    /// Most logins in one login run [default: 2000, or 200 with --quick].
    #[arg(long)]
    count: Option<u64>,
    /// Most signatures in one signing run [default: 100000, or 5000 with --quick].
    #[arg(long)]
    sign_count: Option<u64>,
    /// Wall-clock limit of each run, in seconds [default: 10, or 2 with --quick].
    #[arg(long)]
    time_limit: Option<f64>,
    /// Browsers at once in the login runs, comma-separated; one run per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    concurrency: Vec<usize>,
    /// Only the in-process signing rows: no server.
    #[arg(long)]
    no_server: bool,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// The stratus binary [default: `stratus` next to this executable, else target/release/stratus].
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
}

/// The bounds of one `saml` invocation.
struct Plan {
    quick: bool,
    count: u64,
    sign_count: u64,
    limit: Duration,
    concurrency: Vec<usize>,
}

impl Plan {
    fn new(args: &SamlArgs) -> Result<Self, BoxError> {
        let quick = args.quick;
        let count = args.count.unwrap_or(if quick { 200 } else { 2_000 });
        if count == 0 || count > 10_000_000 {
            return Err("--count must be between 1 and 10,000,000".into());
        }
        let sign_count = args
            .sign_count
            .unwrap_or(if quick { 5_000 } else { 100_000 });
        if sign_count == 0 || sign_count > 100_000_000 {
            return Err("--sign-count must be between 1 and 100,000,000".into());
        }
        let secs = args.time_limit.unwrap_or(if quick { 2.0 } else { 10.0 });
        if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
            return Err("--time-limit must be between 0 and 3600 seconds".into());
        }
        let mut concurrency = args.concurrency.clone();
        concurrency.dedup();
        if concurrency.is_empty() || concurrency.iter().any(|&c| c == 0 || c > 256) {
            return Err("--concurrency must be a list of numbers between 1 and 256".into());
        }
        Ok(Plan {
            quick,
            count,
            sign_count,
            limit: Duration::from_secs_f64(secs),
            concurrency,
        })
    }

    /// Users of the login runs: one per browser of the largest run.
    fn users(&self) -> usize {
        self.concurrency.iter().copied().max().unwrap_or(1)
    }
}

pub async fn run(args: &SamlArgs) -> Result<(), BoxError> {
    let plan = Plan::new(args)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "stratus-bench saml{}: {cpus} CPUs, {} client threads; signing runs at most {} signatures, login runs at \
         most {} logins, each at most {} s; login runs with {:?} browsers at once",
        if plan.quick { " --quick" } else { "" },
        args.client_threads.clamp(1, 64),
        plan.sign_count,
        plan.count,
        plan.limit.as_secs_f64(),
        plan.concurrency,
    );

    // The signing rows first, while no server runs on the machine.
    let signing = tokio::task::block_in_place(|| signing(&plan))?;
    println!("{}", signing_table(&signing));

    if args.no_server {
        return Ok(());
    }
    let bin = args
        .stratus_bin
        .clone()
        .unwrap_or_else(stratus::default_bin);
    println!("stratus: {}", bin.display());
    let data = stratus::Data::with_prefix("stratus-bench-saml")?;
    let mut rows = Vec::new();

    let server = start(&bin, &data, true)?;
    let result = async {
        let sp = setup(&server, &data, plan.users()).await?;
        let sessions = check_and_sign_in(&sp, plan.users()).await?;
        let pid = server.pid();
        for &c in &plan.concurrency {
            let name = FRESH_ON;
            println!("saml: measuring {name}, {c} browser{}", plural(c));
            rows.push(login_run(name, &sp, Mode::Fresh, &[], c, &plan, pid).await?);
        }
        for &c in &plan.concurrency {
            let name = KEPT_ON;
            println!("saml: measuring {name}, {c} browser{}", plural(c));
            rows.push(login_run(name, &sp, Mode::Kept, &[], c, &plan, pid).await?);
        }
        for &c in &plan.concurrency {
            let name = SESSION;
            println!("saml: measuring {name}, {c} browser{}", plural(c));
            rows.push(login_run(name, &sp, Mode::Session, &sessions, c, &plan, pid).await?);
        }
        Ok::<_, BoxError>(sp)
    }
    .await;
    let result =
        result.map_err(|e| format!("{e}\nstratus log (last lines):\n{}", server.log_tail()));
    let log = server.log_path();
    tokio::task::block_in_place(|| drop(server));
    println!(
        "stratus log (credential cache on): {}",
        stratus::warnings(&log)
    );
    let sp = result?;

    // The same data directory, the credential cache off: every no-session login verifies argon2id.
    let server = start(&bin, &data, false)?;
    // A new process: a new ephemeral port.
    let sp = Arc::new(Sp {
        base: server.api_url().to_string(),
        ..(*sp).clone()
    });
    let result = async {
        let pid = server.pid();
        for &c in &plan.concurrency {
            let name = FRESH_OFF;
            println!("saml: measuring {name}, {c} browser{}", plural(c));
            rows.push(login_run(name, &sp, Mode::Fresh, &[], c, &plan, pid).await?);
        }
        Ok::<_, BoxError>(())
    }
    .await;
    let result =
        result.map_err(|e| format!("{e}\nstratus log (last lines):\n{}", server.log_tail()));
    let log = server.log_path();
    tokio::task::block_in_place(|| drop(server));
    println!(
        "stratus log (credential cache off): {}",
        stratus::warnings(&log)
    );
    // The rows with the cache on stand even when the restart failed.
    println!("{}", login_table(&rows, &signing));
    println!("{}", ratios(&rows, &signing));
    Ok(result?)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

// ---------------------------------------------------------------- signing, in process

/// The rows of the signing table, and what the check before them found.
struct Signing {
    runs: Vec<Run>,
    /// Octets of one Response as XML and as the base64 the form carries.
    xml_len: usize,
    b64_len: usize,
}

impl Signing {
    /// Raw RSA signatures per second on `threads` threads, when that row ran.
    fn raw(&self, threads: usize) -> Option<f64> {
        self.runs
            .iter()
            .find(|r| r.name == RAW && r.tasks == threads)
            .map(Run::per_second)
    }

    /// The raw rate at the thread count that bounds `tasks` concurrent logins: at most as many threads as were
    /// measured.
    fn ceiling(&self, tasks: usize) -> Option<(usize, f64)> {
        let threads = SIGN_THREADS
            .iter()
            .copied()
            .filter(|&t| t <= tasks.max(1))
            .max()?;
        Some((threads, self.raw(threads)?))
    }
}

/// The facts of a login's assertion, as the server's `deliver` fills them: an e-mail NameID and the five
/// attributes the benchmark app maps.
fn facts(now: chrono::DateTime<Utc>) -> p::AssertionFacts {
    p::AssertionFacts {
        idp_entity_id: "https://127.0.0.1:8443/saml/01jbenchbenchbenchbenchbenc".into(),
        sp_entity_id: SP_ENTITY.into(),
        acs_url: ACS.into(),
        in_response_to: Some("_0123456789abcdef0123456789abcdef01234567".into()),
        nameid_format: p::NAMEID_EMAIL,
        nameid: "saml00@bench.local".into(),
        session_index: "_76543210fedcba9876543210fedcba9876543210".into(),
        authn_instant: now - chrono::Duration::seconds(5),
        session_not_on_or_after: Some(now + chrono::Duration::hours(12)),
        mfa: false,
        attributes: vec![
            ("email".into(), vec!["saml00@bench.local".into()]),
            ("firstName".into(), vec!["Bench".into()]),
            ("lastName".into(), vec!["Saml00".into()]),
            ("username".into(), vec!["saml00".into()]),
            ("memberOf".into(), vec![GROUP.into()]),
        ],
        now,
        lifetime: chrono::Duration::seconds(300),
    }
}

/// One login's signing work: the assertion built and signed, the Response around it, serialised, base64.
fn signed_response(signer: &Signer) -> String {
    let now = Utc::now();
    let f = facts(now);
    let mut assertion = p::assertion(&f);
    signer.sign_enveloped(&mut assertion, 1);
    let response = p::response(
        &f.idp_entity_id,
        &f.acs_url,
        f.in_response_to.as_deref(),
        p::STATUS_SUCCESS,
        None,
        now,
        Some(assertion),
    );
    data_encoding::BASE64.encode(saml_idp::xml::to_string(&response).as_bytes())
}

/// A base64 SAMLResponse, checked as an SP would: a Response with status Success answering `in_response_to`,
/// whose assertion carries an enveloped signature that verifies with `public_key` (PKCS#1 RSAPublicKey DER).
/// Returns the octets of the XML.
fn check_response(b64: &str, public_key: &[u8], in_response_to: &str) -> Result<usize, String> {
    let xml = data_encoding::BASE64
        .decode(b64.as_bytes())
        .map_err(|e| format!("SAMLResponse is not base64: {e}"))?;
    let xml = String::from_utf8(xml).map_err(|_| "SAMLResponse is not UTF-8".to_string())?;
    let root = saml_idp::xml::parse(&xml, saml_idp::xml::Limits::default())
        .map_err(|e| format!("SAMLResponse: {e}"))?;
    if !root.is(p::NS_SAMLP, "Response") {
        return Err(format!(
            "the SAMLResponse is a {}, not a Response",
            root.name
        ));
    }
    let status = root
        .first(p::NS_SAMLP, "Status")
        .and_then(|s| s.first(p::NS_SAMLP, "StatusCode"))
        .and_then(|c| c.get("Value"));
    if status != Some(p::STATUS_SUCCESS) {
        return Err(format!("the Response's status is {status:?}"));
    }
    if root.get("InResponseTo") != Some(in_response_to) {
        return Err(format!(
            "the Response answers {:?}, not {in_response_to}",
            root.get("InResponseTo")
        ));
    }
    let assertion = root
        .first(p::NS_SAML, "Assertion")
        .ok_or("the Response carries no (plain) Assertion")?;
    dsig::verify_enveloped(assertion, &[public_key.to_vec()], false)
        .map_err(|e| format!("the assertion's signature: {e}"))?;
    Ok(xml.len())
}

/// The signing rows: raw RSA, the assertion, the assertion with the key loaded each time; each on 1 and 2
/// threads, after one signed Response was checked.
fn signing(plan: &Plan) -> Result<Signing, BoxError> {
    let km = core_directory::idp_keys::generate("bench")?;
    let cert_der = core_directory::idp_keys::certificate_der(&km.certificate_pem)?;
    let public = core_directory::idp_keys::inspect_certificate(&km.certificate_pem)?.rsa_public_key;
    let key = RsaKeyPair::from_pkcs8(&km.private_key)
        .map_err(|e| format!("RsaKeyPair::from_pkcs8 of the generated key: {e}"))?;
    let signer = Signer::new(&km.private_key, &cert_der, Alg::RsaSha256)?;
    let rng = SystemRandom::new();
    let message = vec![0x5a_u8; SIGNED_INFO_BYTES];

    let b64 = signed_response(&signer);
    let in_response_to = facts(Utc::now()).in_response_to.unwrap_or_default();
    let xml_len = check_response(&b64, &public, &in_response_to)
        .map_err(|e| format!("signing check: {e}"))?;
    println!(
        "signing: RSA-{} key from idp_keys::generate; one Response with a signed assertion and 5 attributes is \
         {xml_len} octets of XML, {} of base64, and verifies",
        key.public_modulus_len() * 8,
        b64.len()
    );

    let mut runs = Vec::new();
    for threads in SIGN_THREADS {
        println!(
            "signing: measuring {RAW}, {threads} thread{}",
            plural(threads)
        );
        runs.push(threaded(RAW, threads, plan.sign_count, plan.limit, || {
            let mut sig = vec![0u8; key.public_modulus_len()];
            key.sign(&RSA_PKCS1_SHA256, &rng, black_box(&message), &mut sig)
                .map_err(|_| "RSA signing failed".to_string())?;
            black_box(sig);
            Ok(())
        })?);
    }
    for threads in SIGN_THREADS {
        println!(
            "signing: measuring {ASSERTION}, {threads} thread{}",
            plural(threads)
        );
        runs.push(threaded(
            ASSERTION,
            threads,
            plan.sign_count,
            plan.limit,
            || {
                black_box(signed_response(black_box(&signer)));
                Ok(())
            },
        )?);
    }
    for threads in SIGN_THREADS {
        println!(
            "signing: measuring {WITH_KEY}, {threads} thread{}",
            plural(threads)
        );
        runs.push(threaded(
            WITH_KEY,
            threads,
            plan.sign_count,
            plan.limit,
            || {
                let s = Signer::new(black_box(&km.private_key), &cert_der, Alg::RsaSha256)
                    .map_err(|e| format!("Signer::new: {e}"))?;
                black_box(signed_response(&s));
                Ok(())
            },
        )?);
    }
    Ok(Signing {
        runs,
        xml_len,
        b64_len: b64.len(),
    })
}

/// `threads` OS threads calling `op` until `max` calls were issued over all of them or `limit` has passed
/// (each then finishes the call it is in); the first error aborts the run.
fn threaded<F>(
    name: &'static str,
    threads: usize,
    max: u64,
    limit: Duration,
    op: F,
) -> Result<Run, BoxError>
where
    F: Fn() -> Result<(), String> + Sync,
{
    let issued = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + limit;
    let parts: Vec<Result<(Vec<Duration>, bool), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(Vec<Duration>, bool), String> {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        if issued.fetch_add(1, Ordering::Relaxed) >= max {
                            return Ok((latencies, true));
                        }
                        let t0 = Instant::now();
                        op()?;
                        latencies.push(t0.elapsed());
                    }
                    Ok((latencies, false))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(format!("{name}: a thread panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut latencies = Vec::new();
    let mut hit_count = false;
    for part in parts {
        let (l, hit) = part.map_err(|e| format!("{name}: {e}"))?;
        latencies.extend(l);
        hit_count |= hit;
    }
    latencies.sort_unstable();
    Ok(Run {
        name,
        tasks: threads,
        done: latencies.len() as u64,
        elapsed,
        stop: if hit_count { Stop::Count } else { Stop::Time },
        latencies,
    })
}

fn stop_name(s: Stop) -> &'static str {
    match s {
        Stop::Count => "count",
        Stop::Time => "time",
    }
}

fn signing_table(s: &Signing) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nsigning, in process (no server, no HTTP); \"vs RSA\" = ops/s / raw RSA signatures/s on as many threads"
    );
    let _ = writeln!(
        out,
        "{:<32} {:>7} {:>8} {:>6} {:>10} {:>10} {:>10} {:>10}  {:<5} {:>7}",
        "run", "threads", "count", "secs", "ops/s", "per op", "p50", "p99", "stop", "vs RSA"
    );
    for r in &s.runs {
        let pct = |q| r.percentile(q).map_or("-".into(), format_duration);
        let per_op = if r.done > 0 {
            format_duration(r.elapsed.mul_f64(r.tasks as f64 / r.done as f64))
        } else {
            "-".into()
        };
        let vs = s
            .raw(r.tasks)
            .filter(|&raw| raw > 0.0)
            .map_or("-".into(), |raw| {
                format!("{:.0}%", 100.0 * r.per_second() / raw)
            });
        let _ = writeln!(
            out,
            "{:<32} {:>7} {:>8} {:>6.2} {:>10.1} {:>10} {:>10} {:>10}  {:<5} {:>7}",
            r.name,
            r.tasks,
            r.done,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            per_op,
            pct(50.0),
            pct(99.0),
            stop_name(r.stop),
            vs
        );
    }
    let _ = write!(
        out,
        "assertion rows: saml_idp::protocol::assertion (5 attributes), Signer::sign_enveloped, protocol::response, \
         xml::to_string, base64 ({} octets of XML, {} of base64); `per op` = secs x threads / count",
        s.xml_len, s.b64_len
    );
    out
}

// ---------------------------------------------------------------- the server

fn start(
    bin: &std::path::Path,
    data: &stratus::Data,
    cache: bool,
) -> Result<stratus::Server, BoxError> {
    println!(
        "stratus: starting with the credential cache {}",
        if cache {
            "on (the default)"
        } else {
            "off (STRATUS_CREDENTIAL_CACHE=false)"
        }
    );
    tokio::task::block_in_place(|| {
        stratus::Server::start_with(
            bin,
            data,
            &stratus::Options {
                credential_cache: cache,
                radius: false,
                env: &[],
                log_name: if cache {
                    "stratus-saml-cache-on.log"
                } else {
                    "stratus-saml-cache-off.log"
                },
            },
        )
    })
}

/// The IdP as the browsers see it.
#[derive(Clone)]
struct Sp {
    /// `https://127.0.0.1:<port>`
    base: String,
    app: String,
    ca: reqwest::Certificate,
    /// The app's active IdP certificate, PKCS#1 RSAPublicKey DER, to check assertions with.
    idp_key: Vec<u8>,
    users: Vec<String>,
}

fn id_of(v: &Value, what: &str) -> Result<String, BoxError> {
    Ok(v.get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what} answered without an id: {v}"))?
        .to_string())
}

/// Through the admin API: `users` users with a password in one group, and an app that signs the assertion,
/// maps five attributes and is bound to the group.
async fn setup(
    server: &stratus::Server,
    data: &stratus::Data,
    users: usize,
) -> Result<Arc<Sp>, BoxError> {
    let t0 = Instant::now();
    let group = server
        .call(Method::POST, "/groups", Some(json!({"name": GROUP})))
        .await?;
    let group = id_of(&group, "POST /groups")?;
    let mut names = Vec::with_capacity(users);
    for i in 0..users {
        let name = format!("saml{i:02}");
        let user = server
            .call(
                Method::POST,
                "/users",
                Some(json!({
                    "username": name,
                    "email": format!("{name}@bench.local"),
                    "firstname": "Bench",
                    "lastname": format!("Saml{i:02}"),
                    "password": PASSWORD,
                })),
            )
            .await?;
        let user = id_of(&user, "POST /users")?;
        server
            .call(
                Method::PUT,
                &format!("/groups/{group}/members/{user}"),
                None,
            )
            .await?;
        names.push(name);
    }
    let app = server
        .call(
            Method::POST,
            "/apps",
            Some(json!({
                "name": "Bench SP",
                "sp_entity_id": SP_ENTITY,
                "acs_urls": [ACS],
                "sign": "assertion",
                "attributes": [
                    {"name": "email", "source": "email"},
                    {"name": "firstName", "source": "firstname"},
                    {"name": "lastName", "source": "lastname"},
                    {"name": "username", "source": "username"},
                    {"name": "memberOf", "source": "groups"}
                ]
            })),
        )
        .await?;
    let app_id = id_of(&app, "POST /apps")?;
    let certificate = app
        .get("idp_keys")
        .and_then(Value::as_array)
        .and_then(|keys| {
            keys.iter()
                .find(|k| k.get("status").and_then(Value::as_str) == Some("active"))
        })
        .and_then(|k| k.get("certificate"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("POST /apps answered without an active IdP key: {app}"))?;
    let idp_key = core_directory::idp_keys::inspect_certificate(certificate)?.rsa_public_key;
    server
        .call(
            Method::PUT,
            &format!("/groups/{group}/bindings/app:{app_id}"),
            None,
        )
        .await?;
    let ca_path = data.certs_dir().join("ca.pem");
    let ca = std::fs::read(&ca_path).map_err(|e| format!("dev CA {}: {e}", ca_path.display()))?;
    println!(
        "stratus: {users} user{} with a password (one argon2id each), group {GROUP} bound to app {app_id} \
         (signs the assertion, 5 attributes, SP {SP_ENTITY}) in {:.1} s",
        plural(users),
        t0.elapsed().as_secs_f64()
    );
    Ok(Arc::new(Sp {
        base: server.api_url().to_string(),
        app: app_id,
        ca: reqwest::Certificate::from_pem(&ca)?,
        idp_key,
        users: names,
    }))
}

// ---------------------------------------------------------------- one login

/// An error with its sources, which say what actually went wrong (reqwest's own message rarely does).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

fn excerpt(body: &str) -> String {
    let one_line: String = body.chars().take(200).collect();
    one_line.replace('\n', " ")
}

/// Percent-encoding for a query or form value: everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The reverse of the pages' HTML escaping.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The value of the hidden input `name` of an HTML page.
fn hidden(body: &str, name: &str) -> Option<String> {
    let open = format!("<input type=\"hidden\" name=\"{name}\" value=\"");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find('"')?;
    Some(unescape(&body[start..start + len]))
}

/// A browser: its own cookie jar (`jar`, or a new one), trusting only the development CA, following no
/// redirect.
fn browser(
    ca: &reqwest::Certificate,
    jar: Option<Arc<ResetJar>>,
) -> Result<reqwest::Client, reqwest::Error> {
    let b = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT);
    match jar {
        Some(jar) => b.cookie_provider(jar),
        None => b.cookie_store(true),
    }
    .build()
}

/// A cookie jar that can be emptied, so that one client (one open connection) can be a new browser again.
#[derive(Default)]
struct ResetJar(std::sync::RwLock<Arc<reqwest::cookie::Jar>>);

impl ResetJar {
    fn jar(&self) -> Arc<reqwest::cookie::Jar> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn reset(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::default();
    }
}

impl reqwest::cookie::CookieStore for ResetJar {
    fn set_cookies(
        &self,
        cookie_headers: &mut dyn Iterator<Item = &reqwest::header::HeaderValue>,
        url: &reqwest::Url,
    ) {
        self.jar().set_cookies(cookie_headers, url);
    }

    fn cookies(&self, url: &reqwest::Url) -> Option<reqwest::header::HeaderValue> {
        self.jar().cookies(url)
    }
}

/// An answer: status, HTTP version, Location and body.
struct Answer {
    status: StatusCode,
    version: reqwest::Version,
    location: Option<String>,
    body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Result<Answer, Failure> {
    let resp = req
        .send()
        .await
        .map_err(|e| Failure::Transport(error_chain(&e)))?;
    let (status, version) = (resp.status(), resp.version());
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .text()
        .await
        .map_err(|e| Failure::Transport(error_chain(&e)))?;
    Ok(Answer {
        status,
        version,
        location,
        body,
    })
}

fn expect(step: &'static str, a: &Answer, status: StatusCode) -> Result<(), Failure> {
    if a.status == status {
        Ok(())
    } else {
        Err(Failure::Status(
            a.status.as_u16(),
            format!("{step}: {}", excerpt(&a.body)),
        ))
    }
}

/// The SP's side: a fresh AuthnRequest (a new ID each time, replays are refused) on the Redirect binding;
/// returns its ID and the SSO URL carrying it.
fn authn_request(sp: &Sp) -> (String, String) {
    let id = p::new_id();
    let xml = format!(
        "<samlp:AuthnRequest xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{}\" \
         AssertionConsumerServiceURL=\"{ACS}\" ProtocolBinding=\"{}\"><saml:Issuer>{SP_ENTITY}</saml:Issuer>\
         </samlp:AuthnRequest>",
        p::NS_SAMLP,
        p::NS_SAML,
        p::instant(Utc::now()),
        p::BINDING_POST,
    );
    let url = format!(
        "{}/saml/{}/sso?SAMLRequest={}",
        sp.base,
        sp.app,
        encode(&saml_idp::binding::deflate_b64(&xml))
    );
    (id, url)
}

/// The SAMLResponse of the auto-submitting form to the ACS URL, which must be a Response with status Success
/// answering `id` (a substring check per login; [`check_response`] does the full one before the clock).
fn delivered(a: &Answer, step: &'static str, id: &str) -> Result<String, Failure> {
    expect(step, a, StatusCode::OK)?;
    if !a.body.contains(ACS_FORM) {
        return Err(Failure::Wrong(format!(
            "{step}: no form posting to {ACS}: {}",
            excerpt(&a.body)
        )));
    }
    let b64 = hidden(&a.body, "SAMLResponse")
        .ok_or_else(|| Failure::Wrong(format!("{step}: the form carries no SAMLResponse")))?;
    let xml = data_encoding::BASE64
        .decode(b64.as_bytes())
        .map_err(|e| Failure::Wrong(format!("{step}: SAMLResponse is not base64: {e}")))?;
    let xml = String::from_utf8_lossy(&xml);
    if !xml.contains(p::STATUS_SUCCESS) {
        return Err(Failure::Wrong(format!(
            "{step}: the Response is not a success: {}",
            excerpt(&xml)
        )));
    }
    if !xml.contains(&format!("InResponseTo=\"{id}\"")) {
        return Err(Failure::Wrong(format!(
            "{step}: the Response does not answer {id}"
        )));
    }
    Ok(b64)
}

/// A login of a browser without an IdP session: SSO → 303 to the login page → the page → POST /login →
/// the SAMLResponse form. Returns the request ID and the SAMLResponse.
async fn login_fresh(client: &reqwest::Client, sp: &Sp, user: &str) -> Result<Fresh, Failure> {
    let (id, url) = authn_request(sp);
    let t0 = Instant::now();
    let a = send(client.get(&url)).await?;
    let t1 = Instant::now();
    expect("GET /saml/{app}/sso", &a, StatusCode::SEE_OTHER)?;
    let location = a
        .location
        .filter(|l| l.starts_with("/login?login="))
        .ok_or_else(|| Failure::Wrong("the SSO redirect does not go to /login?login=…".into()))?;
    let page = send(client.get(format!("{}{location}", sp.base))).await?;
    let t2 = Instant::now();
    expect("GET /login", &page, StatusCode::OK)?;
    let (Some(login), Some(csrf)) = (hidden(&page.body, "login"), hidden(&page.body, "csrf"))
    else {
        return Err(Failure::Wrong(format!(
            "GET /login: no hidden login and csrf inputs: {}",
            excerpt(&page.body)
        )));
    };
    let form = format!(
        "login={}&csrf={}&username={}&password={}",
        encode(&login),
        encode(&csrf),
        encode(user),
        encode(PASSWORD)
    );
    let a = send(
        client
            .post(format!("{}/login", sp.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form),
    )
    .await?;
    let t3 = Instant::now();
    let b64 = delivered(&a, "POST /login", &id)?;
    Ok(Fresh {
        id,
        b64,
        version: a.version,
        steps: [t1 - t0, t2 - t1, t3 - t2],
    })
}

/// What a login without a session brought back.
struct Fresh {
    id: String,
    b64: String,
    version: reqwest::Version,
    /// How long each of its three requests took: the SSO request (with the new connection's TLS handshake),
    /// the login page, the password form.
    steps: [Duration; 3],
}

/// A login of a browser with an IdP session: SSO → the SAMLResponse form.
async fn login_session(client: &reqwest::Client, sp: &Sp) -> Result<(String, String), Failure> {
    let (id, url) = authn_request(sp);
    let a = send(client.get(&url)).await?;
    let b64 = delivered(&a, "GET /saml/{app}/sso with a session", &id)?;
    Ok((id, b64))
}

/// Before the clock: one login without a session, checked in full (the assertion's signature with the app's
/// certificate); the same browser again, now with a session; a replayed request refused; then one signed-in
/// browser per user (the first one included), which is also each user's first password verification, so that
/// every later one with the credential cache on is a cache hit.
async fn check_and_sign_in(sp: &Arc<Sp>, users: usize) -> Result<Vec<reqwest::Client>, BoxError> {
    let fail = |what: &str, f: Failure| -> BoxError { format!("saml check: {what}: {f}").into() };
    let client = browser(&sp.ca, None)?;
    let fresh = login_fresh(&client, sp, &sp.users[0])
        .await
        .map_err(|f| fail("login without a session", f))?;
    let xml_len = check_response(&fresh.b64, &sp.idp_key, &fresh.id)
        .map_err(|e| format!("saml check: {e}"))?;
    let t0 = Instant::now();
    let (id, b64) = login_session(&client, sp)
        .await
        .map_err(|f| fail("login with the session of the first one", f))?;
    let second = t0.elapsed();
    check_response(&b64, &sp.idp_key, &id).map_err(|e| format!("saml check: {e}"))?;

    // The same AuthnRequest twice: the second must be refused.
    let (_, url) = authn_request(sp);
    let once = send(client.get(&url))
        .await
        .map_err(|f| fail("a request sent once", f))?;
    let again = send(client.get(&url))
        .await
        .map_err(|f| fail("the same request again", f))?;
    if once.status != StatusCode::OK || again.status != StatusCode::BAD_REQUEST {
        return Err(format!(
            "saml check: a request sent twice was answered {} then {} (expected 200 then 400)",
            once.status, again.status
        )
        .into());
    }
    println!(
        "saml: check: {:?}; without a session GET sso → 303 ({}, with the TLS handshake), GET /login ({}), POST \
         /login ({}, the user's first login: argon2id) → 200 with the SAMLResponse form, Response {xml_len} octets \
         of XML, status Success, the assertion's signature verifies with the app's certificate; the same browser \
         again, with its session: 200 with the form at once in {}, verifies too; the same AuthnRequest twice: 200 \
         then 400 (replay)",
        fresh.version,
        format_duration(fresh.steps[0]),
        format_duration(fresh.steps[1]),
        format_duration(fresh.steps[2]),
        format_duration(second)
    );
    let (handshake, first_get) = new_connection(sp).await?;
    println!(
        "saml: a new browser without SAML, for comparison: TLS handshake + GET /login/style.css p50 {} (of 20), \
         then GET /login/style.css on that connection p50 {}",
        format_duration(handshake),
        format_duration(first_get)
    );
    if handshake > Duration::from_millis(20) && handshake > first_get * 10 {
        println!(
            "!!! saml: a new connection's first answer takes {} and the next one {}: a wait, not work (the server \
             has the CPU to spare). Seen on the wire as the server's second write after its HTTP/2 SETTINGS \
             frame arriving about 40 ms late, as Nagle's algorithm holding it against the client's delayed ACK \
             does when accepted sockets lack TCP_NODELAY. Every `new conn` login below pays it once",
            format_duration(handshake),
            format_duration(first_get)
        );
    }

    let mut clients = vec![client];
    for user in sp.users.iter().take(users).skip(1) {
        let c = browser(&sp.ca, None)?;
        login_fresh(&c, sp, user)
            .await
            .map_err(|f| fail(&format!("signing in {user}"), f))?;
        login_session(&c, sp)
            .await
            .map_err(|f| fail(&format!("{user} with a session"), f))?;
        clients.push(c);
    }
    println!(
        "saml: {} browser{} signed in (one per user, each user's password verified once)",
        clients.len(),
        plural(clients.len())
    );
    Ok(clients)
}

/// The p50 of 20 new browsers' first request (`GET /login/style.css`: TCP, TLS handshake, a static answer)
/// and of their second one on the same connection: what a new connection costs, with no SAML in it.
async fn new_connection(sp: &Sp) -> Result<(Duration, Duration), BoxError> {
    let url = format!("{}/login/style.css", sp.base);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let c = browser(&sp.ca, None)?;
        for times in [&mut first, &mut second] {
            let t0 = Instant::now();
            let a = send(c.get(&url))
                .await
                .map_err(|f| format!("saml check: GET /login/style.css: {f}"))?;
            times.push(t0.elapsed());
            expect("GET /login/style.css", &a, StatusCode::OK)
                .map_err(|f| format!("saml check: {f}"))?;
        }
    }
    first.sort_unstable();
    second.sort_unstable();
    Ok((first[first.len() / 2], second[second.len() / 2]))
}

// ---------------------------------------------------------------- the load

#[derive(Clone, Copy)]
enum Mode {
    /// Each login from a new browser: a new client (cookie jar, TLS connection), no IdP session.
    Fresh,
    /// Each login from a new browser on a connection that is already open: the task's client, its cookie jar
    /// emptied before each login, no IdP session.
    Kept,
    /// Each task's browser, signed in before the clock, logs in again and again.
    Session,
}

/// A measured login run: `run.done` counts the logins that were ok, and `run.latencies` are theirs.
struct Outcome {
    run: Run,
    tally: Tally,
    /// Logins without a session: the sums of their three steps.
    steps: Option<[Duration; 3]>,
    server_cpu: Option<Duration>,
    loader_cpu: Option<Duration>,
    machine_cpu: Option<Duration>,
}

impl Outcome {
    fn other_cpu(&self) -> Option<Duration> {
        let (m, s, l) = (self.machine_cpu?, self.server_cpu?, self.loader_cpu?);
        Some(m.saturating_sub(s + l))
    }

    /// Server CPU per successful login.
    fn server_cpu_per_login(&self) -> Option<Duration> {
        let c = self.server_cpu.filter(|_| self.run.done > 0)?;
        Some(Duration::from_secs_f64(
            c.as_secs_f64() / self.run.done as f64,
        ))
    }
}

struct Part {
    tally: Tally,
    latencies: Vec<Duration>,
    /// Sums of the three steps of the successful logins without a session.
    steps: [Duration; 3],
    last: Option<Instant>,
    hit_count: bool,
}

/// `tasks` browsers logging in one login at a time until `plan.count` logins were started over all of them or
/// `plan.limit` has passed (each then finishes the login it is in). With [`Mode::Session`], task `t` uses
/// `sessions[t]`; with [`Mode::Kept`], one client per task whose cookies are cleared before each login; with
/// [`Mode::Fresh`], a new client per login. Logins without a session are as user `t` (modulo the users).
async fn login_run(
    name: &'static str,
    sp: &Arc<Sp>,
    mode: Mode,
    sessions: &[reqwest::Client],
    tasks: usize,
    plan: &Plan,
    server_pid: u32,
) -> Result<Outcome, BoxError> {
    if matches!(mode, Mode::Session) && sessions.len() < tasks {
        return Err(format!(
            "{name}: {tasks} tasks but {} signed-in browsers",
            sessions.len()
        )
        .into());
    }
    // Mode::Kept: one browser per task whose connection is open before the clock (GET /login/style.css).
    let mut kept = Vec::new();
    if matches!(mode, Mode::Kept) {
        for _ in 0..tasks {
            let jar = Arc::new(ResetJar::default());
            let c = browser(&sp.ca, Some(Arc::clone(&jar)))?;
            let a = send(c.get(format!("{}/login/style.css", sp.base)))
                .await
                .map_err(|f| format!("{name}: opening a connection: {f}"))?;
            expect("GET /login/style.css", &a, StatusCode::OK)
                .map_err(|f| format!("{name}: {f}"))?;
            kept.push((c, jar));
        }
    }
    let (max, limit) = (plan.count, plan.limit);
    let issued = Arc::new(AtomicU64::new(0));
    let (cpu0, srv0, busy0) = (cpu_time(None), cpu_time(Some(server_pid)), machine_busy());
    let start = Instant::now();
    let deadline = start + limit;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (sp, issued) = (Arc::clone(sp), Arc::clone(&issued));
        let own: Option<(reqwest::Client, Option<Arc<ResetJar>>)> = match mode {
            Mode::Fresh => None,
            Mode::Kept => kept
                .get(t)
                .map(|(c, jar)| (c.clone(), Some(Arc::clone(jar)))),
            Mode::Session => sessions.get(t).map(|c| (c.clone(), None)),
        };
        set.spawn(async move {
            let user = sp.users[t % sp.users.len()].clone();
            let mut part = Part {
                tally: Tally::default(),
                latencies: Vec::new(),
                steps: [Duration::ZERO; 3],
                last: None,
                hit_count: false,
            };
            while Instant::now() < deadline {
                if issued.fetch_add(1, Ordering::Relaxed) >= max {
                    part.hit_count = true;
                    break;
                }
                part.tally.sent += 1;
                let client = match &own {
                    Some((c, jar)) => {
                        if let Some(jar) = jar {
                            jar.reset();
                        }
                        c.clone()
                    }
                    None => match browser(&sp.ca, None) {
                        Ok(c) => c,
                        Err(e) => {
                            part.tally.fail(Failure::Transport(error_chain(&e)));
                            continue;
                        }
                    },
                };
                let t0 = Instant::now();
                let r = match mode {
                    Mode::Fresh | Mode::Kept => login_fresh(&client, &sp, &user).await.map(|f| {
                        for (sum, step) in part.steps.iter_mut().zip(f.steps) {
                            *sum += step;
                        }
                    }),
                    Mode::Session => login_session(&client, &sp).await.map(|_| ()),
                };
                let t1 = Instant::now();
                part.last = Some(t1);
                match r {
                    Ok(()) => {
                        part.tally.ok += 1;
                        part.latencies.push(t1 - t0);
                    }
                    Err(f) => part.tally.fail(f),
                }
            }
            part
        });
    }
    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let mut steps = [Duration::ZERO; 3];
    let mut end = start;
    let mut hit_count = false;
    while let Some(joined) = set.join_next().await {
        let part = joined.map_err(|e| format!("{name}: a load task failed: {e}"))?;
        latencies.extend(part.latencies);
        for (sum, step) in steps.iter_mut().zip(part.steps) {
            *sum += step;
        }
        end = end.max(part.last.unwrap_or(start));
        hit_count |= part.hit_count;
        tally.add(part.tally);
    }
    let (cpu1, srv1, busy1) = (cpu_time(None), cpu_time(Some(server_pid)), machine_busy());
    latencies.sort_unstable();
    Ok(Outcome {
        run: Run {
            name,
            tasks,
            done: tally.ok,
            elapsed: end - start,
            stop: if hit_count { Stop::Count } else { Stop::Time },
            latencies,
        },
        steps: matches!(mode, Mode::Fresh | Mode::Kept).then_some(steps),
        tally,
        server_cpu: srv0.zip(srv1).map(|(a, b)| b.saturating_sub(a)),
        loader_cpu: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        machine_cpu: busy0.zip(busy1).map(|(a, b)| b.saturating_sub(a)),
    })
}

// ---------------------------------------------------------------- the report

fn cpu(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn login_table(rows: &[Outcome], signing: &Signing) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nSP-initiated logins over HTTPS on 127.0.0.1, the real stratus binary; \"vs RSA\" = logins/s / raw RSA \
         signatures/s on min(browsers, 2) threads"
    );
    let _ = writeln!(
        out,
        "{:<31} {:>8} {:>6} {:>6} {:>9} {:>10} {:>10} {:>12}  {:<5} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "run",
        "browsers",
        "logins",
        "secs",
        "logins/s",
        "p50",
        "p99",
        "errors",
        "stop",
        "server cpu",
        "cpu/login",
        "loader cpu",
        "other cpu",
        "vs RSA"
    );
    for o in rows {
        let r = &o.run;
        let t = &o.tally;
        let pct = |q| r.percentile(q).map_or("-".into(), format_duration);
        let errors = t.errors_cell();
        let vs = signing
            .ceiling(r.tasks)
            .filter(|&(_, raw)| raw > 0.0)
            .map_or("-".into(), |(_, raw)| {
                format!("{:.1}%", 100.0 * r.per_second() / raw)
            });
        let _ = writeln!(
            out,
            "{:<31} {:>8} {:>6} {:>6.2} {:>9.1} {:>10} {:>10} {:>12}  {:<5} {:>10} {:>10} {:>10} {:>9} {:>7}",
            r.name,
            r.tasks,
            r.done,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            pct(50.0),
            pct(99.0),
            errors,
            stop_name(r.stop),
            cpu(o.server_cpu),
            o.server_cpu_per_login().map_or("-".into(), format_duration),
            cpu(o.loader_cpu),
            cpu(o.other_cpu()),
            vs
        );
    }
    let _ = writeln!(
        out,
        "no session: a new browser per login, GET sso → 303, GET /login, POST /login → the SAMLResponse form; \
         `new conn`: a new client each time (new cookie jar, new TCP and TLS connection); `kept conn`: one client \
         per browser whose connection was opened before the clock, its cookie jar emptied before each login. With \
         the cache on, every user's first password verification was before the clock, so each POST /login is a \
         credential-cache hit (an HMAC), not argon2id; with the cache off (STRATUS_CREDENTIAL_CACHE=false, a \
         restart on the same data directory) each one verifies argon2id"
    );
    let _ = writeln!(
        out,
        "with session: the browser signed in before the clock sends a new AuthnRequest; GET sso → 200 with the \
         SAMLResponse form (authorize_session, then the signed assertion)"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for o in rows {
        let label = format!(
            "{}, {} browser{}",
            o.run.name,
            o.run.tasks,
            plural(o.run.tasks)
        );
        let capacity = o.run.elapsed.as_secs_f64() * cpus as f64;
        if let Some(other) = o
            .other_cpu()
            .filter(|c| c.as_secs_f64() > OTHER_ALARM * capacity)
        {
            let _ = writeln!(
                out,
                "!!! {label}: {:.1} s of CPU ({:.0}% of the machine) went to other processes during the run (a \
                 cargo build?): its figures are disturbed",
                other.as_secs_f64(),
                100.0 * other.as_secs_f64() / capacity
            );
        }
        let t = &o.tally;
        if let Some(steps) = o.steps.filter(|_| o.run.done > 0) {
            let mean = |d: Duration| format_duration(d / o.run.done as u32);
            let _ = writeln!(
                out,
                "{label}: mean per login: GET sso{} {}, GET /login {}, POST /login {}",
                if o.run.name.ends_with("new conn") {
                    " (with the new connection)"
                } else {
                    ""
                },
                mean(steps[0]),
                mean(steps[1]),
                mean(steps[2])
            );
        }
        if t.errors() == 0 {
            let _ = writeln!(
                out,
                "{label}: all {} logins delivered a Success SAMLResponse",
                t.sent
            );
        } else {
            let _ = writeln!(
                out,
                "!!! {label}: {} of {} logins FAILED ({}); first: {}",
                t.errors(),
                t.sent,
                t.describe_errors(),
                t.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    out
}

/// The ratios the issue asks for: logins against the RSA ceiling, and what a login costs the server next to
/// one signature.
fn ratios(rows: &[Outcome], signing: &Signing) -> String {
    let mut out = String::from("ratios:");
    for threads in SIGN_THREADS {
        let (Some(raw), Some(a)) = (
            signing.raw(threads),
            signing
                .runs
                .iter()
                .find(|r| r.name == ASSERTION && r.tasks == threads),
        ) else {
            continue;
        };
        let _ = write!(
            out,
            "\n  ceiling, {threads} thread{}: {raw:.0} raw RSA signatures/s ({} each); assertion signings {:.0}/s \
             = {:.0}% of it",
            plural(threads),
            format_duration(Duration::from_secs_f64(threads as f64 / raw.max(f64::EPSILON))),
            a.per_second(),
            100.0 * a.per_second() / raw.max(f64::EPSILON)
        );
    }
    let one_sign = signing
        .raw(1)
        .filter(|&r| r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let find = |name: &str, tasks: usize| {
        rows.iter()
            .find(|o| o.run.name == name && o.run.tasks == tasks)
    };
    let mut concurrency: Vec<usize> = rows.iter().map(|o| o.run.tasks).collect();
    concurrency.sort_unstable();
    concurrency.dedup();
    for c in concurrency {
        let Some(session) = find(SESSION, c) else {
            continue;
        };
        let s = session.run.per_second();
        if let Some((threads, raw)) = signing.ceiling(c) {
            let _ = write!(
                out,
                "\n  with session, {c} browser{}: {s:.0} logins/s = {:.1}% of the {threads}-thread RSA ceiling \
                 ({raw:.0}/s)",
                plural(c),
                100.0 * s / raw.max(f64::EPSILON)
            );
        }
        if let (Some(per), Some(sign)) = (session.server_cpu_per_login(), one_sign) {
            let _ = write!(
                out,
                "; server CPU per login {}, of which one RSA signature ({}) is {:.0}%",
                format_duration(per),
                format_duration(sign),
                100.0 * sign.as_secs_f64() / per.as_secs_f64().max(f64::EPSILON)
            );
        }
        for name in [FRESH_ON, KEPT_ON, FRESH_OFF] {
            if let Some(fresh) = find(name, c) {
                let f = fresh.run.per_second();
                let _ = write!(
                    out,
                    "\n  {name}, {c} browser{}: {f:.0} logins/s = {:.2}x with session{}",
                    plural(c),
                    f / s.max(f64::EPSILON),
                    fresh
                        .server_cpu_per_login()
                        .map_or(String::new(), |d| format!(
                            "; server CPU per login {}",
                            format_duration(d)
                        ))
                );
            }
        }
    }
    out
}
