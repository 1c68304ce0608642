//! The signout role (§1–§10) as one pipeline: the CGI request, the configuration (loaded at
//! the edge and passed in), the decision, the answer; and what happened, as an [`Outcome`]
//! that becomes the request's one log line.

use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

use crate::cgi::{Env, Format, Method, Request, Response};
use crate::config::Loaded;
use crate::error::Error;
use crate::log::LogLine;
use crate::policy::{self, Decision, HandlerNote, Page, Verdict};
use crate::relay::{self, Plan};
use crate::render::{self, Report};

/// How the edge reads a `SIGNOUT_HANDLER "file"` page.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> io::Result<Vec<u8>>;

/// What happened to one request: every field of its log line, and nothing else.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// When the request was served (Unix seconds): the line's time stamp.
    pub at: u64,
    pub status: u16,
    pub method: Option<Method>,
    /// Where the configuration came from (a path, or the built-in demo).
    pub config: Option<String>,
    pub federation: Option<String>,
    /// The section's jurisdiction (its name; for a section that cannot be used, which section).
    pub jurisdiction: Option<String>,
    pub format: Format,
    /// Credentials removed and remaining.
    pub removed: Option<usize>,
    pub remain: Option<usize>,
    pub handler: Option<HandlerNote>,
    /// Another site sent the browser without a click: the confirmation page was sent (§8).
    pub confirm: bool,
    /// A `file` handler page that could not be read (the built-in page was sent instead).
    pub handler_error: Option<String>,
    pub relay: Option<relay::Note>,
    /// The hub's token variable, when this request's environment lacks it (the delivery will
    /// fail until the relay has it).
    pub relay_token_missing: Option<String>,
    /// What the signout did to the registry (§12).
    pub revoke: Option<relay::RevokeNote>,
    /// The delivery child could not be started.
    pub relay_launch: Option<String>,
    pub remote: Option<String>,
    /// The error answered, and its log-only detail.
    pub error: Option<Error>,
}

impl Outcome {
    fn fail(&mut self, error: Error) {
        self.status = error.status().0;
        self.error = Some(error);
    }

    /// 1 after an error, as DACS exits; else 0.
    pub fn exit_code(&self) -> i32 {
        self.error.as_ref().map_or(0, Error::exit_code)
    }

    /// The request's one log line.
    pub fn log_line(&self) -> String {
        let mut line = LogLine::default();
        line.set("status", self.status);
        if let Some(method) = self.method {
            line.set("method", method.as_str());
        }
        if let Some(config) = &self.config {
            line.set("config", config);
        }
        if let Some(federation) = &self.federation {
            line.set("federation", federation);
        }
        if let Some(jurisdiction) = &self.jurisdiction {
            line.set("jurisdiction", jurisdiction);
        }
        line.set("format", self.format.as_str());
        if let (Some(removed), Some(remain)) = (self.removed, self.remain) {
            line.set("removed", removed).set("remain", remain);
        }
        if self.confirm {
            line.set("driveby", "confirm");
        }
        if let Some(handler) = &self.handler {
            line.set("handler", handler);
        }
        if let Some(why) = &self.handler_error {
            line.set("handler_error", why);
        }
        if let Some(relay) = &self.relay {
            line.set("relay", relay);
        }
        if let Some(name) = &self.relay_token_missing {
            line.set("relay_token", format!("missing: ${name} is not set"));
        }
        if let Some(revoke) = &self.revoke {
            line.set("revoke", revoke);
        }
        if let Some(why) = &self.relay_launch {
            line.set("relay_launch", format!("failed: {why}"));
        }
        if let Some(remote) = &self.remote {
            line.set("remote", remote);
        }
        if let Some(error) = &self.error {
            line.set("error", &error.message);
            if let Some(detail) = &error.detail {
                line.set("detail", detail);
            }
        }
        line.render(self.at)
    }
}

/// One served request, before it becomes bytes.
pub struct Served {
    response: Response,
    head_only: bool,
    outcome: Outcome,
    plan: Option<Plan>,
}

impl Served {
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// The bytes for stdout, the outcome and the relay's plan. A response whose headers cannot
    /// be written safely becomes a 500, and its plan is dropped: nobody was signed out.
    pub fn finish(self) -> (Vec<u8>, Outcome, Option<Plan>) {
        let Served { response, head_only, mut outcome, plan } = self;
        match response.to_bytes(head_only) {
            Ok(bytes) => (bytes, outcome, plan),
            Err(e) => {
                let bytes = render::error(&e, outcome.format)
                    .to_bytes(head_only)
                    .expect("error pages have clean headers");
                outcome.fail(e);
                (bytes, outcome, None)
            }
        }
    }
}

/// Serves one signout request at `now`.
pub fn serve(
    env: &Env,
    stdin: &mut dyn Read,
    config: &Loaded,
    now: SystemTime,
    read_file: ReadFile,
) -> Served {
    let mut outcome = Outcome {
        at: crate::time::unix_secs(now),
        format: Format::sniff(env.raw("QUERY_STRING").unwrap_or_default()),
        remote: env.soft("REMOTE_ADDR").map(str::to_owned),
        ..Outcome::default()
    };
    let head_only = env.raw("REQUEST_METHOD") == Some(b"HEAD");
    let (response, plan) = match respond(env, stdin, config, now, read_file, &mut outcome) {
        Ok((response, plan)) => {
            outcome.status = response.status;
            (response, plan)
        }
        Err(e) => {
            let response = render::error(&e, outcome.format);
            outcome.fail(e);
            (response, None)
        }
    };
    Served { response, head_only, outcome, plan }
}

fn respond(
    env: &Env,
    stdin: &mut dyn Read,
    config: &Loaded,
    now: SystemTime,
    read_file: ReadFile,
    outcome: &mut Outcome,
) -> Result<(Response, Option<Plan>), Error> {
    let request = Request::read(env, stdin)?;
    outcome.method = Some(request.method);
    outcome.format = request.args.format;
    let config = config.as_ref().map_err(|(source, e)| {
        outcome.config = Some(source.to_string());
        Error::misconfigured(format!("{source}: {e}"))
    })?;
    outcome.config = Some(config.source.to_string());
    let host_path = request.server.host_path();
    let settings = config.settings(&host_path).map_err(|e| {
        let section = config.jurisdiction_for(&host_path).and_then(|s| s.uri.as_deref());
        outcome.jurisdiction =
            Some(section.map_or("Default".to_owned(), |uri| format!("uri={uri}")));
        Error::misconfigured(format!("{}: {e}", config.source))
    })?;
    outcome.federation = Some(settings.rules.federation_name.clone());
    outcome.jurisdiction = Some(settings.rules.jurisdiction_name.clone());
    let decision = match policy::decide(&request, &settings.rules)? {
        Verdict::SignOut(decision) => decision,
        Verdict::Confirm => {
            outcome.confirm = true;
            // The program's own path, without the query: the arguments travel in the form.
            let action = match request.server.script_name.as_str() {
                "" => "?",
                path => path,
            };
            let fields = request.args.fields();
            let federation = &settings.rules.federation_name;
            return Ok((render::confirmation(federation, action, &fields), None));
        }
    };
    let file_page = file_page(&decision, request.args.format, read_file, outcome);
    let report = Report::new(&settings.rules, &decision.selection);
    let response = render::answer(&decision, &report, request.args.format, file_page);
    outcome.removed = Some(decision.selection.removed.len());
    outcome.remain = Some(decision.selection.remaining.len());
    outcome.handler = Some(decision.handler);
    let signout = relay::Signout {
        removed: &decision.selection.removed,
        remote_user: request.remote_user.as_deref(),
        jurisdiction: &settings.rules.jurisdiction_name,
        compare: settings.rules.name_compare,
        user_agent: request.user_agent.as_deref(),
        at: now,
    };
    let (note, mut plan) = relay::plan(env, &settings.relay, &signout);
    outcome.relay = Some(note);
    outcome.relay_token_missing =
        plan.as_ref().and_then(|p| p.route.as_ref()).and_then(|r| relay::missing_token(env, r));
    if let Some(registry) = &settings.registry {
        let revocation = relay::revocation(
            env,
            registry,
            &settings.rules.federation_name,
            settings.rules.name_compare,
            &decision.selection.removed,
            &request.cookie_header,
            now,
        );
        match revocation {
            Ok(None) => {}
            Ok(Some((revocation, target))) => {
                let revoking = Plan::revoking(plan, &settings.relay, revocation, target);
                outcome.revoke = revoking.revoke_note(None);
                plan = Some(revoking);
            }
            Err(note) => outcome.revoke = Some(note),
        }
    }
    Ok((response, plan))
}

/// The `SIGNOUT_HANDLER "file"` page, when the answer is one; unreadable, it is logged and the
/// built-in page is sent instead.
fn file_page(
    decision: &Decision,
    format: Format,
    read_file: ReadFile,
    outcome: &mut Outcome,
) -> Option<Vec<u8>> {
    let (Page::File(path), Format::Html) = (&decision.page, format) else { return None };
    read_file(path)
        .map_err(|e| outcome.handler_error = Some(format!("{}: {e}", path.display())))
        .ok()
}
