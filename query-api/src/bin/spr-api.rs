//! `spr-api`: serves the query API, and mints local development keys and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use spr_producers::metrics_http::spawn_metrics_server;
use spr_producers::EventPublisher;
use spr_projector::ProjectionStore;
use spr_query_api::audit_routes::LedgerView;
use spr_query_api::auth::{
    mint_token, retire_key, signing_key, Claims, DevKeys, TokenVerifier, AUDIENCE,
};
use spr_query_api::metrics::ApiMetrics;
use spr_query_api::policy::Role;
use spr_query_api::{router, AppState};

/// mimalloc: each request allocates and frees many small buffers (RocksDB iterators
/// and blocks, JSON); the system allocator took about a fifth of the CPU (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// How long an access event waits to share a produce request with others, in
        /// milliseconds: 1 costs about 1 ms per request and keeps the tail short and the
        /// broker's request rate low when busy; 0 sends each at once (lowest latency
        /// when idle, a long tail and fewer requests a second when busy).
        #[arg(long, env = "SPR_AUDIT_LINGER_MS", default_value_t = 1)]
        audit_linger_ms: u32,
        /// How often the JWKS file is read again for added or retired keys, in milliseconds.
        #[arg(long, env = "SPR_JWKS_RELOAD_MS", default_value_t = 5_000)]
        jwks_reload_ms: u64,
        /// Memory for the projection's uncompressed blocks (the hot timelines), in MiB.
        #[arg(long, env = "SPR_BLOCK_CACHE_MB", default_value_t = 1_024)]
        block_cache_mb: usize,
        /// Serve Prometheus metrics at /metrics on this address (a port of its own).
        #[arg(long, env = "SPR_API_METRICS_ADDR")]
        metrics_addr: Option<SocketAddr>,
    },
    /// Generates a development Ed25519 signing key and adds it to the directory's JWKS
    /// (created if missing), where it becomes the newest key: rotation is keygen, then
    /// retire-key of the old key once its tokens have expired.
    Keygen {
        /// Key directory ({kid}.pem, jwks.json).
        #[arg(long, default_value = ".spr-local/keys")]
        dir: PathBuf,
        /// Key id (default spr-dev-<unix seconds>).
        #[arg(long)]
        kid: Option<String>,
    },
    /// Removes a key from the directory's JWKS: tokens it signed are refused once the
    /// API has reloaded the file.
    RetireKey {
        /// Key directory.
        #[arg(long, default_value = ".spr-local/keys")]
        dir: PathBuf,
        /// The key id to remove.
        #[arg(long)]
        kid: String,
    },
    /// Mints a development token signed with the key from `keygen`.
    Token {
        /// Directory written by `keygen`.
        #[arg(long, default_value = ".spr-local/keys")]
        dir: PathBuf,
        /// Job role (every role of the access policy; see docs/access-model.md).
        #[arg(long, default_value = "clinician", value_parser = role_name)]
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
        /// Lifetime in seconds (at most a year: development tokens should not outlive
        /// their keys).
        #[arg(long, default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        ttl: u64,
        /// Key id to sign with (default: the newest key in the directory's JWKS).
        #[arg(long)]
        kid: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spr_producers::init_tracing();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        spr_producers::exit_quietly_when_stdout_closes();
    }
    match cli.command {
        Command::Serve {
            listen,
            bootstrap,
            projection_db,
            secondary_dir,
            jwks,
            ledger,
            audit_timeout_ms,
            audit_linger_ms,
            jwks_reload_ms,
            block_cache_mb,
            metrics_addr,
        } => {
            let store = ProjectionStore::open_secondary(
                &projection_db,
                &secondary_dir,
                block_cache_mb << 20,
            )
            .with_context(|| {
                format!(
                    "opening the projection at {} (start spr-projector first)",
                    projection_db.display()
                )
            })?;
            let verifier = TokenVerifier::from_jwks_file(&jwks, &cli.issuer)
                .with_context(|| "loading the JWKS (spr-api keygen writes a development one)")?;
            let metrics: Arc<ApiMetrics> = Default::default();
            spawn_metrics_server(metrics_addr, Arc::clone(&metrics).router()).await?;
            spr_producers::admin::check_connection(
                &bootstrap,
                spr_producers::admin::STARTUP_CONNECTION_TIMEOUT,
            )
            .await?;
            let verifier = Arc::new(verifier);
            verifier.spawn_reload(Duration::from_millis(jwks_reload_ms));
            let state = AppState {
                store: Arc::new(store),
                verifier,
                audit: EventPublisher::for_requests(
                    &bootstrap,
                    Duration::from_millis(audit_timeout_ms),
                    audit_linger_ms,
                )?,
                last_catch_up_millis: Arc::new(AtomicI64::new(0)),
                ledger: ledger.map(|path| Arc::new(LedgerView::new(path))),
                break_glass: Default::default(),
                metrics,
            };
            if let Some(view) = &state.ledger {
                view.spawn_refresh(Duration::from_millis(500));
            }
            state.spawn_catch_up(Duration::from_millis(100));
            state.spawn_break_glass_follower(&bootstrap)?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen} (is another spr-api running?)"))?;
            tracing::info!(%listen, "spr-api listening");
            axum::serve(listener, router(state))
                .with_graceful_shutdown(spr_producers::shutdown_signal())
                .await?;
        }
        Command::Keygen { dir, kid } => {
            let kid = kid.unwrap_or_else(|| format!("spr-dev-{}", unix_seconds()));
            let keys = DevKeys::generate(&kid);
            keys.write_to(&dir)?;
            println!(
                "wrote {}/{kid}.pem and added key {kid} to {}/jwks.json",
                dir.display(),
                dir.display(),
            );
        }
        Command::RetireKey { dir, kid } => {
            retire_key(&dir, &kid)?;
            println!("removed key {kid} from {}/jwks.json", dir.display());
        }
        Command::Token {
            dir,
            role,
            sub,
            name,
            org,
            nhs_number,
            ttl,
            kid,
        } => {
            let (kid, pem) = signing_key(&dir, kid.as_deref()).with_context(|| {
                format!(
                    "reading the signing key in {} (run spr-api keygen first)",
                    dir.display()
                )
            })?;
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

/// Accepts exactly the roles the access policy knows.
fn role_name(text: &str) -> Result<String, String> {
    text.parse::<Role>()
        .map(|role| role.as_str().to_owned())
        .map_err(|e| {
            let known: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("{e}; one of {}", known.join(", "))
        })
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
