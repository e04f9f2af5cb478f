//! Diagnostics: the problems validation finds, and how they are shown.
//!
//! Validation collects every problem in one run instead of stopping at the
//! first, so every stage returns its diagnostics next to its result. A
//! diagnostic names the file, line and column, the JSON pointer inside the
//! document, the object (`Kind/name`) when known, a message and an optional
//! hint. This module renders them for people and for machines; it must not
//! decide what is a problem.

use std::fmt::Write as _;

use serde::Serialize;

use crate::yaml::Location;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Path of the file, relative to the repository root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// JSON pointer of the offending value inside its YAML document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The manifest object, as `Kind/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: None,
            line: None,
            column: None,
            pointer: None,
            object: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn in_file(mut self, file: impl Into<String>, location: Location) -> Self {
        self.file = Some(file.into());
        if location.line > 0 {
            self.line = Some(location.line);
            self.column = Some(location.column);
        }
        self
    }

    pub fn at_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn for_object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_optional_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column`, as editors and CI annotations expect it.
    pub fn position(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            _ => file.to_string(),
        })
    }
}

/// Sort diagnostics into reading order: by file, then position, then message.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|left, right| {
        (
            &left.file,
            left.line,
            left.column,
            &left.message,
            left.severity,
        )
            .cmp(&(
                &right.file,
                right.line,
                right.column,
                &right.message,
                right.severity,
            ))
    });
}

pub fn count(diagnostics: &[Diagnostic], severity: Severity) -> usize {
    diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == severity)
        .count()
}

/// Render for a person: one block per diagnostic, readable without colour.
pub fn render_human(diagnostics: &[Diagnostic]) -> String {
    let mut text = String::new();
    for diagnostic in diagnostics {
        let label = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(text, "{label}: {}", diagnostic.message);
        let mut where_parts = Vec::new();
        if let Some(position) = diagnostic.position() {
            where_parts.push(position);
        }
        let mut context = Vec::new();
        if let Some(object) = &diagnostic.object {
            context.push(object.clone());
        }
        if let Some(pointer) = &diagnostic.pointer
            && !pointer.is_empty()
        {
            context.push(pointer.clone());
        }
        if !context.is_empty() {
            where_parts.push(format!("({})", context.join(" ")));
        }
        if !where_parts.is_empty() {
            let _ = writeln!(text, "  --> {}", where_parts.join(" "));
        }
        if let Some(hint) = &diagnostic.hint {
            let _ = writeln!(text, "  hint: {hint}");
        }
    }
    text
}

/// The closing line of a validation run.
pub fn summary_line(diagnostics: &[Diagnostic], objects: usize, files: usize) -> String {
    let errors = count(diagnostics, Severity::Error);
    let warnings = count(diagnostics, Severity::Warning);
    let plural = |count: usize, word: &str| {
        if count == 1 {
            format!("{count} {word}")
        } else {
            format!("{count} {word}s")
        }
    };
    if errors == 0 {
        format!(
            "valid: {} in {}, {}",
            plural(objects, "object"),
            plural(files, "file"),
            plural(warnings, "warning")
        )
    } else {
        format!(
            "invalid: {}, {} in {} ({})",
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(files, "file"),
            plural(objects, "object")
        )
    }
}
