//! The expansions of `#[cached]`, `#[cache_in_request]` and `#[invalidate]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, LitStr};

use crate::args::{lit_bool, lit_str, lit_str_array, ttl_seconds, RawArgs};
use crate::func::Function;
use crate::template::Template;

const CACHED_ARGS: &[&str] = &[
    "ttl",
    "key",
    "prefix",
    "tags",
    "cache",
    "protect",
    "condition",
    "name",
];
const REQUEST_ARGS: &[&str] = &["key", "name"];
const INVALIDATE_ARGS: &[&str] = &["keys", "patterns", "tags", "cache"];

/// `cache = self.field` borrows `self` for the whole call, while the body closure needs `self`
/// itself: that only works when `self` is a shared reference. Say so, instead of a borrow error.
fn check_cache_borrow(f: &Function, cache: Option<&Expr>) -> syn::Result<()> {
    fn rooted_in_self(e: &Expr) -> bool {
        match e {
            Expr::Field(field) => rooted_in_self(&field.base),
            Expr::Path(p) => p.path.is_ident("self"),
            Expr::Paren(p) => rooted_in_self(&p.expr),
            _ => false,
        }
    }
    match cache {
        Some(expr) if f.has_self && !f.shared_self && rooted_in_self(expr) => Err(syn::Error::new(
            expr.span(),
            "`cache = self.<field>` needs `&self`: with `&mut self` or `self` by value the \
                 body needs `self` while the cache borrows it; take `&self`, or clone the \
                 handle (`cache = self.cache.clone()` for an `Arc<CacheService>`)",
        )),
        _ => Ok(()),
    }
}

/// `let __lexicache_cache: Option<&CacheService<_>> = ...;`: the given cache, or the global
/// one (which may be absent).
fn cache_binding(cache: Option<&Expr>) -> TokenStream {
    match cache {
        Some(expr) => {
            // Deref coercion turns `&Arc<CacheService>`, `&&CacheService`, ... into the
            // reference; the error for anything else points at the expression.
            quote_spanned! {expr.span()=>
                let __lexicache_cache: &::lexicache::CacheService<_> = &(#expr);
                let __lexicache_cache = ::core::option::Option::Some(__lexicache_cache);
            }
        }
        None => quote! {
            let __lexicache_cache: ::core::option::Option<&'static ::lexicache::CacheService> =
                ::lexicache::memo::global();
        },
    }
}

/// Parses a list of templates (`tags = [...]`, `keys = [...]`) into `String` expressions.
fn templates(f: &Function, args: &mut RawArgs, name: &str) -> syn::Result<Vec<TokenStream>> {
    let Some((ident, value)) = args.take(name) else {
        return Ok(Vec::new());
    };
    lit_str_array(&ident, &value)?
        .iter()
        .map(|lit| Ok(Template::parse(lit, &f.named, f.ident())?.render()))
        .collect()
}

/// `#[cached(...)]`.
pub(crate) fn cached(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut args: RawArgs = syn::parse2(attr)?;
    args.check_names("cached", CACHED_ARGS)?;
    let f = Function::parse(item, "cached")?;

    let mut builder = Vec::new();
    if let Some((ident, value)) = args.take("prefix") {
        let prefix = lit_str(&ident, &value, "\"users:\"")?;
        builder.push(quote!(.prefix(#prefix)));
    }
    if let Some((_, value)) = args.take("ttl") {
        let (secs, span) = ttl_seconds(&value)?;
        builder.push(quote_spanned!(span=> .ttl(::core::time::Duration::from_secs(#secs))));
    }
    let tags = templates(&f, &mut args, "tags")?;
    if !tags.is_empty() {
        builder.push(quote!(.tags([#(#tags),*])));
    }
    if let Some((ident, value)) = args.take("protect") {
        let on = lit_bool(&ident, &value)?;
        builder.push(quote!(.protect(#on)));
    }
    let key = args.take("key");
    let hashes_args = key.is_none();
    match key {
        Some((ident, value)) => {
            let lit = lit_str(&ident, &value, "\"user:{id}\"")?;
            let key = Template::parse(&lit, &f.named, f.ident())?.render();
            builder.push(quote!(.key(#key)));
        }
        None => {
            let tuple = f.args_tuple();
            builder.push(quote!(.args(#tuple)));
        }
    }
    let name = match args.take("name") {
        Some((ident, value)) => Some(lit_str(&ident, &value, "\"users::get\"")?),
        None => None,
    };
    let path = f.path(name.as_ref());

    // The call carries the return type's span: a result type that cannot be cached is
    // reported on the return type.
    let ret_span = f.return_span();
    let call = match args.take("condition") {
        Some((ident, condition)) => {
            if f.returns_result() {
                let mut e = syn::Error::new(
                    ident.span(),
                    "`condition` cannot be combined with a `Result` return type: `Ok` is \
                     cached and `Err` never is; return a non-`Result` type to cache by a condition",
                );
                e.combine(syn::Error::new(f.return_span(), "the `Result` return type"));
                return Err(e);
            }
            quote_spanned!(ret_span=> conditional(#condition, __lexicache_body))
        }
        None if f.returns_result() => quote_spanned!(ret_span=> cacheable(__lexicache_body)),
        None => quote_spanned!(ret_span=> remember(__lexicache_body)),
    };
    let call = quote_spanned!(ret_span=> __lexicache_memo.#call.await);
    let cache = args.take("cache").map(|(_, e)| e);
    check_cache_borrow(&f, cache.as_ref())?;
    let cache = cache_binding(cache.as_ref());
    let body = f.body_closure();

    let checks = if hashes_args {
        f.serialize_checks()
    } else {
        quote!()
    };
    let expanded = quote! {
        #checks
        #cache
        let __lexicache_memo = match __lexicache_cache {
            ::core::option::Option::Some(__lexicache_cache) => ::core::option::Option::Some(
                __lexicache_cache.memo(#path) #(#builder)*
            ),
            ::core::option::Option::None => ::core::option::Option::None,
        };
        let __lexicache_body = #body;
        match __lexicache_memo {
            ::core::option::Option::Some(__lexicache_memo) => #call,
            ::core::option::Option::None => __lexicache_body().await,
        }
    };
    Ok(f.with_body(expanded))
}

/// `#[cache_in_request]`.
pub(crate) fn cache_in_request(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut args: RawArgs = syn::parse2(attr)?;
    args.check_names("cache_in_request", REQUEST_ARGS)?;
    let f = Function::parse(item, "cache_in_request")?;
    let name = match args.take("name") {
        Some((ident, value)) => Some(lit_str(&ident, &value, "\"users::permissions\"")?),
        None => None,
    };
    let path = f.path(name.as_ref());
    // The arguments are encoded before the body closure moves them: `cache_in_request` takes
    // the arguments and the closure in one call, so borrowing them there would conflict.
    let encoded = match args.take("key") {
        Some((ident, value)) => {
            let lit: LitStr = lit_str(&ident, &value, "\"user:{id}\"")?;
            let key = Template::parse(&lit, &f.named, f.ident())?.render();
            quote!(::core::result::Result::<::std::string::String, ::lexicache::Error>::Ok(#key))
        }
        None => {
            let tuple = f.args_tuple();
            quote!(::lexicache::memo::call_key("", #tuple))
        }
    };
    let body = f.body_closure();
    let expanded = quote! {
        let __lexicache_args = #encoded;
        let __lexicache_body = #body;
        match __lexicache_args {
            ::core::result::Result::Ok(__lexicache_args) => {
                ::lexicache::scope::cache_in_request(#path, &__lexicache_args, __lexicache_body)
                    .await
            }
            // Arguments that cannot be encoded cannot be told apart: run uncached.
            ::core::result::Result::Err(_) => __lexicache_body().await,
        }
    };
    Ok(f.with_body(expanded))
}

/// `#[invalidate(...)]`.
pub(crate) fn invalidate(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let attr_span = attr.span();
    let mut args: RawArgs = syn::parse2(attr)?;
    args.check_names("invalidate", INVALIDATE_ARGS)?;
    let f = Function::parse(item, "invalidate")?;
    let keys = templates(&f, &mut args, "keys")?;
    let patterns = templates(&f, &mut args, "patterns")?;
    let tags = templates(&f, &mut args, "tags")?;
    if keys.is_empty() && patterns.is_empty() && tags.is_empty() {
        return Err(syn::Error::new(
            attr_span,
            "#[invalidate] needs something to remove: `keys = [...]`, `patterns = [...]` or \
             `tags = [...]`",
        ));
    }
    // A failed update (`Err`) changed nothing, so the cache is still right.
    let call = if f.returns_result() {
        quote!(invalidate_after_ok)
    } else {
        quote!(invalidate_after)
    };
    let cache = args.take("cache").map(|(_, e)| e);
    check_cache_borrow(&f, cache.as_ref())?;
    let cache = cache_binding(cache.as_ref());
    let body = f.body_closure();
    let expanded = quote! {
        #cache
        let mut __lexicache_invalidation = ::lexicache::memo::Invalidation::default();
        __lexicache_invalidation.keys = ::std::vec![#(#keys),*];
        __lexicache_invalidation.patterns = ::std::vec![#(#patterns),*];
        __lexicache_invalidation.tags = ::std::vec![#(#tags),*];
        let __lexicache_body = #body;
        match __lexicache_cache {
            ::core::option::Option::Some(__lexicache_cache) => {
                __lexicache_cache
                    .#call(&__lexicache_invalidation, __lexicache_body)
                    .await
            }
            ::core::option::Option::None => __lexicache_body().await,
        }
    };
    Ok(f.with_body(expanded))
}
