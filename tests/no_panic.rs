//! No input makes fleetform panic: random YAML-like text, random structured
//! documents, and mutations of the real example manifests all go through
//! load → validate → expand → graph. The case counts bound the run time.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;

fn run(manifest: String) {
    let mut files = BTreeMap::new();
    files.insert(
        "environments/case/environment.yaml".to_string(),
        common::CASE_ENVIRONMENT.replace("include: [base]", "include: []"),
    );
    files.insert("environments/case/fuzz.yaml".to_string(), manifest);
    let check = common::check_memory(files, "case");
    // Whatever the input, the run ends in a verdict that agrees with its diagnostics.
    assert_eq!(
        check.is_valid(),
        !check
            .diagnostics
            .iter()
            .any(|diagnostic| diagnostic.is_error())
    );
}

fn yamlish_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("- ".to_string()),
        Just(": ".to_string()),
        Just("---\n".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("|\n".to_string()),
        Just("${var.pg_port}".to_string()),
        Just("${".to_string()),
        Just("!!str ".to_string()),
        Just("kind: PostgresRole\n".to_string()),
        Just("apiVersion: fleetform/v1\n".to_string()),
        Just("metadata:\n  name: x\n".to_string()),
        Just("spec:\n  on: {instances: [pg-1]}\n".to_string()),
        "[a-zA-Z_]{1,8}".prop_map(|word| word),
        "[0-9]{1,4}".prop_map(|digits| digits),
        any::<char>().prop_map(|character| character.to_string()),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|number| serde_json::json!(number)),
        "[ -~]{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("on".to_string()),
                    Just("name".to_string()),
                    Just("instances".to_string()),
                    Just("replicas".to_string()),
                    Just("password".to_string()),
                    Just("dependsOn".to_string()),
                    "[a-z]{1,6}".prop_map(|key| key),
                ],
                inner,
                0..5
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

fn kinds() -> impl Strategy<Value = String> {
    let names: Vec<String> = common::catalog()
        .manifest_kinds()
        .map(|info| info.kind.clone())
        .collect();
    prop::sample::select(names)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_yaml_like_text_never_panics(tokens in prop::collection::vec(yamlish_token(), 0..80)) {
        run(tokens.concat());
    }

    #[test]
    fn random_documents_of_every_kind_never_panic(kind in kinds(), spec in json_value(), metadata in json_value()) {
        let document = serde_json::json!({
            "apiVersion": "fleetform/v1",
            "kind": kind,
            "metadata": metadata,
            "spec": spec,
        });
        // JSON is YAML: feed the document through the YAML loader.
        run(serde_json::to_string(&document).unwrap());
    }

    #[test]
    fn mutated_example_manifests_never_panic(file in 0usize..64, start in 0usize..4000, length in 0usize..40, insert in "[ -~\n]{0,8}") {
        let files = example_files();
        let text = &files[file % files.len()];
        let mut bytes: Vec<char> = text.chars().collect();
        let start = start.min(bytes.len());
        let end = (start + length).min(bytes.len());
        bytes.splice(start..end, insert.chars());
        run(bytes.into_iter().collect());
    }
}

fn example_files() -> Vec<String> {
    let root = common::repository_root().join("environments");
    let mut texts = Vec::new();
    let mut pending = vec![root];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "yaml")
            {
                texts.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    texts.sort();
    texts
}
