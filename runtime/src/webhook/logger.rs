//! The server's structured log: one JSON object per line on standard error, written by one
//! thread of its own.
//!
//! Standard error is unbuffered, and formatting a line straight onto it costs a write system
//! call per fragment; at thousands of denials a second (each one is logged) that was a quarter
//! of the server's time. Here a line is formatted into one buffer on the caller's thread and
//! handed over a bounded channel; the writer thread takes whatever lines are waiting and writes
//! them with one call. A request's line never waits for the writer: when the channel is full the
//! line is dropped and counted ([`dropped`], exported as a metric), so a slow log consumer
//! cannot stall admission. Lines about the server itself (start, reloads, certificates) are rare
//! and wait for room instead of being dropped.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use serde_json::Value;

/// Lines that may wait for the writer; beyond this, request lines are dropped.
const QUEUE: usize = 16_384;
/// Most lines written with one system call.
const BATCH: usize = 512;
/// The writer's pause after a partial batch.
const REST: Duration = Duration::from_millis(10);

enum Msg {
    Line(Vec<u8>),
    /// Answered once every line queued before it is written.
    Flush(SyncSender<()>),
}

static WRITER: OnceLock<SyncSender<Msg>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Request lines dropped because the writer could not keep up.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn writer() -> &'static SyncSender<Msg> {
    WRITER.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUE);
        // If the thread cannot start, sends fail and lines are counted as dropped; the server
        // itself keeps working.
        let _ = std::thread::Builder::new().name("palisade-log".into()).spawn(move || write_lines(&rx));
        tx
    })
}

fn write_lines(rx: &Receiver<Msg>) {
    let mut buf = Vec::with_capacity(64 << 10);
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(line) => buf.extend_from_slice(&line),
                Msg::Flush(ack) => acks.push(ack),
            }
            n += 1;
            if n < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&buf);
        let _ = err.flush();
        drop(err);
        buf.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        // Between batches the writer rests instead of waking for every line: a line waits at
        // most this long, and under load the workers' sends find no sleeping thread to wake.
        if n < BATCH {
            std::thread::sleep(REST);
        }
    }
}

/// Waits (at most `timeout`) until every line logged so far is written: before the process
/// exits, so the last lines are not lost.
pub fn flush(timeout: Duration) {
    let Some(tx) = WRITER.get() else { return };
    let (ack, done) = sync_channel(1);
    if tx.send(Msg::Flush(ack)).is_ok() {
        let _ = done.recv_timeout(timeout);
    }
}

/// One log line being built: `{"ts":..,"level":..,"msg":..` and then the fields in the order
/// they are added.
pub struct Line {
    buf: Vec<u8>,
}

impl Line {
    pub fn new(level: &str, msg: &str) -> Line {
        let mut buf = Vec::with_capacity(256);
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let _ = write!(buf, "{{\"ts\":{ts},\"level\":");
        push_str(&mut buf, level);
        buf.extend_from_slice(b",\"msg\":");
        push_str(&mut buf, msg);
        Line { buf }
    }

    fn key(&mut self, key: &str) {
        self.buf.push(b',');
        push_str(&mut self.buf, key);
        self.buf.push(b':');
    }

    pub fn str(mut self, key: &str, value: &str) -> Line {
        self.key(key);
        push_str(&mut self.buf, value);
        self
    }

    /// A string field, `null` when absent.
    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Line {
        self.key(key);
        match value {
            Some(v) => push_str(&mut self.buf, v),
            None => self.buf.extend_from_slice(b"null"),
        }
        self
    }

    pub fn u64(mut self, key: &str, value: u64) -> Line {
        self.key(key);
        let _ = write!(self.buf, "{value}");
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Line {
        self.key(key);
        self.buf.extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// Every field of a JSON object, in its order.
    pub fn fields(mut self, fields: &Value) -> Line {
        if let Value::Object(map) = fields {
            for (k, v) in map {
                self.key(k);
                let _ = serde_json::to_writer(&mut self.buf, v);
            }
        }
        self
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"}\n");
        self.buf
    }

    /// Queues the line; drops (and counts) it when the writer is behind. For per-request lines.
    pub fn send(self) {
        match writer().try_send(Msg::Line(self.finish())) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues the line, waiting for room. For the server's own, rare lines.
    pub fn send_wait(self) {
        if writer().send(Msg::Line(self.finish())).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A JSON string literal, escaped as serde_json escapes it.
fn push_str(buf: &mut Vec<u8>, s: &str) {
    crate::json_text::write(buf, s);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn lines_are_json_objects_with_fields_in_order() {
        let line = Line::new("info", "admission review")
            .str("uid", "a\"b")
            .opt_str("error", None)
            .u64("micros", 12)
            .bool("allowed", false)
            .fields(&serde_json::json!({"extra": [1, "x"]}))
            .finish();
        let text = String::from_utf8(line).unwrap_or_default();
        assert!(text.ends_with("}\n"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["level"], "info");
        assert_eq!(v["msg"], "admission review");
        assert_eq!(v["uid"], "a\"b");
        assert_eq!(v["error"], Value::Null);
        assert_eq!(v["micros"], 12);
        assert_eq!(v["allowed"], false);
        assert_eq!(v["extra"], serde_json::json!([1, "x"]));
        let keys: Vec<&String> = v.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["ts", "level", "msg", "uid", "error", "micros", "allowed", "extra"]);
    }
}
