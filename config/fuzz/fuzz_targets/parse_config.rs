//! Any text given as a config file: validation returns a config or errors
//! that name the file, and never panics. An accepted config validates again
//! to the same model (validation is deterministic).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match dnlb_config::parse(Path::new("fuzz.toml"), text) {
        Ok(c) => assert_eq!(dnlb_config::parse(Path::new("fuzz.toml"), text).ok(), Some(c)),
        Err(e) => {
            assert!(!e.errors().is_empty());
            for err in e.errors() {
                assert_eq!(err.file, Path::new("fuzz.toml"));
            }
        }
    }
});
