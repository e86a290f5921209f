//! A bounded cache of successful signature verifications.
//!
//! Entries are keyed by the image digest and the fingerprint of the entry's trust settings
//! (attestors, attestation types and their attestors), so a changed key or identity never hits
//! an old entry, and a retagged image never reuses its old digest's result. An entry holds what
//! verification proved (the digest and the verified attestation statements), not a verdict:
//! attestation conditions are evaluated again on every request, so a cached success can never
//! skip a conditions check. Entries expire after a TTL; when the cache is full the oldest entry
//! is dropped.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one successful verification proved.
#[derive(Clone, Debug)]
pub struct Verified {
    pub digest: String,
    /// For each attestation of the entry (by index): the path of every attestor entry that
    /// verified it, with the statements of the attestation's type that entry signed.
    pub statements: Vec<Vec<(String, Vec<Value>)>>,
}

#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<String, (Instant, Verified)>,
    order: VecDeque<String>,
}

impl Cache {
    pub fn new(ttl: Duration, capacity: usize) -> Cache {
        Cache { ttl, capacity, entries: HashMap::new(), order: VecDeque::new() }
    }

    pub fn key(fingerprint: &str, digest: &str) -> String {
        format!("{fingerprint};{digest}")
    }

    pub fn get(&self, key: &str, now: Instant) -> Option<&Verified> {
        let (at, v) = self.entries.get(key)?;
        (now.saturating_duration_since(*at) < self.ttl).then_some(v)
    }

    pub fn insert(&mut self, key: String, value: Verified, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(key.clone(), (now, value)).is_none() {
            self.order.push_back(key);
        } else {
            // A refreshed entry moves to the back so it is evicted last.
            self.order.retain(|k| *k != key);
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            let Some(oldest) = self.order.pop_front() else { break };
            self.entries.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(d: &str) -> Verified {
        Verified { digest: d.into(), statements: vec![] }
    }

    #[test]
    fn expires_after_ttl() {
        let t0 = Instant::now();
        let mut c = Cache::new(Duration::from_secs(10), 4);
        c.insert("k".into(), v("a"), t0);
        assert!(c.get("k", t0 + Duration::from_secs(9)).is_some());
        assert!(c.get("k", t0 + Duration::from_secs(10)).is_none());
    }

    #[test]
    fn bounded_size_drops_oldest() {
        let t0 = Instant::now();
        let mut c = Cache::new(Duration::from_secs(60), 2);
        c.insert("a".into(), v("a"), t0);
        c.insert("b".into(), v("b"), t0);
        c.insert("a".into(), v("a2"), t0);
        c.insert("c".into(), v("c"), t0);
        assert_eq!(c.len(), 2);
        assert!(c.get("b", t0).is_none());
        assert_eq!(c.get("a", t0).map(|x| x.digest.as_str()), Some("a2"));
        assert!(c.get("c", t0).is_some());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut c = Cache::new(Duration::from_secs(60), 0);
        c.insert("a".into(), v("a"), Instant::now());
        assert!(c.is_empty());
    }
}
