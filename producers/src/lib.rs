//! The log client of SPR Timeline: publishing events, consuming them in batches,
//! and dead-lettering what cannot be used.
//!
//! [`EventPublisher`] wraps an idempotent rdkafka producer (acks=all, keyed by NHS
//! number) and surfaces every delivery error; [`admin::ensure_topics`] creates the
//! topics of [`spr_schemas::topics`]; [`synthetic`] generates a deterministic
//! synthetic population for local runs, tests and benchmarks. Every SPR service also
//! takes from here its tracing set-up, shutdown signal, start-up broker check
//! ([`admin::check_connection`]) and metrics listener ([`metrics_http`]).

pub mod admin;
pub mod consume;
pub mod continuity;
pub mod fhir;
pub mod metrics_http;
mod publisher;
pub mod security;
pub mod synthetic;

pub use publisher::{Delivered, EventPublisher, PublishError, PublishSummary};

/// Sets up structured logging for an SPR binary, on stderr (stdout is left to what a
/// command prints, such as `--json` reports): `RUST_LOG` if set, else `info` (with
/// librdkafka's own chatter at `warn`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,rdkafka=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// For a command whose output may be piped into `head` or a pager that stops reading:
/// the default action of SIGPIPE (end quietly, as other Unix tools do) instead of
/// Rust's, which makes the next `println!` panic with "Broken pipe". Only for commands
/// that print and exit, never for services, which must outlive a client that hangs up.
pub fn exit_quietly_when_stdout_closes() {
    sigpipe::reset();
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what container runtimes send), so every
/// SPR service finishes its current batch and stops cleanly either way.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

/// rdkafka client settings shared by every SPR component: bootstrap servers, TCP
/// keep-alive, and the connection security (TLS, SASL) set in this process's
/// `SPR_KAFKA_*` environment variables ([`security`]). Fails, naming the variable, if
/// one of those is not a security setting.
pub fn client_config(bootstrap: &str) -> Result<rdkafka::ClientConfig, rdkafka::error::KafkaError> {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.keepalive.enable", "true")
        .set("log_level", "4");
    security::apply_security_settings(&mut config, std::env::vars_os())?;
    Ok(config)
}
