//! Every fuzz corpus (`fuzz/corpus/<target>/`) replayed through the fuzz targets' own code
//! (`fuzz/harness.rs`), without libFuzzer: the seeds from these tests, what the fuzzer kept
//! as interesting, and any input that once crashed a target (add it to the corpus with the
//! fix) are checked by every run of the suite. Each harness function panics on a broken
//! invariant.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/harness.rs"]
mod harness;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: an empty corpus", dir.display());
    files
}

/// Runs every input of a corpus on a thread with a large stack: an unoptimised test build
/// takes several times the stack of the release build the fuzzer ran (regex-syntax recurses
/// once per nested repetition, up to its nest limit, and the corpus holds such `re:` rules),
/// and a test thread has 2 MiB where the program's main thread has 8.
#[track_caller]
fn replay(target: &'static str) {
    let (_, run) =
        *harness::TARGETS.iter().find(|(name, _)| *name == target).expect("a fuzz target");
    let files = corpus(target);
    let worker = std::thread::Builder::new().stack_size(64 << 20).spawn(move || {
        for path in files {
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                return Err(path);
            }
        }
        Ok(())
    });
    if let Err(path) = worker.unwrap().join().unwrap() {
        panic!("fuzz target {target} fails on {}", path.display());
    }
}

#[test]
fn every_target_has_a_corpus_and_a_test() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "cookie_header",
            "arguments",
            "serve",
            "config",
            "handler",
            "remote_user",
            "spool_record",
            "receiver_call",
            "fastcgi_records",
            "hub_body"
        ]
    );
}

#[test]
fn fuzz_corpus_cookie_header() {
    replay("cookie_header");
}

#[test]
fn fuzz_corpus_arguments() {
    replay("arguments");
}

#[test]
fn fuzz_corpus_serve() {
    replay("serve");
}

#[test]
fn fuzz_corpus_config() {
    replay("config");
}

#[test]
fn fuzz_corpus_handler() {
    replay("handler");
}

#[test]
fn fuzz_corpus_remote_user() {
    replay("remote_user");
}

#[test]
fn fuzz_corpus_spool_record() {
    replay("spool_record");
}

#[test]
fn fuzz_corpus_receiver_call() {
    replay("receiver_call");
}

#[test]
fn fuzz_corpus_fastcgi_records() {
    replay("fastcgi_records");
}

#[test]
fn fuzz_corpus_hub_body() {
    replay("hub_body");
}
