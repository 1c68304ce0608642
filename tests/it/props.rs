//! Property tests: the parsers and the whole request path never panic, whatever the input,
//! and what they let through keeps its invariants.

use dacs_signout::Env;
use dacs_signout::credentials::{Filter, NameCompare, Selection};
use dacs_signout::testing::{AllowRule, Arguments, Config, Source, allowed, location};
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

/// A directive and a value of the form it takes (`Ok`), or of any form (`Err`).
fn directive_line() -> impl Strategy<Value = Result<String, String>> {
    const FORMS: &[(&str, &str)] = &[
        ("FEDERATION_NAME", "[A-Z][A-Z0-9_-]{0,8}"),
        ("JURISDICTION_NAME", "[A-Z][A-Z0-9_-]{0,8}"),
        ("FEDERATION_DOMAIN", "[a-z]{1,8}\\.(org|example)"),
        ("COOKIE_PATH", "/[a-z/]{0,8}"),
        ("COOKIE_NO_DOMAIN", "(yes|no|on|off)"),
        ("SECURE_MODE", "(on|off|yes|no)"),
        ("NAME_COMPARE", "(case|nocase|default)"),
        ("COOKIE_SYNTAX", "(COOKIE_RFC6265|cookie_netscape|COOKIE_EXT_NETSCAPE|COOKIE_RFC2109)"),
        ("SIGNOUT_HANDLER", "(url /bye|url https://p\\.example/bye|message Bye|file /x\\.html)"),
        (
            "SIGNOUT_HANDLER_ALLOW",
            "(https://p\\.example|/x/|re:https://\\[a-z\\]\\+\\.example/\\.\\*)",
        ),
        ("SIGNOUT_CROSS_SITE", "(navigate|deny|allow)"),
        ("CLEAR_SITE_DATA", "(cookies|cache, cookies|off)"),
        ("IDMS_BASE_API_URL", "https://hub\\.example/api/v1/"),
        ("RELAY_USERNAME_MAP", "\\^\\(\\.\\*\\)@x\\$ => \\$1"),
        ("RELAY_TIMEOUT_SECS", "[1-9][0-9]{0,3}"),
        ("UNKNOWN_THING", "[a-zA-Z0-9 .,:/_\"-]{0,20}"),
    ];
    let valid = proptest::sample::select(FORMS).prop_flat_map(|(name, form)| {
        proptest::string::string_regex(form).unwrap().prop_map(move |v| Ok(quoted(name, &v)))
    });
    let any_form = (
        prop_oneof![
            Just("FEDERATION_NAME"),
            Just("COOKIE_PATH"),
            Just("SIGNOUT_HANDLER_ALLOW"),
            Just("RELAY_USERNAME_MAP"),
            Just("X")
        ],
        "[ -~]{0,20}",
        any::<bool>(),
    )
        .prop_map(|(n, v, q)| Err(if q { quoted(n, &v) } else { format!("{n} {v}") }));
    prop_oneof![9 => valid, 1 => any_form]
}

fn quoted(name: &str, value: &str) -> String {
    format!("{name} \"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
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

    /// Mostly configurations that parse, so that `settings()` and `check()` run: when every
    /// line has a valid form and the required directives lead, the settings must come out.
    #[test]
    fn configurations_of_valid_forms_give_settings(
        lines in proptest::collection::vec(directive_line(), 0..8),
        domain in any::<bool>(),
    ) {
        let all_valid = lines.iter().all(Result::is_ok);
        let body: Vec<String> = lines.into_iter().map(|l| l.unwrap_or_else(|e| e)).collect();
        let lead = if domain { "FEDERATION_DOMAIN \"ex.org\"" } else { "COOKIE_NO_DOMAIN \"yes\"" };
        let text = format!(
            "<Configuration><Default>\nFEDERATION_NAME \"EX\"\nJURISDICTION_NAME \"J\"\n{lead}\n{}\n</Default></Configuration>",
            body.join("\n")
        );
        let parsed = Config::parse(&text, Source::BuiltIn);
        if all_valid {
            let config = parsed.map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            // The lines may set COOKIE_NO_DOMAIN "no" after a lead without a domain.
            let without_domain = body.iter().rev().find(|l| l.starts_with("COOKIE_NO_DOMAIN"))
                .is_some_and(|l| l.contains("\"no\"") || l.contains("\"off\""));
            let has_domain = domain || body.iter().any(|l| l.starts_with("FEDERATION_DOMAIN"));
            if has_domain || !without_domain {
                let settings = config.settings("");
                prop_assert!(settings.is_ok(), "{:?}\n{}", settings.err(), text);
                prop_assert!(config.check().is_empty(), "{:?}\n{}", config.check(), text);
            }
        } else if let Ok(config) = parsed {
            let _ = config.check();
            let _ = config.settings("");
            let _ = config.unknown_directives();
        }
    }

    #[test]
    fn handler_check_lets_through_only_clean_http_urls(candidate in urlish()) {
        let rules: Vec<AllowRule> = ["https://sso.example.org", "/", "re:https://evil\\.example/.*"]
            .iter().map(|r| AllowRule::parse(r).unwrap()).collect();
        if let Ok(url) = allowed(&candidate, &rules, Some("https://portal.example.org")) {
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
        let (bytes, outcome, _) = dacs_signout::testing::serve_env(&env, &mut &body[..]).finish();
        let head = &bytes[..bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap()];
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            prop_assert!(!line.contains(&b'\r'));
            prop_assert!(line.iter().all(|&b| b >= 0x20 || b == b'\t'));
        }
        prop_assert!(!outcome.log_line().trim_end().contains('\n'));
    }
}
