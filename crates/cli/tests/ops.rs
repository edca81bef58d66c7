//! The operator commands end to end, as a user runs them: the built `lexicache` binary on the
//! embedded memory backend, the local Redis and the local memcached, with every error path and
//! its exit code.
//!
//! Redis and memcached come from `LEXICACHE_TEST_REDIS_URL` and `LEXICACHE_TEST_MEMCACHED`
//! (`cargo xtask services up` starts them; `cargo xtask test` exports the variables). Every
//! test uses its own key prefix on the shared servers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const SERVICES: &str = "run `cargo xtask services up` from the workspace root, then export";

fn redis_url() -> String {
    std::env::var("LEXICACHE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("LEXICACHE_TEST_REDIS_URL is not set: {SERVICES} LEXICACHE_TEST_REDIS_URL=redis://127.0.0.1:6390")
    })
}

fn memcached_servers() -> String {
    std::env::var("LEXICACHE_TEST_MEMCACHED").unwrap_or_else(|_| {
        panic!("LEXICACHE_TEST_MEMCACHED is not set: {SERVICES} LEXICACHE_TEST_MEMCACHED=127.0.0.1:11290,127.0.0.1:11291")
    })
}

/// A key prefix no other test (or run) uses.
fn prefix(name: &str) -> String {
    format!("lexicache-cli-test:{}:{name}:", std::process::id())
}

/// `lexicache` with `args`, no backend flags: the embedded memory backend.
fn lexicache(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("lexicache").expect("the lexicache binary is built");
    cmd.args(args).timeout(Duration::from_secs(60));
    cmd
}

/// `lexicache --redis URL --prefix P args...`, in the test's own namespace.
fn redis(name: &str, args: &[&str]) -> Command {
    let mut cmd = lexicache(&["--redis", &redis_url(), "--prefix", &prefix(name)]);
    cmd.args(args);
    cmd
}

/// `lexicache --memcached SERVERS --prefix P args...`, in the test's own namespace.
fn memcached(name: &str, args: &[&str]) -> Command {
    let mut cmd = lexicache(&[
        "--memcached",
        &memcached_servers(),
        "--prefix",
        &prefix(name),
    ]);
    cmd.args(args);
    cmd
}

/// `lexicache --config FILE args...`.
fn with_config(config: &Path, args: &[&str]) -> Command {
    let mut cmd = lexicache(&["--config", config.to_str().expect("UTF-8 path")]);
    cmd.args(args);
    cmd
}

/// Runs `cmd`, expects `code`, and returns stdout.
fn run(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().expect("lexicache runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// Runs `cmd` with `--format json`, expects `code` and exactly one JSON document on stdout.
fn run_json(cmd: &mut Command, code: i32) -> Value {
    cmd.args(["--format", "json"]);
    let stdout = run(cmd, code);
    let mut docs = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let doc = docs
        .next()
        .unwrap_or_else(|| panic!("no JSON document in {stdout:?}"))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}"));
    assert!(docs.next().is_none(), "more than one document: {stdout:?}");
    doc
}

/// Expects `code` and one line on stderr containing every one of `needles`.
fn fails(cmd: &mut Command, code: i32, needles: &[&str]) -> String {
    let out = cmd.output().expect("lexicache runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{cmd:?}\nstderr:\n{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    }
    stderr
}

/// A configuration file written for one test, in cargo's scratch directory.
fn config_file(name: &str, yaml: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "lexicache-cli-ops-{}-{name}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, yaml).expect("write the test configuration");
    path
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A Redis configuration in `name`'s namespace with `serializer` (YAML under `serializer:`).
fn redis_config(name: &str, file: &str, serializer: &str) -> PathBuf {
    let yaml = format!(
        "backends:\n  - type: redis\n    name: main\n    url: {}\n    prefix: \"{}\"\n\
         service:\n  serializer:\n{serializer}",
        redis_url(),
        prefix(name)
    );
    config_file(&format!("{name}-{file}"), &yaml)
}

/// A `127.0.0.1` port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// Writes `value` under `key` with Redis' own `SET`, as another tool would.
fn redis_set_raw(key: &str, value: &[u8]) {
    let url = redis_url();
    let addr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .rsplit('@')
        .next()
        .expect("host:port")
        .to_owned();
    let mut conn = TcpStream::connect(&addr)
        .unwrap_or_else(|e| panic!("Redis at {addr}: {e}; {SERVICES} LEXICACHE_TEST_REDIS_URL"));
    let mut cmd = Vec::new();
    cmd.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
    for part in [key.as_bytes(), value] {
        cmd.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        cmd.extend_from_slice(part);
        cmd.extend_from_slice(b"\r\n");
    }
    conn.write_all(&cmd).expect("send SET");
    let mut reply = [0u8; 5];
    conn.read_exact(&mut reply).expect("read the reply");
    assert_eq!(&reply, b"+OK\r\n");
}

// ----- memory ----------------------------------------------------------------------------

#[test]
fn memory_get_of_a_missing_key_exits_1_with_one_line_on_stderr() {
    let stderr = fails(&mut lexicache(&["get", "nothing"]), 1, &[]);
    assert_eq!(
        stderr.trim_end(),
        "lexicache: error: key `nothing` not found"
    );
    fails(
        &mut lexicache(&["get", "nothing", "--format", "json"]),
        1,
        &["not found"],
    );
}

#[test]
fn memory_set_stores_json_values_and_strings() {
    let doc = run_json(
        &mut lexicache(&[
            "set",
            "user:1",
            r#"{"id":1}"#,
            "--ttl",
            "30s",
            "--tags",
            "a,b",
        ]),
        0,
    );
    assert_eq!(doc["written"], true);
    assert_eq!(doc["ttl_ms"], 30_000);
    assert_eq!(doc["tags"], serde_json::json!(["a", "b"]));
    let stdout = run(
        &mut lexicache(&["set", "greeting", "hello there", "--string"]),
        0,
    );
    assert!(stdout.contains("set `greeting`"), "{stdout}");
}

#[test]
fn set_of_a_value_that_is_not_json_is_a_usage_error_saying_to_quote_it() {
    fails(
        &mut lexicache(&["set", "k", "hello"]),
        2,
        &["not JSON", "--string"],
    );
}

#[test]
fn set_with_a_bad_ttl_is_a_usage_error() {
    // clap reports its own parse errors: the error line, then a pointer to --help.
    lexicache(&["set", "k", "1", "--ttl", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "write 500ms, 30s, 5m, 1h, 1d or plain seconds",
        ));
    lexicache(&["set", "k", "1", "--ttl", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a TTL must be positive"));
}

#[test]
fn bad_keys_are_usage_errors() {
    fails(
        &mut lexicache(&["get", ""]),
        2,
        &["key_invalid", "fix the key"],
    );
    let long = "k".repeat(1100);
    fails(
        &mut lexicache(&["set", &long, "1"]),
        2,
        &["over the maximum"],
    );
}

#[test]
fn memory_del_of_missing_keys_prints_zero_and_exits_1() {
    let doc = run_json(&mut lexicache(&["del", "a", "b"]), 1);
    assert_eq!(doc["deleted"], 0);
    assert_eq!(doc["keys"], 2);
}

#[test]
fn memory_del_pattern_matching_nothing_succeeds_with_zero() {
    let doc = run_json(&mut lexicache(&["del-pattern", "user:*"]), 0);
    assert_eq!(doc["deleted"], 0);
}

#[test]
fn memory_exists_of_a_missing_key_prints_false_and_exits_1() {
    assert_eq!(run(&mut lexicache(&["exists", "k"]), 1).trim(), "false");
    let doc = run_json(&mut lexicache(&["exists", "k"]), 1);
    assert_eq!(doc["exists"], false);
}

#[test]
fn memory_ttl_of_a_missing_key_exits_1() {
    fails(&mut lexicache(&["ttl", "k"]), 1, &["key `k` not found"]);
}

#[test]
fn memory_invalidate_tags_succeeds() {
    let doc = run_json(&mut lexicache(&["invalidate-tags", "users", "posts"]), 0);
    assert_eq!(doc["invalidated"], serde_json::json!(["users", "posts"]));
}

#[test]
fn memory_keys_health_and_stats_report_an_empty_store() {
    let keys = run_json(&mut lexicache(&["keys", "*"]), 0);
    assert_eq!(keys["keys"], serde_json::json!([]));
    let health = run_json(&mut lexicache(&["health"]), 0);
    assert_eq!(health["status"], "healthy");
    let stats = run_json(&mut lexicache(&["stats"]), 0);
    assert_eq!(stats["type"], "memory");
    assert_eq!(stats["entries"], 0);
    let table = run(&mut lexicache(&["stats"]), 0);
    assert!(
        table.contains("entries") && table.contains("hit rate"),
        "{table}"
    );
}

#[test]
fn every_subcommand_help_shows_an_example() {
    for cmd in [
        "get",
        "set",
        "del",
        "del-pattern",
        "invalidate-tags",
        "exists",
        "ttl",
        "stats",
        "health",
        "keys",
    ] {
        lexicache(&[cmd, "--help"]).assert().code(0).stdout(
            predicate::str::contains("Example").and(predicate::str::contains("lexicache ")),
        );
    }
}

// ----- configuration errors --------------------------------------------------------------

#[test]
fn a_configuration_file_that_does_not_exist_is_exit_2() {
    fails(
        &mut with_config(Path::new("/nonexistent/cache.yaml"), &["get", "k"]),
        2,
        &["does not exist"],
    );
}

#[test]
fn malformed_yaml_is_exit_2_naming_the_file() {
    fails(
        &mut with_config(&fixture("malformed.yaml"), &["get", "k"]),
        2,
        &["malformed.yaml", "fix the configuration"],
    );
}

#[test]
fn an_unknown_configuration_field_is_exit_2_naming_it() {
    fails(
        &mut with_config(&fixture("unknown_field.yaml"), &["get", "k"]),
        2,
        &["colour"],
    );
}

#[test]
fn an_unknown_backend_name_is_exit_2_listing_the_known_ones() {
    let config = fixture("two_memory.yaml");
    fails(
        &mut with_config(&config, &["--backend", "warm", "get", "k"]),
        2,
        &["warm", "hot, cold"],
    );
    // The named backend is used: a miss on it is exit 1.
    fails(
        &mut with_config(&config, &["--backend", "cold", "get", "k"]),
        1,
        &[],
    );
}

#[test]
fn a_signing_key_that_is_too_short_is_exit_2() {
    fails(
        &mut with_config(&fixture("short_signing_key.yaml"), &["get", "k"]),
        2,
        &["service.serializer.keys.0.key", "32 bytes"],
    );
}

// ----- Redis -----------------------------------------------------------------------------

#[test]
fn redis_set_get_exists_ttl_del_round_trip() {
    let name = "round-trip";
    run(
        &mut redis(
            name,
            &["set", "user:1", r#"{"id":1,"name":"alice"}"#, "--ttl", "1h"],
        ),
        0,
    );

    let doc = run_json(&mut redis(name, &["get", "user:1"]), 0);
    assert_eq!(doc["value"], serde_json::json!({"id": 1, "name": "alice"}));
    assert_eq!(doc["codec"], "json");
    assert_eq!(doc["flags"], serde_json::json!([]));
    let ttl = doc["ttl_ms"].as_u64().expect("a TTL");
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");

    let table = run(&mut redis(name, &["get", "user:1"]), 0);
    assert!(
        table.contains("\"name\": \"alice\""),
        "pretty JSON in:\n{table}"
    );

    assert_eq!(
        run(&mut redis(name, &["exists", "user:1"]), 0).trim(),
        "true"
    );
    let ttl = run_json(&mut redis(name, &["ttl", "user:1"]), 0);
    assert_eq!(ttl["expiry"], "in");

    run(&mut redis(name, &["set", "forever", "1"]), 0);
    assert_eq!(
        run(&mut redis(name, &["ttl", "forever"]), 0).trim(),
        "no expiry"
    );

    let del = run_json(&mut redis(name, &["del", "user:1", "forever", "gone"]), 0);
    assert_eq!(
        (del["deleted"].clone(), del["keys"].clone()),
        (2.into(), 3.into())
    );
    fails(
        &mut redis(name, &["get", "user:1"]),
        1,
        &["key `user:1` not found"],
    );
    fails(&mut redis(name, &["ttl", "user:1"]), 1, &["not found"]);
    fails(&mut redis(name, &["del", "user:1"]), 1, &["not found"]);
}

#[test]
fn redis_tagged_entry_shows_its_tags_and_is_not_found_once_invalidated() {
    let name = "tags";
    run(
        &mut redis(name, &["set", "post:9", "\"hi\"", "--tags", "posts,users"]),
        0,
    );
    let doc = run_json(&mut redis(name, &["get", "post:9"]), 0);
    assert_eq!(doc["tags"], serde_json::json!(["posts", "users"]));
    assert_eq!(doc["value"], "hi");

    run(&mut redis(name, &["invalidate-tags", "users"]), 0);
    fails(
        &mut redis(name, &["get", "post:9"]),
        1,
        &["not found", "users were invalidated"],
    );
    assert_eq!(
        run(&mut redis(name, &["exists", "post:9"]), 1).trim(),
        "false"
    );
    redis(name, &["del-pattern", "*"]).assert().code(0);
}

#[test]
fn redis_keys_lists_a_namespace_and_stops_at_the_limit() {
    let name = "keys";
    for key in ["user:1", "user:2", "user:3", "post:1"] {
        run(&mut redis(name, &["set", key, "1"]), 0);
    }
    let all = run_json(&mut redis(name, &["keys", "user:*"]), 0);
    assert_eq!(
        all["keys"],
        serde_json::json!(["user:1", "user:2", "user:3"])
    );
    assert_eq!(all["truncated"], false);
    let two = run_json(&mut redis(name, &["keys", "*", "--limit", "2"]), 0);
    assert_eq!(two["keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(two["truncated"], true);

    let deleted = run_json(&mut redis(name, &["del-pattern", "user:*"]), 0);
    assert_eq!(deleted["deleted"], 3);
    let deleted = run_json(&mut redis(name, &["del-pattern", "user:*"]), 0);
    assert_eq!(deleted["deleted"], 0);
    redis(name, &["del", "post:1"]).assert().code(0);
}

#[test]
fn redis_health_and_stats_describe_the_server() {
    let health = run_json(&mut redis("health", &["health", "--timeout", "2s"]), 0);
    assert_eq!(health["status"], "healthy");
    assert!(health["latency_ms"].as_f64().is_some());

    let stats = run_json(&mut redis("stats", &["stats"]), 0);
    assert_eq!(stats["type"], "redis");
    assert!(stats["entries"].as_u64().is_some(), "{stats}");
    assert_eq!(
        stats["servers"].as_array().map(Vec::len),
        Some(1),
        "{stats}"
    );
    let table = run(&mut redis("stats", &["stats"]), 0);
    assert!(table.contains("127.0.0.1"), "{table}");
}

#[test]
fn redis_get_of_bytes_written_by_another_tool_shows_their_size_and_text() {
    let name = "raw";
    redis_set_raw(&format!("{}plain", prefix(name)), b"written by redis-cli");
    let doc = run_json(&mut redis(name, &["get", "plain"]), 0);
    assert_eq!(doc["envelope"], false);
    assert_eq!(doc["size"], 20);
    assert_eq!(doc["text"], "written by redis-cli");

    redis_set_raw(&format!("{}binary", prefix(name)), &[0xff, 0x00, 0xfe]);
    let table = run(&mut redis(name, &["get", "binary"]), 0);
    assert!(table.contains("not UTF-8"), "{table}");
    redis(name, &["del", "plain", "binary"]).assert().code(0);
}

const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn signed(format: &str, id: u32, key: &str) -> String {
    format!(
        "    type: signed\n    format: {format}\n    keys:\n      - id: {id}\n        key: \"{key}\"\n"
    )
}

#[test]
fn redis_signed_json_verifies_with_the_right_key_and_is_exit_3_with_another() {
    let name = "signed-json";
    let right = redis_config(name, "a", &signed("json", 1, KEY_A));
    let wrong = redis_config(name, "b", &signed("json", 1, KEY_B));
    let other_id = redis_config(name, "c", &signed("json", 2, KEY_A));
    run(&mut with_config(&right, &["set", "s", r#"{"x":1}"#]), 0);

    let doc = run_json(&mut with_config(&right, &["get", "s"]), 0);
    assert_eq!(doc["signature"], "ok");
    assert_eq!(doc["key_id"], 1);
    assert_eq!(doc["value"], serde_json::json!({"x": 1}));
    let table = run(&mut with_config(&right, &["get", "s"]), 0);
    assert!(table.contains("ok (key id 1)"), "{table}");

    fails(
        &mut with_config(&wrong, &["get", "s"]),
        3,
        &[
            "bad signature",
            "key id 1",
            "configured keys (ids 1)",
            "check the serializer",
        ],
    );
    fails(
        &mut with_config(&other_id, &["get", "s"]),
        3,
        &["bad signature", "unknown key id 1"],
    );
    // Without the serializer's keys the signature cannot be checked: also exit 3.
    fails(
        &mut redis(name, &["get", "s"]),
        3,
        &["signed with key id 1", "no signing keys are configured"],
    );
    with_config(&right, &["del", "s"]).assert().code(0);
}

#[test]
fn redis_signed_postcard_is_verified_without_its_type_and_shown_as_metadata() {
    let name = "signed-postcard";
    let right = redis_config(name, "a", &signed("postcard", 7, KEY_A));
    let wrong = redis_config(name, "b", &signed("postcard", 7, KEY_B));
    run(&mut with_config(&right, &["set", "p", "[1,2,3]"]), 0);

    let doc = run_json(&mut with_config(&right, &["get", "p"]), 0);
    assert_eq!(doc["codec"], "postcard");
    assert_eq!(doc["flags"], serde_json::json!(["signed"]));
    assert_eq!(doc["signature"], "ok");
    assert_eq!(doc["key_id"], 7);
    assert_eq!(doc["value"], Value::Null);
    assert!(doc["note"].as_str().is_some_and(|n| n.contains("postcard")));

    fails(
        &mut with_config(&wrong, &["get", "p"]),
        3,
        &["bad signature"],
    );
    with_config(&right, &["del", "p"]).assert().code(0);
}

#[test]
fn redis_encrypted_value_without_keys_shows_codec_flags_and_size_only() {
    let name = "encrypted";
    let sealed = redis_config(
        name,
        "a",
        &format!("    type: encrypted\n    keys:\n      - id: 3\n        key: \"{KEY_A}\"\n"),
    );
    run(
        &mut with_config(&sealed, &["set", "secret", r#""the plans""#]),
        0,
    );
    let opened = run_json(&mut with_config(&sealed, &["get", "secret"]), 0);
    assert_eq!(opened["value"], "the plans");

    let doc = run_json(&mut redis(name, &["get", "secret"]), 0);
    assert_eq!(doc["codec"], "json");
    assert_eq!(doc["flags"], serde_json::json!(["encrypted"]));
    assert_eq!(doc["key_id"], 3);
    assert_eq!(doc["value"], Value::Null);
    assert!(doc["size"].as_u64().is_some_and(|n| n > 30));
    with_config(&sealed, &["del", "secret"]).assert().code(0);
}

#[test]
fn a_dead_redis_server_is_exit_3_at_once_with_what_to_do() {
    let port = closed_port();
    let url = format!("redis://:hunter2secret@127.0.0.1:{port}");
    let started = Instant::now();
    let stderr = fails(
        &mut lexicache(&["--redis", &url, "get", "k"]),
        3,
        &["check that the server is running"],
    );
    assert!(
        !stderr.contains("hunter2secret"),
        "password leaked: {stderr}"
    );
    // Not a wall-clock performance assert: a hang (retrying forever) would be minutes.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn redis_tiered_round_trip_and_stats() {
    let name = "tiered";
    run(&mut redis(name, &["--tiered", "set", "t", "[1,2]"]), 0);
    let doc = run_json(&mut redis(name, &["--tiered", "get", "t"]), 0);
    assert_eq!(doc["value"], serde_json::json!([1, 2]));
    let stats = run_json(&mut redis(name, &["--tiered", "stats"]), 0);
    assert_eq!(stats["type"], "tiered");
    redis(name, &["--tiered", "del", "t"]).assert().code(0);
}

// ----- memcached -------------------------------------------------------------------------

#[test]
fn memcached_set_get_exists_del_round_trip() {
    let name = "mc-round-trip";
    run(
        &mut memcached(
            name,
            &["set", "greeting", "hello", "--string", "--ttl", "5m"],
        ),
        0,
    );
    let doc = run_json(&mut memcached(name, &["get", "greeting"]), 0);
    assert_eq!(doc["value"], "hello");
    assert_eq!(doc["ttl_ms"], Value::Null);
    assert_eq!(
        run(&mut memcached(name, &["exists", "greeting"]), 0).trim(),
        "true"
    );
    let ttl = run(&mut memcached(name, &["ttl", "greeting"]), 0);
    assert_eq!(ttl.trim(), "unknown: memcached does not report TTLs");
    let doc = run_json(&mut memcached(name, &["ttl", "greeting"]), 0);
    assert_eq!(doc["expiry"], "unknown");

    run(
        &mut memcached(name, &["set", "tagged", "1", "--tags", "t"]),
        0,
    );
    run(&mut memcached(name, &["invalidate-tags", "t"]), 0);
    fails(&mut memcached(name, &["get", "tagged"]), 1, &["stale"]);

    let del = run_json(&mut memcached(name, &["del", "greeting", "tagged"]), 0);
    assert_eq!(del["deleted"], 2);
    fails(
        &mut memcached(name, &["get", "greeting"]),
        1,
        &["not found"],
    );
}

#[test]
fn memcached_keys_and_del_pattern_are_refused_with_exit_2() {
    fails(
        &mut memcached("mc-keys", &["keys", "*"]),
        2,
        &["cannot", "Memory and Redis can"],
    );
    fails(
        &mut memcached("mc-keys", &["del-pattern", "*"]),
        2,
        &["pattern"],
    );
}

#[test]
fn memcached_bad_key_is_exit_2() {
    let long = "k".repeat(1100);
    fails(
        &mut memcached("mc-bad-key", &["get", &long]),
        2,
        &["over the maximum"],
    );
}

#[test]
fn memcached_health_reports_each_server() {
    let doc = run_json(&mut memcached("mc-health", &["health"]), 0);
    assert_eq!(doc["status"], "healthy");
    assert!(doc["details"].is_object());
}

#[test]
fn memcached_stats_reports_per_server_rows() {
    let doc = run_json(&mut memcached("mc-stats", &["stats"]), 0);
    assert_eq!(doc["type"], "memcached");
    let servers = memcached_servers();
    assert_eq!(
        doc["servers"].as_array().map(Vec::len),
        Some(servers.split(',').count()),
        "{doc}"
    );
}

#[test]
fn a_dead_memcached_server_is_exit_3_at_once() {
    let server = format!("127.0.0.1:{}", closed_port());
    let started = Instant::now();
    fails(
        &mut lexicache(&["--memcached", &server, "get", "k"]),
        3,
        &["check that the server is running"],
    );
    fails(
        &mut lexicache(&["--memcached", &server, "health"]),
        3,
        &["unhealthy"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
