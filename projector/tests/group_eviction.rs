//! Re-checks the tansu finding behind explicit partition ownership: a consumer-group
//! member killed with SIGKILL. With `session.timeout.ms=6000` tansu 0.6 does evict it
//! after the session timeout, and a new member is given every partition. The
//! projector still assigns its partitions explicitly (docs/operations.md says why);
//! this test records what the group protocol does, so the choice can be revisited.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use spr_schemas::topics;
use spr_testkit::{KillOnDrop, TestBroker};

const MEMBER: &str = "SPR_GROUP_MEMBER_BOOTSTRAP";

fn member(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = spr_producers::client_config(bootstrap)
        .unwrap()
        .set("group.id", "eviction-probe")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .unwrap();
    consumer.subscribe(&[topics::PATIENT_EVENTS.name]).unwrap();
    consumer
}

/// Polls until `consumer` is assigned partitions, or `timeout` passes; returns how many.
fn assigned_within(consumer: &BaseConsumer, timeout: Duration) -> usize {
    let started = Instant::now();
    while started.elapsed() < timeout {
        consumer.poll(Duration::from_millis(100));
        let count = consumer.assignment().unwrap().count();
        if count > 0 {
            return count;
        }
    }
    0
}

#[test]
fn tansu_evicts_a_sigkilled_group_member_after_the_session_timeout() {
    if let Ok(bootstrap) = std::env::var(MEMBER) {
        // The member process: join, report the assignment, then keep heartbeating.
        let consumer = member(&bootstrap);
        println!(
            "assigned {}",
            assigned_within(&consumer, Duration::from_secs(30))
        );
        loop {
            consumer.poll(Duration::from_millis(100));
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let broker = runtime.block_on(TestBroker::start_memory()).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tansu_evicts_a_sigkilled_group_member_after_the_session_timeout",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env(MEMBER, broker.bootstrap())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = KillOnDrop::new(child);
    // The member joins and is given every partition (it prints "assigned 4"), then dies
    // without leaving the group. Its assignment is read before it is killed: a member
    // that had not joined would leave nothing to evict.
    let assigned = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        // libtest may print "test NAME ... " before it on the same line.
        .find_map(|line| line.rsplit_once("assigned ").map(|(_, n)| n.to_owned()));
    assert_eq!(
        assigned,
        Some(topics::PATIENT_EVENTS.partitions.to_string()),
        "the first member was given every partition"
    );
    first.kill();

    let started = Instant::now();
    let second = member(&broker.bootstrap());
    let count = assigned_within(&second, Duration::from_secs(30));
    assert_eq!(
        count,
        topics::PATIENT_EVENTS.partitions as usize,
        "tansu no longer evicts a SIGKILLed member; see docs/operations.md"
    );
    println!("second member assigned after {:?}", started.elapsed());
}
