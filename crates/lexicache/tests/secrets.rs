//! Secrets never leak: every config, builder, backend, error, serializer, key and secret-store
//! type is built with known secret values (Redis and sentinel passwords, passwords inside URLs,
//! HMAC and AEAD key bytes, an OpenAI API key, secret-store values), then formatted with `{:?}`,
//! `{:#?}` and, where implemented, `{}`; none of the secrets may appear, not as text, nor as
//! lowercase or uppercase hex, base64 or the decimal `Debug` of the key bytes. Logs are
//! captured (a `tracing` subscriber and a `log` logger, for fred and reqwest, writing to one
//! buffer) around failing connects and failing signature checks, and checked the same way.
//!
//! Each table is a list of `Case`s, so covering a new type is one line. Servers: the tests
//! that talk to a live server read `LEXICACHE_TEST_REDIS_URL` and `LEXICACHE_TEST_REDIS_SENTINEL`;
//! the rest only contact dead loopback ports (127.0.0.1:1) and servers they start themselves.

use std::fmt::{Debug, Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lexicache::{CacheBackend, CacheService, EventBus, Serializer};
use lexicache_config::{
    CacheBackendConfig, CacheConfig, CacheProvider, ConfigError, ConfigLoader, ConfiguredSerializer,
};
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::{RedisBackend, RedisConfig, RedisLockStore};
use lexicache_semantic::{EmbeddingClient, OpenAiEmbedder};
use lexicache_serde::{
    Aead, BackendSecretStore, Compressing, Encrypted, EncryptionKey, Json, Postcard, Secret,
    SecretStore, Signed, SigningKey,
};
use lexicache_tiered::TieredBackend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// The secrets. Distinctive, so that a hit is never a coincidence.

const REDIS_PW: &str = "s3cr3t-redis-pw-7Q";
const URL_PW: &str = "s3cr3t-url-pw-8R";
const SENTINEL_PW: &str = "s3cr3t-sentinel-pw-9S";
const SENTINEL_URL_PW: &str = "s3cr3t-sentinel-url-pw-2T";
const OPENAI_KEY: &str = "sk-s3cr3t-openai-key-3U4V5W";
const STORED_SECRET: &str = "s3cr3t-stored-value-4X";
/// A value a signed or encrypted service caches.
const CACHED_VALUE: &str = "s3cr3t-cached-value-6K";
/// Key material too short to be accepted.
const SHORT_KEY: &str = "s3cr3t-short-key-5M";
/// HMAC-SHA256 key material, printable (as configuration gives it).
const HMAC_KEY: &[u8; 32] = b"s3cr3t-hmac-key-material-5Y6Z7A8";
/// The key rotated in.
const HMAC_KEY_2: &[u8; 32] = b"s3cr3t-hmac-rotated-key-9B0C1D2E";
/// AEAD key material, printable (as configuration gives it inline).
const AEAD_TEXT_KEY: &[u8; 32] = b"s3cr3t-aead-key-material-3F4G5H6";

/// AEAD key bytes that are not text (as `hex:` configuration or a key file gives them).
fn aead_key() -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(0x91))
}

/// A second, rotated-in AEAD key.
fn aead_key_2() -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(53).wrapping_add(0x0d))
}

/// Every rendering of every secret that must never be printed.
fn needles() -> &'static [(String, String)] {
    static NEEDLES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    NEEDLES.get_or_init(|| {
        let mut out = Vec::new();
        for text in [
            REDIS_PW,
            URL_PW,
            SENTINEL_PW,
            SENTINEL_URL_PW,
            OPENAI_KEY,
            STORED_SECRET,
            CACHED_VALUE,
            SHORT_KEY,
        ] {
            out.push((text.to_owned(), text.to_owned()));
        }
        let short_aead = &aead_key()[..31];
        for (name, bytes) in [
            ("HMAC key", HMAC_KEY.as_slice()),
            ("rotated HMAC key", HMAC_KEY_2.as_slice()),
            ("AEAD text key", AEAD_TEXT_KEY.as_slice()),
            ("AEAD key", aead_key().as_slice()),
            ("rotated AEAD key", aead_key_2().as_slice()),
            ("31-byte AEAD key", short_aead),
        ] {
            for (form, needle) in renderings(bytes) {
                out.push((format!("{name} as {form}"), needle));
            }
        }
        out
    })
}

/// The ways key bytes could be printed: as text (when printable), hex in either case (whole
/// and their first 16 bytes, for a truncated dump), base64 with and without padding, and the
/// `Debug` of a byte slice.
fn renderings(bytes: &[u8]) -> Vec<(&'static str, String)> {
    let lower: String = bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let mut out = vec![
        ("lowercase hex", lower.clone()),
        ("uppercase hex", lower.to_ascii_uppercase()),
        ("lowercase hex prefix", lower[..32].to_owned()),
        ("uppercase hex prefix", lower[..32].to_ascii_uppercase()),
        ("base64", base64(bytes)),
        (
            "unpadded base64",
            base64(bytes).trim_end_matches('=').to_owned(),
        ),
        (
            "decimal Debug",
            format!("{:?}", &bytes[..8])
                .trim_end_matches(']')
                .to_owned(),
        ),
    ];
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.chars().all(|c| c.is_ascii_graphic()) {
            out.push(("text", text.to_owned()));
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), enough to look for a key printed that way.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Panics, naming the secret and the case, if `shown` contains any secret.
fn assert_no_secret(case: &str, shown: &str) {
    for (name, needle) in needles() {
        assert!(
            !shown.contains(needle.as_str()),
            "{case} shows the secret {name} ({needle:?}):\n{shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The table rows: a name and every rendering of one value.

struct Case {
    name: String,
    shown: Vec<String>,
}

impl Case {
    /// `{:?}` and `{:#?}`.
    fn debug<T: Debug + ?Sized>(name: impl Into<String>, value: &T) -> Self {
        Self {
            name: name.into(),
            shown: vec![format!("{value:?}"), format!("{value:#?}")],
        }
    }

    /// `{:?}`, `{:#?}` and `{}`.
    fn both<T: Debug + Display + ?Sized>(name: impl Into<String>, value: &T) -> Self {
        Self {
            name: name.into(),
            shown: vec![
                format!("{value:?}"),
                format!("{value:#?}"),
                format!("{value}"),
            ],
        }
    }

    /// An `Err`'s `{:?}`, `{:#?}` and `{}`; an `Ok` is a test failure (the case expects one).
    fn err<T: Debug, E: Debug + Display>(name: impl Into<String>, result: &Result<T, E>) -> Self {
        let name = name.into();
        match result {
            Err(e) => Self::both(name, e),
            Ok(v) => panic!("{name}: expected an error, got {v:?}"),
        }
    }
}

/// Checks every rendering of every case; also that none is empty (a case that prints nothing
/// proves nothing), and everything logged so far by any test.
fn check(cases: &[Case]) {
    assert!(!cases.is_empty());
    for case in cases {
        for shown in &case.shown {
            assert!(!shown.trim().is_empty(), "{} printed nothing", case.name);
            assert_no_secret(&case.name, shown);
        }
    }
    assert_no_secret("the captured logs", &logs());
}

// ---------------------------------------------------------------------------------------------
// Log capture: one process-wide buffer fed by a `tracing` subscriber (our crates) and a `log`
// logger (fred, reqwest), installed by every test so that whatever any test logs is checked.

static LOGS: Mutex<String> = Mutex::new(String::new());

fn push_log(line: &str) {
    let mut logs = LOGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    logs.push_str(line);
    logs.push('\n');
}

fn logs() -> String {
    LOGS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Collects an event's or span's fields as `name=value` text.
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

/// Records every span and event, at every level.
struct CaptureTracing {
    next_id: AtomicU64,
}

impl tracing::Subscriber for CaptureTracing {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields(format!("span {}:", span.metadata().name()));
        span.record(&mut fields);
        push_log(&fields.0);
        tracing::span::Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields("span record:".to_owned());
        values.record(&mut fields);
        push_log(&fields.0);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let md = event.metadata();
        let mut fields = Fields(format!("{} {}:", md.level(), md.target()));
        event.record(&mut fields);
        push_log(&fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Records every `log` record (fred and reqwest log through `log`).
struct CaptureLog;

impl log::Log for CaptureLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        push_log(&format!(
            "{} {}: {}",
            record.level(),
            record.target(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

static CAPTURE_LOG: CaptureLog = CaptureLog;

/// Installs the log capture once per process.
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(CaptureTracing {
            next_id: AtomicU64::new(1),
        })
        .expect("no other global tracing subscriber in this test binary");
        log::set_logger(&CAPTURE_LOG).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

// ---------------------------------------------------------------------------------------------
// Configuration documents holding every secret, in every format.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("printable key")
}

/// Redis backends with every kind of secret, and a signed serializer with two keys.
fn yaml_config() -> String {
    format!(
        r#"
backends:
  - type: redis
    name: sentinel
    default: true
    mode: sentinel
    nodes: [127.0.0.1:26390]
    sentinel_master: lexicache
    username: app
    password: {REDIS_PW}
    sentinel_password: {SENTINEL_PW}
  - type: redis
    name: url
    url: "redis://app:{URL_PW}@127.0.0.1:6390/0"
  - type: redis
    name: sentinel-url
    url: "redis-sentinel://:{URL_PW}@127.0.0.1:26390/0?sentinelServiceName=lexicache&sentinelPassword={SENTINEL_URL_PW}"
  - type: tiered
    name: near
    invalidation: auto
    l2:
      type: redis
      url: "redis://app:{URL_PW}@127.0.0.1:6390/1"
  - type: memcached
    name: mc
    servers: [127.0.0.1:11290]
service:
  serializer:
    type: signed
    keys:
      - id: 2
        key: {hmac2}
      - id: 1
        key: "hex:{hmac1}"
"#,
        hmac2 = text(HMAC_KEY_2),
        hmac1 = hex(HMAC_KEY),
    )
}

/// An encrypted serializer with a `hex:` key and a cluster URL with a password.
fn json_config() -> String {
    format!(
        r#"{{
  "backends": [
    {{ "type": "redis", "name": "cluster", "url": "redis-cluster://:{URL_PW}@127.0.0.1:7000?node=127.0.0.1:7001" }},
    {{ "type": "redis", "name": "plain", "host": "127.0.0.1", "port": 6390, "password": "{REDIS_PW}", "default": true }}
  ],
  "service": {{
    "serializer": {{
      "type": "encrypted", "algorithm": "chacha20-poly1305", "format": "postcard",
      "keys": [ {{ "id": 7, "key": "hex:{aead}" }}, {{ "id": 6, "key": "hex:{aead2}" }} ]
    }}
  }}
}}"#,
        aead = hex(&aead_key()),
        aead2 = hex(&aead_key_2()),
    )
}

/// An encrypted serializer with a text key, and a tiered backend over a password-protected
/// sentinel.
fn toml_config() -> String {
    format!(
        r#"
[[backends]]
type = "tiered"
name = "near"
[backends.l2]
type = "redis"
mode = "sentinel"
nodes = ["127.0.0.1:26390"]
sentinel_master = "lexicache"
password = "{REDIS_PW}"
sentinel_password = "{SENTINEL_PW}"

[service.serializer]
type = "encrypted"
compression = true
keys = [{{ id = 3, key = "{aead}" }}]
"#,
        aead = text(AEAD_TEXT_KEY),
    )
}

/// The same secrets as environment variables, with a unique prefix.
fn env_vars() -> Vec<(String, String)> {
    [
        ("BACKENDS__0__TYPE", "redis".to_owned()),
        ("BACKENDS__0__NAME", "env".to_owned()),
        ("BACKENDS__0__PASSWORD", REDIS_PW.to_owned()),
        ("BACKENDS__0__SENTINEL_PASSWORD", SENTINEL_PW.to_owned()),
        ("BACKENDS__0__MODE", "sentinel".to_owned()),
        ("BACKENDS__0__NODES", "127.0.0.1:26390".to_owned()),
        ("BACKENDS__0__SENTINEL_MASTER", "lexicache".to_owned()),
        ("BACKENDS__1__TYPE", "redis".to_owned()),
        ("BACKENDS__1__NAME", "env-url".to_owned()),
        ("BACKENDS__1__DEFAULT", "true".to_owned()),
        (
            "BACKENDS__1__URL",
            format!("redis://:{URL_PW}@127.0.0.1:6390/2"),
        ),
        ("SERVICE__SERIALIZER__TYPE", "signed".to_owned()),
        ("SERVICE__SERIALIZER__KEYS__0__ID", "4".to_owned()),
        (
            "SERVICE__SERIALIZER__KEYS__0__KEY",
            text(HMAC_KEY).to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (format!("LXSECRETS12_{k}"), v))
    .collect()
}

/// A file holding `contents`, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("lexicache-secrets-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write a temp file");
        Self(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every part of a loaded config, each a case.
fn config_cases(source: &str, config: &CacheConfig, cases: &mut Vec<Case>) {
    cases.push(Case::debug(format!("{source}: CacheConfig"), config));
    for backend in &config.backends {
        let name = format!("{source}: backend {}", backend.name());
        cases.push(Case::debug(&name, backend));
        match backend {
            CacheBackendConfig::Redis(r) => {
                cases.push(Case::debug(format!("{name}: RedisBackendConfig"), r));
                for secret in [&r.password, &r.sentinel_password].into_iter().flatten() {
                    cases.push(Case::both(format!("{name}: Secret"), secret));
                }
            }
            CacheBackendConfig::Tiered(t) => {
                cases.push(Case::debug(format!("{name}: TieredBackendConfig"), t));
                cases.push(Case::debug(format!("{name}: l2"), &*t.l2));
            }
            CacheBackendConfig::Memcached(m) => {
                cases.push(Case::debug(format!("{name}: MemcachedBackendConfig"), m));
            }
            CacheBackendConfig::Memory(m) => {
                cases.push(Case::debug(format!("{name}: MemoryBackendConfig"), m));
            }
        }
    }
    let service = &config.service;
    cases.push(Case::debug(format!("{source}: ServiceConfig"), service));
    cases.push(Case::debug(
        format!("{source}: SerializerConfig"),
        &service.serializer,
    ));
    for key in &service.serializer.keys {
        cases.push(Case::debug(format!("{source}: KeyConfig {}", key.id), key));
        if let Some(secret) = &key.key {
            cases.push(Case::both(
                format!("{source}: key {} Secret", key.id),
                secret,
            ));
        }
    }
    let serializer = ConfiguredSerializer::from_config(&service.serializer)
        .unwrap_or_else(|e| panic!("{source}: serializer: {e}"));
    cases.push(Case::debug(
        format!("{source}: ConfiguredSerializer"),
        &serializer,
    ));
}

#[test]
fn debug_and_display_of_configs_never_show_secrets() {
    capture_logs();
    let mut cases = Vec::new();

    let password_file = TempFile::new("password", format!("{REDIS_PW}\n").as_bytes());
    // Key files are text: `hex:` carries bytes that are not.
    let key_file = TempFile::new("key", format!("hex:{}\n", hex(&aead_key())).as_bytes());
    let with_files = format!(
        "backends:\n  - type: redis\n    password_file: {}\n    sentinel_password: {SENTINEL_PW}\n\
         service:\n  serializer:\n    type: encrypted\n    keys:\n      - id: 9\n        key_file: {}\n",
        password_file.path(),
        key_file.path(),
    );

    for (var, value) in env_vars() {
        std::env::set_var(var, value);
    }
    let loaders = [
        ("YAML", ConfigLoader::new().yaml(&yaml_config())),
        ("JSON", ConfigLoader::new().json(&json_config())),
        ("TOML", ConfigLoader::new().toml(&toml_config())),
        ("env", ConfigLoader::new().env_prefixed("LXSECRETS12_")),
        ("secret files", ConfigLoader::new().yaml(&with_files)),
        (
            "YAML with env and map overrides",
            ConfigLoader::new()
                .yaml(&yaml_config())
                .env_prefixed("LXSECRETS12_NOTHING_")
                .map(std::collections::BTreeMap::from([("name", "from-a-map")])),
        ),
    ];
    for (source, loader) in loaders {
        cases.push(Case::debug(format!("{source}: ConfigLoader"), &loader));
        let unvalidated = loader
            .load_unvalidated()
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        let config = loader.load().unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(config, unvalidated);
        config_cases(source, &config, &mut cases);
    }

    // Addresses holding credentials are refused by validation (see
    // `config_errors_never_quote_secrets`), and not printed by a config that was not validated.
    let unvalidated = ConfigLoader::new()
        .yaml(&format!(
            "backends:\n  - type: redis\n    mode: cluster\n    host: \"u:{REDIS_PW}@127.0.0.1\"\n    \
             nodes: [\"u:{URL_PW}@127.0.0.1:7000\", \"127.0.0.1:7001\"]\n"
        ))
        .load_unvalidated()
        .unwrap();
    config_cases("unvalidated addresses", &unvalidated, &mut cases);

    // The secrets are in there, only hidden.
    let yaml = CacheConfig::from_yaml_str(&yaml_config()).unwrap();
    let CacheBackendConfig::Redis(sentinel) = &yaml.backends[0] else {
        panic!("redis first");
    };
    assert_eq!(
        sentinel.password.as_ref().map(|s| s.expose()),
        Some(REDIS_PW)
    );
    let CacheBackendConfig::Redis(url) = &yaml.backends[1] else {
        panic!("redis second");
    };
    assert!(url.url.as_deref().unwrap().contains(URL_PW));
    let files = ConfigLoader::new().yaml(&with_files).load().unwrap();
    let CacheBackendConfig::Redis(from_file) = &files.backends[0] else {
        panic!("redis");
    };
    assert_eq!(
        from_file.password.as_ref().map(|s| s.expose()),
        Some(REDIS_PW)
    );
    assert_eq!(
        files.service.serializer.keys[0].material().unwrap(),
        Some(aead_key().to_vec())
    );

    check(&cases);
}

/// A config document that must be refused, and why.
fn refused(name: &str, result: Result<CacheConfig, ConfigError>) -> Vec<Case> {
    let core: Result<CacheConfig, lexicache::Error> = result.clone().map_err(Into::into);
    vec![
        Case::err(format!("{name}: ConfigError"), &result),
        Case::err(format!("{name}: as lexicache::Error"), &core),
    ]
}

fn yaml_redis(fields: &str) -> Result<CacheConfig, ConfigError> {
    CacheConfig::from_yaml_str(&format!("backends:\n  - type: redis\n{fields}"))
}

fn yaml_serializer(kind: &str, key: &str) -> Result<CacheConfig, ConfigError> {
    CacheConfig::from_yaml_str(&format!(
        "service:\n  serializer:\n    type: {kind}\n    keys:\n      - id: 1\n        key: \"{key}\"\n"
    ))
}

#[test]
fn config_errors_never_quote_secrets() {
    capture_logs();
    let password_file = TempFile::new("conflict", REDIS_PW.as_bytes());
    let short_aead = hex(&aead_key()[..31]);
    let cases: Vec<Case> = [
        refused(
            "URL without a host",
            yaml_redis(&format!("    url: \"redis://u:{URL_PW}@:x\"\n")),
        ),
        refused(
            "URL with a bad port",
            yaml_redis(&format!("    url: \"redis://u:{URL_PW}@127.0.0.1:port\"\n")),
        ),
        refused(
            "URL with a bad database",
            yaml_redis(&format!("    url: \"redis://u:{URL_PW}@127.0.0.1:6390/db\"\n")),
        ),
        refused(
            "URL with a database path",
            yaml_redis(&format!("    url: \"redis://u:{URL_PW}@127.0.0.1:6390/0/1\"\n")),
        ),
        refused(
            "URL that is not a URL",
            yaml_redis(&format!("    url: \"u:{URL_PW}@127.0.0.1\"\n")),
        ),
        refused(
            "cluster URL with credentials in a node",
            yaml_redis(&format!(
                "    url: \"redis-cluster://u:{URL_PW}@127.0.0.1:7000?node=u:{URL_PW}@127.0.0.1:7001\"\n"
            )),
        ),
        refused(
            "sentinel URL without a service name",
            yaml_redis(&format!(
                "    url: \"redis-sentinel://:{URL_PW}@127.0.0.1:26390?sentinelPassword={SENTINEL_URL_PW}\"\n"
            )),
        ),
        refused(
            "URL beside host",
            yaml_redis(&format!(
                "    url: \"redis://:{URL_PW}@127.0.0.1:6390\"\n    host: 127.0.0.1\n"
            )),
        ),
        refused(
            "cluster node with credentials",
            yaml_redis(&format!(
                "    mode: cluster\n    nodes: [\"u:{URL_PW}@127.0.0.1:7000\"]\n"
            )),
        ),
        refused(
            "host with credentials",
            yaml_redis(&format!("    host: \"app:{REDIS_PW}@127.0.0.1\"\n")),
        ),
        refused(
            "sentinel node with credentials",
            yaml_redis(&format!(
                "    mode: sentinel\n    sentinel_master: m\n    nodes: \"127.0.0.1:26390,:{SENTINEL_PW}@127.0.0.1:26391\"\n"
            )),
        ),
        refused(
            "password and password_file",
            yaml_redis(&format!(
                "    password: {REDIS_PW}\n    password_file: {}\n",
                password_file.path()
            )),
        ),
        refused(
            "a misspelt password field",
            yaml_redis(&format!("    passwrod: {REDIS_PW}\n")),
        ),
        refused(
            "a password on a memcached backend",
            CacheConfig::from_yaml_str(&format!(
                "backends:\n  - type: memcached\n    password: {REDIS_PW}\n"
            )),
        ),
        refused(
            "memcached server with credentials",
            CacheConfig::from_yaml_str(&format!(
                "backends:\n  - type: memcached\n    servers: [\"u:{REDIS_PW}@127.0.0.1:11290\"]\n"
            )),
        ),
        refused(
            "HMAC key too short",
            yaml_serializer("signed", SHORT_KEY),
        ),
        refused(
            "AEAD key one byte short",
            yaml_serializer("encrypted", &format!("hex:{short_aead}")),
        ),
        refused(
            "AEAD key in text, too short",
            yaml_serializer("encrypted", SHORT_KEY),
        ),
        refused(
            "hex key with a non-hex digit",
            yaml_serializer("signed", &format!("hex:{}zz", hex(HMAC_KEY))),
        ),
        refused(
            "hex key with an odd number of digits",
            yaml_serializer("signed", &format!("hex:{}0", hex(HMAC_KEY))),
        ),
        refused(
            "two keys with one id",
            CacheConfig::from_yaml_str(&format!(
                "service:\n  serializer:\n    type: signed\n    keys:\n      - {{ id: 1, key: {} }}\n      - {{ id: 1, key: {} }}\n",
                text(HMAC_KEY),
                text(HMAC_KEY_2)
            )),
        ),
        refused(
            "YAML syntax error on the password line",
            yaml_redis(&format!("    password: \"{REDIS_PW}\n    port: 6390\n")),
        ),
        refused(
            "YAML indentation error after a password",
            yaml_redis(&format!("    password: {REDIS_PW}\n   port: [6390\n")),
        ),
        refused(
            "JSON syntax error in the password",
            CacheConfig::from_json_str(&format!(
                "{{\"backends\": [{{\"type\": \"redis\", \"password\": \"{REDIS_PW}}}]}}"
            )),
        ),
        refused(
            "TOML syntax error on the password line",
            CacheConfig::from_toml_str(&format!(
                "[[backends]]\ntype = \"redis\"\npassword = \"{REDIS_PW}\nport = 6390\n"
            )),
        ),
        refused(
            "TOML syntax error after a password",
            CacheConfig::from_toml_str(&format!(
                "[[backends]]\ntype = \"redis\"\npassword = \"{REDIS_PW}\" port = 6390\n"
            )),
        ),
        refused(
            "TOML key with a bad value",
            CacheConfig::from_toml_str(&format!(
                "[service.serializer]\ntype = \"signed\"\nkeys = [{{ id = 1, key = \"{}\" }}] x\n",
                text(HMAC_KEY)
            )),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    check(&cases);

    // Hidden, the errors still point at the mistake.
    let toml = CacheConfig::from_toml_str(&format!(
        "[[backends]]\ntype = \"redis\"\npassword = \"{REDIS_PW}\nport = 6390\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(toml.contains("line 3, column"), "{toml}");
    let node = yaml_redis(&format!(
        "    mode: cluster\n    nodes: [\"u:{URL_PW}@127.0.0.1:7000\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(node.contains("`backends.0.nodes.0`"), "{node}");
    assert!(node.contains("***@127.0.0.1:7000"), "{node}");
}

// ---------------------------------------------------------------------------------------------
// Builders, backends and the objects built from them.

fn dead_redis_url() -> String {
    format!("redis://app:{URL_PW}@127.0.0.1:1/0")
}

fn signed() -> Signed<Json> {
    let s = Signed::new(Json, [SigningKey::new(1, HMAC_KEY).unwrap()]).unwrap();
    s.rotate_key(SigningKey::new(2, HMAC_KEY_2).unwrap())
        .unwrap();
    s
}

fn encrypted() -> Encrypted<Compressing<Postcard>> {
    let e = Encrypted::new(
        Compressing::new(Postcard),
        [EncryptionKey::new(1, Aead::Aes256Gcm, aead_key()).unwrap()],
    )
    .unwrap();
    e.rotate_key(EncryptionKey::new(2, Aead::ChaCha20Poly1305, aead_key_2()).unwrap())
        .unwrap();
    e
}

#[tokio::test]
async fn debug_of_builders_and_backends_never_shows_secrets() {
    capture_logs();
    let with_password = RedisBackend::builder()
        .standalone("127.0.0.1", 1)
        .username("app")
        .password(REDIS_PW)
        .prefix("secrets-test:");
    let with_sentinel = RedisBackend::builder()
        .sentinel([("127.0.0.1", 1)], "lexicache")
        .password(REDIS_PW)
        .sentinel_password(SENTINEL_PW);
    let with_url = RedisBackend::builder().url(&dead_redis_url());
    let with_sentinel_url = RedisBackend::builder().url(&format!(
        "redis-sentinel://:{URL_PW}@127.0.0.1:1/0?sentinelServiceName=m&sentinelPassword={SENTINEL_URL_PW}"
    ));
    let with_bad_url = RedisBackend::builder().url(&format!("redis://u:{URL_PW}@127.0.0.1:port/0"));
    let with_bad_cluster_url = RedisBackend::builder().url(&format!(
        "redis-cluster://u:{URL_PW}@127.0.0.1:1?node=u:{URL_PW}@127.0.0.1:2"
    ));
    let config = RedisConfig::from_url(&format!(
        "redis-sentinel://u:{URL_PW}@127.0.0.1:1/0?sentinelServiceName=m&sentinelPassword={SENTINEL_URL_PW}"
    ))
    .unwrap();
    assert_eq!(config.password.as_deref(), Some(URL_PW));
    assert_eq!(config.sentinel_password.as_deref(), Some(SENTINEL_URL_PW));

    // A backend that connects in the background to a dead port, with a password.
    let events = EventBus::new();
    let lazy = RedisBackend::builder()
        .url(&dead_redis_url())
        .password(REDIS_PW)
        .connect_timeout(Duration::from_millis(100))
        .events(events.clone())
        .connect_lazy()
        .unwrap();
    let lock_store = RedisLockStore::new(&lazy);
    let service = CacheService::builder(lazy.clone())
        .serializer(signed())
        .build();
    let service_builder = CacheService::builder(lazy.clone()).serializer(encrypted());
    let tiered = TieredBackend::builder(MemoryBackend::new(), lazy.clone());

    let memcached = MemcachedBackend::builder()
        .servers(["127.0.0.1:11290", &format!("u:{REDIS_PW}@127.0.0.1:11291")]);
    let memcached_dsn =
        MemcachedBackend::builder().server(format!("memcached://u:{REDIS_PW}@127.0.0.1:11291"));

    let openai = OpenAiEmbedder::builder("http://127.0.0.1:1/v1", "text-embedding-3-small", 8)
        .api_key(OPENAI_KEY);
    let openai_url = OpenAiEmbedder::builder(
        format!("http://u:{URL_PW}@127.0.0.1:1/v1"),
        "text-embedding-3-small",
        8,
    )
    .api_key(OPENAI_KEY);
    let embedder = openai.clone().build().unwrap();

    let mut cases = vec![
        Case::debug("RedisBackendBuilder with password()", &with_password),
        Case::debug(
            "RedisBackendBuilder with sentinel_password()",
            &with_sentinel,
        ),
        Case::debug("RedisBackendBuilder with a URL password", &with_url),
        Case::debug(
            "RedisBackendBuilder with a sentinel URL",
            &with_sentinel_url,
        ),
        Case::debug("RedisBackendBuilder with a bad URL", &with_bad_url),
        Case::debug(
            "RedisBackendBuilder with a bad cluster URL",
            &with_bad_cluster_url,
        ),
        Case::debug("RedisConfig from a sentinel URL", &config),
        Case::debug("RedisBackend", &lazy),
        Case::debug("RedisLockStore", &lock_store),
        Case::debug("CacheService over Redis, signed", &service),
        Case::debug(
            "CacheServiceBuilder over Redis, encrypted",
            &service_builder,
        ),
        Case::debug("TieredBackendBuilder over Redis", &tiered),
        Case::debug("MemcachedBackendBuilder with credentials", &memcached),
        Case::debug("MemcachedBackendBuilder with a DSN", &memcached_dsn),
        Case::debug("OpenAiEmbedderBuilder", &openai),
        Case::debug("OpenAiEmbedderBuilder with a URL password", &openai_url),
        Case::debug("OpenAiEmbedder", &embedder),
    ];

    // The lazy backend failing to connect: its error and the Disconnected event.
    let mut rx = events.subscribe();
    let get = lazy.get("k").await;
    cases.push(Case::err(
        "get on a Redis backend that cannot connect",
        &get,
    ));
    if let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        cases.push(Case::debug("CacheEvent of a failed connect", &event));
    }
    check(&cases);
}

// ---------------------------------------------------------------------------------------------
// Serializers, keys and secret stores.

#[tokio::test]
async fn debug_and_display_of_serializers_keys_and_secret_stores_never_show_key_material() {
    capture_logs();
    let store = BackendSecretStore::new(
        MemoryBackend::new(),
        [EncryptionKey::new(1, Aead::ChaCha20Poly1305, aead_key()).unwrap()],
    )
    .unwrap()
    .prefix("vault:");
    store
        .rotate_key(EncryptionKey::new(2, Aead::Aes256Gcm, aead_key_2()).unwrap())
        .unwrap();
    store
        .set("db/password", &Secret::from(STORED_SECRET))
        .await
        .unwrap();
    let read = store.get("db/password").await.unwrap().unwrap();
    assert_eq!(read.expose_str(), Some(STORED_SECRET));
    let dyn_store: Arc<dyn SecretStore> = Arc::new(store);
    let binary = Secret::from(aead_key().to_vec());
    let config_secret = lexicache_config::Secret::new(REDIS_PW);

    let cases = vec![
        Case::debug("SigningKey", &SigningKey::new(1, HMAC_KEY).unwrap()),
        Case::debug(
            "EncryptionKey AES-256-GCM",
            &EncryptionKey::new(1, Aead::Aes256Gcm, aead_key()).unwrap(),
        ),
        Case::debug(
            "EncryptionKey ChaCha20-Poly1305",
            &EncryptionKey::new(1, Aead::ChaCha20Poly1305, AEAD_TEXT_KEY).unwrap(),
        ),
        Case::debug("Signed after rotation", &signed()),
        Case::debug(
            "Signed over Compressing",
            &Signed::new(
                Compressing::new(Postcard),
                [SigningKey::new(1, HMAC_KEY).unwrap()],
            )
            .unwrap(),
        ),
        Case::debug("Encrypted after rotation", &encrypted()),
        Case::debug(
            "Encrypted over Json",
            &Encrypted::new(
                Json,
                [EncryptionKey::new(5, Aead::Aes256Gcm, AEAD_TEXT_KEY).unwrap()],
            )
            .unwrap(),
        ),
        Case::debug("BackendSecretStore", &dyn_store),
        Case::both("serde Secret read back", &read),
        Case::both("serde Secret of key bytes", &binary),
        Case::both("config Secret", &config_secret),
        Case::debug(
            "CacheService signed",
            &CacheService::builder(MemoryBackend::new())
                .serializer(signed())
                .build(),
        ),
    ];
    check(&cases);
}

// ---------------------------------------------------------------------------------------------
// Errors from failures that involve a secret.

/// A tiny HTTP server on loopback that answers every request with `status` and a body
/// repeating the request's `Authorization` header, as a careless proxy might.
async fn echoing_server(status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the body by Content-Length.
                let header_end = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..header_end]).into_owned();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_owned())
                    })
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while request.len() < header_end + len {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let auth = header("authorization").unwrap_or_default();
                let body = if status == 200 {
                    format!(r#"{{"data": "{auth}"}}"#)
                } else {
                    format!(r#"{{"error": {{"message": "Incorrect API key provided: {auth}"}}}}"#)
                };
                let response = format!(
                    "HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

fn embedder(base_url: &str) -> OpenAiEmbedder {
    OpenAiEmbedder::builder(base_url, "text-embedding-3-small", 8)
        .api_key(OPENAI_KEY)
        .max_retries(1)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn errors_from_failures_involving_secrets_never_show_them() {
    capture_logs();
    let mut cases = Vec::new();

    // Redis: dead ports with passwords in the URL and in the builder, every deployment.
    let quick = |b: lexicache_redis::RedisBackendBuilder| {
        b.connect_timeout(Duration::from_millis(200))
            .command_timeout(Duration::from_millis(200))
    };
    let connects = [
        ("standalone URL", quick(RedisBackend::builder().url(&dead_redis_url()))),
        (
            "standalone password()",
            quick(
                RedisBackend::builder()
                    .standalone("127.0.0.1", 1)
                    .password(REDIS_PW),
            ),
        ),
        (
            "sentinel passwords",
            quick(
                RedisBackend::builder()
                    .sentinel([("127.0.0.1", 1)], "lexicache")
                    .password(REDIS_PW)
                    .sentinel_password(SENTINEL_PW),
            ),
        ),
        (
            "sentinel URL",
            quick(RedisBackend::builder().url(&format!(
                "redis-sentinel://:{URL_PW}@127.0.0.1:1?sentinelServiceName=m&sentinelPassword={SENTINEL_URL_PW}"
            ))),
        ),
        (
            "cluster URL",
            quick(RedisBackend::builder().url(&format!("redis-cluster://:{URL_PW}@127.0.0.1:1"))),
        ),
        (
            "malformed URL",
            quick(RedisBackend::builder().url(&format!("redis://u:{URL_PW}@127.0.0.1:port"))),
        ),
        (
            "cluster URL with credentials in a node",
            quick(RedisBackend::builder().url(&format!(
                "redis-cluster://u:{URL_PW}@127.0.0.1:1?node=u:{URL_PW}@127.0.0.1:2"
            ))),
        ),
    ];
    for (name, builder) in connects {
        let result = builder.connect().await;
        cases.push(Case::err(format!("redis connect: {name}"), &result));
    }
    cases.push(Case::err(
        "RedisConfig::from_url of a malformed URL",
        &RedisConfig::from_url(&format!("redis://u:{URL_PW}@:x")),
    ));

    // The provider connecting a password-protected Redis on a dead port.
    let config = CacheConfig::from_yaml_str(&format!(
        "backends:\n  - type: redis\n    url: \"redis://app:{URL_PW}@127.0.0.1:1/0\"\n    \
         connect_timeout: 200ms\n"
    ));
    let config = config.unwrap_or_else(|e| panic!("{e}"));
    cases.push(Case::err(
        "CacheProvider::from_config with a dead Redis",
        &CacheProvider::from_config(&config).await,
    ));

    // Memcached: credentials are refused without being repeated.
    cases.push(Case::err(
        "memcached build with credentials",
        &MemcachedBackend::builder()
            .server(format!("u:{REDIS_PW}@127.0.0.1:11290"))
            .build(),
    ));
    cases.push(Case::err(
        "memcached build with a DSN",
        &MemcachedBackend::builder()
            .server(format!("memcached://u:{REDIS_PW}@127.0.0.1:11290"))
            .build(),
    ));

    // Keys that are refused.
    cases.push(Case::err(
        "SigningKey too short",
        &SigningKey::new(1, SHORT_KEY),
    ));
    cases.push(Case::err(
        "EncryptionKey one byte short",
        &EncryptionKey::new(1, Aead::Aes256Gcm, &aead_key()[..31]),
    ));
    cases.push(Case::err(
        "EncryptionKey from a password",
        &EncryptionKey::new(1, Aead::ChaCha20Poly1305, SHORT_KEY),
    ));
    cases.push(Case::err(
        "removing the current key",
        &signed().remove_key(2),
    ));

    // Values that do not verify or decrypt: a wrong key, another cache key, tampering.
    let signed_value = signed().encode("k", &CACHED_VALUE).unwrap();
    let other_signer = Signed::new(Json, [SigningKey::new(2, HMAC_KEY).unwrap()]).unwrap();
    cases.push(Case::err(
        "bad signature (wrong key)",
        &other_signer.decode::<String>("k", &signed_value),
    ));
    cases.push(Case::err(
        "bad signature (moved to another key)",
        &signed().decode::<String>("other", &signed_value),
    ));
    let mut tampered = signed_value.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    cases.push(Case::err(
        "bad signature (tampered)",
        &signed().decode::<String>("k", &tampered),
    ));
    cases.push(Case::err(
        "signed value read as the wrong type",
        &signed().decode::<u64>("k", &signed_value),
    ));
    let sealed = encrypted().encode("k", &CACHED_VALUE).unwrap();
    let other_sealer = Encrypted::new(
        Compressing::new(Postcard),
        [EncryptionKey::new(2, Aead::ChaCha20Poly1305, aead_key()).unwrap()],
    )
    .unwrap();
    cases.push(Case::err(
        "decrypt with the wrong key",
        &other_sealer.decode::<String>("k", &sealed),
    ));
    cases.push(Case::err(
        "decrypt under another cache key",
        &encrypted().decode::<String>("other", &sealed),
    ));
    let plain = Json.encode("k", &CACHED_VALUE).unwrap();
    cases.push(Case::err(
        "JSON value read as the wrong type",
        &Json.decode::<u64>("k", &plain),
    ));
    cases.push(Case::err(
        "plain value read by Signed",
        &signed().decode::<String>("k", &plain),
    ));

    // The secret store with the wrong key, and a ciphertext moved to another name.
    let backend = Arc::new(MemoryBackend::new());
    let writer = BackendSecretStore::new(
        backend.clone(),
        [EncryptionKey::new(1, Aead::Aes256Gcm, aead_key()).unwrap()],
    )
    .unwrap();
    writer
        .set("db/password", &Secret::from(STORED_SECRET))
        .await
        .unwrap();
    let reader = BackendSecretStore::new(
        backend.clone(),
        [EncryptionKey::new(1, Aead::Aes256Gcm, aead_key_2()).unwrap()],
    )
    .unwrap();
    cases.push(Case::err(
        "secret store with the wrong key",
        &reader.get("db/password").await,
    ));
    let sealed_secret = backend.get("secret:db/password").await.unwrap().unwrap();
    backend
        .set("secret:moved", sealed_secret, None)
        .await
        .unwrap();
    cases.push(Case::err(
        "secret moved to another name",
        &writer.get("moved").await,
    ));

    // The OpenAI embedder: a dead port, a server repeating the key in an error, and one
    // repeating it in a success body.
    let dead = embedder("http://127.0.0.1:1/v1");
    cases.push(Case::err(
        "OpenAI embed against a dead port",
        &dead.embed(&["hello"]).await,
    ));
    let rejecting = embedder(&echoing_server(401).await);
    let rejected = rejecting.embed(&["hello"]).await;
    cases.push(Case::err("OpenAI 401 echoing the key", &rejected));
    let core: Result<_, lexicache::Error> = rejected.map_err(Into::into);
    cases.push(Case::err("OpenAI 401 as lexicache::Error", &core));
    let retrying = embedder(&echoing_server(503).await);
    cases.push(Case::err(
        "OpenAI 503 echoing the key",
        &retrying.embed(&["hello"]).await,
    ));
    let garbled = embedder(&echoing_server(200).await);
    cases.push(Case::err(
        "OpenAI 200 echoing the key in a bad body",
        &garbled.embed(&["hello"]).await,
    ));
    cases.push(Case::err(
        "OpenAI base URL with credentials",
        &OpenAiEmbedder::builder(format!("http://u:{URL_PW}@127.0.0.1:1/v1"), "m", 8)
            .api_key(OPENAI_KEY)
            .build(),
    ));
    cases.push(Case::err(
        "OpenAI key that cannot be a header",
        &OpenAiEmbedder::builder("http://127.0.0.1:1/v1", "m", 8)
            .api_key(format!("{OPENAI_KEY} \n"))
            .build(),
    ));

    check(&cases);
}

/// `LEXICACHE_TEST_REDIS_URL`'s `host:port`, or a panic saying how to start the servers.
fn live(var: &str) -> String {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `cargo xtask services up`, then export the variables it \
             prints (LEXICACHE_TEST_REDIS_URL=redis://127.0.0.1:6390, \
             LEXICACHE_TEST_REDIS_SENTINEL=127.0.0.1:26390, LEXICACHE_TEST_REDIS_SENTINEL_MASTER=lexicache)"
        )
    });
    let addr = value.trim_start_matches("redis://").trim_end_matches('/');
    addr.split(',').next().unwrap_or(addr).to_owned()
}

#[tokio::test]
async fn passwords_a_live_redis_and_sentinel_reject_are_not_repeated() {
    capture_logs();
    let redis = live("LEXICACHE_TEST_REDIS_URL");
    let sentinel = live("LEXICACHE_TEST_REDIS_SENTINEL");
    let master = std::env::var("LEXICACHE_TEST_REDIS_SENTINEL_MASTER")
        .unwrap_or_else(|_| "lexicache".to_owned());
    let (s_host, s_port) = sentinel.rsplit_once(':').expect("host:port");

    // The servers know no such user: AUTH is refused, and the reply quotes not the password.
    let mut cases = Vec::new();
    let standalone = RedisBackend::builder()
        .url(&format!("redis://no-such-user:{URL_PW}@{redis}/0"))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    cases.push(Case::err("live Redis refusing a password", &standalone));
    let via_sentinel = RedisBackend::builder()
        .url(&format!(
            "redis-sentinel://{s_host}:{s_port}?sentinelServiceName={master}\
             &sentinelUsername=no-such-user&sentinelPassword={SENTINEL_URL_PW}"
        ))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    cases.push(Case::err(
        "live sentinel refusing a password",
        &via_sentinel,
    ));
    check(&cases);
}

// ---------------------------------------------------------------------------------------------
// Logs.

#[tokio::test]
async fn logs_of_failing_connects_and_signature_checks_never_show_secrets() {
    capture_logs();

    // A service over a Redis that cannot be reached, with a password: the driver logs the
    // failed connects, the service logs the failed reads.
    let redis = RedisBackend::builder()
        .url(&dead_redis_url())
        .password(REDIS_PW)
        .connect_timeout(Duration::from_millis(100))
        .command_timeout(Duration::from_millis(100))
        .connect_lazy()
        .unwrap();
    let over_redis = CacheService::builder(redis).serializer(signed()).build();
    assert_eq!(over_redis.get::<String>("k").await, None);
    let _ = over_redis.try_set("k", &CACHED_VALUE, None).await;
    let failed = RedisBackend::builder()
        .sentinel([("127.0.0.1", 1)], "lexicache")
        .password(REDIS_PW)
        .sentinel_password(SENTINEL_PW)
        .connect_timeout(Duration::from_millis(100))
        .connect()
        .await;
    assert!(failed.is_err());

    // A signed cache holding a value written with another key, one tampered with, and one
    // moved: each read is a logged miss.
    let memory = Arc::new(MemoryBackend::new());
    let cache = CacheService::builder(memory.clone())
        .serializer(signed())
        .build();
    let forger = Signed::new(Json, [SigningKey::new(2, HMAC_KEY).unwrap()]).unwrap();
    memory
        .set(
            "forged",
            forger.encode("forged", &CACHED_VALUE).unwrap(),
            None,
        )
        .await
        .unwrap();
    memory
        .set(
            "moved",
            signed().encode("elsewhere", &CACHED_VALUE).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(cache.get::<String>("forged").await, None);
    assert_eq!(cache.get::<String>("moved").await, None);
    assert!(cache.try_get::<String>("moved").await.is_err());
    let sealed_cache = CacheService::builder(memory.clone())
        .serializer(encrypted())
        .build();
    assert_eq!(sealed_cache.get::<String>("moved").await, None);

    // An embedder whose server repeats the key; it retries once, logging the failure.
    let retrying = embedder(&echoing_server(503).await);
    assert!(retrying.embed(&["hello"]).await.is_err());

    // A provider that logs while building a keyless signed serializer.
    let keyless = CacheConfig::from_yaml_str(
        "backends:\n  - type: memory\nservice:\n  serializer:\n    type: signed\n",
    )
    .unwrap();
    let provider = CacheProvider::from_config(&keyless).await.unwrap();
    provider.shutdown().await;

    let captured = logs();
    // The capture works: the failures above were logged.
    assert!(
        captured.contains("embedding request failed; retrying"),
        "the embedder's retry was not captured:\n{captured}"
    );
    assert!(
        captured.contains("redis"),
        "nothing about redis was captured:\n{captured}"
    );
    assert_no_secret("the captured logs", &captured);
}
