//! `stratus.toml` and `STRATUS_*` overrides. Every option is defined once here, with its default; the example
//! file `stratus.example.toml` documents the same set.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store, master key and certificates live.
    pub data_dir: PathBuf,
    /// Organisation name used on first start.
    pub org_name: String,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub passwords: PasswordConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Admin API, portal, SAML and SCIM listener; port 0 picks an ephemeral port.
    pub addr: String,
    /// Serve HTTPS with the certificate below (or the generated dev certificate). Turn off only behind a
    /// TLS-terminating proxy.
    pub tls: bool,
    /// PEM certificate chain; empty uses `<data_dir>/certs/server.pem`.
    pub cert: String,
    /// PEM private key; empty uses `<data_dir>/certs/server-key.pem`.
    pub key: String,
    /// Host names and addresses the generated dev certificate covers.
    pub dev_cert_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// tracing filter, e.g. `info` or `stratus=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// argon2id memory in KiB.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Concurrent hash computations; 0 = number of CPUs.
    pub hash_concurrency: usize,
    /// Remember verified credentials so repeated logins skip argon2id.
    pub credential_cache: bool,
    pub credential_cache_ttl_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            org_name: "Stratus".into(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            passwords: PasswordConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:8443".into(),
            tls: true,
            cert: String::new(),
            key: String::new(),
            dev_cert_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            credential_cache: true,
            credential_cache_ttl_seconds: 300,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
}

fn env_parse<T: std::str::FromStr>(name: &'static str, slot: &mut T) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Ok(v) = std::env::var(name) {
        *slot = v.parse().map_err(|e: T::Err| ConfigError::Env {
            name,
            message: e.to_string(),
        })?;
    }
    Ok(())
}

impl Config {
    /// Load `path` when it exists (an explicitly named file must exist), then apply environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("stratus.toml"), false),
        };
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Config::default(),
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source: e,
                })
            }
        };
        cfg.apply_env()?;
        Ok(cfg)
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        env_parse("STRATUS_DATA_DIR", &mut self.data_dir)?;
        env_parse("STRATUS_ORG_NAME", &mut self.org_name)?;
        env_parse("STRATUS_HTTP_ADDR", &mut self.http.addr)?;
        env_parse("STRATUS_HTTP_TLS", &mut self.http.tls)?;
        env_parse("STRATUS_HTTP_CERT", &mut self.http.cert)?;
        env_parse("STRATUS_HTTP_KEY", &mut self.http.key)?;
        env_parse("STRATUS_LOG_FORMAT", &mut self.log.format)?;
        env_parse("STRATUS_LOG_LEVEL", &mut self.log.level)?;
        env_parse(
            "STRATUS_ARGON2_MEMORY_KIB",
            &mut self.passwords.argon2_memory_kib,
        )?;
        env_parse(
            "STRATUS_ARGON2_ITERATIONS",
            &mut self.passwords.argon2_iterations,
        )?;
        env_parse(
            "STRATUS_ARGON2_PARALLELISM",
            &mut self.passwords.argon2_parallelism,
        )?;
        env_parse(
            "STRATUS_HASH_CONCURRENCY",
            &mut self.passwords.hash_concurrency,
        )?;
        env_parse(
            "STRATUS_CREDENTIAL_CACHE",
            &mut self.passwords.credential_cache,
        )?;
        env_parse(
            "STRATUS_CREDENTIAL_CACHE_TTL_SECONDS",
            &mut self.passwords.credential_cache_ttl_seconds,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let text = include_str!("../../stratus.example.toml");
        let cfg: Config = toml::from_str(text).expect("example parses");
        let d = Config::default();
        assert_eq!(cfg.http.addr, d.http.addr);
        assert_eq!(
            cfg.passwords.argon2_memory_kib,
            d.passwords.argon2_memory_kib
        );
        assert_eq!(cfg.data_dir, d.data_dir);
    }

    #[test]
    fn unknown_option_is_rejected() {
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    }
}
