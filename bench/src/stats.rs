//! Percentiles of measured durations.

use std::time::Duration;

/// Latency figures of one series, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// Summarises samples (nearest-rank percentiles).
    pub fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            if ms.is_empty() {
                return f64::NAN;
            }
            let i = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[i]
        };
        Self {
            n: ms.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            min: ms.first().copied().unwrap_or(f64::NAN),
            max: ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.n,
            "p50_ms": round(self.p50),
            "p99_ms": round(self.p99),
            "min_ms": round(self.min),
            "max_ms": round(self.max),
        })
    }
}

/// Rounds to three decimals for the report.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples);
        assert_eq!(
            (s.n, s.p50, s.p99, s.min, s.max),
            (100, 50.0, 99.0, 1.0, 100.0)
        );
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let s = Summary::of(&[Duration::from_micros(1500)]);
        assert_eq!((s.p50, s.p99), (1.5, 1.5));
    }
}
