//! Parsing of the macros' `name = value` arguments.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, ExprLit, Lit, LitBool, LitInt, LitStr, Meta, Token};

/// The raw `name = value` pairs of an attribute, in order.
#[derive(Debug)]
pub(crate) struct RawArgs(Vec<(syn::Ident, Expr)>);

impl Parse for RawArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
        let mut out: Vec<(syn::Ident, Expr)> = Vec::new();
        for meta in metas {
            let (path, value) = match meta {
                Meta::NameValue(nv) => (nv.path, nv.value),
                Meta::Path(p) => {
                    return Err(syn::Error::new(
                        p.span(),
                        "expected `name = value`, e.g. `ttl = 60`",
                    ))
                }
                Meta::List(l) => {
                    return Err(syn::Error::new(
                        l.span(),
                        "expected `name = value`, e.g. `tags = [\"users\"]`",
                    ))
                }
            };
            let Some(ident) = path.get_ident().cloned() else {
                return Err(syn::Error::new(
                    path.span(),
                    "expected an argument name such as `ttl`",
                ));
            };
            if let Some((first, _)) = out.iter().find(|(i, _)| *i == ident) {
                let mut e = syn::Error::new(ident.span(), format!("duplicate argument `{ident}`"));
                e.combine(syn::Error::new(first.span(), "first given here"));
                return Err(e);
            }
            out.push((ident, value));
        }
        Ok(Self(out))
    }
}

impl RawArgs {
    /// Checks every name against `allowed`, naming the macro and the allowed set on a mismatch.
    pub(crate) fn check_names(&self, macro_name: &str, allowed: &[&str]) -> syn::Result<()> {
        for (ident, _) in &self.0 {
            if !allowed.iter().any(|a| ident == a) {
                let list = allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let msg = if allowed.is_empty() {
                    format!("unknown argument `{ident}`: #[{macro_name}] takes no arguments")
                } else {
                    format!("unknown argument `{ident}` to #[{macro_name}]; expected one of {list}")
                };
                return Err(syn::Error::new(ident.span(), msg));
            }
        }
        Ok(())
    }

    /// Removes and returns the value of `name`, if given.
    pub(crate) fn take(&mut self, name: &str) -> Option<(syn::Ident, Expr)> {
        let at = self.0.iter().position(|(i, _)| i == name)?;
        Some(self.0.remove(at))
    }
}

/// A string literal argument.
pub(crate) fn lit_str(name: &syn::Ident, value: &Expr, example: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{name}` takes a string literal, e.g. `{name} = {example}`"),
        )),
    }
}

/// A bool literal argument.
pub(crate) fn lit_bool(name: &syn::Ident, value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(LitBool { value, .. }),
            ..
        }) => Ok(*value),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{name}` takes `true` or `false`"),
        )),
    }
}

/// `ttl = 60`: a positive whole number of seconds.
pub(crate) fn ttl_seconds(value: &Expr) -> syn::Result<(u64, Span)> {
    let bad = |span: Span| {
        syn::Error::new(
            span,
            "`ttl` takes a positive whole number of seconds, e.g. `ttl = 60`; omit it for no expiry",
        )
    };
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        return Err(bad(value.span()));
    };
    let secs = parse_seconds(int).map_err(|()| bad(int.span()))?;
    Ok((secs, int.span()))
}

fn parse_seconds(int: &LitInt) -> Result<u64, ()> {
    if !matches!(int.suffix(), "" | "u64" | "u32" | "usize") {
        return Err(());
    }
    match int.base10_parse::<u64>() {
        Ok(0) | Err(_) => Err(()),
        Ok(n) => Ok(n),
    }
}

/// `tags = ["a", "b:{id}"]`: an array of string literals.
pub(crate) fn lit_str_array(name: &syn::Ident, value: &Expr) -> syn::Result<Vec<LitStr>> {
    let bad = |span: Span| {
        syn::Error::new(
            span,
            format!("`{name}` takes an array of string literals, e.g. `{name} = [\"users\", \"user:{{id}}\"]`"),
        )
    };
    let Expr::Array(ExprArray { elems, .. }) = value else {
        return Err(bad(value.span()));
    };
    elems
        .iter()
        .map(|e| match e {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => Ok(s.clone()),
            other => Err(bad(other.span())),
        })
        .collect()
}
