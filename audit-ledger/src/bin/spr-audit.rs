//! `spr-audit`: the auditor's command line.
//!
//! Exit status: 0 when everything checked verifies, 1 when something does not, 2 when
//! an input cannot be read or is malformed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::json;
use spr_audit_ledger::checkpoint::{
    checkpoint_path, sign_consistent, write_checkpoint_file, CheckpointSigner, CheckpointVerifier,
    VerifiedCheckpoint,
};
use spr_audit_ledger::completeness::{compare, read_access_events_topic, read_break_glass_topic};
use spr_audit_ledger::merkle::{verify_consistency, MerkleTree};
use spr_audit_ledger::report::{
    access_report, fhir_audit_event, AccessReport, ReportedAccess, UnusualVolume, FLAGGED_REASONS,
};
use spr_audit_ledger::{
    load_leaves, load_tree, verify_with_progress, LedgerFollower, VerifyReport,
};
use spr_producers::consume::AssignError;
use spr_schemas::{topics, AccessEvent};

/// Verifies the SPR audit ledger, proves entries, and signs and checks checkpoints.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Print JSON instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Walks the hash chain and Merkle tree from genesis; prints the entry count, chain
    /// head and tree head, or the first index that does not verify.
    Verify {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
    },
    /// Prints the inclusion proof of one entry in the tree of `size` entries.
    Prove {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
        /// Index of the entry (0 is the first).
        #[arg(long)]
        index: u64,
        /// Tree size to prove against (default: the whole ledger).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Prints the consistency proof between two tree sizes.
    ProveConsistency {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
        /// The older size.
        #[arg(long)]
        first: u64,
        /// The newer size (default: the whole ledger).
        #[arg(long)]
        second: Option<u64>,
    },
    /// Checks that every access event on spr.access-events is in the ledger and that
    /// nothing in the ledger is missing from the topic.
    Completeness {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
        /// Kafka bootstrap servers.
        #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// The topic counts as fully read after this long without a new record, in milliseconds.
        #[arg(long, default_value_t = 3_000)]
        idle_ms: u64,
    },
    /// Lists denied requests, break-glass uses, flagged accesses and unusual volumes per
    /// user and per patient.
    Report {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
        /// A volume is unusual only above this many accesses (and above mean + 3 sd).
        #[arg(long, default_value_t = 50)]
        minimum: usize,
    },
    /// Writes one FHIR R4 AuditEvent per ledger entry, as NDJSON on standard output.
    Export {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
        /// FHIR R4 AuditEvent resources (the only format so far).
        #[arg(long, required = true)]
        fhir: bool,
    },
    /// Follows the ledger and prints an alert within seconds for every break-glass use
    /// and flagged access appended from now on (or from genesis with --from-start);
    /// stops with status 1 if the ledger stops verifying.
    Watch {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
        /// How often to look for new entries, in milliseconds.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        /// Alert on entries already in the ledger too.
        #[arg(long)]
        from_start: bool,
    },
    /// Generates a checkpoint signing key: writes DIR/checkpoint.key (secret, mode 0600) and
    /// DIR/checkpoint.vkey (for auditors); never overwrites existing keys.
    Keygen {
        /// The log's origin line, also the key name.
        #[arg(long, default_value = "spr-timeline.local/audit-ledger")]
        origin: String,
        /// Directory for the two files.
        #[arg(long, default_value = ".spr-local/keys")]
        dir: PathBuf,
    },
    /// Signs a checkpoint of the ledger, refusing if it would contradict the last one
    /// signed (kept in LEDGER.checkpoint, which the new checkpoint replaces).
    Checkpoint {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
        /// The private key file written by `keygen`.
        #[arg(long, env = "SPR_CHECKPOINT_KEY")]
        key: PathBuf,
    },
    /// Checks a checkpoint's signature, and with --trusted that it extends a checkpoint
    /// you already trust (a rollback or fork is detected); with --ledger, that the
    /// ledger matches it.
    VerifyCheckpoint {
        /// The checkpoint to check.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The verifier key file (NAME.vkey).
        #[arg(long)]
        key: PathBuf,
        /// A previously trusted checkpoint.
        #[arg(long)]
        trusted: Option<PathBuf>,
        /// The ledger, to compute the consistency proof and compare tree heads.
        #[arg(long, env = "SPR_LEDGER")]
        ledger: Option<PathBuf>,
    },
}

/// A check that ran and failed (exit 1), as opposed to an input that could not be used (exit 2).
#[derive(Debug)]
struct Failed(String);

fn main() -> ExitCode {
    spr_producers::exit_quietly_when_stdout_closes();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(Failed(why))) => {
            println!("FAILED: {why}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<Option<Failed>> {
    match &cli.command {
        Command::Verify { ledger } => {
            let bar = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} verified {pos} entries ({per_sec})",
                )
                .expect("valid template"),
            );
            let report = verify_with_progress(ledger, |n| bar.set_position(n));
            bar.finish_and_clear();
            let report = report.with_context(|| format!("reading {}", ledger.display()))?;
            print_report(cli.json, &report);
            Ok(report.first_failure.map(|f| {
                Failed(format!(
                    "entry {} (byte offset {}): {}",
                    f.index, f.file_offset, f.reason
                ))
            }))
        }
        Command::Prove {
            ledger,
            index,
            size,
        } => {
            let p = verified_tree(ledger)?.prove_inclusion(*index, *size)?;
            if cli.json {
                println!("{}", serde_json::to_string(&p)?);
            } else {
                println!(
                    "entry {} in the tree of {} entries\nleaf hash {}\nroot      {}",
                    p.index, p.tree_size, p.leaf_hash, p.root
                );
                print_hashes(&p.proof);
            }
            Ok(None)
        }
        Command::ProveConsistency {
            ledger,
            first,
            second,
        } => {
            let p = verified_tree(ledger)?.prove_consistency(*first, *second)?;
            if cli.json {
                println!("{}", serde_json::to_string(&p)?);
            } else {
                println!(
                    "tree of {} is a prefix of the tree of {}\nroot {}: {}\nroot {}: {}",
                    p.first, p.second, p.first, p.first_root, p.second, p.second_root
                );
                print_hashes(&p.proof);
            }
            Ok(None)
        }
        Command::Completeness {
            ledger,
            bootstrap,
            idle_ms,
        } => {
            let entries = verified_access_events(ledger)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(spr_producers::admin::check_connection(
                bootstrap,
                spr_producers::admin::STARTUP_CONNECTION_TIMEOUT,
            ))?;
            eprintln!(
                "reading {} and {} from {bootstrap} until each has been idle for {idle_ms} ms ...",
                topics::ACCESS_EVENTS.name,
                topics::BREAK_GLASS.name
            );
            let idle = Duration::from_millis(*idle_ms);
            let (topic, grants) = runtime
                .block_on(async {
                    let topic = read_access_events_topic(bootstrap, idle).await?;
                    Ok::<_, AssignError>((topic, read_break_glass_topic(bootstrap, idle).await?))
                })
                .with_context(|| format!("reading the topics at {bootstrap}"))?;
            let result = compare(&topic, &grants, &entries);
            let list = |ids: &[spr_schemas::EventId]| {
                ids.iter().map(ToString::to_string).collect::<Vec<_>>()
            };
            if cli.json {
                println!(
                    "{}",
                    json!({"on_topic": result.on_topic, "in_ledger": result.in_ledger, "missing_from_ledger": list(&result.missing_from_ledger), "missing_from_topic": list(&result.missing_from_topic), "not_access_events": result.not_access_events, "grants": result.grants, "grants_not_in_ledger": list(&result.grants_not_in_ledger)})
                );
            } else {
                println!("{} access events on the topic, {} entries in the ledger, {} topic records that are not access events", result.on_topic, result.in_ledger, result.not_access_events);
                println!(
                    "{} break-glass grants on {}",
                    result.grants,
                    topics::BREAK_GLASS.name
                );
                for id in result.missing_from_ledger.iter().take(20) {
                    println!("  missing from the ledger: {id}");
                }
                for id in result.missing_from_topic.iter().take(20) {
                    println!("  in the ledger but not on the topic: {id}");
                }
                for id in result.grants_not_in_ledger.iter().take(20) {
                    println!("  break-glass grant not in the ledger as recorded (forged or altered): {id}");
                }
            }
            Ok((!result.is_complete()).then(|| {
                Failed(format!(
                    "{} access events are missing from the ledger, {} ledger entries from the topic, and {} break-glass grants are not in the ledger as recorded",
                    result.missing_from_ledger.len(),
                    result.missing_from_topic.len(),
                    result.grants_not_in_ledger.len()
                ))
            }))
        }
        Command::Report { ledger, minimum } => {
            let report = access_report(&verified_access_events(ledger)?, *minimum);
            print_access_report(cli.json, &report);
            Ok(None)
        }
        Command::Export { ledger, fhir: _ } => {
            for event in verified_access_events(ledger)? {
                println!("{}", fhir_audit_event(&event));
            }
            Ok(None)
        }
        Command::Watch {
            ledger,
            interval_ms,
            from_start,
        } => {
            let mut follower = LedgerFollower::new(ledger);
            let mut index = 0u64;
            if !from_start {
                index = follower
                    .read_new()
                    .with_context(|| format!("reading {}", ledger.display()))?
                    .len() as u64;
            }
            eprintln!("watching {} from entry {index} for break-glass and flagged accesses (Ctrl-C stops)", ledger.display());
            loop {
                let leaves = match follower.read_new() {
                    Ok(leaves) => leaves,
                    Err(e) => {
                        return Ok(Some(Failed(format!(
                            "ALERT the ledger no longer verifies: {e}"
                        ))))
                    }
                };
                for leaf in leaves {
                    let event = AccessEvent::from_avro(&leaf)
                        .with_context(|| format!("ledger entry {index} is not an access event"))?;
                    if let Some(kind) = alert_kind(&event) {
                        print_alert(cli.json, index, kind, &event);
                    }
                    index += 1;
                }
                std::thread::sleep(Duration::from_millis(*interval_ms));
            }
        }
        Command::Keygen { origin, dir } => {
            let signer = CheckpointSigner::generate(origin)?;
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let (key, vkey) = (dir.join("checkpoint.key"), dir.join("checkpoint.vkey"));
            write_new(&key, &(signer.private_key() + "\n"), 0o600)?;
            write_new(&vkey, &(signer.verifier_key() + "\n"), 0o644)?;
            println!(
                "wrote {} (secret) and {} (give this to auditors)",
                key.display(),
                vkey.display()
            );
            Ok(None)
        }
        Command::Checkpoint { ledger, key } => {
            let signer = CheckpointSigner::from_private_key(&read(key)?)?;
            let verifier = CheckpointVerifier::from_verifier_key(&signer.verifier_key())?;
            let (report, tree) =
                load_tree(ledger).with_context(|| format!("reading {}", ledger.display()))?;
            if let Some(f) = report.first_failure {
                return Ok(Some(Failed(format!(
                    "the ledger does not verify at entry {}: {}; not signing",
                    f.index, f.reason
                ))));
            }
            let path = checkpoint_path(ledger);
            let previous = match path.exists() {
                true => Some(
                    verifier
                        .verify(&read(&path)?)
                        .with_context(|| format!("the last checkpoint {}", path.display()))?,
                ),
                false => None,
            };
            match sign_consistent(
                &signer,
                signer.name(),
                &tree,
                report.head,
                previous.as_ref(),
            ) {
                Ok(note) => {
                    write_checkpoint_file(&path, &note)
                        .with_context(|| format!("writing {}", path.display()))?;
                    print!("{note}");
                    Ok(None)
                }
                Err(refused) => Ok(Some(Failed(refused.to_string()))),
            }
        }
        Command::VerifyCheckpoint {
            checkpoint,
            key,
            trusted,
            ledger,
        } => {
            let verifier = CheckpointVerifier::from_verifier_key(&read(key)?)?;
            let new = match verifier.verify(&read(checkpoint)?) {
                Ok(c) => c,
                Err(e) => return Ok(Some(Failed(format!("{}: {e}", checkpoint.display())))),
            };
            let old = trusted
                .as_ref()
                .map(|t| {
                    verifier
                        .verify(&read(t)?)
                        .with_context(|| format!("the trusted checkpoint {}", t.display()))
                })
                .transpose()?;
            let tree = ledger.as_ref().map(|l| verified_tree(l)).transpose()?;
            let outcome = check_checkpoint(&new, old.as_ref(), tree.as_ref());
            if outcome.is_none() {
                let against = [
                    old.as_ref()
                        .map(|o| match tree {
                            Some(_) => format!("extends the trusted checkpoint of {} entries", o.size),
                            None => format!(
                                "is not older than the trusted checkpoint of {} entries (consistency not proven: pass --ledger)",
                                o.size
                            ),
                        }),
                    tree.as_ref().map(|_| "matches the ledger".to_owned()),
                ];
                let also: Vec<String> = against.into_iter().flatten().collect();
                println!(
                    "ok: checkpoint of {} entries signed by {}{}",
                    new.size,
                    new.origin,
                    if also.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", also.join("; "))
                    }
                );
            }
            Ok(outcome)
        }
    }
}

/// Checks a verified checkpoint against a trusted older one and the ledger's tree.
fn check_checkpoint(
    new: &VerifiedCheckpoint,
    old: Option<&VerifiedCheckpoint>,
    tree: Option<&MerkleTree>,
) -> Option<Failed> {
    if let Some(old) = old {
        if old.origin != new.origin {
            return Some(Failed(format!(
                "the checkpoints are of different logs ({} and {})",
                old.origin, new.origin
            )));
        }
        if new.size < old.size {
            return Some(Failed(format!(
                "rollback: the checkpoint has {} entries, fewer than the trusted {}",
                new.size, old.size
            )));
        }
        if new.size == old.size && (new.root != old.root || new.chain_head != old.chain_head) {
            return Some(Failed(format!(
                "fork: two different checkpoints for {} entries",
                new.size
            )));
        }
        if let Some(tree) = tree {
            let proof = match tree.consistency_proof(old.size, new.size) {
                Ok(p) => p,
                Err(e) => return Some(Failed(format!("the ledger cannot prove consistency: {e}"))),
            };
            if !verify_consistency(old.size, new.size, &old.root, &new.root, &proof) {
                return Some(Failed(format!(
                    "fork: the checkpoint of {} entries does not extend the trusted one of {}",
                    new.size, old.size
                )));
            }
        }
    }
    if let Some(tree) = tree {
        if tree.len() < new.size {
            return Some(Failed(format!(
                "rolled back: the ledger holds {} entries but the checkpoint was signed over {}; entries were removed from its end",
                tree.len(),
                new.size
            )));
        }
        if tree.root(new.size).ok() != Some(new.root) {
            return Some(Failed(format!(
                "the ledger's tree head at {} entries differs from the checkpoint's",
                new.size
            )));
        }
    }
    None
}

fn print_hashes(proof: &[spr_audit_ledger::Sha256Digest]) {
    println!("proof ({} hashes):", proof.len());
    proof.iter().for_each(|h| println!("  {h}"));
}

/// Why an access needs a person's attention now, if it does.
fn alert_kind(event: &AccessEvent) -> Option<&'static str> {
    if event.break_glass_reason.is_some() {
        return Some("break-glass");
    }
    event
        .reasons
        .iter()
        .find_map(|r| FLAGGED_REASONS.iter().find(|f| **f == r.as_str()).copied())
}

fn print_alert(json: bool, index: u64, kind: &str, e: &AccessEvent) {
    if json {
        println!(
            "{}",
            json!({"alert": kind, "index": index, "event_id": e.event_id.to_string(), "subject": e.subject.id, "role": e.subject.role,
                   "organisation": e.subject.ods_code, "nhs_number": e.nhs_number.to_string(), "action": e.action,
                   "reasons": e.reasons, "break_glass_reason": e.break_glass_reason})
        );
    } else {
        let why = e
            .break_glass_reason
            .as_deref()
            .map(|b| format!(" reason {b:?}"))
            .unwrap_or_default();
        println!(
            "ALERT {kind} #{index}: {} ({}, {}) {} of {}{why}",
            e.subject.id, e.subject.role, e.subject.ods_code, e.action, e.nhs_number
        );
    }
}

fn verified_access_events(ledger: &Path) -> anyhow::Result<Vec<AccessEvent>> {
    let (report, leaves) =
        load_leaves(ledger).with_context(|| format!("reading {}", ledger.display()))?;
    if let Some(f) = report.first_failure {
        bail!(
            "the ledger does not verify at entry {} ({}); run spr-audit verify",
            f.index,
            f.reason
        );
    }
    leaves
        .iter()
        .enumerate()
        .map(|(index, l)| {
            AccessEvent::from_avro(l)
                .with_context(|| format!("ledger entry {index} is not an access event"))
        })
        .collect()
}

fn print_access_report(json: bool, report: &AccessReport) {
    let rows = |list: &[ReportedAccess]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|r| {
                let e = &r.event;
                json!({"index": r.index, "event_id": e.event_id.to_string(), "subject": e.subject.id, "role": e.subject.role,
                       "organisation": e.subject.ods_code, "nhs_number": e.nhs_number.to_string(), "action": e.action,
                       "reasons": e.reasons, "break_glass_reason": e.break_glass_reason})
            })
            .collect()
    };
    let volumes = |list: &[UnusualVolume]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|v| json!({"who": v.who, "accesses": v.accesses, "threshold": v.threshold}))
            .collect()
    };
    if json {
        println!(
            "{}",
            json!({"entries": report.entries, "denied": rows(&report.denied), "break_glass": rows(&report.break_glass),
                   "flagged": rows(&report.flagged), "sensitive": rows(&report.sensitive), "unusual_users": volumes(&report.unusual_users),
                   "unusual_patients": volumes(&report.unusual_patients)})
        );
        return;
    }
    println!("{} accesses in the ledger", report.entries);
    for (title, list) in [
        ("break-glass", &report.break_glass),
        ("flagged", &report.flagged),
        ("sensitive categories", &report.sensitive),
        ("denied", &report.denied),
    ] {
        println!("\n{title}: {}", list.len());
        for r in list.iter() {
            let e = &r.event;
            let why = e
                .break_glass_reason
                .as_deref()
                .map(|b| format!(" break-glass: {b:?}"))
                .unwrap_or_default();
            println!(
                "  #{} {} {} ({}, {}) read {} of {} [{}]{why}",
                r.index,
                e.occurred_at,
                e.subject.id,
                e.subject.role,
                e.subject.ods_code,
                e.action,
                e.nhs_number,
                e.reasons.join(", ")
            );
        }
    }
    for (title, list) in [
        ("unusual volume per user", &report.unusual_users),
        ("unusual volume per patient", &report.unusual_patients),
    ] {
        println!("\n{title}: {}", list.len());
        for v in list.iter() {
            println!(
                "  {} with {} accesses (threshold {:.1})",
                v.who, v.accesses, v.threshold
            );
        }
    }
}

fn verified_tree(ledger: &Path) -> anyhow::Result<MerkleTree> {
    let (report, tree) =
        load_tree(ledger).with_context(|| format!("reading {}", ledger.display()))?;
    if let Some(f) = report.first_failure {
        bail!(
            "the ledger does not verify at entry {} ({}); run spr-audit verify",
            f.index,
            f.reason
        );
    }
    Ok(tree)
}

fn print_report(json: bool, report: &VerifyReport) {
    if json {
        let failure = report
            .first_failure
            .as_ref()
            .map(|f| json!({"index": f.index, "file_offset": f.file_offset, "reason": f.reason}));
        println!(
            "{}",
            json!({"entries": report.entries, "chain_head": report.head.to_string(), "root": report.root.to_string(), "first_failure": failure})
        );
    } else if report.first_failure.is_none() {
        println!("ok: {} entries verified from genesis", report.entries);
        println!("head {}", report.head);
        println!("root {}", report.root);
    } else {
        println!(
            "entries 0..{} verify; last good head {}",
            report.entries, report.head
        );
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Creates `path` with `text` and Unix `mode`, refusing to replace an existing file.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
