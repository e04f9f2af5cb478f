//! T-SQL that fleetform renders, parsed by a real T-SQL grammar (grammars-v4,
//! built by scripts/tsql-grammar.sh): hostile values stay one literal or one
//! identifier and a statement stays one statement. This checks the text we
//! generate against the language's grammar; no SQL Server runs here.

mod tsql {
    include!("tsql/checker.rs");
}

use fleetform::connector::sqlserver::split_batches;
use fleetform::template::Templates;
use tsql::check;

fn render(template: &str, value: &str) -> String {
    let templates = Templates::from_files(vec![("t.tsql".to_string(), template.to_string())])
        .expect("templates compile");
    templates
        .render("t.tsql", &serde_json::json!({ "value": value }))
        .expect("renders")
}

/// The injection corpus of tests/injection.rs, and SQL Server's longest
/// identifier (128 characters).
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "x]; DROP DATABASE y;--",
        "x'; DROP TABLE t;--",
        "x\"; DROP ROLE postgres;--",
        "a\\'; SELECT 1;--",
        "$(Remove-Item C:\\ -Recurse -Force)",
        "a\u{2019}; Stop-Computer; \u{2018}",
        "$$; DROP SCHEMA public; $$",
        "/* open comment",
        "-- line comment",
        "line\nbreak'\r\n; GO\nDROP DATABASE y",
        "x\nGO\nDROP LOGIN [sa] --",
        "N'nested'",
        "]]]'''\"\"\"",
        "ünïcødé ☃ 数据库",
    ]
    .iter()
    .map(|value| value.to_string())
    .collect();
    values.push("l".repeat(128));
    values
}

#[test]
fn the_checker_rejects_broken_statements() {
    let broken = [
        "CREATE LOGIN WITH PASSWORD;",
        "CREATE LOGIN [unclosed WITH PASSWORD = N'x';",
        "SELECT N'unclosed;",
        "ALTER DATABASE [x] SET RECOVERY;",
    ];
    let results = check(&broken.map(String::from));
    for (script, result) in broken.iter().zip(&results) {
        assert!(!result.ok, "{script} parsed, but is not T-SQL");
        assert!(!result.errors.is_empty(), "{script}: no error reported");
    }
}

#[test]
fn hostile_values_stay_one_literal_or_one_identifier() {
    let templates = [
        "SELECT {{ value }} AS {{ value|ident }};",
        "CREATE LOGIN {{ value|ident }} WITH PASSWORD = {{ value }}, CHECK_POLICY = ON;",
        "ALTER SERVER ROLE [sysadmin] ADD MEMBER {{ value|ident }};",
        "IF NOT EXISTS (SELECT 1 FROM sys.server_principals WHERE name = {{ value }}) BEGIN CREATE LOGIN {{ value|ident }} WITH PASSWORD = {{ value }}; END;",
        "ALTER DATABASE {{ value|ident }} SET RECOVERY FULL WITH NO_WAIT;",
    ];
    let mut scripts = Vec::new();
    for template in templates {
        for value in hostile_values() {
            scripts.push(render(template, &value));
        }
    }
    let results = check(&scripts);
    for (script, result) in scripts.iter().zip(&results) {
        assert!(result.ok, "does not parse: {script}\n{:?}", result.errors);
        assert_eq!(result.statements, 1, "not one statement: {script}");
        // The executor's batch splitter keeps it in one batch too.
        assert_eq!(
            split_batches(script).len(),
            1,
            "split into batches: {script}"
        );
    }
}

/// The engine-wide scripts of SQL Server (facts, lock, ledger), rendered as
/// the engine renders them: each parses, and hostile values in them change
/// nothing in their statements (the same count as with plain values).
#[test]
fn the_engine_scripts_for_sql_server_parse() {
    let templates = Templates::embedded().expect("embedded templates");
    let render_all = |text: &str| -> Vec<(String, String)> {
        let base = serde_json::json!({
            "target": "sql-a", "marker": "[managed by fleetform: environment example-mssql]", "lock_key": 7380987362153459314i64,
            "environment": text, "lock_timeout_ms": 300000, "ledger_exists": true,
        });
        let record = |carry: bool, dropped: &[&str]| {
            serde_json::json!({
                "environment": text, "run_id": "1a2b-3c", "commit": null, "actor": text,
                "resource": "SqlConfiguration/tuning@sql-a", "action": "update", "result": "converged",
                "desired_fingerprint": "f1", "observed_fingerprint": "f2",
                "observed_items": "{\"maxDop\":\"x\"}", "message": text, "script": "EXEC sp_configure;",
                "kind": "SqlConfiguration", "database": null,
                "spec": "{\"options\":{\"maxDegreeOfParallelism\":8}}",
                "carry_items": if carry { serde_json::json!("options") } else { serde_json::Value::Null },
                "dropped_items": dropped,
            })
        };
        // Every engine-wide template, found in the files: a new one is
        // parsed without being added here.
        let mut scripts = Vec::new();
        for (file, _) in fleetform::template::embedded_template_files() {
            let Some(name) = file
                .strip_prefix("templates/sqlserver/")
                .and_then(|name| name.strip_suffix(".tsql"))
            else {
                continue;
            };
            if name == "ledger/record" {
                continue;
            }
            let script = templates
                .render(&file, &base)
                .unwrap_or_else(|error| panic!("{name}: {error:#}"));
            scripts.push((name.to_string(), script));
        }
        for required in [
            "server",
            "lock_try",
            "ledger/prepare",
            "connector/open_transactions",
        ] {
            assert!(
                scripts.iter().any(|(name, _)| name == required),
                "{required} was not found among the templates"
            );
        }
        let mut no_ledger = base.clone();
        no_ledger["ledger_exists"] = serde_json::json!(false);
        scripts.push((
            "ledger/latest without a ledger".into(),
            templates
                .render("templates/sqlserver/ledger/latest.tsql", &no_ledger)
                .unwrap(),
        ));
        for (label, context) in [
            ("ledger/record", record(false, &[])),
            ("ledger/record carrying items", record(true, &[])),
            (
                "ledger/record carrying items, some reset",
                record(true, &["xpCmdshell", text]),
            ),
        ] {
            scripts.push((
                label.into(),
                templates
                    .render("templates/sqlserver/ledger/record.tsql", &context)
                    .unwrap(),
            ));
        }
        scripts
    };
    let plain = render_all("prod");
    let hostile = render_all("x'; DROP TABLE msdb.fleetform.ledger; --]");
    let texts: Vec<String> = plain
        .iter()
        .chain(&hostile)
        .map(|(_, script)| script.clone())
        .collect();
    let results = check(&texts);
    let (plain_results, hostile_results) = results.split_at(plain.len());
    for (((label, script), plain), hostile) in plain.iter().zip(plain_results).zip(hostile_results)
    {
        assert!(
            plain.ok,
            "{label} does not parse:\n{script}\n{:?}",
            plain.errors
        );
        assert!(
            hostile.ok,
            "{label} with hostile values does not parse: {:?}",
            hostile.errors
        );
        assert!(plain.statements >= 1, "{label}: no statement");
        assert_eq!(
            plain.statements, hostile.statements,
            "{label}: hostile values changed the statements"
        );
    }
}

/// The connector's statements after every login and around a transactional
/// script, as it loads them: each parses, and the probe after every batch is a query the
/// connector can read (`{"open": n}`), not a reserved word (Msg 156).
#[test]
fn the_connectors_own_statements_parse() {
    use fleetform::connector::sqlserver::TransactionStatements;
    let statements = TransactionStatements::embedded().expect("connector statements");
    let texts = [
        &statements.open,
        &statements.begin,
        &statements.open_transactions,
        &statements.rollback,
        &statements.commit,
    ]
    .map(|text| text.to_string());
    for (statement, result) in texts.iter().zip(check(&texts)) {
        assert!(result.ok, "{statement}: {:?}", result.errors);
    }
}
