//! The HTTP(S) listener's connections: TLS handshakes, the total and per-source connection caps, and the timeouts
//! that close slow or silent clients — headers not sent in time (HTTP/1.1), bodies not sent in time (answered 408),
//! connections with no request in progress for the idle time (after the handshake, between keep-alive requests,
//! an HTTP/2 connection kept busy with pings or half-sent headers). It serves the router it is given and owns no
//! route.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_source: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

/// What a connection's requests are doing: how many are in progress, and when one last began or ended (in
/// milliseconds since the connection was accepted).
struct Activity {
    opened: tokio::time::Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            opened: tokio::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn note(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    fn last(&self) -> tokio::time::Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Acquire))
    }
}

/// A connection's transport with an idle deadline: when no request has been in progress for the idle time, reads
/// fail and the connection closes. Only requests count, not traffic: a client cannot hold a connection by
/// trickling bytes, HTTP/2 pings or a header block it never finishes. The timer is moved when it fires, so a
/// busy connection costs one timer update per idle period.
struct Watched<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    fn new(inner: S, idle: Duration, activity: Arc<Activity>) -> Self {
        Watched {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            activity,
        }
    }

    /// `true` when no request has been in progress for the idle time.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = tokio::time::Instant::now();
            if self.activity.in_flight.load(Ordering::Acquire) > 0 {
                // A request is being answered: silence is the handler's, not the client's.
                self.deadline.as_mut().reset(now + self.idle);
                continue;
            }
            let quiet_until = self.activity.last() + self.idle;
            if quiet_until > now {
                // A request began or ended since the timer was set: move it.
                self.deadline.as_mut().reset(quiet_until);
                continue;
            }
            return true;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => {
                if self.expired(cx) {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "idle connection",
                    )))
                } else {
                    Poll::Pending
                }
            }
            ready => ready,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request as in progress until its answer is ready.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.note();
        InFlight(Arc::clone(a))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.note();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request body that must arrive whole before its deadline: a read after it fails and marks the request late
/// (it is then answered 408, whatever the handler made of the cut-off body), so a client sending a byte every few
/// seconds cannot hold a request open. Nothing is buffered here; each route keeps its own size limit.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.late.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request whose body did not arrive in time; an HTTP/1.1 connection is closed after it.
fn request_timeout(version: axum::http::Version, limit: Duration) -> axum::response::Response {
    use axum::http::{header, HeaderValue, StatusCode};
    let mut r = axum::response::Response::new(Body::from(format!(
        "The request body did not arrive within {} seconds.\n",
        limit.as_secs()
    )));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if version < axum::http::Version::HTTP_2 {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

fn has_body(req: &Request) -> bool {
    use axum::http::header;
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Serve `app` on `listener` (over TLS when `tls` is given) until `stop` turns true, then let open connections
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let total = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_source = limits.max_per_source.min(limits.max_connections / 2).max(1);
    let sources = core_directory::limits::PerSource::new(per_source);
    let note = |ip: IpAddr, why: &str| {
        if sources.note_refusal(ip) {
            tracing::warn!(source = %ip, "{why}; closing new HTTPS connections from this source");
        }
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut failures: (Option<Instant>, u64) = (None, 0);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    failures.1 += 1;
                    if failures.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(error = %e, failures = failures.1, "HTTPS accept failed");
                        failures = (Some(Instant::now()), 0);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(slot) = sources.take(peer.ip()) else {
            note(
                peer.ip(),
                "this source holds its share of HTTPS connections",
            );
            continue;
        };
        let Ok(permit) = Arc::clone(&total).try_acquire_owned() else {
            note(peer.ip(), "the HTTPS connection limit is reached");
            continue;
        };
        // Small TLS and HTTP/2 writes must not wait for the peer's delayed ACK (Nagle).
        let _ = tcp.set_nodelay(true);
        let activity = Activity::new();
        let app = app.clone();
        let flights = Arc::clone(&activity);
        let service = tower::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            let flight = InFlight::start(&flights);
            async move {
                let _flight = flight;
                let version = req.version();
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                if !has_body(&req) {
                    return tower::ServiceExt::oneshot(app, req).await;
                }
                let late = Arc::new(AtomicBool::new(false));
                let req = req.map(|inner| {
                    Body::new(DeadlineBody {
                        inner,
                        deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
                        late: Arc::clone(&late),
                    })
                });
                let answer = tower::ServiceExt::oneshot(app, req).await;
                if late.load(Ordering::Acquire) {
                    return Ok(request_timeout(version, limits.body_timeout));
                }
                answer
            }
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        builder.http2().timer(TokioTimer::new());
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let io = TokioIo::new(Watched::new(stream, limits.idle_timeout, activity));
                    let conn = builder.serve_connection_with_upgrades(io, service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                None => {
                    let io = TokioIo::new(Watched::new(tcp, limits.idle_timeout, activity));
                    let conn = builder.serve_connection_with_upgrades(io, service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
