//! Tidiness rules the compiler cannot check.
//!
//! No SQL, T-SQL, PowerShell or shell text in Rust string literals outside
//! tests: every script fleetform runs goes through a template, where the
//! dialect's escaping applies and the grammar tests can parse it
//! (docs/ARCHITECTURE.md). A literal that looks like a statement, a
//! cmdlet or a shell command is reported with its file and line.

use std::path::{Path, PathBuf};

/// What script text looks like: statements as they start, T-SQL variables,
/// cmdlets, shell commands.
const SCRIPT_PATTERNS: &[&str] = &[
    r"\bSELECT\s+(\*|[A-Za-z_@(\x22\[]|DISTINCT|TOP)",
    r"\bINSERT\s+INTO\b",
    r"\bUPDATE\s+\S+\s+SET\b",
    r"\bDELETE\s+FROM\b",
    r"\b(CREATE|ALTER|DROP)\s+(TABLE|SCHEMA|ROLE|DATABASE|LOGIN|USER|INDEX|EXTENSION|ENDPOINT|PUBLICATION|SUBSCRIPTION|SYSTEM|AVAILABILITY)\b",
    r"\bGRANT\s+\S+(\s+\S+)?\s+(ON|TO)\b",
    r"\bREVOKE\s+\S+",
    r"\b(BEGIN|COMMIT|ROLLBACK)\s+(TRANSACTION|TRAN|WORK)\b",
    r"\bROLLBACK\s*;",
    r"\bEXEC(UTE)?\s+(sp_|sys\.|msdb\.|master\.)",
    r"\bSET\s+(XACT_ABORT|NOCOUNT|statement_timeout|lock_timeout)\b",
    r"\bDECLARE\s+@",
    r"@@[A-Z]{4,}",
    r"\b(Get|Set|New|Remove|Install|Uninstall|Add|Invoke|Test|Enable|Disable|Start|Stop|Restart)-[A-Z][A-Za-z]+\b",
    r"\$env:",
    r"\b(systemctl|pg_ctl|runuser|sudo)\s+\S",
    r"\b(mkdir\s+-p|rm\s+-[rf]+|chmod\s+[0-7]{3}|chown\s+\S)",
    r"\bset\s+-e",
];

fn patterns() -> Vec<regex::Regex> {
    SCRIPT_PATTERNS
        .iter()
        .map(|pattern| regex::Regex::new(pattern).unwrap())
        .collect()
}

/// The string literals of Rust source `text` outside its test module: the
/// line each starts on and its contents (escapes left as written).
fn string_literals(text: &str) -> Vec<(usize, String)> {
    // Test modules sit at the end of a file, after `#[cfg(test)]`.
    let code = match text.find("\n#[cfg(test)]") {
        Some(end) => &text[..end],
        None => text,
    };
    let bytes = code.as_bytes();
    let mut literals = Vec::new();
    let mut line = 1;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\n' => {
                line += 1;
                index += 1;
            }
            // Comments are not code.
            b'/' if bytes.get(index + 1) == Some(&b'/') => {
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                index += 2;
                while index + 1 < bytes.len() && !(bytes[index] == b'*' && bytes[index + 1] == b'/')
                {
                    if bytes[index] == b'\n' {
                        line += 1;
                    }
                    index += 1;
                }
                index += 2;
            }
            // A character literal, not a lifetime: 'x' or '\x'.
            b'\''
                if bytes.get(index + 2) == Some(&b'\'')
                    || (bytes.get(index + 1) == Some(&b'\\')
                        && bytes[index + 2..]
                            .iter()
                            .take(10)
                            .any(|byte| *byte == b'\'')) =>
            {
                index += 1;
                while index < bytes.len() && bytes[index] != b'\'' {
                    if bytes[index] == b'\\' {
                        index += 1;
                    }
                    index += 1;
                }
                index += 1;
            }
            b'r' if matches!(bytes.get(index + 1), Some(b'#') | Some(b'"'))
                && (index == 0 || !bytes[index - 1].is_ascii_alphanumeric()) =>
            {
                let mut hashes = 0;
                let mut cursor = index + 1;
                while bytes.get(cursor) == Some(&b'#') {
                    hashes += 1;
                    cursor += 1;
                }
                if bytes.get(cursor) != Some(&b'"') {
                    index += 1;
                    continue;
                }
                let closing = format!("\"{}", "#".repeat(hashes));
                let start = cursor + 1;
                let end = code[start..]
                    .find(&closing)
                    .map_or(code.len(), |offset| start + offset);
                literals.push((line, code[start..end].to_string()));
                line += code[start..end].matches('\n').count();
                index = end + closing.len();
            }
            b'"' => {
                let start = index + 1;
                let mut cursor = start;
                while cursor < bytes.len() && bytes[cursor] != b'"' {
                    if bytes[cursor] == b'\\' {
                        cursor += 1;
                    }
                    cursor += 1;
                }
                let literal = &code[start..cursor.min(code.len())];
                literals.push((line, literal.to_string()));
                line += literal.matches('\n').count();
                index = cursor + 1;
            }
            _ => index += 1,
        }
    }
    literals
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// What in `text` looks like script text, by line.
fn script_text(text: &str) -> Vec<(usize, String)> {
    let patterns = patterns();
    string_literals(text)
        .into_iter()
        .filter(|(_, literal)| patterns.iter().any(|pattern| pattern.is_match(literal)))
        .collect()
}

#[test]
fn no_script_text_in_rust_string_literals_outside_tests() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, literal) in script_text(&text) {
            found.push(format!(
                "{}:{line}: {literal}",
                file.strip_prefix(&root).unwrap().display()
            ));
        }
    }
    assert!(
        found.is_empty(),
        "script text in Rust string literals (write it as a template under modules/ or templates/):\n{}",
        found.join("\n")
    );
}

/// The rule catches what it is for (the transaction probe that once sat in
/// the SQL Server connector, a cmdlet, a shell command) and leaves messages,
/// test modules and comments alone.
#[test]
fn the_rule_finds_script_text_and_only_that() {
    let code = r##"
fn probe() -> &'static str {
    // SELECT 1 in a comment is fine.
    let message = "cannot create the ledger: grant CREATE on the database";
    let hint = "the account needs the permission; check the SQL Server error log";
    let c = '"';
    let probe = "SELECT (SELECT @@TRANCOUNT AS open FOR JSON PATH, WITHOUT_ARRAY_WRAPPER);";
    let raw = r#"Install-WindowsFeature -Name Failover-Clustering"#;
    let shell = format!("systemctl restart {}", name);
    probe
}

#[cfg(test)]
mod tests {
    const IN_A_TEST: &str = "DROP TABLE fleetform.ledger";
}
"##;
    let found: Vec<usize> = script_text(code)
        .into_iter()
        .map(|(line, _)| line)
        .collect();
    assert_eq!(found, vec![7, 8, 9], "{:?}", script_text(code));
}
