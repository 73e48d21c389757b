//! The page's HTML: plain, accessible markup that works without scripts. Times are shown as
//! written when the page was made (relative, and absolute in UTC); `page.js`, if it runs,
//! rewrites them in the browser's time zone and keeps the relative ones current.

use std::fmt::Write;

use crate::board::{Cull, PassSummary, ServerView, Snapshot};
use crate::keepalive::KeepAlive;
use crate::reasons::{CullReason, Verdict};
use crate::signals::IdleBy;
use crate::timestamp::format_utc;

/// `&`, `<`, `>`, `"` and `'` escaped, for text and attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "3 hours 5 minutes", "12 minutes", "40 seconds", "2 days 1 hour".
pub fn human_duration(seconds: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = seconds.max(0.0).round() as u64;
    let unit = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => unit(s, "second"),
        (0, 0, m) => unit(m, "minute"),
        (0, h, 0) => unit(h, "hour"),
        (0, h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
        (d, 0, _) => unit(d, "day"),
        (d, h, _) => format!("{} {}", unit(d, "day"), unit(h, "hour")),
    }
}

/// "in 12 minutes" or "12 minutes ago", as of `now`.
pub fn relative(at: f64, now: f64) -> String {
    // Passes come seconds apart: "now" is for the same second, or twenty rows would read it.
    if (at - now).abs() < 1.0 {
        "now".to_owned()
    } else if at > now {
        format!("in {}", human_duration(at - now))
    } else {
        format!("{} ago", human_duration(now - at))
    }
}

/// A time, relative and absolute; the script rewrites both in the browser's zone.
pub fn time(at: f64, now: f64) -> String {
    let utc = format_utc(at);
    format!(
        "<time datetime=\"{utc}\"><span class=\"rel\">{}</span> <span class=\"abs\">({})</span></time>",
        relative(at, now),
        utc.replace('T', " ").replace('Z', " UTC"),
    )
}

/// How long a server has been idle, and by whose count.
fn idle_for(view: &ServerView) -> String {
    let idle = view
        .inactive
        .map_or_else(|| "unknown".to_owned(), human_duration);
    if view.idle_by == IdleBy::Work {
        format!("no kernel or terminal activity for {idle}")
    } else {
        format!("{idle}, as the Hub counts it")
    }
}

fn server_name(view: &ServerView) -> String {
    if view.server.is_empty() {
        "Default server".to_owned()
    } else {
        format!("Server <q>{}</q>", escape(&view.server))
    }
}

/// The server's stop comes when its keep-alive ends (an idle stop; a maximum age is not kept).
fn waits_for_keep_alive(view: &ServerView) -> bool {
    view.kept_until
        .is_some_and(|until| view.stop_at.is_some_and(|at| at <= until + 1.0))
}

/// What will happen to a server, and why, in one sentence of HTML.
pub fn verdict(view: &ServerView, now: f64) -> String {
    match view.verdict {
        Verdict::Stop => return format!("Stopped by the culler: {}.", view.reason.for_people()),
        Verdict::WouldStop => {
            return "Would be stopped now (the culler is in a dry run).".to_owned()
        }
        Verdict::Keep => {}
    }
    let why = match view.stop_reason {
        Some(CullReason::MaxAge) => "it reaches the maximum age".to_owned(),
        Some(_) if waits_for_keep_alive(view) => {
            "your keep-alive ends, if it is idle then".to_owned()
        }
        Some(_) => {
            let whose = match (&view.profile, view.group_limit) {
                (Some(profile), _) => {
                    format!(" (the limit of its profile <q>{}</q>)", escape(profile))
                }
                (None, true) => " (your group's limit)".to_owned(),
                (None, false) => String::new(),
            };
            format!("it has been idle for {}{whose}", human_duration(view.limit))
        }
        None => String::new(),
    };
    match view.stop_at {
        Some(at) => format!(
            "<strong>Will be stopped {}</strong>, once {why}. Not yet, because {}.",
            time(at.max(now), now),
            view.reason.for_people(),
        ),
        None => format!(
            "<strong>Not stopped</strong>: {}.",
            view.reason.for_people()
        ),
    }
}

pub struct UserPage<'a> {
    pub prefix: &'a str,
    pub user: &'a str,
    pub operator: bool,
    pub csrf: &'a str,
    pub snapshot: &'a Snapshot,
    pub views: &'a [ServerView],
    pub max_keep_alive: f64,
    pub now: f64,
    pub notice: Option<&'a str>,
}

fn head(prefix: &str, title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · cull-idle</title>\
         <link rel=\"stylesheet\" href=\"{prefix}static/page.css\">\
         <script src=\"{prefix}static/page.js\" defer></script></head><body>"
    )
}

/// The heading, who is logged in, the links beside it, and for a browser session (its `csrf`
/// token) a button to log out, which posts: a link could be followed from any site.
fn header(
    title: &str,
    (user, csrf): (&str, &str),
    prefix: &str,
    links: &[(String, &str)],
) -> String {
    let mut out = format!(
        "<header><h1>{title}</h1><p>Logged in as <strong>{}</strong>",
        escape(user)
    );
    for (href, text) in links {
        let _ = write!(out, " · <a href=\"{href}\">{text}</a>");
    }
    if !csrf.is_empty() {
        let _ = write!(
            out,
            " · <form method=\"post\" action=\"{prefix}logout\" class=\"logout\">\
             <input type=\"hidden\" name=\"_csrf\" value=\"{}\"><button>Log out</button></form>",
            escape(csrf)
        );
    }
    out.push_str("</p></header><main>");
    out
}

fn as_of(snapshot: &Snapshot, now: f64) -> String {
    match snapshot.at {
        Some(at) => format!(
            "<p class=\"as-of\">As the culler saw it at its last check, {}{}.</p>",
            time(at, now),
            if snapshot.complete {
                ""
            } else {
                " (that check could not see every server)"
            }
        ),
        None => {
            "<p class=\"as-of\">The culler has not checked the servers yet; reload in a moment.</p>"
                .to_owned()
        }
    }
}

/// Keep-alive lengths to offer: an hour, then doublings, up to and including the maximum.
fn choices(max: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut s = 3600.0_f64.min(max);
    while s < max {
        out.push(s);
        s *= 2.0;
    }
    out.push(max);
    out
}

fn keep_form(page: &UserPage<'_>, view: &ServerView) -> String {
    if page.max_keep_alive <= 0.0 || view.verdict != Verdict::Keep {
        return String::new();
    }
    let server = escape(&view.server);
    let mut form = format!(
        "<form method=\"post\" action=\"{}keep-alive\" class=\"keep\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\"><input type=\"hidden\" name=\"server\" value=\"{server}\">\
         <label>Keep it running for <select name=\"seconds\">",
        page.prefix,
        escape(page.csrf),
    );
    for s in choices(page.max_keep_alive) {
        let _ = write!(form, "<option value=\"{s}\">{}</option>", human_duration(s));
    }
    form.push_str("</select></label> <button name=\"action\" value=\"keep\">Keep alive</button>");
    if view.kept_until.is_some() {
        form.push_str(" <button name=\"action\" value=\"cancel\" class=\"secondary\">Stop keeping it alive</button>");
    }
    form.push_str("</form>");
    form
}

pub fn user_page(page: &UserPage<'_>) -> String {
    let now = page.now;
    let mut out = head(page.prefix, "Your servers");
    let mut links = Vec::new();
    if page.operator {
        links.push((format!("{}admin", page.prefix), "Operators' view"));
    }
    out.push_str(&header(
        "Your servers",
        (page.user, page.csrf),
        page.prefix,
        &links,
    ));
    if let Some(notice) = page.notice {
        let _ = write!(
            out,
            "<p class=\"notice\" role=\"status\">{}</p>",
            escape(notice)
        );
    }
    out.push_str(&as_of(page.snapshot, now));
    if page.views.is_empty() && page.snapshot.at.is_some() {
        out.push_str("<p>You have no running server.</p>");
    }
    for view in page.views {
        let _ = write!(
            out,
            "<section class=\"server\"><h2>{}</h2><dl>",
            server_name(view)
        );
        let _ = write!(out, "<dt>Idle for</dt><dd>{}</dd>", idle_for(view));
        let _ = write!(
            out,
            "<dt>What happens</dt><dd class=\"verdict\">{}</dd>",
            verdict(view, now)
        );
        if let Some(at) = view.warned_at {
            let _ = write!(out, "<dt>Warning</dt><dd>Given {}</dd>", time(at, now));
        }
        if let Some(until) = view.kept_until {
            let _ = write!(
                out,
                "<dt>Kept alive</dt><dd>Until {}</dd>",
                time(until, now)
            );
        }
        out.push_str("</dl>");
        out.push_str(&keep_form(page, view));
        out.push_str("</section>");
    }
    out.push_str("</main></body></html>\n");
    out
}

pub struct AdminPage<'a> {
    pub prefix: &'a str,
    pub user: &'a str,
    /// The browser session's CSRF token, for its logout; empty for a token's request.
    pub csrf: &'a str,
    pub snapshot: &'a Snapshot,
    pub passes: &'a [PassSummary],
    pub keep_alives: &'a [KeepAlive],
    pub culls: &'a [Cull],
    pub now: f64,
}

/// Why a server is due, said next to its keep-alive when the stop waits for its end.
fn due_why(view: &ServerView) -> String {
    let reason = view.stop_reason.unwrap_or(CullReason::Idle);
    if reason != CullReason::MaxAge && waits_for_keep_alive(view) {
        format!("{reason}, once its keep-alive ends")
    } else {
        reason.to_string()
    }
}

fn culls_table(out: &mut String, culls: &[Cull], now: f64) {
    let _ = write!(out, "<h2 id=\"culls\">Recent culls ({})</h2>", culls.len());
    if culls.is_empty() {
        out.push_str("<p>None since the culler started.</p>");
        return;
    }
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>When</th><th>User</th><th>Server</th><th>Why</th><th>Done</th><th>Pass</th></tr></thead><tbody>");
    for cull in culls {
        let server = cull
            .server
            .as_deref()
            .map_or_else(|| "<i>the user, deleted</i>".to_owned(), server_cell);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{server}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(cull.at, now),
            escape(&cull.user),
            cull.reason,
            cull.outcome,
            time(cull.pass_started, now),
        );
    }
    out.push_str("</tbody></table></div>");
}

fn when(view: &ServerView, now: f64) -> String {
    match (view.verdict, view.stop_at) {
        (Verdict::Keep, Some(at)) => time(at.max(now), now),
        (Verdict::Keep, None) => "never, as things stand".to_owned(),
        _ => "this pass".to_owned(),
    }
}

/// A server's name in a table: the default server has none.
fn server_cell(server: &str) -> String {
    if server.is_empty() {
        "<i>default</i>".to_owned()
    } else {
        escape(server)
    }
}

fn passes_table(out: &mut String, passes: &[PassSummary], now: f64) {
    // What an operator looks for first (errors, what was done) before the sizes.
    out.push_str("<h2 id=\"passes\">Last passes</h2><div class=\"scroll\"><table><thead><tr><th>Started</th><th>Took</th><th>Errors</th><th>Stopped</th><th>Users deleted</th><th>Warned</th><th>Kept alive</th><th>Users</th><th>Servers</th></tr></thead><tbody>");
    for pass in passes {
        let _ = write!(
            out,
            "<tr><td>{}{}</td><td>{:.2} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(pass.started, now),
            if pass.complete { "" } else { " <b>incomplete</b>" },
            pass.seconds,
            pass.errors,
            pass.stopped,
            pass.deleted,
            pass.warned,
            pass.kept_alive,
            pass.users_seen,
            pass.servers_seen,
        );
    }
    out.push_str("</tbody></table></div>");
}

pub fn admin_page(page: &AdminPage<'_>) -> String {
    let now = page.now;
    let mut out = head(page.prefix, "What the culler will do");
    let links = [(page.prefix.to_owned(), "Your servers")];
    out.push_str(&header(
        "What the culler will do",
        (page.user, page.csrf),
        page.prefix,
        &links,
    ));
    out.push_str(&as_of(page.snapshot, now));
    let due = page.snapshot.due_within(3600.0);
    let _ = write!(
        out,
        "<h2 id=\"due\">Stopped within the hour ({})</h2>",
        due.len()
    );
    if due.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>User</th><th>Server</th><th>When</th><th>Why</th></tr></thead><tbody>");
        for view in due {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&view.user),
                server_cell(&view.server),
                when(view, now),
                due_why(view),
            );
        }
        out.push_str("</tbody></table></div>");
    }
    let _ = write!(
        out,
        "<h2 id=\"kept\">Keep-alives in force ({})</h2>",
        page.keep_alives.len()
    );
    if page.keep_alives.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>User</th><th>Server</th><th>Until</th><th>Set</th></tr></thead><tbody>");
        for k in page.keep_alives {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&k.user),
                server_cell(&k.server),
                time(k.until, now),
                time(k.set_at, now)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    culls_table(&mut out, page.culls, now);
    passes_table(&mut out, page.passes, now);
    let _ = write!(
        out,
        "<h2 id=\"servers\">Every running server ({})</h2>",
        page.snapshot.views.len()
    );
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>User</th><th>Server</th><th>Idle for</th><th>Verdict</th><th>When</th><th>Reason</th></tr></thead><tbody>");
    for view in &page.snapshot.views {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            escape(&view.user),
            server_cell(&view.server),
            view.inactive
                .map_or_else(|| "unknown".to_owned(), human_duration),
            view.verdict.label(),
            when(view, now),
            view.reason,
            view.detail
                .as_deref()
                .map(|d| format!(" ({})", escape(d)))
                .unwrap_or_default(),
        );
    }
    out.push_str("</tbody></table></div></main></body></html>\n");
    out
}

/// A short page for an error or a notice.
pub fn message_page(prefix: &str, text: &str) -> String {
    format!(
        "{}<main><p>{}</p><p><a href=\"{prefix}\">Back to your servers</a></p></main></body></html>\n",
        head(prefix, "cull-idle"),
        escape(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_durations_read_well() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(human_duration(40.0), "40 seconds");
        assert_eq!(human_duration(60.0), "1 minute");
        assert_eq!(human_duration(3600.0 + 300.0), "1 hour 5 minutes");
        assert_eq!(human_duration(7200.0), "2 hours");
        assert_eq!(human_duration(86_400.0 * 2.0 + 3600.0), "2 days 1 hour");
        assert_eq!(relative(1720.0, 1000.0), "in 12 minutes");
        assert_eq!(relative(1000.0, 1720.0), "12 minutes ago");
        assert_eq!(relative(1010.0, 1000.0), "in 10 seconds");
        assert_eq!(relative(1000.4, 1000.0), "now");
    }

    #[test]
    fn a_server_s_verdict_names_where_its_limit_comes_from() {
        use crate::board::view;
        use crate::policy::LimitFrom;
        let due = Some((CullReason::Idle, 600.0));
        let of = |from| view("u", "", None, Some(300.0), (900.0, from), due, 1000.0);
        let profile = verdict(&of(LimitFrom::Profile("<gpu>".into())), 1000.0);
        assert!(
            profile.contains("idle for 15 minutes (the limit of its profile <q>&lt;gpu&gt;</q>)"),
            "{profile}"
        );
        assert!(
            profile.ends_with("Not yet, because it was in use recently."),
            "{profile}"
        );
        assert!(verdict(&of(LimitFrom::Group), 1000.0).contains("(your group's limit)"));
        assert!(!verdict(&of(LimitFrom::Timeout), 1000.0).contains("limit)"));
    }

    /// A default server idle 50 minutes of its hour, stopped in `due` if given.
    fn idle_view(due: Option<(CullReason, f64)>) -> ServerView {
        use crate::policy::LimitFrom;
        crate::board::view(
            "u",
            "",
            None,
            Some(3000.0),
            (3600.0, LimitFrom::Timeout),
            due,
            1000.0,
        )
    }

    #[test]
    fn idleness_by_work_is_said_as_work_not_as_the_hub_s_count() {
        let mut view = idle_view(None);
        assert_eq!(idle_for(&view), "50 minutes, as the Hub counts it");
        view.idle_by = IdleBy::Work;
        assert_eq!(
            idle_for(&view),
            "no kernel or terminal activity for 50 minutes"
        );
    }

    #[test]
    fn a_server_due_after_its_keep_alive_says_so_in_the_operators_list() {
        let mut view = idle_view(Some((CullReason::Idle, 600.0)));
        assert_eq!(due_why(&view), "idle");
        view.kept_until = view.stop_at;
        assert_eq!(due_why(&view), "idle, once its keep-alive ends");
    }

    #[test]
    fn keep_alive_choices_end_at_the_maximum() {
        assert_eq!(choices(7200.0), [3600.0, 7200.0]);
        assert_eq!(choices(10_000.0), [3600.0, 7200.0, 10_000.0]);
        assert_eq!(choices(600.0), [600.0]);
    }
}
