//! In-process cost of a signout: the Cookie header selection alone, and the whole request
//! (`serve_env`: arguments, configuration file, selection, decision, rendering, response bytes),
//! for 10, 100 and 1,000 cookies. `cargo bench` runs it; `bench/run` puts its medians in the
//! table of BENCHMARKS.md. The cookie jar is built as `bench/run` builds it (`support::jar`).

use std::hint::black_box;

use dacs_signout::Env;
use dacs_signout::credentials::{Filter, NameCompare, Selection};
use dacs_signout::testing::serve_env;

mod support;
use support::jar;

fn main() {
    divan::main();
}

const SIZES: [usize; 3] = [10, 100, 1000];
const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/dacs.conf");
const HTML_QUERY: &str =
    "DACS_USERNAME=alice&DACS_SIGNOUT_HANDLER=https%3A%2F%2Fportal.example.org%2Fbye";
const JSON_QUERY: &str = "DACS_USERNAME=alice&FORMAT=JSON";

fn env(query: &str, cookie: &str) -> Env {
    Env::from_pairs([
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REQUEST_METHOD", "GET"),
        ("QUERY_STRING", query),
        ("SERVER_NAME", "portal.example.org"),
        ("SERVER_PORT", "443"),
        ("HTTPS", "on"),
        ("SCRIPT_NAME", "/cgi-bin/dacs/dacs_signout"),
        ("REMOTE_ADDR", "192.0.2.7"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
        ),
        ("DACS_SIGNOUT_CONF", CONF),
        ("HTTP_COOKIE", cookie),
    ])
}

fn request(query: &str, n: usize) -> Vec<u8> {
    let env = env(query, &jar(n));
    serve_env(black_box(&env), &mut &b""[..]).finish().0
}

/// `Selection::select` alone: the Cookie header split, parsed and sorted.
#[divan::bench(args = SIZES)]
fn select(bencher: divan::Bencher, n: usize) {
    let header = jar(n);
    let filter = Filter { username: Some("alice".into()), jurisdiction: None };
    bencher.bench(|| {
        Selection::select(black_box(header.as_bytes()), "EXAMPLE", &filter, NameCompare::Case)
            .removed
            .len()
    });
}

/// The whole request in process, HTML answer with a redirect: `serve` + the response bytes.
#[divan::bench(args = SIZES)]
fn serve_html(bencher: divan::Bencher, n: usize) {
    let env = env(HTML_QUERY, &jar(n));
    assert!(request(HTML_QUERY, n).starts_with(b"Status: 302 Found\r\n"));
    bencher.bench(|| serve_env(black_box(&env), &mut &b""[..]).finish().0);
}

/// The same with the JSON answer.
#[divan::bench(args = SIZES)]
fn serve_json(bencher: divan::Bencher, n: usize) {
    let env = env(JSON_QUERY, &jar(n));
    assert!(request(JSON_QUERY, n).starts_with(b"Status: 200 OK\r\n"));
    bencher.bench(|| serve_env(black_box(&env), &mut &b""[..]).finish().0);
}
