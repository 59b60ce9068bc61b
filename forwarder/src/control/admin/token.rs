//! The admin token file: read, or created with a random token (mode 0600)
//! the first time a gateway starts, so writes are never open to whoever can
//! reach the port. `dnlb status` and other clients read the same file.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use dnlb_config::{Admin, Token};

/// Random bytes in a new token (64 hex digits).
const TOKEN_BYTES: usize = 32;

/// The token `admin` names: the one read with the config, or a new one
/// written to `admin.token_file` if that file does not exist yet.
pub fn ensure(admin: &Admin) -> std::io::Result<Token> {
    let token = match &admin.token {
        Some(t) => t.clone(),
        None => create(&admin.token_file)?,
    };
    warn_if_readable(&admin.token_file);
    Ok(token)
}

/// Writes a new random token to `path` (which must not exist) with mode
/// 0600; if another process made it first, reads theirs.
fn create(path: &Path) -> std::io::Result<Token> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match opened {
        Ok(mut f) => {
            f.write_all(format!("{text}\n").as_bytes())?;
            f.sync_all()?;
            tracing::info!(file = %path.display(), "admin token created");
            Ok(Token(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let t = std::fs::read_to_string(path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot read the admin token file {}: {e}", path.display()),
                )
            })?;
            let t = t.trim();
            if t.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} is empty",
                    path.display()
                )));
            }
            Ok(Token(t.to_string()))
        }
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot create the admin token file {}: {e}", path.display()),
        )),
    }
}

/// Whether users other than the owner may read or write `path`.
pub fn others_may_read(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Warns when the token file is open to others.
pub fn warn_if_readable(path: &Path) {
    if others_may_read(path) {
        tracing::warn!(
            file = %path.display(),
            "the admin token file can be read by other users: chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_token_file_is_created_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.admin-token");
        let admin = Admin {
            listen: "127.0.0.1:0".parse().unwrap(),
            token_file: path.clone(),
            token: None,
            socket: None,
            max_connections: 8,
        };
        let t = ensure(&admin).unwrap();
        assert_eq!(t.0.len(), 2 * TOKEN_BYTES);
        assert!(t.0.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!others_may_read(&path));
        // A second start (the file now exists) reads the same token.
        assert_eq!(create(&path).unwrap(), t);
        let again = dnlb_config::parse(
            &dir.path().join("gw.toml"),
            "[gateway]\nname = \"g\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n[admin]\n",
        )
        .unwrap();
        assert_eq!(again.admin.unwrap().token, Some(t));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(others_may_read(&path));
    }
}
