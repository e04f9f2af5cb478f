//! The real binary, run as a user would: exit codes, formats, --ref, schema export.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn fleetform(arguments: &[&str], directory: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(arguments)
        .current_dir(directory)
        .env_remove("FLEETFORM_ENV")
        .output()
        .expect("the fleetform binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A repository on disk holding the demo environment, to break in tests.
fn demo_copy() -> tempfile::TempDir {
    let directory = tempfile::tempdir().unwrap();
    let source = common::repository_root().join("environments/demo");
    let target = directory.path().join("environments/demo");
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
    }
    directory
}

#[test]
fn validate_accepts_the_demo_with_exit_0() {
    let output = fleetform(&["validate", "-e", "demo"], &common::repository_root());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).starts_with("valid: "),
        "{}",
        stdout(&output)
    );
}

#[test]
fn validate_reports_file_line_column_and_exits_1() {
    let repository = demo_copy();
    std::fs::write(
        repository.path().join("environments/demo/broken.yaml"),
        "apiVersion: fleetform/v1\nkind: PostgresRole\nmetadata:\n  name: broken\nspec:\n  on: {instances: [pg-demo]}\n  logn: true\n",
    )
    .unwrap();
    let output = fleetform(&["validate", "-e", "demo"], repository.path());
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("error: unknown key `logn`"), "{text}");
    assert!(
        text.contains("--> environments/demo/broken.yaml:7:3 (PostgresRole/broken /spec/logn)"),
        "{text}"
    );
    assert!(text.contains("hint: did you mean `login`?"), "{text}");
    assert!(text.contains("invalid: 1 error"), "{text}");
}

#[test]
fn validate_json_is_machine_readable() {
    let repository = demo_copy();
    std::fs::write(
        repository.path().join("environments/demo/broken.yaml"),
        "apiVersion: fleetform/v1\nkind: PostgresRole\nmetadata:\n  name: broken\nspec:\n  on: {instances: [pg-missing]}\n",
    )
    .unwrap();
    let output = fleetform(
        &["validate", "-e", "demo", "--format", "json"],
        repository.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["valid"], false);
    let first = &document["diagnostics"][0];
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], "environments/demo/broken.yaml");
    assert_eq!(first["line"], 6);
    assert_eq!(first["pointer"], "/spec/on/instances/0");
    assert_eq!(first["object"], "PostgresRole/broken");
}

#[test]
fn an_unknown_environment_is_an_error_with_a_suggestion() {
    let output = fleetform(&["validate", "-e", "dmeo"], &common::repository_root());
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("environment `dmeo` not found"), "{text}");
    assert!(text.contains("did you mean `demo`?"), "{text}");
}

#[test]
fn graph_renders_text_dot_mermaid_and_json() {
    let root = common::repository_root();
    let text = fleetform(&["graph", "-e", "demo"], &root);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    assert!(
        stdout(&text).contains("needs PostgresInstance/pg-demo (runs on PostgresInstance/pg-demo)"),
        "{}",
        stdout(&text)
    );
    let dot = stdout(&fleetform(
        &["graph", "-e", "demo", "--format", "dot"],
        &root,
    ));
    assert!(dot.starts_with("digraph fleetform {"), "{dot}");
    let mermaid = stdout(&fleetform(
        &["graph", "-e", "demo", "--format", "mermaid"],
        &root,
    ));
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    let json: serde_json::Value = serde_json::from_slice(
        &fleetform(&["graph", "-e", "demo", "--format", "json"], &root).stdout,
    )
    .unwrap();
    assert!(
        json["resources"]
            .as_array()
            .is_some_and(|resources| !resources.is_empty())
    );
}

#[test]
fn graph_target_keeps_the_resource_and_its_dependencies() {
    let root = common::repository_root();
    let output = fleetform(
        &[
            "graph", "-e", "demo", "--target", "Server", "--format", "json",
        ],
        &root,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let kinds: Vec<&str> = json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| resource["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["Server"]);
    let missing = fleetform(&["graph", "-e", "demo", "--target", "Nothing/here"], &root);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no resource matches --target Nothing/here"));
}

#[test]
fn validate_reads_a_git_revision_without_a_checkout() {
    let repository = demo_copy();
    common::git::commit_all(repository.path(), "demo");
    // Break the working tree only: HEAD stays valid.
    std::fs::write(
        repository.path().join("environments/demo/broken.yaml"),
        "kind: [\n",
    )
    .unwrap();
    let working_tree = fleetform(&["validate", "-e", "demo"], repository.path());
    assert_eq!(working_tree.status.code(), Some(1));
    assert!(
        stdout(&working_tree).contains("YAML syntax error"),
        "{}",
        stdout(&working_tree)
    );
    let at_head = fleetform(
        &["validate", "-e", "demo", "--ref", "HEAD"],
        repository.path(),
    );
    assert_eq!(
        at_head.status.code(),
        Some(0),
        "{}{}",
        stdout(&at_head),
        stderr(&at_head)
    );
    let bad_revision = fleetform(
        &["validate", "-e", "demo", "--ref", "no-such-branch"],
        repository.path(),
    );
    assert_eq!(bad_revision.status.code(), Some(1));
    assert!(
        stderr(&bad_revision).contains("git revision `no-such-branch` not found"),
        "{}",
        stderr(&bad_revision)
    );
}

#[test]
fn schema_lists_prints_and_exports() {
    let root = common::repository_root();
    let list = stdout(&fleetform(&["schema"], &root));
    for kind in [
        "Server",
        "AvailabilityGroup",
        "PostgresHaCluster",
        "BackupPolicy",
    ] {
        assert!(list.contains(kind), "{list}");
    }
    let one = fleetform(&["schema", "AvailabilityGroup"], &root);
    let schema: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(schema["title"], "AvailabilityGroup");
    let unknown = fleetform(&["schema", "AvailabilityGrop"], &root);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("did you mean `AvailabilityGroup`?"),
        "{}",
        stderr(&unknown)
    );
    let directory = tempfile::tempdir().unwrap();
    let export = fleetform(
        &["schema", "--export", directory.path().to_str().unwrap()],
        &root,
    );
    assert_eq!(export.status.code(), Some(0));
    assert!(directory.path().join("fleetform.schema.json").is_file());
    assert!(
        directory
            .path()
            .join("availability-group.schema.json")
            .is_file()
    );
}

#[test]
fn help_lists_only_commands_that_exist() {
    let help = stdout(&fleetform(&["--help"], &common::repository_root()));
    for command in [
        "validate", "plan", "apply", "drift", "import", "discover", "graph", "schema",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(command)),
            "{help}"
        );
    }
    assert!(
        !help
            .lines()
            .any(|line| line.trim_start().starts_with("status")),
        "{help}"
    );
}

#[test]
fn prune_cannot_be_combined_with_target() {
    let output = fleetform(
        &["plan", "-e", "demo", "--prune", "--target", "PostgresRole"],
        &common::repository_root(),
    );
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("cannot be combined with --target"), "{text}");
}

/// Issue 19, finding 16: a mistyped flag is an error (1), never 2, which
/// `plan` uses for "changes pending" and CI recipes let through.
#[test]
fn a_usage_error_exits_1_and_help_exits_0() {
    let root = common::repository_root();
    for arguments in [
        &["plan", "-e", "demo", "--prnue"][..],
        &["aply"][..],
        &["plan", "-e"][..],
    ] {
        let output = fleetform(arguments, &root);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{arguments:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).is_empty(), "{arguments:?} says why");
    }
    let help = fleetform(&["plan", "--help"], &root);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("--prune"));
    assert_eq!(fleetform(&["--version"], &root).status.code(), Some(0));
}

/// Issue 18, item 3: an unset secret that every instance's connection
/// needs is said once, each instance it stops once with the number of its
/// resources not planned, and a role's own unset password once for both
/// roles; the JSON plan keeps the cause on every blocked resource.
#[test]
fn an_unset_secret_is_said_once_for_every_target_it_stops() {
    let root = common::repository_root();
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_fleetform"))
            .args(["plan", "-e", "example-pg-ha", "--format", format])
            .current_dir(&root)
            .env_remove("FLEETFORM_ENV")
            .env_remove("FLEETFORM_PG_PASSWORD")
            .env_remove("FLEETFORM_ORDERS_APP_PASSWORD")
            .output()
            .unwrap()
    };
    let human = run("human");
    assert_eq!(human.status.code(), Some(1), "{}", stderr(&human));
    let text = stdout(&human);
    let cause = "the secret's environment variable FLEETFORM_PG_PASSWORD is not set";
    assert_eq!(text.matches(cause).count(), 1, "{text}");
    assert_eq!(
        text.matches("FLEETFORM_ORDERS_APP_PASSWORD is not set")
            .count(),
        1,
        "{text}"
    );
    for target in ["pg-monitor-main", "pg-node-1-main", "pg-node-2-main"] {
        assert_eq!(
            text.matches(&format!("\n  {target}: cannot connect"))
                .count(),
            1,
            "{target}: {text}"
        );
    }
    assert!(
        text.contains("user fleetform): reading its password (3 resources not planned)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  PostgresRole/orders-app@pg-node-1-main: password of orders_app\n"),
        "{text}"
    );
    assert!(text.contains("8 blocked"), "{text}");

    let json = run("json");
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let blocked: Vec<&serde_json::Value> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change.get("blocked").is_some())
        .collect();
    assert_eq!(blocked.len(), 8, "{plan:#}");
    for change in blocked {
        assert!(
            change["cause"].as_str().unwrap().ends_with("is not set"),
            "{change:#}"
        );
        assert!(
            change["blocked"]["message"]
                .as_str()
                .unwrap()
                .ends_with("is not set"),
            "{change:#}"
        );
    }
    assert_eq!(plan["target_errors"].as_array().unwrap().len(), 3);
    assert_eq!(plan["target_errors"][0]["cause"], cause);
}

/// Issue 18, item 3: three instances that refuse connections are one
/// error, each instance named once under it, never one per resource.
#[test]
fn instances_that_refuse_connections_are_one_error() {
    let directory = tempfile::tempdir().unwrap();
    let environment = directory.path().join("environments/fleet");
    std::fs::create_dir_all(&environment).unwrap();
    std::fs::write(
        environment.join("environment.yaml"),
        "apiVersion: fleetform/v1\nkind: Environment\nmetadata:\n  name: fleet\nspec:\n  connectionDefaults:\n    postgres:\n      user: fleetform\n      password: {fromEnv: FLEETFORM_TEST_FLEET_PASSWORD}\n      sslMode: disable\n      connectTimeoutSeconds: 2\n",
    )
    .unwrap();
    let mut manifests = String::new();
    for name in ["pg-a", "pg-b", "pg-c"] {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        manifests.push_str(&format!(
            "---\napiVersion: fleetform/v1\nkind: Server\nmetadata:\n  name: {name}-host\nspec:\n  host: 127.0.0.1\n---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata:\n  name: {name}\nspec:\n  server: {name}-host\n  port: {port}\n  version: 15\n"
        ));
        for role in ["app", "report"] {
            manifests.push_str(&format!(
                "---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata:\n  name: {role}-{name}\nspec:\n  on: {{instances: [{name}]}}\n  name: {role}\n"
            ));
        }
    }
    std::fs::write(environment.join("fleet.yaml"), manifests).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["plan", "-e", "fleet", "--repo"])
        .arg(directory.path())
        .env_remove("FLEETFORM_ENV")
        .env("FLEETFORM_TEST_FLEET_PASSWORD", "unused")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    assert_eq!(text.matches("error:").count(), 1, "{text}");
    for name in ["pg-a", "pg-b", "pg-c"] {
        assert_eq!(
            text.matches(&format!("PostgresInstance {name} ")).count(),
            1,
            "{name}: {text}"
        );
        assert!(
            text.contains(&format!(
                "\n  {name}: cannot connect to PostgresInstance {name} (127.0.0.1:"
            )),
            "{text}"
        );
    }
    assert_eq!(
        text.matches("(2 resources not planned)").count(),
        3,
        "{text}"
    );
    assert!(!text.contains("PostgresRole/"), "{text}");
}

/// Issue 18, item 5: the completion scripts parse in their shells, and
/// bash completes commands and a command's flags from the CLI definition.
#[test]
fn completion_scripts_parse_and_complete_commands_and_flags() {
    let root = common::repository_root();
    let directory = tempfile::tempdir().unwrap();
    for (shell, check) in [
        ("bash", vec!["bash", "-n"]),
        ("zsh", vec!["zsh", "-n"]),
        ("fish", vec!["fish", "--no-execute"]),
    ] {
        let output = fleetform(&["completions", shell], &root);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let path = directory.path().join(format!("fleetform.{shell}"));
        std::fs::write(&path, &output.stdout).unwrap();
        let parsed = Command::new(check[0])
            .args(&check[1..])
            .arg(&path)
            .output()
            .unwrap_or_else(|error| panic!("{} runs: {error}", check[0]));
        assert!(
            parsed.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
        let script = stdout(&output);
        for word in ["plan", "apply", "drift", "completions", "prune", "env"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let complete = |words: &[&str]| {
        let output = Command::new("bash")
            .arg(root.join("tests/completion/complete.bash"))
            .arg(directory.path().join("fleetform.bash"))
            .arg("_fleetform")
            .args(words)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    let commands = complete(&["fleetform", "dr"]);
    assert_eq!(commands.trim(), "drift", "{commands}");
    let flags = complete(&["fleetform", "plan", "--pru"]);
    assert_eq!(flags.trim(), "--prune", "{flags}");
}

/// Issue 18, item 5: the manual pages render without groff warnings, and
/// there is one per command.
#[test]
fn manual_pages_render_one_per_command() {
    let root = common::repository_root();
    let page = fleetform(&["manpage"], &root);
    assert_eq!(page.status.code(), Some(0), "{}", stderr(&page));
    let rendered = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), &page.stdout)?;
            child.wait_with_output()
        })
        .expect("groff runs");
    assert!(rendered.status.success());
    assert_eq!(String::from_utf8_lossy(&rendered.stderr), "");
    assert!(
        stdout(&page).contains(".TH fleetform 1"),
        "{}",
        stdout(&page)
    );

    let directory = tempfile::tempdir().unwrap();
    let output = fleetform(
        &["manpage", "--out", directory.path().to_str().unwrap()],
        &root,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let help = stdout(&fleetform(&["--help"], &root));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .collect();
    assert!(commands.len() >= 10, "{help}");
    for command in commands {
        let path = directory.path().join(format!("fleetform-{command}.1"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert!(
            text.contains(&format!(".TH fleetform-{command} 1")),
            "{text}"
        );
    }
}

/// Issue 18, item 4: the workflow teams copy passes actionlint, and the
/// same check finds a job that needs one that does not exist.
#[test]
fn the_example_workflow_passes_actionlint() {
    let root = common::repository_root();
    let lint = |file: &Path| {
        Command::new("bash")
            .arg(root.join("scripts/actionlint.sh"))
            .arg(file)
            .output()
            .expect("bash runs")
    };
    let workflow = root.join("examples/github-actions/fleetform.yml");
    let clean = lint(&workflow);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}{}",
        stdout(&clean),
        stderr(&clean)
    );
    let directory = tempfile::tempdir().unwrap();
    let broken = directory.path().join("fleetform.yml");
    let text = std::fs::read_to_string(&workflow).unwrap();
    assert!(text.contains("\n  apply:\n"), "{text}");
    std::fs::write(
        &broken,
        text.replace("\n  apply:\n", "\n  apply:\n    needs: [plann]\n"),
    )
    .unwrap();
    let finding = lint(&broken);
    assert_eq!(finding.status.code(), Some(1), "{}", stderr(&finding));
    assert!(
        stdout(&finding).contains("needs job \"plann\" which does not exist"),
        "{}",
        stdout(&finding)
    );
}

/// Every `1.23 s` of a progress line as `N s`: the lines without their timings.
fn without_timings(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(position) = rest.find(" s") {
        let (head, tail) = rest.split_at(position);
        let number = head
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |index| index + 1);
        if number < head.len() && head[number..].contains('.') {
            out.push_str(&head[..number]);
            out.push('N');
        } else {
            out.push_str(head);
        }
        out.push_str(" s");
        rest = &tail[2..];
    }
    out.push_str(rest);
    out
}

/// Issue 18, item 2: off a terminal, progress is plain lines on stderr
/// (JSON lines with --log-format json), one per phase event and per target;
/// the plan on stdout is the same with progress on or off.
#[test]
fn progress_lines_off_a_terminal_leave_the_plan_alone() {
    let root = common::repository_root();
    let quiet = fleetform(&["plan", "-e", "example-mssql", "--progress", "off"], &root);
    assert_eq!(quiet.status.code(), Some(2), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "");
    // Not a terminal here: auto means plain lines.
    let plain = fleetform(&["plan", "-e", "example-mssql"], &root);
    assert_eq!(plain.status.code(), Some(2), "{}", stderr(&plain));
    assert_eq!(stdout(&plain), stdout(&quiet));
    // Targets are read in parallel: their lines within a phase, sorted.
    let mut lines: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for line in without_timings(&stderr(&plain)).lines() {
        let phase_line = line.contains(": started (") || line.contains(": done, ");
        if phase_line {
            run.sort();
            lines.append(&mut run);
            lines.push(line.to_string());
        } else {
            // Which target finished first varies, and so does its count.
            let masked = match line.rsplit_once(" (") {
                Some((head, tail)) => match tail.split_once('/') {
                    Some((_, rest)) => format!("{head} (n/{rest}"),
                    None => line.to_string(),
                },
                None => line.to_string(),
            };
            run.push(masked);
        }
    }
    run.sort();
    lines.append(&mut run);
    insta::assert_snapshot!("progress_plain", lines.join("\n"));

    let json = fleetform(
        &["plan", "-e", "example-mssql", "--log-format", "json"],
        &root,
    );
    assert_eq!(stdout(&json), stdout(&quiet));
    let events: Vec<serde_json::Value> = stderr(&json)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}")))
        .collect();
    let summary: Vec<(String, Option<String>, String)> = events
        .iter()
        .map(|event| {
            assert!(event["elapsed_seconds"].is_number(), "{event}");
            assert!(event["timestamp"].is_string(), "{event}");
            (
                event["progress"].as_str().unwrap().to_string(),
                event["target"].as_str().map(str::to_string),
                event["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 6, "{summary:?}");
    assert!(summary.contains(&(
        "discovering".into(),
        Some("sql-a".into()),
        "read from its snapshot".into()
    )));
    assert_eq!(
        summary.last().unwrap(),
        &(
            "planning".into(),
            None,
            "done, 10 to change, 4 unchanged, 0 blocked".into()
        )
    );
}

/// A git repository holding a copy of `environments/<name>` (with its
/// snapshots), committed once.
fn committed_copy(name: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let repository = tempfile::tempdir().unwrap();
    copy(
        &common::repository_root().join("environments").join(name),
        &repository.path().join("environments").join(name),
    );
    common::git::commit_all(repository.path(), name);
    repository
}

/// Edit one manifest file of a committed copy in the working tree.
fn edit(repository: &Path, file: &str, from: &str, to: &str) {
    let path = repository.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} holds {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// `plan --base HEAD --format json` in `repository`: exit code and plan.
fn plan_since_head(repository: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut arguments = vec![
        "plan",
        "-e",
        "example-mssql",
        "--base",
        "HEAD",
        "--format",
        "json",
        "--progress",
        "off",
    ];
    arguments.extend(extra);
    let output = fleetform(&arguments, repository);
    let plan = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}{}", stdout(&output), stderr(&output)));
    (output.status.code().unwrap(), plan)
}

fn strings(value: &serde_json::Value, field: &str) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry[field].as_str().unwrap().to_string())
        .collect()
}

/// Issue 18, item 1, planned from recorded discovery: `--base` plans what
/// an edit touches and reads only its targets; an edited instance brings
/// every resource on it and nothing of the other; a removed object is
/// listed, and pruning it plans the whole environment; no edit, no plan.
#[test]
fn plan_base_plans_only_what_changed_and_reads_only_its_targets() {
    let repository = committed_copy("example-mssql");
    let root = repository.path();
    let (code, plan) = plan_since_head(root, &[]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["scope"]["included"], serde_json::json!([]), "{plan:#}");
    assert_eq!(plan["resource_changes"], serde_json::json!([]));
    assert_eq!(plan["targets"], serde_json::json!({}));

    // One login, on both instances.
    edit(
        root,
        "environments/example-mssql/sql-config.yaml",
        "    - VIEW SERVER STATE\n",
        "    - VIEW SERVER PERFORMANCE STATE\n    - VIEW SERVER STATE\n",
    );
    let (code, plan) = plan_since_head(root, &[]);
    assert_eq!(code, 2, "{plan:#}");
    assert_eq!(
        plan["scope"]["changed_objects"],
        serde_json::json!([{"address": "SqlLogin/monitoring", "why": "edited"}])
    );
    let planned = strings(&plan["resource_changes"], "address");
    assert_eq!(
        planned,
        ["SqlLogin/monitoring@sql-a", "SqlLogin/monitoring@sql-b"],
        "{plan:#}"
    );
    let human = stdout(&fleetform(
        &[
            "plan",
            "-e",
            "example-mssql",
            "--base",
            "HEAD",
            "--progress",
            "off",
        ],
        root,
    ));
    assert!(
        human.contains("\n  planned SqlLogin/monitoring@sql-b: SqlLogin/monitoring was edited\n"),
        "{human}"
    );

    // The instance sql-a itself: everything on it, nothing on sql-b.
    edit(
        root,
        "environments/example-mssql/inventory.yaml",
        "  name: sql-a\n  labels:\n",
        "  name: sql-a\n  labels:\n    owner: dba\n",
    );
    let (_, plan) = plan_since_head(root, &[]);
    let planned = strings(&plan["resource_changes"], "address");
    let why: std::collections::BTreeMap<String, String> = plan["scope"]["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["address"].as_str().unwrap().to_string(),
                entry["why"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for address in [
        "SqlDatabase/sales-db@sql-a",
        "SqlEndpoint/hadr-endpoint@sql-a",
    ] {
        assert!(
            planned.iter().any(|planned| planned == address),
            "{planned:?}"
        );
    }
    assert_eq!(why["SqlInstance/sql-a"], "SqlInstance/sql-a was edited");
    // On sql-b only what the availability group both share brings, and the
    // login edited before; sql-b's own databases and endpoint are not planned.
    assert_eq!(
        why["AvailabilityGroup/ag-sales@sql-b"], "it depends on SqlInstance/sql-a",
        "{why:#?}"
    );
    for address in [
        "SqlDatabase/sales-db@sql-b",
        "SqlEndpoint/hadr-endpoint@sql-b",
    ] {
        assert!(
            !planned.iter().any(|planned| planned == address),
            "{planned:?}"
        );
        assert!(!why.contains_key(address), "{why:#?}");
    }

    // An object removed: listed, pruned only with --prune, which reads everything.
    edit(
        root,
        "environments/example-mssql/sql-config.yaml",
        "  name: '${var.ad_netbios}\\SQL-DBA'\n  type: windowsGroup\n  serverRoles: [sysadmin]\n",
        "  name: '${var.ad_netbios}\\SQL-DBA'\n  type: windowsGroup\n  serverRoles: [sysadmin]\n  removedByTest: true\n",
    );
    let text =
        std::fs::read_to_string(root.join("environments/example-mssql/sql-config.yaml")).unwrap();
    let start = text
        .find("kind: SqlLogin\nmetadata:\n  name: dba-team\n")
        .unwrap();
    let end = start
        + text[start..].find("removedByTest: true\n").unwrap()
        + "removedByTest: true\n---\n".len();
    let start = text[..start].rfind("apiVersion:").unwrap();
    std::fs::write(
        root.join("environments/example-mssql/sql-config.yaml"),
        format!("{}{}", &text[..start], &text[end..]),
    )
    .unwrap();
    let (_, plan) = plan_since_head(root, &[]);
    let removed: Vec<&str> = plan["scope"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|address| address.as_str().unwrap())
        .collect();
    assert_eq!(
        removed,
        ["SqlLogin/dba-team@sql-a", "SqlLogin/dba-team@sql-b"],
        "{plan:#}"
    );
    assert!(
        plan["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|change| change["action"] != "delete"),
        "{plan:#}"
    );
    let (_, plan) = plan_since_head(root, &["--prune"]);
    assert!(
        plan["scope"]["everything"]
            .as_str()
            .unwrap()
            .starts_with("--prune with resources removed since HEAD"),
        "{plan:#}"
    );
    let targets: Vec<&String> = plan["targets"].as_object().unwrap().keys().collect();
    assert_eq!(targets, ["sql-a", "sql-b"], "{plan:#}");
}

/// Issue 18, item 3 in the pull-request comment and in drift: the unset
/// connection secret is one error there too, each instance under it once.
#[test]
fn the_comment_and_drift_say_a_shared_cause_once() {
    let root = common::repository_root();
    let cause = "the secret's environment variable FLEETFORM_PG_PASSWORD is not set";
    for arguments in [
        &["plan", "-e", "example-pg-ha", "--format", "markdown"][..],
        &["drift", "-e", "example-pg-ha"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_fleetform"))
            .args(arguments)
            .current_dir(&root)
            .env_remove("FLEETFORM_ENV")
            .env_remove("FLEETFORM_PG_PASSWORD")
            .env_remove("FLEETFORM_ORDERS_APP_PASSWORD")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{arguments:?}");
        let text = stdout(&output);
        assert_eq!(text.matches(cause).count(), 1, "{arguments:?}: {text}");
        for target in ["pg-monitor-main", "pg-node-1-main", "pg-node-2-main"] {
            assert_eq!(
                text.matches(&format!("PostgresInstance {target} ")).count(),
                1,
                "{arguments:?} {target}: {text}"
            );
        }
    }
}

/// `--base` is refused with `--target`, and with a saved plan (the plan
/// already holds its scope).
#[test]
fn base_is_refused_with_target_and_with_a_saved_plan() {
    let root = common::repository_root();
    let output = fleetform(
        &[
            "plan",
            "-e",
            "example-mssql",
            "--base",
            "HEAD",
            "--target",
            "SqlLogin",
        ],
        &root,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("--base plans what changed since a revision and --target names what to plan"),
        "{}",
        stderr(&output)
    );
    let directory = tempfile::tempdir().unwrap();
    let plan = directory.path().join("plan.json");
    let saved = fleetform(
        &[
            "plan",
            "-e",
            "example-mssql",
            "--progress",
            "off",
            "--out",
            plan.to_str().unwrap(),
        ],
        &root,
    );
    assert_eq!(saved.status.code(), Some(2), "{}", stderr(&saved));
    let output = fleetform(
        &[
            "apply",
            plan.to_str().unwrap(),
            "-e",
            "example-mssql",
            "--base",
            "HEAD",
        ],
        &root,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--base are part of the plan"),
        "{}",
        stderr(&output)
    );
}
