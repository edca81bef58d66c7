//! The list of cases: each case's name, the capabilities it needs, and how to run it. This one
//! list generates [`case_names`](crate::case_names), the runner's dispatch and the
//! [`behaviour_suite!`](crate::behaviour_suite) macro, so they can never disagree.

use lexicache_core::Capabilities;

use crate::cases::{
    absent, basic, batch, concurrency, health, keys, listing, namespace, objects, pattern, ttl,
    values,
};
use crate::ctx::{Ctx, Factory};

/// One case as the runner sees it.
pub(crate) struct CaseInfo {
    /// The case's name, which is also its test's name.
    pub(crate) name: &'static str,
    /// Whether the case applies to a backend with these capabilities.
    pub(crate) applies: fn(&Capabilities) -> bool,
}

/// For cases every backend must pass.
fn always(_: &Capabilities) -> bool {
    true
}

/// Generates the registry from the case list. `$d` is a literal `$`, passed in so the generated
/// `behaviour_suite!` macro can have metavariables of its own.
macro_rules! registry {
    ($d:tt; $($module:ident :: $name:ident when $applies:expr;)*) => {
        pub(crate) static CASES: &[CaseInfo] = &[
            $(CaseInfo { name: stringify!($name), applies: $applies },)*
        ];

        pub(crate) static NAMES: &[&str] = &[$(stringify!($name),)*];

        /// Runs the case called `name`.
        pub(crate) async fn dispatch<F: Factory>(name: &str, cx: &Ctx<'_, F>) -> Result<(), String> {
            match name {
                $(stringify!($name) => $module::$name(cx).await,)*
                _ => return Err(format!("no behaviour case is called {name:?}")),
            }
            Ok(())
        }

        /// Expands to one `#[tokio::test]` per behaviour case, each running that case against
        /// backends made by the factory expression.
        ///
        /// The expression is evaluated once per test and must give something callable as
        /// `Fn(String) -> impl Future<Output = impl CacheBackend>`: a closure, a block ending in
        /// a closure (to share one store between a case's namespaces), or the path of an
        /// `async fn(String) -> B`. Cases that do not apply to the backend's capabilities pass
        /// without running. The tests are plain items, so call the macro once per module.
        ///
        /// ```ignore
        /// // crates/memory/tests/behaviour.rs
        /// use lexicache_memory::MemoryBackend;
        ///
        /// lexicache_testkit::behaviour_suite!({
        ///     let store = MemoryBackend::new();
        ///     move |ns: String| {
        ///         let backend = store.with_prefix(ns);
        ///         async move { backend }
        ///     }
        /// });
        /// ```
        #[macro_export]
        macro_rules! behaviour_suite {
            ($d factory:expr $d(,)?) => {
                $(
                    #[$d crate::__private::tokio::test(crate = "lexicache_testkit::__private::tokio")]
                    async fn $name() {
                        $d crate::run_case(stringify!($name), $d factory).await;
                    }
                )*
            };
        }
    };
}

registry! { $;
basic::get_after_set_returns_value when always;
basic::missing_key_is_a_miss_not_an_error when always;
basic::set_overwrites_previous_value when always;
basic::delete_reports_whether_key_existed when always;
basic::delete_leaves_other_keys_alone when always;
basic::exists_tracks_set_and_delete when always;
basic::keys_differing_in_case_or_suffix_are_distinct when always;
basic::deleted_key_can_be_written_again when always;
absent::set_if_absent_writes_an_absent_key when always;
absent::set_if_absent_leaves_a_present_key_untouched when always;
absent::set_if_absent_keeps_the_present_entrys_ttl when |c| c.tokio_clock;
absent::set_if_absent_honours_its_ttl_and_expired_keys_are_absent when always;
absent::set_if_absent_with_zero_ttl_stores_nothing when always;
absent::concurrent_set_if_absent_has_exactly_one_winner when always;
absent::set_if_absent_with_an_invalid_key_is_key_invalid when always;
absent::set_if_absent_of_an_oversized_value_writes_nothing when |c| c.max_value_size.is_some();
ttl::entries_expire_after_their_ttl when always;
ttl::expired_entry_is_gone_for_every_operation when |c| c.tokio_clock;
ttl::expired_key_can_be_written_again when |c| c.tokio_clock;
ttl::overwrite_resets_ttl when |c| c.tokio_clock;
ttl::overwrite_without_ttl_removes_expiry when |c| c.tokio_clock;
ttl::overwrite_with_ttl_adds_expiry when |c| c.tokio_clock;
ttl::entry_without_ttl_is_kept when |c| c.tokio_clock;
ttl::fractional_ttl_is_not_truncated when |c| c.tokio_clock;
ttl::tiny_ttl_is_readable_until_it_passes when |c| c.tokio_clock;
ttl::zero_ttl_removes_existing_key when always;
ttl::zero_ttl_write_of_new_key_is_a_miss when always;
ttl::set_many_with_zero_ttl_removes_entries when always;
batch::get_many_answers_in_order_with_misses_and_duplicates when always;
batch::set_many_then_get_many_round_trips when always;
batch::set_many_overwrites_and_last_duplicate_wins when always;
batch::delete_many_counts_distinct_existing_keys when always;
batch::empty_batches_are_ok when always;
batch::large_batches_round_trip when always;
values::every_byte_value_round_trips when always;
values::protocol_lookalike_values_round_trip when always;
values::empty_value_is_a_hit_not_a_miss when always;
values::large_value_round_trips_intact when always;
values::oversized_value_is_rejected_and_keeps_old_value when |c| c.max_value_size.is_some();
keys::unicode_keys_round_trip when always;
keys::keys_with_punctuation_and_glob_characters_round_trip when always;
keys::keys_with_whitespace_and_control_characters_round_trip when always;
keys::longest_valid_key_round_trips when always;
keys::empty_key_is_invalid_for_every_operation when always;
keys::overlong_key_is_invalid_for_every_operation when always;
pattern::delete_pattern_star_matches_any_run when |c| c.pattern_delete;
pattern::delete_pattern_star_in_the_middle when |c| c.pattern_delete;
pattern::delete_pattern_question_mark_matches_one_character when |c| c.pattern_delete;
pattern::delete_pattern_question_mark_matches_one_multibyte_character when |c| c.pattern_delete;
pattern::delete_pattern_character_class_and_range when |c| c.pattern_delete;
pattern::delete_pattern_caret_negated_class when |c| c.pattern_delete;
pattern::delete_pattern_bang_negated_class when |c| c.pattern_delete;
pattern::delete_pattern_escaped_metacharacters_match_exactly when |c| c.pattern_delete;
pattern::delete_pattern_prefix_with_escaped_metacharacters when |c| c.pattern_delete;
pattern::delete_pattern_without_match_returns_zero when |c| c.pattern_delete;
pattern::delete_pattern_counts_many_keys when |c| c.pattern_delete;
pattern::delete_pattern_does_not_touch_expired_or_deleted_keys when |c| c.pattern_delete && c.tokio_clock;
pattern::delete_pattern_is_unsupported_when_not_capable when |c| !c.pattern_delete;
listing::keys_lists_matching_keys_relative_to_namespace when |c| c.list_keys;
listing::keys_stops_at_the_limit when |c| c.list_keys;
listing::keys_omits_deleted_and_expired_keys when |c| c.list_keys && c.tokio_clock;
listing::keys_is_unsupported_when_not_capable when |c| !c.list_keys;
namespace::namespaces_do_not_share_keys when always;
namespace::clear_removes_every_key_of_the_namespace when |c| c.clear;
namespace::clear_leaves_other_namespace_intact when |c| c.clear;
namespace::delete_pattern_star_leaves_other_namespace_intact when |c| c.pattern_delete;
namespace::clear_is_unsupported_when_not_capable when |c| !c.clear;
concurrency::concurrent_writers_to_one_key_leave_one_intact_value when always;
concurrency::concurrent_writers_to_distinct_keys_all_land when always;
concurrency::concurrent_readers_get_their_own_values when always;
concurrency::parallel_threads_writing_one_key_leave_one_intact_value when |c| c.in_process;
objects::set_entry_object_is_returned_by_get_entry when |c| c.keeps_objects;
objects::plain_set_replaces_the_stored_object when |c| c.keeps_objects;
objects::set_many_replaces_the_stored_object when |c| c.keeps_objects;
objects::set_entry_replaces_the_stored_object when |c| c.keeps_objects;
objects::deleted_or_expired_entry_returns_no_object when |c| c.tokio_clock;
objects::entry_written_with_object_reads_back_as_bytes when always;
objects::get_entry_of_plain_bytes_has_no_object when always;
health::health_check_of_working_backend_is_healthy when always;
health::name_and_capabilities_are_stable when always;}
