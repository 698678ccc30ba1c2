//! `spr-gateway`: the HTTP ingestion gateway (`POST /fhir`) for publishing systems that
//! cannot speak Kafka, and minting of local development publisher tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use spr_producers::fhir::parse_care_setting;
use spr_producers::metrics_http::spawn_metrics_server;
use spr_producers::EventPublisher;
use spr_query_api::auth::{mint_token, signing_key, TokenVerifier};
use spr_query_api::gateway::permissions::Permission;
use spr_query_api::gateway::{
    router, GatewayState, PublisherClaims, PublisherRateLimit, DEFAULT_BURST_DOCUMENTS,
    DEFAULT_DOCUMENTS_PER_MINUTE, DEFAULT_MAX_BODY_BYTES, INGEST_AUDIENCE,
};
use spr_query_api::metrics::ApiMetrics;
use spr_schemas::CareSetting;

/// The SPR Timeline HTTP ingestion gateway.
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
    /// Serves POST /fhir.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SPR_GATEWAY_LISTEN", default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// Kafka bootstrap servers (the events are published here).
        #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// JWKS file with the keys that sign publisher tokens.
        #[arg(long, env = "SPR_JWKS", default_value = ".spr-local/keys/jwks.json")]
        jwks: PathBuf,
        /// Largest request body accepted, in bytes (larger ones get 413).
        #[arg(long, env = "SPR_GATEWAY_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
        max_body_bytes: usize,
        /// Longest wait for the broker to acknowledge an event, in milliseconds; past it
        /// the request gets 503 (retrying the same document is safe).
        #[arg(
            long,
            env = "SPR_GATEWAY_DELIVERY_TIMEOUT_MS",
            default_value_t = 15_000
        )]
        delivery_timeout_ms: u64,
        /// Serve Prometheus metrics at /metrics on this address (a port of its own).
        #[arg(long, env = "SPR_GATEWAY_METRICS_ADDR")]
        metrics_addr: Option<SocketAddr>,
        /// Documents a minute each publishing system may post (over it: 429 with
        /// Retry-After).
        #[arg(long, env = "SPR_GATEWAY_DOCUMENTS_PER_MINUTE", default_value_t = DEFAULT_DOCUMENTS_PER_MINUTE)]
        documents_per_minute: u32,
        /// Documents a system may post at once, above its rate.
        #[arg(long, env = "SPR_GATEWAY_BURST_DOCUMENTS", default_value_t = DEFAULT_BURST_DOCUMENTS)]
        burst_documents: u32,
    },
    /// Mints a development publisher token signed with the key from `spr-api keygen`.
    Token {
        /// Directory written by `spr-api keygen`.
        #[arg(long, default_value = ".spr-local/keys")]
        dir: PathBuf,
        /// The publishing system's name (every event's source.system and part of every
        /// event id: keep it stable).
        #[arg(long, default_value = "dev-epr")]
        system: String,
        /// ODS code of the organisation running the system.
        #[arg(long, default_value = "RX1")]
        org: String,
        /// Care setting when a resource gives none (gp, acute, mental-health, ...).
        #[arg(long, default_value = "unknown", value_parser = parse_care_setting)]
        care_setting: CareSetting,
        /// Lifetime in seconds (at most a year: development tokens should not outlive
        /// their keys).
        #[arg(long, default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        ttl: u64,
        /// A permission beyond the organisation's own care (repeatable): `relationships`
        /// (encounters at, care teams of, referrals to and registration with other
        /// organisations) or `consent` (patients' sharing choices).
        #[arg(long = "permission", value_enum)]
        permissions: Vec<Permission>,
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
            jwks,
            max_body_bytes,
            delivery_timeout_ms,
            metrics_addr,
            documents_per_minute,
            burst_documents,
        } => {
            let rate_limit = PublisherRateLimit::new(documents_per_minute, burst_documents)?;
            let verifier = TokenVerifier::from_jwks_file(&jwks, &cli.issuer)
                .context("loading the JWKS (spr-api keygen writes a development one)")?;
            let metrics = Arc::new(ApiMetrics::for_gateway());
            spawn_metrics_server(metrics_addr, Arc::clone(&metrics).router()).await?;
            spr_producers::admin::check_connection(
                &bootstrap,
                spr_producers::admin::STARTUP_CONNECTION_TIMEOUT,
            )
            .await?;
            let state = GatewayState {
                verifier: Arc::new(verifier),
                publisher: EventPublisher::new(
                    &bootstrap,
                    Duration::from_millis(delivery_timeout_ms),
                )?,
                max_body_bytes,
                metrics,
                rate_limit: Arc::new(rate_limit),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen} (is another spr-gateway running?)"))?;
            tracing::info!(%listen, %bootstrap, "spr-gateway listening");
            axum::serve(listener, router(state))
                .with_graceful_shutdown(spr_producers::shutdown_signal())
                .await?;
        }
        Command::Token {
            dir,
            system,
            org,
            care_setting,
            ttl,
            permissions,
        } => {
            let (kid, pem) = signing_key(&dir, None).with_context(|| {
                format!(
                    "reading the signing key in {} (run spr-api keygen first)",
                    dir.display()
                )
            })?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs();
            let claims = PublisherClaims {
                sub: system,
                org,
                care_setting,
                permissions,
                iss: cli.issuer,
                aud: INGEST_AUDIENCE.into(),
                exp: now + ttl,
                nbf: now,
                iat: now,
            };
            println!("{}", mint_token(&pem, &kid, &claims)?);
        }
    }
    Ok(())
}
