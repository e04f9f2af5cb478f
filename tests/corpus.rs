//! The broken-manifest corpus: every case under tests/corpus/invalid must
//! produce at least one error, and its diagnostics are snapshot-tested.
//! Every example environment must validate without errors or warnings.

mod common;

use fleetform::diagnostics::Severity;
use fleetform::source::ManifestSource;

#[test]
fn broken_manifests_produce_the_expected_diagnostics() {
    let mut cases = 0;
    insta::glob!("corpus/invalid/*", |path| {
        cases += 1;
        let check = common::check_memory(common::corpus_repository(path), "case");
        assert!(
            check
                .diagnostics
                .iter()
                .any(|diagnostic| diagnostic.severity == Severity::Error),
            "{} produced no error:\n{}",
            path.display(),
            common::render(&check)
        );
        assert!(check.fleet.is_none(), "{} was accepted", path.display());
        for diagnostic in &check.diagnostics {
            assert!(
                diagnostic.file.is_some(),
                "{}: diagnostic without a file: {diagnostic:?}",
                path.display()
            );
        }
        insta::assert_snapshot!(common::render(&check));
    });
    assert!(
        cases >= 30,
        "the corpus must hold at least 30 cases, found {cases}"
    );
}

#[test]
fn the_corpus_base_alone_is_valid() {
    let files: std::collections::BTreeMap<String, String> =
        common::corpus_repository(&common::repository_root().join("tests/corpus/base"))
            .into_iter()
            .filter(|(path, _)| {
                !path.starts_with("environments/case/") || path.ends_with("environment.yaml")
            })
            .collect();
    let check = common::check_memory(files, "case");
    assert!(check.is_valid(), "{}", common::render(&check));
}

#[test]
fn every_example_environment_validates_clean() {
    let root = common::repository_root();
    let source = ManifestSource::directory(&root).unwrap();
    let names = fleetform::ops::load::environment_names(&source);
    for expected in ["demo", "example-mssql", "example-pg-ha"] {
        assert!(
            names.contains(&expected.to_string()),
            "missing environment {expected}: {names:?}"
        );
    }
    for name in names {
        let check = fleetform::ops::check_environment(&source, &name, &common::catalog());
        assert!(
            check.is_valid(),
            "environment {name}:\n{}",
            common::render(&check)
        );
        assert!(
            check.diagnostics.is_empty(),
            "environment {name} has warnings:\n{}",
            common::render(&check)
        );
        assert!(check.objects > 0, "environment {name} has no objects");
    }
}

#[test]
fn a_password_pasted_into_a_manifest_is_never_echoed() {
    let case =
        common::repository_root().join("tests/corpus/invalid/14-password-written-in-clear.yaml");
    let check = common::check_memory(common::corpus_repository(&case), "case");
    assert!(!check.is_valid());
    let human = common::render(&check);
    let json = serde_json::to_string(&check.diagnostics).unwrap();
    assert!(human.contains("/spec/password"), "{human}");
    assert!(
        !human.contains("hunter2") && !json.contains("hunter2"),
        "{human}"
    );
}
