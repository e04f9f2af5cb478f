//! Script templates: every SQL, T-SQL and PowerShell text fleetform runs is a
//! minijinja template under `modules/` or `templates/`, rendered here.
//!
//! Escaping is the engine's job, not the template author's: the file
//! extension picks a dialect (`.sql` PostgreSQL, `.tsql` T-SQL, `.ps1`
//! PowerShell, `.sh` POSIX shell) and every `{{ value }}` is written as a quoted literal of that
//! dialect. Identifiers go through the `ident` filter, which quotes them as
//! identifiers and marks them safe. The built-in `safe` filter is removed, so
//! a template cannot opt out: forgetting `ident` gives a script with a literal
//! where a name belongs (a syntax error), never an injection.
//!
//! This module owns rendering only; it never runs a script.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use include_dir::{Dir, include_dir};
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

static MODULES_DIRECTORY: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/modules");
static TEMPLATES_DIRECTORY: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Shown instead of a secret value in every rendering meant for people.
pub const SENSITIVE: &str = "(sensitive)";

/// The script languages fleetform writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    TransactSql,
    PowerShell,
    Shell,
}

impl Dialect {
    /// The dialect of a template file, from its extension.
    pub fn of_file(name: &str) -> Option<Dialect> {
        if name.ends_with(".sql") {
            Some(Dialect::Postgres)
        } else if name.ends_with(".tsql") {
            Some(Dialect::TransactSql)
        } else if name.ends_with(".ps1") {
            Some(Dialect::PowerShell)
        } else if name.ends_with(".sh") {
            Some(Dialect::Shell)
        } else {
            None
        }
    }

    /// The extension of this dialect's template files (`sql`, `tsql`, `ps1`, `sh`).
    pub fn extension(self) -> &'static str {
        match self {
            Dialect::Postgres => "sql",
            Dialect::TransactSql => "tsql",
            Dialect::PowerShell => "ps1",
            Dialect::Shell => "sh",
        }
    }

    /// The dialect whose templates end in `.extension`.
    pub fn from_extension(extension: &str) -> Option<Dialect> {
        Dialect::of_file(&format!("x.{extension}"))
    }

    fn auto_escape_name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::TransactSql => "tsql",
            Dialect::PowerShell => "powershell",
            Dialect::Shell => "shell",
        }
    }

    fn from_auto_escape(auto_escape: &AutoEscape) -> Option<Dialect> {
        match auto_escape {
            AutoEscape::Custom(name) => match name.as_ref() {
                "postgres" => Some(Dialect::Postgres),
                "tsql" => Some(Dialect::TransactSql),
                "powershell" => Some(Dialect::PowerShell),
                "shell" => Some(Dialect::Shell),
                _ => None,
            },
            _ => None,
        }
    }

    /// `text` as a string literal of this dialect.
    pub fn literal(self, text: &str) -> Result<String, String> {
        if text.contains('\0') {
            return Err("a value contains a NUL character, which no script can carry".into());
        }
        Ok(match self {
            // E'...' behaves the same whatever standard_conforming_strings says,
            // so a backslash can never end the literal early.
            Dialect::Postgres if text.contains('\\') => {
                format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
            }
            Dialect::Postgres => format!("'{}'", text.replace('\'', "''")),
            Dialect::TransactSql => format!("N'{}'", text.replace('\'', "''")),
            Dialect::PowerShell => {
                // PowerShell also ends a single-quoted string at the typographic
                // single quotes, so each of them is doubled too.
                let mut quoted = String::with_capacity(text.len() + 2);
                quoted.push('\'');
                for character in text.chars() {
                    if matches!(
                        character,
                        '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}'
                    ) {
                        quoted.push(character);
                    }
                    quoted.push(character);
                }
                quoted.push('\'');
                quoted
            }
            // Nothing is special inside single quotes but the quote itself,
            // which closes, is escaped outside and reopens: ' becomes '\''.
            Dialect::Shell => format!("'{}'", text.replace('\'', "'\\''")),
        })
    }

    /// `name` as a quoted identifier of this dialect.
    pub fn identifier(self, name: &str) -> Result<String, String> {
        if name.contains('\0') {
            return Err("a name contains a NUL character".into());
        }
        match self {
            Dialect::Postgres => Ok(format!("\"{}\"", name.replace('"', "\"\""))),
            Dialect::TransactSql => Ok(format!("[{}]", name.replace(']', "]]"))),
            Dialect::PowerShell => Err(
                "PowerShell has no quoted identifiers: insert the value as a string literal".into(),
            ),
            Dialect::Shell => Err(
                "the shell has no quoted identifiers: insert the value as a string literal".into(),
            ),
        }
    }

    fn null(self) -> &'static str {
        match self {
            Dialect::Postgres | Dialect::TransactSql => "NULL",
            Dialect::PowerShell => "$null",
            Dialect::Shell => "''",
        }
    }

    fn boolean(self, value: bool) -> &'static str {
        match (self, value) {
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
            (Dialect::TransactSql, true) => "1",
            (Dialect::TransactSql, false) => "0",
            (Dialect::PowerShell, true) => "$true",
            (Dialect::PowerShell, false) => "$false",
            (Dialect::Shell, true) => "true",
            (Dialect::Shell, false) => "false",
        }
    }
}

/// Every template of the product, compiled once.
#[derive(Clone)]
pub struct Templates {
    environment: Arc<Environment<'static>>,
}

impl Templates {
    /// The templates built into the binary (`modules/` and `templates/`).
    pub fn embedded() -> Result<Self> {
        let mut files = Vec::new();
        collect_files(&MODULES_DIRECTORY, "modules", &mut files);
        collect_files(&TEMPLATES_DIRECTORY, "templates", &mut files);
        Self::from_files(files)
    }

    /// Templates from `(name, source)` pairs; names are repository-relative paths.
    pub fn from_files(files: Vec<(String, String)>) -> Result<Self> {
        let mut environment = Environment::new();
        environment.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|error| anyhow!("template syntax: {error}"))?,
        );
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.set_auto_escape_callback(|name| match Dialect::of_file(name) {
            Some(dialect) => AutoEscape::Custom(dialect.auto_escape_name().into()),
            None => AutoEscape::None,
        });
        environment.set_formatter(format_value);
        // No way out of escaping from inside a template.
        environment.remove_filter("safe");
        environment.remove_filter("escape");
        environment.remove_filter("e");
        environment.add_filter("ident", identifier_filter);
        environment.add_filter("ident_list", identifier_list_filter);
        environment.add_filter("literal_list", literal_list_filter);
        environment.add_filter("ident_path", identifier_path_filter);
        environment.add_filter("keyword_list", keyword_list_filter);
        environment.add_filter("conninfo_quote", conninfo_quote_filter);
        environment.add_filter("binary", binary_filter);
        environment.add_filter("keyword", keyword_filter);
        environment.add_filter("bare_name", bare_name_filter);
        environment.add_filter("ipv4", ipv4_filter);
        environment.add_filter("json_text", json_text_filter);
        environment.add_test("matching", matching_test);
        for (name, source) in files {
            if Dialect::of_file(&name).is_none() {
                continue;
            }
            environment
                .add_template_owned(name.clone(), source)
                .with_context(|| format!("template {name} does not compile"))?;
        }
        Ok(Templates {
            environment: Arc::new(environment),
        })
    }

    pub fn exists(&self, name: &str) -> bool {
        self.environment.get_template(name).is_ok()
    }

    /// Render template `name` with `context` (any JSON value).
    pub fn render(&self, name: &str, context: &serde_json::Value) -> Result<String> {
        let template = self
            .environment
            .get_template(name)
            .with_context(|| format!("no template {name}"))?;
        let rendered = template
            .render(Value::from(Serde(context)))
            .map_err(|error| anyhow!("{}", describe_error(&error)))
            .with_context(|| format!("cannot render {name}"))?;
        Ok(rendered.trim().to_string() + "\n")
    }

    /// Evaluate a module's expression that yields a text (an identity).
    pub fn evaluate_text(&self, expression: &str, context: &serde_json::Value) -> Result<String> {
        Ok(self.evaluate(expression, context)?.to_string())
    }

    /// Evaluate a module's expression (a `risks` condition) against `context`.
    pub fn evaluate_condition(
        &self,
        expression: &str,
        context: &serde_json::Value,
    ) -> Result<bool> {
        Ok(self.evaluate(expression, context)?.is_true())
    }

    /// An expression whose value is a list (null or undefined: empty).
    pub fn evaluate_list(
        &self,
        expression: &str,
        context: &serde_json::Value,
    ) -> Result<Vec<serde_json::Value>> {
        let value = self.evaluate(expression, context)?;
        if value.is_undefined() || value.is_none() {
            return Ok(Vec::new());
        }
        match serde_json::to_value(&value)? {
            serde_json::Value::Array(items) => Ok(items),
            other => anyhow::bail!("`{expression}` is not a list but {other}"),
        }
    }

    fn evaluate(&self, expression: &str, context: &serde_json::Value) -> Result<Value> {
        let compiled = self
            .environment
            .compile_expression(expression)
            .map_err(|error| anyhow!("{}", describe_error(&error)))
            .with_context(|| format!("cannot compile the expression `{expression}`"))?;
        compiled
            .eval(Value::from(Serde(context)))
            .map_err(|error| anyhow!("{}", describe_error(&error)))
            .with_context(|| format!("cannot evaluate `{expression}`"))
    }
}

/// Files of an embedded directory, with names prefixed by `prefix`.
fn collect_files(directory: &Dir<'_>, prefix: &str, files: &mut Vec<(String, String)>) {
    for file in directory.files() {
        if let Some(text) = file.contents_utf8() {
            files.push((
                format!("{prefix}/{}", file.path().to_string_lossy()),
                text.to_string(),
            ));
        }
    }
    for child in directory.dirs() {
        collect_files(child, prefix, files);
    }
}

/// The shared files under `templates/` (engine scripts, capability rules).
pub fn embedded_template_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    collect_files(&TEMPLATES_DIRECTORY, "templates", &mut files);
    files
}

/// The files under `modules/` (module.yaml and templates).
pub fn embedded_module_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    collect_files(&MODULES_DIRECTORY, "modules", &mut files);
    files
}

fn describe_error(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn dialect_of(state: &State) -> Result<Dialect, Error> {
    Dialect::from_auto_escape(state.auto_escape()).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "this filter only works in .sql, .tsql, .ps1 and .sh templates",
        )
    })
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// Auto-escaping: every value printed into a script becomes a literal.
fn format_value(
    output: &mut minijinja::Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    let Some(dialect) = Dialect::from_auto_escape(state.auto_escape()) else {
        return minijinja::escape_formatter(output, state, value);
    };
    let text = literal_of(dialect, value)?;
    output.write_str(&text).map_err(Error::from)
}

fn literal_of(dialect: Dialect, value: &Value) -> Result<String, Error> {
    use minijinja::value::ValueKind;
    if value.is_safe() {
        return Ok(value.to_string());
    }
    if value.kind() == minijinja::value::ValueKind::Map
        && value.len() == Some(1)
        && let Ok(code) = value.get_attr(TRUSTED_SQL_KEY)
        && let Some(code) = code.as_str()
    {
        return Ok(code.to_string());
    }
    match value.kind() {
        ValueKind::None => Ok(dialect.null().to_string()),
        ValueKind::Bool => Ok(dialect.boolean(value.is_true()).to_string()),
        ValueKind::Number => {
            let text = value.to_string();
            // Only plain numbers reach a script unquoted.
            if text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E' | '+'))
            {
                Ok(text)
            } else {
                dialect.literal(&text).map_err(invalid)
            }
        }
        ValueKind::String => dialect
            .literal(value.as_str().unwrap_or_default())
            .map_err(invalid),
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            "an undefined value was printed",
        )),
        other => Err(invalid(format!(
            "a {other} cannot be printed into a script: loop over it, or use ident_list / literal_list"
        ))),
    }
}

/// `value is matching("[a-z0-9_]+")`: the whole string against a regular
/// expression (module conditions: is this name a valid slot name?).
fn matching_test(value: &Value, pattern: &str) -> Result<bool, Error> {
    let expression = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|error| invalid(format!("`{pattern}` is not a regular expression: {error}")))?;
    Ok(value.as_str().is_some_and(|text| expression.is_match(text)))
}

fn identifier_filter(state: &State, value: &Value) -> Result<Value, Error> {
    let dialect = dialect_of(state)?;
    let name = value
        .as_str()
        .ok_or_else(|| invalid(format!("ident needs a string, got {}", value.kind())))?;
    dialect
        .identifier(name)
        .map(Value::from_safe_string)
        .map_err(invalid)
}

/// `a.b` as `"a"."b"`: dotted names such as extension parameters.
fn identifier_path_filter(state: &State, value: &Value) -> Result<Value, Error> {
    let dialect = dialect_of(state)?;
    let name = value
        .as_str()
        .ok_or_else(|| invalid(format!("ident_path needs a string, got {}", value.kind())))?;
    let parts: Result<Vec<String>, String> = name
        .split('.')
        .map(|part| dialect.identifier(part))
        .collect();
    parts
        .map(|parts| Value::from_safe_string(parts.join(".")))
        .map_err(invalid)
}

fn list_items(value: &Value, filter: &str) -> Result<Vec<Value>, Error> {
    value
        .try_iter()
        .map(Iterator::collect)
        .map_err(|_| invalid(format!("{filter} needs a list, got {}", value.kind())))
}

fn identifier_list_filter(state: &State, value: &Value) -> Result<Value, Error> {
    let dialect = dialect_of(state)?;
    let mut quoted = Vec::new();
    for item in list_items(value, "ident_list")? {
        let name = item
            .as_str()
            .ok_or_else(|| invalid(format!("ident_list needs strings, got {}", item.kind())))?;
        quoted.push(dialect.identifier(name).map_err(invalid)?);
    }
    Ok(Value::from_safe_string(quoted.join(", ")))
}

/// Upper-case SQL keywords (privileges such as `SELECT` or `ALTER SYSTEM`),
/// comma-separated and written as they are. Anything but capital letters and
/// single spaces is refused, so no value can smuggle code in this way.
fn keyword_list_filter(value: &Value) -> Result<Value, Error> {
    let mut words = Vec::new();
    for item in list_items(value, "keyword_list")? {
        let word = item
            .as_str()
            .ok_or_else(|| invalid(format!("keyword_list needs strings, got {}", item.kind())))?;
        let valid = !word.is_empty()
            && word.split(' ').all(|part| {
                part.starts_with(|c: char| c.is_ascii_uppercase())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            });
        if !valid {
            return Err(invalid(format!("{word:?} is not an SQL keyword")));
        }
        words.push(word.to_string());
    }
    Ok(Value::from_safe_string(words.join(", ")))
}

/// One keyword from a value (an enum of the schema such as `BULK_LOGGED`),
/// written bare: capital words and underscores only, else an error.
fn keyword_filter(value: &Value) -> Result<Value, Error> {
    keyword_list_filter(&Value::from(vec![value.clone()]))
}

/// A name SQL Server takes only bare (a collation): letters, digits and
/// underscores only, else an error.
fn bare_name_filter(value: &Value) -> Result<Value, Error> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(format!("bare_name needs a string, got {}", value.kind())))?;
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid(format!(
            "{text:?} is not a plain name (letters, digits, _)"
        )));
    }
    Ok(Value::from_safe_string(text.to_string()))
}

/// An IPv4 address written bare (T-SQL's LISTENER_IP = (10.0.0.5)),
/// after checking that it is one.
fn ipv4_filter(value: &Value) -> Result<Value, Error> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(format!("ipv4 needs a string, got {}", value.kind())))?;
    let address: std::net::Ipv4Addr = text
        .parse()
        .map_err(|_| invalid(format!("{text:?} is not an IPv4 address")))?;
    Ok(Value::from_safe_string(address.to_string()))
}

/// A value as JSON text: an ordinary string, so printed it becomes a
/// literal of the dialect (discovery that hands the manifest's objects to
/// the server and gets them back).
fn json_text_filter(value: &Value) -> Result<Value, Error> {
    serde_json::to_string(value)
        .map(Value::from)
        .map_err(|error| invalid(format!("json_text: {error}")))
}

/// A binary constant (`0x5B0A…`: a SQL Server SID or password hash),
/// written bare after checking that it is nothing but hex digits. A secret's
/// placeholder passes through (plans show `(sensitive)`).
fn binary_filter(value: &Value) -> Result<Value, Error> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(format!("binary needs a string, got {}", value.kind())))?;
    if text == SENSITIVE_TOKEN {
        return Ok(Value::from_safe_string(text.to_string()));
    }
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or_default();
    if digits.is_empty() || digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(invalid(format!(
            "{:?} is not a binary constant (0x and an even number of hex digits)",
            text.chars().take(40).collect::<String>()
        )));
    }
    Ok(Value::from_safe_string(format!(
        "0x{}",
        digits.to_ascii_uppercase()
    )))
}

/// A libpq connection-string value: single-quoted, `\\` and `'` escaped with
/// a backslash. The result is ordinary text: printed into a script it still
/// becomes a literal of the dialect.
fn conninfo_quote_filter(value: &Value) -> Result<Value, Error> {
    let text = value.as_str().ok_or_else(|| {
        invalid(format!(
            "conninfo_quote needs a string, got {}",
            value.kind()
        ))
    })?;
    Ok(Value::from(format!(
        "'{}'",
        text.replace('\\', "\\\\").replace('\'', "\\'")
    )))
}

fn literal_list_filter(state: &State, value: &Value) -> Result<Value, Error> {
    let dialect = dialect_of(state)?;
    let mut quoted = Vec::new();
    for item in list_items(value, "literal_list")? {
        quoted.push(literal_of(dialect, &item)?);
    }
    Ok(Value::from_safe_string(quoted.join(", ")))
}

/// The key that marks a JSON value as the user's own SQL (a custom SQL
/// resource's query), written into scripts as is. Only the engine makes
/// such values, from the fields a module declares `sql`.
const TRUSTED_SQL_KEY: &str = "\u{1}fleetform-sql\u{1}";

pub fn trusted_sql(code: String) -> serde_json::Value {
    serde_json::json!({ TRUSTED_SQL_KEY: code })
}

/// Secret placeholders travel through JSON contexts as this token; the
/// renderer for people turns it into `(sensitive)` after rendering.
pub const SENSITIVE_TOKEN: &str = "\u{1}fleetform-sensitive\u{1}";

/// Replace every quoted placeholder in a rendered script by `(sensitive)`.
pub fn reveal_placeholders(script: &str, dialect: Dialect) -> String {
    let quoted = dialect
        .literal(SENSITIVE_TOKEN)
        .unwrap_or_else(|_| SENSITIVE_TOKEN.to_string());
    script
        .replace(&quoted, SENSITIVE)
        .replace(SENSITIVE_TOKEN, SENSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(name: &str, source: &str, context: serde_json::Value) -> Result<String> {
        let templates = Templates::from_files(vec![(name.to_string(), source.to_string())])?;
        templates.render(name, &context)
    }

    #[test]
    fn values_become_literals_and_names_identifiers() {
        let context =
            serde_json::json!({"name": "o'neil", "count": 3, "on": true, "nothing": null});
        assert_eq!(
            render("t.sql", "ALTER ROLE {{ name|ident }} CONNECTION LIMIT {{ count }} COMMENT {{ name }} {{ on }} {{ nothing }}", context.clone()).unwrap(),
            "ALTER ROLE \"o'neil\" CONNECTION LIMIT 3 COMMENT 'o''neil' TRUE NULL\n"
        );
        assert_eq!(
            render(
                "t.tsql",
                "{{ name|ident }} {{ name }} {{ on }}",
                context.clone()
            )
            .unwrap(),
            "[o'neil] N'o''neil' 1\n"
        );
        assert_eq!(
            render("t.ps1", "{{ name }} {{ on }} {{ nothing }}", context).unwrap(),
            "'o''neil' $true $null\n"
        );
    }

    #[test]
    fn templates_cannot_opt_out_of_escaping() {
        let error =
            render("t.sql", "{{ name|safe }}", serde_json::json!({"name": "x"})).unwrap_err();
        assert!(format!("{error:#}").contains("safe"), "{error:#}");
    }

    #[test]
    fn lists_and_undefined_values_are_errors() {
        let error =
            render("t.sql", "{{ names }}", serde_json::json!({"names": ["a"]})).unwrap_err();
        assert!(
            format!("{error:#}").contains("cannot be printed"),
            "{error:#}"
        );
        let error = render("t.sql", "{{ missing }}", serde_json::json!({})).unwrap_err();
        assert!(format!("{error:#}").contains("undefined"), "{error:#}");
        assert_eq!(
            render(
                "t.sql",
                "GRANT {{ names|ident_list }} TO x; {{ names|literal_list }}",
                serde_json::json!({"names": ["a", "b\"c"]})
            )
            .unwrap(),
            "GRANT \"a\", \"b\"\"c\" TO x; 'a', 'b\"c'\n"
        );
    }

    #[test]
    fn keyword_lists_accept_only_capital_words() {
        assert_eq!(
            render(
                "t.sql",
                "GRANT {{ p|keyword_list }}",
                serde_json::json!({"p": ["SELECT", "ALTER SYSTEM"]})
            )
            .unwrap(),
            "GRANT SELECT, ALTER SYSTEM\n"
        );
        for hostile in ["SELECT; DROP", "select", "SELECT  X", ""] {
            assert!(
                render(
                    "t.sql",
                    "{{ p|keyword_list }}",
                    serde_json::json!({"p": [hostile]})
                )
                .is_err(),
                "{hostile:?}"
            );
        }
    }

    #[test]
    fn backslashes_use_escape_string_syntax_in_postgres() {
        assert_eq!(Dialect::Postgres.literal("a\\'b").unwrap(), "E'a\\\\''b'");
    }

    #[test]
    fn powershell_doubles_typographic_quotes() {
        assert_eq!(
            Dialect::PowerShell.literal("a\u{2019}b").unwrap(),
            "'a\u{2019}\u{2019}b'"
        );
    }
}
