//! Property tests: the parsers and the whole request path never panic, whatever the input,
//! and what they let through keeps its invariants.

use dacs_signout::cgi::Env;
use dacs_signout::cgi::args::Arguments;
use dacs_signout::config::{Config, Source};
use dacs_signout::credentials::{Filter, NameCompare, Selection};
use dacs_signout::policy::handler::{AllowRule, allowed, location};
use proptest::prelude::*;

/// Bytes that look like a Cookie header: DACS-ish names, separators, junk.
fn cookieish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"DACS:".to_vec()),
        Just(b"EX".to_vec()),
        Just(b"::".to_vec()),
        Just(b":".to_vec()),
        Just(b"=".to_vec()),
        Just(b"; ".to_vec()),
        Just(b";".to_vec()),
        Just(b"\"".to_vec()),
        Just(b":::SELECTED".to_vec()),
        "[a-zA-Z0-9@.+_-]{0,6}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn urlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("https://".to_owned()),
        Just("http:".to_owned()),
        Just("//".to_owned()),
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("@".to_owned()),
        Just("%2f".to_owned()),
        Just("%0d%0a".to_owned()),
        Just("..".to_owned()),
        Just("sso.example.org".to_owned()),
        Just("evil.example".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just(":".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn directive_line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("FEDERATION_NAME"),
        Just("JURISDICTION_NAME"),
        Just("FEDERATION_DOMAIN"),
        Just("COOKIE_PATH"),
        Just("COOKIE_NO_DOMAIN"),
        Just("SECURE_MODE"),
        Just("NAME_COMPARE"),
        Just("COOKIE_SYNTAX"),
        Just("SIGNOUT_HANDLER"),
        Just("SIGNOUT_HANDLER_ALLOW"),
        Just("SIGNOUT_CROSS_SITE"),
        Just("CLEAR_SITE_DATA"),
        Just("IDMS_BASE_API_URL"),
        Just("RELAY_USERNAME_MAP"),
        Just("RELAY_TIMEOUT_SECS"),
        Just("UNKNOWN_THING"),
    ];
    (name, "[ -~]{0,20}", any::<bool>()).prop_map(|(n, v, quoted)| {
        if quoted {
            format!("{n} \"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            format!("{n} {v}")
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn cookie_header_selection_never_panics_and_keeps_names_verbatim(header in cookieish(), nocase in any::<bool>()) {
        let compare = if nocase { NameCompare::NoCase } else { NameCompare::Case };
        let s = Selection::select(&header, "EX", &Filter::default(), compare);
        for name in s.expired_names() {
            prop_assert!(name.starts_with("DACS:") || name.to_ascii_uppercase().starts_with("DACS:"));
            prop_assert!(header.windows(name.len()).any(|w| w == name.as_bytes()));
            prop_assert!(!name.contains(['\r', '\n', ';', '=']));
        }
    }

    #[test]
    fn argument_parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Arguments::parse(&input);
    }

    #[test]
    fn config_parser_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        if let Ok(config) = Config::parse(&text, Source::BuiltIn) {
            let _ = config.check();
            let _ = config.settings("example.org/cgi-bin/x");
        }
    }

    #[test]
    fn config_parser_never_panics_on_directive_soup(lines in proptest::collection::vec(directive_line(), 0..20)) {
        let text = format!("<Configuration><Default>\n{}\n</Default></Configuration>", lines.join("\n"));
        if let Ok(config) = Config::parse(&text, Source::BuiltIn) {
            let _ = config.check();
            let _ = config.settings("");
            let _ = config.unknown_directives();
        }
    }

    #[test]
    fn handler_check_lets_through_only_clean_http_urls(candidate in urlish()) {
        let rules: Vec<AllowRule> = ["https://sso.example.org", "/", "re:https://evil\\.example/.*"]
            .iter().map(|r| AllowRule::parse(r).unwrap()).collect();
        if let Ok(Ok(url)) = allowed(&candidate, &rules, Some("https://portal.example.org")) {
            prop_assert!(matches!(url.scheme(), "http" | "https"));
            prop_assert!(url.username().is_empty() && url.password().is_none());
            // The point of it all: only the allowed origins (evil.example only through its
            // explicit re: rule).
            let origin = url.origin().ascii_serialization();
            let allowed_origins = ["https://sso.example.org", "https://portal.example.org", "https://evil.example"];
            prop_assert!(allowed_origins.contains(&origin.as_str()), "{} -> {}", candidate, url);
            let target = location(url, "EX", "J");
            prop_assert!(!target.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\'));
        }
    }

    #[test]
    fn whole_request_never_panics_and_never_writes_a_bad_header(
        method in prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("PUT"), Just("")],
        query in proptest::collection::vec(any::<u8>(), 0..80),
        cookie in cookieish(),
        length in prop_oneof![Just(String::new()), "[0-9]{1,6}", "[ -~]{0,8}"],
        body in proptest::collection::vec(any::<u8>(), 0..80),
        site in prop_oneof![Just("cross-site"), Just("same-origin"), Just("")],
        mode in prop_oneof![Just("navigate"), Just("no-cors"), Just("")],
    ) {
        use std::os::unix::ffi::OsStringExt;
        let os = |s: &[u8]| std::ffi::OsString::from_vec(s.to_vec());
        let env = Env::from_os([
            (os(b"GATEWAY_INTERFACE"), os(b"CGI/1.1")),
            (os(b"REQUEST_METHOD"), os(method.as_bytes())),
            (os(b"QUERY_STRING"), os(&query)),
            (os(b"HTTP_COOKIE"), os(&cookie)),
            (os(b"CONTENT_TYPE"), os(b"application/x-www-form-urlencoded")),
            (os(b"CONTENT_LENGTH"), os(length.as_bytes())),
            (os(b"HTTP_SEC_FETCH_SITE"), os(site.as_bytes())),
            (os(b"HTTP_SEC_FETCH_MODE"), os(mode.as_bytes())),
            (os(b"SERVER_NAME"), os(b"portal.example.org")),
        ]);
        let (mut served, format) = dacs_signout::serve(&env, &mut &body[..]);
        let bytes = served.bytes(format);
        let head = &bytes[..bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap()];
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            prop_assert!(!line.contains(&b'\r'));
            prop_assert!(line.iter().all(|&b| b >= 0x20 || b == b'\t'));
        }
        prop_assert!(!served.log.render().trim_end().contains('\n'));
    }
}
