//! Running a program as a CGI child (RFC 3875), as a web server does, and its answer.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::http::{HttpRequest, http, plain, separator};

/// A CGI program's answer (its own header block, or a FastCGI authorizer's): the `Status`,
/// the other header lines and the body.
pub struct Answer {
    pub status: String,
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl Answer {
    /// Splits a CGI response at its blank line; `None` without one.
    pub fn parse(output: &[u8]) -> Option<Answer> {
        let split = output.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let (head, body) = output.split_at(split);
        let mut answer = Answer { status: "200 OK".into(), headers: Vec::new(), body: body.into() };
        for line in String::from_utf8_lossy(head).lines().filter(|l| !l.is_empty()) {
            match line.strip_prefix("Status: ") {
                Some(s) => answer.status = s.to_owned(),
                None => answer.headers.push(line.to_owned()),
            }
        }
        Some(answer)
    }

    /// The status code.
    pub fn code(&self) -> u16 {
        self.status.get(..3).and_then(|c| c.parse().ok()).unwrap_or(500)
    }

    /// As an HTTP response.
    pub fn to_http(&self) -> Vec<u8> {
        http(&self.status, &self.headers, &self.body)
    }
}

/// The CGI variable for a header, as Apache and nginx name it (RFC 3875 §4.1.18), or `None`
/// for one a real server does not pass: `Authorization` (Apache withholds it), `Proxy`
/// (httpoxy), a name with anything but letters, digits and `-` (both servers drop them), and
/// the two the body's variables stand for.
fn cgi_variable(header: &str) -> Option<String> {
    let withheld = ["Authorization", "Proxy", "Content-Length", "Content-Type"];
    if withheld.iter().any(|w| header.eq_ignore_ascii_case(w))
        || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    Some(format!("HTTP_{}", header.to_ascii_uppercase().replace('-', "_")))
}

/// The environment a server gives a CGI program for `request`: the query and the headers as
/// the bytes the client sent (an environment variable may hold any byte but NUL), the program
/// decides what it accepts. No `REMOTE_USER`: the demo authenticates nobody.
pub fn environment(
    request: &HttpRequest,
    port: u16,
    script_name: &str,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = [
        ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
        ("SERVER_PROTOCOL", "HTTP/1.1".to_owned()),
        ("SERVER_NAME", "127.0.0.1".to_owned()),
        ("SERVER_PORT", port.to_string()),
        ("SCRIPT_NAME", script_name.to_owned()),
        ("REMOTE_ADDR", "127.0.0.1".to_owned()),
        ("REQUEST_METHOD", request.method.clone()),
        ("CONTENT_LENGTH", request.body.len().to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.into(), value.into()))
    .collect();
    env.push(("QUERY_STRING".into(), OsStr::from_bytes(&request.query).into()));
    if let Some(value) = request.header("Content-Type") {
        env.push(("CONTENT_TYPE".into(), OsStr::from_bytes(&value).into()));
    }
    // Every header, as a real server passes them: among them Cookie, User-Agent, the Fetch
    // Metadata (Sec-Fetch-Site, -Mode, -Dest, -User) and the prefetch markers (Sec-Purpose,
    // Purpose, X-Moz, X-Purpose) that the program reads.
    let mut vars: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (name, value) in &request.headers {
        let Some(var) = cgi_variable(name) else { continue };
        let joined = vars.entry(var).or_default();
        if !joined.is_empty() {
            joined.extend_from_slice(separator(name));
        }
        joined.extend_from_slice(value);
    }
    env.extend(vars.into_iter().map(|(var, value)| (var.into(), OsStr::from_bytes(&value).into())));
    env
}

/// Runs `program` as a CGI child with exactly `env`, `body` on its standard input, and turns
/// its output into an HTTP response.
pub fn run(program: &Path, env: &[(OsString, OsString)], body: &[u8]) -> Vec<u8> {
    answer(program, env, body).map_or_else(|failure| failure, |answer| answer.to_http())
}

/// As `run`, the program's answer; `Err` holds the demo's own HTTP response when the program
/// could not be run or gave no CGI header.
pub fn answer(
    program: &Path,
    env: &[(OsString, OsString)],
    body: &[u8],
) -> Result<Answer, Vec<u8>> {
    let mut command = Command::new(program);
    command.env_clear().envs(env.iter().map(|(n, v)| (n, v)));
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Err(failed(&format!("cannot start {}", program.display()), &e)),
    };
    let stdin = child.stdin.take();
    // The body goes in from a thread of its own while the output is read: a program that
    // answers without reading all of it (a 413, a 415) closes its stdin, and that is not an
    // error of the demo's.
    let output = std::thread::scope(|scope| {
        if let Some(mut stdin) = stdin {
            scope.spawn(move || {
                let _ = stdin.write_all(body);
            });
        }
        child.wait_with_output()
    });
    let text = match output {
        Ok(output) => output.stdout,
        Err(e) => return Err(failed("cannot read the program's output", &e)),
    };
    Answer::parse(&text).ok_or_else(|| {
        plain(
            "502 Bad Gateway",
            "502 Bad Gateway: the program's output has no CGI header (see the demo's stderr)",
        )
    })
}

/// A 500 for a child that could not be run.
pub fn failed(what: &str, error: &io::Error) -> Vec<u8> {
    crate::log::to_stderr(format_args!("dacs_signout demo: {what}: {error}"));
    plain(
        "500 Internal Server Error",
        &format!("500 Internal Server Error: the demo {what}: {error}"),
    )
}
