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
use fleetform::ops::snapshot::{Snapshot, TargetSnapshot};

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
                        let parts: Vec<String> = expression
                            .split(line)
                            .map(|part| regex::escape(part))
                            .collect();
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
    Discover(String),
    Inventory(String),
    /// Anything else: a change (or the ledger's preparation and records).
    Change,
}

/// A fault the endpoint injects: the `nth` batch (from 1) of `template`
/// gets `reply` instead of its usual answer.
struct Fault {
    template: String,
    nth: usize,
    reply: Reply,
    seen: usize,
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

    fn fault(&self, template: &str, nth: usize, reply: Reply) {
        self.faults.lock().unwrap().push(Fault {
            template: template.to_string(),
            nth,
            reply,
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
        if let Some(name) = &template {
            for fault in self.faults.lock().unwrap().iter_mut() {
                if name.ends_with(&fault.template) {
                    fault.seen += 1;
                    if fault.seen == fault.nth {
                        return fault.reply.clone();
                    }
                }
            }
        }
        let state = self.state.lock().unwrap();
        let scope = Recorded::scope(&batch.database);
        let mut transactions = self.transactions.lock().unwrap();
        let open = transactions.entry(batch.connection).or_default();
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
            Role::Change => Reply::Done,
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
    /// followed by the check that it is still open, and it ends in a commit
    /// or a rollback; on every instance, nothing changes before the apply
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
                    Role::OpenTransactions => {
                        assert!(*inside && *unchecked, "{name}: a check without a batch");
                        *unchecked = false;
                    }
                    Role::Commit | Role::Rollback => {
                        assert!(!*unchecked, "{name}: a batch not checked before its end");
                        *inside = false;
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
            if applied {
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
                                "  connection:\n    host: {host}\n    authentication: sql\n    user: fleetform\n    password: {{fromEnv: FLEETFORM_TEST_SQL_PASSWORD}}\n    encrypt: 'off'\n    connectTimeoutSeconds: 5\n    commandTimeoutSeconds: 5"
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
    // Every outcome recorded, each in its own transaction.
    for (instance, resources) in [("sql-a", 6), ("sql-b", 4)] {
        let records = live
            .responder(instance)
            .sequence()
            .iter()
            .filter(|line| line.ends_with("ledger/record.tsql"))
            .count();
        assert_eq!(records, resources, "{instance}");
    }
    insta::assert_snapshot!("example_mssql_apply_batches", live.sequences());
}
