//! Configuration text from anywhere: arbitrary YAML, JSON and TOML text, and generated
//! documents (backends of every type with their real field names, typed and mistyped values,
//! tiered `l1`/`l2` sections, the service and serializer sections) rendered in each format,
//! sometimes corrupted, merged one to three at a time by `ConfigLoader` and loaded. Loading
//! and validating never panics; every failure is a `ConfigError`; a config that loads also
//! passes `CacheConfig::validate`; and a secret given in `password`, `sentinel_password`, a
//! serializer `key` or a URL's password never shows in the loader's `Debug`, the config's
//! `Debug` or an error. Nothing is built and nothing connects: only load and validate.
//!
//! A `*_file` field naming a file that exists is skipped (reading `/dev/zero` as a password
//! file is the operator's own doing), so the run never reads outside the process.
#![no_main]

use std::path::Path;

use arbitrary::{Result, Unstructured};
use lexicache_config::figment::value::Value as FigValue;
use lexicache_config::figment::Provider;
use lexicache_config::ConfigLoader;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

/// The secret every generated secret field holds (and what must never print).
const MARKER: &str = "Zq9sEcReTzQ";

const TYPES: &[&str] = &["memory", "redis", "memcached", "tiered", "Redis", "MEMORY"];

const COMMON: &[&str] = &[
    "name",
    "enabled",
    "default",
    "prefix",
    "default_ttl",
    "max_value_size",
    "clear_on_start",
];
const MEMORY: &[&str] = &["max_entries", "max_bytes"];
const REDIS: &[&str] = &[
    "url",
    "mode",
    "host",
    "port",
    "nodes",
    "sentinel_master",
    "sentinel_username",
    "sentinel_password",
    "sentinel_password_file",
    "username",
    "password",
    "password_file",
    "tls",
    "db",
    "command_timeout",
    "connect_timeout",
    "max_command_buffer",
    "fail_fast",
];
const MEMCACHED: &[&str] = &[
    "servers",
    "pool_size",
    "connect_timeout",
    "command_timeout",
    "backoff_initial",
    "backoff_max",
];
const TIERED: &[&str] = &[
    "l1_ttl",
    "max_staleness",
    "heartbeat_interval",
    "invalidation",
    "l1",
    "l2",
];
const L1: &[&str] = &["max_entries", "max_bytes", "max_value_size"];
const SERVICE: &[&str] = &[
    "enable_protection",
    "protection_distributed",
    "protection_lock_ttl",
    "protection_max_wait",
    "protection_retry_interval",
    "protection_on_timeout",
    "serializer",
    "circuit_breaker",
    "metrics",
    "timeout",
    "namespace",
    "tag_ttl",
];
const SERIALIZER: &[&str] = &["type", "format", "compression", "algorithm", "keys"];
const BREAKER: &[&str] = &[
    "enabled",
    "failure_threshold",
    "window",
    "open_duration",
    "half_open_probes",
    "success_threshold",
];

const DURATION_FIELDS: &[&str] = &[
    "default_ttl",
    "command_timeout",
    "connect_timeout",
    "backoff_initial",
    "backoff_max",
    "l1_ttl",
    "max_staleness",
    "heartbeat_interval",
    "protection_lock_ttl",
    "protection_max_wait",
    "protection_retry_interval",
    "timeout",
    "tag_ttl",
    "window",
    "open_duration",
];
const BOOL_FIELDS: &[&str] = &[
    "enabled",
    "default",
    "clear_on_start",
    "tls",
    "fail_fast",
    "enable_protection",
    "protection_distributed",
    "metrics",
    "compression",
];
const NUMBER_FIELDS: &[&str] = &[
    "max_value_size",
    "max_entries",
    "max_bytes",
    "port",
    "db",
    "max_command_buffer",
    "pool_size",
    "failure_threshold",
    "half_open_probes",
    "success_threshold",
    "id",
];
const SECRET_FIELDS: &[&str] = &["password", "sentinel_password", "key"];

const WORDS: &[&str] = &[
    "",
    " ",
    "memory",
    "redis",
    "memcached",
    "tiered",
    "production",
    "PRODUCTION",
    "staging",
    "standalone",
    "cluster",
    "sentinel",
    "auto",
    "none",
    "json",
    "postcard",
    "signed",
    "encrypted",
    "aes-256-gcm",
    "chacha20-poly1305",
    "load",
    "fail",
    "lexicache",
    "app:",
    "a:b",
    "{tag}*",
    "0",
    "-1",
    "true",
    "null",
    "~",
    "1e400",
    "NaN",
    "inf",
    "18446744073709551616",
    "hex:00",
    "hex:zz",
    "/nonexistent/lexicache-fuzz/secret",
];
const UNITS: &[&str] = &[
    "", "ns", "us", "µs", "ms", "s", "sec", "secs", "m", "min", "mins", "h", "d", "x", " s", "5",
];
const HOSTS: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "::1",
    "[::1]",
    "",
    "h",
    "exa mple",
    "a@b",
    "256.1.1.1",
];
const SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis-cluster",
    "redis-sentinel",
    "unix",
    "http",
    "",
];

fn word(u: &mut Unstructured<'_>) -> Result<String> {
    Ok((*u.choose(WORDS)?).to_owned())
}

fn duration(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0 => Value::from(u.arbitrary::<u64>()?),
        1 => Value::from(u.arbitrary::<i64>()?),
        2 => float(u.arbitrary()?),
        3 => Value::String(format!(
            "{}{}",
            u.int_in_range(0..=100_000u64)?,
            u.choose(UNITS)?
        )),
        4 => {
            let parts = u.int_in_range(1..=3)?;
            let mut s = String::new();
            for _ in 0..parts {
                s.push_str(&u.arbitrary::<f32>()?.abs().to_string());
                s.push_str(u.choose(UNITS)?);
            }
            Value::String(s)
        }
        _ => Value::String(u.arbitrary()?),
    })
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn address(u: &mut Unstructured<'_>) -> Result<String> {
    let host = u.choose(HOSTS)?;
    Ok(match u.int_in_range(0..=3)? {
        0 => format!("{host}:{}", u.arbitrary::<u16>()?),
        1 => format!("{host}:{}", u.arbitrary::<i32>()?),
        2 => (*host).to_owned(),
        _ => u.arbitrary()?,
    })
}

/// A Redis URL, with the secret as its password when `secret`.
fn url(u: &mut Unstructured<'_>, secret: bool) -> Result<String> {
    let scheme = u.choose(SCHEMES)?;
    // The user name stays within characters that cannot end the authority, so the secret
    // is in the password position by any reading of the URL.
    let user: String = {
        let n = u.int_in_range(0..=4)?;
        (0..n)
            .map(|_| Ok(*u.choose(&['a', 'b', '0', '.', '_', '-', '%'])?))
            .collect::<Result<_>>()?
    };
    let password = if secret {
        MARKER.to_owned()
    } else {
        u.arbitrary()?
    };
    let host = address(u)?;
    let tail = match u.int_in_range(0..=5)? {
        0 => String::new(),
        1 => format!("/{}", u.arbitrary::<u8>()?),
        2 => "/lexicache".to_owned(),
        3 => format!("?sentinelServiceName={}", u.arbitrary::<String>()?),
        4 => {
            let pw = if secret {
                MARKER.to_owned()
            } else {
                u.arbitrary()?
            };
            format!("/mymaster?sentinelPassword={pw}")
        }
        _ => u.arbitrary()?,
    };
    let more = if u.arbitrary()? {
        format!(",{}", address(u)?)
    } else {
        String::new()
    };
    Ok(if u.arbitrary()? || secret {
        format!("{scheme}://{user}:{password}@{host}{more}{tail}")
    } else {
        format!("{scheme}://{host}{more}{tail}")
    })
}

fn any_value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let max = if depth == 0 { 9 } else { 11 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Value::Bool(u.arbitrary()?),
        1 => Value::from(u.arbitrary::<i64>()?),
        2 => Value::from(u.int_in_range(0..=70_000u32)?),
        3 => float(u.arbitrary()?),
        4 => Value::String(u.arbitrary()?),
        5 => Value::String(word(u)?),
        6 => duration(u)?,
        7 => Value::String(address(u)?),
        8 => Value::String(url(u, false)?),
        9 => Value::Null,
        10 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| any_value(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0..=3)?;
            let mut m = Map::new();
            for _ in 0..n {
                let k = if u.arbitrary()? {
                    word(u)?
                } else {
                    u.arbitrary()?
                };
                m.insert(k, any_value(u, depth - 1)?);
            }
            Value::Object(m)
        }
    })
}

/// A value for the field `name`: usually of the field's type, sometimes anything.
fn field_value(u: &mut Unstructured<'_>, name: &str, depth: u32) -> Result<Value> {
    if u.ratio(1, 5)? {
        return any_value(u, depth);
    }
    let typed = if DURATION_FIELDS.contains(&name) {
        duration(u)?
    } else if BOOL_FIELDS.contains(&name) {
        Value::Bool(u.arbitrary()?)
    } else if NUMBER_FIELDS.contains(&name) {
        match u.int_in_range(0..=3)? {
            0 => Value::from(u.int_in_range(0..=2u32)?),
            1 => Value::from(u.arbitrary::<u16>()?),
            2 => Value::from(u.arbitrary::<u64>()?),
            _ => Value::from(u.arbitrary::<i64>()?),
        }
    } else if SECRET_FIELDS.contains(&name) {
        Value::String(match u.int_in_range(0..=2)? {
            0 => MARKER.to_owned(),
            1 => MARKER.repeat(3),
            _ => format!("{MARKER}{}", "k".repeat(u.int_in_range(0..=40)?)),
        })
    } else if name.ends_with("_file") {
        // Never a file that exists.
        Value::String(format!(
            "/nonexistent/lexicache-fuzz/{}",
            u.arbitrary::<u8>()?
        ))
    } else if name == "url" {
        let secret = u.arbitrary()?;
        Value::String(url(u, secret)?)
    } else if name == "host" {
        Value::String((*u.choose(HOSTS)?).to_owned())
    } else if matches!(name, "servers" | "nodes") {
        let n = u.int_in_range(0..=3)?;
        let list: Vec<String> = (0..n).map(|_| address(u)).collect::<Result<_>>()?;
        if u.arbitrary()? {
            Value::from(list)
        } else {
            Value::String(list.join(","))
        }
    } else if matches!(name, "name" | "prefix" | "namespace" | "sentinel_master") {
        Value::String(if u.arbitrary()? {
            (*u.choose(&["main", "hot", "shared", "", " ", "a", "app:"])?).to_owned()
        } else {
            u.arbitrary()?
        })
    } else {
        Value::String(word(u)?)
    };
    Ok(typed)
}

/// Fields: mostly names from `known`, sometimes a name from elsewhere or anything.
fn fields(
    u: &mut Unstructured<'_>,
    m: &mut Map<String, Value>,
    known: &[&[&str]],
    depth: u32,
) -> Result<()> {
    let n = u.int_in_range(0..=7)?;
    for _ in 0..n {
        let name: String = match u.int_in_range(0..=9)? {
            0 => u.arbitrary()?,
            1 => (*u.choose(REDIS)?).to_owned(),
            2 => (*u.choose(MEMCACHED)?).to_owned(),
            _ => {
                let group = u.choose(known)?;
                if group.is_empty() {
                    continue;
                }
                (*u.choose(group)?).to_owned()
            }
        };
        let value = match name.as_str() {
            "l2" if depth > 0 => backend(u, depth - 1)?,
            "l1" if depth > 0 => {
                let mut l1 = Map::new();
                fields(u, &mut l1, &[L1, COMMON], 0)?;
                Value::Object(l1)
            }
            _ => field_value(u, &name, depth)?,
        };
        m.insert(name, value);
    }
    Ok(())
}

fn backend(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let mut m = Map::new();
    let kind = match u.int_in_range(0..=8)? {
        0..=5 => Some(Value::String((*u.choose(TYPES)?).to_owned())),
        6 => None,
        7 => Some(Value::String(u.arbitrary()?)),
        _ => Some(any_value(u, 0)?),
    };
    let known: &[&[&str]] = match kind.as_ref().and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("memory") => &[COMMON, MEMORY],
        Some(t) if t.eq_ignore_ascii_case("redis") => &[COMMON, REDIS],
        Some(t) if t.eq_ignore_ascii_case("memcached") => &[COMMON, MEMCACHED],
        Some(t) if t.eq_ignore_ascii_case("tiered") => &[COMMON, TIERED, TIERED],
        _ => &[COMMON, MEMORY, REDIS, MEMCACHED, TIERED],
    };
    if let Some(kind) = kind {
        m.insert("type".to_owned(), kind);
    }
    fields(u, &mut m, known, depth)?;
    if m.get("type").and_then(Value::as_str) == Some("tiered")
        && !m.contains_key("l2")
        && depth > 0
        && u.ratio(3, 4)?
    {
        m.insert("l2".to_owned(), backend(u, depth - 1)?);
    }
    Ok(Value::Object(m))
}

fn service(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut m = Map::new();
    fields(u, &mut m, &[SERVICE], 1)?;
    if u.arbitrary()? {
        let mut s = Map::new();
        fields(u, &mut s, &[SERIALIZER], 0)?;
        if s.get("type").is_some() || u.arbitrary()? {
            s.insert(
                "type".to_owned(),
                Value::String((*u.choose(&["json", "postcard", "signed", "encrypted"])?).into()),
            );
        }
        if u.arbitrary()? {
            let n = u.int_in_range(0..=3)?;
            let mut keys = Vec::new();
            for _ in 0..n {
                let mut k = Map::new();
                fields(u, &mut k, &[&["id", "key", "key_file"]], 0)?;
                keys.push(Value::Object(k));
            }
            s.insert("keys".to_owned(), Value::Array(keys));
        }
        m.insert("serializer".to_owned(), Value::Object(s));
    }
    if u.arbitrary()? {
        let mut b = Map::new();
        fields(u, &mut b, &[BREAKER], 0)?;
        m.insert("circuit_breaker".to_owned(), Value::Object(b));
    }
    Ok(Value::Object(m))
}

fn document(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut m = Map::new();
    if u.arbitrary()? {
        m.insert("name".to_owned(), field_value(u, "name", 0)?);
    }
    if u.ratio(1, 4)? {
        m.insert("enabled".to_owned(), field_value(u, "enabled", 0)?);
    }
    if u.ratio(1, 3)? {
        m.insert(
            "environment".to_owned(),
            Value::String(
                (*u.choose(&["production", "staging", "development", "Production", ""])?).into(),
            ),
        );
    }
    if u.ratio(7, 8)? {
        let n = u.int_in_range(0..=3)?;
        let list: Vec<Value> = (0..n).map(|_| backend(u, 2)).collect::<Result<_>>()?;
        let backends = match u.int_in_range(0..=5)? {
            // What nested environment variables produce: a map keyed by index.
            0 => {
                let mut by_index = Map::new();
                for b in list {
                    by_index.insert(u.int_in_range(0..=12u8)?.to_string(), b);
                }
                Value::Object(by_index)
            }
            1 => any_value(u, 1)?,
            _ => Value::Array(list),
        };
        m.insert("backends".to_owned(), backends);
    }
    if u.arbitrary()? {
        m.insert("service".to_owned(), service(u)?);
    }
    if u.ratio(1, 8)? {
        m.insert(u.arbitrary()?, any_value(u, 1)?);
    }
    Ok(Value::Object(m))
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => {
            a.retain(|v| !v.is_null());
            a.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// Sometimes breaks rendered text: truncates it or splices in a byte, so the parsers see
/// nearly valid documents too.
fn corrupt(u: &mut Unstructured<'_>, text: String) -> Result<String> {
    if !u.ratio(1, 6)? || text.is_empty() {
        return Ok(text);
    }
    let mut bytes = text.into_bytes();
    let at = u.choose_index(bytes.len())?;
    if u.arbitrary()? {
        bytes.truncate(at);
    } else {
        bytes.insert(at, u.arbitrary()?);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What one source added: the loader, and whether it put the marker in as raw text (where
/// it may sit in a field that is not a secret).
fn source(u: &mut Unstructured<'_>, loader: ConfigLoader) -> Result<(ConfigLoader, bool)> {
    let format = u.int_in_range(0..=3)?;
    if u.ratio(1, 4)? {
        let text: String = u.arbitrary()?;
        let raw_marker = text.contains(MARKER);
        let loader = match format {
            0 => loader.yaml(&text),
            1 => loader.json(&text),
            _ => loader.toml(&text),
        };
        return Ok((loader, raw_marker));
    }
    let mut doc = document(u)?;
    let loader = match format {
        0 => match serde_yaml::to_string(&doc) {
            Ok(text) => loader.yaml(&corrupt(u, text)?),
            Err(_) => loader,
        },
        1 => {
            let text = if u.arbitrary()? {
                serde_json::to_string_pretty(&doc)
            } else {
                serde_json::to_string(&doc)
            };
            match text {
                Ok(text) => loader.json(&corrupt(u, text)?),
                Err(_) => loader,
            }
        }
        2 => {
            strip_nulls(&mut doc);
            match toml::to_string(&doc) {
                Ok(text) => loader.toml(&corrupt(u, text)?),
                Err(_) => loader,
            }
        }
        _ => loader.map(doc),
    };
    Ok((loader, false))
}

/// Whether any `*_file` field names a file that exists (which loading would read).
fn names_existing_file(value: &FigValue) -> bool {
    match value {
        FigValue::Dict(_, dict) => dict.iter().any(|(k, v)| {
            (k.ends_with("_file") && v.as_str().is_some_and(|p| Path::new(p).exists()))
                || names_existing_file(v)
        }),
        FigValue::Array(_, items) => items.iter().any(names_existing_file),
        _ => false,
    }
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let mut loader = ConfigLoader::new();
    let mut raw_marker = false;
    let n = u.int_in_range(1..=3)?;
    for _ in 0..n {
        let (next, marker) = source(&mut u, loader)?;
        loader = next;
        raw_marker |= marker;
    }
    if let Ok(profiles) = loader.figment().data() {
        if profiles
            .values()
            .any(|dict| dict.values().any(names_existing_file))
        {
            return Ok(());
        }
    }

    let shown = format!("{loader:?}");
    assert!(
        !shown.contains(MARKER),
        "loader Debug shows a secret: {shown}"
    );

    let unvalidated = loader.load_unvalidated();
    let loaded = loader.load();
    match (&unvalidated, &loaded) {
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (Err(a), Ok(_)) => panic!("load_unvalidated failed ({a}) but load succeeded"),
        _ => {}
    }
    match loaded {
        Ok(config) => {
            if let Err(e) = config.validate() {
                panic!("loaded, yet `validate` refuses the result: {e}");
            }
            let shown = format!("{config:?}");
            assert!(
                raw_marker || !shown.contains(MARKER),
                "config Debug shows a secret: {shown}"
            );
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
            assert!(
                raw_marker || !shown.contains(MARKER),
                "error Display shows a secret: {shown}"
            );
            let shown = format!("{e:?}");
            assert!(
                raw_marker || !shown.contains(MARKER),
                "error Debug shows a secret: {shown}"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
