//! `dacs_signout`: the DACS signout service as one CGI/1.1 program.
//!
//! A request flows one way: the environment snapshot ([`cgi::Env`]) becomes a validated
//! [`cgi::Request`]; the configuration ([`config`]) gives the [`config::Settings`] of the
//! jurisdiction; [`policy::decide`] selects the credential cookies to expire and where the
//! browser goes; [`render`] writes HTML, XML or JSON; [`serve`] returns the response and the
//! log line, and [`run`] writes them. When a logout hub is configured, [`relay`] turns the removed
//! identities into signals: [`run`] writes them to the spool before the response and starts the
//! detached delivery child after it. The outside world is touched only by `main`, [`run`],
//! [`config::Config::load`], the handler page read, and the relay's spool and transport.

// One audited exception: `relay::close_inherited_descriptors` (see its SAFETY comment).
#![deny(unsafe_code)]

pub mod cgi;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod error;
pub mod log;
pub mod policy;
pub mod relay;
pub mod render;

use std::io::{Read, Write};

use cgi::{Env, Request, Response};
use config::Config;
use error::Error;
use log::LogLine;
use policy::Page;
use render::Format;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One served request: the response, whether to send its body, the log line, the exit code.
pub struct Served {
    pub response: Response,
    pub head_only: bool,
    pub log: LogLine,
    pub exit_code: i32,
    /// The signals for the logout hub, when one is configured and something was removed.
    pub relay: Option<relay::Plan>,
}

impl Served {
    /// The bytes for stdout. A response that cannot be written safely becomes a 500.
    pub fn bytes(&mut self, format: Format) -> Vec<u8> {
        match self.response.to_bytes(self.head_only) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.fail(&e);
                let response = render::error(&e, format);
                response.to_bytes(self.head_only).expect("error pages have clean headers")
            }
        }
    }

    fn fail(&mut self, e: &Error) {
        self.exit_code = e.exit_code();
        self.log.set("status", e.status().0).set("error", &e.message);
        if let Some(detail) = &e.detail {
            self.log.set("detail", detail);
        }
    }
}

/// Serves one CGI request.
pub fn serve(env: &Env, stdin: &mut dyn Read) -> (Served, Format) {
    serve_at(env, stdin, relay::spool::now())
}

/// Serves one CGI request at `now` (Unix seconds, stamped on relay signals).
pub fn serve_at(env: &Env, stdin: &mut dyn Read, now: u64) -> (Served, Format) {
    let mut log = LogLine::default();
    let early = Format::sniff(env.raw("QUERY_STRING").unwrap_or_default());
    let head_only = env.raw("REQUEST_METHOD") == Some(b"HEAD");
    let failure = |e: Error, format: Format, mut log: LogLine| {
        log.set("format", format.as_str());
        let mut served = Served {
            response: render::error(&e, format),
            head_only,
            log,
            exit_code: 0,
            relay: None,
        };
        served.fail(&e);
        (served, format)
    };
    let request = match Request::read(env, stdin) {
        Ok(r) => r,
        Err(e) => return failure(e, early, log),
    };
    let format = request.args.format;
    log.set("method", request.method.as_str());
    let config = match Config::load(env) {
        Ok(config) => config,
        Err((source, e)) => {
            let e =
                Error::internal("the signout service is misconfigured", format!("{source}: {e}"));
            return failure(e, format, log);
        }
    };
    log.set("config", &config.source);
    let settings = match config.settings(&request.server.host_path()) {
        Ok(s) => s,
        Err(e) => {
            let e = Error::internal(
                "the signout service is misconfigured",
                format!("{}: {e}", config.source),
            );
            return failure(e, format, log);
        }
    };
    log.set("federation", &settings.federation_name);
    let decision = match policy::decide(&request, &settings) {
        Ok(d) => d,
        Err(e) => return failure(e, format, log),
    };
    let file_page = match &decision.page {
        Page::File(path) if format == Format::Html => match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                log.set("handler_error", format!("{}: {e}", path.display()));
                None
            }
        },
        _ => None,
    };
    let response = render::answer(&decision, &settings, format, file_page);
    log.set("status", response.status)
        .set("format", format.as_str())
        .set("removed", decision.selection.removed.len())
        .set("remain", decision.selection.remaining.len())
        .set("handler", &decision.handler_note);
    let relay = match relay::endpoint(env, &settings.relay) {
        None => {
            log.set("relay", "off");
            None
        }
        Some(endpoint) => {
            let ua = request.user_agent.as_deref();
            match relay::plan(endpoint, &decision.selection.removed, &settings.relay, ua, now) {
                Ok(plan) => {
                    log.set("relay", if plan.is_some() { "planned" } else { "none" });
                    plan
                }
                Err(e) => {
                    log.set("relay", format!("error: {e}"));
                    None
                }
            }
        }
    };
    if let Some(addr) = &request.server.remote_addr {
        log.set("remote", addr);
    }
    (Served { response, head_only, log, exit_code: 0, relay }, format)
}

/// The whole program: CGI when `GATEWAY_INTERFACE` is set (argv is then never read: Apache
/// passes query words as arguments), else the command line.
pub fn run(
    env: &Env,
    args: &[String],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    if env.is_set("GATEWAY_INTERFACE") {
        let (mut served, format) = serve(env, stdin);
        // Durable before the response goes out (§9).
        if let Some(plan) = served.relay.as_mut() {
            let note = plan.persist();
            served.log.set("relay", note);
        }
        let bytes = served.bytes(format);
        let written = stdout.write_all(&bytes).and_then(|()| stdout.flush());
        if let Some(plan) = &served.relay {
            if let Err(e) = plan.launch() {
                served.log.set("relay_launch", format!("failed: {e}"));
            }
        }
        let _ = stderr.write_all(served.log.render().as_bytes());
        if written.is_err() { 1 } else { served.exit_code }
    } else {
        cli::run(env, args, stdin, stdout, stderr)
    }
}
