//! Malformed requests and configurations (§2, §3, §7): a defined status, in the requested
//! format, nothing expired, details only in the log.

use crate::support::*;

const JAR: &str = "DACS:EX::FEDROOT:bobo=1";

#[test]
fn malformed_requests_are_400() {
    let cases: Vec<(&str, Cgi)> = vec![
        ("duplicate", Cgi::get("DACS_USERNAME=a&DACS_USERNAME=b")),
        ("bad utf-8 argument", Cgi::get("DACS_USERNAME=%ff")),
        ("control in argument", Cgi::get("DACS_USERNAME=a%0d%0ab")),
        ("control in query", Cgi::get("a=1\u{1}")),
        ("non-utf-8 query", Cgi::get("").env_bytes("QUERY_STRING", b"a=\xff")),
        ("no method", Cgi::get("").unset("REQUEST_METHOD")),
        ("short body", Cgi::post("", "FORMAT=JSON").env("CONTENT_LENGTH", "500")),
        ("length not a number", Cgi::post("", "FORMAT=JSON").env("CONTENT_LENGTH", "12abc")),
        ("negative length", Cgi::post("", "").env("CONTENT_LENGTH", "-5")),
        ("huge cookie", Cgi::get("").env("HTTP_COOKIE", &"a=b; ".repeat(14_000))),
    ];
    for (what, cgi) in cases {
        let out = cgi.example("").cookie_if_unset(JAR).run();
        assert_eq!(out.status, 400, "{what}: {}", out.body);
        out.common_headers();
        assert!(out.set_cookies().is_empty(), "{what}");
    }
}

#[test]
fn oversized_body_is_413_without_reading_it() {
    let body = "a=".to_owned() + &"b".repeat(70_000);
    let out = Cgi::post("FORMAT=JSON", &body).example("").run();
    out.status(413).common_headers();
    let out =
        Cgi::post("", "").env("CONTENT_LENGTH", "99999999999999999999999999").example("").run();
    out.status(413).common_headers();
}

#[test]
fn other_methods_are_405_with_allow() {
    for method in ["PUT", "PATCH", "OPTIONS", "get"] {
        let out = Cgi::method(method, "FORMAT=XML").example("").cookie(JAR).run();
        out.status(405).common_headers();
        assert_eq!(out.header("Allow"), Some("GET, HEAD, POST, DELETE"));
    }
}

#[test]
fn missing_or_broken_configuration_is_500_with_details_only_in_the_log() {
    let out = Cgi::get("FORMAT=JSON")
        .env("DACS_SIGNOUT_CONF", "/nonexistent/dacs.conf")
        .cookie(JAR)
        .run();
    out.status(500).common_headers();
    assert!(out.set_cookies().is_empty());
    assert!(!out.body.contains("nonexistent"));
    assert!(out.log.contains("/nonexistent/dacs.conf"), "{}", out.log);

    let out = Cgi::get("")
        .config("<Configuration>\n<Default>\nFEDERATION_NAME EX\n</Default>\n</Configuration>")
        .cookie(JAR)
        .run();
    out.status(500).common_headers();
    assert!(out.log.contains("line 3"), "{}", out.log);
    assert!(!out.body.contains("line 3"));

    let out = Cgi::get("").config(&conf("FEDERATION_NAME \"EX\"")).cookie(JAR).run();
    out.status(500).common_headers();
    assert!(out.log.contains("JURISDICTION_NAME is required"), "{}", out.log);

    let dir = TempDir::new("unreadable");
    let out = Cgi::get("").env("DACS_SIGNOUT_CONF", dir.path().to_str().unwrap()).cookie(JAR).run();
    out.status(500).common_headers();
}

/// A multipart (or JSON) POST is not read as arguments: without this, its fields were ignored
/// and the signout was a full one, whatever they asked for.
#[test]
fn a_post_that_is_not_a_form_is_415_and_changes_nothing() {
    for content_type in ["multipart/form-data; boundary=x", "application/json", "text/plain"] {
        let out = Cgi::post("FORMAT=JSON", "--x\r\nDACS_USERNAME=amy\r\n--x--")
            .env("CONTENT_TYPE", content_type)
            .example("")
            .cookie(JAR)
            .run();
        out.status(415).common_headers();
        assert!(out.set_cookies().is_empty(), "{content_type}");
        assert!(out.body.contains("\"code\":\"415\""), "{}", out.body);
    }
    // No content type at all: a bodyless POST (a button without fields) still signs out.
    let out = Cgi::post("", "").unset("CONTENT_TYPE").example("").cookie(JAR).run();
    out.status(200).common_headers();
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo"]);
}

/// The answer to a repeated argument names it only when it is one of the program's own:
/// anything else is the sender's text, and is not reflected.
#[test]
fn the_duplicate_argument_error_does_not_reflect_attacker_text() {
    let out = Cgi::get("Your+account+is+locked%3A+call+555=1&Your+account+is+locked%3A+call+555=2")
        .example("")
        .run();
    out.status(400).common_headers();
    assert!(!out.body.contains("locked") && !out.body.contains("555"), "{}", out.body);
    let out = Cgi::get("FORMAT=JSON&FORMAT=XML").example("").run();
    out.status(400);
    assert!(out.body.contains("duplicate argument FORMAT"), "{}", out.body);
}
