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
    /// index that does not verify (exit status 1; 2 when the file cannot be read).
    Verify {
        /// The ledger file.
        #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
        ledger: PathBuf,
    },
}

/// Exit status when the ledger cannot be read at all (missing, not a ledger, I/O).
const UNREADABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify { ledger } => {
            let report = match verify_from_genesis(&ledger) {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("cannot verify: {e}");
                    return ExitCode::from(UNREADABLE);
                }
            };
            match report.first_failure {
                None => {
                    println!("ok: {} entries verified from genesis", report.entries);
                    println!("head {}", report.head);
                    ExitCode::SUCCESS
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
                    ExitCode::from(1)
                }
            }
        }
    }
}
