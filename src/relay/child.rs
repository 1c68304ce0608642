//! The detached delivery child (`dacs_signout relay --deliver`): what the request hands it,
//! how it is started, and its one attempt per signal.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::drain::{Counts, Courier, Entry, RegistryAccess};
use super::journal::Journal;
use super::signal::{Route, Signal};
use super::transport::Transport;
use super::{GUIDE_TOKEN_ENV, Plan, RegistryTarget};
use crate::cgi::Env;
use crate::registry::{self, Revocation};
use crate::spool::{Record, Spool};
use crate::time::Clock;

/// What a request hands its delivery child on stdin: its own process, so the route (hub and
/// token variable) and the registry are the request's configuration, not a record's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The spool the entries are in; `None` when they could not be spooled (best effort).
    pub spool: Option<PathBuf>,
    /// `RELAY_LOG`, when it is not the spool's own `relay.log`.
    pub log: Option<PathBuf>,
    pub route: Option<Route>,
    pub signals: Vec<Signal>,
    pub revocation: Option<(Revocation, RegistryTarget)>,
}

fn route_json(route: &Route) -> Value {
    json!({
        "endpoint": route.endpoint,
        "token_env": route.token_env,
        "timeout_secs": route.timeout_secs,
        "max_age_secs": route.max_age_secs,
        "send_logout_at": route.send_logout_at,
    })
}

fn route_from(r: &Value) -> Option<Route> {
    Some(Route {
        endpoint: r["endpoint"].as_str()?.to_owned(),
        token_env: r["token_env"].as_str()?.to_owned(),
        timeout_secs: r["timeout_secs"].as_u64()?,
        max_age_secs: r["max_age_secs"].as_u64()?,
        send_logout_at: r["send_logout_at"].as_bool()?,
    })
}

fn target_json(target: &RegistryTarget) -> Value {
    let s = &target.settings;
    json!({
        "location": s.location.to_string(),
        "key_env": s.key_env,
        "password_env": s.password_env,
        "ttl_secs": s.ttl_secs,
        "federation": target.federation,
    })
}

fn target_from(t: &Value) -> Option<RegistryTarget> {
    let password_env = match &t["password_env"] {
        Value::Null => None,
        other => Some(other.as_str()?.to_owned()),
    };
    let settings = registry::Settings {
        location: registry::Location::parse(t["location"].as_str()?).ok()?,
        key_env: t["key_env"].as_str()?.to_owned(),
        password_env,
        ttl_secs: t["ttl_secs"].as_u64()?,
    };
    Some(RegistryTarget { settings, federation: t["federation"].as_str()?.to_owned() })
}

impl Payload {
    pub fn to_json(&self) -> String {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        json!({
            "spool": path(&self.spool),
            "log": path(&self.log),
            "route": self.route.as_ref().map(route_json),
            "signals": self.signals.iter().map(Signal::to_value).collect::<Vec<_>>(),
            "revocation": self.revocation.as_ref().map(|(r, target)| json!({
                "record": serde_json::from_str::<Value>(&r.to_json()).unwrap_or_default(),
                "registry": target_json(target),
            })),
        })
        .to_string()
    }

    pub fn from_json(bytes: &[u8]) -> Option<Payload> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        let path = |value: &Value| match value {
            Value::Null => Some(None),
            other => Some(Some(PathBuf::from(other.as_str()?))),
        };
        let (spool, log) = (path(&v["spool"])?, path(&v["log"])?);
        let route = match &v["route"] {
            Value::Null => None,
            r => Some(route_from(r)?),
        };
        let signals =
            v["signals"].as_array()?.iter().map(Signal::from_value).collect::<Option<_>>()?;
        let revocation = match &v["revocation"] {
            Value::Null => None,
            r => Some((
                Revocation::from_json(r["record"].to_string().as_bytes())?,
                target_from(&r["registry"])?,
            )),
        };
        Some(Payload { spool, log, route, signals, revocation })
    }

    /// The child's whole life is bounded: a few attempts' worth of time, however many entries
    /// it carries (`RELAY_MAX_SIGNALS` caps the signals); what it leaves is the drain's.
    fn deadline(&self, started: SystemTime) -> SystemTime {
        let timeout = self.route.as_ref().map_or(15, |r| r.timeout_secs);
        started + Duration::from_secs(timeout.saturating_mul(CHILD_ATTEMPTS))
    }
}

/// How many whole-attempt timeouts the delivery child may spend in all.
const CHILD_ATTEMPTS: u64 = 2;

impl Plan {
    /// Starts the detached delivery child. It begins only once this process has exited.
    pub fn launch(&self, env: &Env) -> io::Result<()> {
        let payload = Payload {
            spool: self.spooled.then(|| self.spool_dir.clone()),
            log: self.log.clone(),
            route: self.route.clone(),
            signals: self.signals.clone(),
            revocation: self.revocation.clone(),
        };
        // The token variable of its route, the registry's password variable, and what the
        // TLS trust store honours.
        let mut names = vec![GUIDE_TOKEN_ENV, "SSL_CERT_FILE", "SSL_CERT_DIR"];
        names.extend(self.route.as_ref().map(|r| r.token_env.as_str()));
        names
            .extend(self.revocation.as_ref().and_then(|(_, t)| t.settings.password_env.as_deref()));
        // `dacs_signout_cli`, beside this program: `dacs_signout` holds no HTTP client.
        let cli = crate::process::beside_this(crate::process::CLI_PROGRAM)?;
        spawn_detached(
            &cli,
            &["relay", "--deliver"],
            &names,
            env,
            Some(payload.to_json().as_bytes()),
        )
    }
}

/// Starts `program` with `args`, detached from the request: its own process group (a
/// server that kills the CGI's group spares it), no stdout or stderr, and a clean environment
/// holding only the variables of `keep` that `env` has (the request's own, HTTP_COOKIE with
/// other apps' sessions or HTTP_PROXY from a `Proxy:` header, have no business there). With a
/// `payload`, it is written to the child's stdin, which stays open until this process exits:
/// the child's EOF then means the response is done. Without one, its stdin is empty.
pub fn spawn_detached(
    program: &std::path::Path,
    args: &[&str],
    keep: &[&str],
    env: &Env,
    payload: Option<&[u8]>,
) -> io::Result<()> {
    let kept = keep.iter().filter_map(|name| Some((*name, env.os(name)?)));
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(kept)
        .stdin(if payload.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    if let Some(payload) = payload {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(payload)?;
        // Held open until this process exits.
        std::mem::forget(stdin);
    }
    Ok(())
}

/// Closes every descriptor from 3 up. A server may hand the CGI descriptors without
/// close-on-exec (fcgiwrap passes its FastCGI connection); the delivery child must not keep
/// them open while it waits for the hub.
#[allow(unsafe_code)]
pub fn close_inherited_descriptors() {
    // SAFETY: called first thing in `relay --deliver`, before the process opens any file or
    // socket, so no Rust object owns a descriptor >= 3 and none is invalidated. close_range
    // only closes; its failure (an old kernel) leaves things as they were.
    unsafe {
        libc::close_range(3, libc::c_uint::MAX, 0);
    }
}

/// `dacs_signout relay --deliver`: the child of a CGI request. Reads the payload to EOF (the
/// parent has exited), then makes one attempt per signal.
pub fn deliver(
    input: &mut dyn Read,
    transport: &dyn Transport,
    env: &Env,
    clock: &dyn Clock,
) -> io::Result<Counts> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let payload = Payload::from_json(&bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed delivery payload"))?;
    let routes: Vec<Route> = payload.route.iter().cloned().collect();
    let deadline = Some(payload.deadline(clock.now()));
    // The spool as the request left it; refused now (it changed hands meanwhile), nothing is
    // written under it.
    let spool = payload.spool.as_deref().map(|dir| Spool::open(dir, usize::MAX)).transpose()?;
    let journal = Journal::open(payload.log.as_deref(), spool.as_ref());
    let registry =
        payload.revocation.as_ref().map(|(_, t)| RegistryAccess::new(&t.settings, &t.federation));
    let courier = Courier {
        routes: &routes,
        registry: registry.as_ref(),
        transport,
        env,
        clock,
        journal: &journal,
        deadline,
    };
    let mut counts = Counts::default();
    let entries: Vec<Entry> = payload
        .signals
        .iter()
        .cloned()
        .map(Entry::Signal)
        .chain(payload.revocation.iter().map(|(r, _)| Entry::Revocation(r.clone())))
        .collect();
    for entry in entries {
        match &spool {
            // A concurrent `relay` may have taken it already: then it is that drainer's.
            Some(spool) => match spool.claim::<Entry>(entry.id(), clock.now())? {
                Some(claim) => courier.settle(spool, claim, &mut counts)?,
                None => counts.busy += 1,
            },
            None => {
                if !courier.once(entry, &mut counts) {
                    break;
                }
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(id: &str) -> Signal {
        Signal {
            id: id.into(),
            user_name: "bob".into(),
            user_agent: "UA \"x\"".into(),
            endpoint: "https://hub.example/api/v1/actions/logout/".into(),
            created: 1_700_000_000,
            attempts: 0,
            next_attempt: 1_700_000_000,
        }
    }

    fn route() -> Route {
        Route {
            endpoint: "https://hub.example/api/v1/actions/logout/".into(),
            token_env: "T".into(),
            timeout_secs: 15,
            max_age_secs: 600,
            send_logout_at: true,
        }
    }

    #[test]
    fn payload_round_trips() {
        let target = RegistryTarget {
            settings: registry::Settings {
                location: registry::Location::parse("sqlite:/var/lib/dacs-signout/registry.db")
                    .unwrap(),
                key_env: "DACS_REGISTRY_KEY".into(),
                password_env: Some("REDIS_PASSWORD".into()),
                ttl_secs: 7200,
            },
            federation: "EX".into(),
        };
        let revocation = Revocation {
            id: "r".into(),
            revoke: registry::revocation::Revoke::Users {
                users: vec!["EX::J:bob".into()],
                before_ms: 5,
            },
            created: 1,
            attempts: 0,
            next_attempt: 1,
        };
        let spooled = Payload {
            spool: Some("/var/spool/dacs-signout".into()),
            log: None,
            route: Some(route()),
            signals: vec![signal("a"), signal("b")],
            revocation: Some((revocation, target)),
        };
        assert_eq!(Payload::from_json(spooled.to_json().as_bytes()), Some(spooled));
        let best_effort = Payload {
            spool: None,
            log: Some("/tmp/l".into()),
            route: Some(route()),
            signals: vec![signal("c")],
            revocation: None,
        };
        assert_eq!(Payload::from_json(best_effort.to_json().as_bytes()), Some(best_effort));
        for bad in [&b"{}"[..], b"[]", b"{\"spool\":1,\"log\":\"l\",\"signals\":[]}", b"not json"] {
            assert_eq!(Payload::from_json(bad), None);
        }
    }

    #[test]
    fn the_child_has_two_attempts_worth_of_time() {
        let p = Payload {
            spool: None,
            log: None,
            route: Some(route()),
            signals: vec![],
            revocation: None,
        };
        let start = SystemTime::UNIX_EPOCH;
        assert_eq!(p.deadline(start), start + Duration::from_secs(30));
    }
}
