//! Key and tag templates: `"user:{id}"`, `"org:{user.org_id}"`.
//!
//! A template is literal text with `{name}` placeholders, where `name` is an argument of the
//! function (optionally followed by `.field` accesses). Placeholders render with `Display`;
//! `{{` and `}}` are a literal brace. Templates are checked when the macro expands, so a typo
//! is a compile error pointing at the template, not a key that silently never hits.

use proc_macro2::{Span, TokenStream};
use quote::quote_spanned;
use syn::{Ident, LitStr};

/// One piece of a parsed template.
#[derive(Debug)]
enum Piece {
    /// Text copied as is.
    Text(String),
    /// `{arg.field.field}`: an argument and the fields read from it.
    Arg(Vec<String>),
}

/// A parsed template and the literal it came from (for spans).
#[derive(Debug)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
    lit: LitStr,
}

impl Template {
    /// Parses `lit`; `available` are the argument names a placeholder may use, and `function`
    /// the name of the function (for the error message).
    pub(crate) fn parse(lit: &LitStr, available: &[Ident], function: &Ident) -> syn::Result<Self> {
        let text = lit.value();
        let err = |msg: String| syn::Error::new(lit.span(), msg);
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(err(format!(
                        "unmatched `}}` in template {text:?}; write `}}}}` for a literal brace"
                    )))
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(err(format!(
                            "unclosed `{{` in template {text:?}; write `{{{{` for a literal brace"
                        )));
                    }
                    let path = parse_placeholder(&inner, &text).map_err(err)?;
                    check_argument(&path, available, function, &text).map_err(err)?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Arg(path));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self {
            pieces,
            lit: lit.clone(),
        })
    }

    /// `true` when the template has no placeholder.
    pub(crate) fn is_literal(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// An expression of type `String` rendering the template. Placeholder identifiers carry the
    /// template's span, so a missing `Display` is reported on the template.
    pub(crate) fn render(&self) -> TokenStream {
        let span = self.lit.span();
        if self.is_literal() {
            let text: String = self
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.as_str(),
                    Piece::Arg(_) => "",
                })
                .collect();
            return quote_spanned!(span=> ::std::string::String::from(#text));
        }
        let mut format = String::new();
        let mut values = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => format.push_str(&t.replace('{', "{{").replace('}', "}}")),
                Piece::Arg(path) => {
                    format.push_str("{}");
                    let first = ident(&path[0], span);
                    let fields = path[1..].iter().map(|f| field(f, span));
                    values.push(quote_spanned!(span=> &#first #(.#fields)*));
                }
            }
        }
        let format = LitStr::new(&format, span);
        quote_spanned!(span=> ::std::format!(#format, #(#values),*))
    }
}

/// An identifier, raw (`r#type`) or not.
fn ident(name: &str, span: Span) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, span),
        None => Ident::new(name, span),
    }
}

/// A named (`name`) or tuple (`0`) field.
fn field(name: &str, span: Span) -> TokenStream {
    match name.parse::<u32>() {
        Ok(index) => {
            let index = syn::Index { index, span };
            quote_spanned!(span=> #index)
        }
        Err(_) => {
            let name = ident(name, span);
            quote_spanned!(span=> #name)
        }
    }
}

/// Splits `arg.field.field` into its parts, rejecting format specs and anything else.
fn parse_placeholder(inner: &str, text: &str) -> Result<Vec<String>, String> {
    let inner = inner.trim();
    if inner.is_empty() {
        return Err(format!(
            "empty placeholder `{{}}` in template {text:?}; name an argument, e.g. `{{id}}`"
        ));
    }
    if inner.contains(':') {
        return Err(format!(
            "format specs are not supported in template {text:?}: `{{{inner}}}`; placeholders \
             render with Display, e.g. `{{id}}`"
        ));
    }
    let parts: Vec<String> = inner.split('.').map(|s| s.trim().to_owned()).collect();
    for (i, part) in parts.iter().enumerate() {
        // `self` parses as no identifier; let `check_argument` explain why it is refused.
        let is_self = i == 0 && part == "self";
        if !is_self && syn::parse_str::<Ident>(part).is_err() && part.parse::<u32>().is_err() {
            return Err(format!(
                "`{{{inner}}}` in template {text:?} is not an argument name: a placeholder is \
                 `{{arg}}` or `{{arg.field}}`"
            ));
        }
    }
    Ok(parts)
}

/// Checks that the first part of a placeholder names an argument of the function.
fn check_argument(
    path: &[String],
    available: &[Ident],
    function: &Ident,
    text: &str,
) -> Result<(), String> {
    let name = &path[0];
    if name == "self" {
        return Err(format!(
            "`self` cannot be used in template {text:?}: templates name the function's \
             arguments; use `name = \"...\"` or `prefix = \"...\"` to tell instances apart"
        ));
    }
    if available.iter().any(|a| a == name) {
        return Ok(());
    }
    let known = if available.is_empty() {
        format!("`{function}` has no named arguments")
    } else {
        let names: Vec<String> = available.iter().map(|a| format!("`{a}`")).collect();
        format!("arguments are {}", names.join(", "))
    };
    Err(format!(
        "no argument named `{name}` in `{function}` (template {text:?}; {known})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, args: &[&str]) -> Result<Template, String> {
        let lit = LitStr::new(text, Span::call_site());
        let args: Vec<Ident> = args
            .iter()
            .map(|a| Ident::new(a, Span::call_site()))
            .collect();
        Template::parse(&lit, &args, &Ident::new("get_user", Span::call_site()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn placeholders_render_through_format() {
        let t = parse("user:{id}:{org.name}", &["id", "org"]).unwrap();
        assert!(!t.is_literal());
        let code = t.render().to_string();
        assert!(code.contains("\"user:{}:{}\""), "{code}");
        assert!(code.contains("& id"), "{code}");
        assert!(code.contains("& org . name"), "{code}");
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        let t = parse("a{{b}}", &[]).unwrap();
        assert!(t.is_literal());
        assert!(t.render().to_string().contains("\"a{b}\""));
        let t = parse("{{{id.0}}}", &["id"]).unwrap();
        assert!(t.render().to_string().contains("& id . 0"));
        assert!(t.render().to_string().contains("\"{{{}}}\""));
    }

    #[test]
    fn unknown_argument_is_named_in_the_error() {
        let e = parse("user:{idx}", &["id"]).unwrap_err();
        assert!(
            e.starts_with("no argument named `idx` in `get_user`"),
            "{e}"
        );
        assert!(e.contains("`id`"), "{e}");
    }

    #[test]
    fn self_is_rejected() {
        for text in ["{self}", "{self.id}"] {
            let e = parse(text, &["id"]).unwrap_err();
            assert!(e.contains("`self` cannot be used"), "{e}");
        }
    }

    #[test]
    fn malformed_templates_are_rejected() {
        for (text, msg) in [
            ("a{", "unclosed"),
            ("a}", "unmatched"),
            ("{}", "empty placeholder"),
            ("{id:?}", "format specs"),
            ("{id-1}", "not an argument name"),
        ] {
            let e = parse(text, &["id"]).unwrap_err();
            assert!(e.contains(msg), "{text}: {e}");
        }
    }
}
