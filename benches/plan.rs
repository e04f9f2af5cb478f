//! Benchmark: plan of a fleet of 20 real PostgreSQL instances × 50 resources
//! (40 roles, 9 databases, 1 settings object of 4 parameters, each selected
//! by label onto every instance), after one apply so the plan is a full
//! no-change diff. Reports the median of several runs of:
//! - `fleetform plan` as a user runs it (process start, validation,
//!   discovery, diff, rendering);
//! - the engine's discovery and plan building in process;
//! - the same discovery queries fired directly with tokio-postgres, all
//!   instances at once (the floor the engine can approach).
//!
//! Needs the PostgreSQL server programs (tests/run.sh installs them).
//! Run with `cargo bench --bench plan`.

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetform::ops::engine::{Engine, RunSettings};
use fleetform::schemas::SchemaCatalog;
use fleetform::settings::SourceSettings;
use postgres::{PostgresServer, SUPERUSER_PASSWORD};

const INSTANCES: usize = 20;
const ROLES: usize = 40;
const DATABASES: usize = 9;
const RUNS: usize = 5;

fn write_repository(root: &Path, servers: &[PostgresServer]) {
    let environment = root.join("environments/bench");
    std::fs::create_dir_all(&environment).unwrap();
    std::fs::write(
        environment.join("environment.yaml"),
        "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: bench}\nspec:\n  connectionDefaults:\n    postgres:\n      user: postgres\n      password: {fromEnv: FLEETFORM_BENCH_PG_PASSWORD}\n      sslMode: disable\n",
    )
    .unwrap();
    let mut inventory = String::from(
        "apiVersion: fleetform/v1\nkind: Server\nmetadata: {name: local}\nspec: {host: 127.0.0.1, os: linux}\n",
    );
    for (index, server) in servers.iter().enumerate() {
        let _ = write!(
            inventory,
            "---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata:\n  name: pg-{index}\n  labels: {{tier: bench}}\nspec: {{server: local, port: {}, version: 15}}\n",
            server.port
        );
    }
    std::fs::write(environment.join("inventory.yaml"), inventory).unwrap();
    let mut objects = String::new();
    for role in 0..ROLES {
        let _ = write!(
            objects,
            "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: role-{role}}}\nspec:\n  on: {{matchLabels: {{tier: bench}}}}\n  login: {}\n  connectionLimit: {}\n  comment: Role number {role}.\n",
            role % 2 == 0,
            role % 7
        );
    }
    for database in 0..DATABASES {
        let _ = write!(
            objects,
            "---\napiVersion: fleetform/v1\nkind: PostgresDatabase\nmetadata: {{name: db-{database}}}\nspec:\n  on: {{matchLabels: {{tier: bench}}}}\n  owner: role-{database}\n  connectionLimit: 100\n"
        );
    }
    objects.push_str("---\napiVersion: fleetform/v1\nkind: PostgresSettings\nmetadata: {name: tuning}\nspec:\n  on: {matchLabels: {tier: bench}}\n  parameters: {work_mem: 16MB, log_lock_waits: on, statement_timeout: 30s, idle_in_transaction_session_timeout: 10min}\n");
    std::fs::write(environment.join("fleet.yaml"), objects).unwrap();
}

fn fleetform(root: &Path, arguments: &[&str]) -> i32 {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(arguments)
        .args(["-e", "bench", "--repo"])
        .arg(root)
        .env("FLEETFORM_BENCH_PG_PASSWORD", SUPERUSER_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("fleetform runs")
        .code()
        .unwrap_or(-1)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn milliseconds(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn main() {
    let started = Instant::now();
    let servers: Vec<PostgresServer> = (0..INSTANCES).map(|_| PostgresServer::start()).collect();
    eprintln!(
        "{INSTANCES} servers started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let repository = tempfile::tempdir().unwrap();
    write_repository(repository.path(), &servers);
    // SAFETY of set_var: single-threaded here, before any runtime starts.
    unsafe { std::env::set_var("FLEETFORM_BENCH_PG_PASSWORD", SUPERUSER_PASSWORD) };
    let applied = fleetform(repository.path(), &["apply", "--auto-approve"]);
    assert_eq!(applied, 0, "the bench fleet did not converge");
    assert_eq!(
        fleetform(repository.path(), &["plan"]),
        0,
        "the plan after apply is not empty"
    );

    // 1. The command as a user runs it.
    let command: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(fleetform(repository.path(), &["plan"]), 0);
            started.elapsed()
        })
        .collect();

    // 2. The engine in process, and 3. the same queries fired directly.
    let settings = SourceSettings::resolve("bench", Some(repository.path()), None).unwrap();
    let catalog = SchemaCatalog::embedded().unwrap();
    let check = fleetform::ops::check_environment(&settings.source, "bench", &catalog);
    let fleet = check.fleet.expect("the bench fleet is valid");
    let run_settings = RunSettings {
        parallelism: 16,
        prune: false,
        replace: Default::default(),
        destroy: Default::default(),
        only: Vec::new(),
        lock_timeout: Duration::from_secs(60),
        actor: "bench".into(),
        commit: None,
        repository_root: repository.path().to_path_buf(),
        secret_salt: None,
        scope: None,
    };
    let engine = Arc::new(Engine::prepare(&fleet, &catalog, run_settings).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let resources = engine.resources.len();
    let mut engine_samples = Vec::new();
    let mut scripts: Vec<(u16, Vec<String>)> = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let plan = runtime.block_on(async {
            let observations = engine.discover().await;
            engine.build_plan(&observations, String::new())
        });
        engine_samples.push(started.elapsed());
        assert!(!plan.has_changes() && !plan.has_errors());
        if scripts.is_empty() {
            let observations = runtime.block_on(engine.discover());
            for (index, server) in servers.iter().enumerate() {
                let target = format!("pg-{index}");
                let facts = observations[&target].as_ref().unwrap().facts.clone();
                // The bench fleet has instance-wide kinds only: every query runs
                // on the maintenance database.
                let queries = engine
                    .modules_for(&target, &Default::default(), &[], &Default::default())
                    .into_iter()
                    .map(|(module, database)| {
                        engine
                            .discovery_script(module, &target, database.as_deref(), &facts, &[])
                            .unwrap()
                    })
                    .collect();
                scripts.push((server.port, queries));
            }
        }
    }
    let direct: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            runtime.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for (port, queries) in scripts.clone() {
                    tasks.spawn(async move {
                        let connection = format!("host=127.0.0.1 port={port} user=postgres password={SUPERUSER_PASSWORD} dbname=postgres");
                        let (client, driver) = tokio_postgres::connect(&connection, tokio_postgres::NoTls).await.unwrap();
                        tokio::spawn(driver);
                        for query in queries {
                            let row = client.query_one(&query, &[]).await.unwrap();
                            let _: serde_json::Value = row.get(0);
                        }
                    });
                }
                while let Some(result) = tasks.join_next().await {
                    result.unwrap();
                }
            });
            started.elapsed()
        })
        .collect();

    println!(
        "plan of {INSTANCES} PostgreSQL 15 instances x {} resources each ({resources} resources), no changes, median of {RUNS} runs on this machine:",
        resources / INSTANCES
    );
    println!(
        "  fleetform plan (the whole command)         {}",
        milliseconds(median(command))
    );
    println!(
        "  engine discover + plan, in process         {}",
        milliseconds(median(engine_samples))
    );
    println!(
        "  the same discovery queries fired directly  {}",
        milliseconds(median(direct))
    );
}
