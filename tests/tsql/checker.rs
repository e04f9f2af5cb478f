// The T-SQL grammar checker shared by the T-SQL tests (included with
// `include!`): runs tests/tsql/TsqlCheck.java over scripts, and knows the
// statements that the grammar (grammars-v4 T-SQL) cannot parse although
// SQL Server accepts them, each listed with its reason in
// docs/verification.md.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

#[derive(Debug, serde::Deserialize)]
pub struct Checked {
    pub ok: bool,
    pub statements: usize,
    pub errors: Vec<String>,
}

/// The checker's class path, built once per test process.
pub fn class_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let output = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tsql-grammar.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "scripts/tsql-grammar.sh failed: the T-SQL checks need Java 17 and the pinned grammar downloads"
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    })
}

/// Parse each script; one result per script, in order.
pub fn check(scripts: &[String]) -> Vec<Checked> {
    for script in scripts {
        assert!(!script.contains('\0'), "a script holds a NUL: {script:?}");
    }
    let mut child = Command::new("java")
        .args(["-cp", class_path(), "TsqlCheck"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("java runs");
    let input: String = scripts.iter().map(|script| format!("{script}\0")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let results: Vec<Checked> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(results.len(), scripts.len(), "one result per script");
    results
}

/// A bracket-quoted T-SQL identifier, as fleetform writes them.
#[allow(dead_code)]
const IDENTIFIER: &str = r"\[(?:[^\]]|\]\])*\]";

/// Statements SQL Server accepts that the grammar does not know, by the id
/// docs/verification.md lists them under, each as a pattern matching the
/// whole statement as fleetform renders it.
#[allow(dead_code)]
pub fn exceptions() -> Vec<(&'static str, regex::Regex)> {
    let patterns = [
        // No DBCC TRACEON/TRACEOFF rule at all.
        ("dbcc-traceon", r"(?m)^DBCC TRACE(?:ON|OFF) \(\d+, -1\) WITH NO_INFOMSGS;$".to_string()),
        // REVOKE and DENY are only known for object permissions.
        (
            "server-revoke-deny",
            format!(r"(?m)^(?:REVOKE [A-Z_ ]+ FROM {IDENTIFIER}(?: CASCADE)?|DENY [A-Z_ ]+ TO {IDENTIFIER});$"),
        ),
        // The server permissions SQL Server 2022 added are not in its
        // list of permission names.
        (
            "server-permissions-2022",
            format!(r"(?m)^(?:GRANT|DENY) (?:VIEW SERVER (?:PERFORMANCE|SECURITY) STATE|VIEW SERVER SECURITY AUDIT|VIEW ANY (?:ERROR LOG|PERFORMANCE DEFINITION|SECURITY DEFINITION|CRYPTOGRAPHICALLY SECURED DEFINITION)|(?:CREATE|DROP) ANY EVENT SESSION|ALTER ANY EVENT SESSION [A-Z ]+) TO {IDENTIFIER};$"),
        ),
        // No QUERY_STORE among the ALTER DATABASE SET options.
        (
            "query-store",
            format!(r"(?ms)^ALTER DATABASE {IDENTIFIER} SET QUERY_STORE = (?:OFF|ON(?: \(\n.*?\n\))?);$"),
        ),
        // AUTO_CREATE_STATISTICS ON demands the optional (INCREMENTAL = ...).
        (
            "auto-create-statistics",
            format!(r"(?m)^ALTER DATABASE {IDENTIFIER} SET AUTO_CREATE_STATISTICS ON;$"),
        ),
        // MODIFY FILE ... MAXSIZE takes only a number, not UNLIMITED.
        (
            "maxsize-unlimited",
            format!(r"(?m)^ALTER DATABASE {IDENTIFIER} MODIFY FILE \(NAME = N'(?:[^']|'')*', MAXSIZE = UNLIMITED\);$"),
        ),
    ];
    patterns
        .into_iter()
        .map(|(id, pattern)| (id, regex::Regex::new(&pattern).expect("a valid pattern")))
        .collect()
}

/// `script` with every excepted statement replaced by one PRINT statement
/// (so the statement count stays), and the ids of the exceptions used.
#[allow(dead_code)]
pub fn without_exceptions(script: &str) -> (String, Vec<&'static str>) {
    // Statements inside a string literal (a script the ledger records) are
    // text, not statements: hidden while the patterns run.
    let (mut script, literals) = mask_literals(script);
    let mut used = Vec::new();
    for (id, pattern) in exceptions() {
        if pattern.is_match(&script) {
            used.push(id);
            script = pattern
                .replace_all(&script, format!("PRINT N'grammar exception: {id}';").as_str())
                .into_owned();
        }
    }
    (unmask_literals(&script, &literals), used)
}

/// `script` with the content of each string literal replaced by a numbered
/// token without quotes or line breaks, and the contents; brackets and
/// comments are skipped so a quote inside them starts nothing.
#[allow(dead_code)]
pub fn mask_literals(script: &str) -> (String, Vec<String>) {
    let mut masked = String::with_capacity(script.len());
    let mut literals = Vec::new();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut content = String::new();
                while let Some(next) = chars.next() {
                    if next == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            content.push_str("''");
                            continue;
                        }
                        break;
                    }
                    content.push(next);
                }
                masked.push_str(&format!("'\u{1}{}\u{1}'", literals.len()));
                literals.push(content);
            }
            '[' => {
                masked.push(c);
                while let Some(next) = chars.next() {
                    masked.push(next);
                    if next == ']' {
                        if chars.peek() == Some(&']') {
                            chars.next();
                            masked.push(']');
                            continue;
                        }
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                masked.push(c);
                for next in chars.by_ref() {
                    masked.push(next);
                    if next == '\n' {
                        break;
                    }
                }
            }
            _ => masked.push(c),
        }
    }
    (masked, literals)
}

#[allow(dead_code)]
fn unmask_literals(script: &str, literals: &[String]) -> String {
    let mut text = script.to_string();
    for (index, content) in literals.iter().enumerate().rev() {
        text = text.replace(&format!("'\u{1}{index}\u{1}'"), &format!("'{content}'"));
    }
    text
}

/// A plan's secret placeholders as literals the grammar takes.
#[allow(dead_code)]
pub fn with_placeholder_secrets(script: &str) -> String {
    script.replace("(sensitive)", "N'secret'")
}

/// Every script parses once the listed exceptions are set aside; returns
/// the statement count of each and the exceptions that were needed.
#[allow(dead_code)]
pub fn assert_parse(scripts: &[(String, String)]) -> (Vec<usize>, Vec<&'static str>) {
    assert_parse_with(scripts, true)
}

/// [`assert_parse`] for what was sent to a server: its secrets are values
/// already, and a `(sensitive)` in it is text (a redacted script the ledger
/// records in a literal).
#[allow(dead_code)]
pub fn assert_sent_parse(scripts: &[(String, String)]) -> (Vec<usize>, Vec<&'static str>) {
    assert_parse_with(scripts, false)
}

fn assert_parse_with(
    scripts: &[(String, String)],
    placeholders: bool,
) -> (Vec<usize>, Vec<&'static str>) {
    let mut used = Vec::new();
    let prepared: Vec<String> = scripts
        .iter()
        .map(|(_, script)| {
            let script = if placeholders {
                with_placeholder_secrets(script)
            } else {
                script.clone()
            };
            let (script, ids) = without_exceptions(&script);
            used.extend(ids);
            script
        })
        .collect();
    let results = check(&prepared);
    let mut failures = Vec::new();
    for ((label, _), (script, result)) in scripts.iter().zip(prepared.iter().zip(&results)) {
        if !result.ok {
            let errors: Vec<String> = result
                .errors
                .iter()
                .take(3)
                .map(|error| error.chars().take(200).collect())
                .collect();
            failures.push(format!("{label}:\n{script}\n{errors:?}"));
        }
    }
    assert!(failures.is_empty(), "scripts that do not parse:\n{}", failures.join("\n\n"));
    used.sort_unstable();
    used.dedup();
    (results.iter().map(|result| result.statements).collect(), used)
}
