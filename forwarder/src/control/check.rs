//! The admin API's dry run (`POST /v1/config/check`): a new text of the
//! config file validated as a reload would validate it (with the run-time
//! changes applied over it, and the rules of what may change at run time),
//! and its plan compared with the running config's. Nothing is changed.

use serde::Serialize;

use crate::control::changes::ChangeError;
use crate::control::plan;
use crate::control::plane::ControlPlane;

/// What the dry run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// A reload with this text would be published.
    pub valid: bool,
    /// Why not (one line each; empty when valid).
    pub errors: Vec<String>,
    /// The plan's lines against the running config's (`"  "`, `"- "`,
    /// `"+ "`), when valid.
    pub diff: Vec<String>,
    /// Whether any line of the plan changes.
    pub changes: bool,
    /// Run-time changes that would no longer apply.
    pub stale: Vec<String>,
}

impl CheckReport {
    fn invalid(errors: Vec<String>) -> Self {
        CheckReport {
            valid: false,
            errors,
            diff: Vec::new(),
            changes: false,
            stale: Vec::new(),
        }
    }
}

/// Validates `text` as the config file of `plane`'s gateway and compares
/// its plan with the running one. `Err` only when there is no config file
/// to check against.
pub fn check(plane: &ControlPlane, text: &str) -> Result<CheckReport, ChangeError> {
    let path = plane.config_file().ok_or(ChangeError::NoConfigFile)?;
    let runtime_path = dnlb_config::runtime::runtime_path(path);
    let changes = match dnlb_config::runtime::RuntimeChanges::load(&runtime_path) {
        Ok(c) => c,
        Err(e) => return Ok(CheckReport::invalid(lines(&e))),
    };
    let (next, stale) = match changes.apply(path, text, &runtime_path) {
        Ok(r) => r,
        Err(e) => return Ok(CheckReport::invalid(lines(&e))),
    };
    if let Err(e) = plane.replaceable(&next) {
        return Ok(CheckReport::invalid(vec![e.to_string()]));
    }
    let diff = plan::diff(&plan::lines(plane.config()), &plan::lines(&next));
    Ok(CheckReport {
        valid: true,
        errors: Vec::new(),
        changes: diff.iter().any(|l| !l.starts_with("  ")),
        diff,
        stale,
    })
}

fn lines(e: &dnlb_config::ConfigErrors) -> Vec<String> {
    e.0.iter().map(ToString::to_string).collect()
}
