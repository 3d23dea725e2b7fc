//! Authenticating webhook callers, before their body is parsed.
//!
//! No registry signs its Distribution-style notifications: Distribution, GitLab, Harbor, ACR
//! and Zot send static headers you configure (`Authorization: Bearer …` or any header), Docker
//! Hub and Quay send nothing at all, and GitHub (GHCR) is the one that signs bodies, with
//! HMAC-SHA256 in `X-Hub-Signature-256: sha256=<hex>` (interfaces.md §0.5). Hence
//! [`WebhookAuth`]:
//!
//! | Variant | Request must carry | For |
//! |---|---|---|
//! | [`None`](WebhookAuth::None) | nothing | loopback tests; senders that cannot send headers |
//! | [`Bearer`](WebhookAuth::Bearer) | `Authorization: Bearer <token>` | Distribution, GitLab, Harbor (`auth_header`) |
//! | [`Header`](WebhookAuth::Header) | `<name>: <value>` | any sender with custom static headers |
//! | [`HmacSha256`](WebhookAuth::HmacSha256) | `<header>: [prefix]hex(HMAC-SHA256(secret, body))` | GitHub, CI jobs that sign |
//! | [`Query`](WebhookAuth::Query) | `?<name>=<value>` in the URL | Docker Hub, Quay (they send no header; the URL is their only secret) |
//!
//! Every comparison of a secret is constant-time ([`subtle`]). Tokens are compared through
//! their SHA-256 so the two sides have equal length and neither a length nor a prefix leaks;
//! an HMAC is compared in full (a truncated signature is invalid, never a prefix match). An
//! empty configured secret matches nothing. A failure is [`AuthError`] → 401, and the request
//! is never queued.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// A secret from configuration. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How one webhook endpoint authenticates its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAuth {
    /// Anyone may call: a loopback listener, or an endpoint configured so on purpose.
    None,
    /// `Authorization: Bearer <token>` (scheme case-insensitive).
    Bearer {
        /// The expected token.
        token: Secret,
    },
    /// A shared-secret header, compared byte for byte.
    Header {
        /// Header name (case-insensitive).
        name: String,
        /// The expected value.
        value: Secret,
    },
    /// An HMAC-SHA256 of the raw body, hex-encoded (either case) in `header`, after `prefix`.
    HmacSha256 {
        /// Header carrying the signature, e.g. `X-Hub-Signature-256`.
        header: String,
        /// The shared key.
        secret: Secret,
        /// What precedes the hex, e.g. `sha256=` for GitHub; `None` for bare hex.
        prefix: Option<String>,
    },
    /// A shared secret in the URL's query string, for senders that can set nothing but the
    /// URL. Weaker than a header (URLs end up in proxy and registry logs): use it only there.
    Query {
        /// Query parameter name, e.g. `token`.
        name: String,
        /// The expected value.
        value: Secret,
    },
}

/// Why a caller was not let in. Both answer 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The credential header is absent.
    #[error("missing {header} header")]
    Missing {
        /// The header that was expected.
        header: String,
    },
    /// The credential header is present but wrong (or malformed).
    #[error("invalid {header} header")]
    Invalid {
        /// The header that was checked.
        header: String,
    },
}

impl AuthError {
    /// Stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing { .. } => "missing-credentials",
            AuthError::Invalid { .. } => "invalid-credentials",
        }
    }

    /// Always 401 Unauthorized.
    pub fn status(&self) -> u16 {
        401
    }
}

/// Case-insensitive request header lookup, so verification needs no HTTP types (the server
/// implements it for its header map). Returns the first value of `name`.
pub trait HeaderLookup {
    /// The raw value of the first header called `name` (ASCII case-insensitive).
    fn header(&self, name: &str) -> Option<&[u8]>;

    /// The request's raw query string (after `?`), for [`WebhookAuth::Query`].
    fn query(&self) -> Option<&str> {
        None
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, S> HeaderLookup for HashMap<K, V, S> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderLookup for BTreeMap<K, V> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

const AUTHORIZATION: &str = "Authorization";

impl WebhookAuth {
    /// Checks a request's headers (and, for HMAC, its raw body) against this setting.
    pub fn verify<H: HeaderLookup + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
    ) -> Result<(), AuthError> {
        match self {
            WebhookAuth::None => Ok(()),
            WebhookAuth::Bearer { token } => {
                let invalid = || AuthError::Invalid {
                    header: AUTHORIZATION.to_string(),
                };
                let value = headers
                    .header(AUTHORIZATION)
                    .ok_or_else(|| AuthError::Missing {
                        header: AUTHORIZATION.to_string(),
                    })?;
                let given = bearer_token(value).ok_or_else(invalid)?;
                tokens_equal(given, token.bytes())
                    .then_some(())
                    .ok_or_else(invalid)
            }
            WebhookAuth::Header { name, value } => {
                let given = headers.header(name).ok_or_else(|| AuthError::Missing {
                    header: name.clone(),
                })?;
                tokens_equal(given, value.bytes())
                    .then_some(())
                    .ok_or_else(|| AuthError::Invalid {
                        header: name.clone(),
                    })
            }
            WebhookAuth::HmacSha256 {
                header,
                secret,
                prefix,
            } => {
                let invalid = || AuthError::Invalid {
                    header: header.clone(),
                };
                let value = headers.header(header).ok_or_else(|| AuthError::Missing {
                    header: header.clone(),
                })?;
                let hex_sig = match prefix {
                    Some(p) => value.strip_prefix(p.as_bytes()).ok_or_else(invalid)?,
                    None => value,
                };
                // Full length only: a truncated signature must not verify as a prefix.
                let mut given = [0u8; 32];
                hex::decode_to_slice(hex_sig, &mut given).map_err(|_| invalid())?;
                if secret.bytes().is_empty() {
                    return Err(invalid());
                }
                let mut mac =
                    <Hmac<Sha256> as Mac>::new_from_slice(secret.bytes()).map_err(|_| invalid())?;
                mac.update(body);
                let expected: [u8; 32] = mac.finalize().into_bytes().into();
                ct_equal(&given, &expected)
                    .then_some(())
                    .ok_or_else(invalid)
            }
            WebhookAuth::Query { name, value } => {
                let what = format!("?{name}= query parameter");
                let given = headers
                    .query()
                    .and_then(|q| {
                        form_urlencoded::parse(q.as_bytes())
                            .find(|(k, _)| k == name.as_str())
                            .map(|(_, v)| v.into_owned())
                    })
                    .ok_or_else(|| AuthError::Missing {
                        header: what.clone(),
                    })?;
                tokens_equal(given.as_bytes(), value.bytes())
                    .then_some(())
                    .ok_or(AuthError::Invalid { header: what })
            }
        }
    }

    /// Whether anyone may call.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, WebhookAuth::None)
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, one or more spaces).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

/// Constant-time equality of a presented and a configured token, through their SHA-256 so
/// that the compared values have equal length whatever was sent. An empty configured token
/// matches nothing.
fn tokens_equal(given: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let given: [u8; 32] = Sha256::digest(given).into();
    let expected: [u8; 32] = Sha256::digest(expected).into();
    ct_equal(&given, &expected)
}

/// The one comparison of secret material: constant-time over 32 bytes.
fn ct_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    #[cfg(test)]
    tests::CT_COMPARISONS.with(|c| c.set(c.get() + 1));
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// How many times [`ct_equal`] ran on this thread: proves every path reaches it.
        pub(super) static CT_COMPARISONS: Cell<usize> = const { Cell::new(0) };
    }

    fn comparisons() -> usize {
        CT_COMPARISONS.with(Cell::get)
    }

    #[test]
    fn every_secret_comparison_is_constant_time() {
        let bearer = WebhookAuth::Bearer {
            token: Secret::new("t0k3n"),
        };
        let header = WebhookAuth::Header {
            name: "X-Gantry-Token".into(),
            value: Secret::new("s3cret"),
        };
        let hmac = WebhookAuth::HmacSha256 {
            header: "X-Hub-Signature-256".into(),
            secret: Secret::new("It's a Secret to Everybody"),
            prefix: Some("sha256=".into()),
        };
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let bad_sig = sig.replace("757", "758");
        type Case<'a> = (&'a WebhookAuth, Vec<(&'a str, &'a str)>, bool);
        let cases: Vec<Case<'_>> = vec![
            (&bearer, vec![("authorization", "Bearer t0k3n")], true),
            (&bearer, vec![("authorization", "Bearer t0k3")], false),
            (
                &bearer,
                vec![("authorization", "Bearer t0k3n-and-more")],
                false,
            ),
            (&header, vec![("x-gantry-token", "s3cret")], true),
            (&header, vec![("x-gantry-token", "")], false),
            (&hmac, vec![("x-hub-signature-256", sig)], true),
            (&hmac, vec![("x-hub-signature-256", &bad_sig)], false),
        ];
        for (auth, headers, ok) in cases {
            let before = comparisons();
            assert_eq!(
                auth.verify(&headers[..], b"Hello, World!").is_ok(),
                ok,
                "{headers:?}"
            );
            assert_eq!(comparisons(), before + 1, "{headers:?} skipped ct_equal");
        }
    }

    /// A query-string secret for senders that set only a URL (Docker Hub, Quay).
    struct WithQuery(&'static str);

    impl HeaderLookup for WithQuery {
        fn header(&self, _: &str) -> Option<&[u8]> {
            None
        }
        fn query(&self) -> Option<&str> {
            Some(self.0)
        }
    }

    #[test]
    fn query_secrets_are_compared_in_constant_time() {
        let auth = WebhookAuth::Query {
            name: "token".into(),
            value: Secret::new("s3cr3t/+="),
        };
        for (query, ok) in [
            ("token=s3cr3t%2F%2B%3D", true),
            ("a=1&token=s3cr3t/%2B=", true),
            ("token=s3cr3t", false),
            ("token=", false),
        ] {
            let before = comparisons();
            assert_eq!(auth.verify(&WithQuery(query), b"").is_ok(), ok, "{query}");
            assert_eq!(comparisons(), before + 1, "{query}");
        }
        assert!(matches!(
            auth.verify(&WithQuery("other=1"), b""),
            Err(AuthError::Missing { .. })
        ));
        assert!(auth.verify(&[("token", "s3cr3t/+=")][..], b"").is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let auth = WebhookAuth::Bearer {
            token: Secret::new("hunter2"),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn bearer_scheme_parsing() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer   abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }
}
