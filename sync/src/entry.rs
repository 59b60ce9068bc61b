//! One flow exception, as carried between gateways: 32 bytes, big-endian.

/// The closing flag: the gateway saw the client's FIN or RST.
pub const FLAG_CLOSING: u8 = 1 << 0;
/// The pinned flag: a handshake pinned to a backend (no established flow
/// yet).
pub const FLAG_PINNED: u8 = 1 << 1;
/// Every flag this version of the format knows; others are malformed.
pub const KNOWN_FLAGS: u8 = FLAG_CLOSING | FLAG_PINNED;

/// Bytes of one entry on the wire.
pub const ENTRY_LEN: usize = 32;

/// A flow whose backend differs from what the current table picks. Every
/// field is opaque to this crate: the data path gives them meaning.
///
/// On the wire (big-endian): `listener` (8), `flow` (8), `backend` (8),
/// `remaining_ms` (4), `flags` (1), 3 reserved bytes that must be 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowException {
    /// Stable key of the listener.
    pub listener: u64,
    /// The listener scheduler's hash of the flow (the same on every
    /// gateway).
    pub flow: u64,
    /// Stable key of the backend.
    pub backend: u64,
    /// How long the flow lives without packets, in milliseconds.
    pub remaining_ms: u32,
    /// [`FLAG_CLOSING`], [`FLAG_PINNED`].
    pub flags: u8,
}

/// What an entry is stored under: one entry per (listener, flow).
pub type FlowKey = (u64, u64);

impl FlowException {
    /// The key entries are stored and replaced under.
    pub fn key(&self) -> FlowKey {
        (self.listener, self.flow)
    }

    /// Writes the entry's 32 bytes.
    pub fn write(&self, out: &mut [u8; ENTRY_LEN]) {
        out[0..8].copy_from_slice(&self.listener.to_be_bytes());
        out[8..16].copy_from_slice(&self.flow.to_be_bytes());
        out[16..24].copy_from_slice(&self.backend.to_be_bytes());
        out[24..28].copy_from_slice(&self.remaining_ms.to_be_bytes());
        out[28] = self.flags;
        out[29..32].fill(0);
    }

    /// Reads an entry; `None` when a reserved byte or an unknown flag is set.
    pub fn read(b: &[u8; ENTRY_LEN]) -> Option<FlowException> {
        if b[29..32] != [0, 0, 0] || b[28] & !KNOWN_FLAGS != 0 {
            return None;
        }
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(x)
        };
        let mut r = [0u8; 4];
        r.copy_from_slice(&b[24..28]);
        Some(FlowException {
            listener: u64_at(0),
            flow: u64_at(8),
            backend: u64_at(16),
            remaining_ms: u32::from_be_bytes(r),
            flags: b[28],
        })
    }

    /// Whether the client closed the flow.
    pub fn closing(&self) -> bool {
        self.flags & FLAG_CLOSING != 0
    }

    /// Whether the entry pins a handshake.
    pub fn pinned(&self) -> bool {
        self.flags & FLAG_PINNED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_pinned() {
        let e = FlowException {
            listener: 0x0102030405060708,
            flow: 0x1112131415161718,
            backend: 0x2122232425262728,
            remaining_ms: 0x31323334,
            flags: FLAG_CLOSING | FLAG_PINNED,
        };
        let mut b = [0u8; ENTRY_LEN];
        e.write(&mut b);
        assert_eq!(
            b,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x21, 0x22,
                0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x31, 0x32, 0x33, 0x34, 3, 0, 0, 0
            ]
        );
        assert_eq!(FlowException::read(&b), Some(e));
        assert!(e.closing() && e.pinned());
    }

    #[test]
    fn reserved_bytes_and_unknown_flags_are_refused() {
        let mut b = [0u8; ENTRY_LEN];
        FlowException::default().write(&mut b);
        for i in 29..32 {
            let mut m = b;
            m[i] = 1;
            assert_eq!(FlowException::read(&m), None, "reserved byte {i}");
        }
        for bit in 2..8 {
            let mut m = b;
            m[28] = 1 << bit;
            assert_eq!(FlowException::read(&m), None, "flag bit {bit}");
        }
    }
}
