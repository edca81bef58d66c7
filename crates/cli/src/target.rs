//! Which backend a command talks to: `--config FILE [--backend NAME]`, `--redis URL`,
//! `--memcached HOST:PORT,...`, optionally `--tiered`, or by default the embedded memory
//! backend. Every route goes through a [`CacheConfig`] and a [`CacheProvider`], so the flags
//! get the same validation, defaults and secret handling as a configuration file.

use std::path::PathBuf;

use clap::Args;
use lexicache::config::{
    BackendType, CacheBackendConfig, CacheConfig, CacheProvider, ConfigLoader, ConfiguredService,
};
use serde_json::json;

use crate::CliError;

/// The options that choose the backend; global, so they go before or after the subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// A configuration file (YAML, JSON or TOML, by extension) as `lexicache_config` reads it;
    /// `LEXICACHE_*` environment variables override it.
    #[arg(long, global = true, value_name = "FILE", conflicts_with_all = ["redis", "memcached"])]
    pub config: Option<PathBuf>,
    /// The backend of the configuration file to use (default: its default backend).
    #[arg(long, global = true, value_name = "NAME", requires = "config")]
    pub backend: Option<String>,
    /// A Redis server: `redis://[:password@]host:port[/db]`, `rediss://`, `redis-cluster://`,
    /// `redis-sentinel://`.
    #[arg(long, global = true, value_name = "URL", conflicts_with = "memcached")]
    pub redis: Option<String>,
    /// Memcached servers, comma-separated: `host:port,host:port`.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT,...",
        value_delimiter = ','
    )]
    pub memcached: Option<Vec<String>>,
    /// Put an in-process L1 in front of `--redis` or `--memcached` (a two-level cache;
    /// invalidation over Redis pub/sub with `--redis`).
    #[arg(long, global = true, conflicts_with = "config")]
    pub tiered: bool,
    /// The key prefix (namespace) of `--redis` or `--memcached`; a configuration file sets
    /// its own.
    #[arg(long, global = true, value_name = "PREFIX", conflicts_with = "config")]
    pub prefix: Option<String>,
}

/// A connected backend: the provider that owns it, and which of its services to use.
#[derive(Debug)]
pub struct Target {
    config: CacheConfig,
    provider: CacheProvider,
    name: String,
}

impl Target {
    /// Loads the configuration the flags describe and connects its backend.
    ///
    /// # Errors
    ///
    /// [`CliError::Config`] (exit 2) for a configuration that does not load or validate, or
    /// an unknown `--backend`; [`CliError::Cache`] (exit 3) when the backend cannot connect.
    pub async fn connect(args: &TargetArgs) -> Result<Self, CliError> {
        let config = load(args)?;
        let name =
            match &args.backend {
                Some(name) => {
                    if config.backend(name).is_none() {
                        let known: Vec<&str> = config.backends.iter().map(|b| b.name()).collect();
                        return Err(CliError::Usage(format!(
                            "no backend named `{name}` in the configuration; it has: {}",
                            known.join(", ")
                        )));
                    }
                    name.clone()
                }
                None => match config.default_backend() {
                    Some(backend) => backend.name().to_owned(),
                    None => return Err(CliError::Usage(
                        "the configuration has no default backend; pick one with --backend NAME"
                            .into(),
                    )),
                },
            };
        let provider = CacheProvider::from_config(&config).await?;
        Ok(Self {
            config,
            provider,
            name,
        })
    }

    /// The service over the chosen backend.
    ///
    /// # Panics
    ///
    /// Never: [`connect`](Self::connect) checked that the provider built it.
    #[must_use]
    pub fn service(&self) -> &ConfiguredService {
        self.provider
            .service(&self.name)
            .expect("connect checked the backend name")
    }

    /// The chosen backend's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chosen backend's type.
    #[must_use]
    pub fn kind(&self) -> BackendType {
        self.backend_config().kind()
    }

    /// The chosen backend's configuration (for the raw driver of `bench --compare-raw`).
    ///
    /// # Panics
    ///
    /// Never: [`connect`](Self::connect) checked that the configuration has it.
    #[must_use]
    pub fn backend_config(&self) -> &CacheBackendConfig {
        self.config
            .backend(&self.name)
            .expect("connect checked the backend name")
    }

    /// The whole configuration (service settings: serializer, protection, namespace).
    #[must_use]
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The provider, for its tiered backends and health.
    #[must_use]
    pub fn provider(&self) -> &CacheProvider {
        &self.provider
    }

    /// Closes the connections.
    pub async fn close(self) {
        self.provider.shutdown().await;
    }
}

/// The configuration the flags describe, validated.
fn load(args: &TargetArgs) -> Result<CacheConfig, CliError> {
    if let Some(path) = &args.config {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let loader = match ext {
            "yaml" | "yml" => ConfigLoader::new().yaml_file(path),
            "json" => ConfigLoader::new().json_file(path),
            "toml" => ConfigLoader::new().toml_file(path),
            _ => {
                return Err(CliError::Usage(format!(
                    "cannot tell the format of `{}`: name it .yaml, .yml, .json or .toml",
                    path.display()
                )))
            }
        };
        if !path.is_file() {
            return Err(CliError::Usage(format!(
                "configuration file `{}` does not exist",
                path.display()
            )));
        }
        return Ok(loader.env().load()?);
    }
    let mut remote = if let Some(url) = &args.redis {
        json!({ "type": "redis", "url": url })
    } else if let Some(servers) = &args.memcached {
        json!({ "type": "memcached", "servers": servers })
    } else {
        if args.tiered || args.prefix.is_some() {
            return Err(CliError::Usage(
                "--tiered and --prefix need --redis URL or --memcached HOST:PORT".into(),
            ));
        }
        return Ok(ConfigLoader::new()
            .map(json!({ "backends": [{ "type": "memory", "name": "memory" }] }))
            .load()?);
    };
    if let Some(prefix) = &args.prefix {
        remote["prefix"] = json!(prefix);
    }
    let backend = if args.tiered {
        let invalidation = if args.redis.is_some() { "auto" } else { "none" };
        json!({ "type": "tiered", "name": "tiered", "l2": remote, "invalidation": invalidation })
    } else {
        let name = if args.redis.is_some() {
            "redis"
        } else {
            "memcached"
        };
        remote["name"] = json!(name);
        remote
    };
    Ok(ConfigLoader::new()
        .map(json!({ "backends": [backend] }))
        .load()?)
}
