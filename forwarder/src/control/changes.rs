//! Run-time changes as the control plane understands them: what an operator
//! may change while dnlb runs ([`Change`]), the rules each change follows
//! against the config file and the running config, and why one is refused
//! ([`ChangeError`]). The admin API turns requests into [`Change`]s and maps
//! [`ChangeError`]s to HTTP statuses; nothing here knows about HTTP.

use std::fmt;
use std::net::IpAddr;

use dnlb_config::runtime::{BackendRef, ListenerSection, RuntimeChanges};
use dnlb_config::{Backend, Config};
use toml::value::Datetime;

/// One run-time change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Register a backend in a group.
    Register {
        /// Target group.
        group: String,
        /// The backend, with the keys of `[[target_group.backend]]`.
        backend: toml::Table,
    },
    /// Deregister the backend(s) named.
    Deregister(BackendRef),
    /// Set the weight of the backend(s) named.
    Weight(BackendRef, u8),
    /// Drain the backend(s) named until a time (`None`: cancel a drain).
    Drain(BackendRef, Option<Datetime>),
    /// Attach (`Some`) or detach the elastic IP of a listener.
    ElasticIp {
        /// Listener.
        listener: String,
        /// Address.
        address: Option<IpAddr>,
    },
    /// Replace (`Some`) or remove a listener's access list or limits.
    Section {
        /// Listener.
        listener: String,
        /// Which section.
        section: ListenerSection,
        /// Its keys, as in the config file.
        value: Option<toml::Table>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Register { group, backend } => {
                let address = backend.get("address").and_then(|a| a.as_str());
                write!(f, "register {group} {}", address.unwrap_or("?"))
            }
            Change::Deregister(r) => write!(f, "deregister {r}"),
            Change::Weight(r, w) => write!(f, "weight {r} = {w}"),
            Change::Drain(r, Some(u)) => write!(f, "drain {r} until {u}"),
            Change::Drain(r, None) => write!(f, "undrain {r}"),
            Change::ElasticIp {
                listener,
                address: Some(a),
            } => write!(f, "attach {a} to listener {listener}"),
            Change::ElasticIp {
                listener,
                address: None,
            } => write!(f, "detach the elastic IP of listener {listener}"),
            Change::Section {
                listener,
                section,
                value,
            } => {
                let verb = if value.is_some() { "set" } else { "remove" };
                write!(f, "{verb} the {} of listener {listener}", section.key())
            }
        }
    }
}

/// Why a change (or a reload through the API) was not made. Whatever the
/// reason, the running configuration is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// No target group of that name in the running config.
    #[error("no target group {0:?}")]
    NoTargetGroup(String),
    /// No listener of that name in the running config.
    #[error("no listener {0:?}")]
    NoListener(String),
    /// No backend matches the reference.
    #[error("no {0}")]
    NoBackend(BackendRef),
    /// dnlb runs without a config file, so there is nothing to change.
    #[error("dnlb was started without a config file: nothing to change")]
    NoConfigFile,
    /// The gateway forwards frames only (it started without listeners).
    #[error("this gateway started without listeners (frame forwarding only); restart it to add listeners")]
    ForwardingOnly,
    /// The config file on disk no longer validates, so nothing can be
    /// applied over it.
    #[error("the running config file no longer validates: {0}")]
    ConfigFileInvalid(String),
    /// The result would not be a valid configuration, or cannot replace the
    /// running one at run time.
    #[error("{0}")]
    Invalid(String),
    /// The run-time changes file could not be written (the change is not
    /// made: it would be lost on restart).
    #[error("cannot save {path}: {error}; the change was not made")]
    NotSaved {
        /// The run-time changes file.
        path: String,
        /// What went wrong.
        error: String,
    },
}

impl Change {
    /// Records this change in `changes`, checking it against the config
    /// file's own configuration (`base`: is the backend in the file?) and the
    /// running one (`running`: does the group, listener or backend exist?).
    pub fn record(
        &self,
        changes: &mut RuntimeChanges,
        base: &Config,
        running: &Config,
    ) -> Result<(), ChangeError> {
        let in_file = |r: &BackendRef| named(base, r).is_ok();
        match self {
            Change::Register { group, backend } => {
                if running.group_index(group).is_none() {
                    return Err(ChangeError::NoTargetGroup(group.clone()));
                }
                changes.register(group, backend.clone());
            }
            Change::Deregister(r) => {
                named(running, r)?;
                changes.deregister(r, in_file(r));
            }
            Change::Weight(r, w) => {
                named(running, r)?;
                changes.set_weight(r, *w, in_file(r));
            }
            Change::Drain(r, until) => {
                named(running, r)?;
                changes.set_drain(r, *until, in_file(r));
            }
            Change::ElasticIp { listener, address } => {
                if running.listener_index(listener).is_none() {
                    return Err(ChangeError::NoListener(listener.clone()));
                }
                changes.set_elastic_ip(listener, *address);
            }
            Change::Section {
                listener,
                section,
                value,
            } => {
                if running.listener_index(listener).is_none() {
                    return Err(ChangeError::NoListener(listener.clone()));
                }
                changes.set_listener_section(*section, listener, value.clone());
            }
        }
        Ok(())
    }
}

/// The backends of `cfg` that `r` names.
pub fn named<'a>(cfg: &'a Config, r: &BackendRef) -> Result<Vec<&'a Backend>, ChangeError> {
    let gi = cfg
        .group_index(&r.target_group)
        .ok_or_else(|| ChangeError::NoTargetGroup(r.target_group.clone()))?;
    let found: Vec<&Backend> = cfg.target_groups[gi]
        .backends
        .iter()
        .filter(|b| r.names(&r.target_group, b))
        .collect();
    if found.is_empty() {
        return Err(ChangeError::NoBackend(r.clone()));
    }
    Ok(found)
}

/// Whether a run-time change names backend `b` of group `group`.
pub fn touches(changes: &RuntimeChanges, group: &str, b: &Backend) -> bool {
    changes
        .register
        .iter()
        .filter_map(|r| r.reference())
        .any(|r| r.names(group, b))
        || changes.weight.iter().any(|w| w.backend.names(group, b))
        || changes.drain.iter().any(|d| d.backend.names(group, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = "[gateway]\nname = \"t\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
                    [encap]\nsource_v4 = \"192.0.2.1\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
                    [[listener]]\nname = \"l\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
                    [[target_group]]\nname = \"g\"\n[[target_group.backend]]\naddress = \"192.0.2.20\"\ntunnel = \"ipip\"\n";
        dnlb_config::parse(std::path::Path::new("t.toml"), text).unwrap()
    }

    fn backend(a: &str) -> BackendRef {
        BackendRef {
            target_group: "g".into(),
            address: a.parse().unwrap(),
            port: None,
        }
    }

    #[test]
    fn changes_are_checked_against_the_running_config() {
        let cfg = config();
        let mut ch = RuntimeChanges::default();
        let known = backend("192.0.2.20");
        assert_eq!(
            Change::Weight(known.clone(), 5).record(&mut ch, &cfg, &cfg),
            Ok(())
        );
        assert_eq!(ch.weight.len(), 1);
        assert!(touches(&ch, "g", &cfg.target_groups[0].backends[0]));
        let unknown = backend("192.0.2.99");
        assert_eq!(
            Change::Drain(unknown.clone(), None).record(&mut ch, &cfg, &cfg),
            Err(ChangeError::NoBackend(unknown))
        );
        let register = Change::Register {
            group: "nope".into(),
            backend: toml::Table::new(),
        };
        assert_eq!(
            register.record(&mut ch, &cfg, &cfg),
            Err(ChangeError::NoTargetGroup("nope".into()))
        );
        let detach = Change::ElasticIp {
            listener: "x".into(),
            address: None,
        };
        assert_eq!(
            detach.record(&mut ch, &cfg, &cfg),
            Err(ChangeError::NoListener("x".into()))
        );
        assert_eq!(ch.weight.len(), 1, "refused changes record nothing");
        assert_eq!(
            Change::Weight(known, 5).to_string(),
            "weight target group \"g\" backend 192.0.2.20 = 5"
        );
    }
}
