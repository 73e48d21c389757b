//! Log lines that cannot be forged: user and server names come from the Hub, and a name with
//! a newline in it would otherwise start a line of its own that looks like the culler's (a
//! fake "Culling server …" for an audit to find). Every control character in a message is
//! written as an escape, once, where the core hands its records to Python's logging.

use std::fmt::Write as _;

/// `text` with each control character (newline, tab, escape, …) written as `\n`, `\t` or
/// `\u{1b}`; `None` when there is none, the common case, so nothing is copied.
pub fn escape_controls(text: &str) -> Option<String> {
    if !text.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Wraps the logger that hands records to Python, escaping each message on the way.
pub struct Escaping<L>(pub L);

impl<L: log::Log> log::Log for Escaping<L> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.0.enabled(record.metadata()) {
            return;
        }
        let text = match record.args().as_str() {
            Some(text) => escape_controls(text),
            None => escape_controls(&record.args().to_string()),
        };
        let Some(text) = text else {
            self.0.log(record);
            return;
        };
        self.0.log(
            &log::Record::builder()
                .args(format_args!("{text}"))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .key_values(record.key_values())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_not_copied() {
        assert_eq!(escape_controls("server alice/lab"), None);
        assert_eq!(escape_controls("Ünïcode name ✓"), None);
        assert_eq!(
            escape_controls("server a/x\n[I 2026-12-04 cull_idle] Culling server b").as_deref(),
            Some("server a/x\\n[I 2026-12-04 cull_idle] Culling server b")
        );
        assert_eq!(
            escape_controls("a\tb\u{1b}[31m").as_deref(),
            Some("a\\tb\\u{1b}[31m")
        );
    }

    struct Capture(std::sync::Mutex<Vec<String>>);

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
        fn flush(&self) {}
    }

    #[test]
    fn the_wrapper_hands_on_escaped_messages() {
        let logger = Escaping(Capture(std::sync::Mutex::default()));
        let name = "evil\nname";
        log::Log::log(
            &logger,
            &log::Record::builder()
                .args(format_args!("Culling server {name}"))
                .build(),
        );
        log::Log::log(
            &logger,
            &log::Record::builder().args(format_args!("plain")).build(),
        );
        assert_eq!(
            *logger.0 .0.lock().unwrap(),
            ["Culling server evil\\nname", "plain"]
        );
    }
}
