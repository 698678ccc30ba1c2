//! A TLS front for a test broker. tansu 0.6 does not serve TLS (it builds an acceptor
//! from `--cert` and `--key` but never uses it), so a broker that must be reached over
//! TLS gets this in front of it: it terminates TLS with a self-signed certificate for
//! 127.0.0.1, as a broker's TLS listener would, and passes the bytes on to tansu.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

/// A running TLS front; it stops when dropped.
#[derive(Debug)]
pub struct TlsFront {
    port: u16,
    ca_file: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsFront {
    /// Listens on a free port of 127.0.0.1 and forwards each connection, once its TLS
    /// handshake succeeds, to `upstream` on 127.0.0.1. The certificate clients must
    /// trust is written to `dir/broker-ca.pem`.
    pub fn start(upstream: u16, dir: &Path) -> anyhow::Result<Self> {
        let (certificate, key) = self_signed()?;
        let ca_file = dir.join("broker-ca.pem");
        std::fs::write(&ca_file, certificate.to_pem()?)?;
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_private_key(&key)?;
        acceptor.set_certificate(&certificate)?;
        acceptor.check_private_key()?;
        let acceptor = Arc::new(acceptor.build());
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listening socket");
            loop {
                // A failed accept (an aborted connection) is that client's problem only.
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = Arc::clone(&acceptor);
                tokio::spawn(async move {
                    let ssl = Ssl::new(acceptor.context())?;
                    let mut tls = tokio_openssl::SslStream::new(ssl, client)?;
                    // A client that does not trust the certificate ends here.
                    Pin::new(&mut tls).accept().await?;
                    let mut broker =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await?;
                    tokio::io::copy_bidirectional(&mut tls, &mut broker).await?;
                    anyhow::Ok(())
                });
            }
        });
        Ok(Self {
            port,
            ca_file,
            runtime: Some(runtime),
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the certificate clients must trust (`ssl.ca.location`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Writes to `path` a self-signed certificate for 127.0.0.1 that no [`TlsFront`] uses:
/// a client that trusts only it must refuse every front.
pub fn write_unrelated_certificate(path: &Path) -> anyhow::Result<()> {
    let (certificate, _) = self_signed()?;
    std::fs::write(path, certificate.to_pem()?)
        .with_context(|| format!("writing {}", path.display()))
}

/// A new self-signed P-256 certificate for 127.0.0.1 and localhost, valid for a day,
/// and its key.
fn self_signed() -> Result<(X509, PKey<Private>), ErrorStack> {
    let curve = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&curve)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "spr-test-broker")?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let mut certificate = X509::builder()?;
    certificate.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    certificate.set_serial_number(&serial)?;
    certificate.set_subject_name(&name)?;
    certificate.set_issuer_name(&name)?;
    certificate.set_pubkey(&key)?;
    let (from, to) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(1)?);
    certificate.set_not_before(&from)?;
    certificate.set_not_after(&to)?;
    certificate.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    let names = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&certificate.x509v3_context(None, None))?;
    certificate.append_extension(names)?;
    certificate.sign(&key, MessageDigest::sha256())?;
    Ok((certificate.build(), key))
}
