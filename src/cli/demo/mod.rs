//! `dacs_signout demo`: a tiny HTTP server on 127.0.0.1 with a demo portal that sets DACS
//! credentials and links to this very program, run as a real CGI child process. It exists so
//! that a newcomer can see a signout without setting up a web server; it is not for production.
//!
//! It hands the program what a real server would: the whole body (up to 1 MiB, its own cap),
//! the query and every header as raw bytes, so that the program's own answers (a 413 over
//! 64 KiB of body, a 400 for a Cookie header over 64 KiB or a query that is not clean UTF-8)
//! are the ones seen. Every request gets an answer; what the demo refuses itself (a malformed
//! request, a head over its limits) is a 4xx whose body says why.

mod cgi;
mod http;
mod hub;
mod network;

use std::ffi::OsString;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;

use self::http::{HttpRequest, Refusal, TIMEOUT, http, plain, read_request};
use self::network::Network;
use crate::cgi::Env;
use crate::config::DEMO;
use crate::render::html::escape;

const USERS: &[&str] = &["alice", "bob@example.org"];

/// How much the demo reads and drops after answering, so that a client still sending (a body
/// refused with a 413, a head over the limit) reads the answer instead of a connection reset.
const MAX_DRAIN: u64 = 16 << 20;

/// What every request of the demo needs.
struct Site {
    port: u16,
    conf: PathBuf,
    /// The guard and the receiver; why not, when they are off.
    network: Result<Network, String>,
}

pub fn run(env: &Env, port: u16, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    // The demo's own configuration, whatever `/etc/dacs-signout/dacs.conf` says (its portal
    // signs in to federation DEMO), unless DACS_SIGNOUT_CONF names another.
    let prepared = fresh_dir().and_then(|dir| match env.os("DACS_SIGNOUT_CONF") {
        Some(path) => Ok((PathBuf::from(path), dir)),
        None => write_demo_conf(&dir).map(|conf| (conf, dir)),
    });
    let (conf, dir) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            let _ = writeln!(stderr, "dacs_signout demo: cannot write its configuration: {e}");
            return 1;
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(stderr, "dacs_signout demo: cannot listen on 127.0.0.1:{port}: {e}");
            return 1;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    // After the bind: the hub's receivers are on this port.
    let network = Network::start(&conf, &dir, port);
    let _ = writeln!(stdout, "dacs_signout demo: open http://127.0.0.1:{port}/ (Ctrl-C stops it)");
    let _ = writeln!(stdout, "dacs_signout demo: configuration {}", conf.display());
    match &network {
        Ok(_) => {
            let _ = writeln!(
                stdout,
                "dacs_signout demo: /protected/ is behind dacs_guard; the portal's hub buttons call \
                 dacs_logout_receiver, and dacs_logout_hub which fans out to it and two stand-in \
                 apps; registry and spools beside the configuration"
            );
        }
        Err(why) => {
            let _ = writeln!(
                stdout,
                "dacs_signout demo: the guard, the receiver and the hub are off: {why}"
            );
        }
    }
    let _ = stdout.flush();
    let _ = stderr.flush();
    let site: &'static Site = Box::leak(Box::new(Site { port, conf, network }));
    // A thread per connection: browsers open speculative connections that send nothing.
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = handle(&stream, site) {
                crate::log::to_stderr(format_args!("dacs_signout demo: {e}"));
            }
        });
    }
    0
}

/// A fresh directory of the demo's own under the system's temporary directory, for its
/// configuration, registry, spool and the guard's socket; owner only (the registry and the
/// spool refuse a directory others can write).
fn fresh_dir() -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for n in 0.. {
        let dir = base.join(format!("dacs-signout-demo-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("an unbounded range")
}

/// `config::DEMO`, with the registry and the spool in `dir`.
fn write_demo_conf(dir: &std::path::Path) -> io::Result<PathBuf> {
    let path = dir.join("dacs.conf");
    let text = DEMO.replace("  </Default>", &format!("{}  </Default>", network::directives(dir)));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn handle(stream: &TcpStream, site: &Site) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut reader = BufReader::new(stream);
    let response = match read_request(&mut reader, stream) {
        Ok(request) => match request.path.as_slice() {
            b"/" => portal(&request, site),
            b"/signin" => signin(&request),
            b"/protected/" => protected(&request, site),
            b"/hub-says" => hub_says(&request, site),
            b"/hub-fanout" => hub_fanout(&request, site),
            b"/cgi-bin/dacs_signout" => signout(&request, site),
            // Called by the demo's hub, over HTTP, as receivers are.
            b"/api/logout/" => match &site.network {
                Ok(network) => network.receive(&request, &site.conf, site.port),
                Err(_) => plain("404 Not Found", "the receiver is off in this demo"),
            },
            b"/apps/wiki/logout" | b"/apps/bcc/logout" => match &site.network {
                Ok(network) => {
                    let app = if request.path.starts_with(b"/apps/wiki") { "wiki" } else { "bcc" };
                    network.hub.app_called(app, &request)
                }
                Err(_) => plain("404 Not Found", "the hub is off in this demo"),
            },
            _ => plain(
                "404 Not Found",
                "the demo serves /, /signin, /protected/, /hub-says, /hub-fanout, \
                 /cgi-bin/dacs_signout, and the receivers its hub calls",
            ),
        },
        Err(Refusal::Nothing) => return Ok(()),
        Err(Refusal::Answer(status, why)) => plain(status, &format!("{status}: {why}")),
    };
    let mut writer = stream;
    writer.write_all(&response)?;
    // Close gracefully: say we are done, then read what the client still sends (a refused
    // body, the rest of an oversized head) so that closing does not reset the connection
    // before the client has read the answer.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = io::copy(&mut reader.take(MAX_DRAIN), &mut io::sink());
    Ok(())
}

fn html_page(status: &str, extra_headers: Vec<String>, body: &str) -> Vec<u8> {
    let mut headers =
        vec!["Content-Type: text/html; charset=utf-8".into(), "Cache-Control: no-store".into()];
    headers.extend(extra_headers);
    http(status, &headers, body.as_bytes())
}

/// The guard's verdict on a page of the site (every page but the signout and the hub's
/// button is behind it): `Ok` to serve, with what the guard asks to add (nothing); `Err` with
/// the guard's refusal, as the server sends it.
fn guarded(request: &HttpRequest, site: &Site) -> Result<(), cgi::Answer> {
    let Ok(network) = &site.network else { return Ok(()) };
    match network.authorize(request, site.port) {
        Ok(answer) if answer.code() == 200 => Ok(()),
        Ok(refusal) => Err(refusal),
        Err(e) => Err(cgi::Answer {
            status: "502 Bad Gateway".into(),
            headers: vec!["Content-Type: text/plain; charset=utf-8".into()],
            body: format!("502 Bad Gateway: the guard did not answer: {e}\n").into_bytes(),
        }),
    }
}

fn portal(request: &HttpRequest, site: &Site) -> Vec<u8> {
    // The portal is a page of the site: the guard sees (and so records) every credential the
    // browser shows it. A refused one is expired here too, and the portal says why.
    let (refused, expire) = match guarded(request, site) {
        Ok(()) => (String::new(), Vec::new()),
        Err(refusal) => {
            let expired: Vec<String> =
                refusal.headers.iter().filter(|h| h.starts_with("Set-Cookie:")).cloned().collect();
            let text = format!(
                "<p id=\"refused\" role=\"alert\"><strong>The guard refused this browser's \
                 credential ({}) and removed it: its user signed out elsewhere.</strong></p>\n",
                escape(&refusal.status)
            );
            (text, expired)
        }
    };
    let cookies = request.header("Cookie").unwrap_or_default();
    let names: Vec<String> = crate::credentials::header::names(&cookies)
        .map(|n| format!("<li><code>{}</code></li>", escape(&String::from_utf8_lossy(n))))
        .collect();
    let signin: String = USERS
        .iter()
        .map(|u| {
            format!("<a class=\"signin\" href=\"/signin?user={0}\">Sign in as {0}</a> ", escape(u))
        })
        .collect();
    let notice = signed_out_notice(&request.query);
    let signout = "/cgi-bin/dacs_signout";
    let network = match &site.network {
        Ok(_) => "<h2>The network</h2>\n<p><a id=\"protected\" href=\"/protected/\">A protected \
             page</a>, behind <code>dacs_guard</code> (as nginx's <code>auth_request</code> \
             asks it).</p>\n<form method=\"post\" action=\"/hub-says\"><input type=\"hidden\" \
             name=\"user\" value=\"alice\"><button id=\"hub-says\">The hub says alice signed out \
             elsewhere</button></form>\n<p>The button calls <code>dacs_logout_receiver</code> as the \
             logout hub would (<code>POST ?username=alice</code>, with its bearer token); the \
             registry then refuses every credential of alice's the guard had seen.</p>\n\
             <form method=\"post\" action=\"/hub-fanout\"><input type=\"hidden\" name=\"user\" \
             value=\"alice\"><button id=\"hub-fanout\">Another app tells our hub alice signed out\
             </button></form>\n<p>The button is an app of the network (<code>kcworks</code>) telling \
             this network's own hub, <code>dacs_logout_hub</code>, as it would tell Profiles \
             (<code>POST /api/v1/actions/logout/</code>); the hub fans the logout out at once to \
             every receiver: <code>dacs_logout_receiver</code> here, a wiki and a BCC-style \
             app.</p>\n"
            .to_owned(),
        Err(why) => format!(
            "<h2>The network</h2>\n<p id=\"network-off\">The guard, the receiver and the hub are \
             off: {}</p>\n",
            escape(why)
        ),
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo portal</title></head><body>\n\
         <h1>Demo portal (federation DEMO)</h1>\n{notice}{refused}<p>This page runs on http://127.0.0.1:{port}/ and links to the real \
         <code>dacs_signout</code> binary, run as a CGI program.</p>\n<p>{signin}</p>\n\
         <h2>Cookies this browser sent</h2>\n<ul id=\"cookies\">{}</ul>\n\
         <p><a id=\"signout\" href=\"{signout}?DACS_SIGNOUT_HANDLER=/\">Sign out</a> (and come back here) · \
         <a href=\"{signout}\">Sign out (built-in page)</a> · \
         <a href=\"{signout}?DACS_USERNAME=alice\">Sign out alice only</a> · \
         <a href=\"{signout}?FORMAT=JSON\">JSON</a> · <a href=\"{signout}?FORMAT=XMLDTD\">XML</a></p>\n\
         <form method=\"post\" action=\"{signout}\"><input type=\"hidden\" name=\"FORMAT\" value=\"HTML\">\
         <button id=\"post-signout\">Sign out (POST)</button></form>\n{network}</body></html>\n",
        names.join(""),
        port = site.port,
    );
    html_page("200 OK", expire, &body)
}

/// A page only a credential the guard passes may see.
fn protected(request: &HttpRequest, site: &Site) -> Vec<u8> {
    if let Err(refusal) = guarded(request, site) {
        return refusal.to_http();
    }
    let cookies = request.header("Cookie").unwrap_or_default();
    let users: Vec<String> = crate::credentials::header::names(&cookies)
        .filter_map(|n| std::str::from_utf8(n).ok()?.strip_prefix("DACS:DEMO::DEMO:"))
        .map(|u| format!("<code>{}</code>", escape(u)))
        .collect();
    let who = match users.is_empty() {
        true => "<p id=\"anonymous\">No credential: on a real site DACS would now ask you to sign \
                 in (the guard leaves that to it). <a href=\"/\">Back to the portal</a>.</p>"
            .to_owned(),
        false => format!(
            "<p id=\"welcome\">Signed in as {}; <code>dacs_guard</code> let the credential \
             through. <a href=\"/\">Back to the portal</a>.</p>",
            users.join(", ")
        ),
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Protected page</title></head><body>\n\
         <h1>Protected page</h1>\n{who}\n</body></html>\n"
    );
    html_page("200 OK", Vec::new(), &body)
}

/// A button's POST from another site (Fetch Metadata, which browsers send): refused, so that no
/// page elsewhere can make the browser press the portal's buttons.
fn from_another_site(request: &HttpRequest) -> Option<Vec<u8>> {
    let site = request.header("Sec-Fetch-Site")?;
    (site != b"same-origin" && site != b"none").then(|| {
        plain(
            "403 Forbidden",
            "the portal's buttons are pressed on the portal, not from another site",
        )
    })
}

/// The demo user a portal button was pressed for: a POST from the portal itself, naming a
/// demo user; else the refusal to send.
fn pressed_for(request: &HttpRequest) -> Result<String, Vec<u8>> {
    if request.method != "POST" {
        return Err(plain(
            "405 Method Not Allowed",
            "the hub's button is a POST form on the portal",
        ));
    }
    if let Some(refused) = from_another_site(request) {
        return Err(refused);
    }
    url::form_urlencoded::parse(&request.body)
        .find(|(name, _)| name == "user")
        .map(|(_, v)| v.into_owned())
        .filter(|u| USERS.contains(&u.as_str()))
        .ok_or_else(|| plain("400 Bad Request", "unknown demo user"))
}

/// The portal's hub button: the receiver called as the hub calls it, and its answer shown.
fn hub_says(request: &HttpRequest, site: &Site) -> Vec<u8> {
    let Ok(network) = &site.network else {
        return plain("404 Not Found", "the guard and the receiver are off in this demo");
    };
    let user = match pressed_for(request) {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let answer = network.hub_says_signed_out(&user, &site.conf, site.port);
    let (head, body) = match answer.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&answer[..i], &answer[i + 4..]),
        None => (&answer[..], &b""[..]),
    };
    let status = String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap_or_default())
        .trim_start_matches("HTTP/1.1 ")
        .to_owned();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>The hub called the receiver</title></head><body>\n\
         <h1>The hub says {user} signed out elsewhere</h1>\n<p>The demo, acting as the logout hub, \
         called <code>dacs_logout_receiver</code> with <code>POST /api/logout/?username={user}</code> \
         and its bearer token. It answered <strong id=\"receiver-status\">{}</strong>:</p>\n\
         <pre id=\"receiver-answer\">{}</pre>\n<p>Now <a id=\"protected\" href=\"/protected/\">the \
         protected page</a> refuses {user}'s credential, and removes it from this browser.</p>\n\
         <p><a href=\"/\">Back to the portal</a></p>\n</body></html>\n",
        escape(&status),
        escape(&String::from_utf8_lossy(body)),
        user = escape(&user),
    );
    html_page("200 OK", Vec::new(), &page)
}

/// The portal's second hub button: an app of the network tells the demo's hub that the user
/// signed out; the page shows the hub's answer, the event's receipt once every receiver has
/// answered, and what the stand-in apps were sent.
fn hub_fanout(request: &HttpRequest, site: &Site) -> Vec<u8> {
    let Ok(network) = &site.network else {
        return plain("404 Not Found", "the hub is off in this demo");
    };
    let user = match pressed_for(request) {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    // A sender passes on the browser's User-Agent; without one, a name of its own (the hub
    // refuses an empty one, as §14 says).
    let user_agent = request
        .header("User-Agent")
        .filter(|ua| !ua.trim_ascii().is_empty())
        .unwrap_or_else(|| b"dacs_signout demo".to_vec());
    let fanout = network.hub.announce(
        &user,
        &String::from_utf8_lossy(&user_agent),
        network.receiver_token(),
        site.port,
    );
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let answer = String::from_utf8_lossy(&fanout.answer.body);
    let (summary, receipt) = match &fanout.receipt {
        Some(receipt) => (
            format!(
                "delivered {}, pending {}, dead {}",
                receipt["summary"]["delivered"],
                receipt["summary"]["pending"],
                receipt["summary"]["dead"]
            ),
            pretty(receipt),
        ),
        None => ("no receipt".to_owned(), String::new()),
    };
    let calls: String =
        fanout.calls.iter().map(|c| format!("<li><code>{}</code></li>", escape(c))).collect();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>The hub fanned out</title></head><body>\n\
         <h1>kcworks told the hub that {user} signed out</h1>\n<p>The hub \
         (<code>dacs_logout_hub</code>, run as a CGI program as if mounted at \
         <code>/api/v1/actions/logout</code>) answered <strong id=\"hub-status\">{}</strong> as soon as \
         the event was on disk:</p>\n<pre id=\"hub-answer\">{}</pre>\n<p>It then called every \
         receiver at once. The event's receipt (the demo asked for it as the sender would, \
         <code>GET /api/v1/actions/logout/&lt;event_id&gt;/</code>): <strong id=\"hub-summary\">{}</strong></p>\n<pre id=\"hub-receipt\">{}</pre>\n\
         <p>What the stand-in apps were sent:</p>\n<ul id=\"app-calls\">{calls}</ul>\n<p>The \
         receiver here revoked {user}'s credentials: <a id=\"protected\" href=\"/protected/\">the \
         protected page</a> now refuses them.</p>\n<p><a href=\"/\">Back to the portal</a></p>\n\
         </body></html>\n",
        escape(&fanout.answer.status),
        escape(&answer),
        escape(&summary),
        escape(&receipt),
        user = escape(&user),
    );
    html_page("200 OK", Vec::new(), &page)
}

/// The signout itself: `dacs_signout` as a CGI child (beside this program, `dacs_signout_cli`;
/// when it is not built, this very executable, which serves CGI too), with the fingerprint
/// key when the registry is on (it revokes what it removes).
fn signout(request: &HttpRequest, site: &Site) -> Vec<u8> {
    let exe = match std::env::current_exe() {
        Ok(exe) if exe.with_file_name("dacs_signout").is_file() => {
            exe.with_file_name("dacs_signout")
        }
        Ok(exe) => exe,
        Err(e) => return cgi::failed("cannot find its own executable", &e),
    };
    let mut env = cgi::environment(request, site.port, "/cgi-bin/dacs_signout");
    env.push(("DACS_SIGNOUT_CONF".into(), site.conf.clone().into()));
    if let Ok(network) = &site.network {
        env.push((OsString::from(network::KEY_VAR), network.key.clone().into()));
    }
    cgi::run(&exe, &env, &request.body)
}

/// The portal is the signout handler of "Sign out (and come back here)": the program sends
/// the browser back with `DACS_VERSION`, `DACS_FEDERATION` and `DACS_JURISDICTION`. Their
/// presence means a signout happened; say so.
fn signed_out_notice(query: &[u8]) -> String {
    let (mut federation, mut jurisdiction) = (None, None);
    for (name, value) in url::form_urlencoded::parse(query) {
        match name.as_ref() {
            "DACS_FEDERATION" => federation = Some(value),
            "DACS_JURISDICTION" => jurisdiction = Some(value),
            _ => {}
        }
    }
    let Some(federation) = federation else { return String::new() };
    let jurisdiction =
        jurisdiction.map(|j| format!(" (jurisdiction {})", escape(&j))).unwrap_or_default();
    format!(
        "<p id=\"notice\" role=\"status\"><strong>Signed out of federation {}{jurisdiction} \u{2014} \
         the credentials listed below are what your browser still sends.</strong></p>\n",
        escape(&federation)
    )
}

/// Signs `user` in with a fresh credential (as DACS would: a new value at each sign-in).
fn signin(request: &HttpRequest) -> Vec<u8> {
    let user = request.query.strip_prefix(b"user=").unwrap_or_default();
    let user = percent_encoding::percent_decode(user).decode_utf8_lossy();
    if !USERS.contains(&user.as_ref()) {
        return plain("400 Bad Request", "unknown demo user");
    }
    let value = network::random_hex().unwrap_or_else(|_| "demo-credential".into());
    let headers = [
        format!("Set-Cookie: DACS:DEMO::DEMO:{user}=demo-{value}; Path=/; HttpOnly"),
        "Set-Cookie: theme=dark; Path=/".to_owned(),
        "Location: /".to_owned(),
    ];
    http("303 See Other", &headers, b"")
}
