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

use std::collections::BTreeMap;

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
/// Refused, as a [`KafkaError::ClientConfig`] that names the variable and never shows
/// its value (it may be a password): a prefixed variable that is not a security
/// setting; one that librdkafka does not know or whose value it refuses (a misspelt
/// `SPR_KAFKA_SASL_PASWORD` is not passed on, as librdkafka's own error would print
/// the value); a name or value that is not Unicode; two variables for one property;
/// and TLS or SASL settings that the security protocol would silently ignore (a
/// password with no `SASL_*` protocol, a CA with no TLS), so that a missing protocol
/// does not quietly connect in plain text.
pub fn apply_security_settings(
    config: &mut ClientConfig,
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<(), KafkaError> {
    // property -> (the variable that set it, its value)
    let mut settings: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (name, value) in vars {
        let lossy_name = name.to_string_lossy();
        let Some(setting) = lossy_name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let variable = format!("{ENV_PREFIX}{setting}");
        if name.to_str().is_none() {
            return Err(refused(format!(
                "{variable}: the name is not valid Unicode"
            )));
        }
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
            return Err(refused(format!(
                "{variable}: the value is not valid Unicode"
            )));
        };
        if let Err(error) = ClientConfig::new()
            .set(&property, value)
            .create_native_config()
        {
            let why = match error {
                KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..) => {
                    "librdkafka has no such property (is it misspelt?)"
                }
                _ => "librdkafka refuses the value, or this build does not support the property",
            };
            return Err(refused(format!(
                "{variable} ({property}): {why}; the value is not shown"
            )));
        }
        let earlier = settings.insert(property.clone(), (variable.clone(), value.to_owned()));
        if let Some((earlier, _)) = earlier {
            return Err(refused(format!(
                "{earlier} and {variable} both set {property}; keep one"
            )));
        }
    }
    let protocol = settings
        .get("security.protocol")
        .map_or("PLAINTEXT".to_owned(), |(_, value)| {
            value.to_ascii_uppercase()
        });
    for (property, (variable, _)) in &settings {
        let (needs, protocols) = match property.split('.').next() {
            Some("ssl") => ("TLS", ["SSL", "SASL_SSL"]),
            Some("sasl") => ("SASL", ["SASL_PLAINTEXT", "SASL_SSL"]),
            _ => continue,
        };
        if !protocols.contains(&protocol.as_str()) {
            return Err(refused(format!(
                "{variable} is a {needs} setting, but the security protocol is {protocol}, \
                 which would ignore it; set {ENV_PREFIX}SECURITY_PROTOCOL to {}",
                protocols.join(" or ")
            )));
        }
    }
    for (property, (_, value)) in settings {
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
    fn a_setting_librdkafka_would_refuse_is_refused_without_its_value() {
        for (name, why) in [
            ("SPR_KAFKA_SASL_PASWORD", "no such property"),
            (
                "SPR_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
                "does not support",
            ),
            ("SPR_KAFKA_SECURITY_PROTOCOL", "refuses the value"),
        ] {
            let mut config = ClientConfig::new();
            let error = apply_security_settings(&mut config, vars(&[(name, "s3cret")]))
                .expect_err(name)
                .to_string();
            assert!(error.contains(name) && error.contains(why), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn settings_the_protocol_would_ignore_or_that_clash_are_refused() {
        for (pairs, expected) in [
            (
                &[("SPR_KAFKA_SASL_PASSWORD", "s3cret")][..],
                "SPR_KAFKA_SASL_PASSWORD is a SASL setting, but the security protocol is PLAINTEXT",
            ),
            (
                &[
                    ("SPR_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
                    ("SPR_KAFKA_SSL_CA_LOCATION", "/etc/spr/ca.pem"),
                ][..],
                "is a TLS setting, but the security protocol is SASL_PLAINTEXT",
            ),
            (
                &[
                    ("SPR_KAFKA_SECURITY_PROTOCOL", "SSL"),
                    ("SPR_KAFKA_security_protocol", "SASL_SSL"),
                ][..],
                "SPR_KAFKA_SECURITY_PROTOCOL and SPR_KAFKA_security_protocol both set",
            ),
        ] {
            let mut config = ClientConfig::new();
            let error = apply_security_settings(&mut config, vars(pairs))
                .expect_err(expected)
                .to_string();
            assert!(error.contains(expected), "{error}");
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
            error.contains("SPR_KAFKA_SASL_PASSWORD: the value is not valid Unicode"),
            "{error}"
        );
    }
}
