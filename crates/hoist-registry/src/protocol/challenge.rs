//! Parsing of `WWW-Authenticate` challenges (RFC 7235 syntax, as registries send it).

use std::collections::BTreeMap;

/// One authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`: send a username and password.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`: fetch a token from `realm`.
    Bearer {
        /// The token endpoint URL.
        realm: String,
        /// The `service` parameter to pass to the realm, when given.
        service: Option<String>,
        /// The `scope` the registry asked for, when given.
        scope: Option<String>,
    },
}

/// Parse every challenge in a `WWW-Authenticate` header value, skipping schemes hoist does not
/// speak. A Bearer challenge without a realm is dropped (there is nowhere to ask for a token).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    for (scheme, params) in split_challenges(header) {
        if scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic);
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some(realm) = params.get("realm").filter(|r| !r.is_empty())
        {
            out.push(Challenge::Bearer {
                realm: realm.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            });
        }
    }
    out
}

/// Split a header value into `(scheme, params)` pairs. Parameter names are lowercased.
fn split_challenges(header: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut p = Lexer {
        s: header.as_bytes(),
        i: 0,
    };
    loop {
        p.skip_ws_commas();
        let Some(tok) = p.token() else {
            if p.i < p.s.len() {
                // A stray `=` or quote: skip it so the loop always progresses.
                p.i += 1;
                continue;
            }
            break;
        };
        p.skip_ws();
        if p.peek() == Some(b'=') {
            // A parameter of the current challenge.
            p.i += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            match out.last_mut() {
                Some((_, params)) => {
                    params.insert(tok.to_ascii_lowercase(), value);
                }
                None => continue,
            }
        } else {
            out.push((tok, BTreeMap::new()));
            // A token68 (e.g. `Negotiate abc==`) may follow without a `=` after a name; the next
            // token loop treats it as a scheme of its own, which is harmless: it is unknown.
        }
    }
    out
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b'=' || c == b',' || c == b' ' || c == b'\t' || c == b'"' {
                break;
            }
            self.i += 1;
        }
        if start == self.i {
            return None;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> String {
        // Precondition: at the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'"' => break,
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_commas_in_quoted_scope() {
        let h = r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }]
        );
    }

    #[test]
    fn escapes_and_case_and_whitespace() {
        let h = r#"bearer  Realm = "https://x/t\"q" , SERVICE=svc"#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://x/t\"q".into(),
                service: Some("svc".into()),
                scope: None,
            }]
        );
    }

    #[test]
    fn basic_and_multiple_challenges() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        let both = r#"Basic realm="r", Bearer realm="https://a/t",service="s""#;
        let got = parse_challenges(both);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Challenge::Basic);
        assert!(matches!(&got[1], Challenge::Bearer { realm, .. } if realm == "https://a/t"));
    }

    #[test]
    fn garbage_does_not_panic_and_bearer_without_realm_is_dropped() {
        for h in [
            "",
            "=",
            "\"",
            "Bearer",
            "Bearer realm=",
            "Bearer ,,,= \"unterminated",
            "Negotiate abc==",
        ] {
            let got = parse_challenges(h);
            assert!(
                got.iter()
                    .all(|c| !matches!(c, Challenge::Bearer { realm, .. } if realm.is_empty()))
            );
        }
        assert!(parse_challenges("Bearer service=\"s\"").is_empty());
    }
}
