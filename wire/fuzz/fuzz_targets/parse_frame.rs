//! Runs every dnlb-wire view, accessor, setter and writer on the input, asserting the
//! invariants the crate promises (no panic after `new_checked`, incremental checksum updates
//! keep a checksum's validity, writers round-trip). The work is done by the same
//! `exercise` function the proptest suite uses.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    exercise::exercise(data);
});
