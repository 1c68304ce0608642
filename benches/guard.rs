//! In-process cost of the guard's decision (SPEC §13, issue #11's speed rows): the realistic
//! jar of 50 cookies (30 credentials of federation EXAMPLE, 20 other apps' cookies; the jar of
//! `benches/signout.rs`), judged against a warm SQLite registry: every credential already
//! seen (its sighting recorded by a first request, so the requests measured only read), none
//! revoked. `judge` is the decision alone (the fingerprints, one registry read, the verdict);
//! `answer` is what a worker does for one FastCGI authorizer request, the answer's bytes
//! included. `bench/run` puts the medians in BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::OnceLock;

use dacs_signout::Env;
use dacs_signout::guard::{Guard, Judged, Role, Worker};
use dacs_signout::testing::{Config, Source};

mod support;
use support::jar;

const KEY: &str = "a-fingerprint-key-for-the-benchmarks-0123456789";
const CONF: &str = include_str!("../bench/dacs.conf");

fn main() {
    divan::main();
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The registry's directory: this user's, nobody else's (the store refuses any other).
static DIR: OnceLock<PathBuf> = OnceLock::new();

fn guard() -> Guard {
    let dir = DIR.get_or_init(|| {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("dacs-guard-bench-{}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).expect("the registry's directory");
        dir
    });
    let registry = format!("    REGISTRY \"sqlite:{}/registry.db\"\n  </Default>", dir.display());
    let text = CONF.replacen("  </Default>", &registry, 1);
    let config = Config::parse(&text, Source::BuiltIn).expect("bench/dacs.conf parses");
    let settings = config.settings("").expect("the Default section");
    Guard::new(settings, &Env::from_pairs([("DACS_REGISTRY_KEY", KEY)])).expect("a guard")
}

/// A guard, a worker with its registry connection, and a jar whose credentials it has seen.
fn warm(n: usize) -> (Guard, Worker, String) {
    let guard = guard();
    let mut worker = Worker::default();
    let cookie = jar(n);
    // The first request records the sightings; the next ones find them fresh and only read.
    for _ in 0..2 {
        assert_eq!(guard.judge(&mut worker, cookie.as_bytes()), Judged::Pass);
    }
    (guard, worker, cookie)
}

/// The decision on one request's `Cookie` header.
#[divan::bench(args = [50])]
fn judge(bencher: divan::Bencher, n: usize) {
    let (guard, mut worker, cookie) = warm(n);
    bencher.bench_local(|| guard.judge(&mut worker, black_box(cookie.as_bytes())));
}

/// One authorizer request, as a worker answers it: the decision and the answer's bytes.
#[divan::bench(args = [50])]
fn answer(bencher: divan::Bencher, n: usize) {
    let (guard, mut worker, cookie) = warm(n);
    let env = Env::from_pairs([
        ("HTTP_COOKIE", cookie.as_str()),
        ("REQUEST_URI", "/protected/"),
        ("DACS_GUARD_ROLE", "authorizer"),
    ]);
    assert!(guard.answer(&mut worker, Role::Authorizer, &env).starts_with(b"Status: 200 OK\r\n"));
    bencher.bench_local(|| guard.answer(&mut worker, Role::Authorizer, black_box(&env)));
}
