//! [`ConfigLoader`]: composes YAML, JSON and TOML (files or text), maps and environment
//! variables with figment, later sources overriding earlier ones, then reads `*_file` secrets
//! and validates, keeping track of which source gave each value.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Json, Serialized, Toml, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::backend::{
    l2_refusal, BackendType, CacheBackendConfig, MemcachedBackendConfig, MemoryBackendConfig,
    RedisBackendConfig, TieredBackendConfig, TieredL1Config, NESTED_TIERED,
};
use crate::config::CacheConfig;
use crate::de::index_order;
use crate::error::{ConfigError, Location};
use crate::secret::Secret;

/// The default prefix of environment variables: `LEXICACHE_`.
pub const DEFAULT_ENV_PREFIX: &str = "LEXICACHE_";

/// The top-level fields; environment variables with the prefix but another first segment
/// (`LEXICACHE_TEST_REDIS_URL`, say) are not configuration and are left alone.
const TOP_LEVEL: [&str; 5] = ["name", "enabled", "environment", "backends", "service"];

/// Loads a [`CacheConfig`] from any mix of sources, later ones overriding earlier ones field
/// by field (figment's `merge`).
///
/// - Files and text: [`yaml_file`](Self::yaml_file), [`yaml`](Self::yaml),
///   [`json_file`](Self::json_file), [`json`](Self::json), [`toml_file`](Self::toml_file),
///   [`toml`](Self::toml); a missing file is [`ConfigError::FileNotFound`].
/// - [`map`](Self::map): anything serializable as a map (a `BTreeMap`, a `serde_json::Value`).
/// - [`env`](Self::env) / [`env_prefixed`](Self::env_prefixed): variables such as
///   `LEXICACHE_SERVICE__PROTECTION_MAX_WAIT=2s`; `__` separates nested fields and list
///   entries go by index (`LEXICACHE_BACKENDS__1__PASSWORD`), so a variable overrides one
///   field of a backend a file describes. Only variables whose first segment is a top-level
///   field (`name`, `enabled`, `environment`, `backends`, `service`) are read.
///
/// Durations are written `"500ms"`, `"30s"`, `"2m"`, `"1h"` or as a number of seconds.
/// Secrets come inline (from any source, typically the environment) or from a file named by
/// `password_file`, `sentinel_password_file` or `key_file`, read by [`load`](Self::load)
/// with its trailing newline trimmed.
///
/// ```
/// use lexicache_config::ConfigLoader;
///
/// let config = ConfigLoader::new()
///     .yaml("backends:\n  - type: memcached\n    servers: [127.0.0.1:11290]\n")
///     .json(r#"{"service": {"timeout": "250ms"}}"#)
///     .load()?;
/// assert_eq!(config.backends[0].name(), "memcached");
/// assert_eq!(config.service.timeout.unwrap().as_millis(), 250);
/// # Ok::<(), lexicache_config::ConfigError>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct ConfigLoader {
    figment: Figment,
    /// The first file asked for that does not exist.
    missing: Option<PathBuf>,
}

/// Shows the sources, never their values (which hold secrets).
impl std::fmt::Debug for ConfigLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<String> = self
            .figment
            .metadata()
            .map(|md| match &md.source {
                Some(figment::Source::File(path)) => format!("{} `{}`", md.name, path.display()),
                Some(figment::Source::Custom(prefix)) => format!("{} `{prefix}*`", md.name),
                _ => md.name.to_string(),
            })
            .collect();
        f.debug_struct("ConfigLoader")
            .field("sources", &sources)
            .field("missing", &self.missing)
            .finish()
    }
}

impl ConfigLoader {
    /// An empty loader: with no source, [`load`](Self::load) gives the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn merge(mut self, provider: impl Provider) -> Self {
        self.figment = self.figment.merge(provider);
        self
    }

    fn file<F: Format>(mut self, path: &Path) -> Self {
        if !path.is_file() && self.missing.is_none() {
            self.missing = Some(path.to_owned());
        }
        self.merge(Indexed::new(F::file_exact(path)))
    }

    /// A YAML file.
    pub fn yaml_file(self, path: impl AsRef<Path>) -> Self {
        self.file::<Yaml>(path.as_ref())
    }

    /// YAML text.
    pub fn yaml(self, text: &str) -> Self {
        self.merge(Indexed::new(Yaml::string(text)))
    }

    /// A JSON file.
    pub fn json_file(self, path: impl AsRef<Path>) -> Self {
        self.file::<Json>(path.as_ref())
    }

    /// JSON text.
    pub fn json(self, text: &str) -> Self {
        self.merge(Indexed::new(Json::string(text)))
    }

    /// A TOML file.
    pub fn toml_file(self, path: impl AsRef<Path>) -> Self {
        self.file::<Toml>(path.as_ref())
    }

    /// TOML text.
    pub fn toml(self, text: &str) -> Self {
        self.merge(Indexed::new(Toml::string(text)))
    }

    /// A map of settings, such as a `BTreeMap<String, serde_json::Value>` or a
    /// `serde_json::Value` object.
    pub fn map<T: Serialize>(self, map: T) -> Self {
        self.merge(Indexed::new(Serialized::defaults(map)).named("a map"))
    }

    /// Environment variables prefixed [`DEFAULT_ENV_PREFIX`] (`LEXICACHE_`).
    pub fn env(self) -> Self {
        self.env_prefixed(DEFAULT_ENV_PREFIX)
    }

    /// Environment variables prefixed `prefix` (matched without regard to case), nested
    /// fields separated by `__`.
    pub fn env_prefixed(self, prefix: &str) -> Self {
        let env = Env::prefixed(prefix).split("__").filter(|key| {
            let first = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL.iter().any(|t| first.eq_ignore_ascii_case(t))
        });
        self.merge(Indexed::new(env).env_prefix(prefix))
    }

    /// The figment the sources were merged into, for callers who want to extract their own
    /// types from the same sources.
    #[must_use]
    pub fn figment(&self) -> &Figment {
        &self.figment
    }

    /// Merges the sources into a [`CacheConfig`], reads `*_file` secrets and
    /// [validates](CacheConfig::validate) the result.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found: a missing file, a value that does not parse, an
    /// unknown or foreign field, an unreadable secret file, or a broken rule. Each says which
    /// field, from which source, and what is wrong.
    pub fn load(self) -> Result<CacheConfig, ConfigError> {
        let config = self.load_unvalidated()?;
        crate::validate::validate(&config, &Sources::figment(&self.figment))?;
        Ok(config)
    }

    /// As [`load`](Self::load), without validation (secret files are still read).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), less the validation rules.
    pub fn load_unvalidated(&self) -> Result<CacheConfig, ConfigError> {
        if let Some(path) = &self.missing {
            return Err(ConfigError::FileNotFound { path: path.clone() });
        }
        let mut config: CacheConfig = self
            .figment
            .extract()
            .map_err(|e| diagnose(&self.figment, e))?;
        let sources = Sources::figment(&self.figment);
        read_secret_files(&mut config, &sources)?;
        Ok(config)
    }
}

/// Wraps a provider: arrays of tables become maps keyed by index (`backends: [..]` becomes
/// `backends: {"0": .., "1": ..}`), so that `LEXICACHE_BACKENDS__1__PORT` merges into the
/// second backend of a file instead of replacing the whole list; and the source gets a name
/// errors can show.
struct Indexed<P> {
    inner: P,
    name: Option<&'static str>,
    env_prefix: Option<String>,
}

impl<P: Provider> Indexed<P> {
    fn new(inner: P) -> Self {
        Self {
            inner,
            name: None,
            env_prefix: None,
        }
    }

    fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    fn env_prefix(mut self, prefix: &str) -> Self {
        self.env_prefix = Some(prefix.to_owned());
        self
    }
}

impl<P: Provider> Provider for Indexed<P> {
    fn metadata(&self) -> Metadata {
        let mut md = self.inner.metadata();
        if let Some(name) = self.name {
            md.name = name.into();
        }
        if let Some(prefix) = &self.env_prefix {
            md.name = "environment variable".into();
            md.source = Some(figment::Source::Custom(prefix.to_ascii_uppercase()));
        }
        md
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = self.inner.data()?;
        for dict in data.values_mut() {
            dict.values_mut().for_each(index_arrays);
        }
        Ok(data)
    }
}

fn index_arrays(value: &mut Value) {
    match value {
        Value::Dict(_, dict) => dict.values_mut().for_each(index_arrays),
        Value::Array(tag, items)
            if !items.is_empty() && items.iter().all(|i| matches!(i, Value::Dict(..))) =>
        {
            let tag = *tag;
            let dict: Dict = items
                .drain(..)
                .enumerate()
                .map(|(i, mut item)| {
                    index_arrays(&mut item);
                    (i.to_string(), item)
                })
                .collect();
            *value = Value::Dict(tag, dict);
        }
        _ => {}
    }
}

/// Finds the source of each field: a figment, or nothing (a config built in code).
pub(crate) struct Sources<'a> {
    figment: Option<&'a Figment>,
}

impl<'a> Sources<'a> {
    pub(crate) fn none() -> Self {
        Self { figment: None }
    }

    fn figment(figment: &'a Figment) -> Self {
        Self {
            figment: Some(figment),
        }
    }

    /// The location of the field at `path` (dotted).
    pub(crate) fn at(&self, path: &str) -> Location {
        let Some(figment) = self.figment else {
            return Location::new(path);
        };
        // A list item (`servers.0`) has no path of its own in figment: use its list's.
        let mut lookup = path;
        let source = loop {
            if let Some(md) = figment.find_metadata(lookup) {
                break describe(md, lookup);
            }
            match lookup.rsplit_once('.') {
                Some((parent, last)) if last.parse::<usize>().is_ok() => lookup = parent,
                _ => break "the defaults".to_owned(),
            }
        };
        Location {
            field: path.to_owned(),
            source,
        }
    }

    /// The path segment of each of the `len` entries of the list at `path`: the index keys
    /// in order (so an entry from `LEXICACHE_BACKENDS__5__..` is reported as `backends.5`).
    pub(crate) fn list_keys(&self, path: &str, len: usize) -> Vec<String> {
        let keys = self
            .figment
            .and_then(|f| f.find_value(path).ok())
            .and_then(|v| match v {
                Value::Dict(_, dict) => index_order(dict.keys().map(String::as_str))
                    .map(|keys| keys.into_iter().map(str::to_owned).collect::<Vec<_>>()),
                _ => None,
            })
            .filter(|keys| keys.len() == len);
        keys.unwrap_or_else(|| (0..len).map(|i| i.to_string()).collect())
    }
}

/// Names a source: `YAML file `/etc/cache.yaml``, `environment variable
/// `LEXICACHE_BACKENDS__0__PORT``, `YAML source string`, `a map`.
fn describe(md: &Metadata, path: &str) -> String {
    match &md.source {
        Some(figment::Source::File(file)) => format!("{} `{}`", md.name, file.display()),
        Some(figment::Source::Custom(prefix)) if md.name == "environment variable" => {
            let var: Vec<String> = path.split('.').map(str::to_ascii_uppercase).collect();
            format!("environment variable `{prefix}{}`", var.join("__"))
        }
        _ => md.name.to_string(),
    }
}

fn join(base: &[String], rest: &[String]) -> String {
    base.iter()
        .chain(rest)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(".")
}

/// Turns figment's error into a [`ConfigError`] that names the field and its source. Errors
/// inside a backend are re-diagnosed against that backend's own type, because the tagged
/// enum's buffering loses the field a type error is about.
fn diagnose(figment: &Figment, error: figment::Error) -> ConfigError {
    if error.path.len() >= 2 && error.path[0] == "backends" {
        if let Some(precise) = diagnose_backend(figment, &error.path[1]) {
            return precise;
        }
    }
    convert(figment, &[], None, error)
}

fn diagnose_backend(figment: &Figment, key: &str) -> Option<ConfigError> {
    let base = vec!["backends".to_owned(), key.to_owned()];
    let value = figment.find_value(&join(&base, &[])).ok()?;
    diagnose_section(figment, &base, value, false)
}

/// Diagnoses the backend section at `base`: an entry of `backends`, or (`in_tiered`) the
/// `l2` of a tiered backend, which takes neither the fields the tiered backend owns nor
/// another tiered backend.
fn diagnose_section(
    figment: &Figment,
    base: &[String],
    value: Value,
    in_tiered: bool,
) -> Option<ConfigError> {
    let path = join(base, &[]);
    let sources = Sources::figment(figment);
    let Value::Dict(tag, mut dict) = value else {
        return None;
    };
    if in_tiered {
        if let Some((field, hint)) = dict.keys().find_map(|k| Some((k, l2_refusal(k)?))) {
            return Some(ConfigError::Misplaced {
                at: sources.at(&format!("{path}.{field}")),
                field: field.clone(),
                hint,
            });
        }
    }
    let kind = match dict.remove("type") {
        None => {
            return Some(ConfigError::Missing {
                at: sources.at(&format!("{path}.type")),
                problem: if in_tiered {
                    "`l2` needs `type`: redis, memcached or memory".to_owned()
                } else {
                    "every backend needs `type`: memory, redis, memcached or tiered".to_owned()
                },
            })
        }
        Some(value) => match value.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("memory") => BackendType::Memory,
            Some("redis") => BackendType::Redis,
            Some("memcached") => BackendType::Memcached,
            Some("tiered") if in_tiered => {
                return Some(ConfigError::Misplaced {
                    at: sources.at(&format!("{path}.type")),
                    field: "type".to_owned(),
                    hint: NESTED_TIERED.to_owned(),
                })
            }
            Some("tiered") => BackendType::Tiered,
            _ => {
                return Some(ConfigError::Parse {
                    at: sources.at(&format!("{path}.type")),
                    problem: "unknown backend type; expected memory, redis, memcached or tiered"
                        .to_owned(),
                })
            }
        },
    };
    if kind == BackendType::Tiered {
        if let Some(err) = diagnose_tiered_parts(figment, base, &dict) {
            return Some(err);
        }
    }
    let value = Value::Dict(tag, dict);
    let result = match kind {
        BackendType::Memory => MemoryBackendConfig::deserialize(&value).map(|_| ()),
        BackendType::Redis => RedisBackendConfig::deserialize(&value).map(|_| ()),
        BackendType::Memcached => MemcachedBackendConfig::deserialize(&value).map(|_| ()),
        BackendType::Tiered => TieredBackendConfig::deserialize(&value).map(|_| ()),
    };
    let error = result.err()?;
    if in_tiered {
        return Some(without_owned_fields(convert(
            figment,
            base,
            Some(kind),
            error,
        )));
    }
    let hint = |field: &str| match kind {
        BackendType::Tiered => tiered_hint(field),
        _ => None,
    };
    Some(
        misplaced(figment, base, &error, hint)
            .unwrap_or_else(|| convert(figment, base, Some(kind), error)),
    )
}

/// Drops the fields a tiered backend's `l2` does not take from an unknown field's list of
/// expected ones.
fn without_owned_fields(err: ConfigError) -> ConfigError {
    match err {
        ConfigError::UnknownField {
            at,
            field,
            expected,
        } => ConfigError::UnknownField {
            at,
            field,
            expected: expected
                .split(", ")
                .filter(|f| l2_refusal(f.trim_matches('`')).is_none())
                .collect::<Vec<_>>()
                .join(", "),
        },
        other => other,
    }
}

/// The `l1` and `l2` sections of the tiered backend at `base`, each against its own type.
fn diagnose_tiered_parts(figment: &Figment, base: &[String], dict: &Dict) -> Option<ConfigError> {
    let sources = Sources::figment(figment);
    let path = join(base, &[]);
    if let Some(l1) = dict.get("l1") {
        if let Err(error) = TieredL1Config::deserialize(l1) {
            let l1_base = [base, &["l1".to_owned()]].concat();
            return Some(
                misplaced(figment, &l1_base, &error, l1_hint)
                    .unwrap_or_else(|| convert(figment, &l1_base, None, error)),
            );
        }
    }
    let Some(l2) = dict.get("l2") else {
        return Some(ConfigError::Missing {
            at: sources.at(&format!("{path}.l2")),
            problem: "a tiered backend needs `l2`, the shared level: a redis, memcached or \
                      memory section with its `type`"
                .to_owned(),
        });
    };
    diagnose_section(
        figment,
        &[base, &["l2".to_owned()]].concat(),
        l2.clone(),
        true,
    )
}

/// Where a field written beside a tiered backend's `l1` and `l2` goes instead.
fn tiered_hint(field: &str) -> Option<String> {
    match field {
        "prefix" | "default_ttl" => Some(format!(
            "`{field}` of a tiered backend goes in its `l2` section (L1 holds copies of L2's \
             entries, under L2's keys and TTLs)"
        )),
        "max_value_size" => Some(
            "`max_value_size` of a tiered backend goes in `l2` (what L2 accepts) or `l1` (what \
             L1 keeps)"
                .to_owned(),
        ),
        "max_entries" | "max_bytes" => Some(format!(
            "`{field}` bounds a tiered backend's L1: put it in its `l1` section"
        )),
        _ if BackendType::Redis.fields().contains(&field)
            || BackendType::Memcached.fields().contains(&field) =>
        {
            Some(format!(
                "`{field}` is a setting of the shared level: put it in the tiered backend's \
                 `l2` section, beside `type`"
            ))
        }
        _ => None,
    }
}

/// Where a field written in a tiered backend's `l1` goes instead.
fn l1_hint(field: &str) -> Option<String> {
    match field {
        "name" | "enabled" | "default" | "clear_on_start" => Some(format!(
            "`{field}` is not a setting of `l1`: set it on the tiered backend itself, beside \
             `l1`"
        )),
        "prefix" | "default_ttl" => Some(format!(
            "`{field}` is not a setting of `l1` (L1 holds L2's keys and TTLs): set it in `l2`"
        )),
        _ => None,
    }
}

/// A [`ConfigError::Misplaced`] for an unknown `field` that `hint` knows a better place for.
fn misplaced(
    figment: &Figment,
    base: &[String],
    error: &figment::Error,
    hint: impl Fn(&str) -> Option<String>,
) -> Option<ConfigError> {
    let figment::error::Kind::UnknownField(field, _) = &error.kind else {
        return None;
    };
    let hint = hint(field)?;
    let path = with_field(&join(base, &error.path), field);
    Some(ConfigError::Misplaced {
        at: Sources::figment(figment).at(&path),
        field: field.clone(),
        hint,
    })
}

fn convert(
    figment: &Figment,
    base: &[String],
    backend: Option<BackendType>,
    error: figment::Error,
) -> ConfigError {
    use figment::error::Kind;

    let sources = Sources::figment(figment);
    let path = join(base, &error.path);
    let source_of = |field_path: &str| -> Location {
        let at = sources.at(field_path);
        if at.source == "the defaults" {
            if let Some(md) = &error.metadata {
                return Location {
                    field: at.field,
                    source: describe(md, field_path),
                };
            }
        }
        at
    };
    match error.kind {
        Kind::UnknownField(field, expected) => {
            let field_path = with_field(&path, &field);
            let at = source_of(&field_path);
            if let Some(kind) = backend {
                let belongs: Vec<&str> = BackendType::ALL
                    .iter()
                    .filter(|t| **t != kind && t.fields().contains(&field.as_str()))
                    .map(|t| t.as_str())
                    .collect();
                if !belongs.is_empty() {
                    return ConfigError::ForeignField {
                        at,
                        field,
                        backend_type: kind.to_string(),
                        belongs_to: belongs.join(" and "),
                    };
                }
            }
            let expected = expected
                .iter()
                .filter(|f| **f != "type")
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ");
            ConfigError::UnknownField {
                at,
                field,
                expected,
            }
        }
        Kind::MissingField(field) => {
            let field_path = with_field(&path, &field);
            ConfigError::Missing {
                at: source_of(&field_path),
                problem: "this field is required".to_owned(),
            }
        }
        kind => ConfigError::Parse {
            at: if path.is_empty() {
                Location {
                    field: "(the document)".to_owned(),
                    source: error
                        .metadata
                        .as_ref()
                        .map_or_else(|| "a source".to_owned(), |md| describe(md, "")),
                }
            } else {
                source_of(&path)
            },
            problem: without_source_excerpt(&kind.to_string()),
        },
    }
}

/// A parser's message without the excerpt of the document it may carry: TOML errors quote the
/// offending line (`3 | password = "hunter2`), which may hold a secret. The line and column
/// stay, so the error still points at the mistake.
fn without_source_excerpt(message: &str) -> String {
    let is_excerpt = |line: &str| {
        line.trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
            .starts_with('|')
    };
    message
        .lines()
        .filter(|line| !is_excerpt(line) && !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(": ")
}

/// `path.field`, unless figment already put the field at the end of the path.
fn with_field(path: &str, field: &str) -> String {
    if path.is_empty() || path == field {
        field.to_owned()
    } else if path.ends_with(&format!(".{field}")) {
        path.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Reads every `*_file` secret into its field.
fn read_secret_files(config: &mut CacheConfig, sources: &Sources<'_>) -> Result<(), ConfigError> {
    let keys = sources.list_keys("backends", config.backends.len());
    for (backend, key) in config.backends.iter_mut().zip(&keys) {
        let (redis, base) = match backend {
            CacheBackendConfig::Redis(redis) => (redis, format!("backends.{key}")),
            CacheBackendConfig::Tiered(tiered) => match &mut *tiered.l2 {
                CacheBackendConfig::Redis(redis) => (redis, format!("backends.{key}.l2")),
                _ => continue,
            },
            _ => continue,
        };
        fill(
            &mut redis.password,
            redis.password_file.as_deref(),
            sources,
            &base,
            "password",
        )?;
        fill(
            &mut redis.sentinel_password,
            redis.sentinel_password_file.as_deref(),
            sources,
            &base,
            "sentinel_password",
        )?;
    }
    let serializer = &mut config.service.serializer;
    let keys = sources.list_keys("service.serializer.keys", serializer.keys.len());
    for (entry, key) in serializer.keys.iter_mut().zip(&keys) {
        let base = format!("service.serializer.keys.{key}");
        fill(
            &mut entry.key,
            entry.key_file.as_deref(),
            sources,
            &base,
            "key",
        )?;
    }
    Ok(())
}

fn fill(
    slot: &mut Option<Secret>,
    file: Option<&Path>,
    sources: &Sources<'_>,
    base: &str,
    field: &str,
) -> Result<(), ConfigError> {
    let Some(path) = file else {
        return Ok(());
    };
    let file_field = format!("{base}.{field}_file");
    if slot.is_some() {
        return Err(ConfigError::Conflict {
            at: sources.at(&file_field),
            other: format!("{base}.{field}"),
            hint: format!(
                "give the secret inline (`{field}`) or as a file (`{field}_file`), not both"
            ),
        });
    }
    let text = read_secret_file(path).map_err(|reason| ConfigError::SecretFile {
        at: sources.at(&file_field),
        path: path.to_owned(),
        reason,
    })?;
    let trimmed = text
        .strip_suffix('\n')
        .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
    *slot = Some(Secret::new(trimmed));
    Ok(())
}

/// The longest secret file read: a password or key file is a few hundred bytes at most.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a secret file: a regular file of at most [`MAX_SECRET_FILE`] bytes of UTF-8. So
/// `password_file: /dev/zero` is an error, not an exhausted memory, and a FIFO with no writer
/// is refused instead of hanging the load.
fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    // Checked before opening: opening a FIFO blocks until a writer comes.
    if !std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .is_file()
    {
        return Err("not a regular file".to_owned());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(format!(
            "larger than {MAX_SECRET_FILE} bytes: not a secret file"
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

impl CacheConfig {
    /// Loads from environment variables prefixed `prefix` (`LEXICACHE_` is the usual one;
    /// see [`ConfigLoader::env_prefixed`]), then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_env(prefix: &str) -> Result<Self, ConfigError> {
        ConfigLoader::new().env_prefixed(prefix).load()
    }

    /// Loads a YAML file, then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_yaml(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        ConfigLoader::new().yaml_file(path).load()
    }

    /// Loads YAML text, then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        ConfigLoader::new().yaml(text).load()
    }

    /// Loads a JSON file, then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_json(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        ConfigLoader::new().json_file(path).load()
    }

    /// Loads JSON text, then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        ConfigLoader::new().json(text).load()
    }

    /// Loads a TOML file, then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_toml(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        ConfigLoader::new().toml_file(path).load()
    }

    /// Loads TOML text, then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        ConfigLoader::new().toml(text).load()
    }

    /// Loads a map of settings (see [`ConfigLoader::map`]), then validates.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn from_map<T: Serialize>(map: T) -> Result<Self, ConfigError> {
        ConfigLoader::new().map(map).load()
    }

    /// Checks the rules (see the crate docs) on a config built in code; errors name fields
    /// but not sources.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::validate::validate(self, &Sources::none())
    }
}
