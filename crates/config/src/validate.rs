//! The rules a configuration must follow, checked after loading (see the crate docs for the
//! list). Each broken rule is one [`ConfigError`] variant naming the field and its source.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use lexicache_redis::{Deployment, RedisConfig};

use crate::backend::{
    BackendType, CacheBackendConfig, MemcachedBackendConfig, MemoryBackendConfig,
    RedisBackendConfig, RedisMode, TieredBackendConfig, TieredInvalidation, DEFAULT_REDIS_HOST,
    NESTED_TIERED,
};
use crate::config::CacheConfig;
use crate::error::ConfigError;
use crate::loader::Sources;
use crate::service::{SerializerKind, ServiceConfig};

/// The largest pool a memcached backend may ask for, per server.
pub const MAX_POOL_SIZE: usize = 1024;

/// Shortest signing key, in bytes.
pub const MIN_SIGNING_KEY_LEN: usize = 32;

/// Length of an encryption key, in bytes.
pub const ENCRYPTION_KEY_LEN: usize = 32;

pub(crate) fn validate(config: &CacheConfig, sources: &Sources<'_>) -> Result<(), ConfigError> {
    let keys = sources.list_keys("backends", config.backends.len());
    let backends: Vec<(String, &CacheBackendConfig)> = keys
        .iter()
        .map(|k| format!("backends.{k}"))
        .zip(&config.backends)
        .collect();

    check_names_and_defaults(config, &backends, sources)?;
    for (base, backend) in &backends {
        Check { sources, base }.backend(backend)?;
    }
    check_service(&config.service, sources)?;
    if config.is_production() {
        check_production(config, &backends, sources)?;
    }
    Ok(())
}

fn check_names_and_defaults(
    config: &CacheConfig,
    backends: &[(String, &CacheBackendConfig)],
    sources: &Sources<'_>,
) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (base, b) in backends {
        if b.name().trim().is_empty() {
            return Err(ConfigError::Missing {
                at: sources.at(&format!("{base}.name")),
                problem: "every backend needs a non-empty name".to_owned(),
            });
        }
        if !seen.insert(b.name()) {
            return Err(ConfigError::DuplicateName {
                at: sources.at(&format!("{base}.name")),
                name: b.name().to_owned(),
            });
        }
    }
    if !config.enabled {
        return Ok(());
    }
    let enabled: Vec<&(String, &CacheBackendConfig)> =
        backends.iter().filter(|(_, b)| b.enabled()).collect();
    if enabled.is_empty() {
        return Err(ConfigError::NoBackends);
    }
    let mut first_default: Option<&str> = None;
    for (base, b) in &enabled {
        if !b.is_default() {
            continue;
        }
        if let Some(first) = first_default {
            return Err(ConfigError::MultipleDefaults {
                at: sources.at(&format!("{base}.default")),
                first: first.to_owned(),
                second: b.name().to_owned(),
            });
        }
        first_default = Some(b.name());
    }
    if first_default.is_none() && enabled.len() > 1 {
        return Err(ConfigError::NoDefaultBackend {
            count: enabled.len(),
            names: enabled
                .iter()
                .map(|(_, b)| format!("`{}`", b.name()))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(())
}

/// Checks for one backend at `base` (`backends.1`).
struct Check<'a, 's> {
    sources: &'a Sources<'s>,
    base: &'a str,
}

impl Check<'_, '_> {
    fn field(&self, field: &str) -> String {
        format!("{}.{field}", self.base)
    }

    fn at(&self, field: &str) -> crate::error::Location {
        self.sources.at(&self.field(field))
    }

    fn range(&self, field: &str, value: impl ToString, expected: &str) -> ConfigError {
        ConfigError::OutOfRange {
            at: self.at(field),
            value: value.to_string(),
            expected: expected.to_owned(),
        }
    }

    fn positive(&self, field: &str, d: Duration) -> Result<(), ConfigError> {
        if d.is_zero() {
            return Err(self.range(field, "0s", "it must be above zero"));
        }
        Ok(())
    }

    fn conflict(&self, field: &str, other: &str, hint: &str) -> ConfigError {
        ConfigError::Conflict {
            at: self.at(field),
            other: self.field(other),
            hint: hint.to_owned(),
        }
    }

    fn backend(&self, b: &CacheBackendConfig) -> Result<(), ConfigError> {
        match b {
            CacheBackendConfig::Memory(m) => {
                self.common(b)?;
                self.memory(m)
            }
            CacheBackendConfig::Redis(r) => {
                self.common(b)?;
                self.redis(r)
            }
            CacheBackendConfig::Memcached(m) => {
                self.common(b)?;
                self.memcached(m)
            }
            // Its prefix, TTL and value size are its L2's, checked there.
            CacheBackendConfig::Tiered(t) => self.tiered(t),
        }
    }

    fn common(&self, b: &CacheBackendConfig) -> Result<(), ConfigError> {
        if let Some(ttl) = b.default_ttl() {
            self.positive("default_ttl", ttl)?;
        }
        let max_value_size = b.max_value_size();
        if max_value_size == Some(0) {
            return Err(self.range("max_value_size", 0, "it must be at least 1 byte"));
        }
        if let CacheBackendConfig::Redis(_) = b {
            if max_value_size.is_some_and(|n| n > 512 * 1024 * 1024) {
                return Err(self.range(
                    "max_value_size",
                    max_value_size.unwrap_or_default(),
                    "Redis accepts values up to 512 MiB (536870912 bytes)",
                ));
            }
        }
        Ok(())
    }

    fn memory(&self, m: &MemoryBackendConfig) -> Result<(), ConfigError> {
        self.memory_bounds(m.max_entries, m.max_bytes)
    }

    fn memory_bounds(
        &self,
        max_entries: Option<u64>,
        max_bytes: Option<u64>,
    ) -> Result<(), ConfigError> {
        if max_entries.is_some() && max_bytes.is_some() {
            return Err(self.conflict(
                "max_bytes",
                "max_entries",
                "bound the store by entries or by bytes, not both",
            ));
        }
        if max_entries == Some(0) {
            return Err(self.range("max_entries", 0, "it must be at least 1"));
        }
        if max_bytes == Some(0) {
            return Err(self.range("max_bytes", 0, "it must be at least 1"));
        }
        Ok(())
    }

    fn tiered(&self, t: &TieredBackendConfig) -> Result<(), ConfigError> {
        self.positive("l1_ttl", t.l1_ttl)?;

        let l1_base = self.field("l1");
        let l1 = Check {
            sources: self.sources,
            base: &l1_base,
        };
        l1.memory_bounds(t.l1.max_entries, t.l1.max_bytes)?;
        if t.l1.max_value_size == Some(0) {
            return Err(l1.range("max_value_size", 0, "it must be at least 1 byte"));
        }

        let l2_base = self.field("l2");
        let l2 = Check {
            sources: self.sources,
            base: &l2_base,
        };
        if t.l2.kind() == BackendType::Tiered {
            return Err(ConfigError::Misplaced {
                at: l2.at("type"),
                field: "type".to_owned(),
                hint: NESTED_TIERED.to_owned(),
            });
        }
        // Loaded configs refuse these when parsing; this catches configs built in code.
        for (field, set) in [
            ("enabled", !t.l2.enabled()),
            ("default", t.l2.is_default()),
            ("clear_on_start", t.l2.clear_on_start()),
        ] {
            if set {
                return Err(ConfigError::Misplaced {
                    at: l2.at(field),
                    field: field.to_owned(),
                    hint: crate::backend::l2_refusal(field).unwrap_or_default(),
                });
            }
        }
        l2.backend(&t.l2)?;

        if t.clear_on_start && t.l2.kind() == BackendType::Memcached {
            return Err(self.conflict(
                "clear_on_start",
                "l2.type",
                "memcached cannot clear one namespace (flush_all would empty the whole server); \
                 remove `clear_on_start`",
            ));
        }
        match t.invalidation {
            TieredInvalidation::Auto if t.l2.kind() != BackendType::Redis => {
                Err(ConfigError::NoInvalidationChannel {
                    at: self.at("invalidation"),
                    l2_type: t.l2.kind().to_string(),
                    l1_ttl: format!("{:?}", t.l1_ttl),
                })
            }
            TieredInvalidation::Auto => {
                let bound = t.max_staleness();
                if bound < Duration::from_millis(1) {
                    return Err(self.range(
                        "max_staleness",
                        format!("{bound:?}"),
                        "it must be at least 1ms",
                    ));
                }
                match t.heartbeat_interval {
                    Some(every) if every.is_zero() || every >= bound => Err(self.range(
                        "heartbeat_interval",
                        format!("{every:?}"),
                        &format!(
                            "it must be above zero and below `max_staleness` ({bound:?}), \
                             which each heartbeat renews"
                        ),
                    )),
                    _ => Ok(()),
                }
            }
            TieredInvalidation::None => {
                for (field, set) in [
                    ("max_staleness", t.max_staleness.is_some()),
                    ("heartbeat_interval", t.heartbeat_interval.is_some()),
                ] {
                    if set {
                        return Err(self.conflict(
                            field,
                            "invalidation",
                            &format!(
                                "`{field}` tunes the invalidation channel; with \
                                 `invalidation: none` other processes' changes show after at \
                                 most `l1_ttl`: remove `{field}`"
                            ),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    fn redis(&self, r: &RedisBackendConfig) -> Result<(), ConfigError> {
        self.positive("command_timeout", r.command_timeout)?;
        self.positive("connect_timeout", r.connect_timeout)?;
        if let Some(url) = &r.url {
            for (field, set) in [
                ("mode", r.mode.is_some()),
                ("host", r.host.is_some()),
                ("port", r.port.is_some()),
                ("nodes", !r.nodes.is_empty()),
                ("sentinel_master", r.sentinel_master.is_some()),
            ] {
                if set {
                    return Err(self.conflict(
                        field,
                        "url",
                        "say where Redis is with `url`, or with mode/host/port/nodes, not both",
                    ));
                }
            }
            let parsed = RedisConfig::from_url(url).map_err(|e| ConfigError::InvalidUrl {
                at: self.at("url"),
                reason: e.message().to_owned(),
            })?;
            if matches!(parsed.deployment, Deployment::Cluster { .. })
                && (r.db.is_some_and(|db| db != 0) || parsed.database.is_some_and(|db| db != 0))
            {
                return Err(self.range(
                    "db",
                    r.db.or(parsed.database).unwrap_or_default(),
                    "a Redis Cluster has only database 0",
                ));
            }
            return Ok(());
        }
        let mode = r.mode.unwrap_or_default();
        if r.port == Some(0) {
            return Err(self.range("port", 0, "a port is 1 to 65535"));
        }
        if r.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
            return Err(ConfigError::Missing {
                at: self.at("host"),
                problem: "the host is empty".to_owned(),
            });
        }
        if let Some(host) = r.host.as_deref().filter(|h| h.contains('@')) {
            return Err(ConfigError::InvalidAddress {
                at: self.at("host"),
                address: crate::backend::redact_address(host),
                reason: CREDENTIALS_IN_ADDRESS.to_owned(),
            });
        }
        match mode {
            RedisMode::Standalone => {
                if !r.nodes.is_empty() {
                    return Err(self.conflict(
                        "nodes",
                        "mode",
                        "`nodes` lists cluster nodes or sentinels; set `mode: cluster` or \
                         `mode: sentinel`, or use `host` and `port`",
                    ));
                }
                if r.sentinel_master.is_some() {
                    return Err(self.conflict(
                        "sentinel_master",
                        "mode",
                        "`sentinel_master` needs `mode: sentinel`",
                    ));
                }
            }
            RedisMode::Cluster | RedisMode::Sentinel => {
                for field in ["host", "port"] {
                    let set = if field == "host" {
                        r.host.is_some()
                    } else {
                        r.port.is_some()
                    };
                    if set {
                        return Err(self.conflict(
                            field,
                            "nodes",
                            "in cluster and sentinel mode the addresses go in `nodes`",
                        ));
                    }
                }
                if r.nodes.is_empty() {
                    return Err(ConfigError::Missing {
                        at: self.at("nodes"),
                        problem: "cluster and sentinel mode need at least one `host:port` in \
                                  `nodes`"
                            .to_owned(),
                    });
                }
                let keys = self.sources.list_keys(&self.field("nodes"), r.nodes.len());
                for (node, key) in r.nodes.iter().zip(keys) {
                    let at = || self.sources.at(&format!("{}.nodes.{key}", self.base));
                    if node.contains('@') {
                        return Err(ConfigError::InvalidAddress {
                            at: at(),
                            address: crate::backend::redact_address(node),
                            reason: CREDENTIALS_IN_ADDRESS.to_owned(),
                        });
                    }
                    parse_address(node).map_err(|reason| ConfigError::InvalidAddress {
                        at: at(),
                        address: node.clone(),
                        reason,
                    })?;
                }
                if mode == RedisMode::Cluster && r.db.is_some_and(|db| db != 0) {
                    return Err(self.range(
                        "db",
                        r.db.unwrap_or_default(),
                        "a Redis Cluster has only database 0",
                    ));
                }
                if mode == RedisMode::Sentinel
                    && r.sentinel_master
                        .as_deref()
                        .is_none_or(|m| m.trim().is_empty())
                {
                    return Err(ConfigError::Missing {
                        at: self.at("sentinel_master"),
                        problem: "sentinel mode needs the name the sentinels monitor the \
                                  primary under"
                            .to_owned(),
                    });
                }
            }
        }
        if mode == RedisMode::Cluster && r.sentinel_master.is_some() {
            return Err(self.conflict(
                "sentinel_master",
                "mode",
                "`sentinel_master` needs `mode: sentinel`",
            ));
        }
        Ok(())
    }

    fn memcached(&self, m: &MemcachedBackendConfig) -> Result<(), ConfigError> {
        if m.clear_on_start {
            return Err(self.conflict(
                "clear_on_start",
                "type",
                "memcached cannot clear one namespace (flush_all would empty the whole server); \
                 remove `clear_on_start`",
            ));
        }
        if m.servers.is_empty() {
            return Err(ConfigError::Missing {
                at: self.at("servers"),
                problem: "a memcached backend needs at least one `host:port` server".to_owned(),
            });
        }
        let mut seen = HashSet::new();
        for (i, server) in m.servers.iter().enumerate() {
            let at = self.sources.at(&format!("{}.servers.{i}", self.base));
            let addr = server.trim();
            let addr = addr.strip_prefix("tcp://").unwrap_or(addr);
            if addr.contains('@') {
                return Err(ConfigError::InvalidAddress {
                    at,
                    address: "<hidden: it holds credentials>".to_owned(),
                    reason: "memcached's text protocol has no authentication; give host:port"
                        .to_owned(),
                });
            }
            parse_address(addr).map_err(|reason| ConfigError::InvalidAddress {
                at: at.clone(),
                address: server.clone(),
                reason,
            })?;
            if !seen.insert(addr) {
                return Err(ConfigError::InvalidAddress {
                    at,
                    address: server.clone(),
                    reason: "listed twice".to_owned(),
                });
            }
        }
        if m.pool_size == 0 || m.pool_size > MAX_POOL_SIZE {
            return Err(self.range(
                "pool_size",
                m.pool_size,
                &format!("it must be 1 to {MAX_POOL_SIZE}"),
            ));
        }
        self.positive("connect_timeout", m.connect_timeout)?;
        self.positive("command_timeout", m.command_timeout)?;
        self.positive("backoff_initial", m.backoff_initial)?;
        if m.backoff_max < m.backoff_initial {
            return Err(self.range(
                "backoff_max",
                format!("{:?}", m.backoff_max),
                "it must be at least `backoff_initial`",
            ));
        }
        Ok(())
    }
}

/// Why a Redis address holding `user:password@` is refused.
const CREDENTIALS_IN_ADDRESS: &str =
    "credentials do not go in an address; set `username` and `password` (or `password_file`)";

/// Checks `host:port`: a non-empty host and a port from 1 to 65535.
pub(crate) fn parse_address(addr: &str) -> Result<(String, u16), String> {
    let addr = addr.trim();
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("expected host:port (the port is required)".to_owned());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("expected host:port with a host".to_owned());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_owned(), p)),
        _ => Err("the port must be a number from 1 to 65535".to_owned()),
    }
}

fn check_service(service: &ServiceConfig, sources: &Sources<'_>) -> Result<(), ConfigError> {
    let v = Check {
        sources,
        base: "service",
    };
    v.positive("protection_lock_ttl", service.protection_lock_ttl)?;
    v.positive("protection_max_wait", service.protection_max_wait)?;
    v.positive(
        "protection_retry_interval",
        service.protection_retry_interval,
    )?;
    if let Some(timeout) = service.timeout {
        v.positive("timeout", timeout)?;
    }
    if service.tag_ttl < Duration::from_secs(1) {
        return Err(v.range(
            "tag_ttl",
            format!("{:?}", service.tag_ttl),
            "it must be at least 1s (memcached's resolution)",
        ));
    }
    if service.namespace.as_deref().is_some_and(str::is_empty) {
        return Err(v.range("namespace", "\"\"", "leave it out for no namespace"));
    }

    let cb = &service.circuit_breaker;
    let b = Check {
        sources,
        base: "service.circuit_breaker",
    };
    for (field, n) in [
        ("failure_threshold", cb.failure_threshold),
        ("half_open_probes", cb.half_open_probes),
        ("success_threshold", cb.success_threshold),
    ] {
        if n == 0 {
            return Err(b.range(field, 0, "it must be at least 1"));
        }
    }
    b.positive("window", cb.window)?;
    b.positive("open_duration", cb.open_duration)?;

    let ser = &service.serializer;
    let s = Check {
        sources,
        base: "service.serializer",
    };
    if ser.format.is_some() && !ser.kind.needs_keys() {
        return Err(s.conflict(
            "format",
            "type",
            "`format` is the payload format of `signed` and `encrypted`; with `type: json` or \
             `type: postcard` leave it out",
        ));
    }
    if ser.algorithm.is_some() && ser.kind != SerializerKind::Encrypted {
        return Err(s.conflict(
            "algorithm",
            "type",
            "`algorithm` is only used by `type: encrypted`",
        ));
    }
    if !ser.keys.is_empty() && !ser.kind.needs_keys() {
        return Err(s.conflict(
            "keys",
            "type",
            "keys are only used by `type: signed` and `type: encrypted`",
        ));
    }
    let keys = sources.list_keys("service.serializer.keys", ser.keys.len());
    let mut ids = HashSet::new();
    for (entry, key) in ser.keys.iter().zip(keys) {
        let base = format!("service.serializer.keys.{key}");
        if !ids.insert(entry.id) {
            return Err(ConfigError::Conflict {
                at: sources.at(&format!("{base}.id")),
                other: "another key's id".to_owned(),
                hint: format!("key id {} is used twice; ids must be unique", entry.id),
            });
        }
        let material = entry.material().map_err(|problem| ConfigError::Parse {
            at: sources.at(&format!("{base}.key")),
            problem,
        })?;
        let Some(material) = material else {
            return Err(ConfigError::Missing {
                at: sources.at(&format!("{base}.key")),
                problem: "give the key material as `key` (e.g. from an environment variable) \
                          or `key_file`"
                    .to_owned(),
            });
        };
        let at = sources.at(&format!("{base}.key"));
        match ser.kind {
            SerializerKind::Signed if material.len() < MIN_SIGNING_KEY_LEN => {
                return Err(ConfigError::KeyLength {
                    at,
                    len: material.len(),
                    required: format!("signing keys need at least {MIN_SIGNING_KEY_LEN} bytes"),
                });
            }
            SerializerKind::Encrypted if material.len() < ENCRYPTION_KEY_LEN => {
                return Err(ConfigError::KeyLength {
                    at,
                    len: material.len(),
                    required: format!(
                        "encryption keys need at least {ENCRYPTION_KEY_LEN} bytes (exactly \
                         {ENCRYPTION_KEY_LEN})"
                    ),
                });
            }
            SerializerKind::Encrypted if material.len() != ENCRYPTION_KEY_LEN => {
                return Err(ConfigError::KeyLength {
                    at,
                    len: material.len(),
                    required: format!("encryption keys are exactly {ENCRYPTION_KEY_LEN} bytes"),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The hosts a Redis backend talks to, whether it authenticates, and whether it uses TLS.
fn redis_security(r: &RedisBackendConfig) -> (Vec<String>, bool, bool) {
    let mut auth = r.password.is_some();
    let mut tls = r.tls;
    let hosts = match &r.url {
        Some(url) => match RedisConfig::from_url(url) {
            Ok(parsed) => {
                auth |= parsed.password.is_some();
                tls |= parsed.tls.is_some();
                match parsed.deployment {
                    Deployment::Standalone { host, .. } => vec![host],
                    Deployment::Cluster { nodes } => nodes.into_iter().map(|(h, _)| h).collect(),
                    Deployment::Sentinel { sentinels, .. } => {
                        sentinels.into_iter().map(|(h, _)| h).collect()
                    }
                    _ => Vec::new(),
                }
            }
            Err(_) => Vec::new(),
        },
        None => match r.mode.unwrap_or_default() {
            RedisMode::Standalone => {
                vec![r
                    .host
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REDIS_HOST.to_owned())]
            }
            RedisMode::Cluster | RedisMode::Sentinel => r
                .nodes
                .iter()
                .filter_map(|n| parse_address(n).ok().map(|(h, _)| h))
                .collect(),
        },
    };
    (hosts, auth, tls)
}

/// Production: Redis on a non-loopback host needs a password or TLS.
fn check_redis_security(
    r: &RedisBackendConfig,
    base: &str,
    sources: &Sources<'_>,
) -> Result<(), ConfigError> {
    let (hosts, auth, tls) = redis_security(r);
    if auth || tls {
        return Ok(());
    }
    let Some(host) = hosts.into_iter().find(|h| !is_loopback(h)) else {
        return Ok(());
    };
    let field = if r.url.is_some() {
        "url"
    } else if r.mode.unwrap_or_default() == RedisMode::Standalone {
        "host"
    } else {
        "nodes"
    };
    Err(ConfigError::InsecureRedis {
        at: sources.at(&format!("{base}.{field}")),
        host,
    })
}

fn check_production(
    config: &CacheConfig,
    backends: &[(String, &CacheBackendConfig)],
    sources: &Sources<'_>,
) -> Result<(), ConfigError> {
    for (base, backend) in backends {
        if !backend.enabled() {
            continue;
        }
        if backend.clear_on_start() {
            return Err(ConfigError::ClearOnStart {
                at: sources.at(&format!("{base}.clear_on_start")),
            });
        }
        match backend {
            CacheBackendConfig::Redis(r) => check_redis_security(r, base, sources)?,
            CacheBackendConfig::Tiered(t) => {
                if let CacheBackendConfig::Redis(r) = &*t.l2 {
                    check_redis_security(r, &format!("{base}.l2"), sources)?;
                }
            }
            _ => {}
        }
    }
    let ser = &config.service.serializer;
    if ser.kind.needs_keys() && ser.keys.is_empty() {
        return Err(ConfigError::MissingKeys {
            at: sources.at("service.serializer.keys"),
            kind: ser.kind.as_str().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1", "redis.internal", "0.0.0.0"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn addresses_need_a_host_and_a_port_in_range() {
        assert_eq!(parse_address("a:1"), Ok(("a".to_owned(), 1)));
        assert!(parse_address("a").is_err());
        assert!(parse_address(":1").is_err());
        assert!(parse_address("a:0").is_err());
        assert!(parse_address("a:65536").is_err());
    }
}
