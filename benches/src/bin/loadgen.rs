//! A load generator for `palisade serve`: AdmissionReviews over HTTPS/2 at a fixed rate (open
//! loop: latency counts from the moment a request was due, so a stalled server cannot hide its
//! queueing) or as fast as a fixed number of requests in flight allows (closed loop, to find
//! saturation). Optionally reloads the server's bundle under load: SIGHUP at even intervals,
//! each one sent only after the server's reload counter (`/metrics`) shows the previous one
//! done, so no signal coalesces with a reload in progress and every reload is executed.
//! Prints throughput, p50/p90/p99/max latency, the failed request count and, with reloads,
//! how many the server executed. `--latency-log FILE` also writes one line per request: when it
//! was due (open loop) or sent (closed loop), in microseconds from the start, and its latency in
//! microseconds, to see when slow requests happen (a stall of the machine shows as a run of them).
//! `--stall-probe SECONDS` sends nothing: it spins on the clock and reports when its thread was
//! kept off the CPU, the machine's own latency floor.
//!
//! The requests are the corpus' own test resources (`resource*.yaml` beside the policies) of
//! the folders given (`--resources`), and the objects of the AdmissionReview files given
//! (`--review`), each wrapped in a CREATE AdmissionReview, sent round-robin.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;

struct Args {
    addr: String,
    ca: PathBuf,
    path: String,
    rate: u64,
    concurrency: usize,
    duration: Duration,
    connections: usize,
    reload_pid: Option<u32>,
    reloads: u32,
    resources: Vec<PathBuf>,
    reviews: Vec<PathBuf>,
    latency_log: Option<PathBuf>,
    stall_probe: Option<Duration>,
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:9443".into(),
        ca: PathBuf::from("ca.crt"),
        path: "/validate/fail".into(),
        rate: 0,
        concurrency: 64,
        duration: Duration::from_secs(10),
        connections: 4,
        reload_pid: None,
        reloads: 0,
        resources: Vec::new(),
        reviews: Vec::new(),
        latency_log: None,
        stall_probe: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = val(),
            "--ca" => a.ca = PathBuf::from(val()),
            "--path" => a.path = val(),
            "--rate" => a.rate = val().parse().unwrap(),
            "--concurrency" => a.concurrency = val().parse().unwrap(),
            "--duration" => a.duration = Duration::from_secs_f64(val().parse().unwrap()),
            "--connections" => a.connections = val().parse().unwrap(),
            "--reload-pid" => a.reload_pid = Some(val().parse().unwrap()),
            "--reloads" => a.reloads = val().parse().unwrap(),
            "--resources" => a.resources.push(PathBuf::from(val())),
            "--review" => a.reviews.push(PathBuf::from(val())),
            "--latency-log" => a.latency_log = Some(PathBuf::from(val())),
            "--stall-probe" => a.stall_probe = Some(Duration::from_secs_f64(val().parse().unwrap())),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

type Sender = http2::SendRequest<Full<Bytes>>;

async fn connect(args: &Args) -> Sender {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_file(&args.ca).unwrap()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(&args.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// Sends one review; returns whether it was answered with 200 and the right uid. The uid is
/// looked for as the server writes it (compact JSON, `"uid":"..."`) rather than by parsing the
/// whole answer: the generator shares the cores with the server, so its own work is kept small.
async fn send(mut sender: Sender, uri: &hyper::Uri, body: Bytes, expect: &[u8]) -> bool {
    let req = hyper::Request::post(uri.clone())
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let Ok(resp) = sender.send_request(req).await else { return false };
    if resp.status() != 200 {
        return false;
    }
    let Ok(bytes) = resp.into_body().collect().await else { return false };
    bytes.to_bytes().windows(expect.len()).any(|w| w == expect)
}

/// The server's count of bundle reloads (succeeded and failed), from `/metrics`.
async fn reload_count(sender: &Sender, addr: &str) -> Option<u64> {
    let req = hyper::Request::get(format!("https://{addr}/metrics")).body(Full::new(Bytes::new())).ok()?;
    let resp = sender.clone().send_request(req).await.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    let text = std::str::from_utf8(&body).ok()?.to_owned();
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("palisade_bundle_reloads_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// What the reloads did.
struct Reloads {
    sent: u32,
    /// Reloads the server counted, one per signal.
    executed: u32,
    /// The longest time from a signal to the server counting its reload.
    slowest: Duration,
}

/// Sends `args.reloads` SIGHUPs to `pid`, the k-th due at `start + k * duration / (reloads + 1)`
/// and never before the server has counted the previous one (each wait bounded by 30 s).
async fn reload(metrics: Sender, args: Arc<Args>, pid: u32, start: Instant) -> Reloads {
    const WAIT: Duration = Duration::from_secs(30);
    let every = args.duration / (args.reloads + 1).max(1);
    let mut done = Reloads { sent: 0, executed: 0, slowest: Duration::ZERO };
    for k in 1..=args.reloads {
        tokio::time::sleep_until((start + every * k).into()).await;
        let Some(before) = reload_count(&metrics, &args.addr).await else {
            eprintln!("loadgen: /metrics has no reload counter; reload {k} not sent");
            continue;
        };
        let sent = Instant::now();
        // The signal goes by a system call. Running `kill` would fork this process and wait for
        // the child on a worker thread, which holds back the requests due meanwhile (runs of
        // slow requests up to 190 ms, counted against the server, at each reload).
        let signalled = rustix::process::Pid::from_raw(pid as i32).map(|p| rustix::process::kill_process(p, rustix::process::Signal::HUP));
        if !matches!(signalled, Some(Ok(()))) {
            eprintln!("loadgen: SIGHUP to {pid} failed: {signalled:?}");
            continue;
        }
        done.sent += 1;
        // Polled every 50 ms: `/metrics` is tens of kilobytes once every rule has results, and
        // reading it every few milliseconds took a tenth of this process's CPU and the server's.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if reload_count(&metrics, &args.addr).await.is_some_and(|n| n > before) {
                done.executed += 1;
                done.slowest = done.slowest.max(sent.elapsed());
                break;
            }
            if sent.elapsed() > WAIT {
                eprintln!("loadgen: reload {k} not counted by the server after {WAIT:?}");
                break;
            }
        }
    }
    done
}

/// A request slower than this counts as slow (the p99 bound).
const SLOW_US: u64 = 5_000;
/// Slow requests due less than this apart belong to one run.
const RUN_GAP: Duration = Duration::from_millis(20);

/// Groups the due times of slow requests into runs: (first, last) of each.
fn slow_runs(due: &mut [Duration]) -> Vec<(Duration, Duration)> {
    due.sort_unstable();
    let mut runs: Vec<(Duration, Duration)> = Vec::new();
    for &at in due.iter() {
        match runs.last_mut() {
            Some(run) if at - run.1 < RUN_GAP => run.1 = at,
            _ => runs.push((at, at)),
        }
    }
    runs
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Spins on the clock for `length` and reports the gaps over a millisecond: the times this
/// thread was kept off its CPU. Run pinned to each core with nothing else on the machine, it
/// shows the floor any latency measured there stands on (hypervisor and guest-agent stalls).
fn stall_probe(length: Duration) {
    const GAP: Duration = Duration::from_millis(1);
    let start = Instant::now();
    let mut last = start;
    let mut gaps: Vec<(Duration, Duration)> = Vec::new();
    while last - start < length {
        let now = Instant::now();
        if now - last > GAP {
            gaps.push((last - start, now - last));
        }
        last = now;
    }
    let total: Duration = gaps.iter().map(|g| g.1).sum();
    let longest = gaps.iter().map(|g| g.1).max().unwrap_or_default();
    let long: Vec<String> =
        gaps.iter().filter(|g| g.1 > Duration::from_millis(5)).map(|(at, gap)| format!("{:.1} ms at {:.2} s", gap.as_secs_f64() * 1e3, at.as_secs_f64())).collect();
    println!(
        "stall probe, {:.0} s: {} gaps over 1 ms, {:.1} ms in all, longest {:.1} ms; over 5 ms: {}",
        length.as_secs_f64(),
        gaps.len(),
        total.as_secs_f64() * 1e3,
        longest.as_secs_f64() * 1e3,
        if long.is_empty() { "none".to_owned() } else { long.join(", ") },
    );
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    if let Some(length) = args.stall_probe {
        stall_probe(length);
        return;
    }
    let mut objects = Vec::new();
    for r in &args.resources {
        palisade_benches::corpus_resources(r, &mut objects);
    }
    for r in &args.reviews {
        let review: serde_json::Value = serde_json::from_slice(&std::fs::read(r).unwrap()).unwrap();
        objects.push(review["request"]["object"].clone());
    }
    assert!(!objects.is_empty(), "no resource*.yaml found under {:?} and no --review", args.resources);
    // Each review with the uid its answer must carry, as the answer writes it.
    let bodies: Arc<Vec<(Bytes, Vec<u8>)>> =
        Arc::new(objects.iter().enumerate().map(|(i, o)| (Bytes::from(palisade_benches::admission_review(i, o)), format!("\"uid\":\"load-{i}\"").into_bytes())).collect());
    let uri: Arc<hyper::Uri> = Arc::new(format!("https://{}{}", args.addr, args.path).parse().unwrap());
    let mut senders = Vec::new();
    for _ in 0..args.connections.max(1) {
        senders.push(connect(&args).await);
    }
    let failed = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Duration, u64)>();
    let start = Instant::now();
    let end = start + args.duration;

    let reloader = match args.reload_pid {
        Some(pid) => {
            let metrics = connect(&args).await;
            Some(tokio::spawn(reload(metrics, args.clone(), pid, start)))
        }
        None => None,
    };

    if args.rate > 0 {
        // Open loop: request i is due at start + i / rate, and its latency counts from then. The
        // due times come from a pacing thread rather than tokio's timer: that timer ticks once a
        // millisecond, so requests would leave in bursts of rate / 1000, up to a millisecond
        // late, and the generator would measure its own timer. The thread sleeps on the
        // system's high-resolution timer, at least PACE at a time so it does not wake the
        // runtime for every request, and hands over the indices of the requests that are due.
        const PACE: Duration = Duration::from_micros(100);
        let rate = args.rate as f64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<std::ops::Range<u64>>();
        std::thread::spawn(move || {
            let mut next: u64 = 0;
            loop {
                let due = start + interval.mul_f64(next as f64);
                if due >= end {
                    break;
                }
                std::thread::sleep(due.saturating_duration_since(Instant::now()).max(PACE));
                let now = Instant::now().min(end);
                let upto = (now.duration_since(start).as_secs_f64() * rate).floor() as u64 + 1;
                if upto > next && due_tx.send(next..upto).is_err() {
                    break;
                }
                next = next.max(upto);
            }
        });
        while let Some(batch) = due_rx.recv().await {
            for i in batch {
                let due = start + interval.mul_f64(i as f64);
                if due >= end {
                    break;
                }
                let bodies = bodies.clone();
                let sender = senders[i as usize % senders.len()].clone();
                let (tx, failed, uri) = (tx.clone(), failed.clone(), uri.clone());
                tokio::spawn(async move {
                    let (body, uid) = &bodies[i as usize % bodies.len()];
                    if !send(sender, &uri, body.clone(), uid).await {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = tx.send((due - start, due.elapsed().as_micros() as u64));
                });
            }
        }
    } else {
        // Closed loop: `concurrency` workers, each sending as soon as its last answer came.
        let mut workers = Vec::new();
        for w in 0..args.concurrency {
            let (tx, failed, args, bodies, uri) = (tx.clone(), failed.clone(), args.clone(), bodies.clone(), uri.clone());
            let sender = senders[w % senders.len()].clone();
            workers.push(tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < end {
                    let (body, uid) = &bodies[i % bodies.len()];
                    let t = Instant::now();
                    if !send(sender.clone(), &uri, body.clone(), uid).await {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = tx.send((t - start, t.elapsed().as_micros() as u64));
                    i += args.concurrency;
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
    }
    drop(tx);
    let reloads = match reloader {
        Some(task) => task.await.ok(),
        None => None,
    };
    let mut lat = Vec::new();
    let mut slow = Vec::new();
    let mut log = args.latency_log.as_ref().map(|p| std::io::BufWriter::new(std::fs::File::create(p).unwrap()));
    while let Some((at, us)) = rx.recv().await {
        if let Some(log) = log.as_mut() {
            use std::io::Write;
            writeln!(log, "{} {us}", at.as_micros()).unwrap();
        }
        lat.push(us);
        if us > SLOW_US {
            slow.push(at);
        }
    }
    if let Some(mut log) = log {
        use std::io::Write;
        log.flush().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let mode = if args.rate > 0 { format!("open loop at {} req/s", args.rate) } else { format!("closed loop, {} in flight", args.concurrency) };
    println!(
        "{mode}, {} connections, {} distinct reviews: {} requests in {elapsed:.2} s = {:.0} reviews/s; latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}; failed {}",
        args.connections,
        bodies.len(),
        lat.len(),
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        failed.load(Ordering::Relaxed),
    );
    // The share over the 5 ms bound says how far a p99 above it is from being met, and
    // the runs they come in say why: a few long runs are stalls, many short ones are load.
    let runs = slow_runs(&mut slow);
    let longest = runs.iter().map(|r| r.1 - r.0).max().unwrap_or_default();
    println!(
        "over 5 ms: {} of {} ({:.2}%), in {} runs (slow requests less than {} ms apart), the longest {:.1} ms",
        slow.len(),
        lat.len(),
        100.0 * slow.len() as f64 / lat.len().max(1) as f64,
        runs.len(),
        RUN_GAP.as_millis(),
        longest.as_secs_f64() * 1e3,
    );
    if let Some(r) = reloads {
        println!(
            "reloads: {} wanted, {} sent, {} executed (server's reload counter); slowest {:.0} ms from signal to done; failed requests {}",
            args.reloads,
            r.sent,
            r.executed,
            r.slowest.as_secs_f64() * 1000.0,
            failed.load(Ordering::Relaxed),
        );
    }
}
