//! Serde helpers: durations written as `"30s"` or as seconds, lists written as YAML/JSON/TOML
//! arrays or as index-keyed maps (what nested environment variables produce), and string
//! lists written as comma-separated text.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

/// Parses a duration: a number of seconds (`30`, `0.5`) or numbers with units, optionally
/// chained (`"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1d"`, `"1m30s"`). Units: `ns`, `us`, `ms`,
/// `s`, `m`, `h`, `d`.
///
/// ```
/// use std::time::Duration;
/// use lexicache_config::parse_duration;
///
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
/// assert!(parse_duration("soon").is_err());
/// ```
///
/// # Errors
///
/// A message saying what is wrong when the text is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty duration; write e.g. \"30s\", \"500ms\" or 30 (seconds)".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return seconds(secs);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration; write e.g. \"30s\" or \"500ms\""))?;
        let scale = match unit.trim() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            other => {
                return Err(format!(
                    "`{text}` has an unknown unit `{other}`; use ns, us, ms, s, m, h or d"
                ))
            }
        };
        total = total
            .checked_add(seconds(value * scale)?)
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        rest = tail.trim_start();
    }
    Ok(total)
}

fn seconds(secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{secs} is not a duration: durations are finite and not negative"))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"30s\", \"500ms\", \"2m\" or a number of seconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("{v} is not a duration: durations are not negative")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        seconds(v).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

/// Deserializes a [`Duration`] with [`parse_duration`]'s forms.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// Deserializes an optional [`Duration`]; `null` is `None`.
pub(crate) fn option_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            duration(d).map(Some)
        }
    }

    d.deserialize_option(OptionVisitor)
}

/// Orders the keys of an index-keyed map (`"0"`, `"1"`, `"10"` ...) by their number; `None`
/// when a key is not a number.
pub(crate) fn index_order<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<Vec<&'a str>> {
    let mut indexed: Vec<(usize, &str)> = keys
        .into_iter()
        .map(|k| k.parse::<usize>().ok().map(|i| (i, k)))
        .collect::<Option<_>>()?;
    indexed.sort_unstable();
    Some(indexed.into_iter().map(|(_, k)| k).collect())
}

/// Deserializes a `Vec<T>` from a list, or from a map keyed by index (`{"0": .., "1": ..}`),
/// which is what `LEXICACHE_BACKENDS__0__TYPE=memory` and friends produce. Entries are taken
/// in index order; gaps are allowed.
pub(crate) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    d.deserialize_any(ListVisitor(PhantomData))
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list (or a map keyed by index: 0, 1, 2 ...)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element()? {
            out.push(item);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
        let mut entries: Vec<(usize, T)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let Ok(index) = key.parse::<usize>() else {
                return Err(de::Error::custom(format!(
                    "expected a list, or a map keyed by index (0, 1, 2 ...); found the key `{key}`"
                )));
            };
            if entries.iter().any(|(i, _)| *i == index) {
                return Err(de::Error::custom(format!("index {index} is given twice")));
            }
            entries.push((index, map.next_value()?));
        }
        entries.sort_unstable_by_key(|(i, _)| *i);
        Ok(entries.into_iter().map(|(_, v)| v).collect())
    }
}

/// Deserializes a list of strings from a list, an index-keyed map, or one comma-separated
/// string (`"127.0.0.1:11211,127.0.0.1:11212"`, handy in environment variables).
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct StringListVisitor;

    impl<'de> Visitor<'de> for StringListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings or one comma-separated string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
            ListVisitor(PhantomData).visit_seq(seq)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<String>, A::Error> {
            ListVisitor(PhantomData).visit_map(map)
        }
    }

    d.deserialize_any(StringListVisitor)
}
