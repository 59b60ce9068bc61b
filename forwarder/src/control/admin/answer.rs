//! The control thread's side of a call: [`serve`] answers an [`ApiCall`]
//! from the plane's state, as an [`ApiReply`] with an HTTP status. HTTP
//! statuses for refused changes are chosen here only.

use serde_json::json;

use super::reply::ApiReply;
use super::routes::ApiCall;
use crate::control::changes::ChangeError;
use crate::control::plane::{ControlPlane, Published};
use crate::control::report;

/// The HTTP status of a refused change: 404 no such thing, 409 not
/// possible on this gateway now, 422 invalid, 500 not persisted.
fn http_status(e: &ChangeError) -> u16 {
    match e {
        ChangeError::NoTargetGroup(_) | ChangeError::NoListener(_) | ChangeError::NoBackend(_) => {
            404
        }
        ChangeError::NoConfigFile
        | ChangeError::ForwardingOnly
        | ChangeError::ConfigFileInvalid(_) => 409,
        ChangeError::Invalid(_) => 422,
        ChangeError::NotSaved { .. } => 500,
    }
}

impl From<ChangeError> for ApiReply {
    fn from(e: ChangeError) -> Self {
        ApiReply::error(http_status(&e), e.to_string())
    }
}

/// Answers a call on the control thread.
pub fn serve(plane: &mut ControlPlane, call: ApiCall) -> ApiReply {
    let published = |r: Result<Published, ChangeError>| match r {
        Ok(p) => ApiReply::json(
            200,
            &json!({ "ok": true, "generation": p.generation, "tables_rebuilt": p.tables_rebuilt }),
        ),
        Err(e) => e.into(),
    };
    match call {
        ApiCall::Status => ApiReply::json(200, &report::status(plane)),
        ApiCall::Listeners => ApiReply::json(200, &report::status(plane).listeners),
        ApiCall::Backends => ApiReply::json(200, &report::status(plane).backends),
        ApiCall::Runtime => {
            let s = report::status(plane);
            ApiReply::json(
                200,
                &json!({ "file": s.runtime_file, "changes": s.runtime_changes, "stale": s.stale_changes }),
            )
        }
        ApiCall::Explain(q) => match crate::control::explain::explain(plane, &q) {
            Some(e) => ApiReply::json(200, &e),
            None => ApiReply::error(409, "this gateway has no listeners: it only forwards"),
        },
        ApiCall::Metrics => ApiReply {
            status: 200,
            body: crate::control::metrics::render(&report::status(plane)).into_bytes(),
            content_type: "text/plain; version=0.0.4",
            authenticate: false,
        },
        // Whatever made a reload fail, the file is what needs fixing.
        ApiCall::Reload => match plane.reload() {
            Ok(p) => published(Ok(p)),
            Err(e) => ApiReply::error(422, e.to_string()),
        },
        ApiCall::Change(change) => published(plane.change(&change)),
        ApiCall::StartCapture(spec) => ApiReply::json(200, &plane.capture().start(*spec)),
        ApiCall::StopCapture => ApiReply::json(200, &plane.capture().stop()),
        ApiCall::CaptureStatus => ApiReply::json(200, &plane.capture().status()),
        ApiCall::CaptureFile => capture_file(plane),
        ApiCall::CheckConfig(text) => match crate::control::check::check(plane, &text) {
            Ok(report) => ApiReply::json(200, &report),
            Err(e) => e.into(),
        },
    }
}

/// `GET /v1/capture/pcapng`: what the last capture kept, backends named
/// from the current snapshot.
fn capture_file(plane: &mut ControlPlane) -> ApiReply {
    let snap = plane.snapshot();
    let name = |id: dnlb_lb::ids::BackendId| match snap.as_ref().and_then(|s| {
        let b = s.backend(id)?;
        Some((s.groups.get(b.group as usize)?.name.clone(), b.address))
    }) {
        Some((group, address)) => format!("{} ({group} {address})", id.0),
        None => id.0.to_string(),
    };
    match plane.capture().pcapng(&name) {
        Some(body) => ApiReply {
            status: 200,
            body,
            content_type: "application/x-pcapng",
            authenticate: false,
        },
        None => ApiReply::error(404, "no capture since dnlb started: POST /v1/capture first"),
    }
}
