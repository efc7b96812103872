//! `coffer inject` templates: `{{ coffer://… }}` is replaced by the value it references;
//! any other `{{ … }}` (another tool's placeholder) is left exactly as it is.
//!
//! Pure text in, text out, with the lookup passed in, so that it can be fuzzed.

use coffer_core::reference::SecretReference;
use zeroize::Zeroizing;

use crate::failure::Failure;

/// Looks up one reference (its text, and the template line it is on) and returns its value.
pub type Lookup<'a> = dyn FnMut(&str, usize) -> Result<Zeroizing<String>, Failure> + 'a;

/// Renders `template`, calling `resolve(reference, line)` for each reference in order
/// (line numbers count from 1). The first failure stops the rendering and is returned.
pub fn render(template: &str, resolve: &mut Lookup<'_>) -> Result<Zeroizing<String>, Failure> {
    let mut out = Zeroizing::new(String::with_capacity(template.len()));
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        if SecretReference::looks_like(inner) {
            let offset = template.len() - rest.len() + start;
            let line_no = template[..offset].matches('\n').count() + 1;
            out.push_str(&resolve(inner, line_no)?);
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(template: &str) -> (String, Vec<(String, usize)>) {
        let mut calls = Vec::new();
        let out = render(template, &mut |reference, line| {
            calls.push((reference.to_owned(), line));
            Ok(Zeroizing::new("<V>".to_owned()))
        })
        .unwrap();
        (out.to_string(), calls)
    }

    #[test]
    fn references_are_replaced_and_other_placeholders_kept() {
        let (out, calls) = marked("a={{ coffer://db#pw }}\nb={{ name }} c={{coffer://x}}");
        assert_eq!(out, "a=<V>\nb={{ name }} c=<V>");
        assert_eq!(
            calls,
            [
                ("coffer://db#pw".to_owned(), 1),
                ("coffer://x".to_owned(), 2)
            ]
        );
    }

    #[test]
    fn unterminated_and_empty_braces_are_text() {
        for text in ["{{ coffer://a", "}} {{", "{{}}", "{{{ coffer://a }}"] {
            let (out, calls) = marked(text);
            assert_eq!(out, text);
            assert!(calls.is_empty(), "{text:?}: {calls:?}");
        }
    }

    #[test]
    fn a_failed_lookup_stops_the_rendering() {
        let failed = render(
            "x {{ coffer://a }} {{ coffer://b }}",
            &mut |reference, _| Err(Failure::usage(format!("no {reference}"))),
        );
        assert_eq!(
            failed.err().map(|f| f.message),
            Some("no coffer://a".to_owned())
        );
    }
}
