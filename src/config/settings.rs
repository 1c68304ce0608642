//! The meaning of each directive, for the section a request uses.

use std::cell::RefCell;

use super::ConfigError;
use super::parse::{Directive, Section};
use crate::credentials::identity::is_name;
use crate::credentials::{CookieAttributes, CookieSyntax, NameCompare};
use crate::policy::Rules;
use crate::policy::driveby::CrossSite;
use crate::policy::handler::{AllowRule, HandlerDirective, check_pattern, regex_error};
use crate::registry;
use crate::relay::{self, RelayIdentity, UsernameMap};
use crate::urls;

/// The effective configuration of one request: each role's part of the section it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub rules: Rules,
    pub relay: relay::Settings,
    /// `REGISTRY` and its companions; `None` when no registry is configured.
    pub registry: Option<registry::Settings>,
    pub receiver: Receiver,
    pub guard: Guard,
    /// The hub's directives; `None` when the section configures no hub.
    pub hub: Option<Hub>,
}

/// The receiver's directives (§11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// `RECEIVER_TOKEN_ENV` (repeatable): the variables holding the tokens a hub may present;
    /// several at once for a rotation.
    pub token_envs: Vec<String>,
    /// `RECEIVER_USERNAME_MAP`: network username to `JUR:USER` forms.
    pub username_map: Option<UsernameMap>,
}

/// What the guard does when the registry cannot be read (§13).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnStoreError {
    /// Pass the request (logged, counted): a registry outage is not a site outage.
    #[default]
    Allow,
    /// Refuse it.
    Deny,
}

/// The guard's directives (§13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// `IDLE_TIMEOUT_SECS`.
    pub idle_secs: Option<u64>,
    /// `GUARD_ON_STORE_ERROR`.
    pub on_store_error: OnStoreError,
    /// `GUARD_REFUSAL_STATUS`: 401 (default) or 403.
    pub refusal_status: u16,
}

/// The hub's directives (§14, §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    /// `HUB_SENDER "NAME TOKEN_ENV"` (repeatable): who may announce a logout.
    pub senders: Vec<HubSender>,
    /// `HUB_RECEIVER "NAME URL FORM [TOKEN_ENV]"` (repeatable): who is told.
    pub receivers: Vec<HubReceiver>,
    /// `HUB_SPOOL_DIR`: the events, one record per receiver, and their receipts.
    pub spool_dir: String,
    /// `HUB_SPOOL_MAX`: deliveries waiting or under way at most.
    pub spool_max: usize,
    /// `HUB_INSTANCE`: the name event ids carry; `None`: the host's name.
    pub instance: Option<String>,
    /// `HUB_LOG`: the delivery log, when it is not `hub.log` in the spool.
    pub log: Option<String>,
    /// `HUB_CONNECT_TIMEOUT_SECS`.
    pub connect_timeout_secs: u64,
    /// `HUB_TIMEOUT_SECS`: one call to a receiver, whole.
    pub timeout_secs: u64,
    /// `HUB_WORKERS`: calls under way at once, for the whole hub.
    pub workers: usize,
    /// `HUB_MAX_AGE_SECS`: the oldest `logout_at` taken from a sender, and how long a
    /// delivery is retried.
    pub max_age_secs: u64,
    /// `HUB_RETRY_SECS`: the first retry's wait (doubled after each attempt, at most 5 min).
    pub retry_secs: u64,
    /// `HUB_SENDER_RATE "N/SECS"`: each sender's events, at most N per SECS seconds (a
    /// bucket of N, refilled over SECS).
    pub rate: Rate,
    /// `HUB_RECEIPT_SECS`: how long a delivered record is kept as a receipt.
    pub receipt_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSender {
    pub name: String,
    /// The *name* of the variable holding its token.
    pub token_env: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubReceiver {
    pub name: String,
    pub url: String,
    pub form: Form,
    /// The *name* of the variable holding the token it takes; `None`: it takes none (BCC).
    pub token_env: Option<String>,
}

/// How a receiver wants to be called (§14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `POST ?username=U` with no body: the Profiles hub's call today.
    PostQuery,
    /// `GET ?username=U`: the Knowledge Commons guide's.
    GetQuery,
    /// `GET ?userid=U`: BCC's.
    BccGet,
    /// `POST {"userId":"U"}`: BCC's JSON form.
    BccPost,
}

impl Form {
    pub const NAMES: [&'static str; 4] = ["post-query", "get-query", "bcc-get", "bcc-post"];

    pub fn parse(text: &str) -> Option<Form> {
        match text {
            "post-query" => Some(Form::PostQuery),
            "get-query" => Some(Form::GetQuery),
            "bcc-get" => Some(Form::BccGet),
            "bcc-post" => Some(Form::BccPost),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Form::PostQuery => Form::NAMES[0],
            Form::GetQuery => Form::NAMES[1],
            Form::BccGet => Form::NAMES[2],
            Form::BccPost => Form::NAMES[3],
        }
    }
}

/// A rate: at most `events` per `secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub events: u32,
    pub secs: u64,
}

/// Directive lookup: the `Jurisdiction` section overrides `Default`. Every problem met is
/// kept (`--check-config` reports them all), and a default value stands in for a bad one so
/// that the rest is still checked.
struct Layers<'a> {
    default: &'a Section,
    jurisdiction: Option<&'a Section>,
    problems: RefCell<Vec<ConfigError>>,
}

impl<'a> Layers<'a> {
    fn new(default: &'a Section, jurisdiction: Option<&'a Section>) -> Layers<'a> {
        Layers { default, jurisdiction, problems: RefCell::new(Vec::new()) }
    }

    fn problem(&self, problem: ConfigError) {
        self.problems.borrow_mut().push(problem);
    }

    /// The directive's last occurrence, when its value is a literal (a DACS expression in a
    /// directive this program reads is a problem: it has no evaluator).
    fn get(&self, name: &str) -> Option<&'a Directive> {
        let d = self.jurisdiction.and_then(|s| s.last(name)).or_else(|| self.default.last(name))?;
        if d.expression {
            self.problem(ConfigError::at(
                d.line,
                format!(
                    "{name}: only a double-quoted literal value is supported (DACS expressions \
                     are not): {}",
                    d.value
                ),
            ));
            return None;
        }
        Some(d)
    }

    /// A repeatable directive: the `Jurisdiction` section's list, if it has one, replaces
    /// `Default`'s (an operator narrowing a jurisdiction must not inherit wider rules).
    fn all(&self, name: &'a str) -> Vec<&'a Directive> {
        let own: Vec<_> = self.jurisdiction.map(|s| s.all(name).collect()).unwrap_or_default();
        let all = if own.is_empty() { self.default.all(name).collect() } else { own };
        all.into_iter()
            .filter(|d| {
                if d.expression {
                    self.problem(ConfigError::at(
                        d.line,
                        format!("{name}: only a double-quoted literal value is supported"),
                    ));
                }
                !d.expression
            })
            .collect()
    }

    /// The value, parsed; `default` when absent, and when invalid (the problem kept).
    fn parsed<T>(
        &self,
        name: &str,
        default: T,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> T {
        match self.get(name) {
            None => default,
            Some(d) => parse(&d.value).unwrap_or_else(|| {
                self.problem(invalid(d, expected));
                default
            }),
        }
    }

    fn required(&self, name: &str) -> Option<&'a Directive> {
        let found = self.get(name);
        if found.is_none() && !self.mentions(name) {
            self.problem(ConfigError::general(format!("{name} is required")));
        }
        found
    }

    /// Whether either section has the directive at all (an expression counts: its problem is
    /// already kept).
    fn mentions(&self, name: &str) -> bool {
        self.jurisdiction.and_then(|s| s.last(name)).or_else(|| self.default.last(name)).is_some()
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<ConfigError>> {
        let problems = self.problems.into_inner();
        if problems.is_empty() { Ok(value) } else { Err(problems) }
    }
}

fn invalid(d: &Directive, expected: &str) -> ConfigError {
    ConfigError::at(d.line, format!("{}: invalid value {:?}, expected {expected}", d.name, d.value))
}

fn boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Some(true),
        "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

fn seconds(value: &str) -> Option<u64> {
    value.parse().ok().filter(|&n| n > 0)
}

/// A cookie `Path` or `Domain` value that cannot break the `Set-Cookie` line.
fn cookie_attribute(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

const CLEAR_SITE_DATA_TYPES: &[&str] = &["cache", "cookies", "storage", "executionContexts", "*"];

/// `"cookies"` or `"cache, cookies"` (quotes optional) to a header value; `off` disables.
fn clear_site_data(value: &str) -> Option<Option<String>> {
    if value.is_empty() || value.eq_ignore_ascii_case("off") || value.eq_ignore_ascii_case("no") {
        return Some(None);
    }
    let types: Option<Vec<String>> = value
        .split(',')
        .map(|t| {
            let t = t.trim().trim_matches('"');
            CLEAR_SITE_DATA_TYPES.contains(&t).then(|| format!("\"{t}\""))
        })
        .collect();
    types.map(|t| Some(t.join(", ")))
}

impl Settings {
    /// The settings of `jurisdiction` over `Default`, or every problem found in them.
    pub fn from_sections(
        default: &Section,
        jurisdiction: Option<&Section>,
    ) -> Result<Settings, Vec<ConfigError>> {
        let layers = Layers::new(default, jurisdiction);
        let rules = rules(&layers);
        let relay = relay(&layers);
        let registry = registry(&layers);
        let receiver = receiver(&layers);
        let guard = guard(&layers);
        let hub = hub(&layers);
        layers.finish(Settings { rules, relay, registry, receiver, guard, hub })
    }
}

/// What only `--check-config` pays for: compiling every regular expression of a section (the
/// syntax was checked when the file was read; this finds what only compiling does, such as a
/// size limit), each problem with its line and in the operator's own text.
pub fn compile_problems(section: &Section) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    let mut compile = |d: &Directive, source: &str, anchored: bool| {
        if check_pattern(source).is_err() {
            return; // reported with the settings, from the syntax check
        }
        let compiled =
            if anchored { AllowRule::compile(source) } else { regex::Regex::new(source) };
        if let Err(e) = compiled {
            let why = regex_error(&e);
            problems.push(ConfigError::at(d.line, format!("{}: {source:?}: {why}", d.name)));
        }
    };
    for d in section.directives.iter().filter(|d| !d.expression) {
        match d.name.as_str() {
            "SIGNOUT_HANDLER_ALLOW" => {
                if let Some(source) = d.value.strip_prefix("re:") {
                    compile(d, source, true);
                }
            }
            "RELAY_USERNAME_MAP" => {
                if let Some((pattern, _)) = d.value.split_once("=>") {
                    compile(d, pattern.trim(), false);
                }
            }
            _ => {}
        }
    }
    problems
}

fn variable_name(v: &str) -> Option<String> {
    let ok = v.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| v.to_owned())
}

/// `REGEX => REPLACEMENT`, its expression checked.
fn username_map(layers: &Layers, name: &str) -> Option<UsernameMap> {
    let d = layers.get(name)?;
    let Some((pattern, replacement)) = d.value.split_once("=>") else {
        layers.problem(invalid(d, "REGEX => REPLACEMENT"));
        return None;
    };
    let pattern = pattern.trim();
    if let Err(why) = check_pattern(pattern) {
        layers.problem(ConfigError::at(d.line, format!("{name}: {pattern:?}: {why}")));
        return None;
    }
    Some(UsernameMap { pattern: pattern.to_owned(), replacement: replacement.trim().to_owned() })
}

fn registry(layers: &Layers) -> Option<registry::Settings> {
    let location = layers.get("REGISTRY").and_then(|d| {
        registry::Location::parse(&d.value)
            .map_err(|why| layers.problem(ConfigError::at(d.line, format!("REGISTRY: {why}"))))
            .ok()
    })?;
    // A sighting must outlive the credential it stands for: expired first, a revoked
    // credential would look new, and pass. DACS's own lifetime directive is the default.
    let lifetime = layers
        .get("AUTH_CREDENTIALS_DEFAULT_LIFETIME_SECS")
        .and_then(|d| seconds(&d.value))
        .unwrap_or(86_400);
    Some(registry::Settings {
        location,
        key_env: layers.parsed(
            "REGISTRY_KEY_ENV",
            "DACS_REGISTRY_KEY".to_owned(),
            variable_name,
            "an environment variable name",
        ),
        password_env: layers.parsed(
            "REGISTRY_PASSWORD_ENV",
            None,
            |v| variable_name(v).map(Some),
            "an environment variable name",
        ),
        ttl_secs: layers.parsed(
            "REGISTRY_TTL_SECS",
            lifetime,
            seconds,
            "a positive number of seconds",
        ),
    })
}

fn receiver(layers: &Layers) -> Receiver {
    let mut token_envs: Vec<String> = layers
        .all("RECEIVER_TOKEN_ENV")
        .into_iter()
        .filter_map(|d| {
            variable_name(&d.value).or_else(|| {
                layers.problem(invalid(d, "an environment variable name"));
                None
            })
        })
        .collect();
    if token_envs.is_empty() {
        token_envs.push("DACS_RECEIVER_TOKEN".to_owned());
    }
    Receiver { token_envs, username_map: username_map(layers, "RECEIVER_USERNAME_MAP") }
}

fn guard(layers: &Layers) -> Guard {
    Guard {
        idle_secs: layers.parsed(
            "IDLE_TIMEOUT_SECS",
            None,
            |v| seconds(v).map(Some),
            "a positive number of seconds",
        ),
        on_store_error: layers.parsed(
            "GUARD_ON_STORE_ERROR",
            OnStoreError::Allow,
            |v| match v.to_ascii_lowercase().as_str() {
                "allow" => Some(OnStoreError::Allow),
                "deny" => Some(OnStoreError::Deny),
                _ => None,
            },
            "allow or deny",
        ),
        refusal_status: layers.parsed(
            "GUARD_REFUSAL_STATUS",
            401,
            |v| match v {
                "401" => Some(401),
                "403" => Some(403),
                _ => None,
            },
            "401 or 403",
        ),
    }
}

/// The hub's directives of `Default`, overridden by a `Jurisdiction` section's, on their own:
/// a hub's `dacs.conf` needs no signout directives. `None` when no hub is configured.
pub fn hub_only(
    default: &Section,
    jurisdiction: Option<&Section>,
) -> Result<Option<Hub>, Vec<ConfigError>> {
    let layers = Layers::new(default, jurisdiction);
    let hub = hub(&layers);
    layers.finish(hub)
}

/// A name for a sender, a receiver or a hub instance: what goes into file names, event ids and
/// log lines.
fn hub_name(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hub(layers: &Layers) -> Option<Hub> {
    let sender_lines = layers.all("HUB_SENDER");
    let receiver_lines = layers.all("HUB_RECEIVER");
    let spool = layers.get("HUB_SPOOL_DIR");
    if sender_lines.is_empty() && receiver_lines.is_empty() && spool.is_none() {
        return None;
    }
    let mut senders: Vec<HubSender> = Vec::new();
    for d in sender_lines {
        let parts: Vec<&str> = d.value.split_whitespace().collect();
        let sender = match parts[..] {
            [name, env] if hub_name(name) => {
                variable_name(env).map(|token_env| HubSender { name: name.to_owned(), token_env })
            }
            _ => None,
        };
        match sender {
            None => layers.problem(invalid(d, "NAME TOKEN_VARIABLE (NAME: letters, digits, - and _)")),
            Some(s) if senders.iter().any(|o| o.name == s.name) => layers
                .problem(ConfigError::at(d.line, format!("HUB_SENDER: {} is named twice", s.name))),
            Some(s) if senders.iter().any(|o| o.token_env == s.token_env) => {
                layers.problem(ConfigError::at(
                    d.line,
                    format!(
                        "HUB_SENDER: ${} is another sender's token too: the hub could not tell                          them apart",
                        s.token_env
                    ),
                ))
            }
            Some(s) => senders.push(s),
        }
    }
    let mut receivers: Vec<HubReceiver> = Vec::new();
    for d in receiver_lines {
        let parts: Vec<&str> = d.value.split_whitespace().collect();
        let (name, url, form, token) = match parts[..] {
            [name, url, form] => (name, url, form, None),
            [name, url, form, token] => (name, url, form, Some(token)),
            _ => {
                layers.problem(invalid(d, "NAME URL FORM [TOKEN_VARIABLE]"));
                continue;
            }
        };
        let problem =
            |why: String| layers.problem(ConfigError::at(d.line, format!("HUB_RECEIVER: {why}")));
        if !hub_name(name) {
            problem(format!("{name:?} is not a name (letters, digits, - and _, at most 64)"));
            continue;
        }
        if receivers.iter().any(|r| r.name == name) {
            problem(format!("{name} is named twice"));
            continue;
        }
        let Some(parsed) = urls::parse_plain_http(url).filter(|u| u.fragment().is_none()) else {
            problem(format!("{url:?} is not an http or https URL without credentials or fragment"));
            continue;
        };
        let Some(form) = Form::parse(form) else {
            problem(format!("{form:?} is not a request form: {}", Form::NAMES.join(", ")));
            continue;
        };
        let token_env = match token.map(|t| variable_name(t).ok_or(t)).transpose() {
            Ok(env) => env,
            Err(t) => {
                problem(format!("{t:?} is not an environment variable name"));
                continue;
            }
        };
        receivers.push(HubReceiver {
            name: name.to_owned(),
            url: String::from(parsed),
            form,
            token_env,
        });
    }
    if receivers.is_empty() {
        layers.problem(ConfigError::general("a hub needs at least one HUB_RECEIVER"));
    }
    if senders.is_empty() {
        layers.problem(ConfigError::general("a hub needs at least one HUB_SENDER"));
    }
    let path = |v: &str| (v.starts_with('/') && !v.contains('\0')).then(|| v.to_owned());
    let spool_dir = layers.parsed(
        "HUB_SPOOL_DIR",
        "/var/spool/dacs-logout-hub".to_owned(),
        path,
        "an absolute path",
    );
    if let (Some(d), Some(relay)) = (spool, layers.get("RELAY_SPOOL_DIR"))
        && relay.value.trim_end_matches('/') == spool_dir.trim_end_matches('/')
    {
        layers.problem(ConfigError::at(
            d.line,
            "HUB_SPOOL_DIR: the hub needs a spool of its own, not RELAY_SPOOL_DIR",
        ));
    }
    let secs = |name: &str, default: u64| {
        layers.parsed(name, default, seconds, "a positive number of seconds")
    };
    Some(Hub {
        senders,
        receivers,
        spool_dir,
        spool_max: layers.parsed(
            "HUB_SPOOL_MAX",
            100_000,
            |v| v.parse().ok().filter(|&n| n > 0),
            "a positive number",
        ),
        instance: layers.parsed(
            "HUB_INSTANCE",
            None,
            |v| hub_name(v).then(|| Some(v.to_owned())),
            "a name of letters, digits, - and _",
        ),
        log: layers.parsed("HUB_LOG", None, |v| path(v).map(Some), "an absolute path"),
        connect_timeout_secs: secs("HUB_CONNECT_TIMEOUT_SECS", 5),
        timeout_secs: secs("HUB_TIMEOUT_SECS", 10),
        workers: layers.parsed(
            "HUB_WORKERS",
            512,
            |v| v.parse().ok().filter(|n| (1..=4096).contains(n)),
            "a number from 1 to 4096",
        ),
        max_age_secs: secs("HUB_MAX_AGE_SECS", 86_400),
        retry_secs: secs("HUB_RETRY_SECS", 5),
        rate: layers.parsed(
            "HUB_SENDER_RATE",
            Rate { events: 600, secs: 60 },
            |v| {
                let (events, secs) = v.split_once('/')?;
                let events = events.trim().parse().ok().filter(|&n| n > 0)?;
                Some(Rate { events, secs: seconds(secs.trim())? })
            },
            "EVENTS/SECONDS, e.g. 600/60",
        ),
        receipt_secs: secs("HUB_RECEIPT_SECS", 7 * 86_400),
    })
}

/// What a drain of one spool needs of its section: where its records go (the hub, the
/// registry) and for which federation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub relay: relay::Settings,
    pub registry: Option<registry::Settings>,
    pub federation: String,
}

/// The relay and registry directives of `Default`, overridden by a `Jurisdiction` section's
/// (a section whose other directives are wrong still has its spool drained).
pub fn spooled(
    default: &Section,
    jurisdiction: Option<&Section>,
) -> Result<Spooled, Vec<ConfigError>> {
    let layers = Layers::new(default, jurisdiction);
    let federation = layers.get("FEDERATION_NAME").map_or_else(String::new, |d| d.value.clone());
    let spooled = Spooled { relay: relay(&layers), registry: registry(&layers), federation };
    layers.finish(spooled)
}

fn rules(layers: &Layers) -> Rules {
    let name = |directive: &str| -> String {
        match layers.required(directive) {
            Some(d) if is_name(&d.value) => d.value.clone(),
            Some(d) => {
                layers.problem(invalid(d, "[A-Za-z0-9][A-Za-z0-9_-]*"));
                "INVALID".to_owned()
            }
            None => "MISSING".to_owned(),
        }
    };
    let federation_name = name("FEDERATION_NAME");
    let jurisdiction_name = name("JURISDICTION_NAME");
    let no_domain = layers.parsed("COOKIE_NO_DOMAIN", false, boolean, "yes or no");
    let federation_domain = match layers.get("FEDERATION_DOMAIN") {
        Some(d)
            if d.value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && !d.value.is_empty() =>
        {
            Some(d.value.clone())
        }
        Some(d) => {
            layers.problem(invalid(d, "a domain name"));
            None
        }
        None if no_domain || layers.mentions("FEDERATION_DOMAIN") => None,
        None => {
            layers.problem(ConfigError::general(
                "FEDERATION_DOMAIN is required unless COOKIE_NO_DOMAIN is yes",
            ));
            None
        }
    };
    let path = layers.parsed(
        "COOKIE_PATH",
        "/".to_owned(),
        |v| (v.starts_with('/') && cookie_attribute(v)).then(|| v.to_owned()),
        "a path starting with /",
    );
    let cookie = CookieAttributes {
        path,
        domain: if no_domain { None } else { federation_domain.clone() },
        secure: layers.parsed("SECURE_MODE", true, boolean, "on or off"),
    };
    let name_compare = layers.parsed(
        "NAME_COMPARE",
        NameCompare::Case,
        |v| match v.to_ascii_lowercase().as_str() {
            "case" | "default" => Some(NameCompare::Case),
            "nocase" => Some(NameCompare::NoCase),
            _ => None,
        },
        "case, nocase or default",
    );
    let cookie_syntax = layers.parsed(
        "COOKIE_SYNTAX",
        CookieSyntax::default(),
        |v| v.parse().ok(),
        "a COOKIE_SYNTAX name",
    );
    let signout_handler = layers.get("SIGNOUT_HANDLER").and_then(|d| {
        HandlerDirective::parse(&d.value)
            .map_err(|why| {
                layers.problem(ConfigError::at(d.line, format!("SIGNOUT_HANDLER: {why}")))
            })
            .ok()
    });
    let allow = layers
        .all("SIGNOUT_HANDLER_ALLOW")
        .into_iter()
        .filter_map(|d| {
            AllowRule::parse(&d.value)
                .map_err(|why| {
                    layers.problem(ConfigError::at(d.line, format!("SIGNOUT_HANDLER_ALLOW: {why}")))
                })
                .ok()
        })
        .collect();
    let cross_site = layers.parsed(
        "SIGNOUT_CROSS_SITE",
        CrossSite::default(),
        |v| v.parse().ok(),
        "navigate, deny or allow",
    );
    let clear_site_data = layers.parsed(
        "CLEAR_SITE_DATA",
        None,
        clear_site_data,
        "off or a list of cache, cookies, storage, executionContexts, *",
    );
    let clients = layers
        .all("SIGNOUT_CLIENT")
        .into_iter()
        .filter_map(|d| {
            let parsed = d.value.split_once(char::is_whitespace).and_then(|(id, url)| {
                let url = urls::parse_plain_http(url.trim())?;
                Some((id.to_owned(), String::from(url)))
            });
            if parsed.is_none() {
                layers.problem(invalid(d, "ID https://registered.example/sign-out-url"));
            }
            parsed
        })
        .collect();
    Rules {
        clients,
        federation_name,
        jurisdiction_name,
        federation_domain,
        cookie,
        name_compare,
        cookie_syntax,
        signout_handler,
        allow,
        cross_site,
        clear_site_data,
    }
}

fn relay(layers: &Layers) -> relay::Settings {
    let base_url = match layers.get("IDMS_BASE_API_URL") {
        None => None,
        Some(d) => match urls::parse_plain_http(&d.value) {
            Some(_) => Some(d.value.clone()),
            _ => {
                layers.problem(invalid(d, "an http or https URL without credentials"));
                None
            }
        },
    };
    // The request's Host header chooses the section (Apache's default `UseCanonicalName Off`):
    // a section with a hub of its own must not send it `Default`'s token.
    if let Some(own) = layers.jurisdiction.and_then(|s| s.last("IDMS_BASE_API_URL"))
        && layers.jurisdiction.and_then(|s| s.last("IDMS_API_TOKEN_ENV")).is_none()
    {
        layers.problem(ConfigError::at(
            own.line,
            "IDMS_BASE_API_URL: a Jurisdiction section with a hub of its own must name its own \
             token variable (IDMS_API_TOKEN_ENV) too",
        ));
    }
    let token_env = layers.parsed(
        "IDMS_API_TOKEN_ENV",
        "COMMONS_PROFILES_API_TOKEN".to_owned(),
        variable_name,
        "an environment variable name",
    );
    let username_map = username_map(layers, "RELAY_USERNAME_MAP");
    // Absolute: a spool is reached from `/` (it is where the checks start).
    let path = |v: &str| (v.starts_with('/') && !v.contains('\0')).then(|| v.to_owned());
    let identity = layers.parsed(
        "RELAY_IDENTITY",
        RelayIdentity::RemoteUser,
        |v| match v.to_ascii_lowercase().as_str() {
            "remote-user" => Some(RelayIdentity::RemoteUser),
            "cookies" => Some(RelayIdentity::Cookies),
            _ => None,
        },
        "remote-user or cookies",
    );
    let send_logout_at = layers.parsed("RELAY_SEND_LOGOUT_AT", false, boolean, "yes or no");
    // A late signal ends sessions opened after the signout, unless the hub knows when it
    // happened (README, "Network-wide signout").
    let max_age = if send_logout_at { 86_400 } else { 900 };
    relay::Settings {
        base_url,
        token_env,
        identity,
        max_signals: layers.parsed(
            "RELAY_MAX_SIGNALS",
            8,
            |v| v.parse().ok().filter(|&n| n > 0),
            "a positive number",
        ),
        send_logout_at,
        username_map,
        timeout_secs: layers.parsed(
            "RELAY_TIMEOUT_SECS",
            15,
            seconds,
            "a positive number of seconds",
        ),
        spool_dir: layers.parsed(
            "RELAY_SPOOL_DIR",
            "/var/spool/dacs-signout".to_owned(),
            path,
            "an absolute path",
        ),
        spool_max: layers.parsed(
            "RELAY_SPOOL_MAX",
            10_000,
            |v| v.parse().ok().filter(|&n| n > 0),
            "a positive number",
        ),
        log: layers.parsed("RELAY_LOG", None, |v| path(v).map(Some), "an absolute path"),
        max_age_secs: layers.parsed(
            "RELAY_MAX_AGE_SECS",
            max_age,
            seconds,
            "a positive number of seconds",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Source};

    fn settings(body: &str) -> Result<super::Settings, super::ConfigError> {
        let text = format!("<Configuration><Default>\n{body}\n</Default></Configuration>");
        Config::parse(&text, Source::BuiltIn).unwrap().settings("").map_err(|mut p| p.0.remove(0))
    }

    const BASE: &str =
        "FEDERATION_NAME \"EX\"\nJURISDICTION_NAME \"J\"\nFEDERATION_DOMAIN \"ex.org\"";

    #[test]
    fn defaults() {
        let s = settings(BASE).unwrap();
        assert_eq!(s.rules.cookie.path, "/");
        assert_eq!(s.rules.cookie.domain.as_deref(), Some("ex.org"));
        assert!(s.rules.cookie.secure);
        assert_eq!(s.relay.timeout_secs, 15);
        assert_eq!(s.relay.token_env, "COMMONS_PROFILES_API_TOKEN");
        assert_eq!(s.rules.clear_site_data, None);
    }

    #[test]
    fn bad_values_name_their_line() {
        for (extra, line) in [
            ("SECURE_MODE \"maybe\"", 5),
            ("NAME_COMPARE \"fuzzy\"", 5),
            ("COOKIE_PATH \"/a;b\"", 5),
            ("COOKIE_SYNTAX \"COOKIE_X\"", 5),
            ("SIGNOUT_CROSS_SITE \"sometimes\"", 5),
            ("RELAY_TIMEOUT_SECS \"0\"", 5),
            ("SIGNOUT_HANDLER_ALLOW \"javascript:alert(1)\"", 5),
            ("SIGNOUT_HANDLER \"goto x\"", 5),
            ("IDMS_BASE_API_URL \"ftp://x/\"", 5),
            ("CLEAR_SITE_DATA \"everything\"", 5),
        ] {
            let e = settings(&format!("{BASE}\n{extra}")).unwrap_err();
            assert_eq!(e.line, Some(line), "{extra}: {e}");
        }
    }

    #[test]
    fn required_directives() {
        assert!(settings("JURISDICTION_NAME \"J\"\nFEDERATION_DOMAIN \"x\"").is_err());
        assert!(settings("FEDERATION_NAME \"EX\"\nJURISDICTION_NAME \"J\"").is_err());
        assert!(
            settings("FEDERATION_NAME \"EX\"\nJURISDICTION_NAME \"J\"\nCOOKIE_NO_DOMAIN \"yes\"")
                .is_ok()
        );
    }

    #[test]
    fn clear_site_data_values() {
        let s = settings(&format!("{BASE}\nCLEAR_SITE_DATA \"cookies, cache\"")).unwrap();
        assert_eq!(s.rules.clear_site_data.as_deref(), Some("\"cookies\", \"cache\""));
    }
}

#[cfg(test)]
mod relay_tests {
    use super::super::{Config, Source};
    use crate::relay::RelayIdentity;

    const TEXT: &str = "<Configuration>\n<Default>\nFEDERATION_NAME \"EX\"\nJURISDICTION_NAME \"J\"\n\
        COOKIE_NO_DOMAIN \"yes\"\nIDMS_BASE_API_URL \"https://hub.example/api/v1/\"\n</Default>\n\
        <Jurisdiction uri=\"a.example\">\nIDMS_BASE_API_URL \"https://other.example/api/v1/\"\n\
        </Jurisdiction>\n<Jurisdiction uri=\"b.example\">\n\
        IDMS_BASE_API_URL \"https://other.example/api/v1/\"\nIDMS_API_TOKEN_ENV \"OTHER_TOKEN\"\n\
        </Jurisdiction>\n</Configuration>";

    /// The Host header picks the section: a section with a hub of its own must not send it
    /// `Default`'s token.
    #[test]
    fn a_section_with_its_own_hub_names_its_own_token() {
        let config = Config::parse(TEXT, Source::BuiltIn).unwrap();
        let e = config.settings("a.example/cgi-bin/x").unwrap_err().0.remove(0);
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.message.contains("IDMS_API_TOKEN_ENV"), "{e}");
        let b = config.settings("b.example/cgi-bin/x").unwrap();
        assert_eq!(b.relay.token_env, "OTHER_TOKEN");
        let default = config.settings("c.example/").unwrap();
        assert_eq!(default.relay.token_env, "COMMONS_PROFILES_API_TOKEN");
        assert_eq!(config.check().len(), 1);
    }

    #[test]
    fn relay_defaults_and_their_dependence_on_logout_at() {
        let config = Config::parse(TEXT, Source::BuiltIn).unwrap();
        let relay = config.settings("").unwrap().relay;
        assert_eq!(relay.identity, RelayIdentity::RemoteUser);
        assert_eq!((relay.max_signals, relay.max_age_secs, relay.send_logout_at), (8, 900, false));
        let text = TEXT.replace(
            "COOKIE_NO_DOMAIN \"yes\"",
            "COOKIE_NO_DOMAIN \"yes\"\nRELAY_SEND_LOGOUT_AT \"yes\"\nRELAY_IDENTITY \"cookies\"",
        );
        let relay = Config::parse(&text, Source::BuiltIn).unwrap().settings("").unwrap().relay;
        assert_eq!((relay.identity, relay.max_age_secs), (RelayIdentity::Cookies, 86_400));
        for bad in
            ["RELAY_IDENTITY \"everyone\"", "RELAY_MAX_SIGNALS \"0\"", "RELAY_SEND_LOGOUT_AT \"x\""]
        {
            let text = TEXT
                .replace("COOKIE_NO_DOMAIN \"yes\"", &format!("COOKIE_NO_DOMAIN \"yes\"\n{bad}"));
            let e = Config::parse(&text, Source::BuiltIn)
                .unwrap()
                .settings("")
                .unwrap_err()
                .0
                .remove(0);
            assert_eq!(e.line, Some(6), "{bad}: {e}");
        }
    }
}
