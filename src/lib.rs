//! `dacs_signout`: the DACS signout service as one CGI/1.1 program, and the library its
//! programs share.
//!
//! A request flows one way: the environment snapshot ([`Env`]) becomes a validated request
//! (`cgi`); the configuration (`config`, loaded here at the edge) gives the jurisdiction's
//! rules; `policy` decides what to expire and where the browser goes; `render` writes HTML,
//! XML or JSON; `signout` is that pipeline, and records what happened as the request's one
//! log line. When a logout hub is configured, `relay` turns the removed identities into
//! signals: [`run`] writes them to the spool before the response and starts the detached
//! delivery child after it.
//!
//! The layers, bottom to top (a module imports only modules before it; the test
//! `tests/it/layers.rs` checks it):
//!
//! ```text
//! version  error  time  process  urls  log    foundations: no I/O
//! credentials                          DACS identities, the Cookie header, selection, expiry
//! cgi                                  the CGI boundary: environment, arguments, body, response
//! policy                               the signout decision (pure)
//! render                               HTML, XML, JSON (pure)
//! relay                                the hub signal; the spool and the HTTP client (I/O)
//! config                               dacs.conf, interpreted into each layer's settings
//! signout                              the signout role's pipeline and its log line
//! cli                                  the command line and the demo (I/O)
//! ```
//!
//! The outside world is touched only by `main`, [`run`], `Config::load`, the handler page
//! read (a function passed in), `relay` (spool, child, transport) and `cli`.

mod cgi;
mod cli;
mod config;
pub mod credentials;
mod error;
mod fastcgi;
pub mod guard;
mod hub;
mod log;
mod policy;
mod process;
mod receiver;
pub mod registry;
mod relay;
mod render;
mod safe_fs;
mod signout;
mod spool;
mod time;
mod urls;
mod version;

use std::io::Write;
use std::path::Path;

pub use cgi::Env;
pub use process::{Context, Streams};
pub use version::VERSION;

/// `dacs_signout`: the signout CGI program. Run by a web server (`GATEWAY_INTERFACE` set) it
/// serves the request, and never reads argv (Apache passes query words as arguments). Run
/// from a shell, it hands its arguments, environment and streams to `dacs_signout_cli` beside
/// it (which is [`run`]) by `exec`: the command line and the relay's
/// delivery need the TLS client and the registry's stores, which a request never uses, and
/// which left out of this program make each request cheaper (BENCHMARKS.md, "The build").
pub fn signout(env: &Env, args: &[String], streams: Streams) -> i32 {
    if env.is_set("GATEWAY_INTERFACE") {
        let context =
            Context { clock: &time::SystemClock, default_conf: Path::new(config::DEFAULT_PATH) };
        return cgi_request(env, streams, context);
    }
    if let [one] = args
        && (one == "--version" || one == "-V")
    {
        // As the command line answers it: what `scripts/install` asks of the program it installs.
        let _ = writeln!(streams.stdout, "dacs_signout {VERSION}");
        return 0;
    }
    use std::os::unix::process::CommandExt;
    // `exec` returns only on a failure; on success the command line's exit status is ours.
    let (cli, error) = match process::beside_this(process::CLI_PROGRAM) {
        Ok(path) => {
            let error = std::process::Command::new(&path).args(args).exec();
            (path.display().to_string(), error)
        }
        Err(e) => (process::CLI_PROGRAM.to_owned(), e),
    };
    let _ = writeln!(
        streams.stderr,
        "dacs_signout: its command line is {cli}, installed beside it: {error}"
    );
    127
}

/// The whole program, `dacs_signout_cli`: CGI when `GATEWAY_INTERFACE` is set (argv is then
/// never read: Apache passes query words as arguments), else the command line
/// (`--check-config`, `relay`, `registry`, `demo`), and the relay's delivery child.
pub fn run(env: &Env, args: &[String], streams: Streams) -> i32 {
    let context =
        Context { clock: &time::SystemClock, default_conf: Path::new(config::DEFAULT_PATH) };
    dispatch(env, args, streams, context)
}

fn dispatch(env: &Env, args: &[String], streams: Streams, context: Context) -> i32 {
    if env.is_set("GATEWAY_INTERFACE") {
        cgi_request(env, streams, context)
    } else {
        cli::run(env, args, streams, context)
    }
}

/// One CGI request: the configuration read, the signout served, the signals made durable
/// before the response (§9), the response written, the delivery child started, the log line.
fn cgi_request(env: &Env, io: Streams, context: Context) -> i32 {
    let config = config::Config::load(env, context.default_conf);
    let now = context.clock.now();
    let mut stdin = cgi::body::Stdin::new(io.stdin);
    let served = signout::serve(env, &mut stdin, &config, now, &|path| std::fs::read(path));
    stdin.discard_rest(env);
    let (bytes, mut outcome, mut plan) = served.finish();
    let persisted = plan.as_mut().map(relay::Plan::persist);
    if let (Some(plan), Some(persisted)) = (&plan, &persisted) {
        outcome.relay = plan.note(persisted).or(outcome.relay);
        outcome.revoke = plan.revoke_note(Some(persisted)).or(outcome.revoke);
    }
    let written = io.stdout.write_all(&bytes).and_then(|()| io.stdout.flush());
    if let (Some(plan), Some(persisted)) = (&plan, &persisted)
        && persisted.delivers()
        && let Err(e) = plan.launch(env)
    {
        outcome.relay_launch = Some(e.to_string());
    }
    let _ = io.stderr.write_all(outcome.log_line().as_bytes());
    if written.is_err() { 1 } else { outcome.exit_code() }
}

/// `dacs_logout_receiver`: the receiver (§11), a CGI program.
pub fn receiver(env: &Env, _args: &[String], io: Streams) -> i32 {
    let context =
        Context { clock: &time::SystemClock, default_conf: Path::new(config::DEFAULT_PATH) };
    receiver_request(env, io, context)
}

fn receiver_request(env: &Env, io: Streams, context: Context) -> i32 {
    let config = config::Config::load(env, context.default_conf);
    let mut stdin = cgi::body::Stdin::new(io.stdin);
    let (response, outcome) = receiver::serve(env, &mut stdin, &config, context.clock.now());
    stdin.discard_rest(env);
    let bytes = response.to_bytes(false).unwrap_or_else(|e| {
        render::error(&e, cgi::Format::Json)
            .to_bytes(false)
            .expect("error pages have clean headers")
    });
    let written = io.stdout.write_all(&bytes).and_then(|()| io.stdout.flush());
    let _ = io.stderr.write_all(outcome.log_line().as_bytes());
    if written.is_err() { 1 } else { outcome.exit_code() }
}

/// `dacs_logout_hub`: the hub (§14), a CGI program (`POST .../actions/logout/` from senders,
/// receipts), and its command line (the delivery process, the drain, receipts).
pub fn hub(env: &Env, args: &[String], io: Streams) -> i32 {
    let context =
        Context { clock: &time::SystemClock, default_conf: Path::new(config::DEFAULT_PATH) };
    hub_dispatch(env, args, io, context)
}

fn hub_dispatch(env: &Env, args: &[String], io: Streams, context: Context) -> i32 {
    if !env.is_set("GATEWAY_INTERFACE") {
        return cli::hub::run(env, args, io, context);
    }
    let config = config::Config::load(env, context.default_conf);
    let mut stdin = cgi::body::Stdin::new(io.stdin);
    let served = hub::serve::serve(env, &mut stdin, &config, context.clock.now(), random_128());
    stdin.discard_rest(env);
    let mut outcome = served.outcome;
    let bytes = served.response.to_bytes(served.head_only).unwrap_or_else(|e| {
        render::error(&e, cgi::Format::Json)
            .to_bytes(false)
            .expect("error pages have clean headers")
    });
    let written = io.stdout.write_all(&bytes).and_then(|()| io.stdout.flush());
    if let Some(handoff) = &served.handoff {
        outcome.delivery = Some(hub::hand_off(env, handoff));
    }
    let _ = io.stderr.write_all(outcome.log_line().as_bytes());
    if written.is_err() { 1 } else { outcome.exit_code() }
}

/// 128 bits from the kernel's random source (an event id's secret part).
fn random_128() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            // No kernel source at all (before Linux 3.17): /dev/urandom, else abort the
            // request rather than make a guessable id.
            Err(_) => {
                use std::io::Read;
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut bytes))
                    .expect("a source of random bytes");
                break;
            }
        }
    }
    bytes
}

/// `dacs_guard`: the guard (§13), a FastCGI daemon in the foreground.
///
/// `dacs_guard --listen unix:PATH | tcp:HOST:PORT [--jurisdiction HOST/PATH] [--workers N]`
pub fn guard(env: &Env, args: &[String], io: Streams) -> i32 {
    const USAGE: &str = "usage: dacs_guard --listen unix:/PATH | tcp:HOST:PORT \
                         [--jurisdiction HOST/PATH] [--workers N]";
    let mut listen = None;
    let mut section = String::new();
    let mut workers = 8;
    let mut rest = args.iter().map(String::as_str);
    while let Some(arg) = rest.next() {
        let parsed = match (arg, rest.next()) {
            ("--listen", Some(value)) => {
                guard::server::Listen::parse(value).map(|l| listen = Some(l))
            }
            ("--jurisdiction", Some(value)) => {
                section = value.to_owned();
                Ok(())
            }
            ("--workers", Some(value)) => value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .map(|n| workers = n)
                .ok_or_else(|| format!("--workers takes 1 to 256, not {value:?}")),
            (other, _) => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = parsed {
            let _ = writeln!(io.stderr, "dacs_guard: {e}\n{USAGE}");
            return 2;
        }
    }
    let Some(listen) = listen else {
        let _ = writeln!(io.stderr, "dacs_guard: --listen is required\n{USAGE}");
        return 2;
    };
    // The section named at the start, never one a request's Host chooses: a server does not
    // tell an authorizer its SCRIPT_NAME.
    let settings = match config::Config::load(env, Path::new(config::DEFAULT_PATH)) {
        Err((source, e)) => Err(format!("{source}: {e}")),
        Ok(config) => config.settings(&section).map_err(|e| format!("{}: {e}", config.source)),
    };
    let guard = match settings.and_then(|s| guard::Guard::new(s, env)) {
        Ok(guard) => std::sync::Arc::new(guard),
        Err(e) => {
            let _ = writeln!(io.stderr, "dacs_guard: {e}");
            return 1;
        }
    };
    match guard::server::serve(guard, &listen, workers, io.stderr) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(io.stderr, "dacs_guard: {e}");
            1
        }
    }
}

/// The start of every program: `SIGPIPE` ignored (a client that went away makes a write fail,
/// not kill the process), argv and the environment read, the standard streams locked, `role`
/// run. The programs' C entry points call it: they skip the Rust runtime's start-up, which
/// costs a CGI program more than its work (`src/main.rs`).
///
/// # Safety
///
/// `argv` must hold `argc` valid pointers to NUL-terminated strings, alive for the whole
/// process, as the C runtime passes them to `main`.
#[allow(unsafe_code)] // audited: `signal` and reading argv, once, before any thread exists
pub unsafe fn start(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    role: fn(&Env, &[String], Streams) -> i32,
) -> i32 {
    // SAFETY: `signal` with `SIG_IGN` installs no handler code; it only changes the
    // disposition of SIGPIPE, as std's runtime start-up does, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let args: Vec<String> = (1..usize::try_from(argc).unwrap_or(0))
        // SAFETY: the caller passes `argc` valid pointers to NUL-terminated strings in `argv`.
        .map(|i| unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) }.to_string_lossy().into_owned())
        .collect();
    let env = Env::from_os(std::env::vars_os());
    let mut stdout = std::io::stdout().lock();
    // stderr unlocked: the guard's workers write to it too (each line is one write).
    let streams = Streams {
        stdin: &mut std::io::stdin().lock(),
        stdout: &mut stdout,
        stderr: &mut std::io::stderr(),
    };
    let code = role(&env, &args, streams);
    // std's runtime would flush stdout at exit; without it, flush here (a failure changes
    // nothing: the CGI path has already flushed and reported its own write errors).
    let _ = stdout.flush();
    code
}

/// What the test suite, the benchmarks and the fuzz targets reach into. Not an API: it
/// changes with the code.
#[doc(hidden)]
pub mod testing {
    use std::io::Read;
    use std::path::Path;

    pub use crate::cgi::args::Arguments;
    pub use crate::config::{Config, Form, Hub, HubReceiver, Loaded, Settings, Source};
    pub use crate::fastcgi::{Conversation, Step, read_record};
    pub use crate::hub::body::{Logout, parse as hub_body};
    pub use crate::hub::event::{Delivery, EventId};
    pub use crate::policy::handler::{AllowRule, allowed, location};
    pub use crate::receiver::{identities, read as receiver_read};
    pub use crate::registry::Revocation;
    pub use crate::relay::Payload;
    pub use crate::relay::signal::Signal;
    pub use crate::signout::{Outcome, Served, serve};
    pub use crate::spool::{Claim, Record, Spool};
    pub use crate::time::{Clock, Fixed, SystemClock, from_unix_secs, rfc3339, unix_secs};

    /// [`crate::run`] in a context of the caller's choosing: the configuration path the
    /// programs fall back to (`/etc/dacs-signout/dacs.conf`) may exist on the test machine.
    pub fn run_in(
        env: &crate::Env,
        args: &[String],
        streams: crate::Streams,
        context: crate::Context,
    ) -> i32 {
        crate::dispatch(env, args, streams, context)
    }

    /// [`crate::hub`] in a context of the caller's choosing.
    pub fn hub_in(
        env: &crate::Env,
        args: &[String],
        streams: crate::Streams,
        context: crate::Context,
    ) -> i32 {
        crate::hub_dispatch(env, args, streams, context)
    }

    /// Serves `env` on the configuration it names (or the built-in demo), reading handler
    /// pages from disk: what a CGI request does, without the relay's I/O.
    pub fn serve_env(env: &crate::Env, body: &mut dyn Read) -> Served {
        let config = Config::load(env, Path::new("/nonexistent/dacs-signout/dacs.conf"));
        serve(env, body, &config, SystemClock.now(), &|p| std::fs::read(p))
    }
}
