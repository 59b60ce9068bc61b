//! Large per-worker tables on transparent huge pages.
//!
//! A flow table of a million flows spans 32 MiB: on 4 KiB pages each lookup
//! is also a TLB miss (8192 pages, far more than the TLB holds), on 2 MiB
//! pages the whole table takes 16 TLB entries. The kernel backs a region
//! with huge pages only if asked before the region is touched
//! (`madvise(MADV_HUGEPAGE)`, honoured when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `always` or `madvise`,
//! the usual default), so the memory is allocated 2 MiB-aligned, advised,
//! and only then filled. Where the kernel says no, the table works the same
//! on small pages. This is done once, when a worker's state is built on the
//! slow path; nothing here runs per packet.
//!
//! The second `unsafe` module outside `dpdk-bindings` (with
//! [`crate::prefetch`]): an allocation with an alignment of our choosing
//! cannot be a `Box`, which must be freed with its type's own layout.
#![allow(unsafe_code)]

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Huge page size on x86_64 (and the alignment tables of at least this
/// size get).
const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length array of `T` on memory advised for huge pages when it is
/// at least [`HUGE_PAGE`] long; a plain heap array otherwise.
pub struct HugeArray<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// `len - 1`: the index mask of [`HugeArray::masked`].
    mask: usize,
    layout: Layout,
}

// SAFETY: HugeArray owns its elements like a Box<[T]> does.
unsafe impl<T: Copy + Send> Send for HugeArray<T> {}
// SAFETY: shared access only hands out &[T], as Box<[T]> does.
unsafe impl<T: Copy + Sync> Sync for HugeArray<T> {}

impl<T: Copy> HugeArray<T> {
    /// `len` copies of `value` (`len` > 0).
    ///
    /// # Panics
    /// If the size overflows `isize`; aborts like `Vec` if memory runs out.
    pub fn filled(len: usize, value: T) -> Self {
        assert!(
            len > 0 && size_of::<T>() > 0,
            "a non-empty array of sized values"
        );
        let array = Layout::array::<T>(len).expect("table too large");
        let layout = if array.size() >= HUGE_PAGE {
            array.align_to(HUGE_PAGE).expect("table too large")
        } else {
            array
        };
        // SAFETY: the layout has a non-zero size (asserted above).
        let raw = unsafe { alloc(layout) }.cast::<T>();
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        if layout.size() >= HUGE_PAGE {
            advise_huge(raw.cast(), layout.size());
        }
        for i in 0..len {
            // SAFETY: `i < len` elements fit in the allocation; writing does
            // not read or drop the uninitialised contents.
            unsafe { raw.add(i).write(value) };
        }
        HugeArray {
            ptr,
            len,
            mask: len - 1,
            layout,
        }
    }
}

impl<T: Copy> HugeArray<T> {
    /// Element `i & (len - 1)`: element `i` of an index already masked to a
    /// power-of-two length, without a bounds check (any `i` stays within
    /// the array: `i & (len - 1) <= len - 1`).
    #[inline(always)]
    pub fn masked(&self, i: usize) -> &T {
        // SAFETY: `len > 0` (asserted in `filled`), so `mask = len - 1` did
        // not wrap and `i & mask < len`: an initialised element we own.
        unsafe { &*self.ptr.as_ptr().add(i & self.mask) }
    }

    /// `len - 1`, the mask [`HugeArray::masked`] applies: of a power-of-two
    /// length, the mask of every index.
    #[inline(always)]
    pub fn mask(&self) -> usize {
        self.mask
    }

    /// [`HugeArray::masked`], mutable.
    #[inline(always)]
    pub fn masked_mut(&mut self, i: usize) -> &mut T {
        // SAFETY: as in `masked`; `&mut self` is exclusive.
        unsafe { &mut *self.ptr.as_ptr().add(i & self.mask) }
    }
}

/// Asks the kernel to back `[p, p + size)` with transparent huge pages (a
/// hint: an error only means small pages).
#[cfg(target_os = "linux")]
fn advise_huge(p: *mut u8, size: usize) {
    // SAFETY: madvise with MADV_HUGEPAGE changes no contents and no
    // mapping, only how the range is backed; the range is our allocation.
    let _ = unsafe { libc::madvise(p.cast(), size, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_p: *mut u8, _size: usize) {}

impl<T: Copy> Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements at `ptr`, owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeArray<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `filled` with exactly this layout; `T: Copy`
        // needs no drop of its elements.
        unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

impl<T: Copy> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeArray").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_access_stays_within_the_array_for_any_index() {
        for len in [1usize, 2, 8, 1000] {
            let mut a = HugeArray::filled(len, 0usize);
            for (i, v) in a.iter_mut().enumerate() {
                *v = i;
            }
            for i in [0, 1, 7, 8, 999, 1024, usize::MAX] {
                // A power-of-two length: element i mod len; any length:
                // some element (i & (len - 1) never exceeds len - 1).
                let want = i & (len - 1);
                assert_eq!(*a.masked(i), want, "len {len} index {i}");
                *a.masked_mut(i) = want;
            }
        }
    }

    #[test]
    fn small_and_large_arrays_hold_what_is_written() {
        for len in [1usize, 1000, (4 << 20) / 8] {
            let mut a = HugeArray::filled(len, 7u64);
            assert_eq!(a.len(), len);
            assert!(a.iter().all(|&v| v == 7));
            a[len - 1] = 9;
            assert_eq!(a[len - 1], 9);
            if len * 8 >= HUGE_PAGE {
                assert_eq!(a.as_ptr() as usize % HUGE_PAGE, 0, "aligned for huge pages");
            }
        }
    }

    /// The kHugePages backing the mapping that holds `addr`, from
    /// /proc/self/smaps.
    fn anon_huge_kb(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = (a..b).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("AnonHugePages:") {
                    return v.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }

    #[test]
    fn a_large_table_is_on_huge_pages_where_the_kernel_allows_them() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let a = HugeArray::filled((32 << 20) / 8, 0u64);
        let huge = anon_huge_kb(a.as_ptr() as usize);
        if thp.contains("[always]") || thp.contains("[madvise]") {
            // The kernel may lack free huge pages; most of 32 MiB should be.
            assert!(
                huge.unwrap_or(0) >= 16 << 10,
                "{huge:?} kB on huge pages ({thp})"
            );
        }
    }
}
