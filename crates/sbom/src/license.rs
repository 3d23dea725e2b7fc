//! Declared license strings → CycloneDX `licenses`.
//!
//! Each string is classified once:
//! - an SPDX license or exception id (compared case-insensitively, written in its canonical
//!   case) → `{"license": {"id": …}}`;
//! - a valid SPDX expression (`MIT OR Apache-2.0`, `GPL-2.0-or-later WITH Classpath-exception-2.0`,
//!   `Apache-2.0+`, `LicenseRef-…`) → `{"expression": …}`;
//! - a Debian copyright-format short name with an exact SPDX equivalent (`GPL-2+` →
//!   `GPL-2.0-or-later`, `LGPL-2.1` → `LGPL-2.1-only`, `Expat` → `MIT`), or a deprecated SPDX
//!   GNU id (`GPL-2.0+`) → the current SPDX id;
//! - anything else (`BSD`, `Artistic`, `public-domain`) → `{"license": {"name": …}}`.
//!
//! The schema allows either any number of `license` items or exactly one `expression` item,
//! so (as Syft does): several expressions alone are joined into one, `(a) AND (b)`; mixed
//! with ids or names, each expression is written as a `license.name` instead.
//!
//! The id list is the `spdx.schema.json` enum that CycloneDX validators check (`spdx-ids.txt`),
//! not the newest SPDX list: an id newer than the schema would make the document invalid, so
//! it is written as a name.

use std::sync::OnceLock;

use crate::cdx::{License, LicenseChoice};

const IDS: &str = include_str!("spdx-ids.txt");

/// The ids, lowercased for lookup, with their canonical spelling.
fn ids() -> &'static [(String, &'static str)] {
    static IDS_LOWER: OnceLock<Vec<(String, &'static str)>> = OnceLock::new();
    IDS_LOWER.get_or_init(|| {
        let mut v: Vec<(String, &'static str)> = IDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| (l.to_ascii_lowercase(), l))
            .collect();
        v.sort();
        v
    })
}

/// The canonical SPDX id for `s` (case-insensitive), if it is one.
pub fn spdx_id(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    let ids = ids();
    ids.binary_search_by(|(l, _)| l.as_str().cmp(&lower))
        .ok()
        .map(|i| ids[i].1)
}

/// How one declared license string is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// An SPDX id, canonical case.
    Id(&'static str),
    /// A valid SPDX expression, normalised (canonical ids, single spaces).
    Expression(String),
    /// Free text.
    Name(String),
}

/// Classifies one license string (see the module docs). `None` for blank strings.
pub fn classify(s: &str) -> Option<Classified> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    // GNU short names first: `GPL-2+` (DEP-5) and the deprecated SPDX `GPL-2.0+` both become
    // the current `GPL-2.0-or-later`.
    if let Some(id) = debian_short_name(s).or_else(|| spdx_id(s)) {
        return Some(Classified::Id(id));
    }
    match expression(s) {
        Some(e) => Some(Classified::Expression(e)),
        None => Some(Classified::Name(s.to_string())),
    }
}

/// The `licenses` array for a package's declared license strings (duplicates dropped, order
/// kept).
pub fn licenses<S: AsRef<str>>(declared: &[S]) -> Vec<LicenseChoice> {
    let mut seen = Vec::<Classified>::new();
    for c in declared.iter().filter_map(|s| classify(s.as_ref())) {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    let expressions: Vec<&String> = seen
        .iter()
        .filter_map(|c| match c {
            Classified::Expression(e) => Some(e),
            _ => None,
        })
        .collect();
    if !expressions.is_empty() && expressions.len() == seen.len() {
        let expression = if expressions.len() == 1 {
            expressions[0].clone()
        } else {
            expressions
                .iter()
                .map(|e| format!("({e})"))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        return vec![LicenseChoice::Expression { expression }];
    }
    seen.into_iter()
        .map(|c| {
            let license = match c {
                Classified::Id(id) => License {
                    id: Some(id.to_string()),
                    name: None,
                },
                Classified::Expression(e) | Classified::Name(e) => License {
                    id: None,
                    name: Some(e),
                },
            };
            LicenseChoice::License { license }
        })
        .collect()
}

/// The SPDX id of a Debian copyright-format (DEP-5) short name, where the two name exactly
/// the same license: the GNU licenses with their `+` ("or later") convention, and `Expat`.
/// Everything else DEP-5 lists either is already an SPDX id (`Apache-2.0`, `Zlib`, `CC0-1.0`,
/// matched case-insensitively) or has no exact equivalent (`BSD-3-clause` variants are
/// matched as ids; `Artistic`, `public-domain` stay names).
fn debian_short_name(s: &str) -> Option<&'static str> {
    if s.eq_ignore_ascii_case("expat") {
        return Some("MIT");
    }
    let (family, rest) = ["AGPL-", "LGPL-", "GPL-", "GFDL-"]
        .iter()
        .find_map(|f| s.strip_prefix(f).map(|r| (*f, r)))?;
    let (version, later) = match rest.strip_suffix('+') {
        Some(v) => (v, true),
        None => (rest, false),
    };
    let version = match version {
        "1" | "2" | "3" => format!("{version}.0"),
        v if v.len() == 3 && v.as_bytes()[1] == b'.' => v.to_string(),
        _ => return None,
    };
    let suffix = if later { "or-later" } else { "only" };
    spdx_id(&format!("{family}{version}-{suffix}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    And,
    Or,
    With,
    Term(&'a str),
}

fn tokenize(s: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    for word in s.split_whitespace() {
        let mut rest = word;
        while let Some(r) = rest.strip_prefix('(') {
            out.push(Token::Open);
            rest = r;
        }
        let mut closes = 0;
        while let Some(r) = rest.strip_suffix(')') {
            closes += 1;
            rest = r;
        }
        match rest {
            "" => {}
            "AND" | "and" => out.push(Token::And),
            "OR" | "or" => out.push(Token::Or),
            "WITH" | "with" => out.push(Token::With),
            term => out.push(Token::Term(term)),
        }
        out.extend(std::iter::repeat_n(Token::Close, closes));
    }
    out
}

/// A license term: an SPDX id, an id with `+`, or a `LicenseRef-`/`DocumentRef-…:LicenseRef-`
/// reference; normalised.
fn license_term(t: &str) -> Option<String> {
    if let Some(id) = spdx_id(t) {
        return Some(id.to_string());
    }
    if let Some(base) = t.strip_suffix('+') {
        return spdx_id(base).map(|id| format!("{id}+"));
    }
    let is_ref = |r: &str| {
        r.strip_prefix("LicenseRef-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
    };
    if is_ref(t) {
        return Some(t.to_string());
    }
    if let Some((doc, lic)) = t.split_once(':')
        && doc.starts_with("DocumentRef-")
        && is_ref(lic)
    {
        return Some(t.to_string());
    }
    None
}

/// Parses `s` as an SPDX expression; the normalised text if valid.
pub fn expression(s: &str) -> Option<String> {
    let tokens = tokenize(s);
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
    };
    let e = p.or()?;
    (p.pos == tokens.len()).then_some(e)
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    pos: usize,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token<'_>> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Option<String> {
        let mut out = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            out = format!("{out} OR {}", self.and()?);
        }
        Some(out)
    }

    fn and(&mut self) -> Option<String> {
        let mut out = self.with()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            out = format!("{out} AND {}", self.with()?);
        }
        Some(out)
    }

    fn with(&mut self) -> Option<String> {
        let out = self.atom()?;
        if self.peek() == Some(&Token::With) {
            self.pos += 1;
            let Some(Token::Term(exception)) = self.peek() else {
                return None;
            };
            let exception = spdx_id(exception)?;
            self.pos += 1;
            return Some(format!("{out} WITH {exception}"));
        }
        Some(out)
    }

    fn atom(&mut self) -> Option<String> {
        match self.peek()? {
            Token::Open => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return None;
                }
                self.pos += 1;
                Some(format!("({inner})"))
            }
            Token::Term(t) => {
                let t = license_term(t)?;
                self.pos += 1;
                Some(t)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> LicenseChoice {
        LicenseChoice::License {
            license: License {
                id: Some(s.into()),
                name: None,
            },
        }
    }

    fn name(s: &str) -> LicenseChoice {
        LicenseChoice::License {
            license: License {
                id: None,
                name: Some(s.into()),
            },
        }
    }

    fn expr(s: &str) -> LicenseChoice {
        LicenseChoice::Expression {
            expression: s.into(),
        }
    }

    #[test]
    fn ids_are_canonicalised() {
        assert_eq!(spdx_id("MIT"), Some("MIT"));
        assert_eq!(spdx_id("mit"), Some("MIT"));
        assert_eq!(spdx_id("apache-2.0"), Some("Apache-2.0"));
        assert_eq!(spdx_id("GPL-2.0+"), Some("GPL-2.0+")); // deprecated, still listed
        assert_eq!(
            spdx_id("Classpath-exception-2.0"),
            Some("Classpath-exception-2.0")
        );
        assert_eq!(spdx_id("GPL-2+"), None);
        assert_eq!(classify("GPL-2+"), Some(Classified::Id("GPL-2.0-or-later")));
        assert_eq!(classify("GPL-3"), Some(Classified::Id("GPL-3.0-only")));
        // Deprecated SPDX GNU ids become the current ones.
        assert_eq!(
            classify("LGPL-2.1+"),
            Some(Classified::Id("LGPL-2.1-or-later"))
        );
        assert_eq!(classify("GPL-2.0"), Some(Classified::Id("GPL-2.0-only")));
        assert_eq!(classify("LGPL-2.1"), Some(Classified::Id("LGPL-2.1-only")));
        assert_eq!(
            classify("LGPL-3+"),
            Some(Classified::Id("LGPL-3.0-or-later"))
        );
        assert_eq!(classify("AGPL-3"), Some(Classified::Id("AGPL-3.0-only")));
        assert_eq!(
            classify("GFDL-1.3+"),
            Some(Classified::Id("GFDL-1.3-or-later"))
        );
        assert_eq!(classify("Expat"), Some(Classified::Id("MIT")));
        assert_eq!(classify("GPL-9+"), Some(Classified::Name("GPL-9+".into())));
        assert_eq!(
            classify("Artistic"),
            Some(Classified::Name("Artistic".into()))
        );
        assert_eq!(spdx_id(""), None);
    }

    #[test]
    fn expressions_are_parsed_and_normalised() {
        assert_eq!(
            expression("MIT OR Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            expression("(mit  or apache-2.0) AND BSD-3-Clause").as_deref(),
            Some("(MIT OR Apache-2.0) AND BSD-3-Clause")
        );
        assert_eq!(
            expression("GPL-2.0-or-later WITH Classpath-exception-2.0").as_deref(),
            Some("GPL-2.0-or-later WITH Classpath-exception-2.0")
        );
        assert_eq!(expression("Apache-2.0+").as_deref(), Some("Apache-2.0+"));
        assert_eq!(
            expression("LicenseRef-Proprietary").as_deref(),
            Some("LicenseRef-Proprietary")
        );
        for bad in [
            "",
            "BSD",
            "MIT OR",
            "(MIT",
            "MIT)",
            "MIT WITH Apache-2.0x",
            "GPL-2+",
            "MIT OR BSD-like",
            "LicenseRef-",
            "OR MIT",
        ] {
            assert_eq!(expression(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn license_arrays_follow_the_schema() {
        assert_eq!(licenses::<&str>(&[]), vec![]);
        assert_eq!(licenses(&["MIT", "mit", " "]), vec![id("MIT")]);
        assert_eq!(
            licenses(&["GPL-2+", "LGPL-2.1-only", "public-domain"]),
            vec![
                id("GPL-2.0-or-later"),
                id("LGPL-2.1-only"),
                name("public-domain")
            ]
        );
        assert_eq!(
            licenses(&["MIT OR Apache-2.0"]),
            vec![expr("MIT OR Apache-2.0")]
        );
        assert_eq!(
            licenses(&["MIT OR Apache-2.0", "BSD-3-Clause AND Zlib"]),
            vec![expr("(MIT OR Apache-2.0) AND (BSD-3-Clause AND Zlib)")]
        );
        // Mixed with an id: the expression is demoted to a name (one expression item only).
        assert_eq!(
            licenses(&["MIT OR Apache-2.0", "Zlib"]),
            vec![name("MIT OR Apache-2.0"), id("Zlib")]
        );
    }
}
