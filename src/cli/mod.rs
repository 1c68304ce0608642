//! The command line (no `GATEWAY_INTERFACE`): `--check-config`, `relay`, `demo`, `--version`,
//! `--help`.

pub mod check;
mod demo;
pub mod hub;
mod registry;

use std::io::Write;
use std::path::Path;

use crate::cgi::Env;
use crate::config::{self, Config};
use crate::process::{Context, Streams};
use crate::relay::journal::Journal;
use crate::relay::transport::Http;
use crate::relay::{Courier, RegistryAccess, Route};
use crate::spool::Spool;
use crate::time::Clock;
use crate::version::VERSION;

const USAGE: &str = "\
usage: dacs_signout --check-config [FILE]   check a configuration (default: $DACS_SIGNOUT_CONF,
                                           else /etc/dacs-signout/dacs.conf, else the built-in demo)
       dacs_signout relay [--now]            deliver the spooled hub signals that are due (--now: all)
       dacs_signout demo [--port N]          serve a local demo portal on 127.0.0.1 (default port 8421)
       dacs_signout registry show USER | revoke-user USER [--at UNIX_SECS] | unrevoke-user USER
                             | revoke FINGERPRINT USER | unrevoke FINGERPRINT | purge
                             [--jurisdiction HOST/PATH]   inspect and correct the registry
       dacs_signout --version | --help

Run by a web server (GATEWAY_INTERFACE set), dacs_signout is the DACS signout CGI program and
ignores its arguments. See README.md.
";

pub fn run(env: &Env, args: &[String], io: Streams, context: Context) -> i32 {
    let Streams { stdin, stdout, stderr } = io;
    let clock = context.clock;
    let load = |file: Option<&Path>| match file {
        Some(path) => Config::load_file(path),
        None => Config::load(env, context.default_conf),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--version" | "-V"] => {
            let _ = writeln!(stdout, "dacs_signout {VERSION}");
            0
        }
        ["--help" | "-h"] => {
            let _ = stdout.write_all(USAGE.as_bytes());
            0
        }
        ["relay"] => relay(env, load(None), clock, false, stdout, stderr),
        ["relay", "--now"] => relay(env, load(None), clock, true, stdout, stderr),
        ["relay", "--deliver"] => {
            crate::relay::close_inherited_descriptors();
            match crate::relay::deliver(stdin, &Http::new(None), env, clock) {
                Ok(_) => 0,
                Err(_) => 1,
            }
        }
        ["--check-config"] => check::run(load(None), env, stdout),
        ["--check-config", file] => check::run(load(Some(Path::new(file))), env, stdout),
        ["demo"] => demo::run(env, 8421, stdout, stderr),
        ["demo", "--port", port] => match port.parse() {
            Ok(port) => demo::run(env, port, stdout, stderr),
            Err(_) => usage_error(stderr, &format!("not a port number: {port}")),
        },
        ["registry", rest @ ..] => match load(None) {
            Err((source, e)) => {
                let _ = writeln!(stderr, "dacs_signout registry: {source}: {e}");
                1
            }
            Ok(config) => match registry::run(&config, env, clock, rest, stdout) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(stderr, "dacs_signout registry: {e}");
                    1
                }
            },
        },
        [] => {
            usage_error(stderr, "not run as CGI (GATEWAY_INTERFACE is unset) and no command given")
        }
        [other, ..] => usage_error(stderr, &format!("unknown command {other}")),
    }
}

fn usage_error(stderr: &mut dyn Write, message: &str) -> i32 {
    usage_error_of("dacs_signout", USAGE, stderr, message)
}

/// A command line that is not one of `program`'s: the message, the usage, exit 2.
fn usage_error_of(program: &str, usage: &str, stderr: &mut dyn Write, message: &str) -> i32 {
    let _ = writeln!(stderr, "{program}: {message}\n\n{usage}");
    2
}

/// Drains every spool the configuration names (`Default`'s and any `Jurisdiction`'s) once and
/// prints what it did. Exit 1 when a spool cannot be used.
fn relay(
    env: &Env,
    config: config::Loaded,
    clock: &dyn Clock,
    force: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let config = match config {
        Ok(config) => config,
        Err((source, e)) => {
            let _ = writeln!(stderr, "dacs_signout relay: {source}: {e}");
            return 1;
        }
    };
    let spools = match config.relay_spools() {
        Ok(spools) => spools,
        Err(e) => {
            let _ = writeln!(stderr, "dacs_signout relay: {}: {e}", config.source);
            return 1;
        }
    };
    // Where records may be sent, and with which token: this configuration's hubs only.
    let mut routes: Vec<Route> = Vec::new();
    for route in spools.iter().filter_map(|s| crate::relay::route(env, &s.relay)) {
        if !routes.iter().any(|r| r.endpoint == route.endpoint) {
            routes.push(route);
        }
    }
    if routes.is_empty() && spools.iter().all(|s| s.registry.is_none()) {
        let _ = writeln!(
            stdout,
            "dacs_signout relay: {}: no hub (IDMS_BASE_API_URL, PROFILES_API_URL) and no REGISTRY \
             is configured: nothing to relay",
            config.source
        );
        return 0;
    }
    let mut code = 0;
    for spooled in &spools {
        let settings = &spooled.relay;
        let dir = Path::new(&settings.spool_dir);
        let spool = match Spool::open(dir, settings.spool_max) {
            Ok(spool) => spool,
            // Never created: nothing was ever spooled there. A drainer creates no spool.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = writeln!(
                    stdout,
                    "dacs_signout relay: {}: no spool yet, nothing to drain",
                    dir.display()
                );
                continue;
            }
            Err(e) => {
                let _ = writeln!(stderr, "dacs_signout relay: spool {}: {e}", dir.display());
                code = 1;
                continue;
            }
        };
        let journal = Journal::open(settings.log.as_deref().map(Path::new), Some(&spool));
        let registry =
            spooled.registry.as_ref().map(|r| RegistryAccess::new(r, &spooled.federation));
        let http = Http::new(None);
        let courier = Courier {
            routes: &routes,
            registry: registry.as_ref(),
            transport: &http,
            env,
            clock,
            journal: &journal,
            deadline: None,
        };
        match crate::relay::drain(&courier, &spool, force, crate::relay::stale_after(settings)) {
            Ok(c) => {
                let _ = writeln!(
                    stdout,
                    "dacs_signout relay: {}: delivered={} retried={} dead={} not_due={} busy={} \
                     reclaimed={} revoked={}",
                    settings.spool_dir,
                    c.delivered,
                    c.retried,
                    c.dead,
                    c.not_due,
                    c.busy,
                    c.reclaimed,
                    c.revoked
                );
            }
            Err(e) => {
                let _ = writeln!(stderr, "dacs_signout relay: spool {}: {e}", settings.spool_dir);
                code = 1;
            }
        }
    }
    code
}
