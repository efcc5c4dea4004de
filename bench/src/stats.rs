//! Order statistics over repeated measurements. Medians and p99, never means
//! alone: the machines are shared and noisy, and a mean hides the tail.

use serde::Serialize;
use std::time::Duration;

/// Summary of one series of durations, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentile of an already sorted, non-empty slice.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(mut samples: Vec<Duration>) -> Summary {
    assert!(!samples.is_empty(), "no samples");
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Summary {
        n: samples.len(),
        p50_ms: ms(percentile(&samples, 50.0)),
        p99_ms: ms(percentile(&samples, 99.0)),
        min_ms: ms(samples[0]),
        max_ms: ms(samples[samples.len() - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = summarize((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(s.n, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 100.0);
        let one = summarize(vec![Duration::from_millis(7)]);
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
    }
}
