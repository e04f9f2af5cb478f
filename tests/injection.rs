//! Injection corpus: hostile values rendered into templates of every dialect
//! stay one literal or one identifier. Each rendered script is read back by
//! the dialect's quoting rules: the value must come back unchanged and the
//! rest of the script must be exactly what the template wrote after it.
//!
//! For PostgreSQL the same values are also created on a real server by
//! `postgres_e2e::hostile_names_are_created_verbatim_and_change_nothing_else`.
//! For T-SQL and PowerShell this test checks the quoting rules of those
//! languages as documented; no SQL Server or PowerShell runs here.

use fleetform::template::Templates;

const CORPUS: &[&str] = &[
    "x]; DROP DATABASE y;--",
    "x'; DROP TABLE t;--",
    "x\"; DROP ROLE postgres;--",
    "a\\'; SELECT 1;--",
    "back\\\\slash\\",
    "$(Remove-Item C:\\ -Recurse -Force)",
    "'+(Invoke-Expression 'calc')+'",
    "a\u{2019}; Stop-Computer; \u{2018}",
    "a\u{201B}\u{201A}b",
    "`$env:PATH`",
    "$$; DROP SCHEMA public; $$",
    "/* open comment",
    "-- line comment",
    "line\nbreak'\r\n; GO\nDROP DATABASE y",
    "N'nested'",
    "]]]'''\"\"\"",
    "ünïcødé ☃ 数据库",
    "",
];

fn render(name: &str, template: &str, value: &str) -> String {
    let templates = Templates::from_files(vec![(name.to_string(), template.to_string())])
        .expect("templates compile");
    templates
        .render(name, &serde_json::json!({ "value": value }))
        .expect("renders")
}

/// Read a quoted run that starts at the beginning of `text`: `open` is the
/// opening sequence, `close` the closing character, doubled to escape it.
/// `also_doubled` are further characters that close the run unless doubled
/// (PowerShell's typographic quotes). Returns the value and what follows.
fn read_quoted<'a>(
    text: &'a str,
    open: &str,
    close: &[char],
    backslash_escapes: bool,
) -> (String, &'a str) {
    let body = text
        .strip_prefix(open)
        .unwrap_or_else(|| panic!("expected {open:?} at the start of {text:?}"));
    let mut value = String::new();
    let mut characters = body.char_indices().peekable();
    while let Some((index, character)) = characters.next() {
        if backslash_escapes && character == '\\' {
            let (_, escaped) = characters.next().expect("an escape sequence is complete");
            value.push(escaped);
            continue;
        }
        if close.contains(&character) {
            if characters
                .peek()
                .is_some_and(|(_, next)| close.contains(next))
            {
                let (_, next) = characters.next().unwrap();
                assert_eq!(next, character, "a quote is doubled with itself");
                value.push(character);
                continue;
            }
            return (value, &body[index + character.len_utf8()..]);
        }
        value.push(character);
    }
    panic!("the quoted run never ends in {text:?}");
}

#[test]
fn postgres_literals_and_identifiers_hold_every_hostile_value() {
    for value in CORPUS {
        let script = render("t.sql", "SELECT {{ value }} AS {{ value|ident }};", value);
        let rest = script.strip_prefix("SELECT ").unwrap();
        let (literal, rest) = if rest.starts_with("E'") {
            read_quoted(rest, "E'", &['\''], true)
        } else {
            read_quoted(rest, "'", &['\''], false)
        };
        assert_eq!(&literal, value, "{script}");
        let rest = rest.strip_prefix(" AS ").unwrap();
        let (identifier, rest) = read_quoted(rest, "\"", &['"'], false);
        assert_eq!(&identifier, value, "{script}");
        assert_eq!(rest, ";\n", "{script}");
    }
}

#[test]
fn transact_sql_literals_and_identifiers_hold_every_hostile_value() {
    for value in CORPUS {
        let script = render("t.tsql", "SELECT {{ value }} AS {{ value|ident }};", value);
        let rest = script.strip_prefix("SELECT ").unwrap();
        let (literal, rest) = read_quoted(rest, "N'", &['\''], false);
        assert_eq!(&literal, value, "{script}");
        let rest = rest.strip_prefix(" AS ").unwrap();
        let (identifier, rest) = read_quoted(rest, "[", &[']'], false);
        assert_eq!(&identifier, value, "{script}");
        assert_eq!(rest, ";\n", "{script}");
    }
}

#[test]
fn powershell_single_quoted_strings_hold_every_hostile_value() {
    // PowerShell ends a single-quoted string at ' and at the typographic
    // quotes U+2018..U+201B alike; a doubled one stands for itself.
    let quotes = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];
    for value in CORPUS {
        let script = render("t.ps1", "$name = {{ value }}; Write-Output $name", value);
        let rest = script.strip_prefix("$name = ").unwrap();
        let (literal, rest) = read_quoted(rest, "'", &quotes, false);
        assert_eq!(&literal, value, "{script}");
        assert_eq!(rest, "; Write-Output $name\n", "{script}");
    }
}

#[test]
fn shell_single_quoted_words_hold_every_hostile_value() {
    for value in CORPUS {
        let script = render("t.sh", "name={{ value }}; echo \"$name\"", value);
        // POSIX: inside '...' nothing is special; '\'' is close, escaped quote, reopen.
        let mut rest = script.strip_prefix("name=").unwrap();
        let mut decoded = String::new();
        loop {
            let body = rest.strip_prefix('\'').expect("a single-quoted run");
            let end = body.find('\'').expect("the run closes");
            decoded.push_str(&body[..end]);
            rest = &body[end + 1..];
            match rest.strip_prefix("\\'") {
                Some(after) => {
                    decoded.push('\'');
                    rest = after;
                }
                None => break,
            }
        }
        assert_eq!(&decoded, value, "{script}");
        assert_eq!(rest, "; echo \"$name\"\n", "{script}");
    }
}

#[test]
fn the_shell_reads_back_every_hostile_value() {
    // A real POSIX shell (sh) evaluates the rendered assignment.
    for value in CORPUS {
        let script = render("t.sh", "name={{ value }}; printf '%s' \"$name\"", value);
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh runs");
        assert!(output.status.success(), "{script}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), *value, "{script}");
    }
}

#[test]
fn powershell_has_no_identifier_quoting_to_misuse() {
    let templates =
        Templates::from_files(vec![("t.ps1".into(), "Get-Item {{ value|ident }}".into())]).unwrap();
    let error = templates
        .render("t.ps1", &serde_json::json!({"value": "x"}))
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("no quoted identifiers"),
        "{error:#}"
    );
}

#[test]
fn a_nul_character_is_refused_rather_than_truncated() {
    for name in ["t.sql", "t.tsql", "t.ps1", "t.sh"] {
        let templates =
            Templates::from_files(vec![(name.into(), "x = {{ value }}".into())]).unwrap();
        let error = templates
            .render(name, &serde_json::json!({"value": "a\u{0}b"}))
            .unwrap_err();
        assert!(format!("{error:#}").contains("NUL"), "{name}: {error:#}");
    }
}

#[test]
fn every_shipped_template_compiles_and_every_module_loads() {
    let templates = Templates::embedded().expect("shipped templates compile");
    fleetform::modules::ModuleCatalog::embedded(
        &templates,
        &fleetform::engines::EngineCatalog::embedded().unwrap(),
    )
    .expect("shipped modules load");
}
