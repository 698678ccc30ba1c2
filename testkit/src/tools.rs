//! Third-party test tools kept in `~/.cache/spr` (or `$SPR_CACHE`): the Python venv that
//! `deploy/local/install.sh` prepares, with pinned packages installed on first use.

use std::path::PathBuf;
use std::process::Command;

/// `~/.cache/spr`, or `$SPR_CACHE`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("SPR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/spr")
        })
}

/// What a finished process wrote: its stdout, then its stderr.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The stdout of a finished process, as text; panics with its stderr unless it
/// succeeded.
pub fn successful_stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Runs `command` and panics, saying `what` failed and how to get the material another
/// way, unless it succeeds.
pub fn run_step(command: &mut Command, what: &str) {
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

/// The Python of the test venv with `packages` (each pinned as `name==version`)
/// installed; creates the venv and installs what is missing, once.
pub fn python_with(packages: &[&str]) -> PathBuf {
    let venv = cache_dir().join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run_step(
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
        run_step(
            Command::new(&python)
                .args(["-m", "pip", "install", "-q"])
                .args(&missing),
            "installing test packages from PyPI",
        );
    }
    python
}
