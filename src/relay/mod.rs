//! Network-wide signout (§9): the removed identities are announced to the logout hub.
//!
//! The CGI request writes each signal durably to the spool *before* the response, then
//! starts a detached `dacs_signout relay --deliver` child and exits. The child waits until the
//! request process is gone (its stdin pipe reaches EOF only when the parent has exited, and with
//! it the parent's stdout and stderr), so the web server has finished the response before any
//! delivery starts. What the child cannot deliver stays in the spool for `dacs_signout relay`.

pub mod signal;
pub mod spool;
pub mod transport;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cgi::Env;
use crate::config::{RelaySettings, UsernameMap};
use crate::credentials::Credential;
use signal::{Signal, Verdict, backoff_secs, excerpt, join};
use spool::Spool;
use transport::Transport;

/// The token variable of the Knowledge Commons guide, tried after the configured one.
const GUIDE_TOKEN_ENV: &str = "PROFILES_API_BEARER_TOKEN";

/// The signals of one signout and where they go.
#[derive(Debug, Clone)]
pub struct Plan {
    pub signals: Vec<Signal>,
    pub spool_dir: PathBuf,
    pub log: PathBuf,
    /// Whether the signals are in the spool (else: best effort, one attempt).
    pub spooled: bool,
}

/// The hub endpoint: `$IDMS_BASE_API_URL`, else the directive, else `$PROFILES_API_URL`
/// (a site root).
pub fn endpoint(env: &Env, settings: &RelaySettings) -> Option<String> {
    let var = |name| env.soft(name).filter(|v| !v.is_empty());
    if let Some(base) = var("IDMS_BASE_API_URL") {
        return Some(join(base, "actions/logout/"));
    }
    if let Some(base) = &settings.base_url {
        return Some(join(base, "actions/logout/"));
    }
    var("PROFILES_API_URL").map(|root| join(root, "api/v1/actions/logout/"))
}

/// `RELAY_USERNAME_MAP`, applied to each DACS username; empty results and duplicates dropped.
pub fn network_usernames<'a>(
    credentials: impl IntoIterator<Item = &'a Credential<'a>>,
    map: Option<&UsernameMap>,
) -> Result<Vec<String>, regex::Error> {
    let regex = map.map(|m| regex::Regex::new(&m.pattern)).transpose()?;
    let mut names: Vec<String> = Vec::new();
    for credential in credentials {
        let name = match (&regex, map) {
            (Some(re), Some(m)) => {
                re.replace(credential.identity.username, m.replacement.as_str()).into_owned()
            }
            _ => credential.identity.username.to_owned(),
        };
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The plan for a signout to `endpoint`, or `Ok(None)` when nothing was removed.
pub fn plan(
    endpoint: String,
    removed: &[Credential],
    settings: &RelaySettings,
    user_agent: Option<&str>,
    now: u64,
) -> Result<Option<Plan>, String> {
    let valid = url::Url::parse(&endpoint).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.username().is_empty() && u.password().is_none()
    });
    if !valid {
        // Not echoed: a URL with user-info holds a secret.
        return Err("the hub URL is not an http(s) URL without user-info".into());
    }
    let names = network_usernames(removed, settings.username_map.as_ref())
        .map_err(|e| format!("RELAY_USERNAME_MAP: {e}"))?;
    if names.is_empty() {
        return Ok(None);
    }
    // The hub rejects an empty user agent.
    let user_agent = user_agent
        .filter(|ua| !ua.is_empty())
        .map_or_else(|| format!("dacs_signout/{}", crate::VERSION), str::to_owned);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let signals = names
        .into_iter()
        .enumerate()
        .map(|(i, user_name)| Signal {
            id: format!("{now:011}-{nanos:09}-{}-{i}", std::process::id()),
            user_name,
            user_agent: user_agent.clone(),
            endpoint: endpoint.clone(),
            token_env: settings.token_env.clone(),
            timeout_secs: settings.timeout_secs,
            max_age_secs: settings.max_age_secs,
            created: now,
            attempts: 0,
            next_attempt: now,
        })
        .collect();
    Ok(Some(Plan {
        signals,
        spool_dir: PathBuf::from(&settings.spool_dir),
        log: log_path(settings),
        spooled: false,
    }))
}

/// `RELAY_LOG`, else `relay.log` in the spool.
pub fn log_path(settings: &RelaySettings) -> PathBuf {
    settings
        .log
        .as_ref()
        .map_or_else(|| Path::new(&settings.spool_dir).join("relay.log"), PathBuf::from)
}

impl Plan {
    /// Writes every signal durably to the spool. Returns the note for the request's log line.
    pub fn persist(&mut self) -> String {
        let result = Spool::open(&self.spool_dir).and_then(|spool| spool.put_all(&self.signals));
        match result {
            Ok(()) => {
                self.spooled = true;
                format!("spooled:{}", self.signals.len())
            }
            Err(e) => format!(
                "best-effort:{} (spool {} unusable: {e})",
                self.signals.len(),
                self.spool_dir.display()
            ),
        }
    }

    /// Starts the detached delivery child. It begins only once this process has exited.
    pub fn launch(&self) -> io::Result<()> {
        let payload = json!({
            "spool": self.spooled.then(|| self.spool_dir.display().to_string()),
            "log": self.log.display().to_string(),
            "signals": self.signals.iter().map(Signal::to_value).collect::<Vec<_>>(),
        });
        // A clean environment: the request's (HTTP_COOKIE with other apps' sessions, HTTP_PROXY
        // from a `Proxy:` header) has no business in the child. It gets the token variables
        // its signals name, and what the TLS trust store honours.
        let mut names: Vec<&str> = vec![GUIDE_TOKEN_ENV, "SSL_CERT_FILE", "SSL_CERT_DIR"];
        names.extend(self.signals.iter().map(|s| s.token_env.as_str()));
        let mut child = Command::new(std::env::current_exe()?)
            .args(["relay", "--deliver"])
            .env_clear()
            .envs(names.into_iter().filter_map(|n| Some((n, std::env::var_os(n)?))))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a server that kills the CGI's group spares it.
            .process_group(0)
            .spawn()?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(payload.to_string().as_bytes())?;
        // Held open until this process exits: the child's EOF means the response is done.
        std::mem::forget(stdin);
        Ok(())
    }
}

use std::os::unix::process::CommandExt;

/// The bearer token: the configured variable, else `PROFILES_API_BEARER_TOKEN`.
fn token(env: &Env, name: &str) -> Option<String> {
    [name, GUIDE_TOKEN_ENV]
        .into_iter()
        .find_map(|n| env.soft(n).filter(|t| !t.is_empty()).map(str::to_owned))
}

/// One delivery attempt: the verdict, the HTTP status if there was one, and a log detail.
pub fn attempt(
    signal: &Signal,
    transport: &dyn Transport,
    env: &Env,
) -> (Verdict, Option<u16>, String) {
    let Some(token) = token(env, &signal.token_env) else {
        return (
            Verdict::Retry(format!("no bearer token in ${}", signal.token_env)),
            None,
            String::new(),
        );
    };
    let body = signal::body(&signal.user_name, &signal.user_agent);
    match transport.post(&signal.endpoint, &token, &body, Duration::from_secs(signal.timeout_secs))
    {
        Err(e) => {
            let e = excerpt(e.as_bytes(), Some(&token));
            (Verdict::Retry(e), None, String::new())
        }
        Ok(reply) => {
            let verdict = signal::judge(reply.status, &reply.body, &signal.user_name);
            let detail = if verdict == Verdict::Delivered {
                String::new()
            } else {
                excerpt(&reply.body, Some(&token))
            };
            (verdict, Some(reply.status), detail)
        }
    }
}

/// One line per attempt: time, network username, outcome, HTTP status, attempt number.
pub fn log_line(
    now: u64,
    signal: &Signal,
    verdict: &Verdict,
    status: Option<u16>,
    detail: &str,
) -> String {
    let mut line = crate::log::LogLine::default();
    line.set("time", utc(now))
        .set("user", &signal.user_name)
        .set("outcome", verdict.outcome())
        .set("status", status.map_or("-".to_owned(), |s| s.to_string()))
        .set("attempt", signal.attempts)
        .set("id", &signal.id);
    if let Verdict::Retry(why) | Verdict::Dead(why) = verdict {
        line.set("why", why);
    }
    if !detail.is_empty() {
        line.set("body", detail);
    }
    line.render().replacen("dacs_signout:", "dacs_signout relay:", 1)
}

/// Appends to the relay log; one `write` per line, so concurrent drainers do not interleave.
pub fn append(log: &Path, line: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(log);
    if let Ok(mut file) = file {
        let _ = file.write_all(line.as_bytes());
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds (proleptic Gregorian, UTC).
///
/// ```
/// assert_eq!(dacs_signout::relay::utc(0), "1970-01-01T00:00:00Z");
/// assert_eq!(dacs_signout::relay::utc(1_795_302_000), "2026-11-21T23:00:00Z");
/// ```
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What a drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    pub not_due: usize,
    pub busy: usize,
    pub reclaimed: usize,
}

/// Settles a claimed signal after an attempt, and logs it.
fn settle(
    spool: &Spool,
    claim: spool::Claim,
    transport: &dyn Transport,
    env: &Env,
    log: &Path,
    counts: &mut Counts,
) -> io::Result<()> {
    let now = spool::now();
    let mut signal = claim.signal.clone();
    signal.attempts += 1;
    let (mut verdict, status, detail) = attempt(&signal, transport, env);
    if let Verdict::Retry(why) = &verdict {
        if signal.expired(now) {
            verdict = Verdict::Dead(format!("older than {} s; last: {why}", signal.max_age_secs));
        }
    }
    let settled = match &verdict {
        Verdict::Delivered => {
            counts.delivered += 1;
            spool.finish(claim)
        }
        Verdict::Dead(why) => {
            counts.dead += 1;
            spool.bury(claim, why)
        }
        Verdict::Retry(_) => {
            counts.retried += 1;
            signal.next_attempt = now + backoff_secs(signal.attempts);
            spool.retry(claim, &signal)
        }
    };
    // Logged once the spool says the same.
    append(log, &log_line(now, &signal, &verdict, status, &detail));
    settled
}

/// `dacs_signout relay`: retries what is due (everything with `force`), dead-letters what is
/// too old. Safe to run many at once: each signal is claimed by exactly one drainer.
pub fn drain(
    spool: &Spool,
    transport: &dyn Transport,
    env: &Env,
    force: bool,
    stale_after: Duration,
    log: &Path,
) -> io::Result<Counts> {
    let mut counts = Counts { reclaimed: spool.reclaim_stale(stale_after)?, ..Counts::default() };
    let now = spool::now();
    for id in spool.waiting()? {
        // A peek, to skip what is not due without claiming it; a stale read is harmless.
        let peek = std::fs::read(spool.root().join("new").join(format!("{id}.json")))
            .ok()
            .and_then(|b| Signal::from_json(&b));
        if let Some(s) = &peek {
            if !force && s.next_attempt > now && !s.expired(now) {
                counts.not_due += 1;
                continue;
            }
        }
        match spool.claim(&id)? {
            None => counts.busy += 1,
            Some(claim) if claim.signal.expired(now) && claim.signal.attempts > 0 => {
                let why = format!(
                    "older than {} s after {} attempts",
                    claim.signal.max_age_secs, claim.signal.attempts
                );
                append(log, &log_line(now, &claim.signal, &Verdict::Dead(why.clone()), None, ""));
                counts.dead += 1;
                spool.bury(claim, &why)?;
            }
            Some(claim) => settle(spool, claim, transport, env, log, &mut counts)?,
        }
    }
    Ok(counts)
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
pub fn deliver(input: &mut dyn Read, transport: &dyn Transport, env: &Env) -> io::Result<Counts> {
    let mut payload = Vec::new();
    input.read_to_end(&mut payload)?;
    let payload: Value = serde_json::from_slice(&payload).map_err(io::Error::other)?;
    let log = PathBuf::from(payload["log"].as_str().unwrap_or("/dev/null"));
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed delivery payload");
    let signals: Vec<Signal> = payload["signals"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(Signal::from_value)
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let mut counts = Counts::default();
    match payload["spool"].as_str() {
        Some(dir) => {
            let spool = Spool::open(Path::new(dir))?;
            for s in &signals {
                // A concurrent `relay` may have taken it already: then it is that drainer's.
                match spool.claim(&s.id)? {
                    Some(claim) => settle(&spool, claim, transport, env, &log, &mut counts)?,
                    None => counts.busy += 1,
                }
            }
        }
        None => {
            for s in &signals {
                let mut s = s.clone();
                s.attempts += 1;
                let (verdict, status, detail) = attempt(&s, transport, env);
                append(&log, &log_line(spool::now(), &s, &verdict, status, &detail));
                match verdict {
                    Verdict::Delivered => counts.delivered += 1,
                    Verdict::Dead(_) => counts.dead += 1,
                    Verdict::Retry(_) => counts.retried += 1,
                }
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Identity;

    fn cred(text: &'static str) -> Credential<'static> {
        Credential { name: text, identity: Identity::parse(text).unwrap() }
    }

    #[test]
    fn usernames_are_mapped_and_deduplicated() {
        let creds = [
            cred("EX::A:bob@uni.example"),
            cred("EX::B:bob@uni.example"),
            cred("EX::A:amy@other.example"),
        ];
        let map =
            UsernameMap { pattern: "^([^@]+)@uni\\.example$".into(), replacement: "$1".into() };
        assert_eq!(network_usernames(&creds, Some(&map)).unwrap(), ["bob", "amy@other.example"]);
        assert_eq!(
            network_usernames(&creds, None).unwrap(),
            ["bob@uni.example", "amy@other.example"]
        );
        let bad = UsernameMap { pattern: "(".into(), replacement: String::new() };
        assert!(network_usernames(&creds, Some(&bad)).is_err());
    }

    #[test]
    fn endpoint_precedence() {
        let settings = RelaySettings {
            base_url: Some("https://conf.example/api/v1/".into()),
            token_env: "T".into(),
            username_map: None,
            timeout_secs: 15,
            spool_dir: "/tmp".into(),
            log: None,
            max_age_secs: 60,
        };
        let env = |pairs: &[(&'static str, &'static str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(
            endpoint(&env(&[]), &settings).unwrap(),
            "https://conf.example/api/v1/actions/logout/"
        );
        assert_eq!(
            endpoint(&env(&[("IDMS_BASE_API_URL", "https://env.example/api/v1")]), &settings)
                .unwrap(),
            "https://env.example/api/v1/actions/logout/"
        );
        let none = RelaySettings { base_url: None, ..settings };
        assert_eq!(endpoint(&env(&[]), &none), None);
        assert_eq!(
            endpoint(&env(&[("PROFILES_API_URL", "https://profile.hcommons.org/")]), &none)
                .unwrap(),
            "https://profile.hcommons.org/api/v1/actions/logout/"
        );
    }
}
