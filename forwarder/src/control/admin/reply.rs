//! What the admin API answers: a status, a body and its type.

use serde_json::json;

/// The control thread's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// Content type.
    pub content_type: &'static str,
    /// Ask for the bearer token (`WWW-Authenticate`, with 401).
    pub authenticate: bool,
}

impl ApiReply {
    pub(super) fn json(status: u16, v: &impl serde::Serialize) -> Self {
        ApiReply {
            status,
            body: serde_json::to_string_pretty(v)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
                .into_bytes(),
            content_type: "application/json",
            authenticate: false,
        }
    }

    /// The body as text (lossy), for tests and logs.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// A JSON error reply.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &json!({ "error": message.into() }))
    }
}
