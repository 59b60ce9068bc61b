//! `[admin]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::Collector;
use crate::model::{Admin, Token};
use crate::raw::RawAdmin;

/// Where the API listens when `listen` is not given.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9100";
/// Connections the API serves at once when `max_connections` is not given.
pub const DEFAULT_ADMIN_CONNECTIONS: u32 = 64;
/// The most connections `max_connections` may allow.
pub const MAX_ADMIN_CONNECTIONS: u32 = 4096;

/// The token file used when `token_file` is not given: `NAME.admin-token`
/// beside the config file `NAME.toml`.
pub fn default_token_file(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or_else(|| "dnlb".into(), |s| s.to_string_lossy().into_owned());
    config.with_file_name(format!("{stem}.admin-token"))
}

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
    let dir = c.file().parent().unwrap_or(Path::new(".")).to_path_buf();
    let (token_file, token) = match &a.token_file {
        // A file the operator named must be there.
        Some(f) => {
            let path = dir.join(f.get_ref());
            let token = read_token(&path).unwrap_or_else(|e| {
                c.push(Some(f.span()), "admin.token_file", e);
                None
            });
            (path, token)
        }
        // The default one is created at first start; one this user cannot
        // read (a status query as another user, say) leaves writes to
        // whoever can: `dnlb run` reports it when it needs the token.
        None => {
            let path = default_token_file(c.file());
            (path.clone(), read_token(&path).ok().flatten())
        }
    };
    let max_connections = match &a.max_connections {
        None => DEFAULT_ADMIN_CONNECTIONS,
        Some(m) if (1..=MAX_ADMIN_CONNECTIONS).contains(m.get_ref()) => *m.get_ref(),
        Some(m) => {
            c.push(
                Some(m.span()),
                "admin.max_connections",
                format!("give 1 to {MAX_ADMIN_CONNECTIONS}"),
            );
            DEFAULT_ADMIN_CONNECTIONS
        }
    };
    Admin {
        listen,
        token_file,
        token,
        socket: a.socket.as_ref().map(|s| dir.join(s.get_ref())),
        max_connections,
    }
}

/// The token in `path` (surrounding whitespace ignored), or why it cannot
/// be used.
fn read_token(path: &Path) -> Result<Option<Token>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(Token(t.trim().to_string()))),
        Ok(_) => Err(format!("{} is empty", path.display())),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
