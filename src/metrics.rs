//! Process metrics in the Prometheus text format (exposition format 0.0.4). Labels stay
//! low-cardinality: a route template and a status, never an id or a user.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency histograms.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Counts per bucket, not cumulative: an observation is one atomic add (two more for count
/// and sum) instead of one per bucket above it; the text sums them up.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds, to stay integral.
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let brace = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{brace} {}", self.sum_us.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{brace} {count}");
    }
}

/// What one route template has seen.
#[derive(Default)]
struct RouteStats {
    /// (method, status) → requests; a handful per route.
    by_outcome: Vec<(String, u16, u64)>,
    latency: Histogram,
}

/// All metrics of the process.
#[derive(Default)]
pub struct Metrics {
    /// By route template; looked up by `&str`, so a request allocates nothing here.
    routes: Mutex<BTreeMap<String, RouteStats>>,
    pub auth_failures: AtomicU64,
    /// Delivery outcomes by (target, outcome).
    deliveries: Mutex<BTreeMap<(String, String), u64>>,
    /// Delivery outcomes by (target, outcome, reason): reasons are the closed vocabulary of
    /// `crate::reason`, so the series stay bounded (targets × outcomes × reasons).
    by_reason: Mutex<BTreeMap<(String, String, String), u64>>,
    pub offboarding_latency: Histogram,
    /// What `[retention]` pruned (`retention.rs`).
    pub retention: std::sync::Arc<crate::retention::Counters>,
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let stats = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.to_string()).or_default(),
        };
        match stats.by_outcome.iter_mut().find(|(m, s, _)| *s == status && m == method) {
            Some((_, _, n)) => *n += 1,
            None => stats.by_outcome.push((method.to_string(), status, 1)),
        }
        stats.latency.observe(seconds);
    }

    /// One delivery outcome with the intent's reason word: counted in both series.
    pub fn record_delivery_for(&self, target: &str, outcome: &str, reason: &str) {
        self.record_delivery(target, outcome);
        // Only the vocabulary's words become label values (bounded cardinality).
        let reason = if crate::reason::is_known(reason) { reason } else { "unknown" };
        if let Ok(mut m) = self.by_reason.lock() {
            *m.entry((target.to_string(), outcome.to_string(), reason.to_string())).or_default() += 1;
        }
    }

    pub fn record_delivery(&self, target: &str, outcome: &str) {
        if let Ok(mut m) = self.deliveries.lock() {
            *m.entry((target.to_string(), outcome.to_string())).or_default() += 1;
        }
    }

    /// The exposition text. `gauges` are point-in-time values the caller reads (store size,
    /// outbox depth).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP scimbridge_http_requests_total HTTP requests by method, route and status.\n# TYPE scimbridge_http_requests_total counter\n");
        let routes = self.routes.lock();
        if let Ok(m) = &routes {
            for (route, stats) in m.iter() {
                let mut outcomes: Vec<_> = stats.by_outcome.iter().collect();
                outcomes.sort();
                for (method, status, n) in outcomes {
                    let _ = writeln!(
                        out,
                        "scimbridge_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP scimbridge_http_request_duration_seconds Request latency by route.\n# TYPE scimbridge_http_request_duration_seconds histogram\n");
        if let Ok(m) = &routes {
            for (route, stats) in m.iter() {
                stats.latency.write(
                    &mut out,
                    "scimbridge_http_request_duration_seconds",
                    &format!("route=\"{route}\""),
                );
            }
        }
        drop(routes);
        let _ = writeln!(
            out,
            "# HELP scimbridge_auth_failures_total Rejected credentials.\n# TYPE scimbridge_auth_failures_total counter\nscimbridge_auth_failures_total {}",
            self.auth_failures.load(Ordering::Relaxed)
        );
        out.push_str("# HELP scimbridge_deliveries_total Atlassian delivery outcomes by target and outcome.\n# TYPE scimbridge_deliveries_total counter\n");
        if let Ok(m) = self.deliveries.lock() {
            for ((target, outcome), n) in m.iter() {
                let _ = writeln!(out, "scimbridge_deliveries_total{{target=\"{target}\",outcome=\"{outcome}\"}} {n}");
            }
        }
        out.push_str("# HELP scimbridge_deliveries_by_reason_total Atlassian delivery outcomes by target, outcome and reason (idp_disabled, inactive, bulk...).\n# TYPE scimbridge_deliveries_by_reason_total counter\n");
        if let Ok(m) = self.by_reason.lock() {
            for ((target, outcome, reason), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "scimbridge_deliveries_by_reason_total{{target=\"{target}\",outcome=\"{outcome}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP scimbridge_offboarding_latency_seconds From SCIM request accepted to target confirmed.\n# TYPE scimbridge_offboarding_latency_seconds histogram\n");
        self.offboarding_latency.write(&mut out, "scimbridge_offboarding_latency_seconds", "");
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_text_is_prometheus_shaped() {
        let m = Metrics::default();
        m.record_request("GET", "/scim/v2/Users", 200, 0.004);
        m.record_request("GET", "/scim/v2/Users", 200, 0.2);
        m.record_request("POST", "/scim/v2/Users", 201, 20.0);
        let text = m.render(&[("scimbridge_store_bytes", "Store size.", 10.0)]);
        assert!(
            text.contains("scimbridge_http_requests_total{method=\"GET\",route=\"/scim/v2/Users\",status=\"200\"} 2")
        );
        assert!(
            text.contains("scimbridge_http_request_duration_seconds_bucket{route=\"/scim/v2/Users\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("scimbridge_http_request_duration_seconds_bucket{route=\"/scim/v2/Users\",le=\"0.25\"} 2")
        );
        assert!(
            text.contains("scimbridge_http_requests_total{method=\"POST\",route=\"/scim/v2/Users\",status=\"201\"} 1")
        );
        assert!(text.contains("scimbridge_http_request_duration_seconds_bucket{route=\"/scim/v2/Users\",le=\"10\"} 2"));
        assert!(
            text.contains("scimbridge_http_request_duration_seconds_bucket{route=\"/scim/v2/Users\",le=\"+Inf\"} 3")
        );
        assert!(text.contains("scimbridge_http_request_duration_seconds_count{route=\"/scim/v2/Users\"} 3"));
        assert!(text.contains("scimbridge_store_bytes 10"));
    }
}
