//! What the macros need to know about the function they wrap, and the shared parts of every
//! expansion: the wrapped body, the argument tuple and the function path.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

/// An async fn or method, with its arguments made addressable.
#[derive(Debug)]
pub(crate) struct Function {
    /// The item; patterns that are not plain identifiers are renamed to `__lexicache_arg{i}`.
    pub(crate) item: ItemFn,
    /// `true` for methods (`self`, `&self`, `self: Arc<Self>`, ...).
    pub(crate) has_self: bool,
    /// `true` when `self` is a shared reference (`&self`, `self: &Self`).
    pub(crate) shared_self: bool,
    /// The names of the plain-identifier arguments: what templates may use.
    pub(crate) named: Vec<Ident>,
    /// Every non-`self` argument, in order, as the identifier bound in the signature.
    pub(crate) all: Vec<Ident>,
    /// `let <original pattern> = __lexicache_arg{i};` for renamed arguments.
    rebinds: Vec<TokenStream>,
}

impl Function {
    /// Parses and checks `item` for `#[<macro_name>]`.
    pub(crate) fn parse(item: TokenStream, macro_name: &str) -> syn::Result<Self> {
        let mut item: ItemFn = syn::parse2(item).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("#[{macro_name}] goes on an async fn or method: {e}"),
            )
        })?;
        let sig = &item.sig;
        if sig.asyncness.is_none() {
            return Err(syn::Error::new(
                sig.fn_token.span(),
                format!(
                    "#[{macro_name}] needs an async fn: add `async` before `fn {}`",
                    sig.ident
                ),
            ));
        }
        if let Some(v) = &sig.variadic {
            return Err(syn::Error::new(
                v.span(),
                format!("#[{macro_name}] cannot wrap a variadic fn"),
            ));
        }
        let mut has_self = false;
        let mut shared_self = false;
        let mut named = Vec::new();
        let mut all = Vec::new();
        let mut rebinds = Vec::new();
        for (i, input) in item.sig.inputs.iter_mut().enumerate() {
            match input {
                FnArg::Receiver(r) => {
                    has_self = true;
                    shared_self = matches!(&*r.ty, Type::Reference(t) if t.mutability.is_none());
                }
                FnArg::Typed(pt) => match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        named.push(pi.ident.clone());
                        all.push(pi.ident.clone());
                    }
                    _ => {
                        // Destructuring patterns (and `_`) cannot be hashed or moved as a whole:
                        // bind the argument to a name and destructure it inside the body.
                        let name = format_ident!("__lexicache_arg{}", i, span = pt.pat.span());
                        let pat = std::mem::replace(
                            &mut *pt.pat,
                            Pat::Ident(syn::PatIdent {
                                attrs: Vec::new(),
                                by_ref: None,
                                mutability: None,
                                ident: name.clone(),
                                subpat: None,
                            }),
                        );
                        rebinds.push(quote!(let #pat = #name;));
                        all.push(name);
                    }
                },
            }
        }
        Ok(Self {
            item,
            has_self,
            shared_self,
            named,
            all,
            rebinds,
        })
    }

    /// The fn's name.
    pub(crate) fn ident(&self) -> &Ident {
        &self.item.sig.ident
    }

    /// The declared return type (`()` when there is none).
    pub(crate) fn return_type(&self) -> TokenStream {
        match &self.item.sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        }
    }

    /// `true` when the return type is syntactically a path ending in `Result`
    /// (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`, ...).
    pub(crate) fn returns_result(&self) -> bool {
        match &self.item.sig.output {
            ReturnType::Type(_, ty) => is_result(ty),
            ReturnType::Default => false,
        }
    }

    /// The span of the return type, or of the signature when there is none.
    pub(crate) fn return_span(&self) -> Span {
        match &self.item.sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => self.item.sig.ident.span(),
        }
    }

    /// `move || async move { <rebinds>; let r: Ret = async move { body }.await; r }`: the
    /// original body as a loader closure. The inner block keeps `return` and `?` meaning what
    /// they meant in the fn, and the annotation gives `?` its target type.
    pub(crate) fn body_closure(&self) -> TokenStream {
        let block = &self.item.block;
        let ret = self.return_type();
        let rebinds = &self.rebinds;
        quote! {
            move || async move {
                #(#rebinds)*
                let __lexicache_ret: #ret = async move #block.await;
                __lexicache_ret
            }
        }
    }

    /// `&(&a, &b, ...)`: every non-`self` argument by reference, as one `Serialize` value
    /// (nested in tuples of at most 12, so any number of arguments works). Each reference
    /// carries its argument's span, so a missing `Serialize` points at the argument.
    pub(crate) fn args_tuple(&self) -> TokenStream {
        let refs: Vec<TokenStream> = self
            .all
            .iter()
            .map(|a| quote_spanned!(a.span()=> &#a))
            .collect();
        let tuple = nest(refs);
        quote!(&#tuple)
    }

    /// One never-run `Serialize` check per argument, spanned at the argument, so a missing
    /// `Serialize` is reported on the argument rather than on the attribute.
    pub(crate) fn serialize_checks(&self) -> TokenStream {
        let checks = self.all.iter().map(|a| {
            let arg = quote_spanned!(a.span()=> &#a);
            quote_spanned!(a.span()=> ::core::mem::drop(::lexicache::memo::call_key("", #arg));)
        });
        quote! {
            if false {
                #(#checks)*
            }
        }
    }

    /// An expression of type `&str`-coercible naming the function: `name` if given; for
    /// methods `<type_name::<Self>()>::<fn>`; otherwise `<module_path!()>::<fn>`.
    pub(crate) fn path(&self, name: Option<&syn::LitStr>) -> TokenStream {
        let ident = self.ident().to_string();
        match name {
            Some(name) => quote!(#name),
            None if self.has_self => quote! {
                &::std::format!("{}::{}", ::std::any::type_name::<Self>(), #ident)
            },
            None => quote!(::core::concat!(::core::module_path!(), "::", #ident)),
        }
    }

    /// Replaces the body with `body`, keeping attributes, visibility and signature.
    pub(crate) fn with_body(mut self, body: TokenStream) -> TokenStream {
        let block: syn::Block = syn::parse_quote!({ #body });
        *self.item.block = block;
        let item = &self.item;
        quote!(#item)
    }
}

/// Tuples of at most 12 (serde implements `Serialize` up to 16); longer lists nest.
fn nest(mut items: Vec<TokenStream>) -> TokenStream {
    const MAX: usize = 12;
    while items.len() > MAX {
        items = items.chunks(MAX).map(|c| quote!((#(#c,)*))).collect();
    }
    quote!((#(#items,)*))
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().is_some_and(|s| s.ident == "Result")
        }
        Type::Paren(p) => is_result(&p.elem),
        Type::Group(g) => is_result(&g.elem),
        _ => false,
    }
}
