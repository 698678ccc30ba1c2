//! `spr-audit`: the auditor's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spr_audit_ledger::verify_from_genesis;

/// Verifies the SPR audit ledger.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Walks the hash chain from genesis; prints the head and entry count, or the first
    /// index that does not verify (exit status 1).
    Verify {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify { ledger } => {
            let report = verify_from_genesis(&ledger)?;
            match report.first_failure {
                None => {
                    println!("ok: {} entries verified from genesis", report.entries);
                    println!("head {}", report.head);
                    Ok(ExitCode::SUCCESS)
                }
                Some(failure) => {
                    println!(
                        "FAILED at index {} (byte offset {}): {}",
                        failure.index, failure.file_offset, failure.reason
                    );
                    println!(
                        "entries 0..{} verify; last good head {}",
                        failure.index, report.head
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
