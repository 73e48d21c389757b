//! Replays the fuzzing corpus kept in `fuzz/corpus/` (inputs found by `cargo fuzz`, and the
//! seeds they grew from) through the fuzz targets' code, on the stable toolchain, so that
//! every input that once crashed or reached new code stays covered by `cargo test`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory exists") {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

#[test]
fn user_page_corpus() {
    replay("user_page", _core::fuzzing::user_page);
}

#[test]
fn timestamp_corpus() {
    replay("timestamp", _core::fuzzing::timestamp);
}
