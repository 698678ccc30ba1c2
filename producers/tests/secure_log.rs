//! Reaching a secured log: every SPR client takes its TLS and SASL settings from the
//! `SPR_KAFKA_*` environment variables, against a tansu broker reached over TLS that
//! requires SCRAM logins. Each client runs in a child process of this test with its own
//! environment, as a deployed service would.

use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use spr_producers::synthetic::population;
use spr_producers::EventPublisher;
use spr_schemas::topics;
use spr_testkit::tools::output_text;
use spr_testkit::{ScramUser, TestBroker};

/// Set in a child: the broker to publish one patient's events to and then count every
/// record of the patient-events topic.
const CHILD: &str = "SPR_SECURE_LOG_CHILD_BOOTSTRAP";
/// Set in a child: how long its connection check waits, in seconds.
const CHECK_SECONDS: &str = "SPR_SECURE_LOG_CHILD_CHECK_S";
const TEST: &str = "only_a_client_that_logs_in_reads_or_writes_the_log";

/// The child: checks the connection as every SPR binary does at start and prints the
/// outcome, then (whatever it was) publishes and prints how many records the topic holds.
async fn publish_then_count(bootstrap: &str, check: Duration) -> anyhow::Result<usize> {
    match spr_producers::admin::check_connection(bootstrap, check).await {
        Ok(brokers) => println!("connected: {brokers} broker"),
        Err(error) => println!("connection check: {error}"),
    }
    let events = population(1, 11).remove(0).events;
    let publisher = EventPublisher::new(bootstrap, Duration::from_secs(5))?;
    publisher
        .publish_clinical_events(events.iter(), || {})
        .await?;
    let consumer: StreamConsumer = spr_producers::client_config(bootstrap)?
        .set("group.id", "secure-log-count")
        .create()?;
    let mut all = TopicPartitionList::new();
    for partition in 0..topics::PATIENT_EVENTS.partitions {
        all.add_partition_offset(topics::PATIENT_EVENTS.name, partition, Offset::Beginning)?;
    }
    consumer.assign(&all)?;
    // Everything published is acknowledged: read at least what was published (each
    // record within 30 s), then whatever else arrives until 2 s pass without a record.
    let mut count = 0;
    loop {
        let wait = if count < events.len() { 30 } else { 2 };
        match tokio::time::timeout(Duration::from_secs(wait), consumer.recv()).await {
            Ok(record) => {
                record?;
                count += 1;
            }
            Err(_) if count < events.len() => anyhow::bail!("only {count} records after 30 s"),
            Err(_) => return Ok(count),
        }
    }
}

/// Runs the child with these `SPR_KAFKA_*` variables (and no others), its connection
/// check waiting up to `check_seconds`.
fn child(bootstrap: &str, login: &[(String, String)], check_seconds: u64) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", TEST, "--nocapture"])
        .env(CHILD, bootstrap)
        .env(CHECK_SECONDS, check_seconds.to_string())
        // The child logs at init_tracing's default level, which shows librdkafka's errors.
        .env_remove("RUST_LOG");
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SPR_KAFKA_")) {
        command.env_remove(name);
    }
    command.envs(login.iter().cloned()).output().unwrap()
}

#[test]
fn only_a_client_that_logs_in_reads_or_writes_the_log() {
    if let Ok(bootstrap) = std::env::var(CHILD) {
        spr_producers::init_tracing();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let check: u64 = std::env::var(CHECK_SECONDS).unwrap().parse().unwrap();
        match runtime.block_on(publish_then_count(&bootstrap, Duration::from_secs(check))) {
            Ok(count) => println!("records on the topic: {count}"),
            Err(error) => panic!("the client failed: {error:#}"),
        }
        return;
    }
    let user = ScramUser {
        name: "spr-producer".to_owned(),
        password: "correct horse battery staple".to_owned(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let broker = runtime
        .block_on(TestBroker::start_requiring_login(user.clone()))
        .unwrap();
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();

    // Each refused client fails, says why, and never shows the password.
    let wrong_password = ScramUser {
        password: "Tr0ub4dor&3".to_owned(),
        ..user.clone()
    };
    let unrelated_ca = dir.path().join("unrelated-ca.pem");
    spr_testkit::tls::write_unrelated_certificate(&unrelated_ca).unwrap();
    let mut untrusting = broker.client_env(Some(&user));
    for (name, value) in &mut untrusting {
        if name == "SPR_KAFKA_SSL_CA_LOCATION" {
            *value = unrelated_ca.to_string_lossy().into_owned();
        }
    }
    for (who, env, reasons) in [
        (
            "a wrong password",
            broker.client_env(Some(&wrong_password)),
            [
                "connection check: the broker at",
                "refused this client's login (",
                "check SPR_KAFKA_SASL_USERNAME and SPR_KAFKA_SASL_PASSWORD",
                "SASL authentication error",
            ],
        ),
        (
            "no login",
            broker.client_env(None),
            [
                "connection check: no broker answered at",
                "within 5 s",
                "do the SPR_KAFKA_* settings match its listener (TLS, login)?",
                "the client failed:",
            ],
        ),
        (
            "a CA that did not sign the broker's certificate",
            untrusting,
            [
                "connection check: the TLS handshake with the broker at",
                "certificate verify failed",
                "check that SPR_KAFKA_SSL_CA_LOCATION names the CA",
                "the client failed:",
            ],
        ),
    ] {
        let refused = child(&bootstrap, &env, 5);
        let text = output_text(&refused);
        assert!(!refused.status.success(), "{who}: {text}");
        assert!(text.contains("the client failed:"), "{who}: {text}");
        for reason in reasons {
            assert!(
                text.contains(reason),
                "{who}: {reason:?} is not said: {text}"
            );
        }
        for password in [&user.password, &wrong_password.password] {
            assert!(!text.contains(password.as_str()), "{who}: {text}");
        }
    }

    let events = population(1, 11).remove(0).events.len();
    let logged_in = child(&bootstrap, &broker.client_env(Some(&user)), 30);
    assert!(logged_in.status.success(), "{}", output_text(&logged_in));
    assert!(
        output_text(&logged_in).contains("connected: 1 broker"),
        "{}",
        output_text(&logged_in)
    );
    assert!(
        output_text(&logged_in).contains(&format!("records on the topic: {events}\n")),
        "only the logged-in client's {events} events were written: {}",
        output_text(&logged_in)
    );
}
