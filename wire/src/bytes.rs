//! Big-endian field access by byte offset.
//!
//! Indexing panics when the offset is out of range; the views only call these after
//! `new_checked` proved the field lies inside the buffer.

/// Reads the big-endian `u16` at `at..at + 2`.
#[inline]
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Reads the big-endian `u32` at `at..at + 4`.
#[inline]
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Writes `value` big-endian at `at..at + 2`.
#[inline]
pub(crate) fn set_u16(buf: &mut [u8], at: usize, value: u16) {
    let [a, b] = value.to_be_bytes();
    buf[at] = a;
    buf[at + 1] = b;
}

/// Writes `value` big-endian at `at..at + 4`.
#[inline]
pub(crate) fn set_u32(buf: &mut [u8], at: usize, value: u32) {
    let [a, b, c, d] = value.to_be_bytes();
    buf[at] = a;
    buf[at + 1] = b;
    buf[at + 2] = c;
    buf[at + 3] = d;
}

/// Copies the `N` bytes at `at..at + N` into an array.
#[inline]
pub(crate) fn get_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}
