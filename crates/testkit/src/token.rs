//! An in-process Docker token server (`auth.token` of the registry config).
//!
//! The registry (distribution 2.8) trusts a token when its JWT header carries an `x5c`
//! chain that verifies against `rootcertbundle`, and the signature verifies with the leaf's
//! key. So at start we make one self-signed P-256 certificate with rcgen, give its PEM to the
//! registry as the bundle, and sign ES256 JWTs (raw `r‖s`, as JWS wants) with ring, putting
//! the same certificate in `x5c`. Claims: `iss`, `sub`, `aud` (the service, a string as 2.8
//! expects), `exp`/`nbf`/`iat`, `jti`, `access: [{type, name, actions}]` — every requested
//! action is granted to the one configured user; anyone else gets 401.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

use crate::error::{Error, Result};
use crate::http::{Request, Server, respond};

/// The `service` (JWT audience) the harness configures.
pub(crate) const SERVICE: &str = "gantry-test";
/// The `issuer` the harness configures.
pub(crate) const ISSUER: &str = "gantry-testkit";
/// Token lifetime; tests are short.
const EXPIRES_IN: u64 = 300;

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cert_b64: String,
    user: String,
    password: String,
    jti: AtomicU64,
}

/// A running token server.
#[derive(Debug)]
pub(crate) struct TokenServer {
    server: Server,
    cert_pem: String,
}

impl TokenServer {
    pub(crate) fn start(user: &str, password: &str) -> Result<TokenServer> {
        let crypto = |e: &dyn std::fmt::Display| Error::Crypto(e.to_string());
        let key_pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| crypto(&e))?;
        let params =
            rcgen::CertificateParams::new(vec![ISSUER.to_string()]).map_err(|e| crypto(&e))?;
        let cert = params.self_signed(&key_pair).map_err(|e| crypto(&e))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .map_err(|e| crypto(&e))?;
        let signer = Arc::new(Signer {
            key,
            rng,
            cert_b64: STANDARD.encode(cert.der()),
            user: user.to_string(),
            password: password.to_string(),
            jti: AtomicU64::new(0),
        });
        let server = Server::start(
            "token server",
            Arc::new(move |stream, req, _stop| {
                let (status, body) = signer.answer(&req);
                let challenge = [
                    ("WWW-Authenticate", "Basic realm=\"gantry-testkit\""),
                    ("Content-Type", "application/json"),
                ];
                let headers: &[(&str, &str)] = if status == 401 {
                    &challenge
                } else {
                    &challenge[1..]
                };
                let _ = respond(stream, status, headers, body.as_bytes());
            }),
        )?;
        Ok(TokenServer {
            server,
            cert_pem: cert.pem(),
        })
    }

    /// The realm URL for the registry config.
    pub(crate) fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }

    /// PEM of the signing certificate (the registry's `rootcertbundle`).
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
}

impl Signer {
    fn answer(&self, req: &Request) -> (u16, String) {
        if req.method != "GET" || req.path() != "/token" {
            return (404, r#"{"error":"not found"}"#.to_string());
        }
        let expected = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.user, self.password))
        );
        if req.header("authorization") != Some(expected.as_str()) {
            return (401, r#"{"error":"invalid credentials"}"#.to_string());
        }
        let query = req.query();
        let service = query
            .iter()
            .find(|(k, _)| k == "service")
            .map_or(SERVICE, |(_, v)| v.as_str());
        let access: Vec<serde_json::Value> = query
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter_map(parse_scope)
            .collect();
        match self.token(service, access) {
            Ok(t) => (
                200,
                serde_json::json!({"token": t, "access_token": t, "expires_in": EXPIRES_IN})
                    .to_string(),
            ),
            Err(e) => (500, serde_json::json!({"error": e.to_string()}).to_string()),
        }
    }

    fn token(&self, service: &str, access: Vec<serde_json::Value>) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_b64]});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": self.user,
            "aud": service,
            "exp": now + EXPIRES_IN,
            // A little slack for clock reads on either side.
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": format!("gantry-testkit-{}", self.jti.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|e| Error::Crypto(e.to_string()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }
}

/// `repository:name/with/slashes:pull,push` → `{type, name, actions}`.
fn parse_scope(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scopes() {
        assert_eq!(
            parse_scope("repository:a/b:pull,push"),
            Some(
                serde_json::json!({"type": "repository", "name": "a/b", "actions": ["pull", "push"]})
            )
        );
        assert_eq!(
            parse_scope("registry:catalog:*").map(|v| v["name"].clone()),
            Some(serde_json::json!("catalog"))
        );
        assert_eq!(parse_scope("nonsense"), None);
    }
}
