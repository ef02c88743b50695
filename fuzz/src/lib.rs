//! The entry functions of the fuzz targets (`fuzz_targets/*.rs` call them under libFuzzer)
//! and, on stable, the replay of every committed corpus file through them (`cargo test
//! --manifest-path fuzz/Cargo.toml --lib`, run by `tests/run.sh`). Each function asserts what
//! must hold for any input, so that a violation is a crash the fuzzer reports.

use std::io::Read;

use flag_duration::{Human, parse};
use tar_format::{Reader, name_components};

/// The duration grammar of `--timeout`, `--ttl` and friends (plugin and agent): never panics,
/// and whatever it accepts prints back (`Human`) to text that parses to the same duration.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse(text) {
        let shown = Human(d).to_string();
        assert_eq!(parse(&shown), Ok(d), "{text:?} -> {d:?} -> {shown:?}");
    }
}

/// The tar reader both ends of a copy use (the plugin on `cp` downloads and `snapshot`, the
/// agent on `untar`): never panics, never reads past the input, and the names it lets an
/// extractor walk are relative, without `..`, empty components or NUL bytes.
pub fn tar_reader(data: &[u8]) {
    let mut reader = Reader::new(data);
    // Bounded: a fuzzer's input is small, but each entry costs at least one 512-byte block.
    for _ in 0..1024 {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) | Err(_) => return,
        };
        if let Ok(parts) = name_components(&entry.name) {
            for part in parts {
                assert!(!part.is_empty() && part != b"." && part != b"..");
                assert!(!part.contains(&b'/') && !part.contains(&0));
            }
        }
        let mut sink = Vec::new();
        match reader.data().take(entry.size).read_to_end(&mut sink) {
            Ok(n) => assert!(n as u64 <= entry.size && sink.len() <= data.len()),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod replay {
    use std::path::Path;

    /// Feeds every file of `corpus/NAME/` to `entry`; a panic names the file.
    fn replay(name: &str, entry: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|f| f.ok().map(|f| f.path()))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} holds no seed", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "{} fails", file.display());
        }
    }

    #[test]
    fn duration_corpus() {
        replay("duration", super::duration);
    }

    #[test]
    fn tar_reader_corpus() {
        replay("tar_reader", super::tar_reader);
    }
}
