//! The attribute macros at run time: `#[cached]`, `#[cache_in_request]` and `#[invalidate]`
//! over the memory backend. Every test owns its cache (or, for the global cache, its own
//! function), and counts body runs in its own counter.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use lexicache::memo::{self, call_key};
use lexicache::scope::request_scope;
use lexicache::{cache_in_request, cached, invalidate, CacheService};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
    }
}

fn runs(counter: &AtomicU32) -> u32 {
    counter.load(Ordering::SeqCst)
}

/// The process-wide cache, installed once for every test of this binary that uses it.
fn global() -> &'static CacheService {
    let _ = memo::set_global(CacheService::memory().name("global").build());
    memo::global().expect("the global cache was just installed")
}

// ----- the global cache and the derived key --------------------------------------------------

static SQUARE_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached]
async fn square(x: u64) -> u64 {
    SQUARE_RUNS.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[tokio::test]
async fn global_cache_runs_the_body_once_per_distinct_arguments() {
    global();
    assert_eq!(square(12).await, 144);
    assert_eq!(square(12).await, 144);
    assert_eq!(runs(&SQUARE_RUNS), 1);
    assert_eq!(square(13).await, 169);
    assert_eq!(runs(&SQUARE_RUNS), 2);
    assert_eq!(square(12).await, 144);
    assert_eq!(runs(&SQUARE_RUNS), 2);
}

static DERIVED: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());

#[cached(cache = DERIVED)]
async fn greeting(name: String, times: u32) -> String {
    name.repeat(times as usize)
}

#[tokio::test]
async fn derived_key_is_the_function_path_and_a_hash_of_the_arguments() {
    assert_eq!(greeting("ab".into(), 2).await, "abab");
    let path = concat!(module_path!(), "::greeting");
    let key = call_key(path, &(&"ab".to_owned(), &2u32)).unwrap();
    assert!(key.starts_with("cached::greeting:"), "{key}");
    assert_eq!(DERIVED.get::<String>(&key).await.as_deref(), Some("abab"));
}

static NAMED: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());

#[cached(cache = NAMED, name = "reports::daily", prefix = "v2:")]
async fn daily_report(day: u32) -> String {
    format!("report {day}")
}

#[tokio::test]
async fn name_and_prefix_shape_the_derived_key() {
    daily_report(3).await;
    let key = format!("v2:{}", call_key("reports::daily", &(&3u32,)).unwrap());
    assert_eq!(NAMED.get::<String>(&key).await.as_deref(), Some("report 3"));
}

// ----- key templates --------------------------------------------------------------------------

static KEYED: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());
static KEYED_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(cache = KEYED, key = "user:{id}", prefix = "app:")]
async fn load_user(id: u64, _trace: &str) -> User {
    KEYED_RUNS.fetch_add(1, Ordering::SeqCst);
    user(id)
}

#[tokio::test]
async fn key_template_stores_the_result_under_the_rendered_key() {
    assert_eq!(load_user(42, "a").await, user(42));
    assert_eq!(KEYED.get::<User>("app:user:42").await, Some(user(42)));
    // Only `id` is in the key: another `_trace` is a hit.
    assert_eq!(load_user(42, "b").await, user(42));
    assert_eq!(runs(&KEYED_RUNS), 1);
    // The key is the cache: what is stored there is what the function returns.
    KEYED.set("app:user:42", &user(7), None).await;
    assert_eq!(load_user(42, "c").await, user(7));
    assert_eq!(runs(&KEYED_RUNS), 1);
}

#[derive(Debug)]
struct Org {
    id: u32,
    region: (String, u8),
}

static FIELDS: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());

#[cached(cache = FIELDS, key = "org:{org.id}:{org.region.0}{{{org.region.1}}}")]
async fn org_name(org: &Org) -> String {
    format!("org {}", org.id)
}

#[tokio::test]
async fn template_placeholders_read_fields_and_escape_braces() {
    let org = Org {
        id: 5,
        region: ("eu".into(), 2),
    };
    assert_eq!(org_name(&org).await, "org 5");
    assert!(FIELDS.exists("org:5:eu{2}").await);
}

// ----- methods ---------------------------------------------------------------------------------

#[derive(Debug)]
struct Users {
    cache: CacheService,
    runs: AtomicU32,
}

impl Users {
    fn new() -> Self {
        Self {
            cache: CacheService::memory().build(),
            runs: AtomicU32::new(0),
        }
    }

    #[cached(cache = self.cache, ttl = 60)]
    async fn get(&self, id: u64) -> User {
        self.runs.fetch_add(1, Ordering::SeqCst);
        user(id)
    }
}

#[tokio::test]
async fn method_uses_the_cache_of_its_instance() {
    let (a, b) = (Users::new(), Users::new());
    assert_eq!(a.get(1).await, user(1));
    assert_eq!(a.get(1).await, user(1));
    assert_eq!(runs(&a.runs), 1);
    // Another instance, another cache: its first call runs.
    assert_eq!(b.get(1).await, user(1));
    assert_eq!(runs(&b.runs), 1);
}

#[derive(Debug)]
struct Admins {
    cache: Arc<CacheService>,
}

impl Admins {
    #[cached(cache = self.cache)]
    async fn get(&self, id: u64) -> User {
        User {
            id,
            name: "admin".into(),
        }
    }
}

#[derive(Debug)]
struct Guests {
    cache: Arc<CacheService>,
}

impl Guests {
    #[cached(cache = self.cache)]
    async fn get(&self, id: u64) -> User {
        User {
            id,
            name: "guest".into(),
        }
    }
}

#[tokio::test]
async fn same_named_methods_of_two_types_do_not_share_entries() {
    // One cache (behind an `Arc`, which the `cache` expression derefs) for both types.
    let cache = Arc::new(CacheService::memory().build());
    let admins = Admins {
        cache: cache.clone(),
    };
    let guests = Guests { cache };
    assert_eq!(admins.get(1).await.name, "admin");
    assert_eq!(guests.get(1).await.name, "guest");
    assert_eq!(admins.get(1).await.name, "admin");
}

#[derive(Debug)]
struct Counter {
    cache: Arc<CacheService>,
    n: u32,
}

impl Counter {
    /// `&mut self` cannot lend `self.cache` to the call; a cloned handle works.
    #[cached(cache = self.cache.clone(), key = "bump:{by}")]
    async fn bump(&mut self, by: u32) -> u32 {
        self.n += by;
        self.n
    }
}

#[tokio::test]
async fn mut_self_method_uses_a_cloned_cache_handle() {
    let mut counter = Counter {
        cache: Arc::new(CacheService::memory().build()),
        n: 0,
    };
    assert_eq!(counter.bump(2).await, 2);
    assert_eq!(counter.bump(2).await, 2);
    assert_eq!(counter.n, 2);
    assert_eq!(counter.bump(3).await, 5);
}

// ----- Result, condition ------------------------------------------------------------------------

static FALLIBLE: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());
static FALLIBLE_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(cache = FALLIBLE, key = "parse:{input}")]
async fn parse(input: &str) -> Result<u32, std::num::ParseIntError> {
    FALLIBLE_RUNS.fetch_add(1, Ordering::SeqCst);
    input.parse()
}

#[tokio::test]
async fn result_fn_caches_ok_and_never_err() {
    assert!(parse("x").await.is_err());
    assert!(parse("x").await.is_err());
    assert_eq!(runs(&FALLIBLE_RUNS), 2);
    assert!(!FALLIBLE.exists("parse:x").await);

    assert_eq!(parse("7").await, Ok(7));
    assert_eq!(parse("7").await, Ok(7));
    assert_eq!(runs(&FALLIBLE_RUNS), 3);
    assert_eq!(FALLIBLE.get::<u32>("parse:7").await, Some(7));
}

static CONDITIONAL: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());
static CONDITIONAL_RUNS: AtomicU32 = AtomicU32::new(0);

fn is_found(found: &Option<User>) -> bool {
    found.is_some()
}

#[cached(cache = CONDITIONAL, key = "find:{id}", condition = is_found)]
async fn find(id: u64) -> Option<User> {
    CONDITIONAL_RUNS.fetch_add(1, Ordering::SeqCst);
    (id % 2 == 0).then(|| user(id))
}

#[tokio::test]
async fn condition_caches_only_results_it_accepts() {
    assert_eq!(find(1).await, None);
    assert_eq!(find(1).await, None);
    assert_eq!(runs(&CONDITIONAL_RUNS), 2);
    assert!(!CONDITIONAL.exists("find:1").await);

    assert_eq!(find(2).await, Some(user(2)));
    assert_eq!(find(2).await, Some(user(2)));
    assert_eq!(runs(&CONDITIONAL_RUNS), 3);
}

static CLOSURE_CONDITION: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());

#[cached(cache = CLOSURE_CONDITION, key = "len:{s}", condition = |n: &usize| *n > 2)]
async fn length(s: String) -> usize {
    s.len()
}

#[tokio::test]
async fn condition_may_be_a_closure() {
    assert_eq!(length("ab".into()).await, 2);
    assert_eq!(length("abcd".into()).await, 4);
    assert!(!CLOSURE_CONDITION.exists("len:ab").await);
    assert!(CLOSURE_CONDITION.exists("len:abcd").await);
}

// ----- the body keeps its meaning ----------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Invalid(String);

impl From<std::num::ParseIntError> for Invalid {
    fn from(e: std::num::ParseIntError) -> Self {
        Self(e.to_string())
    }
}

static BODY: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());

#[cached(cache = BODY, key = "sum:{a}:{b}")]
async fn sum(a: &str, b: &str) -> Result<u32, Invalid> {
    // `?` converts through `From`, as in the original fn.
    let a: u32 = a.parse()?;
    if a == 0 {
        return Err(Invalid("zero".into()));
    }
    if a == 1 {
        return Ok(1000);
    }
    Ok(a + b.parse::<u32>()?)
}

#[tokio::test]
async fn question_mark_and_early_return_work_as_in_the_original_fn() {
    assert_eq!(sum("2", "3").await, Ok(5));
    assert_eq!(sum("1", "x").await, Ok(1000));
    assert_eq!(sum("0", "3").await, Err(Invalid("zero".into())));
    assert!(matches!(sum("q", "3").await, Err(Invalid(m)) if m.contains("invalid digit")));
    assert!(matches!(sum("2", "q").await, Err(Invalid(m)) if m.contains("invalid digit")));
    assert_eq!(BODY.get::<u32>("sum:1:x").await, Some(1000));
    assert!(!BODY.exists("sum:0:3").await);
}

static PATTERNS: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());
static PATTERN_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(cache = PATTERNS)]
async fn span_len((from, to): (u32, u32), _: bool, mut extra: u32) -> u32 {
    PATTERN_RUNS.fetch_add(1, Ordering::SeqCst);
    extra += 1;
    to - from + extra
}

#[tokio::test]
async fn destructured_and_mut_arguments_are_hashed_whole() {
    assert_eq!(span_len((2, 5), true, 0).await, 4);
    assert_eq!(span_len((2, 5), true, 0).await, 4);
    assert_eq!(runs(&PATTERN_RUNS), 1);
    // Every argument, `_` included, is part of the key.
    assert_eq!(span_len((2, 5), false, 0).await, 4);
    assert_eq!(span_len((2, 6), true, 0).await, 5);
    assert_eq!(runs(&PATTERN_RUNS), 3);
}

static GENERIC: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());
static GENERIC_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(cache = GENERIC)]
async fn describe<T>(value: T, label: impl AsRef<str> + Serialize) -> String
where
    T: std::fmt::Debug + Serialize,
{
    GENERIC_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("{}={value:?}", label.as_ref())
}

#[tokio::test]
async fn generic_fns_and_impl_trait_arguments_are_memoized() {
    assert_eq!(describe(7u8, "n").await, "n=7");
    assert_eq!(describe(7u8, "n").await, "n=7");
    assert_eq!(describe(vec![1, 2], String::from("v")).await, "v=[1, 2]");
    assert_eq!(runs(&GENERIC_RUNS), 2);
}

// ----- ttl, protection, Send -----------------------------------------------------------------------

static TTL: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());
static TTL_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(cache = TTL, ttl = 60, key = "clock")]
async fn clock() -> u32 {
    TTL_RUNS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn ttl_expires_the_cached_result() {
    assert_eq!(clock().await, 0);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(clock().await, 0);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(clock().await, 1);
    assert_eq!(runs(&TTL_RUNS), 2);
}

static PROTECTED: LazyLock<CacheService> = LazyLock::new(|| CacheService::memory().build());
static PROTECTED_RUNS: AtomicU32 = AtomicU32::new(0);
static UNPROTECTED_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(cache = PROTECTED, key = "slow:on")]
async fn slow_protected() -> u32 {
    PROTECTED_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    1
}

#[cached(cache = PROTECTED, key = "slow:off", protect = false)]
async fn slow_unprotected() -> u32 {
    UNPROTECTED_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    1
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_run_unless_protection_is_off() {
    let (a, b, c) = tokio::join!(slow_protected(), slow_protected(), slow_protected());
    assert_eq!((a, b, c), (1, 1, 1));
    assert_eq!(runs(&PROTECTED_RUNS), 1);

    let (a, b, c) = tokio::join!(slow_unprotected(), slow_unprotected(), slow_unprotected());
    assert_eq!((a, b, c), (1, 1, 1));
    assert_eq!(runs(&UNPROTECTED_RUNS), 3);
}

#[tokio::test]
async fn cached_futures_are_send() {
    let users = Arc::new(Users::new());
    let spawned = tokio::spawn({
        let users = users.clone();
        async move { users.get(9).await }
    });
    assert_eq!(spawned.await.unwrap(), user(9));
    global();
    assert_eq!(tokio::spawn(triple(3)).await.unwrap(), 9);
}

#[cached]
async fn triple(x: u64) -> u64 {
    x * 3
}

// ----- tags and #[invalidate] ---------------------------------------------------------------------

#[derive(Debug)]
struct Catalog {
    cache: CacheService,
    loads: AtomicU32,
}

impl Catalog {
    #[cached(cache = self.cache, key = "item:{id}", tags = ["items", "item:{id}"])]
    async fn item(&self, id: u32) -> String {
        self.loads.fetch_add(1, Ordering::SeqCst);
        format!("item {id}")
    }

    #[invalidate(cache = self.cache, tags = ["item:{id}"])]
    async fn rename(&self, id: u32) -> u32 {
        id
    }

    #[invalidate(cache = self.cache, keys = ["raw:{id}"], patterns = ["raw:{id}:*"])]
    async fn purge(&self, id: u32) {
        // The templates were rendered from the arguments as passed.
        let _ = id + 1;
    }

    #[invalidate(cache = self.cache, keys = ["raw:{id}"])]
    async fn try_purge(&self, id: u32, fail: bool) -> Result<(), String> {
        if fail {
            return Err(format!("cannot purge {id}"));
        }
        Ok(())
    }
}

fn catalog() -> Catalog {
    Catalog {
        cache: CacheService::memory().build(),
        loads: AtomicU32::new(0),
    }
}

#[tokio::test]
async fn invalidating_a_tag_makes_the_next_call_run_the_body() {
    let c = catalog();
    assert_eq!(c.item(1).await, "item 1");
    assert_eq!(c.item(2).await, "item 2");
    assert_eq!(c.item(1).await, "item 1");
    assert_eq!(runs(&c.loads), 2);

    c.cache.invalidate_tags(&["items"]).await.unwrap();
    c.item(1).await;
    c.item(2).await;
    assert_eq!(runs(&c.loads), 4);

    // `#[invalidate]` with a tag template: only item 2 loads again.
    assert_eq!(c.rename(2).await, 2);
    c.item(1).await;
    c.item(2).await;
    assert_eq!(runs(&c.loads), 5);
}

#[tokio::test]
async fn invalidate_removes_keys_and_patterns_after_the_body() {
    let c = catalog();
    for key in ["raw:1", "raw:1:a", "raw:1:b", "raw:2", "raw:2:a"] {
        c.cache.set(key, &1u8, None).await;
    }
    c.purge(1).await;
    for key in ["raw:1", "raw:1:a", "raw:1:b"] {
        assert!(!c.cache.exists(key).await, "{key}");
    }
    for key in ["raw:2", "raw:2:a"] {
        assert!(c.cache.exists(key).await, "{key}");
    }
}

#[tokio::test]
async fn invalidate_on_a_result_fn_removes_nothing_after_err() {
    let c = catalog();
    c.cache.set("raw:3", &1u8, None).await;
    assert_eq!(c.try_purge(3, true).await, Err("cannot purge 3".into()));
    assert!(c.cache.exists("raw:3").await);
    assert_eq!(c.try_purge(3, false).await, Ok(()));
    assert!(!c.cache.exists("raw:3").await);
}

// ----- request scope -------------------------------------------------------------------------------

static SCOPED_RUNS: AtomicU32 = AtomicU32::new(0);

#[cache_in_request]
async fn permissions(user: u64, scope: &str) -> Vec<String> {
    SCOPED_RUNS.fetch_add(1, Ordering::SeqCst);
    vec![format!("{scope}:{user}")]
}

static KEYED_SCOPED_RUNS: AtomicU32 = AtomicU32::new(0);

#[cache_in_request(key = "{user}")]
async fn roles(user: u64, _trace: u32) -> Vec<String> {
    KEYED_SCOPED_RUNS.fetch_add(1, Ordering::SeqCst);
    vec![format!("role:{user}")]
}

#[tokio::test]
async fn cache_in_request_runs_once_per_scope_and_arguments() {
    request_scope(async {
        assert_eq!(permissions(1, "read").await, ["read:1"]);
        assert_eq!(permissions(1, "read").await, ["read:1"]);
        assert_eq!(runs(&SCOPED_RUNS), 1);
        assert_eq!(permissions(2, "read").await, ["read:2"]);
        assert_eq!(permissions(1, "write").await, ["write:1"]);
        assert_eq!(runs(&SCOPED_RUNS), 3);
        // With `key`, only the rendered key tells calls apart.
        assert_eq!(roles(1, 10).await, ["role:1"]);
        assert_eq!(roles(1, 11).await, ["role:1"]);
        assert_eq!(runs(&KEYED_SCOPED_RUNS), 1);
    })
    .await;
    // A new scope starts empty.
    request_scope(async {
        permissions(1, "read").await;
    })
    .await;
    assert_eq!(runs(&SCOPED_RUNS), 4);
}

static UNSCOPED_RUNS: AtomicU32 = AtomicU32::new(0);

#[cache_in_request]
async fn unscoped(n: u8) -> u8 {
    UNSCOPED_RUNS.fetch_add(1, Ordering::SeqCst);
    n
}

#[tokio::test]
async fn cache_in_request_outside_a_scope_always_runs() {
    assert_eq!(unscoped(1).await, 1);
    assert_eq!(unscoped(1).await, 1);
    assert_eq!(runs(&UNSCOPED_RUNS), 2);
}
