//! The per-source connection limit (`--max-connections-per-source`): how many TCP connections
//! one client may have open at once, so that one address cannot take every place under the
//! server's connection limit.
//!
//! A source is an IPv4 address, or the /64 prefix of an IPv6 address: one IPv6 host is given a
//! whole /64 and may use any address in it, so counting single IPv6 addresses would limit no one
//! (`docs/OPERATIONS.md`). An IPv4-mapped IPv6 address is its IPv4 address. Behind a proxy
//! speaking the PROXY protocol, the source is the client the proxy names, not the proxy.
//!
//! Counts are exact: a table per shard keyed by the source itself (a hash only picks the shard),
//! so no client is ever refused for another's connections. A source has an entry only while it
//! has a connection open, so the tables never hold more entries than there are open
//! connections. This module is only reached when the limit is on, and must never hold a lock
//! beyond one count's update.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};

/// Tables, each with its own lock, so connections from different sources rarely wait for each
/// other: a handful per core is plenty.
const SHARDS: usize = 16;

/// One source of connections: what the limit counts. Bytes rather than integers keep it at nine
/// bytes, which matters in the async model's per-connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl Source {
    /// The source an address belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let [a, b, c, d, e, f, g, h, ..] = v6.octets();
                Self::V6([a, b, c, d, e, f, g, h])
            }
        }
    }
}

impl fmt::Display for Source {
    /// `192.0.2.7`, or `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V4(octets) => Ipv4Addr::from(octets).fmt(f),
            Self::V6([a, b, c, d, e, g, h, i]) => {
                let prefix = Ipv6Addr::from([a, b, c, d, e, g, h, i, 0, 0, 0, 0, 0, 0, 0, 0]);
                write!(f, "{prefix}/64")
            }
        }
    }
}

/// The open connections of every source that has some, under one limit.
#[derive(Debug)]
pub(crate) struct Sources {
    limit: u32,
    loopback: bool,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Source, u32>>>,
}

impl Sources {
    /// Sources allowed `limit` connections each; loopback clients too if `loopback`.
    pub(crate) fn new(limit: usize, loopback: bool) -> Self {
        Self {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            loopback,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, source: Source) -> &Mutex<HashMap<Source, u32>> {
        let index = self.hasher.hash_one(source) as usize % SHARDS;
        // `index` is below SHARDS, the number of shards made.
        self.shards.get(index).unwrap_or_else(|| unreachable!("shard {index} of {SHARDS}"))
    }

    /// Takes a place for a connection from `ip`: `Ok(Some(source))` when taken (give it back with
    /// [`Self::release`]), `Ok(None)` when `ip` is not limited (loopback), `Err(source)` when the
    /// source already has `limit` connections open.
    pub(crate) fn take(&self, ip: IpAddr) -> Result<Option<Source>, Source> {
        if ip.to_canonical().is_loopback() && !self.loopback {
            return Ok(None);
        }
        let source = Source::of(ip);
        let mut counts = self.shard(source).lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.entry(source).or_insert(0);
        if *open >= self.limit {
            if *open == 0 {
                counts.remove(&source);
            }
            return Err(source);
        }
        *open += 1;
        Ok(Some(source))
    }

    /// Gives back the place a connection from `source` held.
    pub(crate) fn release(&self, source: Source) {
        let mut counts = self.shard(source).lock().unwrap_or_else(PoisonError::into_inner);
        match counts.get_mut(&source) {
            Some(open) if *open > 1 => *open -= 1,
            Some(_) => {
                counts.remove(&source);
            }
            None => tracing::error!(%source, "bug: a connection released a place its source did not hold"),
        }
    }

    /// Sources with a connection open now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map_or(0, |counts| counts.len())).sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A source gets its limit and no more; a place given back is free again; another source,
    /// even one in the same shard, is never refused for it; no entry outlives its connections.
    #[test]
    fn each_source_is_counted_exactly() {
        let sources = Sources::new(2, false);
        let a = sources.take(ip("192.0.2.1")).unwrap().unwrap();
        assert_eq!(sources.take(ip("192.0.2.1")), Ok(Some(a)));
        assert_eq!(sources.take(ip("192.0.2.1")), Err(a), "over the limit");
        for i in 0..=255 {
            let other = IpAddr::from([198, 51, 100, i]);
            assert!(sources.take(other).unwrap().is_some(), "{other} refused for 192.0.2.1");
            sources.release(Source::of(other));
        }
        sources.release(a);
        assert!(sources.take(ip("192.0.2.1")).is_ok(), "a released place is free again");
        sources.release(a);
        sources.release(a);
        assert_eq!(sources.tracked(), 0);
    }

    /// An IPv6 host has a /64 to itself: every address in it is one source; an IPv4-mapped
    /// address is its IPv4 address.
    #[test]
    fn an_ipv6_source_is_its_slash_64() {
        let sources = Sources::new(1, false);
        let host = sources.take(ip("2001:db8:1:2::1")).unwrap().unwrap();
        assert_eq!(host.to_string(), "2001:db8:1:2::/64");
        assert_eq!(sources.take(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), Err(host));
        assert!(sources.take(ip("2001:db8:1:3::1")).unwrap().is_some(), "the next /64 is another source");
        let v4 = sources.take(ip("192.0.2.9")).unwrap().unwrap();
        assert_eq!(sources.take(ip("::ffff:192.0.2.9")), Err(v4));
        assert_eq!(v4.to_string(), "192.0.2.9");
    }

    /// Loopback clients are not limited unless asked.
    #[test]
    fn loopback_is_limited_only_when_asked() {
        let exempt = Sources::new(1, false);
        for _ in 0..3 {
            assert_eq!(exempt.take(ip("127.0.0.1")), Ok(None));
            assert_eq!(exempt.take(ip("::1")), Ok(None));
        }
        let limited = Sources::new(1, true);
        assert!(limited.take(ip("127.0.0.1")).unwrap().is_some());
        assert!(limited.take(ip("127.0.0.1")).is_err());
    }
}
