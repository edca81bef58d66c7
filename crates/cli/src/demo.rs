//! `lexicache demo`: a tour of the library on the embedded memory backend.
//!
//! Every figure it prints is measured in this run, and every claim it makes is checked: a step
//! that does not observe what it promises fails the demo with [`CliError::Check`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_table::{presets, CellAlignment, Table};
use lexicache::{CacheService, Json, Serializer};
use serde::{Deserialize, Serialize};

use crate::{CliError, DemoArgs};

/// The short TTL of the expiry step.
const SHORT_TTL: Duration = Duration::from_millis(300);
/// How long the stampede loader pretends to work.
const LOADER_DELAY: Duration = Duration::from_millis(50);

/// The typed value of the first step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
}

/// The expensive value of the stampede step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    active_users: u64,
    generated_in_ms: u64,
}

/// Runs the whole tour.
///
/// # Errors
///
/// [`CliError::Cache`] when the backend fails, [`CliError::Check`] when a step does not
/// observe what it promises.
///
/// # Cancel safety
///
/// Dropping the future stops the tour; the cache it built is private to it and dropped too.
pub async fn run(args: &DemoArgs) -> Result<(), CliError> {
    let cache = CacheService::memory().name("demo").build();
    println!("lexicache demo: embedded memory backend (moka), JSON values\n");

    typed_values(&cache).await?;
    ttl_expiry(&cache).await?;
    glob_delete(&cache).await?;
    stampede(&cache, args.callers).await?;
    metrics_table(&cache).await;
    Ok(())
}

async fn typed_values(cache: &CacheService) -> Result<(), CliError> {
    println!("1. Typed values");
    let user = User {
        id: 42,
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        roles: vec!["admin".into(), "analyst".into()],
    };
    let encoded = Json.encode("profile:42", &user)?.len();

    let started = Instant::now();
    cache
        .try_set("profile:42", &user, Some(Duration::from_secs(60)))
        .await?;
    let set_took = started.elapsed();

    let started = Instant::now();
    let back: Option<User> = cache.try_get("profile:42").await?;
    let get_took = started.elapsed();

    check(
        back.as_ref() == Some(&user),
        "the stored User did not read back equal",
    )?;
    println!("   set profile:42 = {user:?}");
    println!(
        "       ({encoded} bytes of JSON, took {})",
        fmt_duration(set_took)
    );
    println!(
        "   get profile:42 -> the same User, took {}",
        fmt_duration(get_took)
    );
    println!();
    Ok(())
}

async fn ttl_expiry(cache: &CacheService) -> Result<(), CliError> {
    println!("2. TTL expiry");
    let message = "welcome back!".to_owned();
    cache
        .try_set("flash:welcome", &message, Some(SHORT_TTL))
        .await?;
    let fresh: Option<String> = cache.try_get("flash:welcome").await?;
    check(
        fresh.as_ref() == Some(&message),
        "a fresh entry was not readable",
    )?;
    println!(
        "   set flash:welcome with a {} ms TTL; read at once -> {fresh:?}",
        SHORT_TTL.as_millis()
    );

    let wait = SHORT_TTL + Duration::from_millis(100);
    tokio::time::sleep(wait).await;
    let expired: Option<String> = cache.try_get("flash:welcome").await?;
    check(expired.is_none(), "the entry outlived its TTL")?;
    println!("   after {} ms -> {expired:?} (expired)", wait.as_millis());
    println!();
    Ok(())
}

async fn glob_delete(cache: &CacheService) -> Result<(), CliError> {
    println!("3. Glob delete");
    for i in 1..=5 {
        cache
            .try_set(&format!("user:{i}"), &format!("user {i}"), None)
            .await?;
    }
    for i in 1..=2 {
        cache
            .try_set(&format!("session:{i}"), &format!("session {i}"), None)
            .await?;
    }
    println!("   set user:1 .. user:5 and session:1 .. session:2");

    let removed = cache.delete_pattern("user:*").await?;
    let users_left = cache.try_exists("user:3").await?;
    let sessions_left =
        cache.try_exists("session:1").await? && cache.try_exists("session:2").await?;
    check(
        removed == 5,
        &format!("delete_pattern removed {removed} keys, not 5"),
    )?;
    check(!users_left, "user:3 survived delete_pattern(\"user:*\")")?;
    check(
        sessions_left,
        "delete_pattern(\"user:*\") removed a session key",
    )?;
    println!(
        "   delete_pattern(\"user:*\") removed {removed} keys; session:1 and session:2 remain"
    );
    println!();
    Ok(())
}

async fn stampede(cache: &CacheService, callers: u32) -> Result<(), CliError> {
    println!("4. Stampede protection");
    let loads = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let cache = cache.clone();
            let loads = Arc::clone(&loads);
            tokio::spawn(async move {
                cache
                    .get_or_set(
                        "report:daily",
                        Some(Duration::from_secs(60)),
                        move || async move {
                            let load_started = Instant::now();
                            tokio::time::sleep(LOADER_DELAY).await;
                            loads.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(Report {
                                active_users: 1_234,
                                generated_in_ms: u64::try_from(load_started.elapsed().as_millis())
                                    .unwrap_or(u64::MAX),
                            })
                        },
                    )
                    .await
            })
        })
        .collect();

    let mut reports = Vec::with_capacity(tasks.len());
    for task in tasks {
        let report = task
            .await
            .map_err(|e| CliError::Check(format!("a get_or_set caller panicked: {e}")))??;
        reports.push(report);
    }
    let took = started.elapsed();
    let ran = loads.load(Ordering::SeqCst);

    println!(
        "   {callers} concurrent get_or_set calls on one cold key (loader sleeps {} ms)",
        LOADER_DELAY.as_millis()
    );
    println!(
        "   the loader ran {ran} time{}; all callers answered in {}",
        if ran == 1 { "" } else { "s" },
        fmt_duration(took)
    );
    check(ran == 1, &format!("the loader ran {ran} times, not once"))?;
    check(
        reports.windows(2).all(|w| w[0] == w[1]),
        "callers received different values",
    )?;
    println!("   every caller received the same report");
    println!();
    Ok(())
}

async fn metrics_table(cache: &CacheService) {
    println!("5. Metrics snapshot");
    let m = cache.metrics();
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(["metric", "value"]);
    let rows = [
        ("hits", m.hits.to_string()),
        ("misses", m.misses.to_string()),
        ("sets", m.sets.to_string()),
        ("deletes", m.deletes.to_string()),
        ("errors", m.errors.to_string()),
        ("hit rate", format!("{:.1} %", m.hit_rate * 100.0)),
        ("latency p50", fmt_duration(m.latency_p50)),
        ("latency p99", fmt_duration(m.latency_p99)),
        ("operations timed", m.operations.to_string()),
    ];
    for (name, value) in rows {
        table.add_row([name.to_owned(), value]);
    }
    if let Some(column) = table.column_mut(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    println!("{table}");
    println!(
        "   (most misses are the stampede: each caller read the cold key before joining the \
         one load)"
    );

    let health = cache.health_check(Duration::from_secs(1)).await;
    println!(
        "   health: {} (checked in {})",
        health.status,
        fmt_duration(health.latency)
    );
}

fn check(holds: bool, what: &str) -> Result<(), CliError> {
    if holds {
        Ok(())
    } else {
        Err(CliError::Check(what.to_owned()))
    }
}

/// Microseconds below a millisecond, milliseconds above: the scales a cache call lives at.
fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_duration;
    use std::time::Duration;

    #[test]
    fn durations_print_in_the_unit_that_fits() {
        assert_eq!(fmt_duration(Duration::from_nanos(2_500)), "2.5 µs");
        assert_eq!(fmt_duration(Duration::from_micros(52_340)), "52.3 ms");
    }
}
