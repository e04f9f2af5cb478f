//! Benchmark: `plan --base` on a fleet of 1,000 PostgreSQL instances in 20
//! label-selected groups of 50, 5 roles per group (5,000 resources). Every
//! instance is read from a discovery snapshot (one real PostgreSQL server,
//! discovered once, recorded under each instance's name), so that a full
//! plan has to read all 1,000. One line of one role of one group is edited
//! in the working tree. Reports the median of several runs of:
//! - the full plan;
//! - `plan --base HEAD` (compares with the commit, plans that group's 50);
//! - a plan of an environment holding only that group's 50 instances and
//!   its roles (the floor `--base` is held to: within 3×).
//!
//! Needs the PostgreSQL server programs (tests/run.sh installs them).
//! Run with `cargo bench --bench plan_base`.

#[path = "../tests/common/git.rs"]
mod git;
#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use postgres::{PostgresServer, SUPERUSER_PASSWORD};

const INSTANCES: usize = 1000;
const GROUPS: usize = 20;
const ROLES_PER_GROUP: usize = 5;
/// The group whose role is edited.
const EDITED: usize = 7;
const RUNS: usize = 5;

fn fleetform(root: &Path, environment: &str, arguments: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(arguments)
        .args(["-e", environment, "--progress", "off", "--repo"])
        .arg(root)
        .env("FLEETFORM_BENCH_PG_PASSWORD", SUPERUSER_PASSWORD)
        .output()
        .expect("fleetform runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

fn environment_file(root: &Path, name: &str) {
    let directory = root.join("environments").join(name);
    std::fs::create_dir_all(&directory).unwrap();
    std::fs::write(
        directory.join("environment.yaml"),
        format!("apiVersion: fleetform/v1\nkind: Environment\nmetadata: {{name: {name}}}\nspec:\n  connectionDefaults:\n    postgres:\n      user: postgres\n      password: {{fromEnv: FLEETFORM_BENCH_PG_PASSWORD}}\n      sslMode: disable\n"),
    )
    .unwrap();
}

/// Instances `range` (in groups of 50 by label), a snapshot each, and the
/// groups' roles, as the environment `name`.
fn write_fleet(root: &Path, name: &str, range: std::ops::Range<usize>, version: u32) {
    environment_file(root, name);
    let directory = root.join("environments").join(name);
    let mut inventory = String::from(
        "apiVersion: fleetform/v1\nkind: Server\nmetadata: {name: local}\nspec: {host: 127.0.0.1, os: linux}\n",
    );
    let mut groups = std::collections::BTreeSet::new();
    for index in range {
        let group = index / (INSTANCES / GROUPS);
        groups.insert(group);
        let _ = write!(
            inventory,
            "---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata:\n  name: pg-{index}\n  labels: {{group: g{group}}}\nspec: {{server: local, port: {}, version: {version}, snapshot: snapshots/fleet.json}}\n",
            20000 + index
        );
    }
    let mut objects = String::new();
    for group in groups {
        let _ = write!(
            objects,
            "---\napiVersion: fleetform/v1\nkind: Group\nmetadata: {{name: g{group}}}\nspec:\n  matchLabels: {{group: g{group}}}\n"
        );
        for role in 0..ROLES_PER_GROUP {
            let _ = write!(
                objects,
                "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: g{group}-role-{role}}}\nspec:\n  on: {{group: g{group}}}\n  name: g{group}_role_{role}\n  login: false\n  connectionLimit: {role}\n"
            );
        }
    }
    std::fs::write(directory.join("inventory.yaml"), inventory).unwrap();
    std::fs::write(directory.join("roles.yaml"), objects).unwrap();
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(root: &Path, environment: &str, arguments: &[&str], expect: i32) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let (code, text) = fleetform(root, environment, arguments);
        samples.push(started.elapsed());
        assert_eq!(code, expect, "{arguments:?}: {text}");
    }
    median(samples)
}

fn main() {
    let server = PostgresServer::start();
    let version = postgres::major_version();
    let repository = tempfile::tempdir().unwrap();
    let root = repository.path();

    // One real instance, discovered once.
    environment_file(root, "probe");
    std::fs::write(
        root.join("environments/probe/inventory.yaml"),
        format!("apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: local}}\nspec: {{host: 127.0.0.1, os: linux}}\n---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: probe}}\nspec: {{server: local, port: {}, version: {version}}}\n---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: probe-role}}\nspec:\n  on: {{instances: [probe]}}\n  login: false\n", server.port),
    )
    .unwrap();
    let probe = root.join("probe.json");
    let (code, text) = fleetform(
        root,
        "probe",
        &["discover", "--out", probe.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{text}");
    let mut snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&probe).unwrap()).unwrap();
    let recorded = snapshot["targets"]["probe"].clone();
    let targets: serde_json::Map<String, serde_json::Value> = (0..INSTANCES)
        .map(|index| {
            // One server each, as far as the same-server check can tell.
            let mut target = recorded.clone();
            target["facts"]["system_identifier"] =
                serde_json::json!(format!("{}", 7_000_000_000_000_000_000u64 + index as u64));
            (format!("pg-{index}"), target)
        })
        .collect();
    snapshot["targets"] = serde_json::Value::Object(targets);
    std::fs::create_dir_all(root.join("snapshots")).unwrap();
    std::fs::write(
        root.join("snapshots/fleet.json"),
        serde_json::to_string(&snapshot).unwrap(),
    )
    .unwrap();
    std::fs::remove_dir_all(root.join("environments/probe")).unwrap();

    let size = INSTANCES / GROUPS;
    write_fleet(root, "fleet", 0..INSTANCES, version);
    write_fleet(root, "alone", EDITED * size..(EDITED + 1) * size, version);
    git::commit_all(root, "fleet");

    // The one-line change, in both environments' working trees.
    for environment in ["fleet", "alone"] {
        let path = root
            .join("environments")
            .join(environment)
            .join("roles.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let from = format!("  name: g{EDITED}_role_2\n  login: false\n  connectionLimit: 2\n");
        assert!(text.contains(&from));
        std::fs::write(
            &path,
            text.replacen(
                &from,
                &from.replace("connectionLimit: 2", "connectionLimit: 20"),
                1,
            ),
        )
        .unwrap();
    }
    let (_, scoped) = fleetform(
        root,
        "fleet",
        &["plan", "--base", "HEAD", "--format", "json"],
    );
    let plan: serde_json::Value = serde_json::from_str(&scoped)
        .unwrap_or_else(|error| panic!("{error}: {}", &scoped[..scoped.len().min(3000)]));
    // Snapshot targets are not pinned: count the targets planned on.
    let read = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|change| change["target"].as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(
        read, size,
        "plan --base reads only the edited group's instances"
    );

    // Changes pending (the snapshots hold none of the roles): exit 2.
    let full = time(root, "fleet", &["plan"], 2);
    let base = time(root, "fleet", &["plan", "--base", "HEAD"], 2);
    let alone = time(root, "alone", &["plan"], 2);
    println!(
        "| {INSTANCES} instances, {} resources | full plan | plan --base HEAD ({read} instances read) | the {size} instances alone | --base / alone |",
        INSTANCES * ROLES_PER_GROUP
    );
    println!("|---|---|---|---|---|");
    println!(
        "| median of {RUNS} | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} |",
        full.as_secs_f64() * 1000.0,
        base.as_secs_f64() * 1000.0,
        alone.as_secs_f64() * 1000.0,
        base.as_secs_f64() / alone.as_secs_f64()
    );
}
