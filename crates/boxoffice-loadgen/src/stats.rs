//! Latency percentiles from recorded per-request latencies (microseconds).

use serde::Serialize;

/// Latency of a set of requests, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Requests measured.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// The `p`-th percentile (0 < p ≤ 100) of ascending `sorted` by the nearest-rank method: the
/// smallest value with at least `p` % of the values at or below it. `None` when empty.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    let index = rank.clamp(1, n) - 1;
    sorted.get(index).copied()
}

/// Summarises latencies in microseconds; `None` when there are none.
pub fn summarize(mut micros: Vec<u32>) -> Option<LatencySummary> {
    if micros.is_empty() {
        return None;
    }
    micros.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    let sum: u64 = micros.iter().map(|&us| u64::from(us)).sum();
    Some(LatencySummary {
        count: micros.len(),
        p50_ms: ms(percentile(&micros, 50.0)?),
        p90_ms: ms(percentile(&micros, 90.0)?),
        p99_ms: ms(percentile(&micros, 99.0)?),
        max_ms: ms(*micros.last()?),
        mean_ms: sum as f64 / micros.len() as f64 / 1000.0,
    })
}

/// Microseconds of a duration, saturating at `u32::MAX` (71 minutes).
pub fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));

        let v = [10, 20, 30, 40];
        assert_eq!(percentile(&v, 50.0), Some(20));
        assert_eq!(percentile(&v, 51.0), Some(30));
        assert_eq!(percentile(&v, 99.0), Some(40));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summaries_sort_first_and_convert_to_milliseconds() {
        let s = summarize(vec![3000, 1000, 2000, 10_000]).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.p90_ms, 10.0);
        assert_eq!(s.max_ms, 10.0);
        assert_eq!(s.mean_ms, 4.0);
        assert!(summarize(Vec::new()).is_none());
    }

    #[test]
    fn micros_saturate() {
        assert_eq!(micros(std::time::Duration::from_millis(3)), 3000);
        assert_eq!(micros(std::time::Duration::from_secs(10_000)), u32::MAX);
    }
}
