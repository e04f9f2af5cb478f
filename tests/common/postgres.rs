//! Real PostgreSQL servers for end-to-end tests: one throwaway cluster per
//! test (initdb once per test process, then a copy of that data directory),
//! on a free loopback port, stopped and removed when the handle drops, also
//! when the test fails.
//!
//! As root, the server programs run as the `postgres` user (PostgreSQL
//! refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser's password of every test server.
pub const SUPERUSER_PASSWORD: &str = "fleetform-test-superuser";

/// The server programs: `FLEETFORM_TEST_PG_BIN` (tests/run.sh points it at
/// other PostgreSQL releases for a second pass), else Debian's.
fn binaries() -> PathBuf {
    if let Some(directory) = std::env::var_os("FLEETFORM_TEST_PG_BIN") {
        let directory = PathBuf::from(directory);
        assert!(
            directory.join("initdb").exists(),
            "FLEETFORM_TEST_PG_BIN={} has no initdb",
            directory.display()
        );
        return directory;
    }
    debian_binaries()
}

fn debian_binaries() -> PathBuf {
    for version in ["15", "16", "17"] {
        let directory = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        if directory.join("initdb").exists() {
            return directory;
        }
    }
    panic!(
        "PostgreSQL server programs not found under /usr/lib/postgresql/*/bin: run tests/run.sh, which installs postgresql-15"
    );
}

/// psql: the one beside the server programs, else Debian's (a newer server
/// speaks to an older psql for everything the tests do).
fn psql_program() -> PathBuf {
    let beside = binaries().join("psql");
    if beside.exists() {
        beside
    } else {
        debian_binaries().join("psql")
    }
}

/// The major version of the server programs (`postgres --version`).
pub fn major_version() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let output = run(
            {
                let mut command = Command::new(binaries().join("postgres"));
                command.arg("--version");
                command
            },
            "postgres --version",
        );
        let text = String::from_utf8_lossy(&output.stdout);
        text.split_whitespace()
            .last()
            .and_then(|release| release.split('.').next())
            .and_then(|major| major.parse().ok())
            .unwrap_or_else(|| panic!("cannot read a version from `{text}`"))
    })
}

fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|output| output.stdout == b"0\n")
            .unwrap_or(false)
    })
}

/// A command for a server program, as `postgres` when we are root.
fn server_command(program: &str) -> Command {
    let path = binaries().join(program);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

pub fn give_to_server_user(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown {} failed", path.display());
    }
}

fn run(mut command: Command, what: &str) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A data directory made by initdb once for these server programs and
/// shared by every test process (nextest runs one per test), copied for
/// each server. It lives in the temporary directory under a name derived
/// from the programs' path, and is made under a name of its own first and
/// then renamed into place, so that processes starting together never see
/// half of one; a process that loses the race removes its own copy.
fn template_data_directory() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        binaries().hash(&mut hasher);
        SUPERUSER_PASSWORD.hash(&mut hasher);
        let shared =
            std::env::temp_dir().join(format!("fleetform-pg-template-{:016x}", hasher.finish()));
        if shared.join("data/PG_VERSION").is_file() {
            return shared;
        }
        let directory = tempfile::Builder::new()
            .prefix("fleetform-pg-template-partial")
            .tempdir()
            .expect("temp dir");
        let password_file = directory.path().join("password");
        std::fs::write(&password_file, SUPERUSER_PASSWORD).expect("password file");
        give_to_server_user(directory.path());
        let mut initdb = server_command("initdb");
        initdb
            .arg("-D")
            .arg(directory.path().join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ])
            .arg(format!("--pwfile={}", password_file.display()));
        run(initdb, "initdb");
        let made = directory.keep();
        if std::fs::rename(&made, &shared).is_err() {
            // Another process put its template there first.
            let _ = std::fs::remove_dir_all(&made);
        }
        assert!(
            shared.join("data/PG_VERSION").is_file(),
            "no template data directory at {}",
            shared.display()
        );
        shared
    })
}

pub struct PostgresServer {
    pub port: u16,
    directory: tempfile::TempDir,
    /// The server's `pg_ctl -o` options, to start it again after a stop.
    options: String,
}

impl PostgresServer {
    /// Start a fresh server; `settings` are extra `-c name=value` options.
    pub fn start() -> PostgresServer {
        Self::start_with(&[])
    }

    pub fn start_with(settings: &[&str]) -> PostgresServer {
        let directory = tempfile::Builder::new()
            .prefix("fleetform-pg")
            .tempdir()
            .expect("temp dir");
        let mut copy = Command::new("cp");
        copy.arg("-a")
            .arg(template_data_directory().join("data"))
            .arg(directory.path().join("data"));
        run(copy, "copying the template data directory");
        give_to_server_user(directory.path());
        // A port that was free a moment ago may be taken by the time the server
        // binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut options = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c fsync=off -k {}",
                directory.path().display()
            );
            for setting in settings {
                options.push_str(&format!(" -c {setting}"));
            }
            if pg_ctl_start(directory.path(), &options) {
                return PostgresServer {
                    port,
                    directory,
                    options,
                };
            }
        }
        let log = std::fs::read_to_string(directory.path().join("log")).unwrap_or_default();
        panic!("PostgreSQL did not start:\n{log}");
    }

    /// The server's whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("log")).unwrap_or_default()
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.directory.path().join("log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn data_directory(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    /// Run SQL as the superuser with psql; returns stdout (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    pub fn psql_on(&self, database: &str, sql: &str) -> String {
        let output = self
            .psql_command(database, sql)
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A psql command (not started), for tests that hold a session open.
    pub fn psql_command(&self, database: &str, sql: &str) -> Command {
        let mut command = Command::new(psql_program());
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .stdin(Stdio::null());
        command
    }

    /// Poll `sql` until it prints `expected`, for at most `limit`.
    pub fn wait_for(&self, sql: &str, expected: &str, limit: Duration) -> bool {
        self.wait_for_on("postgres", sql, expected, limit)
    }

    pub fn wait_for_on(&self, database: &str, sql: &str, expected: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.psql_on(database, sql) == expected {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// Start the server of `directory` with `options`; whether it started.
fn pg_ctl_start(directory: &Path, options: &str) -> bool {
    let mut start = server_command("pg_ctl");
    start
        .arg("-D")
        .arg(directory.join("data"))
        .arg("-l")
        .arg(directory.join("log"))
        .args(["-o", options, "-w", "-t", "30", "start"]);
    start
        .stdin(Stdio::null())
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false)
}

impl PostgresServer {
    /// Stop the server as an administrator would (`pg_ctl stop -m fast`:
    /// sessions are ended, the port refuses connections).
    pub fn stop(&self) {
        let mut stop = server_command("pg_ctl");
        stop.arg("-D")
            .arg(self.data_directory())
            .args(["-m", "fast", "-w", "-t", "30", "stop"]);
        run(stop, "stopping the server");
    }

    /// Start a stopped server again, on the same port.
    pub fn start_again(&self) {
        assert!(
            pg_ctl_start(self.directory.path(), &self.options),
            "PostgreSQL did not start again:\n{}",
            self.log_tail(20)
        );
    }

    /// The postmaster and its children (the backends, fleetform's sessions
    /// among them), from /proc.
    fn processes(&self) -> Vec<u32> {
        let pid_file = std::fs::read_to_string(self.data_directory().join("postmaster.pid"))
            .unwrap_or_default();
        let Some(postmaster) = pid_file
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
        else {
            return Vec::new();
        };
        let mut found = vec![postmaster];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: the command may hold spaces.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if parent == Some(postmaster) {
                found.push(pid);
            }
        }
        found
    }

    fn signal(&self, signal: &str) {
        let pids: Vec<String> = self.processes().iter().map(u32::to_string).collect();
        if pids.is_empty() {
            return;
        }
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -s {signal} {}", pids.join(" ")))
            .status();
    }

    /// Stop every process of the server (SIGSTOP): it keeps its sockets but
    /// answers nothing, as a hung or partitioned server does.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Let a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // A frozen server would not stop.
        self.thaw();
        let mut stop = server_command("pg_ctl");
        stop.arg("-D").arg(self.data_directory()).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ]);
        let _ = stop
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}
