//! Caller authentication: the right secret passes, a wrong, missing, malformed or truncated one
//! is refused with 401, whatever the header's spelling.

use std::collections::HashMap;

use gantry_server::webhook::auth::{AuthError, Secret, WebhookAuth};

use super::util::payload_json;

/// GitHub's documented test vector (docs.github.com, validating webhook deliveries).
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_BODY: &[u8] = b"Hello, World!";
const GITHUB_SIG: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn github() -> WebhookAuth {
    WebhookAuth::HmacSha256 {
        header: "X-Hub-Signature-256".into(),
        secret: Secret::new(GITHUB_SECRET),
        prefix: Some("sha256=".into()),
    }
}

fn bearer(token: &str) -> WebhookAuth {
    WebhookAuth::Bearer {
        token: Secret::new(token),
    }
}

fn missing(header: &str) -> Result<(), AuthError> {
    Err(AuthError::Missing {
        header: header.into(),
    })
}

fn invalid(header: &str) -> Result<(), AuthError> {
    Err(AuthError::Invalid {
        header: header.into(),
    })
}

#[test]
fn bearer_token_from_a_real_distribution_delivery() {
    // Headers Debian's docker-registry 2.8.2 sent with `Authorization: [Bearer test-token]`.
    let captured = payload_json("distribution-2.8.2-captured-request-headers.json");
    let headers: HashMap<String, String> = captured["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(bearer("test-token").verify(&headers, b"{}"), Ok(()));
    assert_eq!(
        bearer("other-token").verify(&headers, b"{}"),
        invalid("Authorization")
    );
}

#[test]
fn bearer_right_wrong_missing_malformed() {
    let auth = bearer("s3cr3t");
    let ok = |v: &str| auth.verify(&[("Authorization", v)][..], b"");
    assert_eq!(ok("Bearer s3cr3t"), Ok(()));
    assert_eq!(ok("bearer s3cr3t"), Ok(()));
    assert_eq!(ok("BEARER  s3cr3t"), Ok(()));
    for bad in [
        "Bearer s3cr3",
        "Bearer s3cr3t ",
        "Bearer S3CR3T",
        "s3cr3t",
        "Basic s3cr3t",
        "Bearer",
        "Bearer ",
        "",
    ] {
        assert_eq!(ok(bad), invalid("Authorization"), "{bad:?}");
    }
    // Header names are case-insensitive.
    assert_eq!(
        auth.verify(&[("authorization", "Bearer s3cr3t")][..], b""),
        Ok(())
    );
    assert_eq!(
        auth.verify(&[("X-Other", "Bearer s3cr3t")][..], b""),
        missing("Authorization")
    );
    let none: [(&str, &str); 0] = [];
    assert_eq!(auth.verify(&none[..], b""), missing("Authorization"));
}

#[test]
fn shared_secret_header() {
    let auth = WebhookAuth::Header {
        name: "X-Gantry-Token".into(),
        value: Secret::new("abc123"),
    };
    assert_eq!(
        auth.verify(&vec![("x-gantry-token", "abc123")], b""),
        Ok(())
    );
    assert_eq!(
        auth.verify(&vec![("X-GANTRY-TOKEN", "abc123")], b""),
        Ok(())
    );
    for bad in ["abc12", "abc1234", "ABC123", ""] {
        assert_eq!(
            auth.verify(&vec![("X-Gantry-Token", bad)], b""),
            invalid("X-Gantry-Token"),
            "{bad:?}"
        );
    }
    assert_eq!(
        auth.verify(&vec![("Authorization", "abc123")], b""),
        missing("X-Gantry-Token")
    );
    // Non-UTF-8 header bytes are just wrong, not a crash.
    assert_eq!(
        auth.verify(&vec![("X-Gantry-Token", &[0xff, 0xfe][..])], b""),
        invalid("X-Gantry-Token")
    );
}

#[test]
fn hmac_good_bad_truncated() {
    let auth = github();
    let check = |v: &str, body: &[u8]| auth.verify(&[("X-Hub-Signature-256", v)][..], body);
    assert_eq!(check(&format!("sha256={GITHUB_SIG}"), GITHUB_BODY), Ok(()));
    assert_eq!(
        check(
            &format!("sha256={}", GITHUB_SIG.to_uppercase()),
            GITHUB_BODY
        ),
        Ok(())
    );
    let h = "X-Hub-Signature-256";
    // Another body, a flipped nibble, a truncated or extended signature, no prefix, not hex.
    assert_eq!(
        check(&format!("sha256={GITHUB_SIG}"), b"Hello, World?"),
        invalid(h)
    );
    assert_eq!(
        check(&format!("sha256=8{}", &GITHUB_SIG[1..]), GITHUB_BODY),
        invalid(h)
    );
    assert_eq!(
        check(&format!("sha256={}", &GITHUB_SIG[..62]), GITHUB_BODY),
        invalid(h)
    );
    assert_eq!(
        check(&format!("sha256={}", &GITHUB_SIG[..32]), GITHUB_BODY),
        invalid(h)
    );
    assert_eq!(
        check(&format!("sha256={GITHUB_SIG}00"), GITHUB_BODY),
        invalid(h)
    );
    assert_eq!(check(GITHUB_SIG, GITHUB_BODY), invalid(h));
    assert_eq!(
        check(&format!("sha1={GITHUB_SIG}"), GITHUB_BODY),
        invalid(h)
    );
    assert_eq!(
        check(&format!("sha256={}", "zz".repeat(32)), GITHUB_BODY),
        invalid(h)
    );
    assert_eq!(check("sha256=", GITHUB_BODY), invalid(h));
    assert_eq!(check("", GITHUB_BODY), invalid(h));
    assert_eq!(
        auth.verify(
            &[("X-Hub-Signature", format!("sha1={GITHUB_SIG}"))][..],
            GITHUB_BODY
        ),
        missing(h)
    );
    // Bare hex when no prefix is configured.
    let bare = WebhookAuth::HmacSha256 {
        header: "X-Signature".into(),
        secret: Secret::new(GITHUB_SECRET),
        prefix: None,
    };
    assert_eq!(
        bare.verify(&[("x-signature", GITHUB_SIG)][..], GITHUB_BODY),
        Ok(())
    );
    assert_eq!(
        bare.verify(
            &[("x-signature", format!("sha256={GITHUB_SIG}"))][..],
            GITHUB_BODY
        ),
        invalid("X-Signature")
    );
}

#[test]
fn empty_configured_secrets_match_nothing() {
    assert_eq!(
        bearer("").verify(&[("Authorization", "Bearer ")][..], b""),
        invalid("Authorization")
    );
    let header = WebhookAuth::Header {
        name: "X-Token".into(),
        value: Secret::new(""),
    };
    assert_eq!(
        header.verify(&[("X-Token", "")][..], b""),
        invalid("X-Token")
    );
    let hmac = WebhookAuth::HmacSha256 {
        header: "X-Sig".into(),
        secret: Secret::new(""),
        prefix: None,
    };
    // HMAC-SHA256 with an empty key over an empty body.
    let sig = "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad";
    assert_eq!(hmac.verify(&[("X-Sig", sig)][..], b""), invalid("X-Sig"));
}

#[test]
fn none_lets_everyone_in_and_errors_are_401() {
    let none: [(&str, &str); 0] = [];
    assert_eq!(WebhookAuth::None.verify(&none[..], b"anything"), Ok(()));
    let e = bearer("x").verify(&none[..], b"").unwrap_err();
    assert_eq!((e.status(), e.code()), (401, "missing-credentials"));
    let e = bearer("x")
        .verify(&[("Authorization", "Bearer y")][..], b"")
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (401, "invalid-credentials"));
    // The message names the header, never the secret.
    assert_eq!(e.to_string(), "invalid Authorization header");
}
