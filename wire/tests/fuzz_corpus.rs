//! The fuzz target's seed corpus (`fuzz/corpus/parse_frame/`) holds the test frames of
//! `common::packets`, one binary file per frame. This test keeps the files and the frames in
//! step; run it with `DNLB_WIRE_WRITE_CORPUS=1` to (re)write the files.

mod common;

use std::path::PathBuf;

use common::exercise::exercise;
use common::packets;

#[test]
fn fuzz_corpus_matches_test_frames() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_frame");
    let write = std::env::var_os("DNLB_WIRE_WRITE_CORPUS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, frame) in packets::all() {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &frame).unwrap();
        }
        let stored = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with DNLB_WIRE_WRITE_CORPUS=1 to write it",
                path.display()
            )
        });
        assert_eq!(
            stored,
            frame,
            "{} is stale; run with DNLB_WIRE_WRITE_CORPUS=1",
            path.display()
        );
        exercise(&stored);
    }
}
