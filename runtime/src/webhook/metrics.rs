//! Prometheus metrics in the text exposition format, written by hand: a few atomic counters and
//! fixed-bucket histograms do not justify a metrics framework.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::engine::{Endpoint, Engine};
use crate::engine::{RuleResult, Status};

/// Every status, in discriminant order (the index into a rule's counts).
const STATUSES: [Status; 5] = [Status::Pass, Status::Fail, Status::Warn, Status::Error, Status::Skip];

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Outcomes counted per endpoint.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Allowed,
    Denied,
    /// Evaluation failed and the failure policy decided.
    Error,
    /// The request was refused before evaluation (4xx).
    Rejected,
}

const OUTCOMES: [&str; 4] = ["allowed", "denied", "error", "rejected"];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// The results of one rule, per [`Status`] (indexed by its discriminant). An engine holds the
/// counts of its rules, resolved when it is loaded, so the compiled path counts a result with
/// one atomic add; a reloaded engine gets the same counts for the same policy and rule names,
/// so the totals carry over.
#[derive(Default)]
pub struct RuleCounts([AtomicU64; 5]);

impl RuleCounts {
    pub fn add(&self, status: Status) {
        if let Some(c) = self.0.get(status as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct Metrics {
    requests: Vec<[AtomicU64; 4]>,
    latency: Vec<Histogram>,
    /// Policy -> rule -> counts.
    results: Mutex<HashMap<String, HashMap<String, Arc<RuleCounts>>>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub connections: AtomicU64,
    pub bad_requests: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: Endpoint::ALL.iter().map(|_| Default::default()).collect(),
            latency: Endpoint::ALL.iter().map(|_| Histogram::default()).collect(),
            results: Mutex::new(HashMap::new()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            bad_requests: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// The counts of a rule, created at its first use.
    pub fn rule_counts(&self, policy: &str, rule: &str) -> Arc<RuleCounts> {
        let mut map = self.results.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Metrics::counts_in(&mut map, policy, rule).cloned().unwrap_or_default()
    }

    fn counts_in<'m>(map: &'m mut HashMap<String, HashMap<String, Arc<RuleCounts>>>, policy: &str, rule: &str) -> Option<&'m Arc<RuleCounts>> {
        // Look up before inserting so the common case allocates nothing.
        if !map.get(policy).is_some_and(|rules| rules.contains_key(rule)) {
            map.entry(policy.to_owned()).or_default().insert(rule.to_owned(), Arc::default());
        }
        map.get(policy).and_then(|rules| rules.get(rule))
    }

    /// Counts a request; `results` are the rule results of the general path (the compiled path
    /// counts into its engine's [`RuleCounts`] instead).
    pub fn record(&self, endpoint: Endpoint, outcome: Outcome, elapsed: Duration, results: &[RuleResult]) {
        if let Some(c) = self.requests.get(endpoint.index()).and_then(|r| r.get(outcome as usize)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(h) = self.latency.get(endpoint.index()) {
            let secs = elapsed.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) && let Some(b) = h.buckets.get(i) {
                b.fetch_add(1, Ordering::Relaxed);
            }
            h.count.fetch_add(1, Ordering::Relaxed);
            h.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        if results.is_empty() {
            return;
        }
        let mut map = self.results.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for r in results {
            if let Some(c) = Metrics::counts_in(&mut map, &r.policy, &r.rule) {
                c.add(r.status);
            }
        }
    }

    /// The exposition text.
    pub fn render(&self, engine: Option<&Engine>) -> String {
        let mut out = String::new();
        out.push_str("# HELP palisade_admission_requests_total Admission reviews answered, by endpoint and outcome.\n");
        out.push_str("# TYPE palisade_admission_requests_total counter\n");
        for (e, counts) in Endpoint::ALL.iter().zip(&self.requests) {
            for (name, c) in OUTCOMES.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "palisade_admission_requests_total{{endpoint=\"{}\",outcome=\"{name}\"}} {}",
                    e.label(),
                    c.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP palisade_admission_request_duration_seconds Time from a complete body to the response, by endpoint.\n");
        out.push_str("# TYPE palisade_admission_request_duration_seconds histogram\n");
        for (e, h) in Endpoint::ALL.iter().zip(&self.latency) {
            let mut cumulative = 0;
            for (bound, b) in BUCKETS.iter().zip(&h.buckets) {
                cumulative += b.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "palisade_admission_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{bound}\"}} {cumulative}",
                    e.label()
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "palisade_admission_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"+Inf\"}} {count}", e.label());
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "palisade_admission_request_duration_seconds_sum{{endpoint=\"{}\"}} {sum}", e.label());
            let _ = writeln!(out, "palisade_admission_request_duration_seconds_count{{endpoint=\"{}\"}} {count}", e.label());
        }
        out.push_str("# HELP palisade_rule_results_total Rule results, by policy, rule and status.\n");
        out.push_str("# TYPE palisade_rule_results_total counter\n");
        {
            let map = self.results.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut rows: Vec<(&String, &String, Status, u64)> = Vec::new();
            for (policy, rules) in map.iter() {
                for (rule, counts) in rules {
                    for (status, n) in STATUSES.iter().zip(&counts.0) {
                        let n = n.load(Ordering::Relaxed);
                        if n > 0 {
                            rows.push((policy, rule, *status, n));
                        }
                    }
                }
            }
            rows.sort();
            for (policy, rule, status, n) in rows {
                let _ = writeln!(
                    out,
                    "palisade_rule_results_total{{policy=\"{}\",rule=\"{}\",status=\"{}\"}} {n}",
                    escape(policy),
                    escape(rule),
                    status.as_str()
                );
            }
        }
        out.push_str("# TYPE palisade_bundle_reloads_total counter\n");
        let _ = writeln!(out, "palisade_bundle_reloads_total{{result=\"ok\"}} {}", self.reloads_ok.load(Ordering::Relaxed));
        let _ = writeln!(out, "palisade_bundle_reloads_total{{result=\"failed\"}} {}", self.reloads_failed.load(Ordering::Relaxed));
        out.push_str("# TYPE palisade_connections_total counter\n");
        let _ = writeln!(out, "palisade_connections_total {}", self.connections.load(Ordering::Relaxed));
        out.push_str("# TYPE palisade_bad_requests_total counter\n");
        let _ = writeln!(out, "palisade_bad_requests_total {}", self.bad_requests.load(Ordering::Relaxed));
        out.push_str("# HELP palisade_log_lines_dropped_total Request log lines dropped because the log writer fell behind.\n");
        out.push_str("# TYPE palisade_log_lines_dropped_total counter\n");
        let _ = writeln!(out, "palisade_log_lines_dropped_total {}", super::logger::dropped());
        if let Some(engine) = engine {
            out.push_str("# HELP palisade_bundle_info The loaded bundle.\n# TYPE palisade_bundle_info gauge\n");
            let _ = writeln!(
                out,
                "palisade_bundle_info{{digest=\"{}\",policies=\"{}\",rules=\"{}\"}} 1",
                engine.digest, engine.policy_count, engine.rule_count
            );
            out.push_str("# TYPE palisade_bundle_load_seconds gauge\n");
            let _ = writeln!(out, "palisade_bundle_load_seconds {}", engine.load_time.as_secs_f64());
            let loaded = engine.loaded_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            out.push_str("# TYPE palisade_bundle_loaded_timestamp_seconds gauge\n");
            let _ = writeln!(out, "palisade_bundle_loaded_timestamp_seconds {loaded}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
