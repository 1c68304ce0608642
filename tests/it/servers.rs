//! The built program mounted for real: Apache 2.4 with mod_cgid and with mod_cgi, lighttpd and
//! nginx + fcgiwrap, each running the shipped example configuration on a free loopback port,
//! checked through real HTTP.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::hub::{Behaviour, Hub};
use crate::support::servers::{
    CGI_PATH, RECEIVER_PATH, Request, Response, Server, ServerKind, send,
};
use crate::support::{EXAMPLE, conf, observe, validate_json, validate_xml};

const TOKEN: &str = "hub-t0ken-for-servers";
/// Four credentials of the federation (alice at two jurisdictions), the selection cookie, and
/// cookies that are not the program's.
const JAR: &str = "DACS:EX::FEDROOT:alice=c1; theme=dark; DACS:EX::DSS:alice=c2; \
                   DACS:EX::FEDROOT:bob@uni.example=c3; DACS:EX::FEDROOT:carol.o-k+x=c4; \
                   DACS:OTHER::X:eve=c5; DACS:EX:::SELECTED=s";
const EXPIRED: [&str; 5] = [
    "DACS:EX::FEDROOT:alice",
    "DACS:EX::DSS:alice",
    "DACS:EX::FEDROOT:bob@uni.example",
    "DACS:EX::FEDROOT:carol.o-k+x",
    "DACS:EX:::SELECTED",
];
const DACS_ARGS: &str = "DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=FEDROOT";

/// The example federation, handlers on this server allowed.
fn dacs_conf(extra: &str) -> String {
    conf(&format!("{EXAMPLE}\nSIGNOUT_HANDLER_ALLOW \"/\"\n{extra}"))
}

fn start(kind: ServerKind) -> Server {
    kind.setup().conf(&dacs_conf("")).start()
}

/// The exact expiring line for a cookie name, as the example federation writes it.
fn expiring(name: &str) -> String {
    format!(
        "{name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; Domain=example.org; Secure; HttpOnly"
    )
}

/// Status, the headers of §7 and the expected expiring cookies, with the server's logs on failure.
#[track_caller]
fn check(server: &Server, response: &Response, status: u16, expired: &[&str]) {
    let context = || {
        format!(
            "{}: {}\n{}\n{}",
            server.kind.name(),
            response.status,
            response.text(),
            server.all_logs()
        )
    };
    assert_eq!(response.status, status, "{}", context());
    assert_eq!(response.header("Cache-Control"), Some("no-store"), "{}", context());
    assert_eq!(response.header("X-Content-Type-Options"), Some("nosniff"), "{}", context());
    let expected: Vec<String> = expired.iter().map(|n| expiring(n)).collect();
    assert_eq!(response.headers_named("Set-Cookie"), expected, "{}", context());
}

fn get(server: &Server, query: &str) -> Response {
    server.ask(&Request::get(&format!("{CGI_PATH}?{query}")).cookie(JAR))
}

fn signs_out_every_credential_in_html_xml_and_json(kind: ServerKind) {
    let server = start(kind);
    let html = get(&server, "");
    check(&server, &html, 200, &EXPIRED);
    assert_eq!(html.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(
        html.header("Content-Security-Policy")
            .is_some_and(|csp| csp.contains("default-src 'none'"))
    );
    assert!(html.text().contains("carol.o-k+x"), "{}", html.text());
    server.program_log_line("removed=4");

    for format in ["XML", "XMLDTD", "XMLSCHEMA"] {
        let xml = get(&server, &format!("FORMAT={format}"));
        check(&server, &xml, 200, &EXPIRED);
        assert_eq!(xml.header("Content-Type"), Some("text/xml; charset=utf-8"));
        validate_xml(&xml.text());
        assert_eq!(xml.text().matches("<signed_out ").count(), 4, "{}", xml.text());
    }

    let json = get(&server, "FORMAT=JSON");
    check(&server, &json, 200, &EXPIRED);
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    validate_json(&json.text());
    let answer: Value = serde_json::from_slice(&json.body).expect("JSON");
    assert_eq!(answer["dacs_current_credentials"]["signed_out"].as_array().map(Vec::len), Some(4));

    let head = server.ask(&Request::new("HEAD", CGI_PATH).cookie(JAR));
    check(&server, &head, 200, &EXPIRED);
    assert!(head.body.is_empty());
}

fn redirects_to_the_handler_with_an_absolute_location(kind: ServerKind) {
    let server = kind.setup().conf(&dacs_conf("SIGNOUT_HANDLER \"url /goodbye.html\"")).start();
    let origin = server.origin();
    for (query, page) in
        [("DACS_SIGNOUT_HANDLER=%2Fhandler.html", "handler.html"), ("", "goodbye.html")]
    {
        let response = get(&server, query);
        check(&server, &response, 302, &EXPIRED);
        let location = format!("{origin}/{page}?{DACS_ARGS}");
        assert_eq!(response.header("Location"), Some(location.as_str()), "{}", kind.name());
    }
    server.program_log_line("handler=argument");
}

fn a_form_post_signs_out(kind: ServerKind) {
    let server = start(kind);
    let form = "DACS_USERNAME=bob%40uni.example&FORMAT=JSON";
    let response = server.ask(&Request::post_form(CGI_PATH, form).cookie(JAR));
    check(&server, &response, 200, &["DACS:EX::FEDROOT:bob@uni.example"]);
    validate_json(&response.text());
    let answer: Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(answer["dacs_current_credentials"]["signed_out"][0]["username"], "bob@uni.example");
    assert_eq!(answer["dacs_current_credentials"]["credentials"].as_array().map(Vec::len), Some(3));
    server.program_log_line("method=POST");
}

/// A body over 64 KiB is a 413 that reaches the client: the program reads the body it refuses
/// (under Apache's mod_cgid, a program that exits with its stdin unread left the client with
/// an empty reply), and changes nothing.
fn an_oversized_post_is_answered_413(kind: ServerKind) {
    let server = start(kind);
    let form = format!("pad={}", "x".repeat(200 * 1024));
    let response =
        server.ask(&Request::post_form(&format!("{CGI_PATH}?FORMAT=JSON"), &form).cookie(JAR));
    check(&server, &response, 413, &[]);
    assert!(response.text().contains("\"code\":\"413\""), "{}", response.text());
}

/// Apache passes the words of a query without `=` as arguments: they must change nothing.
fn query_words_are_not_options(kind: ServerKind) {
    let server = start(kind);
    let plain = get(&server, "");
    check(&server, &plain, 200, &EXPIRED);
    for query in
        ["--check-config", "foo+--version", "--help", "relay+--now", "--check-config+/etc/passwd"]
    {
        let response = get(&server, query);
        check(&server, &response, 200, &EXPIRED);
        assert_eq!(response.header("Content-Type"), plain.header("Content-Type"), "?{query}");
        assert_eq!(response.text(), plain.text(), "?{query}: not the signout page");
    }
}

/// `DACS_SIGNOUT_CONF` names a missing file, then one the program's user cannot read: the
/// documented 500 in each format, never a blank one, details only in the log.
fn a_missing_or_unreadable_conf_is_the_documented_500(kind: ServerKind) {
    let server = kind.setup().conf_missing().start();
    for (unreadable, why) in [(false, "No such file or directory"), (true, "Permission denied")] {
        if unreadable {
            server.break_conf(true);
        }
        for (format, content_type) in [
            ("HTML", "text/html; charset=utf-8"),
            ("XML", "text/xml; charset=utf-8"),
            ("JSON", "application/json"),
        ] {
            let response = get(&server, &format!("FORMAT={format}"));
            check(&server, &response, 500, &[]);
            assert_eq!(response.header("Content-Type"), Some(content_type), "{format}");
            let body = response.text();
            assert!(
                body.contains("the signout service is misconfigured"),
                "{}: {format}: {body}",
                kind.name()
            );
            assert!(!body.contains("dacs.conf"), "{format}: a path reached the browser: {body}");
            match format {
                "XML" => validate_xml(&body),
                "JSON" => validate_json(&body),
                _ => {}
            }
        }
        let line = server.program_log_line(why);
        assert!(line.contains("status=500") && line.contains("etc/dacs.conf"), "{line}");
    }
}

/// The relay under a real server: the response completes while the hub still holds the
/// delivery, so the detached delivery child holds neither the connection nor the server.
fn the_response_does_not_wait_for_the_hub(kind: ServerKind) {
    let name = kind.name();
    let hub = Hub::start(Behaviour::Gate);
    let relay = format!(
        "IDMS_BASE_API_URL \"{}\"\nRELAY_SPOOL_DIR \"@ROOT@/var/spool\"\nRELAY_TIMEOUT_SECS \"10\"\n\
         RELAY_IDENTITY \"cookies\"",
        hub.base()
    );
    let server = kind.setup().conf(&dacs_conf(&relay)).hub_token(TOKEN).start();
    let spool = server.var_dir().join("spool");
    let asked = Instant::now();
    let answered = ask_in_background(
        &server,
        Request::get(CGI_PATH).cookie(JAR).header("User-Agent", "servers-test"),
    );

    // The delivery child has connected and the hub holds its request.
    let held = hub.wait_for(1);
    let hub_got_it = asked.elapsed();
    let response = complete_while_held(&server, &hub, &answered);
    check(&server, &response, 200, &EXPIRED);
    // Still held: the hub has answered nothing, the relay has logged nothing, the three signals
    // are in the spool (one claimed by the delivery child).
    assert_eq!(hub.received().len(), 1, "{name}: the deliveries are one after the other");
    assert!(relay_log(&spool).is_empty(), "{name}: {}", relay_log(&spool));
    assert_eq!(spool_files(&spool).len(), 3, "{name}: {:?}", spool_files(&spool));
    assert_eq!(held[0].header("Authorization"), Some(format!("Bearer {TOKEN}").as_str()), "{name}");
    let timing = format!(
        "hub got the signal after {hub_got_it:?}; response complete after {:?}, connection closed after {:?}",
        response.complete_after, response.closed_after
    );
    observe(name, "relay with the hub holding", timing);

    hub.release();
    let mut users: Vec<String> = hub.wait_for(3).iter().map(|r| r.user_name()).collect();
    users.sort();
    assert_eq!(users, ["alice", "bob@uni.example", "carol.o-k+x"], "{name}");
    let log = wait_for_relay_log(&spool, 3);
    assert_eq!(log.matches("outcome=delivered").count(), 3, "{name}: {log}");
    assert!(!log.contains(TOKEN));
    assert_eq!(spool_files(&spool), Vec::<String>::new(), "{name}: the spool empties");
    server.program_log_line("relay=spooled:3");
}

/// Sends `request` from another thread; its answer arrives on the channel.
fn ask_in_background(
    server: &Server,
    request: Request,
) -> mpsc::Receiver<std::io::Result<Response>> {
    let (answer, answered) = mpsc::channel();
    let port = server.port;
    let request = request.timeout(Duration::from_secs(30));
    thread::spawn(move || answer.send(send(port, &request)));
    answered
}

/// The response, which must be complete within 5 s while the hub holds the delivery; else the
/// hub is released and the failure says when the response came.
#[track_caller]
fn complete_while_held(
    server: &Server,
    hub: &Hub,
    answered: &mpsc::Receiver<std::io::Result<Response>>,
) -> Response {
    let name = server.kind.name();
    match answered.recv_timeout(Duration::from_secs(5)) {
        Ok(response) => response.unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.all_logs())),
        Err(_) => {
            hub.release();
            let late = match answered.recv_timeout(Duration::from_secs(30)) {
                Ok(Ok(r)) => format!("status {}, complete after {:?}", r.status, r.complete_after),
                Ok(Err(e)) => format!("{e}"),
                Err(_) => "still nothing".to_owned(),
            };
            panic!(
                "{name}: the response was not complete 5 s after the hub got the signal, while the hub held \
                 the delivery: the delivery child holds the connection. Once the hub was released: {late}\n{}",
                server.all_logs()
            )
        }
    }
}

fn relay_log(spool: &std::path::Path) -> String {
    std::fs::read_to_string(spool.join("relay.log")).unwrap_or_default()
}

/// The relay log once it has `n` lines (bounded wait).
#[track_caller]
fn wait_for_relay_log(spool: &std::path::Path, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = relay_log(spool);
        if log.lines().count() >= n {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "relay log has {} of {n} lines:\n{log}",
            log.lines().count()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Signals left in `new/`, `work/` or `dead/`.
fn spool_files(spool: &std::path::Path) -> Vec<String> {
    ["new", "work", "dead"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(spool.join(sub)).into_iter().flatten().flatten())
        .map(|e| e.path().display().to_string())
        .collect()
}

macro_rules! server_tests {
    ($($module:ident => $kind:expr,)*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn signs_out_every_credential_in_html_xml_and_json() {
                super::signs_out_every_credential_in_html_xml_and_json($kind);
            }

            #[test]
            fn redirects_to_the_handler_with_an_absolute_location() {
                super::redirects_to_the_handler_with_an_absolute_location($kind);
            }

            #[test]
            fn a_form_post_signs_out() {
                super::a_form_post_signs_out($kind);
            }

            #[test]
            fn an_oversized_post_is_answered_413() {
                super::an_oversized_post_is_answered_413($kind);
            }

            #[test]
            fn the_host_header_does_not_choose_the_section() {
                super::the_host_header_does_not_choose_the_section($kind);
            }

            #[test]
            fn query_words_are_not_options() {
                super::query_words_are_not_options($kind);
            }

            #[test]
            fn a_missing_or_unreadable_conf_is_the_documented_500() {
                super::a_missing_or_unreadable_conf_is_the_documented_500($kind);
            }

            #[test]
            fn the_response_does_not_wait_for_the_hub() {
                super::the_response_does_not_wait_for_the_hub($kind);
            }
        }
    )*};
}

server_tests! {
    apache_cgid => ServerKind::ApacheCgid,
    apache_cgi => ServerKind::ApacheCgi,
    lighttpd => ServerKind::Lighttpd,
    nginx_fcgiwrap => ServerKind::Nginx,
}

// --- the receiver and the guard, mounted as the examples mount them ------------------------

const RECEIVER_TOKEN: &str = "hub-to-us-t0ken-for-servers";

/// The example federation with an SQLite registry in `ROOT/var/registry` (the CGI user's)
/// and the spool the receiver falls back to.
fn registry_conf(extra: &str) -> String {
    dacs_conf(&format!(
        "REGISTRY \"sqlite:@ROOT@/var/registry/registry.db\"\nRELAY_SPOOL_DIR \"@ROOT@/var/spool\"\n{extra}"
    ))
}

const PROTECTED: &str = "<!DOCTYPE html><title>Protected</title><h1>Protected content</h1>\n";

/// The real hub's call reaches the receiver under each server (`HTTP_AUTHORIZATION` too):
/// 200 with the guide's body, the revocation in the registry; a wrong or missing token 401.
fn the_hubs_call_reaches_the_receiver(kind: ServerKind) {
    let name = kind.name();
    let server = kind.setup().conf(&registry_conf("")).receiver_token(RECEIVER_TOKEN).start();
    let context =
        |r: &Response| format!("{name}: {} {}\n{}", r.status, r.text(), server.all_logs());

    let ok = server.ask(&Request::profiles_logout("bob", RECEIVER_TOKEN));
    assert_eq!(ok.status, 200, "{}", context(&ok));
    assert_eq!(ok.header("Content-Type"), Some("application/json"), "{name}");
    assert_eq!(ok.header("Cache-Control"), Some("no-store"), "{name}");
    let body: Value = serde_json::from_slice(&ok.body).expect("JSON");
    assert_eq!(body, serde_json::json!({"status": "success", "message": "User bob logged out"}));
    let line = server.receiver_log_line("status=200");
    assert!(
        line.contains("kept=registry") && line.contains("revoked=EX::FEDROOT:bob"),
        "{name}: {line}"
    );

    for (request, what) in [
        (Request::profiles_logout("bob", "not-the-token"), "a wrong token"),
        (
            Request::new("POST", &format!("{RECEIVER_PATH}?username=bob"))
                .header("Content-Type", "application/json"),
            "no token",
        ),
        // A body the receiver never reads (the token is checked first): under Apache's
        // mod_cgid, a program that exits with it unread had its 401 replaced by a reset.
        (
            Request::new("POST", RECEIVER_PATH)
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer not-the-token")
                .body(
                    format!("{{\"userId\":\"bob\",\"pad\":\"{}\"}}", "x".repeat(4000)).as_bytes(),
                ),
            "a wrong token and a body",
        ),
    ] {
        let refused = server.ask(&request);
        assert_eq!(refused.status, 401, "{what}: {}", context(&refused));
        assert_eq!(refused.header("WWW-Authenticate"), Some("Bearer"), "{name}: {what}");
        let body: Value = serde_json::from_slice(&refused.body).expect("JSON");
        assert_eq!(body["status"], "error", "{name}: {what}");
    }
    let line = server.receiver_log_line("status=401");
    assert!(
        !server.log(kind.program_log()).contains(RECEIVER_TOKEN),
        "{name}: the token is logged"
    );
    observe(name, "the hub's call to /api/logout/", format!("200, then 401: {line}"));
}

/// The guard as each example mounts it: a credential is served, refused after the hub's call
/// with its expiring `Set-Cookie` reaching the client (nginx: through `@dacs_expired`;
/// Apache: from the authorizer and again from the ErrorDocument), and a new credential of the
/// same user is served again.
fn the_guard_refuses_a_credential_after_the_hubs_call(kind: ServerKind) {
    let name = kind.name();
    let server = kind
        .setup()
        .conf(&registry_conf(""))
        .receiver_token(RECEIVER_TOKEN)
        .guard()
        .dacs_standin()
        .page("protected/index.html", PROTECTED)
        .start();
    let context = |r: &Response| {
        format!("{name}: {} {:?}\n{}\n{}", r.status, r.headers, r.text(), server.all_logs())
    };
    let get = |jar: &str| server.ask(&Request::get("/protected/").cookie(jar));
    let first = "DACS:EX::FEDROOT:bob=first-sign-in";
    let amy = "DACS:EX::DSS:amy=hers";

    let served = get(&format!("{first}; theme=dark"));
    assert_eq!(served.status, 200, "{}", context(&served));
    assert!(served.text().contains("Protected content"), "{}", context(&served));
    assert!(served.headers_named("Set-Cookie").is_empty(), "a pass sets nothing: {served:?}");
    // Every view asks the server (and so the guard): no view from the browser's cache.
    assert_eq!(served.headers_named("Cache-Control"), ["private, no-cache"], "{name}");
    assert_eq!(get(amy).status, 200, "{name}: amy");

    thread::sleep(Duration::from_millis(20));
    let call = server.ask(&Request::profiles_logout("bob", RECEIVER_TOKEN));
    assert_eq!(call.status, 200, "{}", context(&call));

    // Refused, and only bob's credential expired (amy's, in the same jar, is left alone).
    let refused = get(&format!("{first}; {amy}; theme=dark"));
    assert_eq!(refused.status, 401, "{}", context(&refused));
    let lines = refused.headers_named("Set-Cookie");
    // Apache passes the authorizer's headers on a denial (SPEC §13 says it discards them),
    // and its ErrorDocument, the guard again, sends them once more.
    let copies = if kind.guard_on_tcp() { 2 } else { 1 };
    assert_eq!(lines, vec![expiring("DACS:EX::FEDROOT:bob"); copies], "{}", context(&refused));
    assert!(
        refused.text().contains("You were signed out of federation EX"),
        "{}",
        context(&refused)
    );
    assert_eq!(refused.header("Content-Type"), Some("text/html; charset=utf-8"), "{name}");
    // (Apache: "no-store, no-store", the authorizer's header and the error document's.)
    let no_store = refused.headers_named("Cache-Control").iter().any(|v| v.contains("no-store"));
    assert!(no_store, "{refused:?}");
    observe(
        name,
        "the guard's refusal",
        format!("401 with {} expiring Set-Cookie line(s)", lines.len()),
    );

    // A copy of the same credential elsewhere: refused too. Signed in again (a new value,
    // first seen after the signout): served. Amy was never signed out.
    assert_eq!(get(first).status, 401, "{name}: the copy");
    thread::sleep(Duration::from_millis(20));
    let again = get("DACS:EX::FEDROOT:bob=second-sign-in");
    assert_eq!(again.status, 200, "{}", context(&again));
    assert!(again.headers_named("Set-Cookie").is_empty(), "{name}");
    assert_eq!(get(amy).status, 200, "{name}: amy");

    // No credential: under Apache, DACS (its stand-in) refuses, and the guard's page says
    // "sign in"; elsewhere authentication is not the guard's, and it lets the request pass.
    let anonymous = server.ask(&Request::get("/protected/"));
    if kind.guard_on_tcp() {
        assert_eq!(anonymous.status, 401, "{}", context(&anonymous));
        assert!(anonymous.text().contains("Sign-in required"), "{}", context(&anonymous));
        assert!(anonymous.headers_named("Set-Cookie").is_empty());
        let health = server.ask(&Request::get("/dacs-guard/health"));
        assert_eq!(health.status, 200, "{}", context(&health));
        let counters: Value = serde_json::from_slice(&health.body).expect("JSON");
        assert_eq!(counters["refusals"], 2, "{name}: {counters}");
        assert_eq!(counters["store_errors"], 0, "{name}: {counters}");
    } else {
        assert_eq!(anonymous.status, 200, "{}", context(&anonymous));
    }
    assert!(!server.guard_log().contains("error"), "{name}: {}", server.guard_log());
}

/// The guard down: every server fails closed (Apache 500, lighttpd 503, nginx 500), and
/// nothing protected is served.
fn a_guard_that_is_down_fails_closed(kind: ServerKind) {
    let name = kind.name();
    let server = kind
        .setup()
        .conf(&registry_conf(""))
        .dacs_standin()
        .page("protected/index.html", PROTECTED)
        .start();
    let response =
        server.ask(&Request::get("/protected/").cookie("DACS:EX::FEDROOT:bob=first-sign-in"));
    assert!(response.status >= 500, "{name}: {} {}", response.status, response.text());
    assert!(!response.text().contains("Protected content"), "{name}");
    observe(name, "the guard down", response.status);
}

macro_rules! mount_tests {
    ($($module:ident => $kind:expr,)*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn the_hubs_call_reaches_the_receiver() {
                super::super::the_hubs_call_reaches_the_receiver($kind);
            }

            #[test]
            fn the_guard_refuses_a_credential_after_the_hubs_call() {
                super::super::the_guard_refuses_a_credential_after_the_hubs_call($kind);
            }

            #[test]
            fn a_guard_that_is_down_fails_closed() {
                super::super::a_guard_that_is_down_fails_closed($kind);
            }
        }
    )*};
}

/// The receiver and the guard under each server: Apache (mod_cgid), lighttpd, nginx.
mod mounts {
    use super::*;

    mount_tests! {
        apache_cgid => ServerKind::ApacheCgid,
        lighttpd => ServerKind::Lighttpd,
        nginx_fcgiwrap => ServerKind::Nginx,
    }
}

mod harness {
    use crate::support::servers::{
        Request, ServerKind, examples_dir, framed_len, parse_response, render, uncomment,
    };

    #[test]
    fn every_example_renders_without_a_placeholder_left() {
        let vars: Vec<(&str, String)> = [
            "@PORT@",
            "@ROOT@",
            "@BIN@",
            "@CONF@",
            "@CGI_MODULE@",
            "@RECEIVER_BIN@",
            "@GUARD_PORT@",
            "@GUARD_SOCKET@",
        ]
        .iter()
        .map(|p| (*p, "X".to_owned()))
        .collect();
        for template in
            ["apache/httpd.conf", "lighttpd/lighttpd.conf", "nginx/nginx.conf", "nginx/fcgiwrap.sh"]
        {
            let text = std::fs::read_to_string(examples_dir().join(template)).unwrap();
            assert!(render(&text, &vars).is_ok(), "{template}");
            assert!(render(&text, &vars[..1]).is_err(), "{template}");
        }
    }

    #[test]
    fn the_token_lines_are_commented_exactly_once() {
        for kind in [ServerKind::ApacheCgid, ServerKind::Lighttpd] {
            let text = std::fs::read_to_string(examples_dir().join(kind.template())).unwrap();
            let hub = if kind == ServerKind::Lighttpd {
                "\"COMMONS_PROFILES_API_TOKEN\" => env.COMMONS_PROFILES_API_TOKEN,"
            } else {
                "PassEnv COMMONS_PROFILES_API_TOKEN"
            };
            for line in [hub, kind.receiver_token_line().unwrap()] {
                let live = uncomment(&text, line).unwrap();
                assert!(live.lines().any(|l| l.trim() == line));
                assert!(uncomment(&live, line).is_err(), "uncommented twice");
            }
        }
    }

    #[test]
    fn client_parses_framings() {
        let chunked = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nTransfer-Encoding: chunked\r\n\
                        set-cookie: b=2\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let r = parse_response(chunked, false).unwrap();
        assert_eq!(
            (r.status, r.headers_named("Set-Cookie"), r.body.as_slice()),
            (200, vec!["a=1", "b=2"], &b"abcde"[..])
        );
        assert_eq!(r.cookie_names(), ["a", "b"]);
        assert_eq!(framed_len(chunked, false), Some(chunked.len()));
        assert_eq!(framed_len(&chunked[..chunked.len() - 2], false), None);

        let sized = b"HTTP/1.0 302 Found\r\nLocation: /x\r\nContent-Length: 2\r\n\r\nhi";
        let r = parse_response(sized, false).unwrap();
        assert_eq!(
            (r.status, r.header("location"), r.body.as_slice()),
            (302, Some("/x"), &b"hi"[..])
        );
        assert_eq!(framed_len(&sized[..sized.len() - 1], false), None);

        let until_close = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
        assert_eq!(parse_response(until_close, false).unwrap().body, b"all of it");
        assert_eq!(framed_len(until_close, false), None);

        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
        assert!(parse_response(head, true).unwrap().body.is_empty());
        assert_eq!(framed_len(head, true), Some(head.len()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n", false).is_err());
    }

    #[test]
    fn request_bytes() {
        let r = Request::post_form("/p?q", "a=b").cookie("c=d");
        assert_eq!(
            String::from_utf8(r.to_bytes(8080)).unwrap(),
            "POST /p?q HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Cookie: c=d\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b"
        );
    }
}

/// What stands in for mod_auth_dacs: it authenticates the request from its credential and
/// sets `REMOTE_USER` to `FED::JUR:USER` (here: always bob's).
const AUTH_LUA: &str = r#"require "apache2"
function as_dacs(r)
  r.user = "EX::FEDROOT:bob@uni.example"
  return apache2.OK
end
"#;

/// Two more mounts of the same program behind an authentication module each: one emulating
/// mod_auth_dacs with mod_lua, one with HTTP Basic (whose user ids cannot hold a `:`, so it
/// sets the bare form).
const AUTHENTICATED_MOUNTS: &str = r#"
# --- test fixture: the program behind authentication ---------------------
LoadModule lua_module /usr/lib/apache2/modules/mod_lua.so
LoadModule authn_file_module /usr/lib/apache2/modules/mod_authn_file.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
ScriptAlias "/dacs/dacs_signout" "@BIN@"
<Location "/dacs/dacs_signout">
    SetEnv DACS_SIGNOUT_CONF "@CONF@"
    PassEnv COMMONS_PROFILES_API_TOKEN
    AuthType DACS
    AuthName "EX"
    LuaHookCheckUserID "@ROOT@/etc/auth.lua" as_dacs
    Require valid-user
</Location>
ScriptAlias "/basic/dacs_signout" "@BIN@"
<Location "/basic/dacs_signout">
    SetEnv DACS_SIGNOUT_CONF "@CONF@"
    PassEnv COMMONS_PROFILES_API_TOKEN
    AuthType Basic
    AuthName "EX"
    AuthUserFile "@ROOT@/etc/htpasswd"
    Require valid-user
</Location>
"#;

/// SPEC §9 under Apache: only the identity the server authenticated goes network-wide. The
/// same jar (alice at two jurisdictions, bob, carol) signed out three ways: behind the
/// mod_auth_dacs stand-in (`EX::FEDROOT:bob@uni.example`: bob's signal only), behind Basic
/// (`alice`: FEDROOT's alice only, DSS's alice is another person), and anonymously (none).
#[test]
fn apache_relays_only_the_identity_an_auth_module_authenticated() {
    let hub = Hub::start(Behaviour::Ok);
    let relay = format!(
        "IDMS_BASE_API_URL \"{}\"\nRELAY_SPOOL_DIR \"@ROOT@/var/spool\"\nRELAY_TIMEOUT_SECS \"10\"",
        hub.base()
    );
    let hash = std::process::Command::new("openssl")
        .args(["passwd", "-apr1", "-salt", "dacstest", "alices-password"])
        .output()
        .expect("openssl runs");
    let htpasswd = format!("alice:{}", String::from_utf8(hash.stdout).unwrap());
    let server = ServerKind::ApacheCgid
        .setup()
        .conf(&dacs_conf(&relay))
        .hub_token(TOKEN)
        .file("etc/auth.lua", AUTH_LUA)
        .file("etc/htpasswd", &htpasswd)
        .append_config(AUTHENTICATED_MOUNTS)
        .start();
    let spool = server.var_dir().join("spool");

    let dacs = server.ask(&Request::get("/dacs/dacs_signout").cookie(JAR));
    check(&server, &dacs, 200, &EXPIRED);
    assert_eq!(hub.wait_for(1)[0].user_name(), "bob@uni.example");
    wait_for_relay_log(&spool, 1);
    server.program_log_line("relay=spooled:1");

    let basic = server.ask(
        &Request::get("/basic/dacs_signout")
            .cookie(JAR)
            .header("Authorization", "Basic YWxpY2U6YWxpY2VzLXBhc3N3b3Jk"),
    );
    check(&server, &basic, 200, &EXPIRED);
    let users: Vec<String> = hub.wait_for(2).iter().map(|r| r.user_name()).collect();
    assert_eq!(users, ["bob@uni.example", "alice"]);
    wait_for_relay_log(&spool, 2);

    let anonymous = server.ask(&Request::get(CGI_PATH).cookie(JAR));
    check(&server, &anonymous, 200, &EXPIRED);
    server.program_log_line("relay=unauthenticated");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(hub.received().len(), 2, "nothing relayed for an unauthenticated signout");
    observe("apache-cgid", "REMOTE_USER forms relayed", "EX::FEDROOT:bob@uni.example, alice");
}

/// The Host header must not choose the Jurisdiction section (and with it the hub and its
/// token): under every shipped mount SERVER_NAME is the configured name, whatever Host says.
fn the_host_header_does_not_choose_the_section(kind: ServerKind) {
    let sections =
        "<Jurisdiction uri=\"evil.example\">\nJURISDICTION_NAME \"EVIL\"\n</Jurisdiction>";
    let text = dacs_conf("").replace("</Configuration>", &format!("{sections}\n</Configuration>"));
    let server = kind.setup().conf(&text).start();
    let response =
        server.ask(&Request::get(&format!("{CGI_PATH}?FORMAT=JSON")).host("evil.example"));
    assert_eq!(response.status, 200, "{}", server.all_logs());
    assert!(
        response.text().contains("\"jurisdiction_name\":\"FEDROOT\""),
        "{}: {}",
        kind.name(),
        response.text()
    );
}

/// A DACS operator's own `dacs.conf` (three jurisdictions, their `<Auth>`, `<Roles>` and
/// `<Transfer>` clauses, expressions in DACS's directives) mounted as it is: this server is
/// the `127.0.0.1` jurisdiction, whose bare `/goodbye.html` handler is DACS's form.
#[test]
fn apache_signs_out_with_a_real_dacs_conf() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dacs.conf"))
            .unwrap();
    let server = ServerKind::ApacheCgid.setup().conf(&text).start();
    let response = get(&server, "");
    check(&server, &response, 302, &EXPIRED);
    let location = format!("{}/goodbye.html?{DACS_ARGS}", server.origin());
    assert_eq!(response.header("Location"), Some(location.as_str()));
    server.program_log_line("jurisdiction=FEDROOT");
}

/// Keyrock's sign-out at its own path, as the Apache example mounts it.
#[test]
fn apache_answers_keyrocks_external_logout() {
    let clients = "SIGNOUT_CLIENT \"wiki https://wiki.example.org/logged-out\"";
    let server = ServerKind::ApacheCgid.setup().conf(&dacs_conf(clients)).start();
    let delete =
        server.ask(&Request::new("DELETE", "/auth/external_logout?client_id=wiki").cookie(JAR));
    check(&server, &delete, 302, &EXPIRED);
    assert_eq!(delete.header("Location"), Some("https://wiki.example.org/logged-out"));
    let post = server.ask(
        &Request::post_form("/auth/external_logout?_method=DELETE&client_id=wiki", "").cookie(JAR),
    );
    assert_eq!(post.status, 302);
    assert_eq!(post.header("Location"), Some("https://wiki.example.org/logged-out"));
    let unknown =
        server.ask(&Request::new("DELETE", "/auth/external_logout?client_id=evil").cookie(JAR));
    check(&server, &unknown, 401, &[]);
}
