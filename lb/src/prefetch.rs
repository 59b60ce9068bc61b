//! A cache prefetch hint: the one `unsafe` call outside `dpdk-bindings`.
//!
//! Looking up a flow in a table of a million flows misses the cache; issuing
//! the loads for a whole burst before using any of them overlaps those
//! misses. A plain load would stall the pipeline; the prefetch instruction
//! does not.
#![allow(unsafe_code)]

/// Hints the CPU to bring the cache line holding `r` into L1.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    prefetch_at(r as *const T);
}

/// [`prefetch`] of any address, valid or not (say one past a slice, so
/// that the caller need not check an index it computed): the hint reads
/// nothing.
#[inline(always)]
pub fn prefetch_at<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint with no architectural effect: it never
    // faults (on any address, mapped or not), reads nothing into registers
    // and writes nothing; SSE (which provides it) is part of the x86_64
    // baseline. `_mm_prefetch` takes the pointer as a value and does not
    // dereference it.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
