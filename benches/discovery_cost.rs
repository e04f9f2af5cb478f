//! Benchmark: what a plan costs the servers it reads. Starts 20 PostgreSQL
//! servers on loopback with the workload of issue 18 (per instance: 10 roles,
//! 5 databases each with a schema and a CONNECT grant, 5 settings), applies it
//! once, then runs `fleetform plan` (nothing to change) several times and
//! reports, as the median over the runs:
//! - the command's wall time;
//! - its CPU time (user + system, from the kernel's accounting of the child);
//! - the CPU time the servers spent per instance, from the kernel's accounting
//!   of each server's process tree (the postmaster, its live children, and the
//!   backends it has reaped: `/proc/<pid>/stat` utime, stime, cutime, cstime);
//! - sessions and statements per instance, from the servers' own records
//!   (the `connection authorized` lines of `log_connections`, the calls of
//!   `pg_stat_statements`), and the time the servers spent planning and
//!   executing those statements (wall time inside the servers, so inflated
//!   when 20 servers share 2 cores; the CPU figure is the one to compare).
//!
//! With FLEETFORM_BENCH_DETAIL set, it also prints the statements of the last
//! plan on the first server, the costliest first.
//!
//! Needs the PostgreSQL server programs with pg_stat_statements (tests/run.sh
//! installs them). Run with `cargo bench --bench discovery_cost`.

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use postgres::{PostgresServer, SUPERUSER_PASSWORD};

const INSTANCES: usize = 20;
const ROLES: usize = 10;
const DATABASES: usize = 5;
const RUNS: usize = 7;

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
    let on = "  on: {matchLabels: {tier: bench}}\n";
    let mut objects = String::new();
    for role in 0..ROLES {
        let _ = write!(
            objects,
            "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: role-{role}}}\nspec:\n{on}  login: {}\n  comment: Role number {role}.\n",
            role % 2 == 0
        );
    }
    for database in 0..DATABASES {
        let _ = write!(
            objects,
            "---\napiVersion: fleetform/v1\nkind: PostgresDatabase\nmetadata: {{name: db-{database}}}\nspec:\n{on}  owner: role-{database}\n---\napiVersion: fleetform/v1\nkind: PostgresSchema\nmetadata: {{name: app-{database}}}\nspec:\n{on}  database: db-{database}\n  name: app\n  owner: role-{database}\n---\napiVersion: fleetform/v1\nkind: PostgresGrant\nmetadata: {{name: connect-{database}}}\nspec:\n{on}  database: db-{database}\n  role: role-{}\n  objectType: database\n  privileges: [CONNECT]\n",
            database + DATABASES
        );
    }
    let _ = write!(
        objects,
        "---\napiVersion: fleetform/v1\nkind: PostgresSettings\nmetadata: {{name: tuning}}\nspec:\n{on}  parameters: {{work_mem: 16MB, log_lock_waits: on, statement_timeout: 30s, idle_in_transaction_session_timeout: 10min, random_page_cost: 1.1}}\n"
    );
    std::fs::write(environment.join("fleet.yaml"), objects).unwrap();
}

/// Run fleetform; its exit code and the CPU time it used.
fn fleetform(root: &Path, arguments: &[&str]) -> (i32, Duration) {
    let before = children_cpu();
    let status = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(arguments)
        .args(["-e", "bench", "--repo"])
        .arg(root)
        .env("FLEETFORM_BENCH_PG_PASSWORD", SUPERUSER_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("fleetform runs");
    (status.code().unwrap_or(-1), children_cpu() - before)
}

/// The clock ticks of `/proc/<pid>/stat` fields (utime, stime, cutime, cstime).
fn cpu_fields(pid: u32) -> Option<[u64; 4]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // After the name: state (3), ppid (4) ... utime is field 14 of the line.
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some([field(14)?, field(15)?, field(16)?, field(17)?])
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(1)?.parse().ok()
}

const TICK: Duration = Duration::from_millis(10);

/// CPU time of this process's reaped children.
fn children_cpu() -> Duration {
    let fields = cpu_fields(std::process::id()).unwrap();
    TICK * (fields[2] + fields[3]) as u32
}

/// CPU time of a server so far: its postmaster (with the backends it reaped)
/// and its live children.
fn server_cpu(postmaster: u32, processes: &[u32]) -> Duration {
    let own = cpu_fields(postmaster).unwrap();
    let mut ticks = own.iter().sum::<u64>();
    for pid in processes {
        if parent_of(*pid) == Some(postmaster)
            && let Some(fields) = cpu_fields(*pid)
        {
            ticks += fields[0] + fields[1];
        }
    }
    TICK * ticks as u32
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn postmaster_pid(server: &PostgresServer) -> u32 {
    let pid_file = std::fs::read_to_string(server.data_directory().join("postmaster.pid")).unwrap();
    pid_file.lines().next().unwrap().trim().parse().unwrap()
}

/// Sessions the server has authorized so far, from its log.
fn sessions_so_far(server: &PostgresServer) -> usize {
    server.log().matches("connection authorized").count()
}

/// Statements, and the milliseconds spent planning and executing them, as
/// the server's statistics count them (without the statistics queries
/// themselves).
fn statistics(server: &PostgresServer) -> [f64; 3] {
    let line = server.psql(
        "SELECT sum(calls), sum(total_plan_time), sum(total_exec_time) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_%'",
    );
    let values: Vec<f64> = line
        .trim()
        .split('|')
        .map(|value| value.trim().parse().unwrap_or(0.0))
        .collect();
    [values[0], values[1], values[2]]
}

fn reset_statistics(server: &PostgresServer) {
    server.psql("SELECT pg_stat_statements_reset()");
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let started = Instant::now();
    let servers: Vec<PostgresServer> = (0..INSTANCES)
        .map(|_| {
            PostgresServer::start_with(&[
                "shared_preload_libraries=pg_stat_statements",
                "pg_stat_statements.track_planning=on",
                "log_connections=on",
            ])
        })
        .collect();
    eprintln!(
        "{INSTANCES} servers started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for server in &servers {
        server.psql("CREATE EXTENSION pg_stat_statements");
    }
    let repository = tempfile::tempdir().unwrap();
    write_repository(repository.path(), &servers);
    let (applied, _) = fleetform(repository.path(), &["apply", "--auto-approve"]);
    assert_eq!(applied, 0, "the bench fleet did not converge");
    assert_eq!(
        fleetform(repository.path(), &["plan"]).0,
        0,
        "the plan after apply is not empty"
    );
    let postmasters: Vec<u32> = servers.iter().map(postmaster_pid).collect();
    let (mut wall, mut own_cpu, mut server_cpu_per_instance) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sessions, mut statements, mut planning, mut executing) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        servers.iter().for_each(reset_statistics);
        // Let the statistics resets and their sessions settle.
        std::thread::sleep(Duration::from_millis(300));
        let processes = all_pids();
        let before: Vec<Duration> = postmasters
            .iter()
            .map(|pid| server_cpu(*pid, &processes))
            .collect();
        let sessions_before: Vec<usize> = servers.iter().map(sessions_so_far).collect();
        let started = Instant::now();
        let (code, cpu) = fleetform(repository.path(), &["plan"]);
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(code, 0, "a plan with nothing to change exits 0");
        own_cpu.push(cpu.as_secs_f64() * 1000.0);
        // Backends end after the client leaves; give the postmasters a moment to reap them.
        std::thread::sleep(Duration::from_millis(300));
        let processes = all_pids();
        let spent: f64 = postmasters
            .iter()
            .zip(&before)
            .map(|(pid, before)| (server_cpu(*pid, &processes) - *before).as_secs_f64())
            .sum();
        server_cpu_per_instance.push(spent * 1000.0 / INSTANCES as f64);
        let opened: usize = servers
            .iter()
            .zip(&sessions_before)
            .map(|(server, before)| sessions_so_far(server) - before)
            .sum();
        sessions.push(opened as f64 / INSTANCES as f64);
        let counted: Vec<[f64; 3]> = servers.iter().map(statistics).collect();
        let per_instance = |index: usize| {
            counted.iter().map(|values| values[index]).sum::<f64>() / INSTANCES as f64
        };
        statements.push(per_instance(0));
        planning.push(per_instance(1));
        executing.push(per_instance(2));
    }
    if std::env::var_os("FLEETFORM_BENCH_DETAIL").is_some() {
        println!(
            "{}",
            servers[0].psql(
                "SELECT calls, round(total_plan_time::numeric, 2) AS plan_ms, round(total_exec_time::numeric, 2) AS exec_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_%' ORDER BY total_plan_time + total_exec_time DESC"
            )
        );
    }
    println!(
        "plan of {INSTANCES} PostgreSQL instances x ({ROLES} roles, {DATABASES} databases with a schema and a CONNECT grant each, 5 settings), nothing to change; median of {RUNS} runs:"
    );
    println!(
        "  fleetform plan, wall time            {:8.1} ms",
        median(wall)
    );
    println!(
        "  fleetform plan, its CPU              {:8.1} ms",
        median(own_cpu)
    );
    println!(
        "  servers' CPU per instance            {:8.1} ms",
        median(server_cpu_per_instance)
    );
    println!(
        "  sessions per instance                {:8.1}",
        median(sessions)
    );
    println!(
        "  statements per instance              {:8.1}",
        median(statements)
    );
    println!(
        "  planning / executing per instance    {:8.1} ms / {:.1} ms",
        median(planning),
        median(executing)
    );
}
