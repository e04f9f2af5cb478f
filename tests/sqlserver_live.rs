//! The live SQL Server path, end to end, without SQL Server: `fleetform`
//! (the binary) plans, applies and drifts environments whose instances are
//! TDS endpoints on loopback (tests/common/tds.rs) answering from recorded
//! discovery. Every batch fleetform sends is recorded, parsed by the T-SQL
//! grammar and, per instance, its order snapshot-tested by the template it
//! came from. This verifies what fleetform sends and how it handles the
//! answers (logins refused, errors inside a transaction, a deadlock victim,
//! a statement cancelled at its timeout), not what SQL Server would do with
//! it.

mod common;
mod tsql {
    include!("tsql/checker.rs");
}

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use common::tds::{Batch, FakeSqlServer, Login, Received, Reply, Responder};
use fleetform::connector::sqlserver::{Authentication, Encrypt, SqlServerEndpoint};
use fleetform::ops::snapshot::{Snapshot, TargetSnapshot};
use fleetform::secrets::SecretRef;

const PASSWORD: &str = "loopback-only-password";
/// The secrets example-mssql's manifests name.
const SECRETS: [(&str, &str); 2] = [
    ("SALES_APP_SQL_PASSWORD", "app-password-1"),
    ("SALES_SA_PASSWORD", "sa-password-1"),
];

/// Which template of `templates/sqlserver` or `modules/sqlserver` a batch was
/// rendered from: the one most of whose lines the batch holds, a line of a
/// template read as a pattern (its `{{ ... }}` expressions match anything,
/// its `{% ... %}` lines are left out).
struct TemplateIndex {
    templates: Vec<(String, Vec<regex::Regex>)>,
}

impl TemplateIndex {
    fn new() -> TemplateIndex {
        let comment = regex::Regex::new(r"(?s)\{#.*?#\}").unwrap();
        let expression = regex::Regex::new(r"\{\{.*?\}\}").unwrap();
        let templates = fleetform::template::embedded_template_files()
            .into_iter()
            .chain(fleetform::template::embedded_module_files())
            .filter(|(name, _)| name.contains("sqlserver") && name.ends_with(".tsql"))
            .map(|(name, text)| {
                let text = without_literal_text(&comment.replace_all(&text, ""));
                let patterns: Vec<regex::Regex> = text
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.starts_with("{%"))
                    .filter(|line| expression.replace_all(line, "").trim().len() >= 4)
                    .map(|line| {
                        let parts: Vec<String> =
                            expression.split(line).map(regex::escape).collect();
                        regex::Regex::new(&format!("^{}$", parts.join(".*"))).unwrap()
                    })
                    .collect();
                (name, patterns)
            })
            .filter(|(_, patterns)| !patterns.is_empty())
            .collect();
        TemplateIndex { templates }
    }

    fn identify(&self, text: &str) -> Option<&str> {
        let text = without_literal_text(text);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let mut best: Option<(&str, usize, f64)> = None;
        for (name, patterns) in &self.templates {
            let matched = patterns
                .iter()
                .filter(|pattern| lines.iter().any(|line| pattern.is_match(line)))
                .count();
            if matched == 0 {
                continue;
            }
            let coverage = matched as f64 / patterns.len() as f64;
            let of_batch = matched as f64 / lines.len().max(1) as f64;
            if coverage < 0.5 && of_batch < 0.3 {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, count, share)) => {
                    matched > count || (matched == count && coverage > share)
                }
            };
            if better {
                best = Some((name, matched, coverage));
            }
        }
        best.map(|(name, _, _)| name)
    }
}

/// `text` with every string literal emptied: a script recorded in the
/// ledger is a value, not lines of its template.
fn without_literal_text(text: &str) -> String {
    let (masked, _) = tsql::mask_literals(text);
    let token = regex::Regex::new("'\u{1}[0-9]+\u{1}'").unwrap();
    token.replace_all(&masked, "''").into_owned()
}

/// What a template's batch is, to the endpoint.
#[derive(Clone, Debug)]
enum Role {
    Facts,
    LedgerExists,
    LedgerLatest,
    Lock,
    Release,
    OpenTransactions,
    Begin,
    Commit,
    Rollback,
    /// Session options (after the login, before the lock): no change.
    Options,
    Discover(String),
    Inventory(String),
    /// Anything else: a change (or the ledger's preparation and records).
    Change,
}

/// A fault the endpoint injects on the `nth` batch (from 1) of `template`.
struct Fault {
    template: String,
    nth: usize,
    effect: Effect,
    seen: usize,
}

#[derive(Clone)]
enum Effect {
    /// This answer instead of the usual one; an error rolls back the
    /// session's transaction, as under XACT_ABORT.
    Reply(Reply),
    /// The batch runs and leaves one more transaction open.
    OpensTransaction,
}

/// An instance answering from its recorded discovery.
struct Recorded {
    state: Mutex<TargetSnapshot>,
    index: Arc<TemplateIndex>,
    roles: BTreeMap<String, Role>,
    transactions: Mutex<BTreeMap<usize, u64>>,
    faults: Mutex<Vec<Fault>>,
    /// Every batch with the template it came from (None: not identified).
    log: Mutex<Vec<(Batch, Option<String>)>>,
}

impl Recorded {
    fn new(state: TargetSnapshot, index: Arc<TemplateIndex>) -> Recorded {
        let mut roles = BTreeMap::new();
        let engines = fleetform::engines::EngineCatalog::embedded().unwrap();
        let templates = fleetform::template::Templates::embedded().unwrap();
        let modules = fleetform::modules::ModuleCatalog::embedded(&templates, &engines).unwrap();
        for module in modules.iter().filter(|module| module.engine == "sqlserver") {
            roles.insert(
                module.template(&module.discover),
                Role::Discover(module.kind.clone()),
            );
            if let Some(inventory) = &module.inventory {
                roles.insert(
                    module.template(inventory),
                    Role::Inventory(module.kind.clone()),
                );
            }
        }
        let profile = engines.get("sqlserver").unwrap();
        for (script, role) in [
            ("server", Role::Facts),
            ("ledger/exists", Role::LedgerExists),
            ("ledger/latest", Role::LedgerLatest),
            ("lock_try", Role::Lock),
            ("lock_wait", Role::Lock),
            ("lock_release", Role::Release),
            ("connector/open_transactions", Role::OpenTransactions),
            ("connector/begin", Role::Begin),
            ("connector/commit", Role::Commit),
            ("connector/rollback", Role::Rollback),
            ("connector/open", Role::Options),
            ("session", Role::Options),
        ] {
            roles.insert(profile.script(script), role);
        }
        Recorded {
            state: Mutex::new(state),
            index,
            roles,
            transactions: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    fn role(&self, template: Option<&str>) -> Role {
        template
            .and_then(|name| {
                self.roles
                    .iter()
                    .find(|(path, _)| name.ends_with(path.as_str()))
                    .map(|(_, role)| role.clone())
            })
            .unwrap_or(Role::Change)
    }

    fn fault(&self, template: &str, nth: usize, effect: Effect) {
        self.faults.lock().unwrap().push(Fault {
            template: template.to_string(),
            nth,
            effect,
            seen: 0,
        });
    }

    /// The session's database as the snapshot names scopes (`master`: none).
    fn scope(database: &str) -> Option<String> {
        (database != "master").then(|| database.to_string())
    }

    /// Each batch as `connection database template`, in order.
    fn sequence(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(batch, template)| {
                format!(
                    "{} {} {}",
                    batch.connection,
                    batch.database,
                    template.as_deref().unwrap_or("(not a template)")
                )
            })
            .collect()
    }
}

impl Responder for Recorded {
    fn login(&self, login: &Login) -> Result<(), String> {
        if login.user == "fleetform" && login.password == PASSWORD {
            Ok(())
        } else {
            Err(format!("Login failed for user '{}'.", login.user))
        }
    }

    fn reply(&self, batch: &Batch) -> Reply {
        let template = self.index.identify(&batch.text).map(str::to_string);
        self.log
            .lock()
            .unwrap()
            .push((batch.clone(), template.clone()));
        let mut effect = None;
        if let Some(name) = &template {
            for fault in self.faults.lock().unwrap().iter_mut() {
                if name.ends_with(&fault.template) {
                    fault.seen += 1;
                    if fault.seen == fault.nth {
                        effect = Some(fault.effect.clone());
                    }
                }
            }
        }
        let state = self.state.lock().unwrap();
        let scope = Recorded::scope(&batch.database);
        let mut transactions = self.transactions.lock().unwrap();
        let open = transactions.entry(batch.connection).or_default();
        match effect {
            Some(Effect::Reply(reply)) => {
                if matches!(reply, Reply::Error { .. }) {
                    *open = 0;
                }
                return reply;
            }
            Some(Effect::OpensTransaction) => {
                *open += 1;
                return Reply::Done;
            }
            None => {}
        }
        match self.role(template.as_deref()) {
            Role::Facts => Reply::Json(Value::Object(state.facts.clone())),
            Role::LedgerExists => Reply::Json(json!({ "exists": state.ledger_exists })),
            Role::LedgerLatest => Reply::Json(Value::Array(state.ledger.clone())),
            Role::Lock => Reply::Json(json!({ "acquired": true })),
            Role::Release => Reply::Json(json!({ "released": true })),
            Role::OpenTransactions => Reply::Json(json!({ "open": *open })),
            Role::Begin => {
                *open += 1;
                Reply::Done
            }
            Role::Commit | Role::Rollback => {
                *open = 0;
                Reply::Done
            }
            Role::Discover(kind) => Reply::Json(Value::Array(
                state
                    .scopes
                    .iter()
                    .find(|rows| rows.kind == kind && rows.database == scope)
                    .map(|rows| rows.rows.iter().cloned().map(Value::Object).collect())
                    .unwrap_or_default(),
            )),
            Role::Inventory(kind) => Reply::Json(Value::Array(
                state
                    .inventory
                    .iter()
                    .filter(|inventory| inventory.kind == kind && inventory.database == scope)
                    .flat_map(|inventory| inventory.identities.iter())
                    .map(|identity| json!({ "identity": identity }))
                    .collect(),
            )),
            Role::Change | Role::Options => Reply::Done,
        }
    }
}

/// An environment of the repository (or of the SQL Server fixtures) copied
/// to a temporary repository whose SqlInstance objects connect to loopback
/// endpoints answering from their snapshots.
struct LiveEnvironment {
    _directory: tempfile::TempDir,
    root: PathBuf,
    environment: String,
    instances: BTreeMap<String, (FakeSqlServer, Arc<Recorded>)>,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A port free on every address of `hosts`.
fn shared_port(hosts: &[String]) -> u16 {
    for _ in 0..20 {
        let first = std::net::TcpListener::bind((hosts[0].as_str(), 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        if hosts[1..]
            .iter()
            .all(|host| std::net::TcpListener::bind((host.as_str(), port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on {hosts:?}");
}

impl LiveEnvironment {
    /// `source` holds `environments/<environment>`; `snapshot` is the
    /// recorded discovery, relative to `source`.
    fn start(source: &Path, environment: &str, snapshot: &str) -> LiveEnvironment {
        let directory = tempfile::tempdir().unwrap();
        let root = directory.path().to_path_buf();
        copy_tree(
            &source.join("environments").join(environment),
            &root.join("environments").join(environment),
        );
        let recorded = Snapshot::read(&source.join(snapshot)).unwrap();
        let names: Vec<String> = recorded.targets.keys().cloned().collect();
        let hosts: Vec<String> = (0..names.len())
            .map(|n| format!("127.0.0.{}", n + 2))
            .collect();
        let port = shared_port(&hosts);
        let index = Arc::new(TemplateIndex::new());
        let mut instances = BTreeMap::new();
        for (name, host) in names.iter().zip(&hosts) {
            let responder = Arc::new(Recorded::new(
                recorded.targets[name].clone(),
                Arc::clone(&index),
            ));
            let server =
                FakeSqlServer::start(&format!("{host}:{port}"), responder.clone(), None).unwrap();
            instances.insert(name.clone(), (server, responder));
        }
        let hosts: BTreeMap<&str, &str> = names
            .iter()
            .map(String::as_str)
            .zip(hosts.iter().map(String::as_str))
            .collect();
        rewrite_instances(&root.join("environments").join(environment), &hosts, port);
        LiveEnvironment {
            _directory: directory,
            root,
            environment: environment.to_string(),
            instances,
        }
    }

    fn run(&self, arguments: &[&str]) -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
            .args(arguments)
            .args([
                "-e",
                &self.environment,
                "--repo",
                self.root.to_str().unwrap(),
            ])
            .env("FLEETFORM_TEST_SQL_PASSWORD", PASSWORD)
            .envs(SECRETS)
            .env("NO_COLOR", "1")
            .env_remove("FLEETFORM_LOG")
            .current_dir(&self.root)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn responder(&self, instance: &str) -> &Recorded {
        &self.instances[instance].1
    }

    /// Every batch received so far, by instance, parses; none is unknown.
    fn assert_batches_parse(&self) {
        let mut scripts = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, (server, responder)) in &self.instances {
            for (index, batch) in server.batches().iter().enumerate() {
                // Verification sends the same discovery again: parsed once.
                if seen.insert(batch.text.clone()) {
                    scripts.push((format!("batch {} on {name}", index + 1), batch.text.clone()));
                }
            }
            for (batch, template) in responder.log.lock().unwrap().iter() {
                assert!(
                    template.is_some(),
                    "{name} received a batch from no template:\n{}",
                    batch.text
                );
            }
        }
        assert!(!scripts.is_empty(), "nothing was sent");
        tsql::assert_sent_parse(&scripts);
    }

    /// Per instance, what each connection was sent (its database, then the
    /// template of each batch, in order); connections in the order of their
    /// text, since parallel work opens them in any order.
    fn sequences(&self) -> String {
        let mut text = String::new();
        for (name, (_, responder)) in &self.instances {
            text.push_str(&format!("== {name}\n"));
            let mut connections: BTreeMap<usize, (String, Vec<String>)> = BTreeMap::new();
            for (batch, template) in responder.log.lock().unwrap().iter() {
                connections
                    .entry(batch.connection)
                    .or_insert_with(|| (batch.database.clone(), Vec::new()))
                    .1
                    .push(template.clone().unwrap_or_else(|| "(no template)".into()));
            }
            let mut blocks: Vec<String> = connections
                .into_values()
                .map(|(database, templates)| {
                    format!("session on {database}:\n  {}\n", templates.join("\n  "))
                })
                .collect();
            blocks.sort();
            text.push_str(&blocks.concat());
        }
        text
    }

    /// On every connection: a transaction is opened, each batch in it is
    /// followed by the check that it is still open (and only it), and it
    /// ends in a commit after a check or a rollback; on every instance, nothing changes before the apply
    /// lock is taken and the lock is released last.
    fn assert_transactions_well_formed(&self, applied: bool) {
        for (name, (_, responder)) in &self.instances {
            let log = responder.log.lock().unwrap();
            let roles: Vec<(usize, Role)> = log
                .iter()
                .map(|(batch, template)| (batch.connection, responder.role(template.as_deref())))
                .collect();
            let mut open: BTreeMap<usize, (bool, bool)> = BTreeMap::new();
            for (connection, role) in &roles {
                let (inside, unchecked) = open.entry(*connection).or_default();
                match role {
                    Role::Begin => {
                        assert!(!*inside, "{name}: a transaction opened inside another");
                        *inside = true;
                    }
                    // Inside: after each batch. Outside: after a commit
                    // or a script that is not one transaction.
                    Role::OpenTransactions => {
                        assert!(!*inside || *unchecked, "{name}: a check without a batch");
                        *unchecked = false;
                    }
                    Role::Commit => {
                        assert!(!*unchecked, "{name}: a batch not checked before its commit");
                        *inside = false;
                    }
                    Role::Options => {
                        assert!(!*inside, "{name}: session options inside a transaction");
                    }
                    // After a failed batch, or a check that failed.
                    Role::Rollback => {
                        *inside = false;
                        *unchecked = false;
                    }
                    _ if *inside => {
                        assert!(!*unchecked, "{name}: two batches without a check between");
                        *unchecked = true;
                    }
                    _ => {}
                }
            }
            assert!(
                open.values().all(|(inside, _)| !inside),
                "{name}: a transaction left open"
            );
            let changed = roles.iter().any(|(_, role)| matches!(role, Role::Change));
            if applied && changed {
                let lock = roles
                    .iter()
                    .position(|(_, role)| matches!(role, Role::Lock));
                let change = roles
                    .iter()
                    .position(|(_, role)| matches!(role, Role::Change));
                assert!(
                    lock.is_some() && lock < change,
                    "{name}: changed before the lock"
                );
                assert!(
                    matches!(roles.last(), Some((_, Role::Release))),
                    "{name}: the lock is not released last"
                );
            }
        }
    }

    fn clear(&self) {
        for (server, responder) in self.instances.values() {
            server.clear();
            responder.log.lock().unwrap().clear();
        }
    }
}

/// In every SqlInstance document: the port, and instead of the snapshot a
/// connection to the loopback endpoint with SQL authentication.
fn rewrite_instances(directory: &Path, hosts: &BTreeMap<&str, &str>, port: u16) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let documents: Vec<String> = text
            .split("\n---\n")
            .map(|document| {
                if !document.contains("kind: SqlInstance") {
                    return document.to_string();
                }
                let name = document
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("name: "))
                    .unwrap()
                    .trim();
                let host = hosts[name];
                assert!(
                    !document.contains("\n  connection:"),
                    "{name} has a connection of its own; the rewrite needs a merge"
                );
                document
                    .lines()
                    .map(|line| {
                        if line.starts_with("  port:") {
                            format!("  port: {port}")
                        } else if line.starts_with("  snapshot:") {
                            format!(
                                "  connection:\n    host: {host}\n    authentication: sql\n    user: fleetform\n    password: {{fromEnv: FLEETFORM_TEST_SQL_PASSWORD}}\n    encrypt: 'off'\n    connectTimeoutSeconds: 5\n    commandTimeoutSeconds: 2"
                            )
                        } else {
                            line.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        std::fs::write(&path, documents.join("\n---\n")).unwrap();
    }
}

/// `actual` is `expected`, or a panic showing the lines that differ.
fn assert_same(expected: &str, actual: &str, context: &str) {
    if expected == actual {
        return;
    }
    let diff = similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .header("expected", "actual")
        .to_string();
    panic!("{diff}\n{context}");
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example_mssql() -> LiveEnvironment {
    LiveEnvironment::start(
        &repository(),
        "example-mssql",
        "environments/example-mssql/snapshots/discovery.json",
    )
}

/// The plan read through the connector is the plan read from the snapshot
/// (beside the line that says where discovery came from), and everything
/// sent on the way parses.
#[test]
fn example_mssql_plans_through_the_connector_as_from_its_snapshot() {
    let live = example_mssql();
    let (code, from_endpoints, stderr) = live.run(&["plan"]);
    assert_eq!(code, 2, "changes pending\n{from_endpoints}\n{stderr}");
    let recorded = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["plan", "-e", "example-mssql", "--repo"])
        .arg(repository())
        .envs(SECRETS)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    // The repository's plan names its commit; the copy is not a repository.
    let from_snapshot = String::from_utf8_lossy(&recorded.stdout);
    let from_snapshot = regex::Regex::new(r", commit [0-9a-f]+")
        .unwrap()
        .replace(&from_snapshot, "");
    assert_same(&from_snapshot, &from_endpoints, &stderr);
    live.assert_batches_parse();
    insta::assert_snapshot!("example_mssql_plan_batches", live.sequences());
}

/// A saved plan applied through the connector: the apply lock before
/// anything changes, each resource's batches in one transaction checked
/// after every batch, verification by reading again, every outcome in the
/// ledger, the lock released. The endpoints do not change state, so the
/// verification finds the changes missing and says so.
#[test]
fn example_mssql_applies_a_saved_plan_through_the_connector() {
    let live = example_mssql();
    let plan = live.root.join("plan.json");
    let (code, _, stderr) = live.run(&["plan", "--out", plan.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    live.clear();
    let (code, stdout, stderr) = live.run(&["apply", plan.to_str().unwrap()]);
    assert_eq!(code, 1, "not converged\n{stdout}\n{stderr}");
    // The report goes to stderr: stdout is for the plan alone.
    let stdout = format!("{stdout}{stderr}");
    live.assert_batches_parse();
    live.assert_transactions_well_formed(true);
    assert!(
        stdout.contains("Apply: 0 converged, 0 already converged, 0 failed, 10 not converged"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("SqlLogin/app-sales@sql-a: after the action, re-discovery still differs: app_sales does not exist"),
        "{stdout}"
    );
    // Every resource's `started` row before its action, and every outcome,
    // each in its own transaction.
    for (instance, resources) in [("sql-a", 6), ("sql-b", 4)] {
        let records = live
            .responder(instance)
            .sequence()
            .iter()
            .filter(|line| line.ends_with("ledger/record.tsql"))
            .count();
        assert_eq!(records, 2 * resources, "{instance}");
    }
    insta::assert_snapshot!("example_mssql_apply_batches", live.sequences());
}

const APP_SALES: &str = "SqlLogin/app-sales@sql-a";

/// Each batch `instance` received as (template, text), in order.
fn templates_sent(live: &LiveEnvironment, instance: &str) -> Vec<(String, String)> {
    live.responder(instance)
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(batch, template)| (template.clone().unwrap_or_default(), batch.text.clone()))
        .collect()
}

fn count_ending(sent: &[(String, String)], suffix: &str) -> usize {
    sent.iter()
        .filter(|(template, _)| template.ends_with(suffix))
        .count()
}

/// A batch that fails inside a transaction: the connector rolls back (and
/// sends nothing more of the script), the resource fails with the server's
/// message, and the ledger records the failure.
#[test]
fn a_batch_error_inside_a_transaction_is_rolled_back_and_recorded() {
    let live = example_mssql();
    live.responder("sql-a").fault(
        "login/create.tsql",
        1,
        Effect::Reply(Reply::Error {
            number: 15025,
            class: 16,
            message: "The server principal 'app_sales' already exists.".into(),
        }),
    );
    let (code, stdout, stderr) = live.run(&["apply", "--auto-approve", "--target", APP_SALES]);
    let output = format!("{stdout}{stderr}");
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("failed SqlLogin/app-sales@sql-a")
            && output.contains("The server principal 'app_sales' already exists."),
        "{output}"
    );
    live.assert_batches_parse();
    live.assert_transactions_well_formed(true);
    let sent = templates_sent(&live, "sql-a");
    let create = sent
        .iter()
        .position(|(template, _)| template.ends_with("login/create.tsql"))
        .unwrap();
    assert!(
        sent[create + 1].0.ends_with("connector/rollback.tsql"),
        "{sent:#?}"
    );
    let records: Vec<&(String, String)> = sent
        .iter()
        .filter(|(template, _)| template.ends_with("ledger/record.tsql"))
        .collect();
    assert_eq!(records.len(), 2, "{sent:#?}");
    // Its `started` row before the action, then the failure.
    let started = sent
        .iter()
        .position(|(template, _)| template.ends_with("ledger/record.tsql"))
        .unwrap();
    assert!(started < create, "{sent:#?}");
    assert!(records[0].1.contains("N'started'"), "{}", records[0].1);
    assert!(records[1].1.contains("N'failed'"), "{}", records[1].1);
}

/// A batch that leaves a transaction of its own open would make the
/// connector's COMMIT only lower @@TRANCOUNT, the work lost when the session
/// ends: the check after the batch refuses it and everything is rolled back.
#[test]
fn a_batch_that_leaves_a_nested_transaction_open_is_rolled_back() {
    let live = example_mssql();
    live.responder("sql-a")
        .fault("login/create.tsql", 1, Effect::OpensTransaction);
    let (code, stdout, stderr) = live.run(&["apply", "--auto-approve", "--target", APP_SALES]);
    let output = format!("{stdout}{stderr}");
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("batch 1 of the script left 2 transactions open"),
        "{output}"
    );
    let sent = templates_sent(&live, "sql-a");
    assert_eq!(count_ending(&sent, "login/create.tsql"), 1);
    let create = sent
        .iter()
        .position(|(template, _)| template.ends_with("login/create.tsql"))
        .unwrap();
    let after: Vec<&str> = sent[create + 1..create + 3]
        .iter()
        .map(|(template, _)| template.as_str())
        .collect();
    assert!(
        after[0].ends_with("open_transactions.tsql") && after[1].ends_with("rollback.tsql"),
        "{after:?}"
    );
}

/// A deadlock victim (Msg 1205) was rolled back by the server: the
/// transactional script is run again, and converges like any other.
#[test]
fn a_deadlock_victim_is_run_again() {
    let live = example_mssql();
    live.responder("sql-a").fault(
        "login/create.tsql",
        1,
        Effect::Reply(Reply::Error {
            number: 1205,
            class: 13,
            message: "Transaction (Process ID 61) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.".into(),
        }),
    );
    let (_, stdout, stderr) = live.run(&["apply", "--auto-approve", "--target", APP_SALES]);
    let output = format!("{stdout}{stderr}");
    assert!(output.contains("deadlock victim"), "{output}");
    // Run twice; the endpoints do not change, so verification reports it
    // missing rather than the deadlock.
    let sent = templates_sent(&live, "sql-a");
    assert_eq!(count_ending(&sent, "login/create.tsql"), 2, "{output}");
    assert!(
        output.contains("not-converged SqlLogin/app-sales@sql-a"),
        "{output}"
    );
    live.assert_transactions_well_formed(true);
}

/// A statement that runs past commandTimeoutSeconds is cancelled on the
/// server (a TDS attention), and the plan says so for the instance.
#[test]
fn a_statement_past_its_timeout_is_cancelled_with_an_attention() {
    let live = example_mssql();
    live.responder("sql-a")
        .fault("login/discover.tsql", 1, Effect::Reply(Reply::Hang));
    let (code, stdout, stderr) = live.run(&["plan"]);
    let output = format!("{stdout}{stderr}");
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("sql-a: the query did not finish within 2 s and was cancelled"),
        "{output}"
    );
    let attentions = live.instances["sql-a"]
        .0
        .received()
        .iter()
        .filter(|received| matches!(received, Received::Attention { .. }))
        .count();
    assert_eq!(attentions, 1);
}

/// A refused login: the plan names the instance and the server's message,
/// and sends nothing else.
#[test]
fn a_refused_login_names_the_instance() {
    let live = example_mssql();
    let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args([
            "plan",
            "-e",
            "example-mssql",
            "--repo",
            live.root.to_str().unwrap(),
        ])
        .env("FLEETFORM_TEST_SQL_PASSWORD", "not-the-password")
        .envs(SECRETS)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("SqlInstance sql-a") && text.contains("Login failed for user 'fleetform'."),
        "{text}"
    );
    for (name, (server, _)) in &live.instances {
        assert!(server.batches().is_empty(), "{name} was sent batches");
    }
}

/// A plan whose instance changed before apply is refused there, and
/// nothing is changed on it.
#[test]
fn a_saved_plan_is_refused_when_the_instance_changed() {
    let live = example_mssql();
    let plan = live.root.join("plan.json");
    let (code, _, stderr) = live.run(&["plan", "--out", plan.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    {
        // Someone sets max server memory by hand after the plan.
        let mut state = live.responder("sql-a").state.lock().unwrap();
        let configuration = state
            .scopes
            .iter_mut()
            .find(|scope| scope.kind == "SqlConfiguration")
            .unwrap();
        let row = configuration
            .rows
            .iter_mut()
            .find(|row| row["identity"] == "maxServerMemoryMB")
            .unwrap();
        row.insert("value".into(), json!(65536));
        row.insert("valueInUse".into(), json!(65536));
    }
    live.clear();
    let (code, stdout, stderr) = live.run(&["apply", plan.to_str().unwrap()]);
    let output = format!("{stdout}{stderr}");
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("changed since the plan"), "{output}");
    let sent = templates_sent(&live, "sql-a");
    assert!(
        sent.iter()
            .all(|(template, _)| !template.ends_with("configuration/update.tsql")),
        "{sent:#?}"
    );
    live.assert_transactions_well_formed(false);
}

/// Drift read through the connector is drift read from the snapshot.
#[test]
fn example_mssql_drift_through_the_connector_is_drift_from_its_snapshot() {
    let live = example_mssql();
    let (code, from_endpoints, stderr) = live.run(&["drift"]);
    let recorded = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["drift", "-e", "example-mssql", "--repo"])
        .arg(repository())
        .envs(SECRETS)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(Some(code), recorded.status.code(), "{stderr}");
    let from_snapshot = String::from_utf8_lossy(&recorded.stdout);
    let from_snapshot = regex::Regex::new(r", commit [0-9a-f]+")
        .unwrap()
        .replace(&from_snapshot, "");
    assert_same(&from_snapshot, &from_endpoints, &stderr);
    live.assert_batches_parse();
}

/// TDS 8.0 strict encryption: TLS before the prelogin, the certificate
/// verified against caFile, the login and a query inside it.
#[test]
fn strict_encryption_logs_in_and_queries_inside_tls() {
    let made = common::tls::certificates("fleetform TDS test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(
                made.server_der.clone(),
            )],
            rustls::pki_types::PrivateKeyDer::Pkcs8(made.server_key_der.clone().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"tds/8.0".to_vec()];
    let recorded =
        Snapshot::read(&repository().join("environments/example-mssql/snapshots/discovery.json"))
            .unwrap();
    let responder = Arc::new(Recorded::new(
        recorded.targets["sql-a"].clone(),
        Arc::new(TemplateIndex::new()),
    ));
    let server =
        FakeSqlServer::start("127.0.0.1:0", responder.clone(), Some(Arc::new(config))).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let ca_file = directory.path().join("ca.pem");
    std::fs::write(&ca_file, &made.ca_pem).unwrap();
    // SAFETY: no other test of this file reads or writes this variable.
    unsafe { std::env::set_var("FLEETFORM_TLS_TEST_PASSWORD", PASSWORD) };
    let endpoint = SqlServerEndpoint {
        instance: "sql-tls".into(),
        host: "127.0.0.1".into(),
        port: Some(server.address.port()),
        instance_name: None,
        authentication: Authentication::Sql,
        user: Some("fleetform".into()),
        password: Some(SecretRef::FromEnv("FLEETFORM_TLS_TEST_PASSWORD".into())),
        database: "master".into(),
        encrypt: Encrypt::Strict,
        trust_server_certificate: false,
        ca_file: Some(ca_file),
        host_name_in_certificate: None,
        connect_timeout: std::time::Duration::from_secs(5),
        statement_timeout: Some(std::time::Duration::from_secs(5)),
        application_name: "fleetform-test".into(),
        declared_version: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let facts = runtime.block_on(async {
        let session = endpoint.connect(None).await.expect("logs in inside TLS");
        let templates = fleetform::template::Templates::embedded().unwrap();
        let script = templates
            .render("templates/sqlserver/server.tsql", &json!({}))
            .unwrap();
        session.query_json(&script).await.unwrap()
    });
    assert_eq!(facts["product_major_version"], json!(16));
    let logins: Vec<Login> = server
        .received()
        .into_iter()
        .filter_map(|received| match received {
            Received::Login(login) => Some(login),
            _ => None,
        })
        .collect();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].application, "fleetform-test");
}
