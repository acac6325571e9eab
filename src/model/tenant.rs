//! Tenants: who is synced ([`TenantId`]), where their Amazon account lives ([`Region`]) and
//! which Orders API they are synced through ([`OrdersApi`]).

use std::fmt;

use serde::Serialize;

/// A tenant identifier: letters, digits, `-` and `_`, 1 to 64 characters. It names files, so
/// nothing else is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

/// A string that is not a valid [`TenantId`]. The message quotes the value: a tenant id is never
/// a secret, and a mistyped one must be recognisable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant id {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
pub struct InvalidTenantId(pub String);

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, InvalidTenantId> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(TenantId(value.to_owned()))
        } else {
            Err(InvalidTenantId(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shard (0..`count`) this tenant belongs to when a fleet is split across processes
    /// (`--shard I/N`). The hash is FNV-1a 64 over the id's bytes, modulo `count`: stable across
    /// builds, platforms and Rust versions (unlike `std`'s hasher), so a tenant stays in its
    /// shard until the shard count changes.
    pub fn shard(&self, count: u32) -> u32 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = self
            .0
            .bytes()
            .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
        (hash % u64::from(count.max(1))) as u32
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = InvalidTenantId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::parse(s)
    }
}

/// The SP-API region a seller's account lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Na,
    Eu,
    Fe,
}

impl Region {
    /// Amazon's production endpoint for the region.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Region::Na => "https://sellingpartnerapi-na.amazon.com",
            Region::Eu => "https://sellingpartnerapi-eu.amazon.com",
            Region::Fe => "https://sellingpartnerapi-fe.amazon.com",
        }
    }
}

/// Which Orders API a tenant is synced through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum OrdersApi {
    /// Orders API v0 (getOrders + getOrderItems). Deprecated; removed by Amazon on 2027-03-27.
    V0,
    /// Orders API v2026-01-01 (searchOrders with items inline). The default.
    #[default]
    V2026,
}

impl OrdersApi {
    /// The name used in tenant files and in the database (`source_api`, `sync_runs.orders_api`).
    pub fn as_str(self) -> &'static str {
        match self {
            OrdersApi::V0 => "v0",
            OrdersApi::V2026 => "2026-01-01",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "v0" => Some(OrdersApi::V0),
            "2026-01-01" => Some(OrdersApi::V2026),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_that_could_escape_the_directory_are_refused() {
        for bad in ["", "../etc", "a/b", "a.b", "a b", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(TenantId::parse("ecomlg-001_A").is_ok());
    }

    #[test]
    fn shards_are_fnv1a_modulo_the_count_and_cover_every_tenant_once() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published test vector).
        let a = TenantId::parse("a").unwrap();
        assert_eq!(
            a.shard(u32::MAX),
            (0xaf63_dc4c_8601_ec8c_u64 % u64::from(u32::MAX)) as u32
        );
        assert_eq!(a.shard(1), 0);
        let ids: Vec<TenantId> = (0..500)
            .map(|i| TenantId::parse(&format!("tenant-{i}")).unwrap())
            .collect();
        let mut sizes = [0; 4];
        for id in &ids {
            sizes[id.shard(4) as usize] += 1;
        }
        assert_eq!(sizes.iter().sum::<i32>(), 500);
        assert!(sizes.iter().all(|n| *n > 80), "roughly even: {sizes:?}");
    }

    #[test]
    fn orders_api_names_round_trip() {
        for api in [OrdersApi::V0, OrdersApi::V2026] {
            assert_eq!(OrdersApi::from_name(api.as_str()), Some(api));
        }
        assert_eq!(OrdersApi::from_name("v1"), None);
    }
}
