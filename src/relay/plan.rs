//! From the credentials a signout removed to the signals for the hub, and their place in the
//! spool before the response goes out.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use super::signal::Signal;
use super::spool::Spool;
use super::{Settings, UsernameMap, endpoint, log_path};
use crate::cgi::Env;
use crate::credentials::Credential;
use crate::time::unix_secs;
use crate::urls;
use crate::version::VERSION;

/// The signals of one signout and where they go.
#[derive(Debug, Clone)]
pub struct Plan {
    pub signals: Vec<Signal>,
    pub spool_dir: PathBuf,
    pub log: PathBuf,
    /// Whether the signals are in the spool (else: best effort, one attempt).
    pub spooled: bool,
}

/// What the relay did for a request, for its log line (`relay=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// No hub is configured.
    Off,
    /// Nothing was removed, or nothing is left after the username map.
    Nothing,
    /// Signals made, not yet persisted.
    Planned(usize),
    /// Signals written durably to the spool.
    Spooled(usize),
    /// The spool could not be used: one attempt each, without durability.
    BestEffort { signals: usize, spool: PathBuf, why: String },
    /// The relay configuration cannot be used for this request.
    Error(String),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Off => f.write_str("off"),
            Note::Nothing => f.write_str("none"),
            Note::Planned(_) => f.write_str("planned"),
            Note::Spooled(n) => write!(f, "spooled:{n}"),
            Note::BestEffort { signals, spool, why } => {
                write!(f, "best-effort:{signals} (spool {} unusable: {why})", spool.display())
            }
            Note::Error(why) => write!(f, "error: {why}"),
        }
    }
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

/// The plan for a signout at `now` that removed `removed`: the note for the log line, and the
/// signals when there are any.
pub fn plan(
    env: &Env,
    settings: &Settings,
    removed: &[Credential],
    user_agent: Option<&str>,
    now: SystemTime,
) -> (Note, Option<Plan>) {
    let Some(endpoint) = endpoint(env, settings) else { return (Note::Off, None) };
    if urls::parse_plain_http(&endpoint).is_none() {
        // Not echoed: a URL with user-info holds a secret.
        return (Note::Error("the hub URL is not an http(s) URL without user-info".into()), None);
    }
    let names = match network_usernames(removed, settings.username_map.as_ref()) {
        Ok(names) if names.is_empty() => return (Note::Nothing, None),
        Ok(names) => names,
        Err(e) => return (Note::Error(format!("RELAY_USERNAME_MAP: {e}")), None),
    };
    // The hub rejects an empty user agent.
    let user_agent = user_agent
        .filter(|ua| !ua.is_empty())
        .map_or_else(|| format!("dacs_signout/{VERSION}"), str::to_owned);
    let secs = unix_secs(now);
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let signals: Vec<Signal> = names
        .into_iter()
        .enumerate()
        .map(|(i, user_name)| Signal {
            id: format!("{secs:011}-{nanos:09}-{}-{i}", std::process::id()),
            user_name,
            user_agent: user_agent.clone(),
            endpoint: endpoint.clone(),
            token_env: settings.token_env.clone(),
            timeout_secs: settings.timeout_secs,
            max_age_secs: settings.max_age_secs,
            created: secs,
            attempts: 0,
            next_attempt: secs,
        })
        .collect();
    let plan = Plan {
        spool_dir: PathBuf::from(&settings.spool_dir),
        log: log_path(settings),
        spooled: false,
        signals,
    };
    (Note::Planned(plan.signals.len()), Some(plan))
}

impl Plan {
    /// Writes every signal durably to the spool. Returns the note for the request's log line.
    pub fn persist(&mut self) -> Note {
        match Spool::open(&self.spool_dir).and_then(|spool| spool.put_all(&self.signals)) {
            Ok(()) => {
                self.spooled = true;
                Note::Spooled(self.signals.len())
            }
            Err(e) => Note::BestEffort {
                signals: self.signals.len(),
                spool: self.spool_dir.clone(),
                why: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Identity;

    fn cred(text: &'static str) -> Credential<'static> {
        Credential { name: text, identity: Identity::parse(text).unwrap() }
    }

    fn settings(base_url: Option<&str>) -> Settings {
        Settings {
            base_url: base_url.map(str::to_owned),
            token_env: "T".into(),
            username_map: None,
            timeout_secs: 15,
            spool_dir: "/dev/null/spool".into(),
            log: None,
            max_age_secs: 60,
        }
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
    fn a_plan_is_stamped_with_the_time_it_is_given() {
        let now = crate::time::from_unix_secs(1_700_000_000);
        let removed = [cred("EX::A:bob")];
        let (note, plan) =
            plan(&Env::default(), &settings(Some("https://h/api/v1")), &removed, None, now);
        assert_eq!(note, Note::Planned(1));
        let plan = plan.unwrap();
        let signal = &plan.signals[0];
        assert_eq!((signal.created, signal.next_attempt), (1_700_000_000, 1_700_000_000));
        assert!(signal.id.starts_with("01700000000-"), "{}", signal.id);
        assert_eq!(signal.user_agent, format!("dacs_signout/{VERSION}"));
        assert_eq!(signal.endpoint, "https://h/api/v1/actions/logout/");
        assert_eq!(plan.log, PathBuf::from("/dev/null/spool/relay.log"));
    }

    #[test]
    fn notes() {
        let now = SystemTime::UNIX_EPOCH;
        let env = Env::default();
        assert_eq!(plan(&env, &settings(None), &[cred("EX::A:bob")], None, now).0, Note::Off);
        assert_eq!(plan(&env, &settings(Some("https://h/")), &[], None, now).0, Note::Nothing);
        let env = Env::from_pairs([("IDMS_BASE_API_URL", "https://u:p@h/")]);
        let (note, _) = plan(&env, &settings(None), &[cred("EX::A:bob")], None, now);
        assert!(matches!(note, Note::Error(ref why) if !why.contains("u:p")), "{note:?}");
        let mut p =
            plan(&Env::default(), &settings(Some("https://h/")), &[cred("EX::A:b")], None, now)
                .1
                .unwrap();
        assert!(matches!(p.persist(), Note::BestEffort { signals: 1, .. }));
        assert!(!p.spooled);
    }
}
