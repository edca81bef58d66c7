//! Attribute macros for lexicache: memoize async fns and methods in a `CacheService`
//! (`#[cached]`), once per request (`#[cache_in_request]`), and invalidate after a write
//! (`#[invalidate]`).
//!
//! Use them through the umbrella crate (`lexicache::cached`, feature `macros`, on by default):
//! the expansions name `::lexicache::...` paths, so the crate must be a dependency under that
//! name.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Cargo.toml: lexicache = "0.1", tokio = { version = "1", features = ["full"] },
//! //             serde = { version = "1", features = ["derive"] }
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use lexicache::{cached, invalidate, CacheService};
//! use serde::{Deserialize, Serialize};
//!
//! static LOADS: AtomicU32 = AtomicU32::new(0);
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct User { id: u64, name: String }
//!
//! #[derive(Debug)]
//! struct Users { cache: CacheService }
//!
//! impl Users {
//!     /// Cached for 60 s under `user:{id}`, tagged `users`.
//!     #[cached(cache = self.cache, ttl = 60, key = "user:{id}", tags = ["users"])]
//!     async fn get(&self, id: u64) -> Result<User, std::io::Error> {
//!         LOADS.fetch_add(1, Ordering::SeqCst);
//!         Ok(User { id, name: format!("user {id}") })
//!     }
//!
//!     /// Runs, then invalidates the `users` tag: the next `get` loads again.
//!     #[invalidate(cache = self.cache, tags = ["users"])]
//!     async fn rename(&self, id: u64, name: String) {
//!         let _ = (id, name); // the database write
//!     }
//! }
//!
//! let users = Users { cache: CacheService::memory().build() };
//! assert_eq!(users.get(7).await.unwrap().name, "user 7");
//! assert_eq!(users.get(7).await.unwrap().name, "user 7"); // a hit: the body did not run
//! assert_eq!(LOADS.load(Ordering::SeqCst), 1);
//! assert!(users.cache.exists("user:7").await);
//!
//! users.rename(7, "Grace".into()).await;
//! users.get(7).await.unwrap();
//! assert_eq!(LOADS.load(Ordering::SeqCst), 2);
//! # }
//! ```
//!
//! # `#[cached(...)]`
//!
//! Every argument is optional.
//!
//! | argument | example | meaning |
//! |---|---|---|
//! | `cache` | `cache = self.cache` | an expression giving a `&CacheService<S>` or something that derefs to one (`Arc<CacheService>`, `&'static CacheService`, ...). Default: the process-wide cache `lexicache::memo::global()`; when none is installed (`lexicache::memo::set_global`) the function runs uncached |
//! | `ttl` | `ttl = 60` | the TTL of the cached result, a positive whole number of seconds. Default: none |
//! | `key` | `key = "user:{id}"` | the key, a [template](#templates), instead of the derived one |
//! | `prefix` | `prefix = "v2:"` | a string literal before the key |
//! | `tags` | `tags = ["users", "user:{id}"]` | tags of the cached result ([templates](#templates)); `invalidate_tags` removes it |
//! | `protect` | `protect = false` | stampede protection (single-flight and the lock), on by default |
//! | `condition` | `condition = is_found` | cache only when `condition(&result)` is `true`; any expression callable as `FnOnce(&Ret) -> bool` (a path or a closure) |
//! | `name` | `name = "users::get"` | the function path used in the derived key, instead of the real one |
//!
//! The function body keeps its meaning: `return` and `?` work as they did.
//!
//! ## Which memo call
//!
//! - A return type that is syntactically a path ending in `Result` (`Result<T, E>`,
//!   `io::Result<T>`, `anyhow::Result<T>`) uses `Memo::cacheable`: `Ok` is cached, `Err` never
//!   is. `condition` cannot be combined with it (a compile error says so).
//! - With `condition`, `Memo::conditional`.
//! - Otherwise `Memo::remember`.
//!
//! The cached type (the return type, or `T` of `Result<T, E>`) must be
//! `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`.
//!
//! ## The key
//!
//! With `key`, the key is `prefix + rendered template`. Without it the key is derived from the
//! function path, the prefix and a hash of the arguments' serialized form (see
//! `lexicache::memo::Memo::args` for the exact format, which is stable across runs). The
//! function path is:
//!
//! - `name`, when given;
//! - for a method (a fn with a `self` receiver): `std::any::type_name::<Self>()` + `::` + the
//!   fn name, so methods of the same name on two types never share entries. `type_name` is
//!   stable for a given compiler, but Rust does not promise it across compiler versions: give
//!   `name = "..."` when entries must survive a toolchain upgrade in a shared cache;
//! - otherwise `concat!(module_path!(), "::", fn_name)`. Associated fns without a receiver
//!   cannot see their type from the attribute, so two such fns of the same name on two types
//!   in one module need `name = "..."` to stay apart.
//!
//! The hashed arguments are every argument except `self`, as the tuple `(&a, &b, ...)`, so each
//! must implement `Serialize`; a missing one is a compile error at that argument (followed by
//! the same error for the whole tuple). Give `key` to cache on some arguments only (or on
//! arguments that are not `Serialize`). Arguments must serialize deterministically: a
//! `HashMap` argument does not (use a `BTreeMap`).
//!
//! ## The expansion
//!
//! ```ignore
//! #[cached(ttl = 60, key = "user:{id}")]
//! async fn get_user(id: u64) -> Result<User, Error> { body }
//! // becomes
//! async fn get_user(id: u64) -> Result<User, Error> {
//!     let cache: Option<&'static CacheService> = ::lexicache::memo::global();
//!     let memo = cache.map(|c| {
//!         c.memo(concat!(module_path!(), "::get_user"))
//!             .ttl(Duration::from_secs(60))
//!             .key(format!("user:{}", &id)) // or .args(&(&id,)) without `key`
//!     });
//!     let load = move || async move {
//!         let ret: Result<User, Error> = async move { body }.await;
//!         ret
//!     };
//!     match memo {
//!         Some(memo) => memo.cacheable(load).await,
//!         None => load().await,
//!     }
//! }
//! ```
//!
//! Arguments that are not plain identifiers (`(a, b): (u32, u32)`, `_: u8`) are renamed in the
//! signature and destructured again at the top of the body; they are hashed whole and cannot
//! appear in templates.
//!
//! ## Limits
//!
//! - Generic fns and `impl Trait` arguments work when the bounds make the arguments
//!   `Serialize` (or a `key` template avoids hashing them) and the result cacheable.
//! - The body becomes a closure that takes `self` and the arguments, so with `&mut self` or
//!   `self` by value (`self: Arc<Self>`) the cache cannot be borrowed from `self`:
//!   `cache = self.cache` is then a compile error saying so; clone a handle instead
//!   (`cache = self.cache.clone()` for an `Arc<CacheService>`), or take `&self`.
//! - `impl Trait` return types cannot be cached.
//!
//! # Templates
//!
//! `key`, `tags`, and `#[invalidate]`'s `keys`, `patterns` and `tags` are templates: text with
//! `{arg}` or `{arg.field}` placeholders, rendered with `Display` (`format!`). `{{` and `}}` are
//! literal braces. Templates are checked at compile time: a placeholder that names no argument
//! (`no argument named `idx` in `get_user``), an empty one, or one with a format spec
//! (`{id:?}`) is an error. `self` is not allowed in templates (it is not an argument; tell
//! instances apart with `name` or `prefix`).
//!
//! # `#[cache_in_request]`
//!
//! Runs the function once per request scope (`lexicache::scope::request_scope`) for the same
//! arguments; later calls in the scope get a clone of the first result. Outside a scope the
//! function simply runs. Arguments: `name = "..."` (the function path, as above) and
//! `key = "template"` (identify calls by the rendered template instead of all arguments).
//! Without `key` the call is identified by `lexicache::memo::call_key` of the arguments (a
//! hash of their JSON, as for `#[cached]`); if they do not serialize, the function runs
//! unscoped. The result type must be `Clone + Send + Sync + 'static` (it is not serialized).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use lexicache::cache_in_request;
//! use lexicache::scope::request_scope;
//!
//! static RUNS: AtomicU32 = AtomicU32::new(0);
//!
//! #[cache_in_request]
//! async fn permissions(user: u64) -> Vec<String> {
//!     RUNS.fetch_add(1, Ordering::SeqCst);
//!     vec![format!("read:{user}")]
//! }
//!
//! request_scope(async {
//!     assert_eq!(permissions(1).await, permissions(1).await);
//! })
//! .await;
//! assert_eq!(RUNS.load(Ordering::SeqCst), 1);
//! # }
//! ```
//!
//! # `#[invalidate(...)]`
//!
//! Runs the function, then removes what it names through `CacheService::invalidate_after`:
//! `keys = [...]` (exact keys), `patterns = [...]` (globs), `tags = [...]`, all templates, and
//! `cache = ...` as for `#[cached]` (without a cache and without a global one, the function
//! just runs). At least one of `keys`, `patterns` and `tags` is required. The templates are
//! rendered before the body runs, from the arguments as they were passed.
//!
//! A fn returning a `Result` (syntactically, as for `#[cached]`) invalidates only after `Ok`
//! (`CacheService::invalidate_after_ok`): a failed update changed nothing. Invalidation
//! failures are logged and counted by the service; they never change what the fn returns.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod args;
mod expand;
mod func;
mod template;

/// Memoizes an async fn or method in a `CacheService`: a repeated call with the same
/// arguments returns the cached result without running the body.
///
/// `#[cached(cache = .., ttl = 60, key = "user:{id}", prefix = "..", tags = [..],
/// protect = false, condition = path, name = "..")]`, every argument optional. See the
/// [crate documentation](crate) for each argument, the key derivation and the expansion.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_report(expand::cached, args, item)
}

/// Runs an async fn once per request scope for the same arguments; later calls in the scope
/// get a clone of the first result.
///
/// `#[cache_in_request]`, `#[cache_in_request(key = "user:{id}", name = "..")]`. See the
/// [crate documentation](crate#cache_in_request).
#[proc_macro_attribute]
pub fn cache_in_request(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_report(expand::cache_in_request, args, item)
}

/// Runs an async fn, then invalidates keys, glob patterns or tags in a `CacheService`.
///
/// `#[invalidate(keys = ["user:{id}"], patterns = ["search:*"], tags = ["users"], cache = ..)]`.
/// See the [crate documentation](crate#invalidate).
#[proc_macro_attribute]
pub fn invalidate(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_report(expand::invalidate, args, item)
}

/// Runs an expansion; on an error, emits it together with the item unchanged, so the caller
/// sees the macro's error and not a cascade of "cannot find function" errors.
fn expand_or_report(
    expand: fn(
        proc_macro2::TokenStream,
        proc_macro2::TokenStream,
    ) -> syn::Result<proc_macro2::TokenStream>,
    args: TokenStream,
    item: TokenStream,
) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        Err(e) => {
            let mut out = e.into_compile_error();
            out.extend(item);
            out.into()
        }
    }
}
