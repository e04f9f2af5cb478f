//! End to end against real PostgreSQL: the real binary plans, applies,
//! verifies and reports drift on servers the harness starts on loopback.

mod common;

use std::process::Command;
use std::time::Duration;

use common::postgres::{PostgresServer, SUPERUSER_PASSWORD};

const APP_PASSWORD: &str = "app-Secret-value-42";

/// A server plus a manifest repository pointing at it.
struct Fleet {
    server: PostgresServer,
    repository: tempfile::TempDir,
}

impl Fleet {
    fn new(manifests: &str) -> Fleet {
        Fleet::with_connection(PostgresServer::start(), "", manifests)
    }

    /// A fleet on `server`; `connection` is extra YAML flow-mapping entries of
    /// the instance's `connection` (e.g. `sslMode: require`).
    fn with_connection(server: PostgresServer, connection: &str, manifests: &str) -> Fleet {
        let repository = tempfile::tempdir().expect("temp dir");
        let environment = repository.path().join("environments/test");
        std::fs::create_dir_all(&environment).unwrap();
        std::fs::write(
            environment.join("environment.yaml"),
            "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: test}\nspec:\n  connectionDefaults:\n    postgres:\n      user: postgres\n      password: {fromEnv: FLEETFORM_TEST_PG_PASSWORD}\n      sslMode: disable\n      connectTimeoutSeconds: 5\n",
        )
        .unwrap();
        std::fs::write(
            environment.join("inventory.yaml"),
            format!(
                "apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: local}}\nspec: {{host: 127.0.0.1, os: linux, connection: {{method: local}}}}\n---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: pg-test}}\nspec: {{server: local, port: {}, version: {}, connection: {{{connection}}}}}\n",
                server.port,
                common::postgres::major_version()
            ),
        )
        .unwrap();
        let fleet = Fleet { server, repository };
        fleet.write(manifests);
        fleet
    }

    fn write(&self, manifests: &str) {
        std::fs::write(
            self.repository
                .path()
                .join("environments/test/manifests.yaml"),
            manifests,
        )
        .unwrap();
    }

    /// A second environment of the same repository, on the same instance,
    /// with `manifests` of its own.
    fn add_environment(&self, name: &str, manifests: &str) {
        let from = self.repository.path().join("environments/test");
        let to = self.repository.path().join("environments").join(name);
        std::fs::create_dir_all(&to).unwrap();
        let environment = std::fs::read_to_string(from.join("environment.yaml")).unwrap();
        std::fs::write(
            to.join("environment.yaml"),
            environment.replace(
                "metadata: {name: test}",
                &format!("metadata: {{name: {name}}}"),
            ),
        )
        .unwrap();
        std::fs::copy(from.join("inventory.yaml"), to.join("inventory.yaml")).unwrap();
        std::fs::write(to.join("manifests.yaml"), manifests).unwrap();
    }

    fn command(&self, arguments: &[&str]) -> Command {
        self.command_in("test", arguments)
    }

    fn command_in(&self, environment: &str, arguments: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
        command
            .args(arguments)
            .args(["-e", environment, "--repo"])
            .arg(self.repository.path())
            .env("FLEETFORM_TEST_PG_PASSWORD", SUPERUSER_PASSWORD)
            .env("FLEETFORM_TEST_APP_PASSWORD", APP_PASSWORD)
            .env("FLEETFORM_ACTOR", "e2e-test")
            // Every log line is in the output the tests search (for secrets too).
            .env("FLEETFORM_LOG", "debug")
            .env("NO_COLOR", "1");
        command
    }

    /// Run fleetform; returns (exit code, stdout, stderr).
    fn run(&self, arguments: &[&str]) -> (i32, String, String) {
        self.run_in("test", arguments)
    }

    fn run_in(&self, environment: &str, arguments: &[&str]) -> (i32, String, String) {
        let output = self
            .command_in(environment, arguments)
            .output()
            .expect("fleetform runs");
        // A template that cannot render is a bug in a module, whatever the test.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.contains("cannot render"),
            "a script did not render:\n{stdout}"
        );
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Run and insist on an exit code, showing everything when it differs.
    fn expect(&self, arguments: &[&str], code: i32) -> String {
        self.expect_in("test", arguments, code)
    }

    fn expect_in(&self, environment: &str, arguments: &[&str], code: i32) -> String {
        let (actual, stdout, stderr) = self.run_in(environment, arguments);
        assert_eq!(
            actual, code,
            "fleetform {arguments:?} exited {actual}, expected {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout + &stderr
    }
}

fn role(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

fn database(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresDatabase\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

fn settings(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresSettings\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

fn every_module() -> String {
    [
        role("owner", "  name: app_owner\n  comment: Owns the application's objects.\n"),
        role("app", "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n  memberOf: [app_owner]\n  connectionLimit: 20\n  validUntil: '2030-01-01T00:00:00Z'\n"),
        database("appdb", "  owner: app_owner\n  connectionLimit: 50\n  comment: The application's data.\n"),
        settings("tuning", "  parameters:\n    work_mem: 16MB\n    log_lock_waits: on\n    idle_in_transaction_session_timeout: 10min\n    shared_buffers: 256MB\n"),
    ]
    .concat()
}

#[test]
fn every_module_converges_plans_nothing_after_and_repairs_drift() {
    let fleet = Fleet::new(&every_module());
    let plan = fleet.expect(&["plan"], 2);
    assert!(plan.contains("+ PostgresRole/app@pg-test"), "{plan}");
    assert!(
        plan.contains("[restart needed]"),
        "shared_buffers needs a restart: {plan}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);

    // Converged for real, as the server sees it.
    assert_eq!(
        fleet.server.psql(
            "SELECT rolconnlimit, rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = 'app'"
        ),
        "20|t|2030-01-01 00:00:00+00"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT pg_has_role('app', 'app_owner', 'MEMBER')"),
        "t"
    );
    assert_eq!(
        fleet.server.psql(
            "SELECT pg_get_userbyid(datdba), datconnlimit FROM pg_database WHERE datname = 'appdb'"
        ),
        "app_owner|50"
    );
    assert_eq!(fleet.server.psql("SHOW work_mem"), "16MB");
    // The password works, and only it.
    let login = |password: &str| {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &fleet.server.port.to_string(),
                "-U",
                "app",
                "-d",
                "appdb",
                "-Xc",
                "SELECT 1",
            ])
            .env("PGPASSWORD", password)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(login(APP_PASSWORD));
    assert!(!login("wrong"));

    // Idempotent: nothing to do, exit 0; shared_buffers still waits for a restart.
    let second = fleet.expect(&["plan"], 0);
    assert!(
        second.contains("0 to create, 0 to update, 0 to replace, 0 to delete"),
        "{second}"
    );
    let in_sync = fleet.expect(&["drift"], 0);
    assert!(
        in_sync.contains("shared_buffers [restart needed] written, but the server runs with the old value until it restarts"),
        "{in_sync}"
    );

    // Out-of-band changes to each module are drift (exit 3) ...
    fleet.server.psql("ALTER ROLE app CONNECTION LIMIT 5");
    fleet
        .server
        .psql("ALTER ROLE app PASSWORD 'changed-by-hand'");
    fleet.server.psql("ALTER DATABASE appdb CONNECTION LIMIT 7");
    fleet.server.psql("ALTER SYSTEM SET work_mem = '64MB'");
    fleet.server.psql("SELECT pg_reload_conf()");
    let drift = fleet.expect(&["drift"], 3);
    for expected in [
        "drifted PostgresRole/app@pg-test",
        "app connectionLimit",
        "app password",
        "drifted PostgresDatabase/appdb@pg-test",
        "drifted PostgresSettings/tuning@pg-test",
        "work_mem value",
    ] {
        assert!(
            drift.contains(expected),
            "missing `{expected}` in:\n{drift}"
        );
    }
    // ... which apply repairs.
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["drift"], 0);
    assert!(login(APP_PASSWORD));
    assert_eq!(
        fleet
            .server
            .psql("SELECT datconnlimit FROM pg_database WHERE datname = 'appdb'"),
        "50"
    );
}

#[test]
fn a_manifest_change_is_pending_not_drift() {
    let fleet = Fleet::new(&role("app", "  login: true\n"));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.write(&role("app", "  login: true\n  connectionLimit: 3\n"));
    let drift = fleet.expect(&["drift"], 2);
    assert!(
        drift.contains("pending PostgresRole/app@pg-test"),
        "{drift}"
    );
    // Both at once: the live state moved too, so it is drift.
    fleet.server.psql("ALTER ROLE app NOLOGIN");
    fleet.expect(&["drift"], 3);
}

#[test]
fn adding_a_parameter_or_a_field_is_pending_not_drift() {
    let fleet = Fleet::new(
        &[
            settings("tuning", "  parameters:\n    work_mem: 16MB\n"),
            role("app", "  login: true\n"),
        ]
        .concat(),
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.write(
        &[
            settings(
                "tuning",
                "  parameters:\n    work_mem: 16MB\n    maintenance_work_mem: 128MB\n",
            ),
            role("app", "  login: true\n  connectionLimit: 4\n"),
        ]
        .concat(),
    );
    let drift = fleet.expect(&["drift"], 2);
    assert!(
        drift.contains("pending PostgresSettings/tuning@pg-test"),
        "{drift}"
    );
    assert!(
        drift.contains("pending PostgresRole/app@pg-test"),
        "{drift}"
    );
}

/// Two environments of one repository manage different objects on one
/// server: each one's --prune deletes only what it created, and lists the
/// other's objects as the other's (issue 19, finding 1).
#[test]
fn prune_deletes_only_what_its_own_environment_created() {
    let fleet = Fleet::new(&format!("{}{}", database("adb", ""), role("a_app", "")));
    fleet.add_environment("team-b", &database("bdb", ""));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect_in("team-b", &["apply", "--auto-approve"], 0);
    fleet.server.psql_on(
        "bdb",
        "CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)",
    );

    let planned = fleet.expect(&["plan", "--prune"], 0);
    assert!(
        planned.contains(
            "PostgresDatabase bdb@pg-test (owned by environment team-b: never pruned from this one)"
        ),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet.server.psql_on("bdb", "SELECT count(*) FROM precious"),
        "1"
    );

    // What team-a created and dropped from its manifests is still its own
    // to prune; team-b's database stays.
    fleet.write(&database("adb", ""));
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(pruned.contains("PostgresRole[a_app]@pg-test"), "{pruned}");
    assert!(!pruned.contains("DROP DATABASE"), "{pruned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet
            .server
            .psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname IN ('adb', 'bdb')"),
        "adb,bdb"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'a_app'"),
        "0"
    );
    // Seen from team-b, team-a's database is team-a's.
    let from_b = fleet.expect_in("team-b", &["plan", "--prune"], 0);
    assert!(
        from_b.contains(
            "PostgresDatabase adb@pg-test (owned by environment test: never pruned from this one)"
        ),
        "{from_b}"
    );
}

/// Issue 19, finding 1 (the repository part): two repositories whose
/// environments have the same name manage one server; with
/// `spec.repository` each owns only what it created, and prune from one
/// never touches the other's.
#[test]
fn two_repositories_with_the_same_environment_name_keep_apart() {
    let fleet = Fleet::new(&database("adb", ""));
    let environment_file = fleet
        .repository
        .path()
        .join("environments/test/environment.yaml");
    let environment = std::fs::read_to_string(&environment_file).unwrap();
    let named = |repository: &str| {
        environment.replace("spec:\n", &format!("spec:\n  repository: {repository}\n"))
    };
    std::fs::write(&environment_file, named("fleet-a")).unwrap();
    // The other team's repository: its own `test` environment, same server.
    let other = tempfile::tempdir().unwrap();
    let other_environment = other.path().join("environments/test");
    std::fs::create_dir_all(&other_environment).unwrap();
    std::fs::write(other_environment.join("environment.yaml"), named("fleet-b")).unwrap();
    std::fs::copy(
        fleet
            .repository
            .path()
            .join("environments/test/inventory.yaml"),
        other_environment.join("inventory.yaml"),
    )
    .unwrap();
    std::fs::write(
        other_environment.join("manifests.yaml"),
        database("bdb", ""),
    )
    .unwrap();
    let in_other = |arguments: &[&str], code: i32| {
        let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
            .args(arguments)
            .args(["-e", "test", "--repo"])
            .arg(other.path())
            .env("FLEETFORM_TEST_PG_PASSWORD", SUPERUSER_PASSWORD)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{arguments:?}: {text}");
        text
    };

    fleet.expect(&["apply", "--auto-approve"], 0);
    in_other(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'bdb'"
        ),
        "[managed by fleetform: environment test@fleet-b]"
    );
    let planned = fleet.expect(&["plan", "--prune"], 0);
    assert!(
        planned.contains(
            "PostgresDatabase bdb@pg-test (owned by environment test@fleet-b: never pruned from this one)"
        ),
        "{planned}"
    );
    // Each repository's ledger rows are its own.
    assert_eq!(
        fleet.server.psql("SELECT string_agg(DISTINCT environment, ',' ORDER BY environment) FROM fleetform.ledger"),
        "test@fleet-a,test@fleet-b"
    );
    // Dropping its database from the other repository prunes only that one.
    std::fs::write(other_environment.join("manifests.yaml"), "").unwrap();
    let pruned = in_other(&["apply", "--auto-approve", "--prune"], 0);
    assert!(pruned.contains("PostgresDatabase[bdb]@pg-test"), "{pruned}");
    assert_eq!(
        fleet.server.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname IN ('adb', 'bdb')"),
        "adb"
    );
}

#[test]
fn settings_that_leave_the_manifests_are_reset_with_prune() {
    let with = |parameters: &str| settings("tuning", &format!("  parameters:\n{parameters}"));
    let fleet = Fleet::new(&with(
        "    work_mem: 24MB\n    log_min_duration_statement: 250ms\n    statement_timeout: 30s\n",
    ));
    fleet.expect(&["apply", "--auto-approve"], 0);
    // Set by hand with ALTER SYSTEM: not fleetform's.
    fleet
        .server
        .psql("ALTER SYSTEM SET maintenance_work_mem = '96MB'");
    let auto_conf = || {
        fleet.server.psql(
            "SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_file_settings WHERE sourcefile LIKE '%auto.conf'",
        )
    };
    assert_eq!(
        auto_conf(),
        "log_min_duration_statement=250ms,maintenance_work_mem=96MB,statement_timeout=30s,work_mem=24MB"
    );

    // work_mem leaves the manifests; another change is applied without
    // --prune: work_mem stays fleetform's, listed, untouched.
    fleet.write(&with(
        "    log_min_duration_statement: 500ms\n    statement_timeout: 30s\n",
    ));
    fleet.expect(&["apply", "--auto-approve"], 0);
    let listed = fleet.expect(&["plan"], 0);
    assert!(
        listed.contains(
            "PostgresSettings work_mem@pg-test (created by fleetform: deleted only with --prune)"
        ),
        "{listed}"
    );
    assert!(!listed.contains("maintenance_work_mem@"), "{listed}");
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(
        pruned.contains("ALTER SYSTEM RESET \"work_mem\";"),
        "{pruned}"
    );
    assert!(!pruned.contains("maintenance_work_mem"), "{pruned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        auto_conf(),
        "log_min_duration_statement=500ms,maintenance_work_mem=96MB,statement_timeout=30s"
    );
    assert_eq!(fleet.server.psql("SHOW work_mem"), "4MB");
    fleet.expect(&["plan", "--prune"], 0);

    // A parameter that moves to another PostgresSettings object is the
    // other object's now: not reset.
    let logging = settings(
        "logging",
        "  parameters:\n    log_min_duration_statement: 500ms\n",
    );
    fleet.write(&(with("    statement_timeout: 30s\n") + &logging));
    let moved = fleet.expect(&["plan", "--prune"], 0);
    assert!(!moved.contains("RESET"), "{moved}");

    // A dropped parameter someone else resets is no longer fleetform's: set
    // again by hand later, it is left alone.
    fleet.write(&(with("    statement_timeout: 30s\n    temp_buffers: 16MB\n") + &logging));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.write(&(with("    statement_timeout: 31s\n") + &logging));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql("ALTER SYSTEM RESET temp_buffers");
    fleet.write(&(with("    statement_timeout: 32s\n") + &logging));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql("ALTER SYSTEM SET temp_buffers = '24MB'");
    let later = fleet.expect(&["plan", "--prune"], 0);
    assert!(!later.contains("temp_buffers"), "{later}");
    fleet.write(&(with("    statement_timeout: 30s\n") + &logging));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql("ALTER SYSTEM RESET temp_buffers");

    // The whole object leaves the manifests: its parameters are reset.
    fleet.write(&role("someone", ""));
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(
        pruned.contains("- PostgresSettings/tuning@pg-test"),
        "{pruned}"
    );
    fleet.write(&(role("someone", "") + &logging));
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        auto_conf(),
        "log_min_duration_statement=500ms,maintenance_work_mem=96MB"
    );
    assert_eq!(fleet.server.psql("SHOW statement_timeout"), "0");
    fleet.expect(&["plan", "--prune"], 0);
}

/// A ledger row edited by hand so that its spec is not an object (a string,
/// a list, a number) is set aside with one warning naming the resource: the
/// plan goes on for that resource and the rest, and nothing is pruned from
/// a spec fleetform cannot read.
#[test]
fn a_ledger_row_whose_spec_is_not_an_object_is_set_aside_with_a_warning() {
    let tuning = |work_mem: &str| {
        settings(
            "tuning",
            &format!("  parameters:\n    work_mem: {work_mem}\n"),
        )
    };
    let fleet = Fleet::new(&(tuning("24MB") + &role("reader", "")));
    fleet.expect(&["apply", "--auto-approve"], 0);
    let warning = "PostgresSettings/tuning@pg-test has a recorded spec that is not an object";
    for (broken, work_mem) in [("'\"x\"'", "32MB"), ("'[1, 2]'", "40MB"), ("'42'", "48MB")] {
        fleet.server.psql(&format!(
            "UPDATE fleetform.ledger SET spec = {broken}::jsonb WHERE resource = 'PostgresSettings/tuning@pg-test'"
        ));
        // Gone from the manifests: not rebuilt from that spec, so not pruned.
        fleet.write(&role("reader", ""));
        let orphaned = fleet.expect(&["plan", "--prune"], 0);
        assert!(!orphaned.contains("RESET"), "{broken}: {orphaned}");
        assert_eq!(orphaned.matches(warning).count(), 1, "{broken}: {orphaned}");
        // Still in the manifests, changed: planned and applied as usual.
        fleet.write(&(tuning(work_mem) + &role("reader", "")));
        let planned = fleet.expect(&["plan", "--prune"], 2);
        assert!(planned.contains(work_mem), "{broken}: {planned}");
        assert_eq!(planned.matches(warning).count(), 1, "{broken}: {planned}");
        fleet.expect(&["apply", "--auto-approve"], 0);
        assert_eq!(fleet.server.psql("SHOW work_mem"), work_mem);
    }
}

#[test]
fn a_snapshot_plans_offline_and_apply_refuses_it() {
    let fleet = Fleet::new(
        &[
            role(
                "app",
                "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n",
            ),
            database("appdb", "  owner: app\n"),
        ]
        .concat(),
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql("ALTER DATABASE appdb CONNECTION LIMIT 5");
    let snapshot = fleet.repository.path().join("snapshot.json");
    let recorded = fleet.expect(&["discover", "--out", snapshot.to_str().unwrap()], 0);
    assert!(recorded.contains("wrote"), "{recorded}");
    let text = std::fs::read_to_string(&snapshot).unwrap();
    assert!(
        !text.contains(APP_PASSWORD) && !text.contains("SCRAM-SHA-256$"),
        "{text}"
    );
    assert!(text.contains("\"unreadable\""), "{text}");

    // The instance now reads the snapshot; its port reaches nothing.
    let inventory = fleet
        .repository
        .path()
        .join("environments/test/inventory.yaml");
    let declared = std::fs::read_to_string(&inventory).unwrap();
    std::fs::write(
        &inventory,
        declared.replace(
            &format!("port: {},", fleet.server.port),
            "port: 1, snapshot: snapshot.json,",
        ),
    )
    .unwrap();
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains("connectionLimit: 5 -> -1") && plan.contains("CONNECTION LIMIT -1"),
        "{plan}"
    );
    assert!(plan.contains("password is not in the snapshot"), "{plan}");
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresDatabase/appdb@pg-test"),
        "{drift}"
    );
    let refused = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(
        refused.contains("pg-test is read from the snapshot")
            && refused.contains("plan and drift only"),
        "{refused}"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT datconnlimit FROM pg_database WHERE datname = 'appdb'"),
        "5"
    );
}

#[test]
fn a_slot_whose_fixed_fields_change_is_replaced_only_when_named() {
    let slot = |body: &str| {
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresReplicationSlot\nmetadata: {{name: cdc_orders}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
        )
    };
    let server = PostgresServer::start_with(&["wal_level=logical"]);
    let fleet = Fleet::with_connection(server, "", &slot("  type: physical\n"));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);
    let kind = || {
        fleet.server.psql(
            "SELECT slot_type || ':' || coalesce(plugin, '-') FROM pg_replication_slots WHERE slot_name = 'cdc_orders'",
        )
    };
    assert_eq!(kind(), "physical:-");
    fleet.write(&slot(
        "  type: logical\n  plugin: pgoutput\n  database: postgres\n",
    ));
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("--replace PostgresReplicationSlot/cdc_orders@pg-test"),
        "{refused}"
    );
    let replace = fleet.expect(
        &[
            "plan",
            "--replace",
            "PostgresReplicationSlot/cdc_orders@pg-test",
        ],
        2,
    );
    assert!(
        replace.contains("pg_drop_replication_slot") && replace.contains("[destructive]"),
        "{replace}"
    );
    fleet.expect(
        &[
            "apply",
            "--auto-approve",
            "--replace",
            "PostgresReplicationSlot/cdc_orders@pg-test",
        ],
        0,
    );
    assert_eq!(kind(), "logical:pgoutput");
    fleet.expect(&["plan"], 0);
}

#[test]
fn list_parameters_are_written_as_lists() {
    let fleet = Fleet::new(&settings(
        "paths",
        "  parameters:\n    search_path: '\"$user\", public, app'\n",
    ));
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet
            .server
            .psql("SELECT setting FROM pg_file_settings WHERE name = 'search_path'"),
        "\"$user\", public, app"
    );
    fleet.expect(&["plan"], 0);
}

#[test]
fn a_stale_plan_is_refused_for_exactly_the_changed_resources() {
    let fleet = Fleet::new(
        &[
            role("one", "  connectionLimit: 1\n"),
            role("two", "  connectionLimit: 2\n"),
        ]
        .concat(),
    );
    fleet.server.psql("CREATE ROLE one; CREATE ROLE two");
    let plan_file = fleet.repository.path().join("plan.json");
    let plan_path = plan_file.to_str().unwrap();
    fleet.expect(&["plan", "--out", plan_path], 2);
    fleet.server.psql("ALTER ROLE one CONNECTION LIMIT 9");
    let applied = fleet.expect(&["apply", plan_path], 1);
    assert!(
        applied.contains("PostgresRole/one@pg-test: refused"),
        "{applied}"
    );
    assert_eq!(
        fleet.server.psql("SELECT string_agg(resource || '=' || result, ',' ORDER BY resource, id) FROM fleetform.ledger"),
        "PostgresRole/one@pg-test=refused,PostgresRole/two@pg-test=started,PostgresRole/two@pg-test=converged",
        "the refusal is on record too"
    );
    assert!(
        applied.contains("PostgresRole/two@pg-test: converged"),
        "{applied}"
    );
    assert_eq!(
        fleet.server.psql(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname IN ('one', 'two') ORDER BY rolname"
        ),
        "9\n2"
    );
    // A plan file in another format version is refused as a whole.
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    saved["format_version"] = 99.into();
    std::fs::write(&plan_file, saved.to_string()).unwrap();
    let refused = fleet.expect(&["apply", plan_path], 1);
    assert!(refused.contains("format_version 99"), "{refused}");
}

/// Issue 19, finding 4: a saved plan that showed only a connection limit
/// must not also set a password because the secret changed after it.
/// Issue 19, finding 20: with `log_statement = all` and every statement's
/// duration logged, a role's password (its SCRAM verifier) never reaches
/// the server's log, when created or changed; the rest of fleetform's
/// statements still do.
#[test]
fn a_password_never_reaches_the_server_log() {
    let fleet = Fleet::new(&role(
        "app",
        "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n",
    ));
    fleet.server.psql("ALTER SYSTEM SET log_statement = 'all'");
    fleet
        .server
        .psql("ALTER SYSTEM SET log_min_duration_statement = 0");
    fleet.server.psql("SELECT pg_reload_conf()");
    fleet.expect(&["apply", "--auto-approve"], 0);
    let verifier = || {
        fleet
            .server
            .psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
    };
    let created = verifier();
    assert!(created.starts_with("SCRAM-SHA-256$"), "{created}");
    let output = fleet
        .command(&["apply", "--auto-approve"])
        .env("FLEETFORM_TEST_APP_PASSWORD", "rotated-Secret-value-44")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let changed = verifier();
    assert_ne!(created, changed);
    let log = fleet.server.log();
    assert!(
        log.contains("fleetform.ledger"),
        "statements are logged: {log}"
    );
    for secret in [
        created.as_str(),
        changed.as_str(),
        APP_PASSWORD,
        "rotated-Secret-value-44",
    ] {
        let salt_and_keys = secret.split('$').nth(1).unwrap_or(secret);
        assert!(!log.contains(salt_and_keys), "{secret} in the log:\n{log}");
    }
}

#[test]
fn a_secret_changed_since_the_plan_makes_the_resource_stale() {
    let fleet = Fleet::new(&role(
        "app",
        "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n  connectionLimit: 5\n",
    ));
    fleet
        .server
        .psql(&format!("CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'"));
    let verifier = || {
        fleet
            .server
            .psql("SELECT rolpassword || ' ' || rolconnlimit FROM pg_authid WHERE rolname = 'app'")
    };
    let before = verifier();
    let plan_file = fleet.repository.path().join("plan.json");
    let plan_path = plan_file.to_str().unwrap();
    let planned = fleet.expect(&["plan", "--out", plan_path], 2);
    assert!(planned.contains("connectionLimit"), "{planned}");
    assert!(
        !planned.contains("password"),
        "the password matches: {planned}"
    );

    let rotated = "rotated-Secret-value-43";
    let output = fleet
        .command(&["apply", plan_path])
        .env("FLEETFORM_TEST_APP_PASSWORD", rotated)
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{refused}");
    assert!(
        refused.contains("PostgresRole/app@pg-test: refused")
            && refused.contains("a secret it uses changed since the plan was made"),
        "{refused}"
    );
    assert_eq!(
        verifier(),
        before,
        "neither the password nor the limit changed"
    );
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    assert!(
        !saved.contains(APP_PASSWORD) && !saved.contains(rotated),
        "the plan file holds no secret"
    );

    // With the secret of the plan, the plan applies as shown.
    let applied = fleet.expect(&["apply", plan_path], 0);
    assert!(
        applied.contains("PostgresRole/app@pg-test: converged"),
        "{applied}"
    );
    let after = verifier();
    assert!(after.ends_with(" 5"), "{after}");
    assert_eq!(
        after.split(' ').next(),
        before.split(' ').next(),
        "the password was not set again"
    );
}

/// Issue 13, defect 3: an MD5 hash of the right password is drift where the
/// server hashes with SCRAM (scram-sha-256, the default): the plan shows a
/// password change and apply stores a SCRAM verifier. Where the server is
/// set to md5, a matching MD5 hash is left alone.
#[test]
fn an_md5_password_is_replaced_by_a_scram_verifier() {
    let fleet = Fleet::new(&role(
        "app",
        "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n",
    ));
    fleet.server.psql(&format!(
        "SET password_encryption = 'md5'; CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'"
    ));
    let stored = || {
        fleet
            .server
            .psql("SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app'")
    };
    assert!(stored().starts_with("md5"), "{}", stored());
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned.contains("password: \"(sensitive)\" -> \"(sensitive)\""),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(stored(), "SCRAM-SHA-256$");
    fleet.expect(&["plan"], 0);

    // A server that hashes with md5: a matching MD5 hash converges.
    fleet
        .server
        .psql("ALTER SYSTEM SET password_encryption = 'md5'");
    fleet.server.psql("SELECT pg_reload_conf()");
    fleet.server.psql(&format!(
        "SET password_encryption = 'md5'; ALTER ROLE app PASSWORD '{APP_PASSWORD}'"
    ));
    assert!(stored().starts_with("md5"), "{}", stored());
    fleet.expect(&["plan"], 0);
}

/// Issue 19, finding 14: the server stores a verifier of the SASLprep'd
/// password (a ligature and full-width letters are normalised, a no-break
/// space becomes a space), so fleetform must compare after SASLprep too, or
/// it sets the password again at every apply and never converges.
#[test]
fn a_password_that_saslprep_normalises_converges() {
    let fleet = Fleet::new(&role(
        "app",
        "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n",
    ));
    let password = "\u{FB01}ｎｅ\u{00A0}Ｐａｓｓ-word-9";
    let run = |arguments: &[&str]| {
        let output = fleet
            .command(arguments)
            .env("FLEETFORM_TEST_APP_PASSWORD", password)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    };
    let (code, applied) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, Some(0), "{applied}");
    assert!(
        applied.contains("PostgresRole/app@pg-test: converged"),
        "{applied}"
    );
    let (code, planned) = run(&["plan"]);
    assert_eq!(code, Some(0), "the stored password matches: {planned}");
    let (code, again) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, Some(0), "{again}");
    assert!(!again.contains("password"), "nothing set again: {again}");
}

/// Issue 19, finding 5: a saved plan made against one server never applies
/// to another that the manifests came to name (a changed port), nor to
/// another server at the same address.
#[test]
fn a_saved_plan_applies_only_to_the_server_it_was_made_against() {
    let fleet = Fleet::new(&role("app", "  connectionLimit: 5\n"));
    let plan_file = fleet.repository.path().join("plan.json");
    let plan_path = plan_file.to_str().unwrap();
    fleet.expect(&["plan", "--out", plan_path], 2);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let identifier = fleet
        .server
        .psql("SELECT system_identifier FROM pg_control_system()");
    assert_eq!(
        saved["targets"]["pg-test"]["identity"]["system_identifier"],
        serde_json::json!(identifier),
        "the plan pins the server's system identifier"
    );

    let other = PostgresServer::start();
    let inventory = fleet
        .repository
        .path()
        .join("environments/test/inventory.yaml");
    let original = std::fs::read_to_string(&inventory).unwrap();
    let moved = original.replace(
        &format!("port: {}", fleet.server.port),
        &format!("port: {}", other.port),
    );
    assert_ne!(moved, original);
    std::fs::write(&inventory, &moved).unwrap();
    let refused = fleet.expect(&["apply", plan_path], 1);
    assert!(
        refused.contains("PostgresRole/app@pg-test: refused")
            && refused.contains(&format!("127.0.0.1:{}", fleet.server.port))
            && refused.contains("plan again"),
        "{refused}"
    );
    let nothing = "SELECT count(*) FROM pg_roles WHERE rolname = 'app'";
    assert_eq!(other.psql(nothing), "0", "no role on the other server");
    assert_eq!(
        other.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'fleetform'"),
        "0",
        "nothing written to the other server, not even a ledger"
    );
    assert_eq!(fleet.server.psql(nothing), "0");

    // The same address, another server: its system identifier tells.
    std::fs::write(&inventory, &original).unwrap();
    let mut forged = saved.clone();
    forged["targets"]["pg-test"]["identity"]["system_identifier"] = "1".into();
    std::fs::write(&plan_file, forged.to_string()).unwrap();
    let refused = fleet.expect(&["apply", plan_path], 1);
    assert!(
        refused.contains("pg-test is not the server the plan was made against")
            && refused.contains("system_identifier"),
        "{refused}"
    );
    assert_eq!(fleet.server.psql(nothing), "0");

    std::fs::write(&plan_file, saved.to_string()).unwrap();
    let applied = fleet.expect(&["apply", plan_path], 0);
    assert!(
        applied.contains("PostgresRole/app@pg-test: converged"),
        "{applied}"
    );
}

/// Issue 19, finding 2: a prune never destroys what fleetform did not
/// create (refused at plan, naming it, unless named with --destroy), and a
/// child's drop that fails at apply stops its parent's.
#[test]
fn a_prune_never_destroys_what_fleetform_did_not_create() {
    let fleet =
        Fleet::new(&[database("faildb", ""), schema("s1", "  database: faildb\n")].concat());
    // Statements give up after 3 s (a drop waiting on a lock, below).
    let environment = fleet
        .repository
        .path()
        .join("environments/test/environment.yaml");
    let text = std::fs::read_to_string(&environment).unwrap();
    std::fs::write(
        &environment,
        text.replace(
            "connectTimeoutSeconds: 5\n",
            "connectTimeoutSeconds: 5\n      statementTimeoutSeconds: 3\n",
        ),
    )
    .unwrap();
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql_on(
        "faildb",
        "CREATE TABLE s1.precious (x int); INSERT INTO s1.precious VALUES (42)",
    );
    fleet.write(&role("keep", ""));
    let schema_prune = "PostgresSchema[faildb/s1]@pg-test";
    let database_prune = "PostgresDatabase[faildb]@pg-test";

    let refused = fleet.expect(&["plan", "--prune"], 1);
    assert!(
        refused.contains("PostgresSchema faildb/s1 holds table s1.precious")
            && refused.contains(&format!("--destroy {schema_prune}"))
            && refused.contains(&format!("--destroy {database_prune}")),
        "{refused}"
    );
    fleet.expect(&["apply", "--auto-approve", "--prune"], 1);
    let precious = "SELECT x FROM s1.precious";
    assert_eq!(fleet.server.psql_on("faildb", precious), "42");

    // A drop that fails at apply (the schema is locked by a session that
    // is creating a table in it, which discovery cannot see) stops the
    // drop of the database that holds it.
    fleet.server.psql_on("faildb", "DROP TABLE s1.precious");
    let plan_file = fleet.repository.path().join("plan.json");
    let plan_path = plan_file.to_str().unwrap();
    let planned = fleet.expect(&["plan", "--prune", "--out", plan_path], 2);
    assert!(
        planned.contains(&format!("- {schema_prune}"))
            && planned.contains(&format!("- {database_prune}")),
        "{planned}"
    );
    let mut locker = fleet
        .server
        .psql_command(
            "faildb",
            "BEGIN; CREATE TABLE s1.hidden (x int); SELECT pg_sleep(30)",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("psql holds the schema");
    assert!(fleet.server.wait_for_on(
        "faildb",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'object' AND classid = 'pg_namespace'::regclass AND granted AND pid <> pg_backend_pid()",
        "1",
        Duration::from_secs(20)
    ));
    let applied = fleet.expect(&["apply", plan_path], 1);
    fleet.server.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()",
    );
    let _ = locker.kill();
    let _ = locker.wait();
    assert!(
        applied.contains(&format!("{schema_prune}: failed"))
            && applied.contains(&format!("{database_prune}: skipped"))
            && applied.contains(&format!("depends on {schema_prune}")),
        "{applied}"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_database WHERE datname = 'faildb'"),
        "1"
    );

    // Named with --destroy, both go, the table with them.
    fleet.server.psql_on(
        "faildb",
        "CREATE TABLE s1.precious (x int); INSERT INTO s1.precious VALUES (42)",
    );
    let destroyed = fleet.expect(
        &[
            "apply",
            "--auto-approve",
            "--prune",
            "--destroy",
            schema_prune,
            "--destroy",
            database_prune,
        ],
        0,
    );
    assert!(destroyed.contains("CASCADE"), "{destroyed}");
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_database WHERE datname = 'faildb'"),
        "0"
    );
}

/// Issue 19, finding 3: a database a person copied from one fleetform
/// created carries its markers; what is inside the copy is not fleetform's.
#[test]
fn a_copy_of_a_database_fleetform_created_is_not_fleetforms() {
    let fleet = Fleet::new(
        &[
            database("appdb", ""),
            schema("s1", "  database: appdb\n"),
            extension("crypto", "  database: appdb\n  name: pgcrypto\n"),
        ]
        .concat(),
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql("CREATE DATABASE copydb TEMPLATE appdb");
    let planned = fleet.expect(&["plan", "--prune"], 0);
    for object in [
        "PostgresSchema copydb/s1@pg-test",
        "PostgresExtension copydb/pgcrypto@pg-test",
    ] {
        assert!(
            planned.contains(&format!("{object} (carries this environment's marker, but this instance's ledger never recorded it")),
            "{object}: {planned}"
        );
    }
    assert!(
        !planned.contains("- PostgresSchema[copydb/s1]"),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "copydb",
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 's1') || ' ' || (SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto')"
        ),
        "1 1"
    );
    // What fleetform did create is still its own to prune.
    fleet.write(&database("appdb", ""));
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(
        pruned.contains("- PostgresSchema[appdb/s1]@pg-test")
            && pruned.contains("- PostgresExtension[appdb/pgcrypto]@pg-test"),
        "{pruned}"
    );
}

/// Issue 19, finding 6: a ledger someone else prepared (here with a
/// trigger that would make its author a superuser when fleetform records
/// an apply) is refused by plan and apply, never adopted.
#[test]
fn a_ledger_someone_else_prepared_is_refused() {
    let fleet = Fleet::new(&role("app", "  connectionLimit: 5\n"));
    fleet.server.psql(
        "CREATE ROLE mallory LOGIN; GRANT CREATE ON DATABASE postgres TO mallory; \
         SET ROLE mallory; \
         CREATE SCHEMA fleetform; \
         CREATE TABLE fleetform.ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id text, recorded_at timestamptz DEFAULT now(), environment text, commit text, actor text, resource text, action text, result text, desired_fingerprint text, observed_fingerprint text, observed_items jsonb, message text, script text, kind text, database text, spec jsonb); \
         CREATE FUNCTION fleetform.escalate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; RETURN NEW; END $$; \
         CREATE TRIGGER escalate BEFORE INSERT ON fleetform.ledger FOR EACH ROW EXECUTE FUNCTION fleetform.escalate()",
    );
    let superuser = "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'";
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains(
            "schema fleetform is owned by mallory, which is neither postgres nor a superuser"
        ),
        "{refused}"
    );
    let applied = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(applied.contains("owned by mallory"), "{applied}");
    assert_eq!(fleet.server.psql(superuser), "f");
    assert_eq!(
        fleet.server.psql("SELECT count(*) FROM fleetform.ledger"),
        "0",
        "nothing recorded in it"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app'"),
        "0",
        "nothing applied"
    );

    // The same table, given to the connecting role, still has the trigger.
    fleet.server.psql(
        "ALTER SCHEMA fleetform OWNER TO postgres; ALTER TABLE fleetform.ledger OWNER TO postgres",
    );
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("fleetform.ledger has a trigger"),
        "{refused}"
    );
    fleet.expect(&["apply", "--auto-approve"], 1);
    assert_eq!(fleet.server.psql(superuser), "f");

    // Dropped, fleetform prepares its own and applies.
    fleet.server.psql("DROP SCHEMA fleetform CASCADE");
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(fleet.server.psql(superuser), "f");
}

/// Issue 19, finding 11: one server declared twice (by IP address and by
/// name) is refused by plan, before a prune from one name drops what the
/// other's manifests manage and before apply waits on its own lock.
#[test]
fn one_server_declared_twice_is_refused() {
    let fleet = Fleet::new(&role("app", "  connectionLimit: 5\n"));
    let inventory = fleet
        .repository
        .path()
        .join("environments/test/inventory.yaml");
    let mut text = std::fs::read_to_string(&inventory).unwrap();
    text.push_str(&format!(
        "---\napiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: alias}}\nspec: {{host: localhost, os: linux, connection: {{method: local}}}}\n---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: pg-alias}}\nspec: {{server: alias, port: {}, version: {}}}\n",
        fleet.server.port,
        common::postgres::major_version()
    ));
    std::fs::write(&inventory, text).unwrap();
    fleet.write(
        &[
            role("app", "  connectionLimit: 5\n"),
            "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {name: other}\nspec:\n  on: {instances: [pg-alias]}\n".to_string(),
        ]
        .concat(),
    );
    let refused = fleet.expect(&["plan", "--prune"], 1);
    assert!(
        refused.contains("pg-alias and pg-test are one server (system_identifier"),
        "{refused}"
    );
    let applied = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(applied.contains("nothing applied"), "{applied}");
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname IN ('app', 'other')"),
        "0"
    );
}

/// Issue 19, finding 10: two manifest objects that manage one real role
/// (or database) are refused before anything runs, instead of flipping it
/// back and forth on every apply.
#[test]
fn two_manifest_objects_for_one_real_object_are_refused() {
    let fleet = Fleet::new(
        &[
            role("x", "  connectionLimit: 1\n"),
            role("y", "  name: x\n  connectionLimit: 2\n"),
            database("d1", "  name: shared\n"),
            database("d2", "  name: shared\n"),
        ]
        .concat(),
    );
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused
            .contains("PostgresRole/x and PostgresRole/y both manage PostgresRole `x` on pg-test")
            && refused.contains(
                "PostgresDatabase/d1 and PostgresDatabase/d2 both manage PostgresDatabase `shared`"
            ),
        "{refused}"
    );
    fleet.expect(&["apply", "--auto-approve"], 1);
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'x'"),
        "0"
    );
}

#[test]
fn applies_serialize_on_the_instance_lock() {
    let fleet = Fleet::new(
        &[
            role("one", "  login: true\n"),
            database("appdb", "  owner: one\n"),
        ]
        .concat(),
    );
    // Someone else holds the apply lock ...
    let lock_key = fleetform::ops::engine::LOCK_KEY;
    let mut holder = fleet
        .server
        .psql_command(
            "postgres",
            &format!("SELECT pg_advisory_lock({lock_key}); SELECT pg_sleep(60)"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("psql holds the lock");
    assert!(fleet.server.wait_for(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        "1",
        Duration::from_secs(20)
    ));
    // ... so apply waits for it (we see it waiting on the server) ...
    let apply = fleet
        .command(&["apply", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        fleet.server.wait_for(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            "1",
            Duration::from_secs(20)
        ),
        "apply never waited for the lock"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'one'"),
        "0",
        "apply changed something while another held the lock"
    );
    // ... and goes on once it is released.
    fleet.server.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    );
    let _ = holder.wait();
    let output = apply.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("waiting for the apply lock on pg-test"),
        "{text}"
    );

    fleet.expect(&["plan"], 0);
}

#[test]
fn two_simultaneous_applies_both_finish_correctly() {
    let fleet = Fleet::new(
        &[
            role("one", "  login: true\n"),
            role("two", "  memberOf: [one]\n"),
            database("appdb", "  owner: one\n"),
        ]
        .concat(),
    );
    let first = fleet
        .command(&["apply", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let second = fleet
        .command(&["apply", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    fleet.expect(&["plan"], 0);
    // Each resource was converged by exactly one of them.
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM fleetform.ledger WHERE result = 'converged'"),
        "3"
    );
}

#[test]
fn a_failing_resource_skips_its_dependents_and_spares_the_rest() {
    let fleet = Fleet::new(
        &[
            role("broken", "  memberOf: [no_such_role]\n"),
            database("brokendb", "  owner: broken\n"),
            role("fine", "  login: true\n"),
        ]
        .concat(),
    );
    let output = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(
        output.contains("PostgresRole/broken@pg-test: failed"),
        "{output}"
    );
    assert!(
        output.contains("role \"no_such_role\" does not exist"),
        "{output}"
    );
    assert!(
        output.contains(
            "PostgresDatabase/brokendb@pg-test: skipped (depends on PostgresRole/broken@pg-test"
        ),
        "{output}"
    );
    assert!(
        output.contains("PostgresRole/fine@pg-test: converged"),
        "{output}"
    );
    // The failed role was rolled back as a whole; the independent one exists.
    assert_eq!(fleet.server.psql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('broken', 'fine')"), "fine");
    assert_eq!(
        fleet.server.psql("SELECT string_agg(resource || '=' || result, ',' ORDER BY resource, id) FROM fleetform.ledger"),
        "PostgresDatabase/brokendb@pg-test=skipped,PostgresRole/broken@pg-test=started,PostgresRole/broken@pg-test=failed,PostgresRole/fine@pg-test=started,PostgresRole/fine@pg-test=converged"
    );
    // Re-running continues from where it stopped, once the cause is fixed.
    fleet.server.psql("CREATE ROLE no_such_role");
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);
}

/// Issue 19, finding 9: a resource that cannot be planned (its secret is
/// not set) fails with its dependents skipped, the rest applies, and every
/// outcome is in the ledger, as docs/operations.md says.
#[test]
fn an_unplannable_resource_skips_only_its_dependents() {
    let fleet = Fleet::new(
        &[
            role(
                "locked",
                "  login: true\n  password: {fromEnv: FLEETFORM_TEST_UNSET_PASSWORD}\n",
            ),
            database("lockeddb", "  owner: locked\n"),
            role("fine", "  login: true\n"),
        ]
        .concat(),
    );
    let output = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(
        output.contains("those resources, and what depends on them, are not applied"),
        "{output}"
    );
    assert!(
        output.contains("PostgresRole/locked@pg-test: failed (not planned:"),
        "{output}"
    );
    assert!(output.contains("FLEETFORM_TEST_UNSET_PASSWORD"), "{output}");
    assert!(
        output.contains(
            "PostgresDatabase/lockeddb@pg-test: skipped (depends on PostgresRole/locked@pg-test"
        ),
        "{output}"
    );
    assert!(
        output.contains("PostgresRole/fine@pg-test: converged"),
        "{output}"
    );
    assert_eq!(
        fleet.server.psql(
            "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('locked', 'fine')"
        ),
        "fine"
    );
    assert_eq!(
        fleet.server.psql("SELECT string_agg(resource || '=' || result, ',' ORDER BY resource, id) FROM fleetform.ledger"),
        "PostgresDatabase/lockeddb@pg-test=skipped,PostgresRole/fine@pg-test=started,PostgresRole/fine@pg-test=converged,PostgresRole/locked@pg-test=failed"
    );
}

/// Issue 19, finding 8: a grant on a schema that the same plan creates in
/// an existing database (the state an interrupted first apply leaves) is
/// planned, checked again at apply after the schema, and converges; a grant
/// naming what nothing creates is still refused at plan.
/// Issue 19, finding 8, the other way: a check deferred to apply that still
/// refuses there (the plan creates the schema, nobody creates the table the
/// grant names) fails the grant before it runs and skips its dependents;
/// the rest converges.
/// Issue 13, defect 8: `shared_preload_libraries: ''` is written as a reset,
/// not as '""', and the server starts again; a library the server does not
/// have is refused by plan, before it could stop the next start.
#[test]
fn an_empty_library_list_leaves_a_server_that_starts() {
    let preload = |value: &str| {
        settings(
            "preload",
            &format!("  parameters:\n    shared_preload_libraries: '{value}'\n"),
        )
    };
    let fleet = Fleet::new(&preload("pg_stat_statements"));
    fleet.expect(&["apply", "--auto-approve"], 0);
    let restart = || {
        fleet.server.stop();
        fleet.server.start_again();
    };
    restart();
    assert_eq!(
        fleet.server.psql("SHOW shared_preload_libraries"),
        "pg_stat_statements"
    );

    fleet.write(&preload(""));
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned.contains("ALTER SYSTEM RESET \"shared_preload_libraries\";"),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    restart();
    assert_eq!(fleet.server.psql("SHOW shared_preload_libraries"), "");
    fleet.expect(&["plan"], 0);

    fleet.write(&preload("pg_stat_statements, no_such_library"));
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("names libraries that are not in the server's library directory")
            && refused.contains("no_such_library"),
        "{refused}"
    );
    assert!(
        refused.contains("this parameter needs: no_such_library\n"),
        "only the missing one is named: {refused}"
    );
}

/// Issue 13, defect 2: a comment someone rewrote by hand (removing the
/// ownership marker) is repaired with the marker back, so the role stays
/// fleetform's and is pruned when it leaves the manifests.
#[test]
fn repairing_a_comment_keeps_the_ownership_marker() {
    let fleet = Fleet::new(&role("r", "  comment: hello\n"));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql("COMMENT ON ROLE r IS 'by hand'");
    let drift = fleet.expect(&["drift"], 3);
    assert!(drift.contains("drifted PostgresRole/r@pg-test"), "{drift}");
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet
            .server
            .psql("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'r'"),
        "hello\n[managed by fleetform: environment test]"
    );
    fleet.expect(&["plan"], 0);
    fleet.write("");
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(pruned.contains("PostgresRole[r]@pg-test"), "{pruned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'r'"),
        "0"
    );
}

/// Issue 13, defect 6: two grants to one role on overlapping parameters
/// (ALTER SYSTEM on some, SET on others, two in common) are merged per
/// privilege: both converge, and neither revokes the other's.
#[test]
fn grants_on_overlapping_objects_are_merged_per_privilege() {
    let parameter_grant = |name: &str, objects: &str, privilege: &str| {
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresGrant\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n  role: tuner\n  objectType: parameter\n  objects: [{objects}]\n  privileges: [{privilege}]\n"
        )
    };
    let fleet = Fleet::new(
        &[
            role("tuner", ""),
            parameter_grant(
                "tuner-alter",
                "primary_conninfo, synchronous_standby_names, log_destination",
                "ALTER SYSTEM",
            ),
            parameter_grant(
                "tuner-set",
                "log_destination, log_line_prefix, synchronous_standby_names",
                "SET",
            ),
        ]
        .concat(),
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    let held = || {
        fleet.server.psql(
            "SELECT string_agg(p || ':' || has_parameter_privilege('tuner', p, 'ALTER SYSTEM') || '/' || has_parameter_privilege('tuner', p, 'SET'), ',' ORDER BY p) FROM unnest(ARRAY['primary_conninfo', 'synchronous_standby_names', 'log_destination', 'log_line_prefix']) p",
        )
    };
    let expected = "log_destination:true/true,log_line_prefix:false/true,primary_conninfo:true/false,synchronous_standby_names:true/true";
    assert_eq!(held(), expected);
    fleet.expect(&["plan"], 0);
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(held(), expected);
    fleet.expect(&["plan"], 0);
}

/// Issue 13, defect 7: `role: public` as SQL and Ansible write it is the
/// PUBLIC keyword, and converges.
#[test]
fn a_grant_to_public_in_lower_case_converges() {
    let fleet = Fleet::new(&grant(
        "everyone-app",
        "  role: public\n  objectType: schema\n  objects: [app]\n  privileges: [USAGE]\n",
    ));
    fleet.server.psql("CREATE DATABASE appdb");
    fleet.server.psql_on("appdb", "CREATE SCHEMA app");
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert!(
        fleet
            .server
            .psql_on(
                "appdb",
                "SELECT nspacl::text FROM pg_namespace WHERE nspname = 'app'"
            )
            .contains("=U/"),
        "granted to PUBLIC"
    );
    fleet.expect(&["plan"], 0);
}

#[test]
fn a_check_deferred_to_apply_that_still_refuses_fails_there() {
    let manifests = [
        role("reader", ""),
        schema("app", "  database: appdb\n"),
        grant(
            "reader-table",
            "  role: reader\n  objectType: table\n  schema: app\n  objects: [t1]\n  privileges: [SELECT]\n",
        ),
        "---\napiVersion: fleetform/v1\nkind: PostgresCustomSql\nmetadata: {name: after-grant, dependsOn: [PostgresGrant/reader-table]}\nspec:\n  on: {instances: [pg-test]}\n  test: SELECT false\n  set: SELECT 1\n".to_string(),
    ]
    .concat();
    let fleet = Fleet::new(&manifests);
    fleet.server.psql("CREATE DATABASE appdb");
    let plan = fleet.expect(&["plan"], 2);
    assert!(plan.contains("checked again when applied"), "{plan}");
    let applied = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(
        applied.contains("PostgresSchema/app@pg-test: converged"),
        "{applied}"
    );
    assert!(
        applied.contains("PostgresGrant/reader-table@pg-test: failed (refused before it ran:"),
        "{applied}"
    );
    assert!(
        applied.contains("PostgresCustomSql/after-grant@pg-test: skipped"),
        "{applied}"
    );
    assert_eq!(
        fleet.server.psql(
            "SELECT string_agg(resource || '=' || result, ',' ORDER BY resource, id) FROM fleetform.ledger WHERE resource LIKE 'PostgresGrant/%' OR resource LIKE 'PostgresCustomSql/%'"
        ),
        "PostgresCustomSql/after-grant@pg-test=skipped,PostgresGrant/reader-table@pg-test=failed",
        "recorded, and nothing started for the refused grant"
    );
}

#[test]
fn a_grant_on_a_schema_the_same_plan_creates_is_applied_after_it() {
    let manifests = [
        role("reader", ""),
        schema("app", "  database: appdb\n"),
        grant(
            "reader-schema",
            "  role: reader\n  objectType: schema\n  objects: [app]\n  privileges: [USAGE]\n",
        ),
    ]
    .concat();
    let fleet = Fleet::new(&manifests);
    fleet.server.psql("CREATE DATABASE appdb");
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains(
            "app (checked again when applied, after PostgresRole/reader@pg-test, PostgresSchema/app@pg-test)"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("+ PostgresGrant/reader-schema@pg-test")
            && plan.contains("apply grants on the objects it finds when it reaches"),
        "{plan}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT has_schema_privilege('reader', 'app', 'USAGE')"
        ),
        "t"
    );
    fleet.expect(&["plan"], 0);

    fleet.write(
        &[
            manifests,
            grant(
                "reader-nowhere",
                "  role: reader\n  objectType: schema\n  objects: [nowhere]\n  privileges: [USAGE]\n",
            ),
        ]
        .concat(),
    );
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("names objects that do not exist in the database"),
        "{refused}"
    );
    assert!(!refused.contains("checked again when applied"), "{refused}");
}

#[test]
fn no_output_format_and_no_ledger_row_contains_a_secret() {
    let fleet = Fleet::new(&every_module());
    let plan_file = fleet.repository.path().join("plan.json");
    let plan_path = plan_file.to_str().unwrap();
    let mut everything = String::new();
    for format in ["human", "json", "markdown"] {
        everything += &fleet.expect(&["plan", "--format", format], 2);
    }
    everything += &fleet.expect(&["plan", "--log-format", "json"], 2);
    assert!(
        everything.contains("\"message\":\"discovered\""),
        "JSON log lines are there"
    );
    everything += &fleet.expect(&["plan", "--out", plan_path], 2);
    everything += &std::fs::read_to_string(&plan_file).unwrap();
    everything += &fleet.expect(&["apply", plan_path], 0);
    fleet.server.psql("ALTER ROLE app PASSWORD 'other'");
    for format in ["human", "json", "markdown", "junit", "prometheus"] {
        everything += &fleet.expect(&["drift", "--format", format], 3);
    }
    everything += &fleet.expect(&["apply", "--auto-approve", "--log-format", "json"], 0);
    assert!(
        everything.contains("resource settled"),
        "apply logs what it does"
    );
    everything += &fleet.server.psql("SELECT l::text FROM fleetform.ledger l");
    assert!(
        everything.contains("(sensitive)"),
        "the password should show as (sensitive)"
    );
    for secret in [APP_PASSWORD, SUPERUSER_PASSWORD] {
        assert!(
            !everything.contains(secret),
            "a secret leaked into the output or the ledger"
        );
    }
    // Nor the server's verifier.
    let verifier = fleet
        .server
        .psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
    assert!(verifier.starts_with("SCRAM-SHA-256$"));
    assert!(!everything.contains(&verifier));
}

#[test]
fn a_fixed_field_is_refused_unless_the_resource_is_named_for_replacement() {
    let fleet = Fleet::new(&database("legacy", "  encoding: UTF8\n"));
    fleet
        .server
        .psql("CREATE DATABASE legacy ENCODING 'SQL_ASCII' TEMPLATE template0");
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("encoding cannot change from \"SQL_ASCII\" to \"UTF8\""),
        "{refused}"
    );
    assert!(
        refused.contains("--replace PostgresDatabase/legacy@pg-test"),
        "{refused}"
    );
    let replace = fleet.expect(&["plan", "--replace", "PostgresDatabase/legacy@pg-test"], 2);
    assert!(
        replace.contains("-/+ PostgresDatabase/legacy@pg-test"),
        "{replace}"
    );
    assert!(replace.contains("[destructive]"), "{replace}");
    fleet.expect(
        &[
            "apply",
            "--auto-approve",
            "--replace",
            "PostgresDatabase/legacy@pg-test",
        ],
        0,
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'legacy'"),
        "UTF8"
    );
    fleet.expect(&["plan"], 0);
}

#[test]
fn prune_deletes_only_what_fleetform_created() {
    let fleet = Fleet::new(
        &[
            role("keep", ""),
            role("gone", ""),
            database("olddb", "  owner: gone\n"),
        ]
        .concat(),
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql("CREATE ROLE handmade");
    fleet.write(&role("keep", ""));
    // Without --prune: listed, nothing to delete.
    let listed = fleet.expect(&["plan"], 0);
    assert!(
        listed.contains(
            "PostgresRole gone@pg-test (created by fleetform: deleted only with --prune)"
        ),
        "{listed}"
    );
    assert!(
        listed.contains("PostgresRole handmade@pg-test\n"),
        "{listed}"
    );
    // With --prune: only the owned objects, the database before its owner.
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(
        pruned.contains("- PostgresDatabase[olddb]@pg-test"),
        "{pruned}"
    );
    assert!(pruned.contains("- PostgresRole[gone]@pg-test"), "{pruned}");
    assert!(!pruned.contains("- PostgresRole[handmade]"), "{pruned}");
    assert!(
        pruned.find("PostgresDatabase[olddb]").unwrap()
            < pruned.find("- PostgresRole[gone]").unwrap()
    );
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(fleet.server.psql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('keep', 'gone', 'handmade')"), "handmade,keep");
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_database WHERE datname = 'olddb'"),
        "0"
    );
}

#[test]
fn grants_memberships_default_privileges_and_slots_are_pruned_from_the_ledger() {
    let slot = |name: &str| {
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresReplicationSlot\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n  type: physical\n"
        )
    };
    let kept = [
        role("owner", "  name: app_owner\n"),
        role("reader", ""),
        role("writer", ""),
        role("auditors", ""),
        database("appdb", "  owner: app_owner\n"),
    ]
    .concat();
    let functions = |name: &str| {
        grant(
            name,
            "  role: reader\n  objectType: function\n  schema: app\n  objects: [total]\n  privileges: [EXECUTE]\n",
        )
    };
    // The same privilege under a new name, as a routine grant naming the
    // signature in its own words: the old grant's prune leaves it alone.
    let routines = |name: &str| {
        grant(
            name,
            "  role: reader\n  objectType: routine\n  schema: app\n  objects: [\"total(int4)\"]\n  privileges: [EXECUTE]\n",
        )
    };
    let dropped = [
        grant("reader-tables", "  role: reader\n  objectType: table\n  schema: app\n  privileges: [SELECT, INSERT]\n"),
        grant("public-connect", "  role: PUBLIC\n  objectType: database\n  privileges: [CONNECT]\n"),
        default_privileges("reader-future", "  owner: app_owner\n  role: reader\n  objectType: table\n  schema: app\n  privileges: [SELECT]\n"),
        membership("writer-in-reader", "  group: reader\n  role: writer\n"),
        membership("reader-in-auditors", "  group: auditors\n  role: reader\n"),
        slot("standby_1"),
    ]
    .concat();
    let fleet = Fleet::new(&(kept.clone() + &dropped + &functions("reader-functions")));
    fleet.expect(
        &[
            "apply",
            "--auto-approve",
            "--target",
            "PostgresDatabase/appdb",
        ],
        0,
    );
    fleet.server.psql_on(
        "appdb",
        "CREATE SCHEMA app AUTHORIZATION app_owner;
         CREATE TABLE app.t1 (id int); ALTER TABLE app.t1 OWNER TO app_owner;
         CREATE FUNCTION app.total(int) RETURNS int LANGUAGE sql AS 'SELECT 1';",
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    let state = || {
        fleet.server.psql_on(
            "appdb",
            "SELECT has_table_privilege('reader', 'app.t1', 'INSERT'),
                    has_table_privilege('writer', 'app.t1', 'UPDATE'),
                    has_database_privilege('public', 'appdb', 'TEMPORARY'),
                    pg_has_role('writer', 'reader', 'MEMBER'),
                    (SELECT count(*) FROM pg_default_acl),
                    (SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots),
                    EXISTS (SELECT 1 FROM aclexplode((SELECT proacl FROM pg_proc WHERE oid = 'app.total(int)'::regprocedure)) a
                            WHERE a.grantee = 'reader'::regrole)",
        )
    };
    // PUBLIC keeps only CONNECT on appdb: TEMPORARY was revoked.
    assert_eq!(state(), "t|f|f|t|1|standby_1|t");
    // Made by hand: not fleetform's, whatever the manifests say later.
    fleet
        .server
        .psql_on("appdb", "GRANT UPDATE ON app.t1 TO writer");
    fleet
        .server
        .psql("SELECT pg_create_physical_replication_slot('handmade')");

    // The resources leave the manifests; the function grant only changes its
    // name; the reader's membership in auditors moves into its memberOf.
    let kept = kept.replace(
        "kind: PostgresRole\nmetadata: {name: reader}\nspec:\n  on: {instances: [pg-test]}\n",
        "kind: PostgresRole\nmetadata: {name: reader}\nspec:\n  on: {instances: [pg-test]}\n  memberOf: [auditors]\n",
    );
    assert!(kept.contains("memberOf: [auditors]"), "{kept}");
    fleet.write(&(kept.clone() + &routines("reader-routines")));
    let listed = fleet.expect(&["plan"], 0);
    for owned in [
        "PostgresGrant appdb/reader-tables@pg-test (created by fleetform: deleted only with --prune)",
        "PostgresRoleMembership reader > writer@pg-test (created by fleetform: deleted only with --prune)",
        "PostgresReplicationSlot standby_1@pg-test (created by fleetform: deleted only with --prune)",
    ] {
        assert!(listed.contains(owned), "{owned} not listed:\n{listed}");
    }
    assert!(!listed.contains("reader-functions"), "{listed}");
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    for statement in [
        "REVOKE INSERT, SELECT ON TABLE \"app\".\"t1\" FROM \"reader\";",
        // PUBLIC returns to the built-in defaults.
        "GRANT TEMPORARY ON DATABASE \"appdb\" TO PUBLIC;",
        "ALTER DEFAULT PRIVILEGES FOR ROLE \"app_owner\" IN SCHEMA \"app\" REVOKE SELECT ON TABLES FROM \"reader\";",
        "REVOKE \"reader\" FROM \"writer\";",
        "SELECT pg_drop_replication_slot('standby_1');",
    ] {
        assert!(pruned.contains(statement), "{statement} missing:\n{pruned}");
    }
    // The grant that changed its name is the new one's now; the hand-made
    // privilege and slot are nobody's.
    assert!(!pruned.contains("FUNCTION"), "{pruned}");
    assert!(!pruned.contains("REVOKE \"auditors\""), "{pruned}");
    assert!(!pruned.contains("UPDATE"), "{pruned}");
    // Listed once, as the prune, not also as someone else's privilege.
    assert!(!pruned.contains("appdb/reader: INSERT, SELECT"), "{pruned}");
    assert!(!pruned.contains("handmade"), "{pruned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(state(), "f|t|t|f|0|handmade|t");
    // Pruned is recorded: nothing is left to prune, and nothing is listed as fleetform's.
    let after = fleet.expect(&["plan", "--prune"], 0);
    assert!(!after.contains("created by fleetform"), "{after}");

    // A grant that names another grantee moves the privilege: revoked from
    // the old one as part of the update, no --prune needed. (Applied first:
    // only what fleetform applied is fleetform's.)
    fleet.write(
        &(kept.clone()
            + &routines("reader-routines")
                .replace("[EXECUTE]\n", "[EXECUTE]\n  withGrantOption: true\n")),
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.write(
        &(kept.clone() + &routines("reader-routines").replace("role: reader", "role: writer")),
    );
    let moved = fleet.expect(&["plan"], 2);
    assert!(
        moved.contains(
            "REVOKE EXECUTE ON ROUTINE \"app\".\"total\"(\"pg_catalog\".\"int4\") FROM \"reader\";"
        ) && moved.contains(
            "GRANT EXECUTE ON ROUTINE \"app\".\"total\"(\"pg_catalog\".\"int4\") TO \"writer\";"
        ),
        "{moved}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT string_agg(a.grantee::regrole::text, ',' ORDER BY 1) FROM pg_proc p, aclexplode(p.proacl) a
             WHERE p.oid = 'app.total(int)'::regprocedure AND a.grantee <> 0 AND a.grantee <> p.proowner"
        ),
        "writer"
    );
    fleet.expect(&["plan", "--prune"], 0);
}

#[test]
fn hostile_names_are_created_verbatim_and_change_nothing_else() {
    let hostile = [
        "x\"; DROP ROLE postgres; --",
        "o'neil",
        "back\\slash'; SELECT 1; --",
        "semi;colon",
        "$$dollar$$",
        "ünïcødé ☃ 数据库",
        // 63 bytes, the longest name PostgreSQL keeps (21 three-byte characters).
        "数据库数据库数据库数据库数据库数据库数据库",
        // 63 ASCII bytes.
        "r23456789012345678901234567890123456789012345678901234567890123",
    ];
    let manifests: String = hostile
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let quoted = serde_json::to_string(name).unwrap();
            role(
                &format!("hostile-{index}"),
                &format!("  name: {quoted}\n  comment: {quoted}\n"),
            )
        })
        .collect::<String>()
        + &database(
            "hostile-db",
            &format!(
                "  name: {}\n  owner: {}\n",
                serde_json::to_string("db'; DROP DATABASE postgres; --").unwrap(),
                serde_json::to_string(hostile[0]).unwrap()
            ),
        )
        + &schema(
            "hostile-schema",
            &format!(
                "  database: {}\n  name: {}\n  owner: {}\n  comment: {}\n",
                serde_json::to_string("db'; DROP DATABASE postgres; --").unwrap(),
                serde_json::to_string("s\"; DROP SCHEMA public; --").unwrap(),
                serde_json::to_string(hostile[1]).unwrap(),
                serde_json::to_string(hostile[2]).unwrap()
            ),
        );
    let fleet = Fleet::new(&manifests);
    fleet.expect(&["apply", "--auto-approve"], 0);
    for name in hostile {
        let literal = name.replace('\'', "''");
        assert_eq!(
            fleet.server.psql(&format!(
                "SELECT count(*) FROM pg_roles WHERE rolname = '{literal}'"
            )),
            "1",
            "role {name:?}"
        );
        assert_eq!(
            fleet.server.psql(&format!("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = '{literal}'")),
            format!("{name}\n[managed by fleetform: environment test]")
        );
    }
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"),
        "1"
    );
    assert_eq!(fleet.server.psql("SELECT count(*) FROM pg_database WHERE datname IN ('postgres', 'db''; DROP DATABASE postgres; --')"), "2");
    assert_eq!(
        fleet.server.psql_on(
            "db'; DROP DATABASE postgres; --",
            "SELECT pg_get_userbyid(nspowner) || '|' || obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 's\"; DROP SCHEMA public; --'"
        ),
        format!(
            "o'neil|{}\n[managed by fleetform: environment test]",
            hostile[2]
        )
    );
    assert_eq!(
        fleet.server.psql_on(
            "db'; DROP DATABASE postgres; --",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"
        ),
        "1"
    );
    fleet.expect(&["plan"], 0);
}

#[test]
fn unreachable_and_misconfigured_instances_are_errors_naming_the_instance() {
    let fleet = Fleet::new(&role("app", ""));
    let wrong_password = fleet
        .command(&["plan"])
        .env("FLEETFORM_TEST_PG_PASSWORD", "wrong")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&wrong_password.stdout).into_owned()
        + &String::from_utf8_lossy(&wrong_password.stderr);
    assert_eq!(wrong_password.status.code(), Some(1), "{text}");
    assert!(text.contains("PostgresInstance pg-test"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(
        !text.contains("wrong\n") && !text.contains(SUPERUSER_PASSWORD),
        "{text}"
    );

    let unset = fleet
        .command(&["plan"])
        .env_remove("FLEETFORM_TEST_PG_PASSWORD")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&unset.stdout).into_owned()
        + &String::from_utf8_lossy(&unset.stderr);
    assert_eq!(unset.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FLEETFORM_TEST_PG_PASSWORD is not set"),
        "{text}"
    );

    // A server of another major version than the manifest declares.
    let inventory = fleet
        .repository
        .path()
        .join("environments/test/inventory.yaml");
    let declared = std::fs::read_to_string(&inventory).unwrap();
    let major = common::postgres::major_version();
    std::fs::write(
        &inventory,
        declared.replace(
            &format!("version: {major}"),
            &format!("version: {}", major - 1),
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = fleet.run(&["plan"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        (stdout.clone() + &stderr).contains(&format!(
            "PostgresInstance pg-test (127.0.0.1:{}, user postgres) is declared as PostgreSQL {} (spec.version) but runs {major}.",
            fleet.server.port,
            major - 1
        )),
        "{stdout}{stderr}"
    );
    std::fs::write(&inventory, declared).unwrap();

    let port = fleet.server.port;
    drop(fleet.server);
    let repository = fleet.repository;
    let refused = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["plan", "-e", "test", "--repo"])
        .arg(repository.path())
        .env("FLEETFORM_TEST_PG_PASSWORD", SUPERUSER_PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("PostgresInstance pg-test (127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it (PEM).

#[test]
fn tls_modes_encrypt_and_verify_as_libpq_does() {
    let made = common::tls::certificates("fleetform test CA");
    let (ca, certificate, key) = (made.ca_pem, made.server_pem, made.server_key_pem);
    let other_ca = common::tls::certificates("some other CA").ca_pem;
    // The server accepts TLS connections only.
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("server.crt"), certificate).unwrap();
    std::fs::write(files.path().join("server.key"), key).unwrap();
    std::fs::write(
        files.path().join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    common::postgres::give_to_server_user(files.path());
    std::fs::set_permissions(
        files.path().join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let directory = files.path().display().to_string();
    let settings = [
        "ssl=on".to_string(),
        format!("ssl_cert_file={directory}/server.crt"),
        format!("ssl_key_file={directory}/server.key"),
        format!("hba_file={directory}/pg_hba.conf"),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let server = PostgresServer::start_with(&settings);
    let port = server.port;
    let fleet = Fleet::with_connection(server, "sslMode: require", &role("app", ""));
    std::fs::write(fleet.repository.path().join("ca.pem"), ca).unwrap();
    std::fs::write(fleet.repository.path().join("other-ca.pem"), other_ca).unwrap();
    // require: encrypted (the server takes nothing else), certificate unchecked.
    fleet.expect(&["apply", "--auto-approve"], 0);
    let inventory = fleet
        .repository
        .path()
        .join("environments/test/inventory.yaml");
    let original = std::fs::read_to_string(&inventory).unwrap();
    let with = |connection: &str| {
        std::fs::write(&inventory, original.replace("sslMode: require", connection)).unwrap()
    };
    // verify-full against the CA that signed the certificate: accepted.
    with("sslMode: verify-full, sslRootCert: ca.pem");
    fleet.expect(&["plan"], 0);
    with("sslMode: verify-ca, sslRootCert: ca.pem");
    fleet.expect(&["plan"], 0);
    // Another CA: refused, naming the instance.
    with("sslMode: verify-full, sslRootCert: other-ca.pem");
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains(&format!("PostgresInstance pg-test (127.0.0.1:{port}")),
        "{refused}"
    );
    assert!(
        refused.contains("the server's certificate is not signed by a CA that sslRootCert"),
        "{refused}"
    );
    // No TLS: the server's pg_hba refuses it.
    with("sslMode: disable");
    let refused = fleet.expect(&["plan"], 1);
    assert!(refused.contains("no pg_hba.conf entry"), "{refused}");
    // Issue 19, finding 22: what to do about it, not a password hint.
    assert!(
        refused.contains("hint: the server's pg_hba.conf has no entry that lets this user connect"),
        "{refused}"
    );
    assert!(!refused.contains("password's secret"), "{refused}");
}

/// `fleetform plan` of a repository with one PostgreSQL instance `name` at
/// 127.0.0.1:`port` with `connection` (flow-mapping entries) and one role;
/// it must exit 1 (the endpoint is not a usable server). Its output.
fn plan_one_instance_at(name: &str, port: u16, connection: &str) -> String {
    let repository = tempfile::tempdir().unwrap();
    let environment = repository.path().join("environments/test");
    std::fs::create_dir_all(&environment).unwrap();
    std::fs::write(
        environment.join("environment.yaml"),
        "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: test}\n",
    )
    .unwrap();
    std::fs::write(
        environment.join("inventory.yaml"),
        format!("apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: local}}\nspec: {{host: 127.0.0.1, os: linux}}\n---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: {name}}}\nspec: {{server: local, port: {port}, connection: {{{connection}}}}}\n{}", role("app", "").replace("pg-test", name)),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["plan", "-e", "test", "--repo"])
        .arg(repository.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}");
    text
}

/// Issue 19, finding 22: a self-signed certificate that is its own CA, as
/// `openssl req -x509` makes one, is refused by verify-full with what to do.
#[test]
fn a_self_signed_server_certificate_is_explained() {
    let (certificate, key) = common::tls::self_signed_ca_as_server();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("server.crt"), &certificate).unwrap();
    std::fs::write(files.path().join("server.key"), key).unwrap();
    common::postgres::give_to_server_user(files.path());
    std::fs::set_permissions(
        files.path().join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let directory = files.path().display().to_string();
    let settings = [
        "ssl=on".to_string(),
        format!("ssl_cert_file={directory}/server.crt"),
        format!("ssl_key_file={directory}/server.key"),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let server = PostgresServer::start_with(&settings);
    let fleet = Fleet::with_connection(
        server,
        "sslMode: verify-full, sslRootCert: server.pem",
        &role("app", ""),
    );
    std::fs::write(fleet.repository.path().join("server.pem"), certificate).unwrap();
    let refused = fleet.expect(&["plan"], 1);
    assert!(!refused.contains("CaUsedAsEndEntity"), "{refused}");
    assert!(
        refused.contains("the server's certificate is a CA certificate (self-signed)"),
        "{refused}"
    );
    assert!(refused.contains("hint: "), "{refused}");
}

/// Issue 19, finding 22: an endpoint that answers but is not PostgreSQL
/// (an SSH server, a web server on the port) is named as such.
#[test]
fn an_endpoint_that_is_not_postgresql_is_explained() {
    for (greeting, ssl_mode) in [
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "disable"),
        (
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            "disable",
        ),
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "prefer"),
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(10) {
                let Ok(mut stream) = stream else { continue };
                let _ = std::io::Write::write_all(&mut stream, greeting.as_bytes());
                // Read what the client sends, as a real server would, so
                // that closing is a clean end, not a reset.
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(300)));
                let mut buffer = [0u8; 1024];
                let _ = std::io::Read::read(&mut stream, &mut buffer);
            }
        });
        let text = plan_one_instance_at(
            "pg-other",
            port,
            &format!("sslMode: {ssl_mode}, connectTimeoutSeconds: 2"),
        );
        assert!(
            text.contains(&format!(
                "cannot connect to PostgresInstance pg-other (127.0.0.1:{port}"
            )),
            "{text}"
        );
        assert!(
            text.contains("does not speak the PostgreSQL protocol"),
            "{greeting:?} {ssl_mode}: {text}"
        );
        assert!(!text.contains("bytes remaining on stream"), "{text}");
    }
}

/// Issue 19, finding 7: what the plan shows for a resource an interrupted
/// apply converged (its `started` row, no outcome), and that apply records
/// it without running anything.
#[test]
fn a_resource_an_interrupted_apply_converged_is_planned_as_record() {
    let fleet = Fleet::new(&role("app", "  connectionLimit: 5\n"));
    fleet.expect(&["apply", "--auto-approve"], 0);
    // As if the apply had been killed after the commit, before the outcome.
    fleet.server.psql(
        "DELETE FROM fleetform.ledger WHERE result = 'converged'; UPDATE fleetform.ledger SET result = 'started'",
    );
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned.contains("record: an apply started at ")
            && planned.contains("apply records it in the ledger"),
        "{planned}"
    );
    assert!(
        planned.contains("(1 to record, after an interrupted apply)"),
        "{planned}"
    );
    let comment = fleet.expect(&["plan", "--format", "markdown"], 2);
    assert!(
        comment.contains("> record: an apply started at "),
        "{comment}"
    );
    let applied = fleet.expect(&["apply", "--auto-approve"], 0);
    assert!(
        applied.contains(
            "PostgresRole/app@pg-test: converged (recorded: an interrupted apply had converged it)"
        ),
        "{applied}"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT string_agg(result, ',' ORDER BY id) FROM fleetform.ledger"),
        "started,converged",
        "recorded without a new started row: nothing ran"
    );
    fleet.expect(&["plan"], 0);
    fleet.server.psql("ALTER ROLE app CONNECTION LIMIT 9");
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresRole/app@pg-test"),
        "{drift}"
    );
}

/// The hundred resources of the fault-injection test: a database, 66 roles
/// and 33 grants on the database (grants are owned through the ledger
/// only, so an unrecorded one would never be pruned).
fn hundred_resources(grants: std::ops::Range<usize>) -> String {
    let mut manifests = database("appdb", "");
    for index in 0..66 {
        manifests.push_str(&role(&format!("f{index:02}"), "  connectionLimit: 5\n"));
    }
    for index in grants {
        manifests.push_str(&grant(
            &format!("g{index:02}"),
            &format!("  role: f{index:02}\n  objectType: database\n  privileges: [CONNECT]\n"),
        ));
    }
    manifests
}

/// Issue 19, finding 7 and its acceptance: fleetform killed (SIGKILL),
/// stopped (SIGINT, SIGTERM) or its server stopped at several points of a
/// 100-resource apply. After each, a re-run converges; every resource has a
/// converged ledger row (what was in flight is found by its `started` row
/// and recorded); a change by hand to any role reads as drift, not pending;
/// and grants leaving the manifests are pruned.
#[test]
fn an_apply_interrupted_at_any_point_is_recorded_and_converges_after() {
    let faults = [
        ("SIGKILL", 8),
        ("SIGINT", 25),
        ("SIGTERM", 45),
        ("server stop", 15),
        ("SIGKILL", 60),
    ];
    for (fault, after_roles) in faults {
        let fleet = Fleet::new(&hundred_resources(0..33));
        let apply = fleet
            .command(&["apply", "--auto-approve", "--parallelism", "1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let reached = fleet.server.wait_for(
            &format!(
                "SELECT count(*) >= {after_roles} FROM pg_roles WHERE rolname ~ '^f[0-9]{{2}}$'"
            ),
            "t",
            std::time::Duration::from_secs(120),
        );
        let pid = apply.id().to_string();
        match fault {
            "server stop" => fleet.server.stop(),
            signal => {
                let name = signal.trim_start_matches("SIG");
                Command::new("sh")
                    .arg("-c")
                    .arg(format!("kill -s {name} {pid}"))
                    .status()
                    .unwrap();
            }
        }
        let output = apply.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            reached,
            "{fault}: the apply never created {after_roles} roles: {text}"
        );
        assert_ne!(
            output.status.code(),
            Some(0),
            "{fault}: the apply was not interrupted: {text}"
        );
        match fault {
            "SIGINT" | "SIGTERM" => {
                assert_eq!(output.status.code(), Some(1), "{fault}: {text}");
                assert!(
                    text.contains(&format!("stopped by {fault}")),
                    "{fault}: {text}"
                );
                assert!(text.contains("resources in flight"), "{fault}: {text}");
            }
            "server stop" => {
                fleet.server.start_again();
                assert!(
                    text.contains("pg-test stopped answering"),
                    "{fault}: {text}"
                );
            }
            _ => {}
        }

        // A re-run converges everything, recording what was converged
        // before the fault but never recorded.
        let again = fleet.expect(&["apply", "--auto-approve"], 0);
        assert_eq!(
            fleet.server.psql(
                "SELECT count(DISTINCT resource) FROM fleetform.ledger WHERE environment = 'test' AND result = 'converged'"
            ),
            "100",
            "{fault}: every resource has a converged row: {again}"
        );
        fleet.expect(&["plan"], 0);

        // A change by hand to any role is drift.
        let mut alter = String::new();
        for index in 0..66 {
            alter.push_str(&format!("ALTER ROLE f{index:02} CONNECTION LIMIT 7;"));
        }
        fleet.server.psql(&alter);
        let drift = fleet.expect(&["drift"], 3);
        let drifted = drift
            .lines()
            .filter(|line| line.trim_start().starts_with("drifted PostgresRole/f"))
            .count();
        assert_eq!(drifted, 66, "{fault}: every role drifted: {drift}");
        assert!(
            drift.contains("66 drifted, 0 pending"),
            "{fault}: none pending: {drift}"
        );
        fleet.expect(&["apply", "--auto-approve"], 0);

        // Grants that leave the manifests are pruned: each is recorded.
        fleet.write(&hundred_resources(5..33));
        fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
        let acl = fleet
            .server
            .psql("SELECT datacl::text FROM pg_database WHERE datname = 'appdb'");
        for index in 0..33 {
            let entry = format!("f{index:02}=c/");
            assert_eq!(
                acl.contains(&entry),
                index >= 5,
                "{fault}: grant g{index:02} in {acl}"
            );
        }
    }
}

/// Issue 19, finding 12: a server that stops answering mid-apply is given
/// up on after its first timeout: the rest of its resources are not
/// attempted (said once for the instance), and the run finishes instead of
/// waiting out a timeout per resource. A re-run once it answers converges.
#[test]
fn a_server_that_stops_answering_mid_apply_is_abandoned_once() {
    // The gate sleeps long enough to be caught running; the roles come
    // after it (one at a time) and do not depend on it.
    let mut manifests = custom_sql(
        "gate",
        "  test: SELECT false\n  set: SELECT pg_sleep(1.5)\n  transaction: false\n",
    );
    for index in 0..30 {
        manifests.push_str(&role(&format!("r{index:02}"), ""));
    }
    let fleet = Fleet::with_connection(
        PostgresServer::start(),
        "connectTimeoutSeconds: 1, statementTimeoutSeconds: 2",
        &manifests,
    );
    let apply = fleet
        .command(&["apply", "--auto-approve", "--parallelism", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let caught = fleet.server.wait_for(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%'",
        "1",
        std::time::Duration::from_secs(60),
    );
    fleet.server.freeze();
    let output = apply.wait_with_output().unwrap();
    fleet.server.thaw();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(caught, "the gate never ran: {text}");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(
        text.matches("pg-test stopped answering").count(),
        2,
        "said once as it happens and once in the summary: {text}"
    );
    assert!(
        text.contains("30 resources not attempted"),
        "every role after the gate: {text}"
    );
    assert!(
        !text.contains("PostgresRole/r00@pg-test: failed"),
        "no role waited for a timeout of its own: {text}"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname ~ '^r[0-9]{2}$'"),
        "0"
    );

    // Once it answers, the next apply converges the roles.
    let again = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(
        again.contains("PostgresRole/r29@pg-test: converged"),
        "{again}"
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname ~ '^r[0-9]{2}$'"),
        "30"
    );
}

#[test]
fn a_server_that_never_answers_times_out_naming_the_instance() {
    // A loopback port that accepts connections and then says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(10) {
            held.push(stream);
        }
    });
    let text = plan_one_instance_at(
        "pg-silent",
        port,
        "sslMode: disable, connectTimeoutSeconds: 1",
    );
    assert!(
        text.contains(&format!(
            "cannot connect to PostgresInstance pg-silent (127.0.0.1:{port}"
        )),
        "{text}"
    );
    assert!(text.contains("timed out after 1 s"), "{text}");
}

#[test]
fn a_non_superuser_connection_manages_roles_and_databases() {
    // Issue 13, defect 5: either of the hint's two ways works.
    for way in [
        "GRANT CREATE ON DATABASE postgres TO fleet_admin",
        "CREATE SCHEMA fleetform AUTHORIZATION fleet_admin",
    ] {
        let server = PostgresServer::start();
        server.psql(&format!(
            "CREATE ROLE fleet_admin LOGIN CREATEROLE CREATEDB PASSWORD '{SUPERUSER_PASSWORD}'"
        ));
        server.psql("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
        let fleet = Fleet::with_connection(
            server,
            "user: fleet_admin",
            &[
                role(
                    "app",
                    "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n",
                ),
                database("appdb", "  owner: fleet_admin\n"),
            ]
            .concat(),
        );
        // The ledger needs a place in the database fleetform connects to.
        let refused = fleet.expect(&["apply", "--auto-approve"], 1);
        assert!(
            refused.contains("cannot create the ledger (schema fleetform) on pg-test"),
            "{refused}"
        );
        assert!(
            refused.contains("hint: the ledger lives in the database fleetform connects to"),
            "{refused}"
        );
        assert!(
        refused.contains("GRANT CREATE ON DATABASE <that database> TO <the connecting role>, or CREATE SCHEMA fleetform AUTHORIZATION <the connecting role>"),
        "{refused}"
    );
        fleet.server.psql(way);
        fleet.expect(&["apply", "--auto-approve"], 0);
        let plan = fleet.expect(&["plan"], 0);
        assert!(plan.contains("[not verifiable]"), "{plan}");
        assert_eq!(
            fleet
                .server
                .psql("SELECT count(*) FROM pg_database WHERE datname = 'appdb'"),
            "1"
        );
    }
}

#[test]
fn a_restart_only_parameter_restarts_a_local_instance_when_allowed() {
    let fleet = Fleet::new(&settings(
        "memory",
        "  restartAllowed: true\n  parameters:\n    shared_buffers: 192MB\n    work_mem: 8MB\n",
    ));
    let plan = fleet.expect(&["plan"], 2);
    assert!(plan.contains("[restart] then restart pg-test"), "{plan}");
    assert!(
        plan.contains("takes effect after a restart, which apply performs"),
        "{plan}"
    );
    let applied = fleet.expect(&["apply", "--auto-approve"], 0);
    assert!(
        applied.contains("PostgresInstance/pg-test (restart): converged"),
        "{applied}"
    );
    assert_eq!(fleet.server.psql("SHOW shared_buffers"), "192MB");
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_settings WHERE pending_restart"),
        "0"
    );
    let drift = fleet.expect(&["drift"], 0);
    assert!(!drift.contains("restart needed"), "{drift}");
    assert_eq!(
        fleet.server.psql(
            "SELECT result FROM fleetform.ledger WHERE resource = 'PostgresInstance/pg-test'"
        ),
        "converged"
    );
}

#[test]
fn an_unknown_parameter_is_refused_by_plan() {
    let fleet = Fleet::new(&settings(
        "typo",
        "  parameters:\n    work_memory: 16MB\n    pg_stat_statements.max: 5000\n",
    ));
    let plan = fleet.expect(&["plan"], 1);
    assert!(
        plan.contains("work_memory is not a parameter of this server"),
        "{plan}"
    );
    assert!(!plan.contains("pg_stat_statements.max is not"), "{plan}");
}

#[test]
fn apply_asks_first_and_never_changes_anything_unasked() {
    let fleet = Fleet::new(&role("app", ""));
    // No terminal to ask on: refused, nothing changed.
    let refused = fleet.expect(&["apply"], 1);
    assert!(refused.contains("pass --auto-approve"), "{refused}");
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app'"),
        "0"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    // Nothing to do: nothing to ask.
    let nothing = fleet.expect(&["apply"], 0);
    assert!(nothing.contains("nothing to apply"), "{nothing}");
}

fn schema(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresSchema\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

fn extension(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresExtension\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

/// Issue 13, defect 1: `comment: ''` on objects fleetform did not create
/// (a role, a database, a schema, a publication with a comment by hand)
/// removes the comment and converges: PostgreSQL stores no empty comment.
#[test]
fn an_empty_comment_removes_the_comment_and_converges() {
    let empty = "  comment: ''\n";
    let manifests = [
        role("r", empty),
        database("d", empty),
        schema("s", &format!("  database: d\n{empty}")),
        format!("---\napiVersion: fleetform/v1\nkind: PostgresPublication\nmetadata: {{name: p}}\nspec:\n  on: {{instances: [pg-test]}}\n  database: d\n  operations: [insert]\n{empty}"),
    ]
    .concat();
    let fleet = Fleet::with_connection(
        PostgresServer::start_with(&["wal_level=logical"]),
        "",
        &manifests,
    );
    fleet.server.psql("CREATE ROLE r; COMMENT ON ROLE r IS 'x'");
    fleet.server.psql("CREATE DATABASE d");
    fleet.server.psql("COMMENT ON DATABASE d IS 'x'");
    fleet.server.psql_on(
        "d",
        "CREATE SCHEMA s; COMMENT ON SCHEMA s IS 'x'; CREATE PUBLICATION p WITH (publish = 'insert'); COMMENT ON PUBLICATION p IS 'x'",
    );
    let planned = fleet.expect(&["plan"], 2);
    assert_eq!(
        planned.matches("comment: \"x\" -> \"\"").count(),
        4,
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "d",
            "SELECT count(*) FROM pg_description WHERE description = 'x'"
        ),
        "0"
    );
}

/// Issue 13, gap: `version: latest` follows the server's default version:
/// an older installed version is updated to it, then the plan is empty.
#[test]
fn an_extension_at_latest_follows_the_default_version() {
    let fleet = Fleet::new(
        &[
            database("appdb", ""),
            extension("hstore", "  database: appdb\n  version: latest\n"),
        ]
        .concat(),
    );
    fleet.server.psql("CREATE DATABASE appdb");
    fleet
        .server
        .psql_on("appdb", "CREATE EXTENSION hstore VERSION '1.7'");
    let default_version = fleet
        .server
        .psql("SELECT default_version FROM pg_available_extensions WHERE name = 'hstore'");
    assert_ne!(default_version, "1.7");
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned.contains(&format!("version: \"1.7\" -> \"{default_version}\""))
            && planned.contains(&format!(
                "ALTER EXTENSION \"hstore\" UPDATE TO '{default_version}';"
            )),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT extversion FROM pg_extension WHERE extname = 'hstore'"
        ),
        default_version
    );
    fleet.expect(&["plan"], 0);
}

/// Issue 13, gap: an extension's comment is managed like any other:
/// created with it, updated, drift repaired with the marker kept.
#[test]
fn an_extensions_comment_converges_drifts_and_is_repaired() {
    let with_comment = |comment: &str| {
        [
            database("appdb", ""),
            extension(
                "pgcrypto",
                &format!("  database: appdb\n  comment: {comment}\n"),
            ),
        ]
        .concat()
    };
    let fleet = Fleet::new(&with_comment("hashing"));
    fleet.expect(&["apply", "--auto-approve"], 0);
    let comment = || {
        fleet.server.psql_on(
            "appdb",
            "SELECT obj_description(oid, 'pg_extension') FROM pg_extension WHERE extname = 'pgcrypto'",
        )
    };
    assert_eq!(
        comment(),
        "hashing\n[managed by fleetform: environment test]"
    );
    fleet.expect(&["plan"], 0);
    fleet.write(&with_comment("crypto functions"));
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned.contains("comment: \"hashing\" -> \"crypto functions\""),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        comment(),
        "crypto functions\n[managed by fleetform: environment test]"
    );
    fleet
        .server
        .psql_on("appdb", "COMMENT ON EXTENSION pgcrypto IS 'by hand'");
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresExtension/pgcrypto@pg-test"),
        "{drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        comment(),
        "crypto functions\n[managed by fleetform: environment test]"
    );
    fleet.expect(&["plan"], 0);
}

#[test]
fn schemas_and_extensions_converge_upgrade_drift_and_prune() {
    let base = [
        role("owner", "  name: app_owner\n"),
        database("appdb", "  owner: app_owner\n"),
        schema(
            "app",
            "  database: appdb\n  owner: app_owner\n  comment: The application's tables.\n",
        ),
    ]
    .concat();
    let with_extensions = |hstore: &str| {
        base.clone()
            + &extension(
                "crypto",
                "  database: appdb\n  name: pgcrypto\n  schema: app\n",
            )
            + &extension(
                "hstore",
                &format!("  database: appdb\n  name: hstore\n  version: '{hstore}'\n"),
            )
    };
    let fleet = Fleet::new(&with_extensions("1.7"));
    let plan = fleet.expect(&["plan"], 2);
    assert!(plan.contains("+ PostgresSchema/app@pg-test"), "{plan}");
    assert!(
        plan.contains("CREATE EXTENSION \"hstore\" VERSION '1.7'"),
        "{plan}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app'"
        ),
        "app_owner"
    );
    assert_eq!(
        fleet.server.psql_on("appdb", "SELECT string_agg(e.extname || ' ' || e.extversion || ' ' || n.nspname, ',' ORDER BY e.extname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'"),
        "hstore 1.7 public,pgcrypto 1.3 app"
    );
    fleet.expect(&["plan"], 0);

    // Raising the version upgrades in place.
    fleet.write(&with_extensions("1.8"));
    let upgrade = fleet.expect(&["plan"], 2);
    assert!(
        upgrade.contains("ALTER EXTENSION \"hstore\" UPDATE TO '1.8'"),
        "{upgrade}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT extversion FROM pg_extension WHERE extname = 'hstore'"
        ),
        "1.8"
    );
    fleet.expect(&["plan"], 0);

    // Out of band: drift, repaired.
    fleet
        .server
        .psql_on("appdb", "ALTER SCHEMA app OWNER TO postgres");
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresSchema/app@pg-test"),
        "{drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["drift"], 0);

    // Prune: extensions before the schema they live in; nothing made by hand.
    fleet.server.psql_on("appdb", "CREATE SCHEMA handmade");
    fleet.write(
        &[
            role("owner", "  name: app_owner\n"),
            database("appdb", "  owner: app_owner\n"),
        ]
        .concat(),
    );
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(
        pruned.contains("- PostgresExtension[appdb/pgcrypto]@pg-test"),
        "{pruned}"
    );
    assert!(
        pruned.contains("- PostgresExtension[appdb/hstore]@pg-test"),
        "{pruned}"
    );
    assert!(!pruned.contains("[appdb/plpgsql]"), "{pruned}");
    assert!(
        pruned.contains("- PostgresSchema[appdb/app]@pg-test"),
        "{pruned}"
    );
    assert!(!pruned.contains("[appdb/handmade]"), "{pruned}");
    assert!(
        pruned.find("PostgresExtension[appdb/pgcrypto]").unwrap()
            < pruned.find("PostgresSchema[appdb/app]").unwrap()
    );
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet.server.psql_on("appdb", "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('app', 'handmade')"),
        "handmade"
    );
}

#[test]
fn extensions_the_server_cannot_install_are_refused_by_plan() {
    // Checked in a database that exists (in one apply would create first,
    // nothing is known yet, and apply reports PostgreSQL's own error).
    let fleet = Fleet::new(
        &[
            extension("missing", "  database: appdb\n  name: no_such_extension\n"),
            extension(
                "crypto",
                "  database: appdb\n  name: pgcrypto\n  version: '9.9'\n",
            ),
        ]
        .concat(),
    );
    fleet.server.psql("CREATE DATABASE appdb");
    let plan = fleet.expect(&["plan"], 1);
    assert!(
        plan.contains("no_such_extension is not available on this server"),
        "{plan}"
    );
    assert!(
        plan.contains("pgcrypto cannot be installed in the version the manifest asks for"),
        "{plan}"
    );
}

fn custom_sql(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresCustomSql\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

/// Issue 19, finding 15: plan and drift are read-only. A custom SQL test
/// with a side effect fails, naming why, instead of changing the server at
/// every plan and drift.
#[test]
fn plan_and_drift_never_change_the_server() {
    let fleet = Fleet::new(&custom_sql(
        "counts-its-calls",
        "  test: SELECT public.bump()\n  set: SELECT 1\n",
    ));
    fleet.server.psql(
        "CREATE TABLE public.calls (at timestamptz DEFAULT now()); \
         CREATE FUNCTION public.bump() RETURNS boolean LANGUAGE sql AS 'INSERT INTO public.calls DEFAULT VALUES RETURNING true'",
    );
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("cannot execute INSERT in a read-only transaction"),
        "{refused}"
    );
    assert!(
        refused.contains("hint: fleetform reads the server in read-only transactions"),
        "{refused}"
    );
    fleet.expect(&["drift"], 1);
    assert_eq!(fleet.server.psql("SELECT count(*) FROM public.calls"), "0");
}

#[test]
fn custom_sql_tests_sets_and_watches_its_drift_query() {
    let fleet = Fleet::new(
        &[
            database("appdb", ""),
            custom_sql(
                "audit-table",
                "  database: appdb\n  description: An audit table until fleetform models tables.\n  test: SELECT to_regclass('public.audit') IS NOT NULL;\n  set: |\n    CREATE TABLE IF NOT EXISTS public.audit (id bigint, note text);\n    ALTER TABLE public.audit DROP COLUMN IF EXISTS extra;\n  drift: SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'audit'\n",
            ),
            custom_sql(
                "vacuum",
                "  database: appdb\n  test: SELECT false\n  set: VACUUM\n  transaction: false\n",
            ),
        ]
        .concat(),
    );
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains("CREATE TABLE IF NOT EXISTS public.audit (id bigint, note text);"),
        "{plan}"
    );
    fleet.server.psql("CREATE DATABASE appdb");
    // VACUUM refuses transactions: `transaction: false` runs it alone. Its
    // test never turns true, so it is reported as not converged.
    let applied = fleet.expect(&["apply", "--auto-approve"], 1);
    assert!(
        applied.contains("PostgresCustomSql/audit-table@pg-test: converged"),
        "{applied}"
    );
    assert!(
        applied.contains("PostgresCustomSql/vacuum@pg-test: not-converged"),
        "{applied}"
    );
    fleet.write(
        &[
            database("appdb", ""),
            custom_sql(
                "audit-table",
                "  database: appdb\n  test: SELECT to_regclass('public.audit') IS NOT NULL;\n  set: |\n    CREATE TABLE IF NOT EXISTS public.audit (id bigint, note text);\n    ALTER TABLE public.audit DROP COLUMN IF EXISTS extra;\n  drift: SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'audit'\n",
            ),
        ]
        .concat(),
    );
    fleet.expect(&["plan"], 0);
    // The test stays true but the drift query's answer changed: drift, and
    // apply runs the script again.
    fleet
        .server
        .psql_on("appdb", "ALTER TABLE public.audit ADD COLUMN extra int");
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresCustomSql/audit-table@pg-test"),
        "{drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql_on("appdb", "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'audit'"),
        "id,note"
    );
    fleet.expect(&["drift"], 0);
    // The test false: drift too, and repaired.
    fleet.server.psql_on("appdb", "DROP TABLE public.audit");
    fleet.expect(&["drift"], 3);
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);

    // An `unset` script added later changes nothing live: the plan records
    // it in the ledger; then the resource leaves the manifests: pruned by
    // its own script.
    fleet.write(
        &[
            database("appdb", ""),
            custom_sql(
                "audit-table",
                "  database: appdb\n  test: SELECT to_regclass('public.audit') IS NOT NULL;\n  set: |\n    CREATE TABLE IF NOT EXISTS public.audit (id bigint, note text);\n    ALTER TABLE public.audit DROP COLUMN IF EXISTS extra;\n  drift: SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'audit'\n  unset: DROP TABLE public.audit\n",
            ),
        ]
        .concat(),
    );
    let recorded = fleet.expect(&["plan"], 2);
    assert!(
        recorded.contains("nothing changes on the server") && !recorded.contains("CREATE TABLE"),
        "{recorded}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);
    fleet.write(&database("appdb", ""));
    let listed = fleet.expect(&["plan"], 0);
    assert!(
        listed.contains("PostgresCustomSql appdb/audit-table@pg-test (created by fleetform: deleted only with --prune)"),
        "{listed}"
    );
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(pruned.contains("| DROP TABLE public.audit"), "{pruned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet
            .server
            .psql_on("appdb", "SELECT to_regclass('public.audit') IS NULL"),
        "t"
    );
    fleet.expect(&["plan", "--prune"], 0);
}

fn grant(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresGrant\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n  database: appdb\n{body}"
    )
}

#[test]
fn grants_are_exact_on_managed_objects_and_leave_others_alone() {
    let manifests = |writer_privileges: &str| {
        [
            role("reader", ""),
            role("writer", ""),
            grant("reader-connect", "  role: reader\n  objectType: database\n  privileges: [CONNECT]\n"),
            grant("reader-schema", "  role: reader\n  objectType: schema\n  objects: [app]\n  privileges: [USAGE]\n"),
            grant("reader-tables", "  role: reader\n  objectType: table\n  schema: app\n  privileges: [SELECT]\n"),
            grant("writer-t1", &format!("  role: writer\n  objectType: table\n  schema: app\n  objects: [t1]\n  privileges: {writer_privileges}\n  withGrantOption: true\n")),
            grant("writer-sequence", "  role: writer\n  objectType: sequence\n  schema: app\n  objects: [s1]\n  privileges: [ALL]\n"),
        ]
        .concat()
    };
    let fleet = Fleet::new(&manifests("[SELECT, INSERT]"));
    fleet.server.psql("CREATE DATABASE appdb");
    fleet.server.psql_on("appdb", "CREATE SCHEMA app; CREATE TABLE app.t1 (id int); CREATE TABLE app.t2 (id int); CREATE SEQUENCE app.s1");
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains(
            "GRANT SELECT, INSERT ON TABLE \"app\".\"t1\" TO \"writer\" WITH GRANT OPTION;"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("GRANT SELECT ON TABLE \"app\".\"t2\" TO \"reader\";"),
        "{plan}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    let privileges = |sql: &str| fleet.server.psql_on("appdb", sql);
    assert_eq!(
        privileges(
            "SELECT has_table_privilege('reader', 'app.t1', 'SELECT'), has_table_privilege('reader', 'app.t2', 'SELECT'), has_table_privilege('reader', 'app.t1', 'INSERT')"
        ),
        "t|t|f"
    );
    assert_eq!(
        privileges(
            "SELECT has_table_privilege('writer', 'app.t1', 'INSERT WITH GRANT OPTION'), has_sequence_privilege('writer', 'app.s1', 'USAGE'), has_schema_privilege('reader', 'app', 'USAGE'), has_database_privilege('reader', 'appdb', 'CONNECT')"
        ),
        "t|t|t|t"
    );
    fleet.expect(&["plan"], 0);

    // A privilege added by hand on a managed object is drift, and revoked.
    privileges("GRANT DELETE ON app.t1 TO writer");
    // One on an object no grant manages is left alone.
    privileges("GRANT UPDATE ON app.t2 TO writer");
    // So are privileges on other kinds of objects no grant covers.
    privileges(
        "GRANT USAGE ON SCHEMA public TO writer; CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1'; GRANT EXECUTE ON FUNCTION app.f() TO reader",
    );
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresGrant/writer-t1@pg-test"),
        "{drift}"
    );
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains("REVOKE DELETE ON TABLE \"app\".\"t1\" FROM \"writer\";"),
        "{plan}"
    );
    assert!(!plan.contains("\"t2\" FROM \"writer\""), "{plan}");
    // ... and reported as not in the manifests.
    assert!(
        plan.contains("PostgresGrant appdb/writer: UPDATE on table app.t2@pg-test"),
        "{plan}"
    );
    assert!(
        plan.contains("PostgresGrant appdb/writer: USAGE on schema public@pg-test"),
        "{plan}"
    );
    assert!(
        plan.contains("PostgresGrant appdb/reader: EXECUTE on function app.f()@pg-test"),
        "{plan}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        privileges(
            "SELECT has_table_privilege('writer', 'app.t1', 'DELETE'), has_table_privilege('writer', 'app.t2', 'UPDATE')"
        ),
        "f|t"
    );

    // A table created later is covered by the schema-wide grant at the next apply.
    privileges("CREATE TABLE app.t3 (id int)");
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        privileges("SELECT has_table_privilege('reader', 'app.t3', 'SELECT')"),
        "t"
    );

    // Dropping a privilege from the manifest revokes it.
    fleet.write(&manifests("[SELECT]"));
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        privileges(
            "SELECT has_table_privilege('writer', 'app.t1', 'INSERT'), has_table_privilege('writer', 'app.t1', 'SELECT WITH GRANT OPTION')"
        ),
        "f|t"
    );
    fleet.expect(&["plan"], 0);

    // Objects that do not exist are refused by plan.
    fleet.write(&(manifests("[SELECT]") + &grant("ghost", "  role: reader\n  objectType: table\n  schema: app\n  objects: [no_such_table]\n  privileges: [SELECT]\n")));
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("ghost names objects that do not exist"),
        "{refused}"
    );
}

#[test]
fn grants_on_routines_and_every_other_object_type() {
    // Parameters and tablespaces belong to the cluster: no database.
    let cluster_wide = |name: &str, body: &str| {
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresGrant\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
        )
    };
    let manifests = [
        role("runner", ""),
        // One overload by signature (written the way people write it), every
        // overload of another by name.
        grant("runner-functions", "  role: runner\n  objectType: function\n  schema: app\n  objects: [\"total(int, date)\", agg_sum]\n  privileges: [EXECUTE]\n"),
        // Every procedure in the schema.
        grant("runner-procedures", "  role: runner\n  objectType: procedure\n  schema: app\n  privileges: [ALL]\n"),
        grant("runner-type", "  role: runner\n  objectType: type\n  schema: app\n  objects: [mood]\n  privileges: [USAGE]\n"),
        grant("runner-language", "  role: runner\n  objectType: language\n  objects: [plpgsql]\n  privileges: [USAGE]\n  withGrantOption: true\n"),
        grant("runner-fdw", "  role: runner\n  objectType: foreignDataWrapper\n  objects: [files]\n  privileges: [USAGE]\n"),
        grant("runner-server", "  role: runner\n  objectType: foreignServer\n  objects: [archive]\n  privileges: [USAGE]\n"),
        grant("runner-blob", "  role: runner\n  objectType: largeObject\n  objects: ['424242']\n  privileges: [ALL]\n"),
        cluster_wide("runner-parameters", "  role: runner\n  objectType: parameter\n  objects: [work_mem, plpgsql.extra_warnings]\n  privileges: [SET]\n"),
        cluster_wide("runner-tablespace", "  role: runner\n  objectType: tablespace\n  objects: [pg_default]\n  privileges: [CREATE]\n"),
    ]
    .concat();
    let fleet = Fleet::new(&manifests);
    fleet.server.psql("CREATE DATABASE appdb");
    fleet.server.psql_on(
        "appdb",
        "CREATE SCHEMA app;
         CREATE FUNCTION app.total(a integer, b date) RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE FUNCTION app.total(integer[]) RETURNS int LANGUAGE sql AS 'SELECT 2';
         CREATE AGGREGATE app.agg_sum(int) (sfunc = int4pl, stype = int);
         CREATE AGGREGATE app.agg_sum(bigint) (sfunc = int8pl, stype = bigint);
         CREATE PROCEDURE app.tidy(IN days int, OUT removed int) LANGUAGE plpgsql AS 'BEGIN removed := days; END';
         CREATE TYPE app.mood AS ENUM ('calm');
         CREATE FOREIGN DATA WRAPPER files;
         CREATE SERVER archive FOREIGN DATA WRAPPER files;
         SELECT lo_create(424242);",
    );
    let plan = fleet.expect(&["plan"], 2);
    for statement in [
        "GRANT EXECUTE ON FUNCTION \"app\".\"total\"(\"pg_catalog\".\"int4\", \"pg_catalog\".\"date\") TO \"runner\";",
        "GRANT EXECUTE ON FUNCTION \"app\".\"agg_sum\"(\"pg_catalog\".\"int8\") TO \"runner\";",
        "GRANT EXECUTE ON PROCEDURE \"app\".\"tidy\"(\"pg_catalog\".\"int4\") TO \"runner\";",
        "GRANT USAGE ON TYPE \"app\".\"mood\" TO \"runner\";",
        "GRANT USAGE ON LANGUAGE \"plpgsql\" TO \"runner\" WITH GRANT OPTION;",
        "GRANT USAGE ON FOREIGN DATA WRAPPER \"files\" TO \"runner\";",
        "GRANT USAGE ON FOREIGN SERVER \"archive\" TO \"runner\";",
        "GRANT SELECT, UPDATE ON LARGE OBJECT 424242 TO \"runner\";",
        "GRANT SET ON PARAMETER \"plpgsql\".\"extra_warnings\" TO \"runner\";",
        "GRANT CREATE ON TABLESPACE \"pg_default\" TO \"runner\";",
    ] {
        assert!(
            plan.contains(statement),
            "{statement} missing from:\n{plan}"
        );
    }
    // The other overload of total() is not named: not touched.
    assert!(!plan.contains("\"pg_catalog\".\"_int4\""), "{plan}");
    fleet.expect(&["apply", "--auto-approve"], 0);
    let check = |sql: &str| fleet.server.psql_on("appdb", sql);
    // PUBLIC may execute routines and use types by default: has_*_privilege
    // would say yes either way, so the ACLs are read.
    let held = |catalog: &str, column: &str, object: &str, privilege: &str| {
        format!(
            "EXISTS (SELECT 1 FROM {catalog} o, aclexplode(o.{column}) a WHERE o.oid = {object} AND a.grantee = 'runner'::regrole AND a.privilege_type = '{privilege}')"
        )
    };
    let routine = |signature: &str| {
        held(
            "pg_proc",
            "proacl",
            &format!("'{signature}'::regprocedure"),
            "EXECUTE",
        )
    };
    assert_eq!(
        check(&format!(
            "SELECT {total}, {agg_sum}, {tidy}, {mood},
                    has_language_privilege('runner', 'plpgsql', 'USAGE WITH GRANT OPTION'),
                    has_foreign_data_wrapper_privilege('runner', 'files', 'USAGE'),
                    has_server_privilege('runner', 'archive', 'USAGE'),
                    has_parameter_privilege('runner', 'work_mem', 'SET'),
                    has_tablespace_privilege('runner', 'pg_default', 'CREATE'),
                    (SELECT lomacl::text LIKE '%runner=rw/%' FROM pg_largeobject_metadata WHERE oid = 424242)",
            total = routine("app.total(int, date)"),
            agg_sum = routine("app.agg_sum(bigint)"),
            tidy = routine("app.tidy(int)"),
            mood = held("pg_type", "typacl", "'app.mood'::regtype", "USAGE"),
        )),
        "t|t|t|t|t|t|t|t|t|t"
    );
    // The overload that is not named holds nothing.
    assert_eq!(
        check(&format!("SELECT {}", routine("app.total(integer[])"))),
        "f"
    );
    fleet.expect(&["plan"], 0);

    // Revoked by hand: drift, granted again; added by hand on a managed
    // routine: drift, revoked. An unnamed overload is reported, not touched.
    check(
        "REVOKE EXECUTE ON FUNCTION app.total(int, date) FROM runner;
         GRANT EXECUTE ON FUNCTION app.total(integer[]) TO runner;",
    );
    fleet
        .server
        .psql("REVOKE SET ON PARAMETER work_mem FROM runner");
    let drift = fleet.expect(&["drift"], 3);
    for drifted in [
        "PostgresGrant/runner-functions@pg-test",
        "PostgresGrant/runner-parameters@pg-test",
    ] {
        assert!(drift.contains(&format!("drifted {drifted}")), "{drift}");
    }
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains(
            "PostgresGrant appdb/runner: EXECUTE on function app.total(integer[])@pg-test"
        ),
        "{plan}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        check(&format!(
            "SELECT {}, {}, has_parameter_privilege('runner', 'work_mem', 'SET')",
            routine("app.total(int, date)"),
            routine("app.total(integer[])")
        )),
        "t|t|t"
    );
    fleet.expect(&["plan"], 0);

    // A procedure created later is covered by the schema-wide grant.
    check("CREATE PROCEDURE app.vacuum_all() LANGUAGE sql AS 'SELECT 1'");
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains("GRANT EXECUTE ON PROCEDURE \"app\".\"vacuum_all\"() TO \"runner\";"),
        "{plan}"
    );

    // A signature that names nothing is refused by plan, naming it.
    fleet.write(&(manifests.clone() + &grant("ghost", "  role: runner\n  objectType: function\n  schema: app\n  objects: [\"total(text)\", missing_function]\n  privileges: [EXECUTE]\n")));
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("ghost names objects that do not exist in the database; create them first, or remove them from objects: missing_function, total(text)"),
        "{refused}"
    );
}

fn default_privileges(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresDefaultPrivileges\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n  database: appdb\n{body}"
    )
}

#[test]
fn default_privileges_reach_objects_created_later_and_drift_is_repaired() {
    let manifests = [
        role("owner", "  name: app_owner\n"),
        role("reader", ""),
        database("appdb", "  owner: app_owner\n"),
        schema("app", "  database: appdb\n  owner: app_owner\n"),
        default_privileges("reader-tables", "  owner: app_owner\n  schema: app\n  objectType: table\n  role: reader\n  privileges: [SELECT]\n"),
        default_privileges("reader-sequences", "  owner: app_owner\n  objectType: sequence\n  role: reader\n  privileges: [ALL]\n"),
    ]
    .concat();
    let fleet = Fleet::new(&manifests);
    let plan = fleet.expect(&["plan"], 2);
    assert!(plan.contains("ALTER DEFAULT PRIVILEGES FOR ROLE \"app_owner\" IN SCHEMA \"app\" GRANT SELECT ON TABLES TO \"reader\";"), "{plan}");
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);
    fleet.server.psql_on(
        "appdb",
        "SET ROLE app_owner; CREATE TABLE app.later (id int); CREATE SEQUENCE app.later_seq",
    );
    assert_eq!(
        fleet.server.psql_on("appdb", "SELECT has_table_privilege('reader', 'app.later', 'SELECT'), has_table_privilege('reader', 'app.later', 'INSERT'), has_sequence_privilege('reader', 'app.later_seq', 'UPDATE')"),
        "t|f|t"
    );
    // Widened by hand: drift, narrowed again by apply.
    fleet.server.psql_on("appdb", "ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app GRANT INSERT ON TABLES TO reader");
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresDefaultPrivileges/reader-tables@pg-test"),
        "{drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql_on(
        "appdb",
        "SET ROLE app_owner; CREATE TABLE app.even_later (id int)",
    );
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT has_table_privilege('reader', 'app.even_later', 'INSERT')"
        ),
        "f"
    );
    fleet.expect(&["drift"], 0);
}

fn membership(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresRoleMembership\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

#[test]
fn memberships_declared_apart_converge_with_their_admin_option() {
    let manifests = |admin: bool| {
        [
            role("team", ""),
            role("alice", "  login: true\n"),
            membership(
                "alice-in-team",
                &format!("  role: alice\n  group: team\n  admin: {admin}\n"),
            ),
        ]
        .concat()
    };
    let fleet = Fleet::new(&manifests(true));
    fleet.expect(&["apply", "--auto-approve"], 0);
    let admin = || {
        fleet.server.psql("SELECT string_agg(admin_option::text, ',') FROM pg_auth_members WHERE roleid = 'team'::regrole AND member = 'alice'::regrole")
    };
    assert_eq!(admin(), "true");
    fleet.expect(&["plan"], 0);
    // Revoked by hand: drift, granted again.
    fleet.server.psql("REVOKE team FROM alice");
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresRoleMembership/alice-in-team@pg-test"),
        "{drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(admin(), "true");
    // The admin option taken away in the manifest.
    fleet.write(&manifests(false));
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(admin(), "false");
    fleet.expect(&["plan"], 0);
    let with_options = manifests(false).replace(
        "  admin: false\n",
        "  admin: false\n  inherit: false\n  set: false\n",
    );
    if common::postgres::major_version() < 16 {
        // Options of newer servers are refused on older ones.
        fleet.write(&with_options);
        let refused = fleet.expect(&["plan"], 1);
        assert!(refused.contains("exist from PostgreSQL 16"), "{refused}");
        return;
    }
    // From 16: INHERIT and SET, and grants of the same membership by
    // another grantor, each with options of its own, brought in line too.
    fleet.server.psql(
        "CREATE ROLE lead; GRANT team TO lead WITH ADMIN TRUE;
         SET ROLE lead; GRANT team TO alice WITH ADMIN TRUE, INHERIT TRUE, SET TRUE; RESET ROLE;",
    );
    fleet.write(&with_options);
    let plan = fleet.expect(&["plan"], 2);
    assert!(
        plan.contains("REVOKE ADMIN OPTION FOR \"team\" FROM \"alice\" GRANTED BY \"lead\";"),
        "{plan}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        fleet.server.psql(
            "SELECT bool_or(admin_option), bool_or(inherit_option), bool_or(set_option), count(*)
             FROM pg_auth_members WHERE roleid = 'team'::regrole AND member = 'alice'::regrole"
        ),
        "f|f|f|2"
    );
    fleet.expect(&["plan"], 0);
}

#[test]
fn an_imported_server_plans_nothing() {
    let fleet = Fleet::with_connection(PostgresServer::start_with(&["wal_level=logical"]), "", "");
    fleet.server.psql(
        "CREATE ROLE app_owner NOLOGIN; COMMENT ON ROLE app_owner IS 'owns the app';
         CREATE ROLE reader LOGIN CONNECTION LIMIT 5 VALID UNTIL '2031-01-01 00:00:00+00';
         CREATE ROLE \"Odd \"\"Name\"\"; --\" NOLOGIN;
         GRANT app_owner TO reader;",
    );
    fleet
        .server
        .psql("CREATE DATABASE appdb OWNER app_owner CONNECTION LIMIT 40");
    fleet.server.psql(
        "COMMENT ON DATABASE appdb IS 'the app';
         REVOKE ALL ON DATABASE appdb FROM PUBLIC;
         GRANT CONNECT ON DATABASE appdb TO reader;
",
    );
    fleet.server.psql("ALTER SYSTEM SET work_mem = '24MB'");
    fleet.server.psql("SELECT pg_reload_conf()");
    fleet.server.psql(
        "ALTER ROLE reader SET statement_timeout = '30s';
         ALTER ROLE reader SET search_path = app, public;
         ALTER ROLE reader IN DATABASE appdb SET work_mem = '8MB';
         ALTER DATABASE appdb SET lock_timeout = '2s';",
    );
    fleet.server.psql_on(
        "appdb",
        "CREATE SCHEMA app AUTHORIZATION app_owner;
         COMMENT ON SCHEMA app IS 'tables';
         CREATE EXTENSION pgcrypto SCHEMA app;
         CREATE EXTENSION hstore VERSION '1.7';
         GRANT USAGE ON SCHEMA app TO reader;
         CREATE TABLE app.t1 (id int); CREATE TABLE app.t2 (id int); CREATE SEQUENCE app.s1;
         ALTER TABLE app.t1 OWNER TO app_owner; ALTER TABLE app.t2 OWNER TO app_owner;
         GRANT SELECT ON app.t1, app.t2 TO reader;
         GRANT SELECT, INSERT ON app.t2 TO \"Odd \"\"Name\"\"; --\" WITH GRANT OPTION;
         GRANT USAGE ON SEQUENCE app.s1 TO reader;
         CREATE FUNCTION app.total(a integer, b date) RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE FUNCTION app.total(integer[]) RETURNS int LANGUAGE sql AS 'SELECT 2';
         GRANT EXECUTE ON FUNCTION app.total(integer, date), app.total(integer[]) TO reader;
         CREATE TYPE app.mood AS ENUM ('calm');
         GRANT USAGE ON TYPE app.mood TO reader;
         CREATE TABLE app.\"line.items\" (id int PRIMARY KEY);
         CREATE PUBLICATION app_changes FOR TABLE app.t1 WHERE (id > 5 AND id IN (7, 8)), app.\"line.items\" (id) WITH (publish = 'insert, update');
         COMMENT ON PUBLICATION app_changes IS 'for the warehouse';
         ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app GRANT SELECT ON TABLES TO reader;",
    );
    // Written by hand, bare values, port and sslmode left to libpq's defaults.
    fleet.server.psql_on(
        "appdb",
        "CREATE SUBSCRIPTION \"From HQ\" CONNECTION 'host=127.0.0.1 dbname=hq user=replicator password=s3cret'
             PUBLICATION hq_changes WITH (connect = false, slot_name = 'from_hq')",
    );
    let imported = fleet.expect(&["import", "--instance", "pg-test"], 0);
    assert!(imported.contains("imported"), "{imported}");
    let directory = fleet
        .repository
        .path()
        .join("environments/test/imported-pg-test");
    let files: Vec<String> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "postgres-role.yaml",
        "postgres-database.yaml",
        "postgres-settings.yaml",
        "postgres-role-settings.yaml",
        "postgres-schema.yaml",
        "postgres-extension.yaml",
        "postgres-grant.yaml",
        "postgres-default-privileges.yaml",
        "postgres-publication.yaml",
        "postgres-subscription.yaml",
    ] {
        assert!(
            files.contains(&expected.to_string()),
            "{expected} missing from {files:?}"
        );
    }
    let roles = std::fs::read_to_string(directory.join("postgres-role.yaml")).unwrap();
    assert!(roles.contains("Passwords are never read"), "{roles}");
    let grants = std::fs::read_to_string(directory.join("postgres-grant.yaml")).unwrap();
    for routine in [
        "total(integer, date)",
        "total(integer[])",
        "objectType: type",
    ] {
        assert!(
            grants.contains(routine),
            "{routine} not imported:\n{grants}"
        );
    }
    let subscriptions =
        std::fs::read_to_string(directory.join("postgres-subscription.yaml")).unwrap();
    assert!(
        subscriptions.contains("fromEnv: PG_SUBSCRIPTION_FROM_HQ_PASSWORD")
            && !subscriptions.contains("s3cret"),
        "{subscriptions}"
    );
    // The manifests are valid, and describe the server exactly (the
    // subscription's password from the variable the import named).
    fleet.expect(&["validate"], 0);
    let output = fleet
        .command(&["plan"])
        .env("PG_SUBSCRIPTION_FROM_HQ_PASSWORD", "s3cret")
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{plan}");
    assert!(
        plan.contains("0 to create, 0 to update, 0 to replace, 0 to delete"),
        "{plan}"
    );
    // Importing again finds nothing new.
    let again = fleet.expect(&["import", "--instance", "pg-test"], 0);
    assert!(again.contains("nothing to import"), "{again}");
}

/// Names a DBA would never choose but PostgreSQL allows, in every part of
/// logical replication: databases, a schema and a table with dots and
/// quotes, the publication, the subscription, the publisher's user and its
/// password (written into the subscription's connection string).
#[test]
fn logical_replication_set_up_from_manifests_carries_rows() {
    let database = "shop \"eu\"; --";
    let schema = "sales.eu";
    let table = "order's";
    let publication = "orders \"pub\"; DROP PUBLICATION x; --";
    let subscription = "Orders from pub'; --";
    let user = "rep'l \"user\" ü";
    let user_password = "p'a\"ss \\ word ü";
    let quoted = |text: &str| serde_json::to_string(text).unwrap();
    let ident = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let qualified = format!("{}.{}", ident(schema), ident(table));
    let publisher = PostgresServer::start_with(&["wal_level=logical"]);
    let subscriber = PostgresServer::start();
    for server in [&publisher, &subscriber] {
        server.psql(&format!("CREATE DATABASE {}", ident(database)));
        server.psql_on(
            database,
            &format!(
                "CREATE SCHEMA {}; CREATE TABLE {qualified} (id int PRIMARY KEY, item text)",
                ident(schema)
            ),
        );
    }
    publisher.psql(&format!(
        "CREATE ROLE {} LOGIN REPLICATION PASSWORD {}",
        ident(user),
        literal(user_password)
    ));
    publisher.psql_on(
        database,
        &format!(
            "GRANT USAGE ON SCHEMA {} TO {user_ident}; GRANT SELECT ON {qualified} TO {user_ident};
             INSERT INTO {qualified} VALUES (1, 'before the subscription')",
            ident(schema),
            user_ident = ident(user)
        ),
    );
    let repository = tempfile::tempdir().unwrap();
    let environment = repository.path().join("environments/test");
    std::fs::create_dir_all(&environment).unwrap();
    std::fs::write(
        environment.join("environment.yaml"),
        "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: test}\nspec:\n  connectionDefaults:\n    postgres:\n      user: postgres\n      password: {fromEnv: FLEETFORM_TEST_PG_PASSWORD}\n      sslMode: disable\n",
    )
    .unwrap();
    let returns = "returns";
    let manifests_with = |operations: &str, more_tables: &[&str]| {
        let tables: Vec<String> = std::iter::once(table)
            .chain(more_tables.iter().copied())
            .map(|name| format!("{{schema: {}, table: {}}}", quoted(schema), quoted(name)))
            .collect();
        format!(
            "apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: local}}\nspec: {{host: 127.0.0.1, os: linux, connection: {{method: local}}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: pg-pub}}\nspec: {{server: local, port: {pub_port}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: pg-sub}}\nspec: {{server: local, port: {sub_port}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresPublication\nmetadata: {{name: orders}}\nspec:\n  on: {{instances: [pg-pub]}}\n  database: {database}\n  name: {publication}\n  tables: [{tables}]\n  operations: {operations}\n\
---\napiVersion: fleetform/v1\nkind: PostgresReplicationSlot\nmetadata: {{name: standby_1}}\nspec:\n  on: {{instances: [pg-pub]}}\n  type: physical\n\
---\napiVersion: fleetform/v1\nkind: PostgresSubscription\nmetadata: {{name: orders-from-pub}}\nspec:\n  on: {{instances: [pg-sub]}}\n  database: {database}\n  name: {subscription}\n  slotName: orders_from_pub\n  publisher: {{host: 127.0.0.1, port: {pub_port}, database: {database}, user: {user}, sslMode: disable}}\n  password: {{fromEnv: FLEETFORM_TEST_REPL_PASSWORD}}\n  publications: [{publication}]\n",
            pub_port = publisher.port,
            sub_port = subscriber.port,
            database = quoted(database),
            publication = quoted(publication),
            tables = tables.join(", "),
            subscription = quoted(subscription),
            user = quoted(user),
        )
    };
    let manifests = |operations: &str| manifests_with(operations, &[]);
    std::fs::write(
        environment.join("fleet.yaml"),
        manifests("[insert, update, delete, truncate]"),
    )
    .unwrap();
    let run = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
            .args(arguments)
            .args(["-e", "test", "--repo"])
            .arg(repository.path())
            .env("FLEETFORM_TEST_PG_PASSWORD", SUPERUSER_PASSWORD)
            .env("FLEETFORM_TEST_REPL_PASSWORD", user_password)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        for secret in [SUPERUSER_PASSWORD, user_password, "ss \\\\ word"] {
            assert!(
                !text.contains(secret),
                "the publisher's password was printed:\n{text}"
            );
        }
        (output.status.code().unwrap_or(-1), text)
    };
    // The subscription waits for the publication on the other instance.
    let (code, graph) = run(&["graph"]);
    assert_eq!(code, 0, "{graph}");
    assert!(
        graph.contains(&format!(
            "/spec/publications/0 `{publication}` is managed by PostgresPublication/orders@pg-pub"
        )),
        "{graph}"
    );
    let (code, plan) = run(&["plan"]);
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("password='(sensitive)'"), "{plan}");
    let (code, applied) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{applied}");
    let (code, again) = run(&["plan"]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(
        subscriber.psql_on(
            database,
            &format!(
                "SELECT subslotname FROM pg_subscription WHERE subname = {}",
                literal(subscription)
            )
        ),
        "orders_from_pub"
    );
    // The existing row was copied, and new ones arrive.
    publisher.psql_on(
        database,
        &format!("INSERT INTO {qualified} VALUES (2, 'after'), (3, 'also after')"),
    );
    // Bounded, but generous: the whole suite's servers share two cores.
    let count = format!("SELECT count(*) FROM {qualified}");
    assert!(
        subscriber.wait_for_on(database, &count, "3", Duration::from_secs(90)),
        "rows inserted on the publisher never arrived on the subscriber: {} / {}\n{}",
        subscriber.psql_on(database, &count),
        subscriber.psql("SELECT string_agg(subname || ' ' || coalesce(pid::text, 'no worker') || ' ' || coalesce(latest_end_lsn::text, ''), '; ') FROM pg_stat_subscription"),
        subscriber.log_tail(30) + "\n--- publisher ---\n" + &publisher.log_tail(30)
    );
    assert_eq!(
        publisher.psql("SELECT slot_type FROM pg_replication_slots WHERE slot_name = 'standby_1'"),
        "physical"
    );
    // A table added to the publication: the subscription refreshes, in the
    // same apply, and the new table's rows arrive too.
    let second = format!("{}.{}", ident(schema), ident(returns));
    for server in [&publisher, &subscriber] {
        server.psql_on(
            database,
            &format!("CREATE TABLE {second} (id int PRIMARY KEY)"),
        );
    }
    publisher.psql_on(
        database,
        &format!(
            "GRANT SELECT ON {second} TO {}; INSERT INTO {second} VALUES (1), (2)",
            ident(user)
        ),
    );
    std::fs::write(
        environment.join("fleet.yaml"),
        manifests_with("[insert, update, delete, truncate]", &[returns]),
    )
    .unwrap();
    let (code, plan) = run(&["plan"]);
    assert_eq!(code, 2, "{plan}");
    assert!(
        plan.contains(&format!(
            "ALTER SUBSCRIPTION {} REFRESH PUBLICATION;",
            ident(subscription)
        )),
        "{plan}"
    );
    let (code, applied) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{applied}");
    let returned = format!("SELECT count(*) FROM {second}");
    assert!(
        subscriber.wait_for_on(database, &returned, "2", Duration::from_secs(90)),
        "the new table's rows never arrived: {}\n{}",
        subscriber.psql_on(database, &returned),
        subscriber.log_tail(30)
    );
    let (code, again) = run(&["plan"]);
    assert_eq!(code, 0, "{again}");
    // Narrowing the publication is an update in place.
    std::fs::write(environment.join("fleet.yaml"), manifests("[insert]")).unwrap();
    let (code, narrowed) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{narrowed}");
    assert_eq!(
        publisher.psql_on(
            database,
            &format!(
                "SELECT pubinsert, pubdelete FROM pg_publication WHERE pubname = {}",
                literal(publication)
            )
        ),
        "t|f"
    );
    // A subscription disabled by hand is drift.
    subscriber.psql_on(
        database,
        &format!("ALTER SUBSCRIPTION {} DISABLE", ident(subscription)),
    );
    let (code, drift) = run(&["drift"]);
    assert_eq!(code, 3, "{drift}");
    let (code, repaired) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{repaired}");
    assert_eq!(
        subscriber.psql_on(database, "SELECT subenabled FROM pg_subscription"),
        "t"
    );
    // Without slotName, a name that cannot name a slot is refused by plan.
    std::fs::write(
        environment.join("fleet.yaml"),
        manifests("[insert]").replace("  slotName: orders_from_pub\n", ""),
    )
    .unwrap();
    let (code, refused) = run(&["plan"]);
    assert_eq!(code, 1, "{refused}");
    assert!(
        refused.contains("is not a valid replication slot name"),
        "{refused}"
    );
}

#[test]
fn hostile_identifiers_in_every_database_module() {
    let owner = "own'er\"; DROP ROLE postgres; --";
    let grantee = "数据库 reader; --";
    let schema_name = "sch\"ema; DROP SCHEMA public; --";
    let publication = "pub'; DROP PUBLICATION x; --";
    let prefix = "%m [%p] it's; -- \"q\" \\ ü ";
    let quoted = |text: &str| serde_json::to_string(text).unwrap();
    let manifests = [
        role("owner", &format!("  name: {}\n", quoted(owner))),
        role("reader", &format!("  name: {}\n", quoted(grantee))),
        membership("reader-in-owner", &format!("  role: {}\n  group: {}\n", quoted(grantee), quoted(owner))),
        database("appdb", &format!("  owner: {}\n", quoted(owner))),
        schema("odd", &format!("  database: appdb\n  name: {}\n  owner: {}\n", quoted(schema_name), quoted(owner))),
        extension("crypto", &format!("  database: appdb\n  name: pgcrypto\n  schema: {}\n", quoted(schema_name))),
        grant("odd-schema", &format!("  role: {}\n  objectType: schema\n  objects: [{}]\n  privileges: [USAGE]\n", quoted(grantee), quoted(schema_name))),
        grant("odd-tables", &format!("  role: {}\n  objectType: table\n  schema: {}\n  privileges: [SELECT]\n", quoted(grantee), quoted(schema_name))),
        default_privileges("odd-defaults", &format!("  owner: {}\n  schema: {}\n  objectType: table\n  role: {}\n  privileges: [SELECT]\n", quoted(owner), quoted(schema_name), quoted(grantee))),
        format!("---\napiVersion: fleetform/v1\nkind: PostgresPublication\nmetadata: {{name: odd-publication}}\nspec:\n  on: {{instances: [pg-test]}}\n  database: appdb\n  name: {}\n  operations: [insert]\n  comment: {}\n", quoted(publication), quoted(owner)),
        settings("odd-settings", &format!("  parameters:\n    log_line_prefix: {}\n", quoted(prefix))),
        role_settings("odd-defaults-in-appdb", &format!("  role: {}\n  database: appdb\n  parameters:\n    application_name: {}\n    search_path: {}\n", quoted(grantee), quoted(prefix), quoted(&format!("\"{schema_name}\", public")))),
        // The user's own SQL is run as written: quotes, dollar quotes,
        // semicolons and a trailing comment in each query.
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresCustomSql\nmetadata: {{name: odd-function, dependsOn: [PostgresSchema/odd]}}\nspec:\n  on: {{instances: [pg-test]}}\n  database: appdb\n  test: {}\n  set: {}\n  drift: {}\n",
            quoted(&format!("SELECT count(*) = 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '{}' AND p.proname = 'note' -- exists?", schema_name.replace('\'', "''"))),
            quoted(&format!(
                "CREATE FUNCTION {s}.note() RETURNS text LANGUAGE sql AS $$SELECT 'it''s; done'$$;
                 CREATE TYPE {s}.\"mo'od; --\" AS ENUM ('calm');
                 CREATE FUNCTION {s}.\"ch\"\"eck; --\"(x {s}.\"mo'od; --\") RETURNS int LANGUAGE sql AS 'SELECT 1'; -- made",
                s = format!("\"{}\"", schema_name.replace('"', "\"\""))
            )),
            quoted("SELECT prosrc FROM pg_proc WHERE proname = 'note' -- body"),
        ),
        // A routine and an argument type with hostile names, made by the SQL above.
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresGrant\nmetadata: {{name: odd-routine, dependsOn: [PostgresCustomSql/odd-function]}}\nspec:\n  on: {{instances: [pg-test]}}\n  database: appdb\n  role: {}\n  objectType: function\n  schema: {}\n  objects: [{}]\n  privileges: [EXECUTE]\n",
            quoted(grantee),
            quoted(schema_name),
            quoted("ch\"eck; --"),
        ),
    ]
    .concat();
    let server = PostgresServer::start_with(&["wal_level=logical"]);
    let fleet = Fleet::with_connection(server, "", &manifests);
    fleet.expect(&["apply", "--auto-approve"], 0);
    let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let check = |sql: String, expected: &str| {
        assert_eq!(fleet.server.psql_on("appdb", &sql), expected, "{sql}")
    };
    check(
        format!(
            "SELECT pg_has_role({}, {}, 'MEMBER')",
            literal(grantee),
            literal(owner)
        ),
        "t",
    );
    check(
        format!(
            "SELECT pg_get_userbyid(nspowner) = {} FROM pg_namespace WHERE nspname = {}",
            literal(owner),
            literal(schema_name)
        ),
        "t",
    );
    check(
        format!(
            "SELECT n.nspname = {} FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'",
            literal(schema_name)
        ),
        "t",
    );
    check(
        format!(
            "SELECT has_schema_privilege({}, (SELECT oid FROM pg_namespace WHERE nspname = {}), 'USAGE')",
            literal(grantee),
            literal(schema_name)
        ),
        "t",
    );
    check(
        format!(
            "SELECT count(*) FROM pg_publication WHERE pubname = {}",
            literal(publication)
        ),
        "1",
    );
    // A table the owner creates later reaches the grantee through the default privileges.
    fleet.server.psql_on(
        "appdb",
        &format!(
            "SET ROLE \"{}\"; CREATE TABLE \"{}\".t (id int)",
            owner.replace('"', "\"\""),
            schema_name.replace('"', "\"\"")
        ),
    );
    check(
        format!(
            "SELECT has_table_privilege({}, (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = 't'), 'SELECT')",
            literal(grantee),
            literal(schema_name)
        ),
        "t",
    );
    assert_eq!(
        fleet
            .server
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"),
        "1"
    );
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"
        ),
        "1"
    );
    assert_eq!(fleet.server.psql("SHOW log_line_prefix"), prefix.trim_end());
    check(
        format!("SELECT \"{}\".note()", schema_name.replace('"', "\"\"")),
        "it's; done",
    );
    // Read from the ACL: PUBLIC may execute it anyway.
    check(
        format!(
            "SELECT EXISTS (SELECT 1 FROM pg_proc p, aclexplode(p.proacl) a WHERE p.proname = 'ch\"eck; --' AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = {}))",
            literal(grantee)
        ),
        "t",
    );
    fleet.expect(&["plan"], 0);
}

fn role_settings(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: fleetform/v1\nkind: PostgresRoleSettings\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n{body}"
    )
}

/// Issue 13, gap 1: session defaults of a role, a database and a role in
/// one database (pg_db_role_setting) are set, changed, compared in the
/// parameter's unit, repaired after a change by hand, and reset with
/// --prune when they leave the manifests; defaults no manifest names are
/// left alone.
#[test]
fn role_and_database_settings_converge_drift_and_prune() {
    let manifests = |app: &str, with_database: bool| {
        let mut text = [
            role("app", "  login: true\n"),
            database("appdb", ""),
            role_settings(
                "app-defaults",
                &format!("  role: app\n  parameters:\n{app}"),
            ),
            role_settings(
                "app-in-appdb",
                "  role: app\n  database: appdb\n  parameters:\n    statement_timeout: 5s\n",
            ),
        ]
        .concat();
        if with_database {
            text += &role_settings(
                "appdb-defaults",
                "  database: appdb\n  parameters:\n    work_mem: 64MB\n",
            );
        }
        text
    };
    let stored = |fleet: &Fleet| {
        fleet.server.psql(
            "SELECT string_agg(entry, ' | ' ORDER BY entry COLLATE \"C\")
             FROM (SELECT coalesce(r.rolname, '*') || '/' || coalesce(d.datname, '*') || ' '
                          || array_to_string(s.setconfig, ';') AS entry
                   FROM pg_db_role_setting s
                   LEFT JOIN pg_roles r ON r.oid = s.setrole
                   LEFT JOIN pg_database d ON d.oid = s.setdatabase) entries",
        )
    };
    let fleet = Fleet::new(&manifests(
        "    statement_timeout: 30s\n    search_path: app, public\n",
        true,
    ));
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned
            .contains("ALTER ROLE \"app\" IN DATABASE \"appdb\" SET \"statement_timeout\" = '5s';"),
        "{planned}"
    );
    assert!(
        planned.contains("ALTER ROLE \"app\" SET \"search_path\" = 'app', 'public';"),
        "{planned}"
    );
    assert!(
        planned.contains("ALTER DATABASE \"appdb\" SET \"work_mem\" = '64MB';"),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        stored(&fleet),
        "*/appdb work_mem=64MB | app/* statement_timeout=30s;search_path=app, public | app/appdb statement_timeout=5s"
    );
    fleet.expect(&["plan"], 0);

    // An update shows the value it replaces.
    fleet.write(&manifests(
        "    statement_timeout: 45s\n    search_path: app, public\n",
        true,
    ));
    let planned = fleet.expect(&["plan"], 2);
    assert!(planned.contains("value: \"30s\" -> \"45s\""), "{planned}");
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);

    // The same amount in another unit is no change; another value, or a
    // default removed by hand, is drift that apply repairs.
    fleet
        .server
        .psql("ALTER DATABASE appdb SET work_mem = '65536kB'");
    fleet.expect(&["drift"], 0);
    fleet.server.psql(
        "ALTER ROLE app SET statement_timeout = '10s'; ALTER ROLE app IN DATABASE appdb RESET statement_timeout",
    );
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresRoleSettings/app-defaults@pg-test"),
        "{drift}"
    );
    assert!(
        drift.contains("PostgresRoleSettings/app-in-appdb@pg-test"),
        "{drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert!(
        stored(&fleet).contains("app/* statement_timeout=45s;search_path=app, public"),
        "{}",
        stored(&fleet)
    );
    fleet.expect(&["plan"], 0);

    // A default set by hand that no manifest names is never touched; what
    // left the manifests is reset with --prune only.
    fleet.server.psql("ALTER ROLE app SET lock_timeout = '1s'");
    fleet.write(&manifests("    statement_timeout: 45s\n", false));
    fleet.expect(&["plan"], 0);
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(
        pruned.contains("ALTER ROLE \"app\" RESET \"search_path\";"),
        "{pruned}"
    );
    assert!(
        pruned.contains("ALTER DATABASE \"appdb\" RESET \"work_mem\";"),
        "{pruned}"
    );
    assert!(!pruned.contains("lock_timeout"), "{pruned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        stored(&fleet),
        "app/* statement_timeout=45s;lock_timeout=1s | app/appdb statement_timeout=5s"
    );
    fleet.expect(&["plan", "--prune"], 0);
}

/// Parameters a session cannot set, and names the server does not know,
/// are refused by plan with the reason.
#[test]
fn role_settings_the_server_cannot_take_are_refused_by_plan() {
    let fleet = Fleet::new(
        &[
            role("app", ""),
            role_settings(
                "app-defaults",
                "  role: app\n  parameters:\n    shared_buffers: 1GB\n    statment_timeout: 5s\n    lock_timeout: 1s\n",
            ),
            role_settings(
                "app-locks",
                "  role: app\n  parameters:\n    lock_timeout: 2s\n",
            ),
            settings("one", "  parameters:\n    work_mem: 8MB\n"),
            settings("two", "  parameters:\n    work_mem: 16MB\n"),
        ]
        .concat(),
    );
    let planned = fleet.expect(&["plan"], 1);
    assert!(
        planned.contains("is not a parameter a session can set"),
        "{planned}"
    );
    assert!(planned.contains("its context is postmaster"), "{planned}");
    assert!(
        planned.contains(
            "statment_timeout for role app in every database is not a parameter of this server"
        ),
        "{planned}"
    );
    for twice in [
        "lock_timeout for role app in every database (also set by PostgresRoleSettings/app-defaults@pg-test)",
        "work_mem (also set by PostgresSettings/one@pg-test)",
    ] {
        assert!(planned.contains(twice), "{twice}: {planned}");
    }
}

/// Issue 13, gap 2: a subscription's owner, its WITH options (those of the
/// server's version) and the publisher connection's connect_timeout and
/// application_name are created, changed in place, repaired after a change
/// by hand, and the next plan is empty; options the server's version does
/// not have are refused at plan.
#[test]
fn subscription_owner_options_and_connection_parameters_converge() {
    let publisher = PostgresServer::start_with(&["wal_level=logical"]);
    let subscriber = PostgresServer::start();
    let version: u32 = subscriber.psql("SHOW server_version_num").parse().unwrap();
    for server in [&publisher, &subscriber] {
        server.psql("CREATE DATABASE shop");
        server.psql_on("shop", "CREATE TABLE orders (id int PRIMARY KEY)");
    }
    publisher.psql("CREATE ROLE repl LOGIN REPLICATION PASSWORD 'repl-secret'");
    publisher.psql_on(
        "shop",
        "GRANT SELECT ON orders TO repl; CREATE PUBLICATION orders FOR TABLE orders",
    );
    let repository = tempfile::tempdir().unwrap();
    let environment = repository.path().join("environments/test");
    std::fs::create_dir_all(&environment).unwrap();
    std::fs::write(
        environment.join("environment.yaml"),
        "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: test}\nspec:\n  connectionDefaults:\n    postgres:\n      user: postgres\n      password: {fromEnv: FLEETFORM_TEST_PG_PASSWORD}\n      sslMode: disable\n",
    )
    .unwrap();
    let write = |options: &str| {
        std::fs::write(
            environment.join("fleet.yaml"),
            format!(
                "apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: local}}\nspec: {{host: 127.0.0.1, os: linux, connection: {{method: local}}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: pg-sub}}\nspec: {{server: local, port: {port}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: sub_owner}}\nspec:\n  on: {{instances: [pg-sub]}}\n  superuser: true\n  login: true\n\
---\napiVersion: fleetform/v1\nkind: PostgresSubscription\nmetadata: {{name: eu_orders}}\nspec:\n  on: {{instances: [pg-sub]}}\n  database: shop\n  publisher: {{host: 127.0.0.1, port: {publisher_port}, database: shop, user: repl, sslMode: disable, connectTimeout: 10, applicationName: eu_apply}}\n  password: {{fromEnv: FLEETFORM_TEST_REPL_PASSWORD}}\n  publications: [orders]\n{options}",
                port = subscriber.port,
                publisher_port = publisher.port,
            ),
        )
        .unwrap();
    };
    let run = |arguments: &[&str], code: i32| {
        let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
            .args(arguments)
            .args(["-e", "test", "--repo"])
            .arg(repository.path())
            .env("FLEETFORM_TEST_PG_PASSWORD", SUPERUSER_PASSWORD)
            .env("FLEETFORM_TEST_REPL_PASSWORD", "repl-secret")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{arguments:?}: {text}");
        assert!(
            !text.contains("repl-secret"),
            "the password was printed: {text}"
        );
        text
    };
    let newer = if version >= 160000 {
        "  origin: none\n"
    } else {
        ""
    };
    // disableOnError only once the subscription runs: a transient error of
    // its first start (the suite's servers share two cores) must not
    // disable it.
    let options = |commit: &str, binary: bool, disable_on_error: bool| {
        format!(
            "  owner: sub_owner\n  synchronousCommit: {commit}\n  binary: {binary}\n  streaming: on\n  disableOnError: {disable_on_error}\n{newer}"
        )
    };
    write(&options("local", true, false));
    let planned = run(&["plan"], 2);
    assert!(
        planned.contains("\"synchronous_commit\" = 'local', \"binary\" = TRUE, \"streaming\" = 'on', \"disable_on_error\" = FALSE"),
        "{planned}"
    );
    assert!(
        planned.contains("connect_timeout=''10'' application_name=''eu_apply''"),
        "{planned}"
    );
    run(&["apply", "--auto-approve"], 0);
    run(&["plan"], 0);
    let stored = || {
        subscriber.psql_on(
            "shop",
            "SELECT pg_get_userbyid(subowner) || ' ' || subsynccommit || ' ' || subbinary || ' ' || subdisableonerr
             FROM pg_subscription WHERE subname = 'eu_orders'",
        )
    };
    assert_eq!(stored(), "sub_owner local true false");
    if version >= 160000 {
        assert_eq!(
            subscriber.psql_on("shop", "SELECT suborigin FROM pg_subscription"),
            "none"
        );
    }
    // The publisher sees the connection under its application_name.
    assert!(
        publisher.wait_for(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'eu_apply'",
            "1",
            Duration::from_secs(90)
        ),
        "{}\n{}\n--- publisher ---\n{}",
        publisher.psql("SELECT string_agg(application_name, ', ') FROM pg_stat_replication"),
        subscriber.log_tail(30),
        publisher.log_tail(30)
    );

    // Changed in place.
    write(&options("off", false, true));
    let planned = run(&["plan"], 2);
    assert!(
        planned.contains("ALTER SUBSCRIPTION \"eu_orders\" SET (\"synchronous_commit\" = 'off', \"binary\" = FALSE, \"disable_on_error\" = TRUE);"),
        "{planned}"
    );
    run(&["apply", "--auto-approve"], 0);
    assert_eq!(stored(), "sub_owner off false true");
    run(&["plan"], 0);

    // Changed by hand: drift, repaired.
    subscriber.psql_on(
        "shop",
        "ALTER SUBSCRIPTION eu_orders SET (disable_on_error = false); ALTER SUBSCRIPTION eu_orders OWNER TO postgres",
    );
    let drift = run(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresSubscription/eu_orders@pg-sub"),
        "{drift}"
    );
    run(&["apply", "--auto-approve"], 0);
    assert_eq!(stored(), "sub_owner off false true");
    run(&["plan"], 0);

    // What this server's version does not have is refused at plan.
    if version < 160000 {
        write(&(options("off", false, true) + "  origin: none\n"));
        let refused = run(&["plan"], 1);
        assert!(
            refused.contains("sets origin, which subscriptions have from PostgreSQL 16"),
            "{refused}"
        );
    }

    // Left the manifests: dropped with --prune only, its slot with it.
    std::fs::write(
        environment.join("fleet.yaml"),
        format!(
            "apiVersion: fleetform/v1\nkind: Server\nmetadata: {{name: local}}\nspec: {{host: 127.0.0.1, os: linux, connection: {{method: local}}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {{name: pg-sub}}\nspec: {{server: local, port: {port}}}\n\
---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: sub_owner}}\nspec:\n  on: {{instances: [pg-sub]}}\n  superuser: true\n  login: true\n",
            port = subscriber.port,
        ),
    )
    .unwrap();
    run(&["plan"], 0);
    let pruned = run(&["plan", "--prune"], 2);
    assert!(
        pruned.contains("DROP SUBSCRIPTION \"eu_orders\";"),
        "{pruned}"
    );
    run(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        subscriber.psql_on("shop", "SELECT count(*) FROM pg_subscription"),
        "0"
    );
    assert_eq!(
        publisher.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'eu_orders'"),
        "0"
    );
    run(&["plan", "--prune"], 0);
}

/// Issue 13, gap 2: a publication's owner, column lists (in the manifest's
/// order, whatever the table's), schemas published whole and
/// publish_via_partition_root are created, changed in place (a column list
/// by taking the table out and in again, in one transaction), repaired
/// after changes by hand, and pruned; every second plan is empty.
#[test]
fn publication_owner_columns_and_schemas_converge_drift_and_prune() {
    let publication = |name: &str, body: &str| {
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresPublication\nmetadata: {{name: {name}}}\nspec:\n  on: {{instances: [pg-test]}}\n  database: shop\n  owner: pub_owner\n{body}"
        )
    };
    let manifests = |crm: &str, whole: &str, with_publication: bool| {
        let mut text = role("pub_owner", "  superuser: true\n");
        if with_publication {
            text += &publication("crm", crm);
            text += &publication("whole", whole);
        }
        text
    };
    let first = (
        "  tables: [{schema: public, table: customers, columns: [name, id, email]}, {schema: public, table: notes, where: 'id > 10 AND id < 1000'}]\n  publishViaPartitionRoot: true\n",
        "  schemas: [sales]\n",
    );
    let fleet = Fleet::with_connection(
        PostgresServer::start_with(&["wal_level=logical"]),
        "",
        &manifests(first.0, first.1, true),
    );
    fleet.server.psql("CREATE DATABASE shop");
    fleet.server.psql_on(
        "shop",
        "CREATE SCHEMA sales; CREATE SCHEMA archive;
         CREATE TABLE customers (id int PRIMARY KEY, name text, email text, secret text);
         CREATE TABLE notes (id int PRIMARY KEY);
         CREATE TABLE sales.orders (id int PRIMARY KEY)",
    );
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned.contains("CREATE PUBLICATION \"crm\" FOR TABLE \"public\".\"customers\" (\"name\", \"id\", \"email\"), \"public\".\"notes\" WHERE (id > 10 AND id < 1000) WITH (publish = 'insert, update, delete, truncate', publish_via_partition_root = TRUE);"),
        "{planned}"
    );
    assert!(
        planned.contains("CREATE PUBLICATION \"whole\" FOR TABLES IN SCHEMA \"sales\" WITH"),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.expect(&["plan"], 0);
    let published = || {
        fleet.server.psql_on(
            "shop",
            "SELECT pg_get_userbyid(p.pubowner) || ' ' || p.pubviaroot || ' | '
                    || coalesce((SELECT string_agg(r.prrelid::regclass::text || coalesce(' (' || (SELECT string_agg(a.attname, ',' ORDER BY a.attnum)
                                                                                  FROM pg_attribute a
                                                                                  WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs)) || ')', '')
                                                                   || coalesce(' where ' || pg_get_expr(r.prqual, r.prrelid), ''),
                                          ', ' ORDER BY r.prrelid::regclass::text)
                        FROM pg_publication_rel r WHERE r.prpubid = p.oid), '') || ' | '
                    || coalesce((SELECT string_agg(n.nspname, ',' ORDER BY n.nspname)
                                 FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid
                                 WHERE pn.pnpubid = p.oid), '')
             FROM pg_publication p WHERE p.pubname IN ('crm', 'whole') ORDER BY p.pubname",
        )
    };
    assert_eq!(
        published(),
        "pub_owner true | customers (id,name,email), notes where ((id > 10) AND (id < 1000)) | \npub_owner false |  | sales"
    );

    // Changed in place.
    let second = (
        "  tables: [{schema: public, table: customers, columns: [id, name]}, {schema: public, table: notes, where: 'id > 20'}]\n",
        "  schemas: [archive]\n",
    );
    fleet.write(&manifests(second.0, second.1, true));
    let planned = fleet.expect(&["plan"], 2);
    for statement in [
        "ALTER PUBLICATION \"crm\" DROP TABLE \"public\".\"customers\";",
        "ALTER PUBLICATION \"crm\" ADD TABLE \"public\".\"customers\" (\"id\", \"name\");",
        "ALTER PUBLICATION \"crm\" DROP TABLE \"public\".\"notes\";",
        "ALTER PUBLICATION \"crm\" ADD TABLE \"public\".\"notes\" WHERE (id > 20);",
        "ALTER PUBLICATION \"whole\" DROP TABLES IN SCHEMA \"sales\";",
        "ALTER PUBLICATION \"whole\" ADD TABLES IN SCHEMA \"archive\";",
        "publish_via_partition_root = FALSE",
    ] {
        assert!(planned.contains(statement), "{statement}: {planned}");
    }
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        published(),
        "pub_owner false | customers (id,name), notes where (id > 20) | \npub_owner false |  | archive"
    );
    fleet.expect(&["plan"], 0);

    // Changed by hand: drift, repaired.
    fleet.server.psql_on(
        "shop",
        "ALTER PUBLICATION crm OWNER TO postgres; ALTER PUBLICATION whole ADD TABLES IN SCHEMA sales;
         ALTER PUBLICATION crm SET TABLE customers (id, name, secret), notes WHERE (id > 5)",
    );
    let drift = fleet.expect(&["drift"], 3);
    assert!(
        drift.contains("drifted PostgresPublication/crm@pg-test")
            && drift.contains("drifted PostgresPublication/whole@pg-test"),
        "{drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(
        published(),
        "pub_owner false | customers (id,name), notes where (id > 20) | \npub_owner false |  | archive"
    );
    fleet.expect(&["plan"], 0);

    // Pruned once it leaves the manifests.
    fleet.write(&manifests("", "", false));
    fleet.expect(&["plan"], 0);
    let pruned = fleet.expect(&["plan", "--prune"], 2);
    assert!(pruned.contains("DROP PUBLICATION \"crm\";"), "{pruned}");
    assert!(pruned.contains("DROP PUBLICATION \"whole\";"), "{pruned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet
            .server
            .psql_on("shop", "SELECT count(*) FROM pg_publication"),
        "0"
    );
    fleet.expect(&["plan", "--prune"], 0);
}

/// Issue 13, gap 3: `password: null` leaves a role without a password (one
/// set by hand is drift, removed again); `passwordVerifier` sets a SCRAM
/// verifier computed elsewhere exactly as given, compares it exactly and
/// never shows it; a secret that is not a verifier, both fields at once,
/// and a password pasted into the manifest are refused without echoing it.
#[test]
fn roles_without_a_password_or_with_a_given_verifier_converge() {
    let fleet = Fleet::new("");
    // A verifier made by a server, as a password manager or another
    // server would hand it over.
    fleet.server.psql(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE scratch PASSWORD 'given-elsewhere'",
    );
    let verifier = fleet
        .server
        .psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scratch'");
    fleet.server.psql("DROP ROLE scratch");
    assert!(verifier.starts_with("SCRAM-SHA-256$"), "{verifier}");
    let secrets = fleet.repository.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("verifier"), &verifier).unwrap();
    std::fs::write(secrets.join("not-a-verifier"), "hunter2-in-a-file").unwrap();
    let manifests = [
        role("nopass", "  login: true\n  password: null\n"),
        role(
            "hashed",
            "  login: true\n  passwordVerifier: {fromFile: secrets/verifier}\n",
        ),
    ]
    .concat();
    fleet.write(&manifests);
    let stored = |name: &str| {
        fleet.server.psql(&format!(
            "SELECT coalesce(rolpassword, '(none)') FROM pg_authid WHERE rolname = '{name}'"
        ))
    };
    let planned = fleet.expect(&["plan"], 2);
    assert!(planned.contains("PASSWORD NULL"), "{planned}");
    assert!(
        !planned.contains(&verifier),
        "the verifier was shown: {planned}"
    );
    let applied = fleet.expect(&["apply", "--auto-approve"], 0);
    assert!(
        !applied.contains(&verifier),
        "the verifier was shown: {applied}"
    );
    assert_eq!(stored("nopass"), "(none)");
    assert_eq!(stored("hashed"), verifier);
    fleet.expect(&["plan"], 0);

    // Passwords set by hand: drift on both, repaired.
    fleet
        .server
        .psql("ALTER ROLE nopass PASSWORD 'by hand'; ALTER ROLE hashed PASSWORD 'also by hand'");
    let drift = fleet.expect(&["drift"], 3);
    for address in ["PostgresRole/nopass@pg-test", "PostgresRole/hashed@pg-test"] {
        assert!(drift.contains(&format!("drifted {address}")), "{drift}");
    }
    assert!(
        !drift.contains(&verifier),
        "the verifier was shown: {drift}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(stored("nopass"), "(none)");
    assert_eq!(stored("hashed"), verifier);
    fleet.expect(&["plan"], 0);

    // Changed: the verifier's role loses its password, the other gets one.
    fleet.write(
        &[
            role(
                "nopass",
                "  login: true\n  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n",
            ),
            role("hashed", "  login: true\n  password: null\n"),
        ]
        .concat(),
    );
    let planned = fleet.expect(&["plan"], 2);
    assert!(
        planned.contains("ALTER ROLE \"hashed\" WITH PASSWORD NULL;"),
        "{planned}"
    );
    fleet.expect(&["apply", "--auto-approve"], 0);
    assert_eq!(stored("hashed"), "(none)");
    assert!(
        stored("nopass").starts_with("SCRAM-SHA-256$"),
        "{}",
        stored("nopass")
    );
    fleet.expect(&["plan"], 0);

    // A secret that is not a verifier is refused, not sent as a password.
    fleet.write(&role(
        "hashed",
        "  login: true\n  passwordVerifier: {fromFile: secrets/not-a-verifier}\n",
    ));
    let refused = fleet.expect(&["plan"], 1);
    assert!(
        refused.contains("is not a SCRAM-SHA-256 verifier"),
        "{refused}"
    );
    assert!(
        !refused.contains("hunter2"),
        "the secret was shown: {refused}"
    );

    // Both at once, or a password pasted into the manifest: invalid, and
    // the pasted value is never echoed.
    fleet.write(&role(
        "hashed",
        "  password: {fromEnv: FLEETFORM_TEST_APP_PASSWORD}\n  passwordVerifier: {fromFile: secrets/verifier}\n",
    ));
    let invalid = fleet.expect(&["validate"], 1);
    assert!(
        invalid.contains("give the password or its verifier, not both"),
        "{invalid}"
    );
    fleet.write(&role("hashed", "  password: pasted-hunter2\n"));
    let invalid = fleet.expect(&["validate"], 1);
    assert!(invalid.contains("/spec/password"), "{invalid}");
    assert!(
        !invalid.contains("pasted-hunter2"),
        "the password was echoed: {invalid}"
    );
}

/// Issue 13, gap 4: a schema that still holds objects is refused by a
/// prune, naming them; with `dropCascade: true` applied before it left the
/// manifests, the prune drops it with them, marked destructive.
#[test]
fn a_schema_with_objects_is_pruned_with_cascade_only_when_declared() {
    let manifests = |cascade: bool| {
        [
            database("appdb", ""),
            schema("keep", "  database: appdb\n"),
            schema(
                "scratch",
                &format!("  database: appdb\n  dropCascade: {cascade}\n"),
            ),
        ]
        .concat()
    };
    let fleet = Fleet::new(&manifests(false));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.server.psql_on(
        "appdb",
        "CREATE TABLE scratch.t1 (id int); CREATE VIEW scratch.v1 AS SELECT 1 AS one;
         CREATE TABLE keep.t2 (id int)",
    );
    let without_scratch = [database("appdb", ""), schema("keep", "  database: appdb\n")].concat();

    // Without dropCascade: refused, naming what it holds.
    fleet.write(&without_scratch);
    let refused = fleet.expect(&["plan", "--prune"], 1);
    assert!(
        refused.contains("PostgresSchema scratch holds table scratch.t1, view scratch.v1"),
        "{refused}"
    );
    assert!(
        refused.contains("or set dropCascade: true on it and apply that before removing it"),
        "{refused}"
    );

    // Declared and applied, then removed: pruned with what it holds.
    fleet.write(&manifests(true));
    fleet.expect(&["apply", "--auto-approve"], 0);
    fleet.write(&without_scratch);
    let planned = fleet.expect(&["plan", "--prune"], 2);
    assert!(
        planned.contains("DROP SCHEMA \"scratch\" CASCADE;"),
        "{planned}"
    );
    assert!(planned.contains("[destructive]"), "{planned}");
    fleet.expect(&["apply", "--auto-approve", "--prune"], 0);
    assert_eq!(
        fleet.server.psql_on(
            "appdb",
            "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('keep', 'scratch')"
        ),
        "keep"
    );
    assert_eq!(
        fleet
            .server
            .psql_on("appdb", "SELECT count(*) FROM keep.t2"),
        "0"
    );
    fleet.expect(&["plan", "--prune"], 0);
}

/// Issue 18, acceptance: `plan --base` on three real servers reads only the
/// instances a change touches (counted in each server's connection log): an
/// edited role reads its one instance; a label that brings an instance into
/// a group plans the group's role there and reads that instance too; a role
/// removed from the manifests is listed and dropped only with --prune.
#[test]
fn plan_base_reads_only_the_instances_a_change_touches() {
    let servers: Vec<PostgresServer> = (0..3)
        .map(|_| PostgresServer::start_with(&["log_connections=on"]))
        .collect();
    let repository = tempfile::tempdir().unwrap();
    let environment = repository.path().join("environments/test");
    std::fs::create_dir_all(&environment).unwrap();
    std::fs::write(
        environment.join("environment.yaml"),
        "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: test}\nspec:\n  connectionDefaults:\n    postgres:\n      user: postgres\n      password: {fromEnv: FLEETFORM_TEST_PG_PASSWORD}\n      sslMode: disable\n      connectTimeoutSeconds: 5\n",
    )
    .unwrap();
    let version = common::postgres::major_version();
    let mut inventory = String::from(
        "apiVersion: fleetform/v1\nkind: Server\nmetadata: {name: local}\nspec: {host: 127.0.0.1, os: linux, connection: {method: local}}\n---\napiVersion: fleetform/v1\nkind: Group\nmetadata: {name: web}\nspec:\n  matchLabels: {tier: web}\n",
    );
    let mut manifests = String::from(
        "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {name: shared}\nspec:\n  on: {group: web}\n  login: false\n",
    );
    for (index, server) in servers.iter().enumerate() {
        let number = index + 1;
        let tier = if number == 3 { "batch" } else { "web" };
        inventory.push_str(&format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata:\n  name: pg-{number}\n  labels: {{tier: {tier}}}\nspec: {{server: local, port: {}, version: {version}}}\n",
            server.port
        ));
        manifests.push_str(&format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {{name: app-{number}}}\nspec:\n  on: {{instances: [pg-{number}]}}\n  name: app_{number}\n  connectionLimit: 10\n"
        ));
    }
    std::fs::write(environment.join("inventory.yaml"), &inventory).unwrap();
    std::fs::write(environment.join("manifests.yaml"), &manifests).unwrap();
    common::git::commit_all(repository.path(), "fleet");

    let run = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
            .args(arguments)
            .args(["-e", "test", "--progress", "off", "--repo"])
            .arg(repository.path())
            .env("FLEETFORM_TEST_PG_PASSWORD", SUPERUSER_PASSWORD)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let connections = || -> Vec<usize> {
        servers
            .iter()
            .map(|server| server.log().matches("connection received").count())
            .collect()
    };
    // A plan against HEAD with `edits` in the working tree: which servers
    // it connected to, and the JSON plan.
    let plan_since_head = |extra: &[&str]| {
        let before = connections();
        let mut arguments = vec!["plan", "--base", "HEAD", "--format", "json"];
        arguments.extend(extra);
        let (code, stdout, stderr) = run(&arguments);
        assert!(code == 0 || code == 2, "{code}: {stdout}{stderr}");
        let after = connections();
        let read: Vec<usize> = (0..3)
            .filter(|server| after[*server] > before[*server])
            .map(|server| server + 1)
            .collect();
        let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        (read, plan)
    };
    let addresses = |plan: &serde_json::Value, action: &str| -> Vec<String> {
        plan["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|change| change["action"] == action)
            .map(|change| change["address"].as_str().unwrap().to_string())
            .collect()
    };

    let (read, plan) = plan_since_head(&[]);
    assert_eq!(read, Vec::<usize>::new(), "nothing changed: {plan:#}");

    // One role on pg-2.
    std::fs::write(
        environment.join("manifests.yaml"),
        manifests.replacen(
            "  name: app_2\n  connectionLimit: 10\n",
            "  name: app_2\n  connectionLimit: 5\n",
            1,
        ),
    )
    .unwrap();
    let (read, plan) = plan_since_head(&[]);
    assert_eq!(read, [2], "{plan:#}");
    assert_eq!(addresses(&plan, "update"), ["PostgresRole/app-2@pg-2"]);

    // pg-3 labelled into the group: the group's role is planned there.
    std::fs::write(
        environment.join("inventory.yaml"),
        inventory.replacen("  labels: {tier: batch}\n", "  labels: {tier: web}\n", 1),
    )
    .unwrap();
    let (read, plan) = plan_since_head(&[]);
    assert_eq!(read, [2, 3], "{plan:#}");
    assert_eq!(addresses(&plan, "create"), ["PostgresRole/shared@pg-3"]);
    let why: Vec<&str> = plan["scope"]["included"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["address"] == "PostgresRole/shared@pg-3")
        .map(|entry| entry["why"].as_str().unwrap())
        .collect();
    assert_eq!(why, ["PostgresRole/shared now selects pg-3"], "{plan:#}");

    // app-1 removed: listed, never dropped without --prune.
    let without_app_1 = {
        let text = std::fs::read_to_string(environment.join("manifests.yaml")).unwrap();
        let start = text
            .find("---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {name: app-1}")
            .unwrap();
        let end = start + 4 + text[start + 4..].find("---\n").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    };
    std::fs::write(environment.join("manifests.yaml"), without_app_1).unwrap();
    let (read, plan) = plan_since_head(&[]);
    assert_eq!(read, [2, 3], "{plan:#}");
    assert_eq!(
        plan["scope"]["removed"],
        serde_json::json!(["PostgresRole/app-1@pg-1"]),
        "{plan:#}"
    );
    assert_eq!(addresses(&plan, "delete"), Vec::<String>::new());
    let (read, plan) = plan_since_head(&["--prune"]);
    assert_eq!(read, [1, 2, 3], "{plan:#}");
    assert_eq!(
        addresses(&plan, "delete"),
        ["PostgresRole[app_1]@pg-1"],
        "{plan:#}"
    );
    assert!(
        servers[0]
            .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'app_1'")
            .trim()
            == "1",
        "a plan drops nothing"
    );
}
