//! The deployment artefacts in deploy/ (compose file, Kubernetes manifests) against the
//! workspace they deploy: deploy/check_manifests.py parses every YAML document and checks
//! binaries, flags, SPR_* variables, replication and projector sharding. Also proves the
//! check fails on a flag no binary defines and on a replication factor below 3.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spr_testkit::tools::{output_text, python_with};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit is inside the workspace")
        .to_path_buf()
}

/// Runs the checker over `deploy_dir` against this workspace's sources.
fn check(deploy_dir: &Path) -> Output {
    let root = repo_root();
    Command::new(python_with(&["PyYAML==6.0.4"]))
        .arg(root.join("deploy/check_manifests.py"))
        .arg(&root)
        .arg(deploy_dir)
        .output()
        .expect("the venv's python runs")
}

/// A copy of deploy/'s YAML files with `old` replaced by `new` in `file`.
fn altered_copy(file: &str, old: &str, new: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    for sub in ["compose", "k8s"] {
        let from = repo_root().join("deploy").join(sub);
        std::fs::create_dir_all(copy.path().join(sub)).expect("dir");
        for entry in std::fs::read_dir(&from).expect("deploy dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
                let mut body = std::fs::read_to_string(&path).expect("yaml");
                if name == file {
                    assert!(body.contains(old), "{file} no longer contains {old:?}");
                    body = body.replacen(old, new, 1);
                }
                std::fs::write(copy.path().join(&name), body).expect("write copy");
            }
        }
    }
    copy
}

#[test]
fn the_deployment_artefacts_match_the_binaries() {
    let output = check(&repo_root().join("deploy"));
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("0 problems"),
        "unexpected report: {}",
        output_text(&output)
    );
}

/// Checks a copy of deploy/ with `old` replaced by `new` in `file`: the check must fail
/// and report each of `expected`.
fn assert_reported(file: &str, old: &str, new: &str, expected: &[&str]) {
    let copy = altered_copy(file, old, new);
    let output = check(copy.path());
    let report = output_text(&output);
    assert!(!output.status.success(), "{report}");
    for problem in expected {
        assert!(report.contains(problem), "{problem:?} not in: {report}");
    }
}

#[test]
fn a_flag_no_binary_defines_is_reported() {
    assert_reported(
        "k8s/projection.yaml",
        "--metrics-addr",
        "--metrics-address",
        &["spr-projector has no flag --metrics-address"],
    );
}

#[test]
fn a_broker_setting_that_is_not_about_security_is_reported() {
    assert_reported(
        "k8s/config.yaml",
        "SPR_KAFKA_SASL_MECHANISM:",
        "SPR_KAFKA_ACKS: \"1\"\n  SPR_KAFKA_SASL_MECHANISM:",
        &["SPR_KAFKA_ACKS is read by no SPR binary"],
    );
}

#[test]
fn a_replication_factor_below_three_is_reported() {
    assert_reported(
        "compose/compose.yaml",
        "KAFKA_MIN_INSYNC_REPLICAS: \"2\"",
        "KAFKA_MIN_INSYNC_REPLICAS: \"1\"",
        &["KAFKA_MIN_INSYNC_REPLICAS is '1', expected 2"],
    );
}

#[test]
fn a_sharded_projector_beside_the_api_is_reported() {
    assert_reported(
        "k8s/projection.yaml",
        "\"--metrics-addr\", \"0.0.0.0:9464\"]",
        "\"--metrics-addr\", \"0.0.0.0:9464\", \"--instance\", \"0\", \"--instances\", \"3\"]",
        &[
            "--instances 3 but replicas 2",
            "a pod that serves the API must project every partition",
        ],
    );
}
