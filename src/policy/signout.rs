//! The signout decision: what to expire and where the browser goes. Pure: no I/O.

use std::fmt;
use std::path::PathBuf;

use url::Url;

use super::Rules;
use super::driveby;
use super::handler::{self, HandlerDirective, Refusal};
use crate::cgi::{Format, Method, Request};
use crate::credentials::expiry::set_cookie;
use crate::credentials::{Filter, Selection};
use crate::error::Error;

/// What the HTML answer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// `Status: 302` to this absolute URL (a CGI `Location` that is a bare path would be a
    /// server-side redirect, and the browser would never see the expiring cookies).
    Redirect(String),
    /// `SIGNOUT_HANDLER "file PATH"`: read at the edge, sent as the page.
    File(PathBuf),
    /// `SIGNOUT_HANDLER "message TEXT"`.
    Message(String),
    /// The built-in page (and every XML and JSON answer).
    BuiltIn,
}

/// How the handler was decided, for the log line (`handler=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerNote {
    /// The `DACS_SIGNOUT_HANDLER` argument, when one was given and refused.
    pub refused: Option<Refusal>,
    pub handled: Handled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Neither an argument nor a directive.
    NoHandler,
    /// XML and JSON never redirect.
    NotHtml,
    /// As DACS does: a handler only for someone who was signed in.
    NothingRemoved,
    /// The `DACS_SIGNOUT_HANDLER` argument.
    Argument,
    /// The built-in page, after a refused argument and with no directive.
    BuiltIn,
    DirectiveUrl,
    /// `SIGNOUT_HANDLER "url /path"` with no `SERVER_NAME` to resolve it against.
    DirectiveUrlUnresolved,
    DirectiveFile,
    DirectiveMessage,
    /// Keyrock's form: the registered sign-out URL of `client_id`.
    Client,
}

impl Handled {
    pub fn as_str(self) -> &'static str {
        match self {
            Handled::NoHandler => "none",
            Handled::NotHtml => "ignored-not-html",
            Handled::NothingRemoved => "unused-nothing-removed",
            Handled::Argument => "argument",
            Handled::BuiltIn => "builtin",
            Handled::DirectiveUrl => "directive-url",
            Handled::DirectiveUrlUnresolved => "directive-url-unresolved",
            Handled::DirectiveFile => "directive-file",
            Handled::DirectiveMessage => "directive-message",
            Handled::Client => "client",
        }
    }
}

impl fmt::Display for HandlerNote {
    /// `argument`, `directive-url`, `refused-not-allowed/builtin`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(refusal) = self.refused {
            write!(f, "refused-{}/", refusal.as_str())?;
        }
        f.write_str(self.handled.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub selection: Selection<'a>,
    /// One `Set-Cookie` value per expired cookie.
    pub set_cookies: Vec<String>,
    pub page: Page,
    pub handler: HandlerNote,
    /// The `Clear-Site-Data` value to send, if any: only after a full signout that removed
    /// something (it clears every cookie of the site, which would undo a selective signout).
    pub clear_site_data: Option<String>,
}

/// What a signout request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    SignOut(Decision<'a>),
    /// Another site sent the browser here without the user's click (§8): the HTML answer is a
    /// page whose one button sends the same arguments again, from this origin. Nothing changes.
    Confirm,
}

pub fn decide<'a>(request: &'a Request, rules: &Rules) -> Result<Verdict<'a>, Error> {
    // Keyrock's form names a registered app, or is refused before anything changes.
    let client = match request.args.client_id.as_deref() {
        Some(id) => Some(client(rules, id)?),
        None if request.method == Method::Delete => {
            return Err(Error::bad_request("a DELETE signout (Keyrock's form) needs client_id"));
        }
        None => None,
    };
    match driveby::check(&request.fetch, rules.cross_site)? {
        driveby::Verdict::Proceed => {
            let mut decision = sign_out(request, rules);
            // As Keyrock does: exactly the registered URL (no DACS arguments), whether or not
            // anything was removed. Only HTML redirects.
            if let Some(url) = client
                && request.args.format == Format::Html
            {
                decision.page = Page::Redirect(url.to_owned());
                decision.handler = HandlerNote { refused: None, handled: Handled::Client };
            }
            Ok(Verdict::SignOut(decision))
        }
        driveby::Verdict::Confirm if request.args.format == Format::Html => Ok(Verdict::Confirm),
        driveby::Verdict::Confirm => {
            Err(Error::forbidden("a signout started by another site needs the user's click"))
        }
    }
}

/// The sign-out URL registered for `id` (`SIGNOUT_CLIENT`); an unknown id is a 401, as
/// Keyrock answers.
fn client<'r>(rules: &'r Rules, id: &str) -> Result<&'r str, Error> {
    rules
        .clients
        .iter()
        .find(|(registered, _)| registered == id)
        .map(|(_, url)| url.as_str())
        .ok_or_else(|| Error::unauthorized("not allowed to perform logout: unknown client_id"))
}

fn sign_out<'a>(request: &'a Request, rules: &Rules) -> Decision<'a> {
    let filter = Filter {
        username: request.args.username.clone(),
        jurisdiction: request.args.jurisdiction.clone(),
    };
    let selection = Selection::select(
        &request.cookie_header,
        &rules.federation_name,
        &filter,
        rules.name_compare,
    );
    let syntax = request.args.cookie_syntax.unwrap_or(rules.cookie_syntax);
    let set_cookies =
        selection.expired_names().map(|name| set_cookie(name, &rules.cookie, syntax)).collect();
    let removed_any = !selection.removed.is_empty();
    let (page, handler) = page(request, rules, removed_any);
    let clear_site_data =
        rules.clear_site_data.clone().filter(|_| selection.full_signout && removed_any);
    Decision { selection, set_cookies, page, handler, clear_site_data }
}

fn page(request: &Request, rules: &Rules, removed_any: bool) -> (Page, HandlerNote) {
    let note = |handled| HandlerNote { refused: None, handled };
    let asked = request.args.handler.as_deref();
    let configured = rules.signout_handler.as_ref();
    if asked.is_none() && configured.is_none() {
        return (Page::BuiltIn, note(Handled::NoHandler));
    }
    if request.args.format != Format::Html {
        return (Page::BuiltIn, note(Handled::NotHtml));
    }
    if !removed_any {
        return (Page::BuiltIn, note(Handled::NothingRemoved));
    }
    // Normalised (lowercase host, IDNA, default port dropped) as rule origins are.
    let own_origin = request
        .server
        .origin()
        .and_then(|o| Url::parse(&o).ok())
        .map(|u| u.origin().ascii_serialization());
    let redirect = |url: Url| {
        Page::Redirect(handler::location(url, &rules.federation_name, &rules.jurisdiction_name))
    };
    let mut refused = None;
    if let Some(candidate) = asked {
        match handler::allowed(candidate, &rules.allow, own_origin.as_deref()) {
            Ok(url) => return (redirect(url), note(Handled::Argument)),
            Err(refusal) => refused = Some(refusal),
        }
    }
    let (page, handled) = match configured {
        None => (Page::BuiltIn, Handled::BuiltIn),
        Some(HandlerDirective::Url(target)) => {
            let base = own_origin.as_deref().and_then(|o| Url::parse(o).ok());
            match Url::parse(target).or_else(|e| base.ok_or(e).and_then(|b| b.join(target))) {
                Ok(url) => (redirect(url), Handled::DirectiveUrl),
                Err(_) => (Page::BuiltIn, Handled::DirectiveUrlUnresolved),
            }
        }
        Some(HandlerDirective::File(path)) => (Page::File(path.clone()), Handled::DirectiveFile),
        Some(HandlerDirective::Message(text)) => {
            (Page::Message(text.clone()), Handled::DirectiveMessage)
        }
    };
    (page, HandlerNote { refused, handled })
}
