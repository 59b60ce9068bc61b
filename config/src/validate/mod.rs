//! Raw TOML → validated model. Collects every error before giving up.

mod acl;
mod admin;
mod balancing;
mod dataplane;
mod fields;
mod health;
mod protection;
mod routing;
mod sync;

pub use acl::{parse_cidr, MAX_ACL_RULES};
pub use admin::{default_token_file, DEFAULT_ADMIN_CONNECTIONS, MAX_ADMIN_CONNECTIONS};
pub use sync::{
    DEFAULT_SYNC_BATCH_MS, DEFAULT_SYNC_BYTES_PER_SEC, DEFAULT_SYNC_FETCH_TIMEOUT_MS,
    DEFAULT_SYNC_MAX_HELD, DEFAULT_SYNC_MAX_QUEUED,
};

use std::path::Path;

use toml::Spanned;

use crate::error::{Collector, ConfigErrors};
use crate::model::Config;
use crate::raw::RawConfig;

/// DPDK's RTE_MAX_LCORE on Debian's build.
pub const MAX_LCORE: u32 = 128;
/// Default mbufs in the packet pool.
pub const DEFAULT_POOL_MBUFS: u32 = 8191;
/// Default RX/TX descriptors per queue.
pub const DEFAULT_DESCRIPTORS: u16 = 1024;
/// Default idle sleep.
pub const DEFAULT_IDLE_SLEEP_US: u32 = 100;
/// Default GUE destination port.
pub const DEFAULT_GUE_PORT: u16 = 6080;

/// Parses and validates `text`, naming `file` in errors.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let mut c = Collector::new(file, text);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            c.push(e.span(), String::new(), e.message().to_string());
            return Err(c.finish().unwrap_err());
        }
    };
    let gateway = dataplane::gateway(&mut c, raw.gateway.get_ref());
    let dataplane = dataplane::dataplane(&mut c, raw.dataplane.get_ref());
    let lb = balancing::balancing(&mut c, &raw);
    for (gi, g) in raw.target_group.iter().enumerate() {
        if let Some(a) = &g.get_ref().zone_affinity {
            if a.get_ref() == "prefer_own" && gateway.zone.is_none() {
                c.push(
                    Some(a.span()),
                    format!("target_group[{gi}].zone_affinity"),
                    "\"prefer_own\" needs the gateway's zone (gateway.zone)",
                );
            }
        }
    }
    let admin = raw
        .admin
        .as_ref()
        .map(|a| admin::admin(&mut c, a.get_ref()));
    let routing = raw
        .routing
        .as_ref()
        .map(|r| routing::routing(&mut c, r.get_ref(), r.span()));
    let protection = protection::protection(&mut c, raw.protection.as_ref());
    let sync = raw.sync.as_ref().map(|s| sync::sync(&mut c, s.get_ref()));
    c.finish()?;
    Ok(Config {
        gateway,
        dataplane,
        encap: lb.encap,
        flows: lb.flows,
        listeners: lb.listeners,
        target_groups: lb.target_groups,
        admin,
        routing,
        protection,
        sync,
    })
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
}

pub(crate) fn opt<T: Copy>(v: &Option<Spanned<T>>, default: T) -> T {
    v.as_ref().map_or(default, |s| *s.get_ref())
}
