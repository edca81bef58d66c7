//! Attribute macros for lexicache. SKELETON: the macros helper fills this in.

use proc_macro::TokenStream;

/// Memoizes an async fn or method in a `CacheService`.
#[proc_macro_attribute]
pub fn cached(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
