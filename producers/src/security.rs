//! How every SPR client reaches the log securely: librdkafka's TLS and SASL settings,
//! read from `SPR_KAFKA_*` environment variables (so that a container platform can
//! inject them from its secrets), and nothing else.
//!
//! `SPR_KAFKA_SECURITY_PROTOCOL=SASL_SSL` sets `security.protocol`,
//! `SPR_KAFKA_SASL_MECHANISM=SCRAM-SHA-512` sets `sasl.mechanism`, and so on: the name
//! after the prefix, lower-cased, with `_` for `.`. Only `security.protocol`, `ssl.*`
//! and `sasl.*` may be set this way. The settings that make the pipeline
//! effectively-once (idempotence, acks, commits, offsets) are the code's, and a
//! variable that names one is refused rather than ignored.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;
use rdkafka::ClientConfig;

/// The prefix of the environment variables that carry connection security settings.
pub const ENV_PREFIX: &str = "SPR_KAFKA_";

/// The librdkafka properties those variables may set: exactly `security.protocol`, or
/// any property under `ssl.` or `sasl.`.
const ALLOWED: [&str; 3] = ["security.protocol", "ssl.", "sasl."];

/// Applies the connection security settings in `vars` (name, value pairs, as from
/// [`std::env::vars_os`]) to `config`. Variables without [`ENV_PREFIX`] are ignored.
///
/// A prefixed variable that is not a security setting, or is not Unicode, is refused
/// as a [`KafkaError::ClientConfig`] that names the variable and what may be set (never
/// its value, which may be a password). librdkafka itself refuses an unknown
/// `ssl.`/`sasl.` property or a bad value when the client is created.
pub fn apply_security_settings(
    config: &mut ClientConfig,
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<(), KafkaError> {
    for (name, value) in vars {
        let Some(setting) = name.to_str().and_then(|name| name.strip_prefix(ENV_PREFIX)) else {
            continue;
        };
        let variable = format!("{ENV_PREFIX}{setting}");
        let property = setting.to_ascii_lowercase().replace('_', ".");
        let allowed = ALLOWED
            .iter()
            .any(|a| property == *a || (a.ends_with('.') && property.starts_with(a)));
        if !allowed {
            return Err(refused(format!(
                "{variable} (librdkafka's {property}) is not a connection security setting: \
                 {ENV_PREFIX} variables may set only security.protocol, ssl.* and sasl.* \
                 (for example {ENV_PREFIX}SASL_MECHANISM); unset it"
            )));
        }
        let Some(value) = value.to_str() else {
            return Err(refused(format!("{variable} is not valid Unicode")));
        };
        config.set(property, value);
    }
    Ok(())
}

/// The error for a refused variable: its description only (rdkafka's display appends
/// the key and value, left empty so that no secret is shown).
fn refused(description: String) -> KafkaError {
    KafkaError::ClientConfig(
        RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
        description,
        String::new(),
        String::new(),
    )
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)))
            .collect()
    }

    #[test]
    fn security_settings_become_librdkafka_properties() {
        let mut config = ClientConfig::new();
        apply_security_settings(
            &mut config,
            vars(&[
                ("SPR_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
                ("SPR_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                ("SPR_KAFKA_SSL_CA_LOCATION", "/etc/spr/ca.pem"),
                ("SPR_BOOTSTRAP", "kafka:9092"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/spr/ca.pem"));
        assert_eq!(config.config_map().len(), 3, "{:?}", config.config_map());
    }

    #[test]
    fn a_variable_for_anything_but_security_is_refused_without_its_value() {
        for name in [
            "SPR_KAFKA_ENABLE_IDEMPOTENCE",
            "SPR_KAFKA_ACKS",
            "SPR_KAFKA_ENABLE_AUTO_COMMIT",
            "SPR_KAFKA_SECURITY_PROTOCOL_X",
            "SPR_KAFKA_SSLX",
            "SPR_KAFKA_",
        ] {
            let mut config = ClientConfig::new();
            let error = apply_security_settings(&mut config, vars(&[(name, "s3cret")]))
                .expect_err(name)
                .to_string();
            assert!(error.contains(name), "{error}");
            assert!(
                error.contains("security.protocol, ssl.* and sasl.*"),
                "{error}"
            );
            assert!(!error.contains("s3cret"), "{error}");
            assert!(config.config_map().is_empty());
        }
    }

    #[test]
    fn tls_settings_reach_librdkafka_which_checks_them_when_a_client_is_created() {
        let client = |pairs: &[(&str, &str)]| {
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", "127.0.0.1:9");
            apply_security_settings(&mut config, vars(pairs)).unwrap();
            config
                .create::<rdkafka::consumer::BaseConsumer>()
                .map(drop)
                .map_err(|e| e.to_string())
        };
        let sasl_ssl = [
            ("SPR_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("SPR_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("SPR_KAFKA_SASL_USERNAME", "spr-api"),
            ("SPR_KAFKA_SASL_PASSWORD", "s3cret"),
        ];
        client(&sasl_ssl).expect("this build's librdkafka speaks TLS and SASL/SCRAM");
        let error = client(&sasl_ssl[..2]).expect_err("SCRAM without a user");
        assert!(
            error.contains("sasl.username and sasl.password must be set"),
            "{error}"
        );
        let error = client(&[
            ("SPR_KAFKA_SECURITY_PROTOCOL", "SSL"),
            ("SPR_KAFKA_SSL_CA_LOCATION", "/nonexistent/spr-ca.pem"),
        ])
        .expect_err("a CA file that is not there");
        assert!(error.contains("ssl.ca.location failed"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_unicode_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let mut config = ClientConfig::new();
        let error = apply_security_settings(
            &mut config,
            [(
                OsString::from("SPR_KAFKA_SASL_PASSWORD"),
                OsString::from_vec(vec![0xff, 0xfe]),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("SPR_KAFKA_SASL_PASSWORD is not valid Unicode"),
            "{error}"
        );
    }
}
