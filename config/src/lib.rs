//! dnlb's configuration: one TOML file, validated into a typed model.
//!
//! [`raw`] is the schema as written (serde, `deny_unknown_fields`);
//! [`validate`] checks it and reports every problem at once with file, line,
//! column and key ([`ConfigErrors`]) and produces the validated [`model`]
//! (the `dnlb-model` crate, re-exported) that the rest of dnlb uses. Maglev's
//! rules (prime table sizes, the weight bound, backend identities) come from
//! `dnlb_lb::maglev`, so validation and the table build agree.
//! Nothing downstream sees unvalidated input.

#![forbid(unsafe_code)]

pub mod durable;
pub mod error;
/// The validated model this crate produces (the `dnlb-model` crate).
pub use dnlb_model as model;
pub mod raw;
pub mod runtime;
pub mod time;
pub mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::{
    Admin, AllDownPolicy, Backend, BackendKind, Config, Dataplane, Device, EchoPolicy, Encap,
    ExceptionSync, Flows, FragmentPolicy, Gateway, HealthCheck, IdlePolicy, Listener, PortSpec,
    Probe, Protocol, Routing, Scheduler, TargetGroup, Token, TooBigPolicy, Tunnel, ZoneAffinity,
};

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => validate::parse(path, &text),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])),
    }
}

/// Validates `text` as if read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    validate::parse(path, text)
}
