//! Abuse limits that sit in front of every handler: per-credential request rate (token bucket),
//! failed-authentication rate per client address, URL and header size caps, and which peers may
//! speak for a client through `X-Forwarded-*`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket per key: `rate` tokens a second, holding at most `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Past this many keys, idle buckets are swept so an attacker cycling keys cannot grow memory.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: f64) -> RateLimiter {
        RateLimiter { rate: rate_per_sec, burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`; `Err(wait)` says how long until one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() > SWEEP_AT {
            let full_after = Duration::from_secs_f64(self.burst / self.rate.max(f64::MIN_POSITIVE));
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full_after);
        }
        if !buckets.contains_key(key) {
            buckets.insert(key.to_string(), (self.burst, now));
        }
        let Some((tokens, at)) = buckets.get_mut(key) else { return Ok(()) };
        let refill = now.saturating_duration_since(*at).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate.max(f64::MIN_POSITIVE)))
        }
    }
}

/// An IP network such as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.trim().split_once('/').map_or((s.trim(), None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a.parse().map_err(|_| format!("'{s}' is not an IP address or network like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("'{s}' has a bad prefix length"))?
            }
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer, or — only when the peer is a trusted proxy — the nearest
/// untrusted address in `X-Forwarded-For`.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|c| c.contains(peer)) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = forwarded_for.unwrap_or("").split(',').filter_map(|h| h.trim().parse().ok()).collect();
    Some(hops.into_iter().rev().find(|ip| !trusted.iter().any(|c| c.contains(*ip))).unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_refills_at_the_rate() {
        let rl = RateLimiter::new(2.0, 3.0);
        let t0 = Instant::now();
        assert!((0..3).all(|_| rl.check("k", t0).is_ok()));
        let wait = rl.check("k", t0).expect_err("burst used");
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(rl.check("other", t0).is_ok(), "keys are independent");
        assert!(rl.check("k", t0 + Duration::from_millis(500)).is_ok(), "refilled one token");
        assert!(rl.check("k", t0 + Duration::from_millis(500)).is_err(), "and that token is spent");
    }

    #[test]
    fn networks_match_v4_v6_and_mapped_addresses() {
        let n: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(n.contains("10.1.2.3".parse().expect("ip")));
        assert!(!n.contains("11.0.0.1".parse().expect("ip")));
        assert!(n.contains("::ffff:10.0.0.1".parse().expect("ip")));
        let one: Cidr = "127.0.0.1".parse().expect("cidr");
        assert!(one.contains("127.0.0.1".parse().expect("ip")) && !one.contains("127.0.0.2".parse().expect("ip")));
        let v6: Cidr = "fd00::/8".parse().expect("cidr");
        assert!(v6.contains("fd12::1".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err() && "nope".parse::<Cidr>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec!["10.0.0.0/8".parse().expect("cidr")];
        let peer = |s: &str| Some(s.parse().expect("ip"));
        assert_eq!(client_ip(peer("203.0.113.9"), Some("1.2.3.4"), &trusted), peer("203.0.113.9"));
        assert_eq!(client_ip(peer("10.0.0.5"), Some("1.2.3.4, 10.0.0.7"), &trusted), peer("1.2.3.4"));
        assert_eq!(client_ip(peer("10.0.0.5"), None, &trusted), peer("10.0.0.5"));
    }
}
