//! `spr-api`: serves the query API, and mints local development keys and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use spr_producers::EventPublisher;
use spr_projector::ProjectionStore;
use spr_query_api::audit_routes::LedgerView;
use spr_query_api::auth::{first_kid, mint_token, Claims, DevKeys, TokenVerifier, AUDIENCE};
use spr_query_api::policy::Role;
use spr_query_api::{router, AppState};

/// The SPR Timeline query API.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Token issuer expected in (and written into) tokens.
    #[arg(
        long,
        env = "SPR_TOKEN_ISSUER",
        default_value = "spr-local-dev",
        global = true
    )]
    issuer: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serves the API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SPR_API_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Kafka bootstrap servers (access events are published here).
        #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// The projector's RocksDB directory (opened read-only as a secondary).
        #[arg(
            long,
            env = "SPR_PROJECTION_DB",
            default_value = ".spr-local/projection"
        )]
        projection_db: PathBuf,
        /// Directory for this API instance's secondary RocksDB files.
        #[arg(
            long,
            env = "SPR_API_SECONDARY_DIR",
            default_value = ".spr-local/api-secondary"
        )]
        secondary_dir: PathBuf,
        /// JWKS file with the keys that sign tokens.
        #[arg(long, env = "SPR_JWKS", default_value = ".spr-local/keys/jwks.json")]
        jwks: PathBuf,
        /// The audit ledger file, for the auditor endpoints (/audit/...).
        #[arg(long, env = "SPR_LEDGER")]
        ledger: Option<PathBuf>,
        /// Longest wait for the broker to acknowledge an access event, in milliseconds.
        #[arg(long, env = "SPR_AUDIT_TIMEOUT_MS", default_value_t = 5_000)]
        audit_timeout_ms: u64,
    },
    /// Generates a development Ed25519 signing key and its JWKS.
    Keygen {
        /// Output directory (signing-key.pem, jwks.json).
        #[arg(long, default_value = ".spr-local/keys")]
        dir: PathBuf,
    },
    /// Mints a development token signed with the key from `keygen`.
    Token {
        /// Directory written by `keygen`.
        #[arg(long, default_value = ".spr-local/keys")]
        dir: PathBuf,
        /// Job role: clinician, nurse, midwife, pharmacist, paramedic, social-worker, administrative, patient.
        #[arg(long, default_value = "clinician")]
        role: String,
        /// Subject id.
        #[arg(long, default_value = "dev-user-0001")]
        sub: String,
        /// Display name.
        #[arg(long, default_value = "Dr Dev Example")]
        name: String,
        /// ODS code of the organisation.
        #[arg(long, default_value = "A81001")]
        org: String,
        /// For patient tokens: their NHS number.
        #[arg(long)]
        nhs_number: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3_600)]
        ttl: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spr_producers::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            bootstrap,
            projection_db,
            secondary_dir,
            jwks,
            ledger,
            audit_timeout_ms,
        } => {
            let store = ProjectionStore::open_secondary(&projection_db, &secondary_dir)
                .with_context(|| {
                    format!(
                        "opening the projection at {} (start spr-projector first)",
                        projection_db.display()
                    )
                })?;
            let verifier = TokenVerifier::from_jwks_file(&jwks, &cli.issuer)
                .with_context(|| "loading the JWKS (spr-api keygen writes a development one)")?;
            let state = AppState {
                store: Arc::new(store),
                verifier: Arc::new(verifier),
                audit: EventPublisher::new(&bootstrap, Duration::from_millis(audit_timeout_ms))?,
                last_catch_up_millis: Arc::new(AtomicI64::new(0)),
                ledger: ledger.map(|path| Arc::new(LedgerView::new(path))),
                break_glass: Default::default(),
            };
            if let Some(view) = &state.ledger {
                view.spawn_refresh(Duration::from_millis(500));
            }
            state.spawn_catch_up(Duration::from_millis(100));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen} (is another spr-api running?)"))?;
            tracing::info!(%listen, "spr-api listening");
            axum::serve(listener, router(state))
                .with_graceful_shutdown(spr_producers::shutdown_signal())
                .await?;
        }
        Command::Keygen { dir } => {
            let keys = DevKeys::generate(&format!("spr-dev-{}", unix_seconds()));
            keys.write_to(&dir)?;
            println!(
                "wrote {}/signing-key.pem and {}/jwks.json (kid {})",
                dir.display(),
                dir.display(),
                keys.kid
            );
        }
        Command::Token {
            dir,
            role,
            sub,
            name,
            org,
            nhs_number,
            ttl,
        } => {
            role.parse::<Role>().map_err(anyhow::Error::msg)?;
            let pem = std::fs::read_to_string(dir.join("signing-key.pem")).with_context(|| {
                format!(
                    "reading {}/signing-key.pem (run spr-api keygen first)",
                    dir.display()
                )
            })?;
            let kid = first_kid(&dir.join("jwks.json"))?;
            let now = unix_seconds();
            let claims = Claims {
                sub,
                name,
                org,
                role,
                nhs_number,
                iss: cli.issuer,
                aud: AUDIENCE.into(),
                exp: now + ttl,
                nbf: now,
                iat: now,
            };
            println!("{}", mint_token(&pem, &kid, &claims)?);
        }
    }
    Ok(())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
