//! `palisade serve`: the HTTPS admission webhook. This module is the only part of Palisade that
//! knows HTTP.
//!
//! One tokio runtime, rustls with ALPN (HTTP/2 and HTTP/1.1, keep-alive), hyper's automatic
//! connection builder. Admission reviews are evaluated inline on the worker that read them: an
//! evaluation is microseconds, much less than a hop to a blocking pool would cost. The engine is
//! an immutable `Arc` swapped on reload (file change or SIGHUP); a request keeps the engine it
//! started with, so a reload never fails a request, and a bundle that does not load leaves the
//! old engine serving. The exception is `verifyImages` rules, which wait on registries: they
//! run in `block_in_place` (see [`images`]) so the worker's other requests move elsewhere.
//!
//! Limits: bodies over `max_body` bytes get 413, a client slower than `read_timeout` for the
//! headers or the body gets 408 (or the connection is closed), evaluation checks a per-request
//! deadline between policies and answers by the failure policy when it passes.

pub mod admission;
pub mod cel;
pub mod config;
pub mod engine;
pub mod images;
pub mod logger;
pub mod metrics;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};

use palisade_compiler::bundle::Bundle;

use crate::images::Verifier;

pub use engine::{Endpoint, Engine};
use metrics::{Metrics, Outcome};

/// Where the policies come from: a bundle file, or policy files compiled at start (the CLI
/// supplies the compiler, since the runtime never parses policy YAML).
pub trait BundleSource: Send + Sync {
    /// Loads (or compiles) the bundle; returns it with its content digest.
    fn load(&self) -> Result<(Bundle, String), String>;
    /// A value that changes when the source changes (modification times and sizes, or a
    /// registry digest), for the watcher; `None` when it cannot be read right now. It is called
    /// on a blocking thread, so it may do I/O.
    fn fingerprint(&self) -> Option<u64>;
    fn describe(&self) -> String;
}

pub enum TlsSource {
    Files { cert: PathBuf, key: PathBuf },
    SelfManaged(tls::SelfManaged),
}

pub struct Config {
    pub addr: SocketAddr,
    pub tls: TlsSource,
    pub source: Box<dyn BundleSource>,
    /// Largest accepted body (Kubernetes caps objects near 3 MiB).
    pub max_body: usize,
    pub request_deadline: Duration,
    /// Time allowed to read a request's headers, and separately its body.
    pub read_timeout: Duration,
    pub handshake_timeout: Duration,
    /// How often the bundle source is checked for changes; zero disables watching.
    pub watch_interval: Duration,
    pub shutdown_grace: Duration,
    /// Log every review, not only denials and errors.
    pub log_requests: bool,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// The image verifier for `verifyImages` rules (registry access, its cache shared across
    /// reloads); `None` leaves image rules out of admission.
    pub images: Option<Arc<Verifier>>,
}

impl Config {
    pub fn new(addr: SocketAddr, tls: TlsSource, source: Box<dyn BundleSource>) -> Config {
        Config {
            addr,
            tls,
            source,
            max_body: 3 << 20,
            request_deadline: Duration::from_secs(8),
            read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            watch_interval: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(20),
            log_requests: false,
            workers: 0,
            images: None,
        }
    }
}

/// A structured log line (JSON) on standard error, through the log writer (see [`logger`]).
/// For the server's own events; a request's line is built with [`logger::Line`].
pub fn log(level: &str, msg: &str, fields: Value) {
    logger::Line::new(level, msg).fields(&fields).send_wait();
}

/// HTTP/2 flow-control window per stream: a body of the default size limit (3 MiB) and a margin,
/// so a whole review of the largest accepted size comes without waiting for window updates.
const H2_STREAM_WINDOW: u32 = 4 << 20;
/// The API server multiplexes many reviews on one connection, hence a generous stream limit.
const H2_MAX_STREAMS: u32 = 512;

struct State {
    engine: RwLock<Option<Arc<Engine>>>,
    metrics: Metrics,
    source: Box<dyn BundleSource>,
    max_body: usize,
    request_deadline: Duration,
    read_timeout: Duration,
    log_requests: bool,
    /// Serialises reloads so a SIGHUP and the watcher do not compile twice at once.
    reload_lock: tokio::sync::Mutex<Option<u64>>,
    images: Option<Arc<Verifier>>,
    /// Notified on every tick of the server's clock for slow bodies (see [`read_body`]).
    tick: tokio::sync::Notify,
}

impl State {
    fn engine(&self) -> Option<Arc<Engine>> {
        self.engine.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Runs the webhook until SIGTERM or Ctrl-C, then drains in-flight requests.
pub fn run(config: Config) -> Result<(), String> {
    // One worker (one core, or `--workers 1`) gets a current-thread runtime: a stream's task
    // that finishes its response wakes the connection's task, which a multi-threaded runtime
    // runs next (its LIFO slot), writing and flushing every response alone; on one thread the
    // wake-up queues behind the streams already ready, and their responses go out in one write.
    // On one core under the load test that was 116 instead of 148 us of server CPU per review.
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    let mut builder = if workers == 1 { tokio::runtime::Builder::new_current_thread() } else { tokio::runtime::Builder::new_multi_thread() };
    if workers > 1 {
        builder.worker_threads(workers);
    }
    let rt = builder.enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The verifier owns a runtime of its own, which must not be dropped inside an async
    // context: this reference outlives the server's tasks, so the last drop happens here.
    let images = config.images.clone();
    let served = rt.block_on(serve(config));
    drop(rt);
    drop(images);
    logger::flush(Duration::from_secs(2));
    served
}

async fn serve(config: Config) -> Result<(), String> {
    let (store, authority) = match &config.tls {
        TlsSource::Files { cert, key } => (tls::CertStore::new(tls::load_files(cert, key)?), None),
        TlsSource::SelfManaged(settings) => {
            let (auth, key) = tls::Authority::start(settings.clone())?;
            log("info", "self-managed certificate issued", json!({"dir": settings.dir.display().to_string()}));
            (tls::CertStore::new(key), Some(auth))
        }
    };
    let tls_config = tls::server_config(store.clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));

    let state = Arc::new(State {
        engine: RwLock::new(None),
        metrics: Metrics::default(),
        source: config.source,
        max_body: config.max_body,
        request_deadline: config.request_deadline,
        read_timeout: config.read_timeout,
        log_requests: config.log_requests,
        reload_lock: tokio::sync::Mutex::new(None),
        images: config.images.clone(),
        tick: tokio::sync::Notify::new(),
    });
    // The first load must succeed: a webhook with no policies would allow everything.
    reload(&state, "start").await?;

    let listener = tokio::net::TcpListener::bind(config.addr).await.map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    log("info", "listening", json!({"addr": local.to_string(), "source": state.source.describe()}));

    if config.watch_interval > Duration::ZERO {
        tokio::spawn(watch(state.clone(), config.watch_interval));
    }
    tokio::spawn(reload_on_sighup(state.clone(), match &config.tls {
        TlsSource::Files { cert, key } => Some((cert.clone(), key.clone(), store.clone())),
        TlsSource::SelfManaged(_) => None,
    }));
    if let Some(auth) = authority {
        tokio::spawn(rotate(auth, store.clone()));
    }
    // The clock of body reads that wait (see [`read_body`]), which refuses a slow body at most one
    // tick late: a quarter of the read timeout, at least 10 ms and at most a second.
    let tick_every = (config.read_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    tokio::spawn(tick(state.clone(), tick_every));

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, _peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        log("warn", "accept failed", json!({"error": e.to_string()}));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                state.metrics.connections.fetch_add(1, Ordering::Relaxed);
                let acceptor = acceptor.clone();
                let state = state.clone();
                let watcher = graceful.watcher();
                let handshake_timeout = config.handshake_timeout;
                tokio::spawn(connection(tcp, acceptor, state, watcher, handshake_timeout));
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    log("info", "shutting down: draining in-flight requests", json!({"connections": graceful.count()}));
    match tokio::time::timeout(config.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => log("info", "stopped", json!({})),
        Err(_) => log("warn", "stopped with connections still open after the grace period", json!({})),
    }
    Ok(())
}

/// TCP keep-alive of accepted connections: how long a connection may be idle before the kernel
/// probes it, and how often it probes after that.
const TCP_KEEPALIVE: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(10));

/// Serves one accepted connection: the TLS handshake, then HTTP/2 or HTTP/1.1 as ALPN agreed.
///
/// The protocol is known from ALPN (the API server always offers it), so the connection goes
/// straight to hyper's HTTP/2 or HTTP/1.1 server; hyper_util's automatic builder, which reads the
/// first bytes to tell the protocols apart and then replays them through a wrapper on every
/// read, serves only clients that offered no ALPN. Dead peers are found by TCP keep-alive (as Go
/// servers, Kyverno's included, do) rather than HTTP/2 pings: hyper's ping keeper takes a lock
/// and reads the clock on every frame received and every time the connection is polled.
async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
    watcher: hyper_util::server::graceful::Watcher,
    handshake_timeout: Duration,
) {
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE.0).with_interval(TCP_KEEPALIVE.1);
    let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
    let Ok(Ok(stream)) = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await else {
        return;
    };
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let read_timeout = state.read_timeout;
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, req).await) }
    });
    let io = TokioIo::new(stream);
    match alpn.as_deref() {
        Some(b"h2") => {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            http2_settings(&mut builder);
            let _ = watcher.watch(builder.serve_connection(io, service)).await;
        }
        Some(_) => {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(read_timeout).keep_alive(true);
            let _ = watcher.watch(builder.serve_connection(io, service)).await;
        }
        None => {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(read_timeout).keep_alive(true);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(H2_MAX_STREAMS)
                .initial_stream_window_size(H2_STREAM_WINDOW)
                .initial_connection_window_size(H2_STREAM_WINDOW * 4);
            let _ = watcher.watch(builder.serve_connection(io, service).into_owned()).await;
        }
    }
}

/// The HTTP/2 settings (the same on the automatic builder, for clients without ALPN).
fn http2_settings(builder: &mut hyper::server::conn::http2::Builder<TokioExecutor>) {
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_STREAM_WINDOW * 4);
}

/// Wakes the body reads that wait, every `every`, to check their deadlines.
async fn tick(state: Arc<State>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.tick.notify_waiters();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads the source and swaps the engine in. On failure the old engine keeps serving.
async fn reload(state: &Arc<State>, reason: &str) -> Result<(), String> {
    let mut last = state.reload_lock.lock().await;
    let fingerprint = fingerprint(state).await;
    let started = Instant::now();
    let st = state.clone();
    let (done, answer) = tokio::sync::oneshot::channel();
    // Loading and building the engine (native code for the compiled sets included) takes tens
    // of milliseconds of CPU. It runs on a thread of its own, never on a worker (it would stall
    // the requests that worker serves), and at the lowest scheduling priority, so on a core the
    // server shares with it (one core, or all cores busy) requests keep theirs and the reload
    // takes the time they leave. The start-up load runs at normal priority: nothing waits.
    // The same thread frees the engine the new one replaces (about 0.6 ms for the pod-security
    // and best-practices sets), which would otherwise stall the worker that swapped it.
    let background = reason != "start";
    let (retire, retired) = std::sync::mpsc::sync_channel::<Option<Arc<Engine>>>(1);
    let spawned = std::thread::Builder::new().name("palisade-reload".into()).spawn(move || {
        if background {
            lower_priority();
        }
        let engine = st.source.load().map(|(bundle, digest)| {
            let mut engine = Engine::new(bundle, digest, started.elapsed()).with_images(st.images.clone()).with_metrics(&st.metrics);
            engine.load_time = started.elapsed();
            engine
        });
        let _ = done.send(engine);
        if let Ok(Some(old)) = retired.recv() {
            free_when_unshared(old);
        }
    });
    let loaded = match spawned {
        Ok(_) => answer.await.unwrap_or_else(|_| Err("loading the bundle failed: the loading thread stopped".into())),
        Err(e) => Err(format!("loading the bundle failed: no thread to load it on: {e}")),
    };
    match loaded {
        Ok(engine) => {
            log(
                "info",
                "bundle loaded",
                json!({
                    "reason": reason, "digest": engine.digest, "policies": engine.policy_count,
                    "rules": engine.rule_count, "load_ms": engine.load_time.as_secs_f64() * 1000.0,
                    "unsupported_rules": engine.unsupported.len(),
                }),
            );
            let old = state.engine.write().unwrap_or_else(std::sync::PoisonError::into_inner).replace(Arc::new(engine));
            let _ = retire.send(old);
            state.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
            *last = fingerprint;
            Ok(())
        }
        Err(e) => {
            state.metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
            log("error", "bundle not loaded; the previous one keeps serving", json!({"reason": reason, "error": e}));
            // Remember the fingerprint anyway so a broken file is not retried in a loop.
            *last = fingerprint;
            Err(e)
        }
    }
}

/// How long a retired engine is waited for: requests that took it before the swap hold it
/// until they answer, which the per-request deadline bounds.
const RETIRE_WAIT: Duration = Duration::from_secs(30);

/// Frees a retired engine on the calling thread once no request holds it any more. Requests that
/// took it before the swap are polled for every millisecond; one that outlives the wait frees it
/// itself when it answers.
fn free_when_unshared<T>(mut old: Arc<T>) {
    let until = Instant::now() + RETIRE_WAIT;
    loop {
        match Arc::try_unwrap(old) {
            Ok(engine) => {
                drop(engine);
                return;
            }
            Err(shared) if Instant::now() < until => {
                old = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return,
        }
    }
}

/// Gives the calling thread the lowest scheduling priority (nice 19). On Linux the nice value
/// belongs to the thread, not the process. Failing to lower it is harmless: the reload then
/// competes with requests as an equal, as it did before.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
            log("warn", "reload thread priority not lowered", json!({"error": e.to_string()}));
        }
    }
}

/// The source's fingerprint, read on a blocking thread: a registry source asks the registry.
async fn fingerprint(state: &Arc<State>) -> Option<u64> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.source.fingerprint()).await.ok().flatten()
}

async fn watch(state: Arc<State>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = fingerprint(&state).await;
        let seen = *state.reload_lock.lock().await;
        if now.is_some() && now != seen {
            let _ = reload(&state, "source changed").await;
        }
    }
}

async fn reload_on_sighup(state: Arc<State>, cert_files: Option<(PathBuf, PathBuf, Arc<tls::CertStore>)>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            let _ = reload(&state, "SIGHUP").await;
            if let Some((cert, key, store)) = &cert_files {
                match tls::load_files(cert, key) {
                    Ok(k) => store.set(k),
                    Err(e) => log("error", "TLS certificate not reloaded", json!({"error": e})),
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (state, cert_files);
    }
}

async fn rotate(mut auth: tls::Authority, store: Arc<tls::CertStore>) {
    loop {
        tokio::time::sleep(auth.check_interval()).await;
        match auth.renew_if_due() {
            Ok(Some(key)) => {
                store.set(key);
                log("info", "serving certificate renewed", json!({}));
            }
            Ok(None) => {}
            Err(e) => log("error", "certificate renewal failed; retrying", json!({"error": e})),
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz" | "/livez") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => match state.engine() {
            Some(e) => text(StatusCode::OK, format!("ready: bundle {}\n", e.digest)),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "no bundle loaded yet\n"),
        },
        (&Method::GET, "/metrics") => {
            let mut r = text(StatusCode::OK, state.metrics.render(state.engine().as_deref()));
            r.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"));
            r
        }
        (method, p) => match Endpoint::from_path(p) {
            Some(endpoint) if method == Method::POST => admit(state, endpoint, req).await,
            Some(_) => text(StatusCode::METHOD_NOT_ALLOWED, "admission endpoints take POST\n"),
            None => text(StatusCode::NOT_FOUND, format!("no such endpoint: {p}\n")),
        },
    }
}

fn reject(state: &State, endpoint: Endpoint, status: StatusCode, message: String) -> Response<Full<Bytes>> {
    state.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
    state.metrics.record(endpoint, Outcome::Rejected, Duration::ZERO, &[]);
    log("warn", "request rejected", json!({"endpoint": endpoint.label(), "status": status.as_u16(), "error": message}));
    text(status, format!("{message}\n"))
}

type Collected = Result<http_body_util::Collected<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// Reads a whole body within the read timeout. A timer per request would cost a registration in
/// tokio's timer wheel and, for a body that is not there yet, a write to the runtime's wake-up
/// descriptor; instead a body that arrived with its headers (nearly all of them) is taken on the
/// first poll, and one that did not waits for its data or the server's tick ([`tick`]), after
/// which it checks its deadline. `Err` means the timeout passed.
async fn read_body(state: &State, body: Limited<Incoming>) -> Result<Collected, ()> {
    let mut collect = std::pin::pin!(body.collect());
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(collect.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(collected) = first {
        return Ok(collected);
    }
    let deadline = Instant::now() + state.read_timeout;
    loop {
        // Registered before the body is polled again, so a tick in between is not missed.
        let mut tick = std::pin::pin!(state.tick.notified());
        tick.as_mut().enable();
        tokio::select! {
            biased;
            collected = &mut collect => return Ok(collected),
            () = tick => {
                if Instant::now() >= deadline {
                    return Err(());
                }
            }
        }
    }
}

async fn admit(state: &State, endpoint: Endpoint, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        if !ct.starts_with("application/json") {
            return reject(state, endpoint, StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("content type {ct:?} is not application/json"));
        }
    }
    // A CEL path may name the policies to run (the generated webhook configurations do).
    let named = if endpoint.is_cel() { Endpoint::policies_in_path(req.uri().path()) } else { None };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body as u64) {
        return reject(state, endpoint, StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over the {} byte limit", state.max_body));
    }
    let body = Limited::new(req.into_body(), state.max_body);
    let bytes = match read_body(state, body).await {
        Err(()) => return reject(state, endpoint, StatusCode::REQUEST_TIMEOUT, "the body was not received in time".into()),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                return reject(state, endpoint, StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over the {} byte limit", state.max_body));
            }
            return reject(state, endpoint, StatusCode::BAD_REQUEST, format!("the body could not be read: {e}"));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let started = Instant::now();
    let deadline = started + state.request_deadline;
    let engine = state.engine();
    // Validate reviews go through the compiled set when they can; the rest (and any review
    // the fast path declines) take the general path.
    let fast = engine.as_deref().and_then(|e| admission::review_compiled(e, endpoint, &bytes, deadline));
    let (adm, verdict) = match fast {
        Some(answer) => answer,
        None => {
            let general = move |engine: Option<Arc<Engine>>, bytes: Bytes, named: Option<Vec<String>>| {
                let adm = admission::parse(&bytes)?;
                let verdict = match engine.as_deref() {
                    Some(engine) if endpoint.is_cel() => cel::review(engine, endpoint, &adm, deadline, named.as_deref()),
                    Some(engine) => admission::review(engine, endpoint, &adm, deadline),
                    None => admission::unavailable(endpoint, "no policy bundle is loaded".into()),
                };
                Ok::<_, admission::BadRequest>((adm, verdict))
            };
            // Image verification waits on registries. On the current-thread runtime nothing
            // else would run meanwhile, so those reviews go to the blocking pool (on the
            // multi-threaded one, `images` moves the worker's other tasks away instead).
            let current_thread = tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread;
            let answer = if current_thread && engine.as_deref().is_some_and(|e| e.image_policies(endpoint).is_some()) {
                tokio::task::spawn_blocking(move || general(engine, bytes, named))
                    .await
                    .unwrap_or_else(|e| Err(admission::BadRequest(format!("the review failed: {e}"))))
            } else {
                general(engine, bytes, named)
            };
            match answer {
                Ok(answer) => answer,
                Err(e) => return reject(state, endpoint, StatusCode::BAD_REQUEST, e.0),
            }
        }
    };
    let elapsed = started.elapsed();
    let outcome = match (&verdict.error, verdict.allowed) {
        (Some(_), _) => Outcome::Error,
        (None, true) => Outcome::Allowed,
        (None, false) => Outcome::Denied,
    };
    state.metrics.record(endpoint, outcome, elapsed, &verdict.results);
    if state.log_requests || !matches!(outcome, Outcome::Allowed) {
        logger::Line::new(if matches!(outcome, Outcome::Error) { "error" } else { "info" }, "admission review")
            .str("endpoint", endpoint.label())
            .str("uid", &adm.uid)
            .str("operation", &adm.operation)
            .str("kind", &adm.kind)
            .str("namespace", &adm.namespace)
            .str("name", &adm.name)
            .bool("dry_run", adm.dry_run)
            .bool("allowed", verdict.allowed)
            .opt_str("error", verdict.error.as_deref())
            .u64("micros", u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
            .send();
    }
    let mut r = Response::new(Full::new(Bytes::from(admission::response_bytes(&adm.uid, &verdict))));
    r.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::free_when_unshared;

    /// Records the name of the thread it is dropped on.
    struct Retired(Arc<Mutex<Option<String>>>);

    impl Drop for Retired {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = std::thread::current().name().map(str::to_owned);
        }
    }

    #[test]
    fn a_retired_engine_is_freed_by_the_reload_thread_after_the_last_request_lets_go() {
        let dropped_on = Arc::new(Mutex::new(None));
        let engine = Arc::new(Retired(dropped_on.clone()));
        // A request that took the engine before the swap and answers 30 ms later.
        let (taken, started) = mpsc::channel();
        let request = {
            let held = engine.clone();
            std::thread::Builder::new()
                .name("worker".into())
                .spawn(move || {
                    taken.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(30));
                    drop(held);
                })
                .unwrap()
        };
        started.recv().unwrap();
        std::thread::Builder::new().name("palisade-reload".into()).spawn(move || free_when_unshared(engine)).unwrap().join().unwrap();
        request.join().unwrap();
        assert_eq!(dropped_on.lock().unwrap().as_deref(), Some("palisade-reload"));
    }
}
