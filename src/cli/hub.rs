//! `dacs_logout_hub` on the command line: the delivery process, the drain, receipts, the
//! configuration check.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rustix::fs::FlockOperation;

use crate::cgi::Env;
use crate::config::{self, Config, Hub};
use crate::hub::deliver::{self, Courier, Run};
use crate::hub::event::EventId;
use crate::hub::{instance, receipt};
use crate::process::{Context, Streams};
use crate::relay::journal::Journal;
use crate::relay::transport::Http;
use crate::spool::Spool;
use crate::version::VERSION;

const USAGE: &str = "\
usage: dacs_logout_hub deliver [--until-idle] [--jurisdiction HOST/PATH]
                                         the delivery process: one pool of workers for the hub,
                                         each delivery attempted when due (systemd runs it; a
                                         request starts one with --until-idle when none runs)
       dacs_logout_hub drain [--now] [--jurisdiction HOST/PATH]
                                         one pass over the deliveries that are due (--now: all)
       dacs_logout_hub status [EVENT_ID] [--jurisdiction HOST/PATH]
                                         the spool's counts, or one event's receipt
       dacs_logout_hub --check-config [FILE]
       dacs_logout_hub --version | --help

Run by a web server (GATEWAY_INTERFACE set), dacs_logout_hub is the hub's CGI program:
POST .../actions/logout/ from senders, GET .../actions/logout/EVENT_ID/ for receipts.
";

/// How long the delivery process a request started stays once nothing is due.
const LINGER: Duration = Duration::from_secs(15);

pub fn run(env: &Env, args: &[String], io: Streams, context: Context) -> i32 {
    let Streams { stdout, stderr, .. } = io;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut section = String::new();
    if let Some(at) = args.iter().position(|a| *a == "--jurisdiction") {
        match args.get(at + 1) {
            Some(value) => section = (*value).to_owned(),
            None => return usage_error(stderr, "--jurisdiction takes HOST/PATH"),
        }
        args.drain(at..at + 2);
    }
    let load = || Config::load(env, context.default_conf);
    match args.as_slice() {
        ["--version" | "-V"] => {
            let _ = writeln!(stdout, "dacs_logout_hub {VERSION}");
            0
        }
        ["--help" | "-h"] => {
            let _ = stdout.write_all(USAGE.as_bytes());
            0
        }
        ["--check-config"] => check(load(), env, stdout),
        ["--check-config", file] => check(Config::load_file(Path::new(file)), env, stdout),
        ["deliver"] => with_hub(load(), &section, stderr, |hub, err| deliver(env, hub, false, err)),
        ["deliver", "--until-idle"] => {
            crate::relay::close_inherited_descriptors();
            with_hub(load(), &section, stderr, |hub, err| deliver(env, hub, true, err))
        }
        ["drain"] => {
            with_hub(load(), &section, stderr, |hub, err| drain(env, hub, false, stdout, err))
        }
        ["drain", "--now"] => {
            with_hub(load(), &section, stderr, |hub, err| drain(env, hub, true, stdout, err))
        }
        ["status"] => with_hub(load(), &section, stderr, |hub, err| status(hub, None, stdout, err)),
        ["status", id] => {
            with_hub(load(), &section, stderr, |hub, err| status(hub, Some(id), stdout, err))
        }
        [] => {
            usage_error(stderr, "not run as CGI (GATEWAY_INTERFACE is unset) and no command given")
        }
        [other, ..] => usage_error(stderr, &format!("unknown command {other}")),
    }
}

fn usage_error(stderr: &mut dyn Write, message: &str) -> i32 {
    super::usage_error_of("dacs_logout_hub", USAGE, stderr, message)
}

/// Runs `f` on the hub of `section` (`Default` when empty), or says why there is none.
fn with_hub(
    config: config::Loaded,
    section: &str,
    stderr: &mut dyn Write,
    f: impl FnOnce(&Hub, &mut dyn Write) -> i32,
) -> i32 {
    let hub = match config {
        Err((source, e)) => Err(format!("{source}: {e}")),
        Ok(config) => match config.hub(section) {
            Err(e) => Err(format!("{}: {e}", config.source)),
            Ok(None) => Err(format!("{}: no hub is configured (HUB_RECEIVER)", config.source)),
            Ok(Some(hub)) => Ok(hub),
        },
    };
    match hub {
        Ok(hub) => f(&hub, stderr),
        Err(e) => {
            let _ = writeln!(stderr, "dacs_logout_hub: {e}");
            1
        }
    }
}

/// The spool of `hub`, which requests create: a command creates none.
fn open_spool(hub: &Hub, stderr: &mut dyn Write) -> Option<Spool> {
    match Spool::open(Path::new(&hub.spool_dir), hub.spool_max) {
        Ok(spool) => Some(spool),
        Err(e) => {
            let _ = writeln!(stderr, "dacs_logout_hub: spool {}: {e}", hub.spool_dir);
            None
        }
    }
}

fn drain(env: &Env, hub: &Hub, force: bool, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let spool = match Spool::open(Path::new(&hub.spool_dir), hub.spool_max) {
        Ok(spool) => spool,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let _ = writeln!(stdout, "dacs_logout_hub drain: {}: no spool yet", hub.spool_dir);
            return 0;
        }
        Err(e) => {
            let _ = writeln!(stderr, "dacs_logout_hub: spool {}: {e}", hub.spool_dir);
            return 1;
        }
    };
    match with_courier(env, hub, &spool, |courier| deliver::drain(courier, force)) {
        Ok(c) => {
            let _ = writeln!(
                stdout,
                "dacs_logout_hub drain: {}: delivered={} retried={} dead={} not_due={} busy={} \
                 reclaimed={} errors={}",
                hub.spool_dir,
                c.delivered,
                c.retried,
                c.dead,
                c.not_due,
                c.busy,
                c.reclaimed,
                c.errors
            );
            i32::from(c.errors > 0)
        }
        Err(e) => {
            let _ = writeln!(stderr, "dacs_logout_hub drain: {}: {e}", hub.spool_dir);
            1
        }
    }
}

/// Runs `f` with what a delivery needs: the log (`HUB_LOG`, else `hub.log` in the spool), one
/// HTTP client for every call, the system clock, and stderr for what must be seen at once.
fn with_courier<T>(env: &Env, hub: &Hub, spool: &Spool, f: impl FnOnce(&Courier) -> T) -> T {
    let journal = Journal::named(hub.log.as_deref().map(Path::new), Some(spool), "hub.log");
    let transport = Http::new(Some(Duration::from_secs(hub.connect_timeout_secs)));
    let alert = |line: &str| eprint!("{line}");
    f(&Courier {
        hub,
        spool,
        transport: &transport,
        env,
        clock: &crate::time::SystemClock,
        journal: &journal,
        alert: &alert,
    })
}

/// The delivery process. One per spool (it holds the spool's lock for its whole life): the
/// long-running one waits for the lock; one a request started (`until_idle`) leaves at once
/// when another holds it, since that one will see the request's records.
fn deliver(env: &Env, hub: &Hub, until_idle: bool, stderr: &mut dyn Write) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            let _ = writeln!(stderr, "dacs_logout_hub deliver: signal {signal}: {e}");
            return 1;
        }
    }
    // The first request creates the spool, as the web server's user: the long-running process
    // waits for it rather than make one another user might own.
    let mut waiting = false;
    let spool = loop {
        match Spool::open(Path::new(&hub.spool_dir), hub.spool_max) {
            Ok(spool) => break spool,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && !until_idle
                    && !stop.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                if !waiting {
                    let _ = writeln!(
                        stderr,
                        "dacs_logout_hub deliver: spool {}: {e}; waiting for the first request \
                         to create it",
                        hub.spool_dir
                    );
                    waiting = true;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                let _ = writeln!(stderr, "dacs_logout_hub: spool {}: {e}", hub.spool_dir);
                return 1;
            }
        }
    };
    let socket_path = spool.path().join(deliver::WAKE_SOCKET);
    if !until_idle {
        let _ = writeln!(
            stderr,
            "dacs_logout_hub deliver: {}: up to {} workers, instance {}",
            hub.spool_dir,
            hub.workers,
            instance(hub)
        );
    }
    loop {
        let lock = match spool.state_file(deliver::LOCK) {
            Ok(lock) => lock,
            Err(e) => {
                let _ = writeln!(stderr, "dacs_logout_hub deliver: lock: {e}");
                return 1;
            }
        };
        let how = if until_idle {
            FlockOperation::NonBlockingLockExclusive
        } else {
            FlockOperation::LockExclusive
        };
        if rustix::fs::flock(&lock, how).is_err() {
            return 0; // another delivery process has the spool, and will see its records
        }
        // Who holds it, for operators (and tests that stop it).
        let _ = lock
            .set_len(0)
            .and_then(|()| (&lock).write_all(format!("{}\n", std::process::id()).as_bytes()));
        // The lock is ours: a socket left by a process that died is stale.
        let _ = std::fs::remove_file(&socket_path);
        let socket = UnixDatagram::bind(&socket_path).ok();
        let run = Run { wake: socket.as_ref(), linger: until_idle.then_some(LINGER), stop: &stop };
        let served = with_courier(env, hub, &spool, |courier| deliver::serve(courier, &run));
        // Going: the socket first (a request that cannot wake us starts another process),
        // then the lock; then one more look, for records put while we were leaving.
        drop(socket);
        let _ = std::fs::remove_file(&socket_path);
        drop(lock);
        if let Err(e) = served {
            let _ = writeln!(stderr, "dacs_logout_hub deliver: {}: {e}", hub.spool_dir);
            return 1;
        }
        if !until_idle || stop.load(std::sync::atomic::Ordering::Relaxed) || !anything_due(&spool) {
            return 0;
        }
    }
}

fn anything_due(spool: &Spool) -> bool {
    let now = crate::time::unix_secs(std::time::SystemTime::now());
    spool.waiting().unwrap_or_default().iter().any(|id| {
        spool.peek::<crate::hub::event::Delivery>(id).is_none_or(|d| d.next_attempt <= now)
    })
}

fn status(hub: &Hub, id: Option<&str>, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let Some(spool) = open_spool(hub, stderr) else { return 1 };
    match id {
        None => match spool.counts() {
            Ok([new, work, dead]) => {
                let _ = writeln!(
                    stdout,
                    "dacs_logout_hub: {}: instance {}: waiting={new} under_way={work} dead={dead}",
                    hub.spool_dir,
                    instance(hub)
                );
                0
            }
            Err(e) => {
                let _ = writeln!(stderr, "dacs_logout_hub: spool {}: {e}", hub.spool_dir);
                1
            }
        },
        Some(text) => {
            let Some(id) = EventId::parse(text) else {
                let _ = writeln!(stderr, "dacs_logout_hub: {text:?} is not an event id");
                return 1;
            };
            if id.instance != instance(hub) {
                let _ = writeln!(
                    stderr,
                    "dacs_logout_hub: event {text} is held by hub instance {}, not this one ({})",
                    id.instance,
                    instance(hub)
                );
                return 1;
            }
            match receipt::find(&spool, &id) {
                Ok(Some(receipt)) => {
                    let _ = stdout.write_all(receipt.to_text().as_bytes());
                    0
                }
                Ok(None) => {
                    let _ =
                        writeln!(stderr, "dacs_logout_hub: no event {text} in {}", hub.spool_dir);
                    1
                }
                Err(e) => {
                    let _ = writeln!(stderr, "dacs_logout_hub: spool {}: {e}", hub.spool_dir);
                    1
                }
            }
        }
    }
}

/// `--check-config`: the hub's directives only (a hub's `dacs.conf` needs no signout
/// directives), every problem with its line; then, for each hub, its spool and whether the
/// tokens are set here.
fn check(config: config::Loaded, env: &Env, out: &mut dyn Write) -> i32 {
    let Some(config) = super::check::loaded(config, out) else { return 1 };
    let source = &config.source;
    let problems = config.hub_problems();
    for problem in &problems {
        let _ = writeln!(out, "{source}: {problem}");
    }
    if !problems.is_empty() {
        let _ = writeln!(out, "{source}: {} problem(s)", problems.len());
        return 1;
    }
    let hubs = config.hubs();
    if hubs.is_empty() {
        let _ = writeln!(out, "{source}: no hub is configured (HUB_SENDER, HUB_RECEIVER)");
        return 1;
    }
    for (uri, hub) in &hubs {
        // With one hub the file's name says enough; with several, each says whose it is.
        let whose = match (hubs.len(), uri) {
            (1, _) => source.to_string(),
            (_, None) => format!("{source}: Default"),
            (_, Some(uri)) => format!("{source}: Jurisdiction {uri}"),
        };
        check_hub(&whose, hub, env, out);
    }
    let _ = writeln!(out, "{source}: ok");
    0
}

/// One hub's summary: its instance, spool, wake socket and the token variables set here.
fn check_hub(whose: &str, hub: &Hub, env: &Env, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "{whose}: hub instance {}: {} sender(s), {} receiver(s), up to {} workers",
        instance(hub),
        hub.senders.len(),
        hub.receivers.len(),
        hub.workers
    );
    match Spool::open(Path::new(&hub.spool_dir), hub.spool_max) {
        Ok(spool) => {
            let [new, work, dead] = spool.counts().unwrap_or_default();
            let _ = writeln!(
                out,
                "{whose}: spool {}: ok ({new} waiting, {work} under way, {dead} dead)",
                hub.spool_dir
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "{whose}: warning: spool {}: {e} (requests create it; it must be the web \
                 server's user's)",
                hub.spool_dir
            );
        }
    }
    // A unix socket's path holds at most 107 bytes: past that, requests cannot wake the
    // delivery process and each starts one (which leaves at once, the spool being taken).
    let socket = Path::new(&hub.spool_dir).join(deliver::WAKE_SOCKET);
    if socket.as_os_str().len() > 107 {
        let _ = writeln!(
            out,
            "{whose}: warning: {} is too long for a socket's path: use a shorter HUB_SPOOL_DIR",
            socket.display()
        );
    }
    let unset = |name: &str| env.soft(name).is_none_or(str::is_empty);
    for sender in hub.senders.iter().filter(|s| unset(&s.token_env)) {
        let _ = writeln!(
            out,
            "{whose}: warning: sender {}'s ${} is not set here (the web server must have it)",
            sender.name, sender.token_env
        );
    }
    for receiver in &hub.receivers {
        if let Some(name) = receiver.token_env.as_deref().filter(|n| unset(n)) {
            let _ = writeln!(
                out,
                "{whose}: warning: receiver {}'s ${name} is not set here (the delivery process \
                 must have it)",
                receiver.name
            );
        }
    }
}
