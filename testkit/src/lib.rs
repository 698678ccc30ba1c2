//! Test support: a real tansu Kafka-protocol broker, started on a free port with its
//! own storage, with the SPR topics created, and stopped when dropped.
//!
//! The broker binary is found at `$SPR_TANSU_BIN`, else at
//! `~/.cache/spr/tansu/bin/tansu` (where `deploy/local/install.sh` puts it).

pub mod http;
pub mod tls;
pub mod tools;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use spr_schemas::{topics, ClinicalEvent};

/// Where the broker keeps its data.
#[derive(Debug, Clone)]
pub enum BrokerStorage {
    /// `memory://`: fast, lost when the broker stops.
    Memory,
    /// `sqlite://FILE`: durable across restarts.
    Sqlite(PathBuf),
}

/// A running tansu broker owned by one test.
#[derive(Debug)]
pub struct TestBroker {
    child: Option<Child>,
    port: u16,
    storage: BrokerStorage,
    /// The Kafka cluster id it reports (tansu's default, `tansu_cluster`, when `None`).
    cluster_id: Option<String>,
    /// Set when the broker requires clients to log in over TLS: the user its own checks
    /// log in as, and the TLS front clients reach it through.
    login: Option<(ScramUser, tls::TlsFront)>,
    _dir: tempfile::TempDir,
}

/// A SASL/SCRAM-SHA-512 user of a broker that requires clients to log in. Its `Debug`
/// form leaves the password out.
#[derive(Clone)]
pub struct ScramUser {
    /// The user name.
    pub name: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ScramUser {
    /// The `SPR_KAFKA_*` environment variables of this user's SCRAM login.
    fn login_env(&self) -> [(&str, &str); 3] {
        [
            ("SPR_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("SPR_KAFKA_SASL_USERNAME", &self.name),
            ("SPR_KAFKA_SASL_PASSWORD", &self.password),
        ]
    }
}

/// The tansu binary to run.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SPR_TANSU_BIN") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/spr/tansu/bin/tansu")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TestBroker {
    /// Starts an in-memory broker with the SPR topics.
    pub async fn start_memory() -> anyhow::Result<Self> {
        Self::start(None).await
    }

    /// Starts an in-memory broker with the SPR topics that reports `cluster_id` as its
    /// Kafka cluster id (another cluster than every other test broker's).
    pub async fn start_memory_in_cluster(cluster_id: &str) -> anyhow::Result<Self> {
        Self::start_as(None, Some(cluster_id)).await
    }

    /// Starts a durable broker (sqlite in a temp dir) with the SPR topics; it can be restarted.
    pub async fn start_durable() -> anyhow::Result<Self> {
        Self::start(Some("broker.db")).await
    }

    /// Starts a durable broker with the SPR topics that reports `cluster_id` as its
    /// Kafka cluster id.
    pub async fn start_durable_in_cluster(cluster_id: &str) -> anyhow::Result<Self> {
        Self::start_as(Some("broker.db"), Some(cluster_id)).await
    }

    /// Starts a durable broker with the SPR topics that clients reach over TLS (through
    /// a [`tls::TlsFront`]) and must log in to with SASL/SCRAM-SHA-512, as a production
    /// cluster is set up; it knows one user, `user`. (tansu refuses to create a user
    /// once it requires logins, so the user and the topics are created first, and the
    /// broker is then restarted with `--authentication`, advertising the front.)
    pub async fn start_requiring_login(user: ScramUser) -> anyhow::Result<Self> {
        let mut broker = Self::start(Some("broker.db")).await?;
        let created = Command::new(tansu_binary())
            .args(["user", "create", "--mechanism", "scram512", "--broker"])
            .arg(format!("tcp://{}", broker.bootstrap()))
            .args([&user.name, &user.password])
            .output()
            .context("running tansu user create")?;
        if !created.status.success() {
            bail!(
                "tansu user create failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let front = tls::TlsFront::start(broker.port, broker._dir.path())?;
        broker.login = Some((user, front));
        broker.restart().await?;
        Ok(broker)
    }

    async fn start(sqlite_file: Option<&str>) -> anyhow::Result<Self> {
        Self::start_as(sqlite_file, None).await
    }

    async fn start_as(sqlite_file: Option<&str>, cluster_id: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let storage = match sqlite_file {
            Some(f) => BrokerStorage::Sqlite(dir.path().join(f)),
            None => BrokerStorage::Memory,
        };
        let mut broker = Self {
            child: None,
            port: free_port()?,
            storage,
            cluster_id: cluster_id.map(str::to_owned),
            login: None,
            _dir: dir,
        };
        broker.start_with_topics().await?;
        Ok(broker)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let binary = tansu_binary();
        if !binary.exists() {
            bail!(
                "tansu not found at {}; run deploy/local/install.sh (or set SPR_TANSU_BIN)",
                binary.display()
            );
        }
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://{}", self.bootstrap());
        let storage = match &self.storage {
            BrokerStorage::Memory => "memory://tansu/".to_owned(),
            // tansu resolves a sqlite:// path relative to its working directory.
            BrokerStorage::Sqlite(path) => format!(
                "sqlite://{}",
                path.file_name().expect("a file").to_string_lossy()
            ),
        };
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                &storage,
            ])
            .args(self.login.is_some().then_some("--authentication"))
            .args(
                self.cluster_id
                    .iter()
                    .flat_map(|id| ["--cluster-id", id.as_str()]),
            )
            .env_remove("CLUSTER_ID")
            .current_dir(self._dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("tansu exited during start-up with {status}");
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("tansu did not listen on port {} within 30 s", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let bootstrap = self.bootstrap();
        let login = self.client_env(self.login.as_ref().map(|(user, _)| user));
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut config = spr_producers::client_config(&bootstrap)?;
            spr_producers::security::apply_security_settings(
                &mut config,
                login
                    .into_iter()
                    .map(|(name, value)| (name.into(), value.into())),
            )?;
            let consumer: BaseConsumer = config.create()?;
            consumer
                .fetch_metadata(None, Duration::from_secs(20))
                .context("broker metadata")?;
            Ok(())
        })
        .await??;
        Ok(())
    }

    /// `127.0.0.1:PORT`: the broker, or its TLS front when it has one.
    pub fn bootstrap(&self) -> String {
        let port = self
            .login
            .as_ref()
            .map_or(self.port, |(_, front)| front.port());
        format!("127.0.0.1:{port}")
    }

    /// The `SPR_KAFKA_*` environment variables with which an SPR client reaches this
    /// broker: over TLS, trusting its front's certificate, when it requires logins, and
    /// then logged in as `user` if given. Empty for a broker that takes plain connections.
    pub fn client_env(&self, user: Option<&ScramUser>) -> Vec<(String, String)> {
        let Some((_, front)) = &self.login else {
            return Vec::new();
        };
        let protocol = if user.is_some() { "SASL_SSL" } else { "SSL" };
        let ca_file = front.ca_file().to_string_lossy();
        [
            ("SPR_KAFKA_SECURITY_PROTOCOL", protocol),
            ("SPR_KAFKA_SSL_CA_LOCATION", &ca_file),
        ]
        .into_iter()
        .chain(user.into_iter().flat_map(ScramUser::login_env))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    /// Kills the broker (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the broker (SIGSTOP): its connections stay open and nothing is answered,
    /// as with a broker that hangs. Killing or dropping it still ends it.
    pub fn freeze(&self) -> anyhow::Result<()> {
        signal(
            self.child.as_ref().context("the broker is not running")?,
            "-STOP",
        )
    }

    /// Freezes the broker while `feeding` (the task giving `client` work through it)
    /// still runs, then asks `client`, a process using the broker, to stop (SIGTERM).
    /// Fails unless it exits as asked, with success, within the limit its Kafka
    /// consumers' close is given ([`CLOSE_WITHIN`]) and 20 s more. `feeding` is aborted.
    ///
    /// [`CLOSE_WITHIN`]: spr_producers::consume::CLOSE_WITHIN
    pub async fn freeze_and_stop<T>(
        &self,
        mut client: KillOnDrop,
        feeding: tokio::task::JoinHandle<T>,
    ) -> anyhow::Result<()> {
        let stopped = async {
            if feeding.is_finished() {
                bail!("the task feeding the client ended before the broker was frozen");
            }
            self.freeze()?;
            let limit = spr_producers::consume::CLOSE_WITHIN + Duration::from_secs(20);
            match tokio::task::spawn_blocking(move || client.terminate_within(limit)).await?? {
                Some(status) if status.success() => Ok(()),
                Some(status) => bail!("it was asked to stop, and exited with {status}"),
                None => bail!("still running {limit:?} after it was asked to stop"),
            }
        }
        .await;
        feeding.abort();
        stopped
    }

    /// Starts the broker again on the same port and storage (durable brokers keep their data).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_until_ready().await
    }

    /// Replaces this durable broker, on the same port, with a broker of another Kafka
    /// cluster, `cluster_id`, that has the SPR topics before it takes the port (as a
    /// disaster-recovery cluster would): to a client, its address now reaches another
    /// cluster. (tansu keeps each cluster's topics apart in one sqlite file; librdkafka
    /// can crash when a broker it reads from comes back without the topic.)
    pub async fn restart_in_cluster(&mut self, cluster_id: &str) -> anyhow::Result<()> {
        if !matches!(self.storage, BrokerStorage::Sqlite(_)) || self.login.is_some() {
            bail!("only a durable broker without logins can be restarted as another cluster");
        }
        self.kill();
        self.cluster_id = Some(cluster_id.to_owned());
        let port = std::mem::replace(&mut self.port, free_port()?);
        let created = self.start_with_topics().await;
        self.kill();
        self.port = port;
        created?;
        self.restart().await
    }

    /// Starts the broker and creates the SPR topics (the broker is left running).
    async fn start_with_topics(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        self.wait_until_ready().await?;
        spr_producers::admin::ensure_topics(&self.bootstrap(), &spr_schemas::topics::ALL, 1)
            .await
            .context("creating the SPR topics")
    }

    /// The sqlite file of a durable broker.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.storage {
            BrokerStorage::Sqlite(p) => Some(p),
            BrokerStorage::Memory => None,
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a test that
/// fails half-way never leaves it running.
#[derive(Debug)]
pub struct KillOnDrop(Child);

impl KillOnDrop {
    /// Takes charge of `child`.
    pub fn new(child: Child) -> Self {
        Self(child)
    }

    /// Kills the process now (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Asks the running process to stop (SIGTERM); how it exited, if it did within
    /// `limit`.
    pub fn terminate_within(
        &mut self,
        limit: Duration,
    ) -> anyhow::Result<Option<std::process::ExitStatus>> {
        if let Some(status) = self.0.try_wait()? {
            bail!("the process had already exited ({status}) before it was asked to stop");
        }
        signal(&self.0, "-TERM")?;
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.0.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(None)
    }
}

/// Sends `signal` (as `kill` spells it: "-TERM", "-STOP") to `child`.
fn signal(child: &Child, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()?;
    if !status.success() {
        bail!("kill {signal} {} failed: {status}", child.id());
    }
    Ok(())
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The offsets that consumer group `group` has committed for partitions `0..partitions`
/// of `topic` (`None` for a partition with no commit), as lag tools would read them.
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<Option<i64>>> {
    let consumer: BaseConsumer = spr_producers::client_config(bootstrap)?
        .set("group.id", group)
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect())
}

/// A record of the patient-events topic, decoded.
#[derive(Debug, Clone)]
pub struct PatientEventRecord {
    /// The partition it was read from.
    pub partition: i32,
    /// Its key.
    pub key: Vec<u8>,
    /// The event.
    pub event: ClinicalEvent,
}

/// Reads `expected` records of the patient-events topic from the start of every
/// partition (panics if none arrives for 30 s, or one does not decode).
pub async fn read_patient_events(bootstrap: &str, expected: usize) -> Vec<PatientEventRecord> {
    let consumer: StreamConsumer = spr_producers::client_config(bootstrap)
        .expect("the client settings")
        .set("group.id", "spr-testkit-reader")
        .create()
        .expect("a consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..topics::PATIENT_EVENTS.partitions {
        list.add_partition_offset(topics::PATIENT_EVENTS.name, p, Offset::Beginning)
            .expect("a partition");
    }
    consumer.assign(&list).expect("partitions assigned");
    let mut records = Vec::new();
    while records.len() < expected {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("records arrive within 30 s")
            .expect("a record");
        records.push(PatientEventRecord {
            partition: m.partition(),
            key: m.key().expect("a key").to_vec(),
            event: ClinicalEvent::from_avro(m.payload().expect("a payload")).expect("decodes"),
        });
    }
    records
}
