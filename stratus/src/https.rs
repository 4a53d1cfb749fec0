//! The HTTP(S) listener's connections: TLS handshakes, the total and per-source connection caps, and the timeouts
//! that close slow or silent clients — headers not sent in time (HTTP/1.1), bodies not sent in time, connections
//! silent with no request in progress (after the handshake, between keep-alive requests). It serves the router it
//! is given and owns no route.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A connection's transport with an idle deadline: when neither side has sent anything for the idle time and no
/// request is in progress, reads fail and the connection closes. Traffic only notes the time; the timer is moved
/// when it fires, so a busy connection costs one timer update per idle period, not one per read.
struct Watched<S> {
    inner: S,
    idle: Duration,
    last: tokio::time::Instant,
    deadline: Pin<Box<tokio::time::Sleep>>,
    in_flight: Arc<AtomicUsize>,
}

impl<S> Watched<S> {
    fn new(inner: S, idle: Duration, in_flight: Arc<AtomicUsize>) -> Self {
        Watched {
            inner,
            idle,
            last: tokio::time::Instant::now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
            in_flight,
        }
    }

    fn touch(&mut self) {
        self.last = tokio::time::Instant::now();
    }

    /// `true` when the connection has been silent too long with nothing in progress.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = tokio::time::Instant::now();
            let quiet_until = self.last + self.idle;
            if quiet_until > now {
                // There was traffic since the timer was set: move it.
                self.deadline.as_mut().reset(quiet_until);
                continue;
            }
            if self.in_flight.load(Ordering::Acquire) > 0 {
                // A request is being answered: silence is the handler's, not the client's.
                self.last = now;
                self.deadline.as_mut().reset(now + self.idle);
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
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
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
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request as in progress until its answer is ready.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(n: &Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(n))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request body that must arrive whole before its deadline: a read after it fails (the handler answers as for
/// a body cut off), so a client sending a byte every few seconds cannot hold a request open. Nothing is buffered
/// here; each route keeps its own size limit.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
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
        let in_flight = Arc::new(AtomicUsize::new(0));
        let app = app.clone();
        let flights = Arc::clone(&in_flight);
        let service = tower::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            let flight = InFlight::start(&flights);
            async move {
                let _flight = flight;
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                let req = if has_body(&req) {
                    req.map(|inner| {
                        Body::new(DeadlineBody {
                            inner,
                            deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
                        })
                    })
                } else {
                    req
                };
                tower::ServiceExt::oneshot(app, req).await
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
                    let io = TokioIo::new(Watched::new(stream, limits.idle_timeout, in_flight));
                    let conn = builder.serve_connection_with_upgrades(io, service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                None => {
                    let io = TokioIo::new(Watched::new(tcp, limits.idle_timeout, in_flight));
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
