//! The newest heartbeat-log lines, kept in memory for the operations page
//! (`/ops`), as a tracing layer beside the log writers.
//!
//! At most [`KEPT`] lines are kept, oldest dropped first; each is the time
//! (UTC), the event's message and its fields, as the heartbeat log file has
//! them. One set per process: a process runs one front end.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Most lines kept.
pub const KEPT: usize = 200;

/// The kept lines.
#[derive(Default)]
pub struct Recent {
    lines: Mutex<VecDeque<String>>,
}

impl Recent {
    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().iter().cloned().collect()
    }

    fn push(&self, line: String) {
        let mut lines = self.lines.lock();
        if lines.len() == KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// This process's heartbeat lines.
pub fn heartbeat_lines() -> &'static Recent {
    static LINES: OnceLock<Recent> = OnceLock::new();
    LINES.get_or_init(Recent::default)
}

/// The layer that fills [`heartbeat_lines`] (filter it to the heartbeat
/// target where it is added).
pub struct RecentLayer;

/// Writes `message` first, then `name=value` for each other field.
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for RecentLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut line = Line {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut line);
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        heartbeat_lines().push(format!("{now} {}{}", line.message, line.fields));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_lines() {
        let recent = Recent::default();
        for i in 0..KEPT + 5 {
            recent.push(i.to_string());
        }
        let lines = recent.lines();
        assert_eq!(lines.len(), KEPT);
        assert_eq!(lines[0], "5");
        assert_eq!(lines[KEPT - 1], (KEPT + 4).to_string());
    }
}
