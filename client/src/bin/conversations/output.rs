//! What the command line prints: JSON with `--json` (one resource per line for lists, so `jq`
//! and line-oriented tools can read them), else a readable table.

use std::io::Write;

use conversations_client::{Conversation, Message};
use serde::Serialize;

/// Writes one line to standard output. When the reader has gone (`conversations messages … |
/// head`), the output is no longer wanted: the process ends quietly with success instead of
/// panicking as `println!` does on a closed pipe.
fn emit(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(format_args!("{line}\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("conversations: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`emit`].
macro_rules! say {
    ($($arg:tt)*) => {
        emit(format_args!($($arg)*))
    };
}

pub struct Out {
    pub json: bool,
}

fn json_line(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(line) => say!("{line}"),
        Err(e) => eprintln!("conversations: cannot render JSON: {e}"),
    }
}

fn or_dash(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("-")
}

/// `text` on one line of at most `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= width {
        flat
    } else {
        let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn state(c: &Conversation) -> &'static str {
    if c.deleted == Some(true) {
        "DELETED"
    } else if c.is_completed() {
        "COMPLETED"
    } else {
        "IN_PROGRESS"
    }
}

impl Out {
    pub fn conversation(&self, c: &Conversation) {
        if self.json {
            return json_line(c);
        }
        let rows = [
            ("id", or_dash(c.id()).to_owned()),
            ("displayName", or_dash(c.display_name.as_deref()).to_owned()),
            ("state", state(c).to_owned()),
            ("agents", c.agents.as_deref().unwrap_or_default().join(", ")),
            (
                "labels",
                c.labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("messageCount", c.message_count.unwrap_or(0).to_string()),
            ("createTime", or_dash(c.create_time.as_deref()).to_owned()),
            (
                "lastUsedTime",
                or_dash(c.last_used_time.as_deref()).to_owned(),
            ),
            ("owner", or_dash(c.owner.as_deref()).to_owned()),
            ("etag", or_dash(c.etag.as_deref()).to_owned()),
        ];
        for (name, value) in rows {
            say!("{name:<13} {value}");
        }
        if let Some(messages) = &c.messages {
            say!("");
            self.messages(messages);
        }
    }

    pub fn conversations(&self, list: &[Conversation]) {
        if self.json {
            return list.iter().for_each(json_line);
        }
        say!(
            "{:<38} {:<11} {:>8}  {:<27}  DISPLAY NAME",
            "ID",
            "STATE",
            "MESSAGES",
            "LAST USED"
        );
        for c in list {
            say!(
                "{:<38} {:<11} {:>8}  {:<27}  {}",
                or_dash(c.id()),
                state(c),
                c.message_count.unwrap_or(0),
                or_dash(c.last_used_time.as_deref()),
                one_line(or_dash(c.display_name.as_deref()), 60)
            );
        }
    }

    /// What purge answers: `{}`, or a line saying it.
    pub fn purged(&self, id: &str) {
        if self.json {
            return say!("{{}}");
        }
        say!("conversations/{id} purged");
    }

    pub fn message(&self, m: &Message) {
        if self.json {
            return json_line(m);
        }
        self.messages(std::slice::from_ref(m));
    }

    pub fn messages(&self, list: &[Message]) {
        if self.json {
            return list.iter().for_each(json_line);
        }
        for m in list {
            let kind = m.kind.map_or("-", |k| k.as_str());
            let mut text = m.content.clone().unwrap_or_default();
            for call in m.tool_calls.iter().flatten() {
                text.push_str(&format!(" [calls {}#{}]", call.name, call.id));
            }
            if let Some(id) = &m.tool_call_id {
                text = format!("[answers {id}] {text}");
            }
            say!(
                "{:>6}  {:<6}  {}  {}",
                m.order.unwrap_or(0),
                kind,
                or_dash(m.create_time.as_deref()),
                one_line(text.trim_start(), 100)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn long_or_multi_line_text_is_cut_to_one_line() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("héllo", 5), "héllo");
    }
}
