//! Benchmark: load + validate + expand + graph of a generated fleet of 10,000
//! manifest objects, in memory. Reports the median wall time of several runs
//! and the process's peak resident memory. Targets (issue 2): under 250 ms,
//! under 150 MB. Run with `cargo bench --bench validate`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use fleetform::ops;
use fleetform::schemas::SchemaCatalog;
use fleetform::source::ManifestSource;

const SERVERS: usize = 100;
const INSTANCES_PER_SERVER: usize = 4;
const GROUPS: usize = 10;
const ROLES: usize = 4_000;
const DATABASES: usize = 3_000;
const SCHEMAS: usize = 2_000;
const POLICIES: usize = 490;

fn generated_fleet() -> (BTreeMap<String, String>, usize) {
    let mut files = BTreeMap::new();
    files.insert(
        "environments/bench/environment.yaml".to_string(),
        "apiVersion: fleetform/v1\nkind: Environment\nmetadata:\n  name: bench\nspec:\n  variables:\n    base_port: 5432\n".to_string(),
    );
    let instances = SERVERS * INSTANCES_PER_SERVER;
    let mut inventory = String::new();
    for server in 0..SERVERS {
        let _ = write!(
            inventory,
            "---\napiVersion: fleetform/v1\nkind: Server\nmetadata:\n  name: host-{server}\nspec:\n  host: 127.0.{}.{}\n  os: linux\n",
            server / 250,
            server % 250 + 1
        );
        for slot in 0..INSTANCES_PER_SERVER {
            let instance = server * INSTANCES_PER_SERVER + slot;
            let _ = write!(
                inventory,
                "---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata:\n  name: pg-{instance}\n  labels:\n    shard: s{}\nspec:\n  server: host-{server}\n  port: {}\n",
                instance % GROUPS,
                5432 + slot
            );
        }
    }
    for group in 0..GROUPS {
        let _ = write!(
            inventory,
            "---\napiVersion: fleetform/v1\nkind: Group\nmetadata:\n  name: shard-{group}\nspec:\n  matchLabels:\n    shard: s{group}\n"
        );
    }
    files.insert("environments/bench/inventory.yaml".to_string(), inventory);
    let mut roles = String::new();
    for role in 0..ROLES {
        let _ = write!(
            roles,
            "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata:\n  name: role-{role}\nspec:\n  on: {{instances: [pg-{}]}}\n  login: true\n  connectionLimit: 20\n  password: {{fromEnv: ROLE_PASSWORD}}\n",
            role % instances
        );
    }
    files.insert("environments/bench/roles.yaml".to_string(), roles);
    let mut databases = String::new();
    for database in 0..DATABASES {
        let _ = write!(
            databases,
            "---\napiVersion: fleetform/v1\nkind: PostgresDatabase\nmetadata:\n  name: db-{database}\nspec:\n  on: {{instances: [pg-{}]}}\n  owner: role-{database}\n",
            database % instances
        );
    }
    files.insert("environments/bench/databases.yaml".to_string(), databases);
    let mut schemas = String::new();
    for schema in 0..SCHEMAS {
        let _ = write!(
            schemas,
            "---\napiVersion: fleetform/v1\nkind: PostgresSchema\nmetadata:\n  name: schema-{schema}\nspec:\n  on: {{instances: [pg-{}]}}\n  database: db-{schema}\n  owner: role-{schema}\n",
            schema % instances
        );
    }
    files.insert("environments/bench/schemas.yaml".to_string(), schemas);
    let mut policies = String::new();
    for policy in 0..POLICIES {
        let _ = write!(
            policies,
            "---\napiVersion: fleetform/v1\nkind: BackupPolicy\nmetadata:\n  name: backup-{policy}\nspec:\n  on: {{group: shard-{}}}\n  destination: {{type: disk, path: /var/backups/postgres}}\n  retentionDays: 14\n  full:\n    schedule: \"0 1 * * 0\"\n",
            policy % GROUPS
        );
    }
    files.insert("environments/bench/policies.yaml".to_string(), policies);
    let objects = SERVERS + instances + GROUPS + ROLES + DATABASES + SCHEMAS + POLICIES;
    (files, objects)
}

fn peak_resident_megabytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}

fn main() {
    let catalog = SchemaCatalog::embedded().expect("schemas load");
    let (files, objects) = generated_fleet();
    let source = ManifestSource::Memory { files };
    let mut timings = Vec::new();
    let mut resources = 0;
    for _ in 0..7 {
        let started = Instant::now();
        let check = ops::check_environment(&source, "bench", &catalog);
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(
            check.is_valid(),
            "the generated fleet must be valid: {:?}",
            check.diagnostics.iter().take(5).collect::<Vec<_>>()
        );
        resources = check
            .fleet
            .map(|fleet| fleet.graph.resources.len())
            .unwrap_or(0);
    }
    timings.sort_by(|left, right| left.total_cmp(right));
    // Where the time goes: loading (read, YAML, variables) versus the pure checks.
    let started = Instant::now();
    let (loaded, found) = ops::load::load_environment(&source, "bench", &catalog);
    let loading = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let _ = ops::finish(loaded.expect("bench environment loads"), found, &catalog);
    let checking = started.elapsed().as_secs_f64() * 1000.0;
    let median = timings[timings.len() / 2];
    println!("validate: {objects} objects -> {resources} resources");
    println!(
        "validate: median {median:.1} ms, fastest {:.1} ms, slowest {:.1} ms over {} runs (target < 250 ms)",
        timings[0],
        timings[timings.len() - 1],
        timings.len()
    );
    println!(
        "validate: of one run, load {loading:.1} ms, validate + expand + graph {checking:.1} ms"
    );
    match peak_resident_megabytes() {
        Some(megabytes) => {
            println!("validate: peak resident memory {megabytes:.1} MB (target < 150 MB)")
        }
        None => println!("validate: peak resident memory unavailable (no /proc/self/status)"),
    }
}
