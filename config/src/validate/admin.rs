//! `[admin]`.

use std::net::SocketAddr;

use crate::error::Collector;
use crate::model::{Admin, Token};
use crate::raw::RawAdmin;

/// Where the API listens when `listen` is not given.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9100";

pub(super) fn admin(c: &mut Collector<'_>, a: &RawAdmin) -> Admin {
    let listen = match &a.listen {
        None => DEFAULT_ADMIN_LISTEN.parse().expect("valid default"),
        Some(l) => l.get_ref().parse::<SocketAddr>().unwrap_or_else(|_| {
            c.push(
                Some(l.span()),
                "admin.listen",
                format!(
                    "{:?} is not an address and port, e.g. \"127.0.0.1:9100\" or \"[::1]:9100\"",
                    l.get_ref()
                ),
            );
            DEFAULT_ADMIN_LISTEN.parse().expect("valid default")
        }),
    };
    let token = a.token_file.as_ref().and_then(|f| {
        let path = c
            .file()
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(f.get_ref());
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => Some(Token(t.trim().to_string())),
            Ok(_) => {
                c.push(
                    Some(f.span()),
                    "admin.token_file",
                    format!("{} is empty", path.display()),
                );
                None
            }
            Err(e) => {
                c.push(
                    Some(f.span()),
                    "admin.token_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    });
    if a.token_file.is_none() && !listen.ip().is_loopback() {
        c.push(
            a.listen.as_ref().map(|l| l.span()),
            "admin.listen",
            format!(
                "{} is not a loopback address: set admin.token_file so requests need a bearer token",
                listen.ip()
            ),
        );
    }
    Admin { listen, token }
}
