//! A kind that targets Servers, converged through the host engine: the
//! toy module of tests/hosts/ (a schema and a module that exist only here,
//! loaded beside the built-in ones) plans, applies, verifies, drifts and
//! prunes files of a Linux Server reached through the local shell
//! connector, with the host's ledger and apply lock as files in its state
//! directory (templates/linux/). Nothing in the engine knows the kind.
//! A kind of PostgreSQL instances whose module runs one action through
//! the instance's own connector and one through its host's shell does
//! the same against a real server.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleetform::model::plan::{Action, DriftStatus, Plan};
use fleetform::ops::apply::{self, Outcome};
use fleetform::ops::engine::{Engine, RunSettings};
use fleetform::output::Output;
use fleetform::schemas::SchemaCatalog;
use fleetform::source::ManifestSource;

/// The fixture's files under `prefix` (`schemas`, `modules`), named as the
/// catalogs name theirs.
fn fixture_files(prefix: &str) -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hosts");
    let mut files = Vec::new();
    let mut pending = vec![root.join(prefix)];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap();
            let name = match prefix {
                // Schemas are named by their file name alone.
                "schemas" => relative.file_name().unwrap().to_string_lossy().into_owned(),
                _ => relative.to_string_lossy().into_owned(),
            };
            files.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    files
}

/// A Linux Server reached with the local shell, and `files` (name, content)
/// as ToyFile objects in `directory`.
fn manifests(state: &Path, directory: &Path, files: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut objects = format!(
        "apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: host-1}}\nspec: {{host: 127.0.0.1, os: linux, stateDirectory: '{}', connection: {{method: local}}}}\n",
        state.display()
    );
    for (name, content) in files {
        objects.push_str(&format!(
            "---\napiVersion: fleetform/v1\nkind: ToyFile\nmetadata: {{name: {}}}\nspec: {{on: {{servers: [host-1]}}, directory: '{}', name: {name}, content: {}}}\n",
            name.replace('.', "-"),
            directory.display(),
            serde_json::to_string(content).unwrap()
        ));
    }
    BTreeMap::from([
        (
            "environments/t/environment.yaml".to_string(),
            "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: t}\nspec: {}\n"
                .to_string(),
        ),
        ("environments/t/fleet.yaml".to_string(), objects),
    ])
}

fn engine(files: BTreeMap<String, String>, prune: bool) -> Arc<Engine> {
    engine_in(files, prune, Path::new("/nonexistent"))
}

/// An engine whose repository checkout is `root` (where secret files may be).
fn engine_in(files: BTreeMap<String, String>, prune: bool, root: &Path) -> Arc<Engine> {
    let catalog = SchemaCatalog::embedded_with(fixture_files("schemas")).unwrap();
    let check = fleetform::ops::check_environment(&ManifestSource::Memory { files }, "t", &catalog);
    let fleet = check
        .fleet
        .unwrap_or_else(|| panic!("{:?}", check.diagnostics));
    let settings = RunSettings {
        parallelism: 2,
        prune,
        replace: BTreeSet::new(),
        destroy: BTreeSet::new(),
        only: Vec::new(),
        lock_timeout: Duration::from_secs(2),
        actor: "host-test".into(),
        commit: None,
        repository_root: root.to_path_buf(),
        secret_salt: None,
        scope: None,
    };
    Arc::new(Engine::prepare_with(&fleet, &catalog, settings, fixture_files("modules")).unwrap())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn plan(engine: &Arc<Engine>) -> Plan {
    runtime().block_on(async {
        let observations = engine.discover().await;
        engine.build_plan(&observations, "2026-12-05T00:00:00Z".into())
    })
}

fn apply(engine: &Arc<Engine>, plan: &Plan) -> apply::ApplyReport {
    let mut output = Output::to_writers(Box::new(std::io::sink()), Box::new(std::io::sink()));
    runtime()
        .block_on(apply::apply(Arc::clone(engine), plan, &mut output))
        .unwrap()
}

fn assert_nothing_converged(report: &apply::ApplyReport) {
    assert!(
        report
            .outcomes
            .iter()
            .all(|outcome| outcome.outcome != Outcome::Converged),
        "{:?}",
        report.outcomes
    );
}

/// (address, action, drift) of every change of a plan.
fn changes(plan: &Plan) -> Vec<(String, Action, DriftStatus)> {
    assert!(plan.target_errors.is_empty(), "{:?}", plan.target_errors);
    plan.resource_changes
        .iter()
        .map(|change| (change.address.clone(), change.action, change.drift))
        .collect()
}

#[test]
fn a_module_on_servers_plans_applies_verifies_and_prunes_through_the_local_shell() {
    let temp = tempfile::tempdir().unwrap();
    let (state, directory) = (temp.path().join("state"), temp.path().join("files"));
    let both = [("motd.toy", "hello"), ("banner.toy", "it's \"quoted\"")];

    // Planned on the Server, with the script it will run.
    let planned = plan(&engine(manifests(&state, &directory, &both), false));
    assert_eq!(
        changes(&planned),
        vec![
            (
                "ToyFile/banner-toy@host-1".into(),
                Action::Create,
                DriftStatus::Pending
            ),
            (
                "ToyFile/motd-toy@host-1".into(),
                Action::Create,
                DriftStatus::Pending
            ),
        ]
    );
    let script = &planned.resource_changes[1].items[0].script;
    assert!(script.contains("printf '%s\\n' 'hello'"), "{script}");
    assert!(planned.not_planned.is_empty(), "{:?}", planned.not_planned);

    // Applied and verified by re-reading; recorded in the host's ledger;
    // the lock released.
    let engine_both = engine(manifests(&state, &directory, &both), false);
    let report = apply(&engine_both, &planned);
    for outcome in &report.outcomes {
        assert_eq!(outcome.outcome, Outcome::Converged, "{outcome:?}");
    }
    assert!(report.unrecorded.is_empty(), "{:?}", report.unrecorded);
    assert_eq!(
        std::fs::read_to_string(directory.join("banner.toy")).unwrap(),
        "it's \"quoted\"\n"
    );
    let latest = state.join("ledger/t/latest");
    assert_eq!(std::fs::read_dir(&latest).unwrap().count(), 2);
    let history = std::fs::read_to_string(state.join("ledger/t/history.jsonl")).unwrap();
    // Each resource: its `started` row before the action, then its outcome;
    // the `started` entries leave latest/ once the outcome is recorded.
    assert_eq!(history.lines().count(), 4, "{history}");
    assert_eq!(
        history.matches("\"result\":\"started\"").count(),
        2,
        "{history}"
    );
    assert!(history.contains("\"actor\":\"host-test\""), "{history}");
    assert!(!state.join("lock").exists());

    // Nothing left to do; a change by hand is drift, repaired by apply.
    let again = plan(&engine_both);
    assert!(
        changes(&again)
            .iter()
            .all(|(_, action, drift)| *action == Action::NoOp && *drift == DriftStatus::InSync),
        "{:?}",
        changes(&again)
    );
    std::fs::write(directory.join("motd.toy"), "changed by hand\n").unwrap();
    let drifted = plan(&engine_both);
    assert!(
        changes(&drifted).contains(&(
            "ToyFile/motd-toy@host-1".into(),
            Action::Update,
            DriftStatus::Drifted
        )),
        "{:?}",
        changes(&drifted)
    );
    apply(&engine_both, &drifted);
    assert_eq!(
        std::fs::read_to_string(directory.join("motd.toy")).unwrap(),
        "hello\n"
    );

    // Gone from the manifests: the ledger says fleetform made it, so
    // --prune deletes it, and only it.
    let only_motd = &both[..1];
    let kept = plan(&engine(manifests(&state, &directory, only_motd), false));
    assert!(
        kept.unmanaged
            .iter()
            .any(|object| object.identity == "banner.toy" && object.owned),
        "{:?}",
        kept.unmanaged
    );
    assert!(
        changes(&kept)
            .iter()
            .all(|(_, action, _)| *action == Action::NoOp),
        "{:?}",
        changes(&kept)
    );
    let pruning = engine(manifests(&state, &directory, only_motd), true);
    let pruned = plan(&pruning);
    assert!(
        changes(&pruned).contains(&(
            "ToyFile/banner-toy@host-1".into(),
            Action::Delete,
            DriftStatus::Pending
        )),
        "{:?}",
        changes(&pruned)
    );
    apply(&pruning, &pruned);
    assert!(!directory.join("banner.toy").exists());
    assert!(directory.join("motd.toy").exists());
}

/// The host's apply lock: held by a live process, an apply waits for it and
/// gives up after the lock timeout; left by a process that is gone, it is
/// taken over.
#[test]
fn a_hosts_apply_lock_is_waited_for_and_a_stale_one_is_taken_over() {
    let temp = tempfile::tempdir().unwrap();
    let (state, directory) = (temp.path().join("state"), temp.path().join("files"));
    let files = [("motd.toy", "hello")];
    let engine = engine(manifests(&state, &directory, &files), false);
    let planned = plan(&engine);
    let lock = state.join("lock");
    std::fs::create_dir_all(&lock).unwrap();

    let mut holder = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(lock.join("owner"), format!("{}\n", holder.id())).unwrap();
    let report = apply(&engine, &planned);
    assert_nothing_converged(&report);
    assert!(!directory.join("motd.toy").exists());
    holder.kill().unwrap();
    holder.wait().unwrap();

    // The holder is gone: its lock is stale.
    let report = apply(&engine, &planned);
    for outcome in &report.outcomes {
        assert_eq!(outcome.outcome, Outcome::Converged, "{outcome:?}");
    }
    assert!(directory.join("motd.toy").exists());
    assert!(!lock.exists());
}

/// Two Linux Servers reached with the local shell, each with its own state
/// directory, and a ToySpan over both whose lead is the second.
fn spanning_manifests(root: &Path, lead: &str) -> BTreeMap<String, String> {
    let mut objects = String::new();
    for server in ["host-1", "host-2"] {
        objects.push_str(&format!(
            "---\napiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: {server}}}\nspec: {{host: 127.0.0.1, os: linux, stateDirectory: '{}', connection: {{method: local}}}}\n",
            root.join(server).display()
        ));
    }
    objects.push_str(&format!(
        "---\napiVersion: fleetform/v1\nkind: ToySpan\nmetadata: {{name: shared}}\nspec: {{members: [host-1, host-2], lead: {lead}, directory: '{}', name: shared.toy, content: hello}}\n",
        root.join("files").display()
    ));
    BTreeMap::from([
        (
            "environments/t/environment.yaml".to_string(),
            "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: t}\nspec: {}\n"
                .to_string(),
        ),
        ("environments/t/fleet.yaml".to_string(), objects),
    ])
}

/// A kind that spans the servers its spec names is one resource per
/// member; the members other than the lead converge after it (their write
/// copies the lead's file and fails when it is not there yet), although
/// the apply runs two resources at a time and the lead is not the first
/// member.
#[test]
fn a_kind_spanning_servers_converges_on_its_lead_first() {
    let temp = tempfile::tempdir().unwrap();
    let engine = engine(spanning_manifests(temp.path(), "host-2"), false);
    let lead_of: Vec<(&str, Option<&str>)> = engine
        .resources
        .iter()
        .map(|resource| (resource.address.as_str(), resource.lead.as_deref()))
        .collect();
    assert_eq!(
        lead_of,
        vec![
            ("ToySpan/shared@host-2", Some("host-2")),
            ("ToySpan/shared@host-1", Some("host-2")),
        ]
    );
    // The plan lists the lead's change first, as it will run.
    let planned = plan(&engine);
    assert_eq!(
        changes(&planned),
        vec![
            (
                "ToySpan/shared@host-2".into(),
                Action::Create,
                DriftStatus::Pending
            ),
            (
                "ToySpan/shared@host-1".into(),
                Action::Create,
                DriftStatus::Pending
            ),
        ]
    );
    let report = apply(&engine, &planned);
    for outcome in &report.outcomes {
        assert_eq!(outcome.outcome, Outcome::Converged, "{outcome:?}");
    }
    let files = temp.path().join("files");
    assert_eq!(
        std::fs::read_to_string(files.join("order.log")).unwrap(),
        "host-2\nhost-1\n"
    );
    assert_eq!(
        std::fs::read_to_string(files.join("host-1/shared.toy")).unwrap(),
        "hello\n"
    );
    // Each member's ledger records its own resource.
    for server in ["host-1", "host-2"] {
        let history =
            std::fs::read_to_string(temp.path().join(server).join("ledger/t/history.jsonl"))
                .unwrap();
        assert!(
            history.contains(&format!("\"ToySpan/shared@{server}\"")),
            "{history}"
        );
    }
    assert!(
        changes(&plan(&engine))
            .iter()
            .all(|(_, action, drift)| *action == Action::NoOp && *drift == DriftStatus::InSync)
    );
}

/// A Server reached with `method`, a PostgreSQL instance on it (`server`,
/// with the test superuser's password in `password_file`) and one ToyStamp.
fn stamp_manifests(
    server: &common::postgres::PostgresServer,
    method: &str,
    password_file: &Path,
    directory: &Path,
    content: &str,
) -> BTreeMap<String, String> {
    let fleet = format!(
        "apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: db-host}}\nspec: {{host: 127.0.0.1, os: linux, connection: {{method: {method}}}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: pg-1}}\nspec: {{server: db-host, port: {port}, connection: {{user: postgres, sslMode: disable, password: {{fromFile: '{password}'}}}}}}\n\
---\napiVersion: fleetform/v1\nkind: ToyStamp\nmetadata: {{name: release}}\nspec: {{on: {{instances: [pg-1]}}, name: release, directory: '{directory}', content: {content}}}\n",
        port = server.port,
        password = password_file.display(),
        directory = directory.display(),
        content = serde_json::to_string(content).unwrap(),
    );
    BTreeMap::from([
        (
            "environments/t/environment.yaml".to_string(),
            "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: t}\nspec: {}\n"
                .to_string(),
        ),
        ("environments/t/fleet.yaml".to_string(), fleet),
    ])
}

#[test]
fn a_module_runs_each_action_through_the_connector_it_names() {
    let server = common::postgres::PostgresServer::start();
    server.psql("CREATE TABLE public.toy_stamp (name text PRIMARY KEY, content text NOT NULL)");
    let temp = tempfile::tempdir().unwrap();
    let password_file = temp.path().join("password");
    std::fs::write(&password_file, common::postgres::SUPERUSER_PASSWORD).unwrap();
    let directory = temp.path().join("stamps");
    let manifests =
        |content: &str| stamp_manifests(&server, "local", &password_file, &directory, content);

    // The plan shows both scripts, each where it runs.
    let first = engine_in(manifests("v1"), false, temp.path());
    let planned = plan(&first);
    assert_eq!(
        changes(&planned),
        vec![(
            "ToyStamp/release@pg-1".into(),
            Action::Create,
            DriftStatus::Pending
        )]
    );
    let change = &planned.resource_changes[0];
    assert!(
        change.items[0]
            .script
            .contains("INSERT INTO public.toy_stamp"),
        "{change:?}"
    );
    assert!(change.after_through_host, "{change:?}");
    assert!(change.after_script.contains("printf"), "{change:?}");
    let shown =
        fleetform::report::plan_human(&planned, fleetform::report::Style { color: false }, false);
    assert!(
        shown.contains("then, once, on the host it runs on:"),
        "{shown}"
    );

    // Apply writes the row through SQL and the file through the host's shell.
    let report = apply(&first, &planned);
    for outcome in &report.outcomes {
        assert_eq!(outcome.outcome, Outcome::Converged, "{outcome:?}");
    }
    assert_eq!(
        server.psql("SELECT content FROM public.toy_stamp WHERE name = 'release'"),
        "v1"
    );
    assert_eq!(
        std::fs::read_to_string(directory.join("pg-1-release")).unwrap(),
        "v1\n"
    );
    assert!(
        changes(&plan(&first))
            .iter()
            .all(|(_, action, _)| *action == Action::NoOp)
    );

    // A change runs both again; a host fleetform cannot reach yet refuses
    // the action through it, naming the Server, and runs nothing.
    let unreachable = engine_in(
        stamp_manifests(&server, "ssh", &password_file, &directory, "v2"),
        false,
        temp.path(),
    );
    let refused = plan(&unreachable);
    let change = &refused.resource_changes[0];
    let blocked = change.blocked.as_ref().map(|blocked| blocked.message());
    assert!(
        blocked.is_some_and(
            |message| message.contains("Server db-host is a Linux host reached with `ssh`")
        ),
        "{change:?}"
    );
    let report = apply(&unreachable, &refused);
    assert_nothing_converged(&report);
    assert_eq!(
        server.psql("SELECT content FROM public.toy_stamp WHERE name = 'release'"),
        "v1"
    );
    let reachable = engine_in(manifests("v2"), false, temp.path());
    let report = apply(&reachable, &plan(&reachable));
    for outcome in &report.outcomes {
        assert_eq!(outcome.outcome, Outcome::Converged, "{outcome:?}");
    }
    assert_eq!(
        std::fs::read_to_string(directory.join("pg-1-release")).unwrap(),
        "v2\n"
    );
}
