//! Fault switches and counters.
//!
//! Transport code is only as good as its behaviour when the server
//! misbehaves, so every misbehaviour a real SaaS shows can be switched on —
//! at start by flags, at runtime by `POST /__control/faults` — and every
//! effect is counted in [`Stats`] so a test can see that the fault fired.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The fault switches currently in force (also the `GET /__control/faults` shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Answer the next N API / WebSocket-upgrade requests with `fail_status`.
    pub fail_next: u64,
    /// Answer this percentage (0-100) of API requests with `fail_status`.
    pub fail_percent: u8,
    /// Status code of injected failures (default 500).
    pub fail_status: u16,
    /// Delay every API request and every WebSocket reply by this many ms.
    pub delay_ms: u64,
    /// Drop each WebSocket right after storing its Nth event frame, before acking it.
    pub ws_drop_after_frames: Option<u64>,
    /// How many more connections `ws_drop_after_frames` may drop (null: unlimited).
    pub ws_drop_connections: Option<u64>,
    /// Send acks on the WebSocket (false: legacy 2.x behaviour, never ack).
    pub ws_ack: bool,
    /// Reject every event.
    pub reject_all: bool,
    /// Answer the next N batch requests with `fail_status` and an error that
    /// names no event (a whole-request failure; other endpoints unaffected).
    pub fail_batch_next: u64,
    /// Leave out the result of the next N events sent by batch: every second
    /// event of a request (the first always answered) is neither stored nor
    /// answered, as a server that lost part of the request would.
    pub omit_results: u64,
    /// Events whose `aggregate_id` is this are refused: a batch holding any
    /// of them gets a 400 with per-event `details` naming exactly them
    /// (nothing of that request is stored); on the WebSocket each gets a
    /// `rejected` error frame.
    pub partial_400: Option<String>,
    /// Answer a batch of more than this many events with 400 "Batch too
    /// large" (a server whose limit is below the contract's 1000).
    pub max_batch: Option<u64>,
    /// Answer a batch request whose (decoded) body is larger than this many
    /// bytes with 413 "Batch too large": an event too big on its own.
    pub max_body_bytes: Option<u64>,
    /// Milliseconds left of the current refused-connections window (read only).
    pub refusing_ms_remaining: u64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            fail_next: 0,
            fail_percent: 0,
            fail_status: 500,
            delay_ms: 0,
            ws_drop_after_frames: None,
            ws_drop_connections: None,
            ws_ack: true,
            reject_all: false,
            fail_batch_next: 0,
            omit_results: 0,
            partial_400: None,
            max_batch: None,
            max_body_bytes: None,
            refusing_ms_remaining: 0,
        }
    }
}

/// A `POST /__control/faults` body: only the keys present change.
/// `clear: true` first resets everything to the defaults.
/// `ws_drop_after_frames: 0` (or null) switches that fault off.
/// `refuse_connections_ms: N` closes the listener for N ms (the control
/// endpoint is unreachable too during that window; it ends by itself).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    #[serde(default)]
    pub clear: bool,
    pub fail_next: Option<u64>,
    pub fail_percent: Option<u8>,
    pub fail_status: Option<u16>,
    pub delay_ms: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub ws_drop_after_frames: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub ws_drop_connections: Option<Option<u64>>,
    pub ws_ack: Option<bool>,
    pub reject_all: Option<bool>,
    pub refuse_connections_ms: Option<u64>,
    pub fail_batch_next: Option<u64>,
    pub omit_results: Option<u64>,
    /// An aggregate id; `null` or `""` switches the fault off.
    #[serde(default, deserialize_with = "nullable_string")]
    pub partial_400: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_batch: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_body_bytes: Option<Option<u64>>,
}

/// Distinguishes a key that is absent (`None`) from one that is `null` (`Some(None)`).
fn nullable<'de, D>(d: D) -> Result<Option<Option<u64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<u64>::deserialize(d).map(Some)
}

/// [`nullable`] for a string.
fn nullable_string<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

impl Faults {
    /// Applies `patch`; an out-of-range value is refused with the field named.
    pub fn apply(&mut self, patch: &FaultPatch) -> Result<(), String> {
        if patch.clear {
            *self = Faults::default();
        }
        if let Some(p) = patch.fail_percent {
            if p > 100 {
                return Err("fail_percent: must be 0..=100".into());
            }
            self.fail_percent = p;
        }
        if let Some(s) = patch.fail_status {
            if !(400..=599).contains(&s) {
                return Err("fail_status: must be an HTTP error status 400..=599".into());
            }
            self.fail_status = s;
        }
        if let Some(n) = patch.fail_next {
            self.fail_next = n;
        }
        if let Some(d) = patch.delay_ms {
            self.delay_ms = d;
        }
        if let Some(n) = patch.ws_drop_after_frames {
            self.ws_drop_after_frames = n.filter(|n| *n > 0);
        }
        if let Some(n) = patch.ws_drop_connections {
            self.ws_drop_connections = n;
        }
        if let Some(a) = patch.ws_ack {
            self.ws_ack = a;
        }
        if let Some(r) = patch.reject_all {
            self.reject_all = r;
        }
        if let Some(n) = patch.fail_batch_next {
            self.fail_batch_next = n;
        }
        if let Some(n) = patch.omit_results {
            self.omit_results = n;
        }
        if let Some(a) = &patch.partial_400 {
            self.partial_400 = a.clone().filter(|a| !a.is_empty());
        }
        if let Some(n) = patch.max_batch {
            if n == Some(0) {
                return Err("max_batch: must be at least 1 (null switches it off)".into());
            }
            self.max_batch = n;
        }
        if let Some(n) = patch.max_body_bytes {
            if n == Some(0) {
                return Err("max_body_bytes: must be at least 1 (null switches it off)".into());
            }
            self.max_body_bytes = n;
        }
        Ok(())
    }

    /// Should this batch request fail as a whole? Consumes one of `fail_batch_next`.
    pub fn take_batch_failure(&mut self) -> Option<u16> {
        if self.fail_batch_next > 0 {
            self.fail_batch_next -= 1;
            return Some(self.fail_status);
        }
        None
    }

    /// Which of `n` events of one batch request lose their result: every
    /// second one (index 1, 3, ...) while the `omit_results` budget lasts.
    pub fn take_omitted(&mut self, n: usize) -> Vec<bool> {
        (0..n)
            .map(|i| {
                let omit = i % 2 == 1 && self.omit_results > 0;
                if omit {
                    self.omit_results -= 1;
                }
                omit
            })
            .collect()
    }

    /// Should this request fail? Consumes one of `fail_next` when it does.
    pub fn take_failure(&mut self) -> Option<u16> {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return Some(self.fail_status);
        }
        if self.fail_percent > 0 && fastrand::u8(0..100) < self.fail_percent {
            return Some(self.fail_status);
        }
        None
    }
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Counters for `GET /__control/stats`; every key is a number.
        #[derive(Debug, Default)]
        pub struct Stats { $(pub $name: AtomicU64,)* }
        impl Stats {
            /// All counters as one JSON object.
            pub fn to_json(&self) -> Value {
                let mut m = serde_json::Map::new();
                $(m.insert(stringify!($name).to_string(), json!(self.$name.load(Ordering::Relaxed)));)*
                Value::Object(m)
            }
        }
    };
}

counters!(
    http_requests,
    injected_failures,
    delayed_requests,
    token_issued,
    token_refreshed,
    ws_tokens_issued,
    auth_failures,
    batch_requests,
    batch_rejected_requests,
    batch_events_success,
    batch_events_duplicate,
    batch_events_rejected,
    batch_results_omitted,
    batch_partial_400,
    ws_connections_total,
    ws_connections_open,
    ws_frames_received,
    ws_events_accepted,
    ws_events_duplicate,
    ws_events_rejected,
    ws_acks_sent,
    ws_errors_sent,
    ws_pings_sent,
    ws_pongs_received,
    ws_closed_missed_pongs,
    ws_dropped_by_fault,
    refuse_windows,
    connections_killed,
);

/// `counter += 1`.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_changes_only_named_keys() {
        let mut f = Faults::default();
        let p: FaultPatch =
            serde_json::from_value(json!({"fail_next": 2, "ws_drop_after_frames": 3})).unwrap();
        f.apply(&p).unwrap();
        assert_eq!(f.take_failure(), Some(500));
        assert_eq!(f.take_failure(), Some(500));
        assert_eq!(f.take_failure(), None);
        assert_eq!(f.ws_drop_after_frames, Some(3));
        assert!(f.ws_ack);
        let p: FaultPatch = serde_json::from_value(json!({"ws_drop_after_frames": null})).unwrap();
        f.apply(&p).unwrap();
        assert_eq!(f.ws_drop_after_frames, None);
        let p: FaultPatch = serde_json::from_value(json!({"fail_percent": 101})).unwrap();
        assert!(f.apply(&p).unwrap_err().contains("fail_percent"));
        assert!(serde_json::from_value::<FaultPatch>(json!({"bogus": 1})).is_err());
    }

    #[test]
    fn batch_faults_are_bounded_and_switch_off() {
        let mut f = Faults::default();
        let p: FaultPatch = serde_json::from_value(json!({
            "fail_batch_next": 1, "fail_status": 400, "omit_results": 3,
            "partial_400": "WP02", "max_batch": 2
        }))
        .unwrap();
        f.apply(&p).unwrap();
        assert_eq!(f.take_batch_failure(), Some(400));
        assert_eq!(f.take_batch_failure(), None);
        assert_eq!(
            f.take_failure(),
            None,
            "batch failures are their own budget"
        );
        assert_eq!(f.take_omitted(4), [false, true, false, true]);
        assert_eq!(f.take_omitted(4), [false, true, false, false]);
        assert_eq!(f.omit_results, 0);
        assert_eq!(
            (f.partial_400.as_deref(), f.max_batch),
            (Some("WP02"), Some(2))
        );
        let p: FaultPatch =
            serde_json::from_value(json!({"partial_400": null, "max_batch": null})).unwrap();
        f.apply(&p).unwrap();
        assert_eq!((f.partial_400.as_deref(), f.max_batch), (None, None));
        let p: FaultPatch = serde_json::from_value(json!({"max_batch": 0})).unwrap();
        assert!(f.apply(&p).unwrap_err().contains("max_batch"));
    }
}
