//! Run-time changes: what the admin API changed — backends registered and
//! deregistered, weights, drains, elastic IPs. They are kept in a file
//! beside the config (`NAME.runtime.toml` next to `NAME.toml`) so a restart
//! keeps them, applied over the config file's text and validated together
//! with it, so workers never see an unvalidated combination.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::value::Datetime;
use toml::{Table, Value};

use crate::error::{Collector, ConfigError, ConfigErrors};
use crate::model::Config;

/// Names a backend of a target group: by address, and by port when given
/// (without a port, every backend at that address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendRef {
    /// Target group name.
    pub target_group: String,
    /// Backend address.
    pub address: IpAddr,
    /// Backend port (`port` in the config; absent there means 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl BackendRef {
    fn matches(&self, backend: &Value) -> bool {
        let Some(t) = backend.as_table() else {
            return false;
        };
        let address = t
            .get("address")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<IpAddr>().ok());
        let port = t.get("port").and_then(Value::as_integer).unwrap_or(0);
        address == Some(self.address) && self.port.is_none_or(|p| i64::from(p) == port)
    }

    /// Whether this names backend `b` of group `group`.
    pub fn names(&self, group: &str, b: &crate::model::Backend) -> bool {
        self.target_group == group
            && self.address == b.address
            && self.port.is_none_or(|p| p == b.port)
    }
}

impl std::fmt::Display for BackendRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "target group {:?} backend {}",
            self.target_group, self.address
        )?;
        if let Some(p) = self.port {
            write!(f, " port {p}")?;
        }
        Ok(())
    }
}

/// A backend added at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registered {
    /// Target group name.
    pub target_group: String,
    /// The backend, with the keys of `[[target_group.backend]]`.
    pub backend: Table,
}

impl Registered {
    /// The backend this registers (by address and port).
    pub fn reference(&self) -> Option<BackendRef> {
        let address = self.backend.get("address")?.as_str()?.parse().ok()?;
        let port = self
            .backend
            .get("port")
            .and_then(Value::as_integer)
            .and_then(|p| u16::try_from(p).ok());
        Some(BackendRef {
            target_group: self.target_group.clone(),
            address,
            port: Some(port.unwrap_or(0)),
        })
    }
}

/// A weight set at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightChange {
    /// The backend(s).
    pub backend: BackendRef,
    /// New weight, 0..=100.
    pub weight: u8,
}

/// A drain started (or cancelled) at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainChange {
    /// The backend(s).
    pub backend: BackendRef,
    /// Drain deadline; absent: not draining (cancels a drain in the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Datetime>,
}

/// An elastic IP attached or detached at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticIpChange {
    /// Listener name.
    pub listener: String,
    /// The attached address; absent: detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

/// A listener's section (`[listener.acl]`, `[listener.limits]`) replaced
/// or removed at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionChange {
    /// Listener name.
    pub listener: String,
    /// The section's keys, as in the config file; absent: the section is
    /// removed (no access list, no limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Table>,
}

/// The listener sections the admin API can replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerSection {
    /// `[listener.acl]`.
    Acl,
    /// `[listener.limits]`.
    Limits,
}

impl ListenerSection {
    /// The key in the config file.
    pub fn key(self) -> &'static str {
        match self {
            ListenerSection::Acl => "acl",
            ListenerSection::Limits => "limits",
        }
    }
}

/// Every run-time change, applied in this order: deregistrations (they
/// remove backends of the config file), registrations, weights, drains,
/// elastic IPs, listeners' access lists and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeChanges {
    /// Backends added (`[[register]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub register: Vec<Registered>,
    /// Backends removed (`[[deregister]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deregister: Vec<BackendRef>,
    /// Weights (`[[weight]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight: Vec<WeightChange>,
    /// Drains (`[[drain]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drain: Vec<DrainChange>,
    /// Elastic IPs (`[[elastic_ip]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elastic_ip: Vec<ElasticIpChange>,
    /// Listeners' access lists (`[[acl]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<SectionChange>,
    /// Listeners' new-flow limits (`[[limits]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<SectionChange>,
}

/// The run-time changes file of config file `config`: `NAME.runtime.toml`
/// beside `NAME.toml`.
pub fn runtime_path(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or_else(|| "dnlb".into(), |s| s.to_string_lossy().into_owned());
    config.with_file_name(format!("{stem}.runtime.toml"))
}

const HEADER: &str = "# Run-time changes made through dnlb's admin API. dnlb applies them over\n\
# the config file at start and on every reload, and `dnlb check` shows them.\n\
# Delete an entry (or the file) to forget a change; then reload.\n\n";

/// A config file with its run-time changes applied and validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The config file's text.
    pub text: String,
    /// The run-time changes.
    pub changes: RuntimeChanges,
    /// Where they are kept.
    pub runtime_path: PathBuf,
    /// Changes that name something the config no longer has (ignored).
    pub stale: Vec<String>,
}

/// Reads the config file at `path` and its run-time changes file, and
/// validates them together.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let text =
        std::fs::read_to_string(path).map_err(|e| unplaced(path, format!("cannot read: {e}")))?;
    let runtime_path = runtime_path(path);
    let changes = RuntimeChanges::load(&runtime_path)?;
    let (config, stale) = changes.apply(path, &text, &runtime_path)?;
    Ok(Loaded {
        config,
        text,
        changes,
        runtime_path,
        stale,
    })
}

fn unplaced(file: &Path, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        file: file.to_path_buf(),
        line: None,
        column: None,
        key: String::new(),
        message,
    }])
}

impl RuntimeChanges {
    /// Whether there are no changes.
    pub fn is_empty(&self) -> bool {
        *self == RuntimeChanges::default()
    }

    /// Reads a run-time changes file; a missing file means no changes. A
    /// file that cannot be read, is empty or does not parse is an error
    /// naming it (and the previous version, if one was kept): dnlb never
    /// takes a damaged file for "no changes".
    pub fn load(path: &Path) -> Result<RuntimeChanges, ConfigErrors> {
        let prev = crate::durable::previous_path(path);
        let hint = if prev.exists() {
            format!(
                "; the version before the last change is in {}",
                prev.display()
            )
        } else {
            String::new()
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(unplaced(path, format!("cannot read: {e}{hint}"))),
        };
        if text.trim().is_empty() {
            return Err(unplaced(
                path,
                format!("the run-time changes file is empty (dnlb always writes a header): damaged{hint}"),
            ));
        }
        toml::from_str(&text).map_err(|e| {
            let mut c = Collector::new(path, &text);
            c.push(e.span(), String::new(), format!("{}{hint}", e.message()));
            c.finish().unwrap_err()
        })
    }

    /// Writes the changes to `path` durably (see [`crate::durable`]): a
    /// crash at any moment leaves the last saved version or this one, and
    /// the version replaced is kept as `PATH.prev`. No changes still make a
    /// file (with only the header), so an empty file always means damage.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = self.to_text().map_err(std::io::Error::other)?;
        crate::durable::replace(path, text.as_bytes(), true)
    }

    /// The file's text: the header and the changes, checked to read back as
    /// the same changes (a file dnlb could not read at its next start is
    /// never written: e.g. a hand-edited stale registration whose tables
    /// nest deeper than the TOML reader accepts once written out).
    pub fn to_text(&self) -> Result<String, String> {
        let body = if self.is_empty() {
            String::new()
        } else {
            toml::to_string(self).map_err(|e| e.to_string())?
        };
        let text = format!("{HEADER}{body}");
        match toml::from_str::<RuntimeChanges>(&text) {
            Ok(again) if again == *self => Ok(text),
            Ok(_) => Err("the changes would not read back as written".into()),
            Err(e) => Err(format!("the changes would not read back: {}", e.message())),
        }
    }

    /// Applies the changes over config text `text` (from file `file`) and
    /// validates the result. Errors in the config itself name their place
    /// in `file`; errors that only the changes cause name `runtime_file`.
    /// Also returns the changes that no longer apply (they are skipped).
    pub fn apply(
        &self,
        file: &Path,
        text: &str,
        runtime_file: &Path,
    ) -> Result<(Config, Vec<String>), ConfigErrors> {
        let base = crate::validate::parse(file, text)?;
        if self.is_empty() {
            return Ok((base, Vec::new()));
        }
        let mut doc: Table = toml::from_str(text).map_err(|e| unplaced(file, e.to_string()))?;
        let mut stale = Vec::new();
        self.apply_to(&mut doc, &mut stale);
        let merged = toml::to_string(&doc).map_err(|e| unplaced(runtime_file, e.to_string()))?;
        let mut config = crate::validate::parse(runtime_file, &merged).map_err(|errs| {
            ConfigErrors(
                errs.0
                    .into_iter()
                    .map(|e| ConfigError {
                        line: None,
                        column: None,
                        message: format!("with the run-time changes applied: {}", e.message),
                        ..e
                    })
                    .collect(),
            )
        })?;
        // Run-time changes never touch [admin]; its defaults (the token file
        // beside the config file) derive from the config file's name.
        config.admin = base.admin;
        Ok((config, stale))
    }

    fn apply_to(&self, doc: &mut Table, stale: &mut Vec<String>) {
        for r in &self.deregister {
            let removed = group_backends(doc, &r.target_group).map(|list| {
                let before = list.len();
                list.retain(|b| !r.matches(b));
                before - list.len()
            });
            if removed.unwrap_or(0) == 0 {
                stale.push(format!("deregister: no {r} (ignored)"));
            }
        }
        for r in &self.register {
            match group_backends(doc, &r.target_group) {
                Some(list) => list.push(Value::Table(r.backend.clone())),
                None => stale.push(format!(
                    "register: no target group {:?} (ignored)",
                    r.target_group
                )),
            }
        }
        let mut set = |r: &BackendRef, what: &str, key: &str, v: Option<Value>| {
            let mut n = 0;
            if let Some(list) = group_backends(doc, &r.target_group) {
                for b in list.iter_mut().filter(|b| r.matches(b)) {
                    if let Some(t) = b.as_table_mut() {
                        n += 1;
                        match &v {
                            Some(v) => t.insert(key.into(), v.clone()),
                            None => t.remove(key),
                        };
                    }
                }
            }
            if n == 0 {
                stale.push(format!("{what}: no {r} (ignored)"));
            }
        };
        for w in &self.weight {
            set(
                &w.backend,
                "weight",
                "weight",
                Some(Value::Integer(w.weight.into())),
            );
        }
        for d in &self.drain {
            set(
                &d.backend,
                "drain",
                "drain_until",
                d.until.map(Value::Datetime),
            );
        }
        for e in &self.elastic_ip {
            match listener_table(doc, &e.listener) {
                Some(l) => match e.address {
                    Some(a) => {
                        l.insert("elastic_ip".into(), Value::String(a.to_string()));
                    }
                    None => {
                        l.remove("elastic_ip");
                    }
                },
                None => stale.push(format!(
                    "elastic_ip: no listener {:?} (ignored)",
                    e.listener
                )),
            }
        }
        for (section, list) in [
            (ListenerSection::Acl, &self.acl),
            (ListenerSection::Limits, &self.limits),
        ] {
            for c in list {
                let key = section.key();
                match listener_table(doc, &c.listener) {
                    Some(l) => match &c.value {
                        Some(v) => {
                            l.insert(key.into(), Value::Table(v.clone()));
                        }
                        None => {
                            l.remove(key);
                        }
                    },
                    None => stale.push(format!("{key}: no listener {:?} (ignored)", c.listener)),
                }
            }
        }
    }

    /// Replaces listener `listener`'s `section` with `value` (the section's
    /// keys), or removes it (`None`).
    pub fn set_listener_section(
        &mut self,
        section: ListenerSection,
        listener: &str,
        value: Option<Table>,
    ) {
        let list = match section {
            ListenerSection::Acl => &mut self.acl,
            ListenerSection::Limits => &mut self.limits,
        };
        list.retain(|c| c.listener != listener);
        list.push(SectionChange {
            listener: listener.to_string(),
            value,
        });
    }

    /// Adds backend `backend` (keys of `[[target_group.backend]]`) to group
    /// `group`, replacing an earlier registration of the same address and
    /// port. (Deregistrations apply to the config file's backends before
    /// registrations, so one of the same address does not remove it.)
    pub fn register(&mut self, group: &str, backend: Table) {
        let new = Registered {
            target_group: group.to_string(),
            backend,
        };
        if let Some(r) = new.reference() {
            self.register
                .retain(|o| o.reference().is_none_or(|o| o != r));
        }
        self.register.push(new);
    }

    /// Removes the backend(s) `r`: forgets their registrations, and records a
    /// deregistration when the config file has them (`in_config`).
    pub fn deregister(&mut self, r: &BackendRef, in_config: bool) {
        self.register.retain(|o| {
            !r.matches(&Value::Table(o.backend.clone())) || o.target_group != r.target_group
        });
        self.weight.retain(|w| !overlaps(&w.backend, r));
        self.drain.retain(|d| !overlaps(&d.backend, r));
        if in_config && !self.deregister.iter().any(|d| d == r) {
            self.deregister.push(r.clone());
        }
    }

    /// Sets the weight of backend(s) `r`: in their registrations, and as a
    /// change of the config file's backends when it has any (`in_config`).
    pub fn set_weight(&mut self, r: &BackendRef, weight: u8, in_config: bool) {
        self.edit_registered(r, "weight", Some(Value::Integer(weight.into())));
        if in_config {
            self.weight.retain(|w| w.backend != *r);
            self.weight.push(WeightChange {
                backend: r.clone(),
                weight,
            });
        }
    }

    /// Drains backend(s) `r` until `until`, or cancels their drain (`None`):
    /// in their registrations, and for the config file's backends when it
    /// has any (`in_config`).
    pub fn set_drain(&mut self, r: &BackendRef, until: Option<Datetime>, in_config: bool) {
        self.edit_registered(r, "drain_until", until.map(Value::Datetime));
        if in_config {
            self.drain.retain(|d| d.backend != *r);
            self.drain.push(DrainChange {
                backend: r.clone(),
                until,
            });
        }
    }

    /// Attaches `address` to listener `listener` as its elastic IP, or
    /// detaches it (`None`).
    pub fn set_elastic_ip(&mut self, listener: &str, address: Option<IpAddr>) {
        self.elastic_ip.retain(|e| e.listener != listener);
        self.elastic_ip.push(ElasticIpChange {
            listener: listener.to_string(),
            address,
        });
    }

    /// Sets `key` on the registered backends `r` names.
    fn edit_registered(&mut self, r: &BackendRef, key: &str, v: Option<Value>) {
        for reg in &mut self.register {
            if reg.target_group == r.target_group && r.matches(&Value::Table(reg.backend.clone())) {
                match &v {
                    Some(v) => reg.backend.insert(key.into(), v.clone()),
                    None => reg.backend.remove(key),
                };
            }
        }
    }

    /// One line per change, for `dnlb check` and the API.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.register {
            let b = &r.backend;
            let s = |k: &str| b.get(k).map_or_else(|| "-".into(), |v| v.to_string());
            out.push(format!(
                "register: target group {:?} backend {} port {} tunnel {} weight {}",
                r.target_group,
                s("address").trim_matches('"'),
                s("port"),
                s("tunnel").trim_matches('"'),
                s("weight")
            ));
        }
        for d in &self.deregister {
            out.push(format!("deregister: {d}"));
        }
        for w in &self.weight {
            out.push(format!("weight: {} = {}", w.backend, w.weight));
        }
        for d in &self.drain {
            match &d.until {
                Some(t) => out.push(format!("drain: {} until {t}", d.backend)),
                None => out.push(format!("drain: {} cancelled", d.backend)),
            }
        }
        for e in &self.elastic_ip {
            match e.address {
                Some(a) => out.push(format!(
                    "elastic_ip: listener {:?} attached {a}",
                    e.listener
                )),
                None => out.push(format!("elastic_ip: listener {:?} detached", e.listener)),
            }
        }
        for (key, list) in [("acl", &self.acl), ("limits", &self.limits)] {
            for c in list {
                match &c.value {
                    Some(v) => {
                        out.push(format!("{key}: listener {:?} = {}", c.listener, inline(v)))
                    }
                    None => out.push(format!("{key}: listener {:?} removed", c.listener)),
                }
            }
        }
        out
    }
}

/// Whether two references can name the same backend.
fn overlaps(a: &BackendRef, b: &BackendRef) -> bool {
    a.target_group == b.target_group
        && a.address == b.address
        && (a.port.is_none() || b.port.is_none() || a.port == b.port)
}

/// A table as one line, `{ default = "deny", allow = ["10.0.0.0/8"] }`.
fn inline(t: &Table) -> String {
    let parts: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", parts.join(", "))
}

/// The table of listener `name` in a config document.
fn listener_table<'a>(doc: &'a mut Table, name: &str) -> Option<&'a mut Table> {
    doc.get_mut("listener")?
        .as_array_mut()?
        .iter_mut()
        .filter_map(Value::as_table_mut)
        .find(|l| l.get("name").and_then(Value::as_str) == Some(name))
}

/// The backend list of target group `name` in a config document.
fn group_backends<'a>(doc: &'a mut Table, name: &str) -> Option<&'a mut Vec<Value>> {
    let group = doc
        .get_mut("target_group")?
        .as_array_mut()?
        .iter_mut()
        .filter_map(Value::as_table_mut)
        .find(|g| g.get("name").and_then(Value::as_str) == Some(name))?;
    group
        .entry("backend")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
}
