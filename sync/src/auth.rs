//! The shared keys and the message tag (HMAC-SHA256).
//!
//! Every gateway of a fleet holds the same key. A key's id is derived from
//! the key itself (the first four bytes of SHA-256 over a label and the
//! key), so gateways agree on ids without configuring them, and a receiver
//! finds the key a message names among the current and the previous one:
//! during a rotation some gateways send with the new key and some with the
//! old, and both are accepted until the old one is dropped.

use std::fmt;
use std::path::Path;

use dnlb_model::{SYNC_KEY_MAX_BYTES, SYNC_KEY_MIN_BYTES};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Bytes of the tag that ends every message.
pub const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Fewer bytes than [`SYNC_KEY_MIN_BYTES`].
    #[error("the key is {0} bytes; it must be at least {SYNC_KEY_MIN_BYTES} random bytes (e.g. head -c 32 /dev/urandom > FILE)")]
    TooShort(usize),
    /// More bytes than [`SYNC_KEY_MAX_BYTES`].
    #[error("the key is {0} bytes; at most {SYNC_KEY_MAX_BYTES} (is it the right file?)")]
    TooLong(u64),
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
}

/// One shared key, ready to tag and verify. Its bytes never appear in
/// `Debug` output.
#[derive(Clone)]
pub struct Key {
    id: u32,
    mac: HmacSha256,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(id {:08x}, <redacted>)", self.id)
    }
}

impl Key {
    /// A key from its bytes (at least [`SYNC_KEY_MIN_BYTES`], at most
    /// [`SYNC_KEY_MAX_BYTES`]).
    pub fn new(secret: &[u8]) -> Result<Key, KeyError> {
        if secret.len() < SYNC_KEY_MIN_BYTES {
            return Err(KeyError::TooShort(secret.len()));
        }
        if secret.len() > SYNC_KEY_MAX_BYTES {
            return Err(KeyError::TooLong(secret.len() as u64));
        }
        let mut h = Sha256::new();
        h.update(b"dnlb-sync key id\0");
        h.update(secret);
        let d = h.finalize();
        let id = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::TooShort(0))?;
        Ok(Key { id, mac })
    }

    /// The key in `path`: the file's bytes, exactly (no trimming).
    pub fn from_file(path: &Path) -> Result<Key, KeyError> {
        let read_err = |error| KeyError::Read {
            path: path.display().to_string(),
            error,
        };
        let len = std::fs::metadata(path).map_err(read_err)?.len();
        if len > SYNC_KEY_MAX_BYTES as u64 {
            return Err(KeyError::TooLong(len));
        }
        Key::new(&std::fs::read(path).map_err(read_err)?)
    }

    /// The key's id, carried in every message it tags.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The tag of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut m = self.mac.clone();
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is `data`'s tag, compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(data);
        m.verify_slice(tag).is_ok()
    }
}

/// The keys in use: messages are sent with `current`; received ones may name
/// `current` or `previous`.
#[derive(Debug, Clone)]
pub struct Keys {
    current: Key,
    previous: Option<Key>,
}

impl Keys {
    /// The current key and, during a rotation, the previous one.
    pub fn new(current: Key, previous: Option<Key>) -> Keys {
        Keys { current, previous }
    }

    /// Reads both keys from their files.
    pub fn from_files(current: &Path, previous: Option<&Path>) -> Result<Keys, KeyError> {
        Ok(Keys {
            current: Key::from_file(current)?,
            previous: previous.map(Key::from_file).transpose()?,
        })
    }

    /// The key messages are sent with.
    pub fn current(&self) -> &Key {
        &self.current
    }

    /// The key with id `id`, if it is one of ours.
    pub fn find(&self, id: u32) -> Option<&Key> {
        if self.current.id == id {
            return Some(&self.current);
        }
        self.previous.as_ref().filter(|k| k.id == id)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn length_bounds() {
        assert!(matches!(Key::new(&[7; 31]), Err(KeyError::TooShort(31))));
        assert!(Key::new(&[7; 32]).is_ok());
        assert!(Key::new(&[7; SYNC_KEY_MAX_BYTES]).is_ok());
        assert!(matches!(
            Key::new(&[7; SYNC_KEY_MAX_BYTES + 1]),
            Err(KeyError::TooLong(_))
        ));
    }

    #[test]
    fn ids_follow_the_key_and_tags_verify() {
        let a = Key::new(&[1; 32]).unwrap();
        let a2 = Key::new(&[1; 32]).unwrap();
        let b = Key::new(&[2; 32]).unwrap();
        assert_eq!(a.id(), a2.id());
        assert_ne!(a.id(), b.id());
        let t = a.tag(b"hello");
        assert!(a2.verify(b"hello", &t));
        assert!(!a.verify(b"hellp", &t));
        assert!(!b.verify(b"hello", &t));
        assert!(!a.verify(b"hello", &t[..31]));
        assert_eq!(
            format!("{a:?}"),
            format!("Key(id {:08x}, <redacted>)", a.id())
        );
    }

    #[test]
    fn keys_find_current_and_previous() {
        let a = Key::new(&[1; 32]).unwrap();
        let b = Key::new(&[2; 32]).unwrap();
        let c = Key::new(&[3; 32]).unwrap();
        let k = Keys::new(b.clone(), Some(a.clone()));
        assert_eq!(k.current().id(), b.id());
        assert!(k.find(a.id()).is_some());
        assert!(k.find(b.id()).is_some());
        assert!(k.find(c.id()).is_none());
    }

    #[test]
    fn key_files_are_read_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&[9; 40])
            .unwrap();
        assert_eq!(
            Key::from_file(&p).unwrap().id(),
            Key::new(&[9; 40]).unwrap().id()
        );
        std::fs::write(&p, b"short\n").unwrap();
        let e = Key::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("the key is 6 bytes"), "{e}");
        let old = dir.path().join("old");
        std::fs::write(&old, [8; 32]).unwrap();
        std::fs::write(&p, [9; 40]).unwrap();
        let k = Keys::from_files(&p, Some(&old)).unwrap();
        assert_eq!(k.current().id(), Key::new(&[9; 40]).unwrap().id());
        assert!(k.find(Key::new(&[8; 32]).unwrap().id()).is_some());
        assert!(Keys::from_files(&p, Some(&dir.path().join("missing"))).is_err());
        let e = Key::from_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read "), "{e}");
    }
}
