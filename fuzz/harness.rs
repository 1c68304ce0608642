//! What each fuzz target does with its input, as plain functions: the libFuzzer targets in
//! `fuzz_targets/` call them, and so does the test suite (`tests/it/fuzz_corpus.rs`), which
//! replays every file of `fuzz/corpus/<target>/` without libFuzzer so that a regression found
//! once stays found. Each function panics when an invariant breaks; it never returns an error.
//!
//! Only `dacs_signout` and std are used, so the test suite can include this file as is.

#![allow(dead_code)] // each includer uses its own subset

use std::path::Path;
use std::sync::OnceLock;

use dacs_signout::Env;
use dacs_signout::credentials::{Filter, Identity, NameCompare, Selection};
use dacs_signout::testing::{
    AllowRule, Arguments, Config, Conversation, Delivery, Payload, Record, Revocation, Signal,
    Source, Step, allowed, hub_body, identities, location, read_record, receiver_read,
};

/// A fuzz target: it panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name of their directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("cookie_header", cookie_header),
    ("arguments", arguments),
    ("serve", serve),
    ("config", config),
    ("handler", handler),
    ("remote_user", remote_user),
    ("spool_record", spool_record),
    ("receiver_call", receiver_call),
    ("fastcgi_records", fastcgi_records),
    ("hub_body", hub_body_target),
];

/// `Selection::select` on an arbitrary `Cookie` header. The first byte picks the name
/// comparison and the filter; the rest is the header.
pub fn cookie_header(data: &[u8]) {
    let Some((&mode, header)) = data.split_first() else { return };
    let compare = if mode & 1 == 0 { NameCompare::Case } else { NameCompare::NoCase };
    let filter = Filter {
        username: (mode & 2 != 0).then(|| "bob".to_owned()),
        jurisdiction: (mode & 4 != 0).then(|| "FEDROOT".to_owned()),
    };
    let selection = Selection::select(header, "EX", &filter, compare);
    let mut expired = Vec::new();
    for name in selection.expired_names() {
        // A name is written back byte for byte: it must be in the header as sent, and it
        // must not be able to break the Set-Cookie line.
        assert!(
            header.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name:?} is not in the header"
        );
        assert!(!name.contains(['\r', '\n', ';', '=', ',']), "{name:?}");
        assert!(name.get(..5).is_some_and(|p| p == "DACS:"), "{name:?}");
        assert!(!expired.contains(&name), "{name:?} expired twice");
        expired.push(name);
    }
    for credential in selection.removed.iter().chain(&selection.remaining) {
        assert!(compare.eq(credential.identity.federation, "EX"));
        assert_eq!(format!("DACS:{}", credential.identity), credential.name);
    }
    if !filter.is_full_signout() {
        assert!(selection.selection_cookie.is_none());
    }
}

/// `Arguments::parse` on an arbitrary query string or form body.
pub fn arguments(data: &[u8]) {
    if let Ok(args) = Arguments::parse(data) {
        for name in ["FORMAT", "DACS_USERNAME", "DACS_SIGNOUT_HANDLER", "COOKIE_SYNTAX"] {
            let _ = args.get(name);
        }
        // Parsing the same input again into the same list repeats every name: a 400, unless
        // there was nothing to repeat.
        let mut twice = args.clone();
        if twice.parse_into(data).is_ok() {
            assert_eq!(twice, args, "a repeated argument was accepted");
        }
    }
}

/// A configuration with every kind of rule (`fuzz/dacs.conf`). The crate that includes this
/// file is either the fuzz crate (`fuzz/`) or the main package (its tests).
fn rich_conf() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let fuzz = if dir.ends_with("fuzz") { dir.to_owned() } else { dir.join("fuzz") };
        fuzz.join("dacs.conf").to_str().expect("a UTF-8 checkout path").to_owned()
    })
}

/// The whole request path, `serve()`, from an environment built of the input. Fields are
/// separated by NUL bytes (environment values cannot hold one), in this order: flags, query
/// string, Cookie header, CONTENT_LENGTH, Sec-Fetch-Site, Sec-Fetch-Mode, and the body (the
/// rest, NULs included). The flags byte picks the method, the configuration and HTTPS.
pub fn serve(data: &[u8]) {
    let mut fields = data.splitn(7, |&b| b == 0);
    let mut next = || fields.next().unwrap_or_default();
    let flags = next().first().copied().unwrap_or(0);
    let (query, cookie, length, site, mode, body) =
        (next(), next(), next(), next(), next(), next());
    let method = ["GET", "POST", "HEAD", "PUT", "get", ""][usize::from(flags % 6)];
    let mut env: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"GATEWAY_INTERFACE".to_vec(), b"CGI/1.1".to_vec()),
        (b"REQUEST_METHOD".to_vec(), method.as_bytes().to_vec()),
        (b"QUERY_STRING".to_vec(), query.to_vec()),
        (b"HTTP_COOKIE".to_vec(), cookie.to_vec()),
        (b"CONTENT_TYPE".to_vec(), b"application/x-www-form-urlencoded".to_vec()),
        (b"CONTENT_LENGTH".to_vec(), length.to_vec()),
        (b"HTTP_SEC_FETCH_SITE".to_vec(), site.to_vec()),
        (b"HTTP_SEC_FETCH_MODE".to_vec(), mode.to_vec()),
        (b"SERVER_NAME".to_vec(), b"portal.example.org".to_vec()),
        (b"SCRIPT_NAME".to_vec(), b"/cgi-bin/dacs/dacs_signout".to_vec()),
        (b"HTTPS".to_vec(), if flags & 0x40 != 0 { b"on".to_vec() } else { b"off".to_vec() }),
    ];
    if flags & 0x80 != 0 {
        env.push((b"DACS_SIGNOUT_CONF".to_vec(), rich_conf().as_bytes().to_vec()));
    }
    let env = {
        use std::os::unix::ffi::OsStringExt;
        Env::from_os(
            env.into_iter()
                .map(|(k, v)| (std::ffi::OsString::from_vec(k), std::ffi::OsString::from_vec(v))),
        )
    };
    let (bytes, outcome, _) = dacs_signout::testing::serve_env(&env, &mut &body[..]).finish();
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a CGI header block");
    let head = &bytes[..end + 2];
    assert!(head.starts_with(b"Status: "));
    for line in head.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r\n").expect("every header line ends in CRLF");
        assert!(
            line.iter().all(|&b| b >= 0x20 && b != 0x7f),
            "control byte in a header line: {line:?}"
        );
    }
    if method == "HEAD" {
        assert_eq!(end + 4, bytes.len(), "HEAD has no body");
    }
    let status: u16 = std::str::from_utf8(&head[8..11]).unwrap().parse().unwrap();
    assert_eq!(outcome.exit_code(), i32::from(status >= 400));
    let log = outcome.log_line();
    assert!(log.ends_with('\n') && !log.trim_end().contains('\n'), "one log line");
}

/// `Config::parse`, then everything a request or `--check-config` does with a configuration.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(text, Source::BuiltIn) else { return };
    let _ = config.check();
    let _ = config.unknown_directives();
    for host_path in ["", "example.org/cgi-bin/dacs/dacs_signout", "dss.example.org/cgi-bin/dacs"] {
        if let Ok(settings) = config.settings(host_path) {
            assert!(
                !settings.rules.federation_name.is_empty()
                    && !settings.rules.jurisdiction_name.is_empty()
            );
            assert!(!settings.rules.cookie.path.contains([';', '\r', '\n']));
        }
    }
}

/// `policy::handler::allowed` and `location`: the first line is the candidate
/// (`DACS_SIGNOUT_HANDLER`), every further line an allow rule; rules that do not parse are
/// skipped, as the configuration would have refused them.
pub fn handler(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let candidate = lines.next().unwrap_or_default();
    let rules: Vec<AllowRule> = lines.filter_map(|l| AllowRule::parse(l).ok()).collect();
    for own_origin in [Some("https://portal.example.org"), None] {
        let Ok(url) = allowed(candidate, &rules, own_origin) else { continue };
        assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        assert!(url.username().is_empty() && url.password().is_none(), "{url}");
        assert!(url.host().is_some(), "{url}");
        let target = location(url, "EX", "FEDROOT");
        assert!(
            !target.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\'),
            "{target:?}"
        );
        assert!(
            target.contains("DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=FEDROOT"),
            "{target}"
        );
    }
}

/// `Identity::is_named_by`, which decides what goes network-wide (§9). The input is
/// `FLAGS REMOTE_USER \n JURISDICTION \n IDENTITY`; the flags byte picks the comparison.
pub fn remote_user(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((flags, rest)) = text.split_at_checked(1) else { return };
    let mut parts = rest.splitn(3, '\n');
    let (remote_user, jurisdiction, identity) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let compare =
        if flags.as_bytes()[0] & 1 == 0 { NameCompare::Case } else { NameCompare::NoCase };
    let Some(id) = Identity::parse(identity) else { return };
    let named = id.is_named_by(remote_user, jurisdiction, compare);
    // Every identity is named by its own full form, whatever the section's jurisdiction.
    assert!(id.is_named_by(&id.to_string(), jurisdiction, NameCompare::Case), "{id}");
    // Case-insensitive comparison accepts whatever the exact one does.
    if id.is_named_by(remote_user, jurisdiction, NameCompare::Case) {
        assert!(id.is_named_by(remote_user, jurisdiction, NameCompare::NoCase));
    }
    // A bare name that matches must be this section's user, with exactly that username.
    if named && !remote_user.contains(':') {
        assert!(compare.eq(id.jurisdiction, jurisdiction), "{remote_user:?} named {id}");
        assert!(compare.eq(id.username, remote_user));
    }
    // Naming is about the user: never an empty REMOTE_USER.
    if remote_user.is_empty() {
        assert!(!named);
    }
}

/// A spool record and a delivery payload read back: what parses re-serialises to itself.
pub fn spool_record(data: &[u8]) {
    if let Some(signal) = Signal::from_json(data) {
        let again = Signal::from_json(signal.to_json().as_bytes());
        assert_eq!(again.as_ref(), Some(&signal));
    }
    if let Some(payload) = Payload::from_json(data) {
        assert_eq!(Payload::from_json(payload.to_json().as_bytes()), Some(payload));
    }
    if let Some(revocation) = Revocation::from_json(data) {
        let again = Revocation::from_json(revocation.to_json().as_bytes());
        assert_eq!(again.as_ref(), Some(&revocation));
    }
}

/// The receiver's reading of a hub's call (§11), then the identities it revokes. The input is
/// `FLAGS QUERY \0 BODY`; the flags byte picks the method and the configuration (with or
/// without `RECEIVER_USERNAME_MAP`, names compared with or without case).
pub fn receiver_call(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut fields = rest.splitn(2, |&b| b == 0);
    let (query, body) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
    let method = ["POST", "GET", "PUT", ""][usize::from(flags % 4)];
    let env = {
        use std::os::unix::ffi::OsStringExt;
        let vars: [(&str, Vec<u8>); 4] = [
            ("REQUEST_METHOD", method.into()),
            ("QUERY_STRING", query.to_vec()),
            ("CONTENT_LENGTH", body.len().to_string().into_bytes()),
            ("CONTENT_TYPE", b"application/json".to_vec()),
        ];
        Env::from_os(vars.into_iter().map(|(k, v)| (k.into(), std::ffi::OsString::from_vec(v))))
    };
    let call = match receiver_read(&env, &mut &body[..]) {
        Ok(call) => call,
        Err(e) => {
            let status = e.status().0;
            assert!((400..500).contains(&status), "{status} for a bad call");
            return;
        }
    };
    let user = &call.username;
    assert!(!user.is_empty() && user.trim() == user, "{user:?}");
    assert!(user.len() <= 256 && !user.contains(char::is_control), "{user:?}");
    let settings = receiver_settings(flags & 4 != 0, flags & 8 != 0);
    if let Ok(keys) = identities(user, settings) {
        assert!(!keys.is_empty());
        for key in keys {
            let federation = key.split("::").next().unwrap_or_default();
            assert!(federation.eq_ignore_ascii_case("EX"), "{key:?} outside the federation");
            assert!(!key.contains(char::is_control), "{key:?}");
        }
    }
}

/// The receiver's configurations: with or without a username map, with or without case.
fn receiver_settings(mapped: bool, nocase: bool) -> &'static dacs_signout::testing::Settings {
    static SETTINGS: OnceLock<Vec<dacs_signout::testing::Settings>> = OnceLock::new();
    let all = SETTINGS.get_or_init(|| {
        let mut all = Vec::new();
        for map in ["", "RECEIVER_USERNAME_MAP \"^([^@]+)@(uni|lib)$ => $2:$1,FEDROOT:$1\""] {
            for compare in ["case", "nocase"] {
                let text = format!(
                    "<Configuration><Default>FEDERATION_NAME \"EX\"\nFEDERATION_DOMAIN \
                     \"example.org\"\nJURISDICTION_NAME \"FEDROOT\"\nNAME_COMPARE \
                     \"{compare}\"\n{map}\n</Default></Configuration>"
                );
                let config = Config::parse(&text, Source::BuiltIn).expect("a valid configuration");
                all.push(config.settings("").expect("usable settings"));
            }
        }
        all
    });
    &all[usize::from(mapped) * 2 + usize::from(nocase)]
}

/// The guard's FastCGI conversation (§13) on arbitrary bytes: records read one after another
/// and handed to it, as the connection loop does. What it answers is whole records; what it
/// serves is a responder or an authorizer with its parameters.
pub fn fastcgi_records(data: &[u8]) {
    let mut input = data;
    let mut conversation = Conversation::default();
    // At most as many records as the input can hold: each takes 8 bytes.
    while let Ok(Some(record)) = read_record(&mut input) {
        match conversation.take(record) {
            Err(_) => return, // the connection ends
            Ok(Step::Wait) => {}
            Ok(Step::Reply(bytes) | Step::Aborted { reply: bytes, .. }) => {
                let mut reply = &bytes[..];
                let record = read_record(&mut reply).expect("a whole record").expect("one");
                assert!(reply.is_empty(), "one record per reply");
                assert!(record.content.len() <= 65_535);
            }
            Ok(Step::Serve(request)) => {
                assert!(request.role == 1 || request.role == 2, "role {}", request.role);
                let _ = request.env.raw("HTTP_COOKIE");
            }
        }
    }
}

/// The hub's sender-body parser (`dacs_logout_hub`, §14) on an arbitrary body. The first
/// byte picks the `Content-Type` (JSON, a form, with a charset, or another type); the rest is
/// the body. Accepted: the fields are what the answer may echo and the fan-out may send;
/// refused: a defined 4xx, naming a known field when it names one.
pub fn hub_body_target(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else { return };
    let content_type = match mode % 5 {
        0 => Some("application/json"),
        1 => Some("application/x-www-form-urlencoded"),
        2 => Some("Application/JSON; charset=utf-8"),
        3 => Some("text/plain"),
        _ => None,
    };
    match hub_body(content_type, body) {
        Ok(logout) => {
            assert!(mode % 5 < 3, "a body of type {content_type:?} was taken");
            for text in [&logout.user_name, &logout.user_agent] {
                assert!(!text.is_empty() && text.trim() == text, "{text:?}");
                assert!(!text.contains('\0'));
            }
            assert!(logout.user_name.len() <= 256);
            assert!(!logout.user_name.chars().any(char::is_control), "{:?}", logout.user_name);
        }
        Err(e) => {
            assert!(matches!(e.status().0, 400 | 415), "{e:?}");
            assert!(
                e.field.is_none_or(|f| ["user_name", "user_agent", "logout_at"].contains(&f)),
                "{e:?}"
            );
        }
    }
    // A delivery record never reads back as anything but itself.
    if let Some(record) = Delivery::from_json(body) {
        assert_eq!(Delivery::from_json(record.to_json().as_bytes()).as_ref(), Some(&record));
    }
}
