//! Files replaced so that a crash at any moment leaves either the old or
//! the new content, never an empty or torn file: a unique temporary file in
//! the same directory, written and fsynced, renamed over the old one, then
//! the directory fsynced so the rename itself survives a power loss.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where [`replace`] keeps the version it replaced: `PATH.prev`.
pub fn previous_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".prev");
    path.with_file_name(name)
}

/// Replaces `path`'s content with `bytes` durably. With `keep_previous`,
/// the content it had is kept as [`previous_path`] (hard-linked before the
/// rename, so it costs no copy). On any error (a full disk, say) `path` is
/// as it was and no temporary file is left behind.
pub fn replace(path: &Path, bytes: &[u8], keep_previous: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".dnlb-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if keep_previous && path.exists() {
        let prev = previous_path(path);
        // A crash between these two leaves no previous version: it is a
        // convenience, the file itself is never at risk.
        match std::fs::remove_file(&prev) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::hard_link(path, &prev)?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_keeps_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.toml");
        replace(&p, b"one", true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        assert!(
            !previous_path(&p).exists(),
            "nothing to keep the first time"
        );
        replace(&p, b"two", true).unwrap();
        replace(&p, b"three", true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "three");
        assert_eq!(std::fs::read_to_string(previous_path(&p)).unwrap(), "two");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[test]
    fn a_failed_write_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.toml");
        replace(&p, b"one", true).unwrap();
        // A directory in the way of the rename: the write fails late.
        let blocked = dir.path().join("sub");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("f"), "x").unwrap();
        assert!(replace(&blocked, b"two", false).is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        let left = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(left, 0, "no temporary file left after a failure");
    }
}
