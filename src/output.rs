//! The one output layer: every line fleetform prints goes through here.
//!
//! Results go to stdout (so they can be piped: JSON, DOT, schemas), progress
//! and errors to stderr. Tests capture both by using `Output::capture`.

use std::io::Write;

pub struct Output {
    stdout: Box<dyn Write>,
    stderr: Box<dyn Write>,
    color: bool,
}

impl Output {
    pub fn stdio() -> Self {
        use std::io::IsTerminal;
        // Colour only for a person at a terminal who has not asked for none.
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Output {
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            color,
        }
    }

    /// Write to the given sinks (used by tests).
    pub fn to_writers(stdout: Box<dyn Write>, stderr: Box<dyn Write>) -> Self {
        Output {
            stdout,
            stderr,
            color: false,
        }
    }

    pub fn style(&self) -> crate::report::Style {
        crate::report::Style { color: self.color }
    }

    /// A result, on stdout.
    pub fn result(&mut self, text: &str) {
        let _ = self.stdout.write_all(text.as_bytes());
        let _ = self.stdout.flush();
    }

    /// A status line for a person, on stderr.
    pub fn status(&mut self, text: &str) {
        let _ = writeln!(self.stderr, "{text}");
    }

    /// An error and its causes, once, on stderr.
    pub fn error_chain(&mut self, error: &anyhow::Error) {
        let _ = writeln!(self.stderr, "error: {error}");
        for cause in error.chain().skip(1) {
            let _ = writeln!(self.stderr, "  caused by: {cause}");
        }
    }
}
