//! The operator commands: `get`, `set`, `del`, `del-pattern`, `invalidate-tags`, `exists`,
//! `ttl`, `stats`, `health`, `keys`.
//!
//! Each runs against the backend [`Target`] chose, through its [`ConfiguredService`]: the
//! configured namespace, serializer (and its keys) and layers apply, as they do for the
//! application sharing the configuration. Results print as a table, or as one JSON document with `--format json`.
//! docs/cli.md describes every command, its output and its exit codes.
//!
//! ```
//! use clap::Parser;
//! use lexicache_cli::ops::OpCommand;
//! use lexicache_cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["lexicache", "set", "user:1", r#"{"id":1}"#, "--ttl", "5m"])
//!     .unwrap();
//! let Command::Op(OpCommand::Set(args)) = cli.command else { unreachable!() };
//! assert_eq!(args.ttl, Some(std::time::Duration::from_secs(300)));
//!
//! // A TTL that does not parse is a usage error (exit 2).
//! let err = Cli::try_parse_from(["lexicache", "set", "k", "1", "--ttl", "soon"]).unwrap_err();
//! assert_eq!(err.exit_code(), i32::from(lexicache_cli::EXIT_USAGE));
//! ```

mod output;

use std::time::Duration;

use clap::{Args, Subcommand};
use lexicache::config::{ConfiguredService, SerializerKind};
use lexicache::inspect::Inspection;
use lexicache::serializers::{Codec, Envelope, Flags, Json, Signed, SigningKey};
use lexicache::{Error, ErrorKind, Expiry, HealthStatus};
use serde_json::{json, Value};

use crate::{CliError, Format, Target};
use output::{bytes, duration, emit, fields, grid, latency, millis, opt};

const GET_AFTER_HELP: &str = "\
Examples:
  lexicache --redis redis://127.0.0.1:6390 get user:1
  lexicache --config cache.yaml --backend sessions get session:42 --format json

JSON values print as JSON (verified and decompressed through the configured serializer);
other codecs show codec, flags, key id and size. Exit 1 when the key is missing, 3 when a
signed value does not verify with the configured keys.";

const SET_AFTER_HELP: &str = "\
Examples:
  lexicache --redis redis://127.0.0.1:6390 set user:1 '{\"id\":1,\"name\":\"alice\"}' --ttl 1h --tags users
  lexicache --memcached 127.0.0.1:11290 set greeting hello --string --ttl 30s";

const DEL_AFTER_HELP: &str = "\
Example:
  lexicache --redis redis://127.0.0.1:6390 del user:1 user:2

Exit 1 when none of the keys existed.";

const DEL_PATTERN_AFTER_HELP: &str = "\
Example:
  lexicache --redis redis://127.0.0.1:6390 del-pattern 'user:*'

Redis glob syntax (*, ?, [abc], [!a-c], \\ escapes); memcached cannot delete by pattern.";

const INVALIDATE_TAGS_AFTER_HELP: &str = "\
Example:
  lexicache --redis redis://127.0.0.1:6390 invalidate-tags users tenant-7";

const EXISTS_AFTER_HELP: &str = "\
Example:
  lexicache --redis redis://127.0.0.1:6390 exists user:1 && echo present

Prints true or false; exit 1 when false.";

const TTL_AFTER_HELP: &str = "\
Example:
  lexicache --redis redis://127.0.0.1:6390 ttl user:1

Prints the remaining time, `no expiry`, or `unknown` where the backend does not report TTLs
(memcached). Exit 1 when the key is missing.";

const STATS_AFTER_HELP: &str = "\
Example:
  lexicache --memcached 127.0.0.1:11290,127.0.0.1:11291 stats --format json";

const HEALTH_AFTER_HELP: &str = "\
Example:
  lexicache --redis redis://127.0.0.1:6390 health --timeout 2s

Exit 3 when the backend is unhealthy.";

const KEYS_AFTER_HELP: &str = "\
Example:
  lexicache --redis redis://127.0.0.1:6390 keys 'user:*' --limit 50

Memory and Redis can list keys; memcached cannot (exit 2).";

/// The operator commands.
#[derive(Debug, Clone, Subcommand)]
pub enum OpCommand {
    /// Read a key: its value for JSON, else its codec, flags and size.
    #[command(after_help = GET_AFTER_HELP)]
    Get(GetArgs),
    /// Write a JSON value (or a string with --string), optionally with a TTL and tags.
    #[command(after_help = SET_AFTER_HELP)]
    Set(SetArgs),
    /// Delete keys; prints how many existed.
    #[command(after_help = DEL_AFTER_HELP)]
    Del(DelArgs),
    /// Delete every key matching a glob; prints how many.
    #[command(after_help = DEL_PATTERN_AFTER_HELP)]
    DelPattern(PatternArgs),
    /// Invalidate tags: every entry tagged with one of them becomes a miss.
    #[command(after_help = INVALIDATE_TAGS_AFTER_HELP)]
    InvalidateTags(InvalidateTagsArgs),
    /// Whether a key holds a live entry.
    #[command(after_help = EXISTS_AFTER_HELP)]
    Exists(KeyArgs),
    /// A key's remaining time to live.
    #[command(after_help = TTL_AFTER_HELP)]
    Ttl(KeyArgs),
    /// What the backend's store reports: entries, memory, hits, misses, evictions, servers.
    #[command(after_help = STATS_AFTER_HELP)]
    Stats,
    /// Check the backend: status, latency, details.
    #[command(after_help = HEALTH_AFTER_HELP)]
    Health(HealthArgs),
    /// List keys matching a glob, where the backend can list keys.
    #[command(after_help = KEYS_AFTER_HELP)]
    Keys(KeysArgs),
}

/// Options of `lexicache get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The key.
    pub key: String,
}

/// Options of `lexicache set`.
#[derive(Debug, Clone, Args)]
pub struct SetArgs {
    /// The key.
    pub key: String,
    /// The value, as JSON (`'{"id":1}'`, `42`, `'"text"'`), or any text with `--string`.
    pub value: String,
    /// Time to live: `500ms`, `30s`, `5m`, `1h`, `1d`, or plain seconds (default: the
    /// backend's default TTL, or none).
    #[arg(long, value_parser = parse_ttl)]
    pub ttl: Option<Duration>,
    /// Tags, comma-separated; `invalidate-tags` makes every entry tagged with one a miss.
    #[arg(long, value_delimiter = ',', value_name = "TAG,...")]
    pub tags: Vec<String>,
    /// Store VALUE as a JSON string, without parsing it.
    #[arg(long)]
    pub string: bool,
}

/// Options of `lexicache del`.
#[derive(Debug, Clone, Args)]
pub struct DelArgs {
    /// The keys.
    #[arg(required = true)]
    pub keys: Vec<String>,
}

/// Options of `lexicache del-pattern`.
#[derive(Debug, Clone, Args)]
pub struct PatternArgs {
    /// A Redis-style glob, relative to the namespace: `user:*`, `session:??`, `[ab]*`.
    pub pattern: String,
}

/// Options of `lexicache invalidate-tags`.
#[derive(Debug, Clone, Args)]
pub struct InvalidateTagsArgs {
    /// The tags.
    #[arg(required = true)]
    pub tags: Vec<String>,
}

/// Options of the commands about one key (`exists`, `ttl`).
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// The key.
    pub key: String,
}

/// Options of `lexicache health`.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// How long the check may take.
    #[arg(long, default_value = "5s", value_parser = parse_ttl)]
    pub timeout: Duration,
}

/// Options of `lexicache keys`.
#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    /// A Redis-style glob, relative to the namespace: `user:*`, `*`.
    pub pattern: String,
    /// The most keys to list.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

/// Parses a duration: `500ms`, `30s`, `5m`, `1h`, `1d`, or a plain number of seconds. Zero is
/// refused: a TTL of zero would delete the entry (use `del`).
///
/// ```
/// use std::time::Duration;
/// use lexicache_cli::ops::parse_ttl;
///
/// assert_eq!(parse_ttl("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_ttl("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_ttl("0s").is_err());
/// assert!(parse_ttl("5 weeks").is_err());
/// ```
///
/// # Errors
///
/// A message saying which forms are accepted.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("`{text}` is not a duration: write 500ms, 30s, 5m, 1h, 1d or plain seconds");
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(bad()),
    };
    let d = Duration::try_from_secs_f64(n * scale).map_err(|_| bad())?;
    if d.is_zero() {
        return Err(format!(
            "`{text}` is zero: a TTL must be positive (delete a key with `del`)"
        ));
    }
    Ok(d)
}

/// Runs an operator command against a connected backend.
///
/// # Errors
///
/// A [`CliError`] whose exit code says how it failed: [`CliError::NotFound`] (1) where "not
/// there" is the answer, usage and unsupported commands (2), backend errors and values that
/// do not verify (3).
pub async fn run(target: &Target, format: Format, cmd: &OpCommand) -> Result<(), CliError> {
    let service = target.service();
    match cmd {
        OpCommand::Get(args) => get(target, format, &args.key).await,
        OpCommand::Set(args) => set(service, format, args).await,
        OpCommand::Del(args) => {
            let keys: Vec<&str> = args.keys.iter().map(String::as_str).collect();
            let deleted = service.try_delete_many(&keys).await?;
            emit(
                format,
                &json!({ "deleted": deleted, "keys": keys.len() }),
                || format!("deleted {deleted} of {} key(s)", keys.len()),
            );
            if deleted == 0 {
                return Err(CliError::NotFound(match keys.as_slice() {
                    [key] => format!("key `{key}` not found"),
                    _ => "none of the keys existed".to_owned(),
                }));
            }
            Ok(())
        }
        OpCommand::DelPattern(args) => {
            let deleted = service.delete_pattern(&args.pattern).await?;
            emit(
                format,
                &json!({ "pattern": args.pattern, "deleted": deleted }),
                || format!("deleted {deleted} key(s) matching `{}`", args.pattern),
            );
            Ok(())
        }
        OpCommand::InvalidateTags(args) => {
            let tags: Vec<&str> = args.tags.iter().map(String::as_str).collect();
            service.invalidate_tags(&tags).await?;
            emit(format, &json!({ "invalidated": tags }), || {
                format!("invalidated {} tag(s): {}", tags.len(), tags.join(", "))
            });
            Ok(())
        }
        OpCommand::Exists(args) => {
            let exists = service.try_exists(&args.key).await?;
            emit(
                format,
                &json!({ "key": args.key, "exists": exists }),
                || exists.to_string(),
            );
            if exists {
                Ok(())
            } else {
                Err(not_found(&args.key))
            }
        }
        OpCommand::Ttl(args) => ttl(target, format, &args.key).await,
        OpCommand::Stats => stats(target, format).await,
        OpCommand::Health(args) => health(target, format, args.timeout).await,
        OpCommand::Keys(args) => keys(target, format, args).await,
    }
}

fn not_found(key: &str) -> CliError {
    CliError::NotFound(format!("key `{key}` not found"))
}

// ----- get -------------------------------------------------------------------------------

async fn get(target: &Target, format: Format, key: &str) -> Result<(), CliError> {
    let service = target.service();
    let Some(info) = service.inspect(key).await? else {
        return Err(not_found(key));
    };
    if !info.is_live() {
        let why = if info.is_refresh_expired() {
            "it is past its early-refresh expiry".to_owned()
        } else {
            let stale: Vec<&str> = info.stale_tags().collect();
            format!("its tag(s) {} were invalidated", stale.join(", "))
        };
        return Err(CliError::NotFound(format!(
            "key `{key}` not found: the stored entry is stale ({why})"
        )));
    }
    let mut doc = json!({ "key": key, "size": info.stored_len() });
    let mut rows: Vec<(String, String)> = vec![("key".into(), key.to_owned())];
    let Ok(envelope) = Envelope::parse(info.payload()) else {
        return get_raw(format, &info, doc, rows);
    };
    let header = envelope.header();
    let flags = header.flags();
    let flag_names: Vec<&str> = [
        (Flags::COMPRESSED, "compressed"),
        (Flags::SIGNED, "signed"),
        (Flags::ENCRYPTED, "encrypted"),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, name)| name)
    .collect();
    doc["envelope"] = json!(true);
    doc["codec"] = json!(header.codec().as_str());
    doc["flags"] = json!(flag_names);
    doc["key_id"] = json!(envelope.key_id());
    doc["payload_size"] = json!(envelope.payload_len());
    rows.push(("codec".into(), header.codec().as_str().to_owned()));
    rows.push(("flags".into(), flags.to_string()));
    if let Some(id) = envelope.key_id() {
        rows.push(("key id".into(), id.to_string()));
    }
    rows.push((
        "size".into(),
        format!(
            "{} (payload {})",
            bytes(info.stored_len() as u64),
            bytes(envelope.payload_len() as u64)
        ),
    ));
    if let Some(size) = envelope.declared_content_size() {
        doc["decompressed_size"] = json!(size);
        rows.push(("decompressed".into(), bytes(size)));
    }
    describe_frames(target, &info, &mut doc, &mut rows);

    if flags.contains(Flags::SIGNED) {
        let id = verify_signature(target, key, &info, &envelope)?;
        doc["signature"] = json!("ok");
        rows.push(("signature".into(), format!("ok (key id {id})")));
    } else {
        doc["signature"] = Value::Null;
    }

    let serializer = target.config().service.serializer.kind;
    let value = if header.codec() != Codec::Json {
        Err(format!(
            "not shown: {} payloads are not self-describing; read it with the application's type",
            header.codec()
        ))
    } else if flags.contains(Flags::ENCRYPTED) && serializer != SerializerKind::Encrypted {
        Err(
            "not shown: the value is encrypted and no encryption keys are configured \
             (pass --config with the serializer's keys)"
                .to_owned(),
        )
    } else {
        match service.try_get::<Value>(key).await? {
            Some(value) => Ok(value),
            None => return Err(not_found(key)),
        }
    };
    match value {
        Ok(value) => {
            let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
            rows.push(("value".into(), pretty));
            doc["value"] = value;
        }
        Err(note) => {
            rows.push(("value".into(), note.clone()));
            doc["value"] = Value::Null;
            doc["note"] = json!(note);
        }
    }
    emit(format, &doc, || fields(rows).to_string());
    Ok(())
}

/// `get` of bytes that are not an envelope: written by another tool.
fn get_raw(
    format: Format,
    info: &Inspection,
    mut doc: Value,
    mut rows: Vec<(String, String)>,
) -> Result<(), CliError> {
    let text = std::str::from_utf8(info.payload()).ok();
    doc["envelope"] = json!(false);
    doc["text"] = json!(text);
    rows.push((
        "format".into(),
        "not a lexicache envelope (written by another tool?)".into(),
    ));
    rows.push(("size".into(), bytes(info.stored_len() as u64)));
    rows.push((
        "text".into(),
        text.map_or_else(|| "(binary, not UTF-8)".to_owned(), str::to_owned),
    ));
    emit(format, &doc, || fields(rows).to_string());
    Ok(())
}

/// Adds the TTL, tags and early-refresh rows of an inspected entry.
fn describe_frames(
    target: &Target,
    info: &Inspection,
    doc: &mut Value,
    rows: &mut Vec<(String, String)>,
) {
    let (ttl_text, ttl_ms) = expiry_text(target, info.expiry());
    doc["ttl_ms"] = json!(ttl_ms);
    rows.push(("ttl".into(), ttl_text));
    let tags: Vec<&str> = info.tags().map(|t| t.name()).collect();
    doc["tags"] = json!(tags);
    if !tags.is_empty() {
        rows.push(("tags".into(), tags.join(", ")));
    }
    match info.early_refresh() {
        Some(meta) => {
            let remaining = target.service().refresh_remaining(&meta);
            doc["early_refresh"] = json!({
                "load_ms": millis(meta.delta),
                "logical_ttl_ms": remaining.map(millis),
            });
            rows.push((
                "early refresh".into(),
                format!(
                    "logical expiry {}, last load took {}",
                    remaining.map_or_else(|| "none".to_owned(), |d| format!("in {}", duration(d))),
                    duration(meta.delta)
                ),
            ));
        }
        None => doc["early_refresh"] = Value::Null,
    }
}

/// Checks a signed value's MAC with the configured signing keys, whatever its codec. Returns
/// the id of the key that verified.
fn verify_signature(
    target: &Target,
    key: &str,
    info: &Inspection,
    envelope: &Envelope,
) -> Result<u32, CliError> {
    let backend = target.service().name().to_owned();
    let id = envelope.key_id().unwrap_or_default();
    let unverifiable = |why: String| {
        CliError::Cache(Error::new(ErrorKind::Serialization, backend.clone()).with_message(why))
    };
    let config = &target.config().service.serializer;
    if config.kind != SerializerKind::Signed || config.keys.is_empty() {
        return Err(unverifiable(format!(
            "`{key}` is signed with key id {id}, but no signing keys are configured, so its \
             signature cannot be verified"
        )));
    }
    let mut keys = Vec::with_capacity(config.keys.len());
    for k in &config.keys {
        let material = k
            .material()
            .map_err(|why| CliError::Usage(format!("serializer key {}: {why}", k.id)))?
            .unwrap_or_default();
        keys.push(SigningKey::new(k.id, material).map_err(CliError::Cache)?);
    }
    let ids: Vec<String> = config.keys.iter().map(|k| k.id.to_string()).collect();
    let checker = Signed::new(Json, keys).map_err(CliError::Cache)?;
    checker.verify(key, info.payload()).map_err(|e| {
        unverifiable(format!(
            "bad signature: `{key}` (signed with key id {id}) did not verify with the configured \
             keys (ids {}): {}",
            ids.join(", "),
            e.message()
        ))
    })
}

/// How an expiry reads, and its milliseconds for JSON (`null` for none or unknown).
fn expiry_text(target: &Target, expiry: Expiry) -> (String, Option<u64>) {
    match expiry {
        Expiry::Never => ("no expiry".to_owned(), None),
        Expiry::In(d) => (duration(d), Some(millis(d))),
        Expiry::Unknown => (
            format!("unknown: {} does not report TTLs", target.kind()),
            None,
        ),
    }
}

// ----- set -------------------------------------------------------------------------------

async fn set(service: &ConfiguredService, format: Format, args: &SetArgs) -> Result<(), CliError> {
    let value: Value = if args.string {
        Value::String(args.value.clone())
    } else {
        serde_json::from_str(&args.value).map_err(|e| {
            CliError::Usage(format!(
                "VALUE is not JSON ({e}); quote a JSON string ('\"text\"') or pass --string to \
                 store the text as a string"
            ))
        })?
    };
    let tags: Vec<&str> = args.tags.iter().map(String::as_str).collect();
    service
        .try_set_with_tags(&args.key, &value, args.ttl, &tags)
        .await?;
    emit(
        format,
        &json!({
            "key": args.key,
            "written": true,
            "ttl_ms": args.ttl.map(millis),
            "tags": tags,
        }),
        || {
            let mut text = format!("set `{}`", args.key);
            if let Some(ttl) = args.ttl {
                text.push_str(&format!(", ttl {}", duration(ttl)));
            }
            if !tags.is_empty() {
                text.push_str(&format!(", tags {}", tags.join(", ")));
            }
            text
        },
    );
    Ok(())
}

// ----- ttl, stats, health, keys ----------------------------------------------------------

async fn ttl(target: &Target, format: Format, key: &str) -> Result<(), CliError> {
    let Some((_, expiry)) = target.service().backend().get_with_ttl(key).await? else {
        return Err(not_found(key));
    };
    let (text, ms) = expiry_text(target, expiry);
    let kind = match expiry {
        Expiry::Never => "never",
        Expiry::In(_) => "in",
        Expiry::Unknown => "unknown",
    };
    emit(
        format,
        &json!({ "key": key, "expiry": kind, "ttl_ms": ms }),
        || text,
    );
    Ok(())
}

async fn stats(target: &Target, format: Format) -> Result<(), CliError> {
    let backend = target.service().backend();
    let stats = backend.stats().await?;
    let hit_rate = stats.hit_rate();
    let mut doc = json!({
        "backend": target.name(),
        "type": target.kind().as_str(),
        "hit_rate": hit_rate,
    });
    if let Value::Object(figures) = serde_json::to_value(&stats).unwrap_or_default() {
        doc.as_object_mut().expect("an object").extend(figures);
    }
    emit(format, &doc, || {
        let entries = match (stats.entries, stats.entries_scope) {
            (Some(n), Some(scope)) => format!("{n} ({scope})"),
            (n, _) => opt(n),
        };
        let mut rows = vec![
            ("backend".to_owned(), target.name().to_owned()),
            ("type".to_owned(), target.kind().as_str().to_owned()),
            ("entries".to_owned(), entries),
            ("memory".to_owned(), opt(stats.memory_bytes.map(bytes))),
            ("hits".to_owned(), opt(stats.hits)),
            ("misses".to_owned(), opt(stats.misses)),
            (
                "hit rate".to_owned(),
                opt(hit_rate.map(|r| format!("{:.1} %", r * 100.0))),
            ),
            ("evictions".to_owned(), opt(stats.evictions)),
        ];
        rows.extend(stats.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut text = fields(rows).to_string();
        if !stats.servers.is_empty() {
            let servers = stats
                .servers
                .iter()
                .map(|s| {
                    vec![
                        s.address.clone(),
                        opt(s.version.as_ref()),
                        opt(s.uptime.map(duration)),
                        opt(s.connections),
                        opt(s.entries),
                        opt(s.memory_bytes.map(bytes)),
                    ]
                })
                .collect();
            let header = [
                "server",
                "version",
                "uptime",
                "connections",
                "entries",
                "memory",
            ];
            text.push('\n');
            text.push_str(&grid(&header, servers, &[2, 3, 4, 5]).to_string());
        }
        text
    });
    Ok(())
}

async fn health(target: &Target, format: Format, timeout: Duration) -> Result<(), CliError> {
    let result = target.service().health_check(timeout).await;
    emit(
        format,
        &json!({
            "backend": result.backend,
            "status": result.status.as_str(),
            "latency_ms": result.latency.as_secs_f64() * 1000.0,
            "reason": result.reason,
            "details": result.details,
        }),
        || {
            let mut rows = vec![
                ("backend".to_owned(), result.backend.clone()),
                ("status".to_owned(), result.status.as_str().to_owned()),
                ("latency".to_owned(), latency(result.latency)),
            ];
            if let Some(reason) = &result.reason {
                rows.push(("reason".to_owned(), reason.clone()));
            }
            rows.extend(result.details.iter().map(|(k, v)| (k.clone(), v.clone())));
            fields(rows).to_string()
        },
    );
    if result.status == HealthStatus::Unhealthy {
        return Err(CliError::Cache(
            Error::new(ErrorKind::Connection, result.backend.clone()).with_message(format!(
                "unhealthy: {}",
                result.reason.as_deref().unwrap_or("no reason given")
            )),
        ));
    }
    Ok(())
}

async fn keys(target: &Target, format: Format, args: &KeysArgs) -> Result<(), CliError> {
    let refusal = || {
        CliError::Usage(format!(
            "`keys` needs a backend that can list keys; {} ({}) cannot. Memory and Redis can; \
             on memcached, track keys in the application or use tags",
            target.name(),
            target.kind()
        ))
    };
    let backend = target.service().backend();
    if !backend.capabilities().list_keys {
        return Err(refusal());
    }
    let limit = args.limit as usize;
    let mut keys = match target.service().keys(&args.pattern, limit + 1).await {
        Err(e) if e.kind() == ErrorKind::Unsupported => return Err(refusal()),
        found => found?,
    };
    keys.sort_unstable();
    let truncated = keys.len() > limit;
    keys.truncate(limit);
    emit(
        format,
        &json!({ "pattern": args.pattern, "keys": keys, "truncated": truncated }),
        || {
            let count = keys.len();
            let rows = keys.iter().map(|k| vec![k.clone()]).collect();
            let mut text = grid(&["key"], rows, &[]).to_string();
            text.push_str(&format!("\n{count} key(s)"));
            if truncated {
                text.push_str(&format!(" (stopped at --limit {limit})"));
            }
            text
        },
    );
    Ok(())
}
