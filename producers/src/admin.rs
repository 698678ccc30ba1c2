//! Broker-level operations: checking that the log can be reached with this process's
//! connection settings, and creating topics through the Kafka admin API.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use spr_schemas::topics::{self, TopicSpec};

/// Why the log could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The client settings were refused before connecting.
    #[error("{0}")]
    Settings(KafkaError),
    /// The broker refused the login.
    #[error(
        "the broker at {bootstrap} refused this client's login ({reason}); check \
         SPR_KAFKA_SASL_USERNAME and SPR_KAFKA_SASL_PASSWORD, and that the user exists on \
         the broker"
    )]
    Login {
        /// Where.
        bootstrap: String,
        /// librdkafka's account of it.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error(
        "the TLS handshake with the broker at {bootstrap} failed ({reason}); check that \
         SPR_KAFKA_SSL_CA_LOCATION names the CA that signed the broker's certificate and \
         that SPR_BOOTSTRAP names a TLS listener"
    )]
    Tls {
        /// Where.
        bootstrap: String,
        /// librdkafka's account of it.
        reason: String,
    },
    /// Nothing answered in time.
    #[error(
        "no broker answered at {bootstrap} within {} s ({reason}); is it running, is \
         SPR_BOOTSTRAP right (deploy/local/run.sh starts a local one), and do the \
         SPR_KAFKA_* settings match its listener (TLS, login)?",
        timeout.as_secs()
    )]
    Unreachable {
        /// Where.
        bootstrap: String,
        /// How long it was given.
        timeout: Duration,
        /// The last error seen.
        reason: String,
    },
}

/// How long a binary waits at start for the log to answer ([`check_connection`]).
pub const STARTUP_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks that the log at `bootstrap` answers with this process's connection settings
/// (`SPR_KAFKA_*`), logs that it did, and returns how many brokers it has. A refused
/// login or a failed TLS handshake is reported as soon as librdkafka sees it, with what
/// to check; without this check librdkafka would keep retrying while the client's
/// operations time out. Every SPR binary runs it before it uses the log.
pub async fn check_connection(
    bootstrap: &str,
    timeout: Duration,
) -> Result<usize, ConnectionError> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || check_connection_blocking(&bootstrap, timeout))
        .await
        .expect("the connection check does not panic")
}

fn check_connection_blocking(bootstrap: &str, timeout: Duration) -> Result<usize, ConnectionError> {
    let config = crate::client_config(bootstrap).map_err(ConnectionError::Settings)?;
    let protocol = config
        .get("security.protocol")
        .unwrap_or("PLAINTEXT")
        .to_ascii_uppercase();
    let producer: BaseProducer<FailureWatch> = config
        .create_with_context(FailureWatch::default())
        .map_err(ConnectionError::Settings)?;
    let deadline = Instant::now() + timeout;
    loop {
        // One topic's metadata (all of a large cluster's can take long), a second at a time.
        let answer = producer
            .client()
            .fetch_metadata(Some(topics::PATIENT_EVENTS.name), Duration::from_secs(1));
        let fetch_error = match answer {
            Ok(metadata) => {
                let brokers = metadata.brokers().len();
                tracing::info!(bootstrap, brokers, %protocol, "the log answered");
                return Ok(brokers);
            }
            Err(error) => error.to_string(),
        };
        // Delivers librdkafka's pending error events to FailureWatch.
        producer.poll(Duration::from_millis(100));
        let bootstrap = bootstrap.to_owned();
        let seen = producer.context().seen();
        match seen.failure {
            Some(Failure::Login(reason)) => {
                return Err(ConnectionError::Login { bootstrap, reason })
            }
            Some(Failure::Tls(reason)) => return Err(ConnectionError::Tls { bootstrap, reason }),
            None if Instant::now() >= deadline => {
                return Err(ConnectionError::Unreachable {
                    bootstrap,
                    timeout,
                    reason: seen.last.unwrap_or(fetch_error),
                })
            }
            None => {}
        }
    }
}

/// A failure that waiting will not cure.
#[derive(Debug, Clone)]
enum Failure {
    /// The broker refused the login.
    Login(String),
    /// The TLS handshake failed.
    Tls(String),
}

/// What [`FailureWatch`] has seen.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// The first login or TLS failure.
    failure: Option<Failure>,
    /// librdkafka's account of the last error.
    last: Option<String>,
    /// Whether `last` came from a `FAIL` log line.
    last_from_log: bool,
}

/// Keeps the errors and broker failures librdkafka reports while the connection is
/// checked. Error events are logged at debug level only: librdkafka's own log lines,
/// passed on as rdkafka's default context does, already report them.
#[derive(Default)]
struct FailureWatch(Mutex<Seen>);

impl FailureWatch {
    fn seen(&self) -> Seen {
        self.0.lock().expect("not poisoned").clone()
    }

    /// Keeps `failure` if it is the first, and `reason` as the last account: from a
    /// `FAIL` log line (which names the broker and what failed, such as a refused
    /// connection) always, from an error event only until a log line has come.
    fn record(&self, failure: Option<Failure>, reason: &str, from_log: bool) {
        let mut seen = self.0.lock().expect("not poisoned");
        if from_log || !seen.last_from_log {
            seen.last = Some(reason.to_owned());
            seen.last_from_log |= from_log;
        }
        if seen.failure.is_none() {
            seen.failure = failure;
        }
    }
}

/// The failure librdkafka's account of a broker failure describes, if it is a login or
/// TLS failure. librdkafka raises such failures as error events (not always delivered
/// before the check gives up) and always as `FAIL` log lines, so both are read.
///
/// Only unambiguous accounts count: a connection that broke or timed out while logging
/// in or during the handshake is a local error ("Local: …", a reset "SSL handshake
/// failed: Disconnected") that may pass, so the check keeps trying until its deadline.
fn failure_in(reason: &str) -> Option<Failure> {
    const TLS: [&str; 2] = [
        "certificate verify failed",
        "Failed to verify broker certificate",
    ];
    if refused_login(reason) {
        Some(Failure::Login(reason.to_owned()))
    } else if TLS.iter().any(|m| reason.contains(m)) {
        Some(Failure::Tls(reason.to_owned()))
    } else {
        None
    }
}

/// Whether `reason` says the broker refused the login (not that the connection failed
/// while logging in).
fn refused_login(reason: &str) -> bool {
    reason.contains("SASL authentication error") && !reason.contains("Local: ")
}

impl ClientContext for FailureWatch {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "FAIL" {
            self.record(failure_in(message), message, true);
        }
        DefaultClientContext.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka: {error}: {reason}");
        let failure = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) if !reason.contains("Local: ") => {
                Some(Failure::Login(reason.to_owned()))
            }
            _ => failure_in(reason),
        };
        self.record(failure, reason, false);
    }
}

impl ProducerContext for FailureWatch {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Why topics could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin client could not be built or the request failed.
    #[error(
        "could not reach the broker to create topics: {0}; is it running at the bootstrap address?"
    )]
    Kafka(#[from] KafkaError),
    /// The broker refused to create a topic.
    #[error("the broker refused to create topic {topic}: {code}")]
    Refused {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// Creates each topic that does not exist yet (existing ones are left as they are).
pub async fn ensure_topics(
    bootstrap: &str,
    topics: &[TopicSpec],
    replication: i32,
) -> Result<(), AdminError> {
    let admin: AdminClient<DefaultClientContext> = crate::client_config(bootstrap)?.create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t.name, t.partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(AdminError::Refused { topic, code }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unambiguous_refusal_stops_the_check_at_once() {
        let login = "sasl_ssl://b:9093/bootstrap: SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof (after 15ms in state AUTH_REQ)";
        assert!(matches!(failure_in(login), Some(Failure::Login(_))));
        let certificate = "sasl_ssl://b:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified (after 1ms in state SSL_HANDSHAKE)";
        assert!(matches!(failure_in(certificate), Some(Failure::Tls(_))));
        for passing in [
            "sasl_ssl://b:9093/bootstrap: SASL authentication error: SaslAuthenticateRequest failed: Local: Broker transport failure (after 5ms in state AUTH_REQ)",
            "sasl_ssl://b:9093/bootstrap: SSL handshake failed: Disconnected: connection reset by peer (after 2ms in state SSL_HANDSHAKE)",
            "sasl_ssl://b:9093/bootstrap: Connection setup timed out in state SSL_HANDSHAKE (after 30027ms in state SSL_HANDSHAKE)",
            "b:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)",
        ] {
            assert!(failure_in(passing).is_none(), "{passing}");
        }
    }
}
