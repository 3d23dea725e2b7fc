//! Malformed, oversized and malicious bodies: each gets a clear error with a stable code and a
//! 4xx status, and nothing panics.

use std::collections::HashSet;

use gantry_server::webhook::{
    self, MAX_EVENTS_PER_PAYLOAD, MAX_WEBHOOK_BODY_BYTES, RegistryHint, Source, WebhookError,
};
use serde_json::{Value, json};

use super::util::{content_type, parse, parse_err, payload, payload_json};

/// A valid push event to build hostile variants from.
fn push() -> Value {
    payload_json("distribution-2.8.2-captured-push-manifest-by-tag.json")
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Responses quote at most a little of what was sent.
fn assert_bounded(e: &WebhookError) {
    assert!(
        e.to_string().len() < 600,
        "message is {} bytes",
        e.to_string().len()
    );
    assert!(
        e.detail().len() <= 1024 + 4,
        "detail is {} bytes",
        e.detail().len()
    );
}

#[test]
fn codes_are_unique_kebab_case_and_statuses_are_4xx() {
    let codes: HashSet<&str> = WebhookError::CODES.iter().copied().collect();
    assert_eq!(codes.len(), WebhookError::CODES.len());
    for code in WebhookError::CODES {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{code}"
        );
    }
    let samples = [
        (parse_err(Source::Generic, b"{"), 400),
        (parse_err(Source::Generic, b"{}"), 400),
        (parse_err(Source::Generic, br#"{"image": "A"}"#), 400),
        (
            webhook::parse(
                Source::Generic,
                b"{}",
                Some("text/plain"),
                &RegistryHint::none(),
            )
            .unwrap_err(),
            415,
        ),
        (
            parse_err(Source::Generic, &vec![b' '; MAX_WEBHOOK_BODY_BYTES + 1]),
            413,
        ),
        (
            parse_err(
                Source::Generic,
                &bytes(&json!({ "images": vec!["a"; MAX_EVENTS_PER_PAYLOAD + 1] })),
            ),
            413,
        ),
    ];
    let mut seen = HashSet::new();
    for (e, status) in samples {
        assert_eq!(e.status(), status, "{e}");
        assert!(WebhookError::CODES.contains(&e.code()), "{}", e.code());
        seen.insert(e.code());
    }
    assert_eq!(seen, codes, "every code has a sample");
}

#[test]
fn invalid_json_is_400_for_every_sender() {
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"not json".to_vec(),
        b"{\"events\": [}".to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        b"{}garbage".to_vec(),
        b"null".to_vec(),
        b"42".to_vec(),
        b"\"events\"".to_vec(),
    ];
    for source in Source::ALL {
        for body in &bodies {
            let e = parse_err(source, body);
            assert_eq!(e.code(), "invalid-json", "{source} {body:?}: {e}");
            assert_eq!(e.status(), 400);
        }
    }
}

#[test]
fn truncated_payloads_are_invalid_json() {
    for (file, source) in [
        (
            "distribution-2.8.2-captured-push-index-by-tag.json",
            Source::Distribution,
        ),
        ("gitlab-registry-push-manifest.json", Source::Gitlab),
        ("harbor-push-artifact.json", Source::Harbor),
        ("dockerhub-push.json", Source::DockerHub),
        ("quay-repo-push.json", Source::Quay),
    ] {
        let body = payload(file);
        let trimmed = body.trim_ascii_end();
        for cut in [1, trimmed.len() / 3, trimmed.len() / 2, trimmed.len() - 1] {
            let e = parse_err(source, &trimmed[..cut]);
            assert_eq!(e.code(), "invalid-json", "{file} cut at {cut}");
        }
    }
}

#[test]
fn wrong_or_missing_content_type_is_415() {
    let body = payload("distribution-2.8.2-captured-push-manifest-by-tag.json");
    for source in Source::ALL {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/xml"),
            Some(""),
            Some("application/x-www-form-urlencoded"),
        ] {
            let e = webhook::parse(source, &body, ct, &RegistryHint::none()).unwrap_err();
            assert_eq!(e.code(), "unsupported-content-type", "{source} {ct:?}");
            assert_eq!(e.status(), 415);
        }
    }
    // Each endpoint takes its sender's type, not another's.
    let e = webhook::parse(
        Source::Distribution,
        &body,
        Some("application/cloudevents+json"),
        &RegistryHint::none(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "unsupported-content-type");
    let e = webhook::parse(
        Source::Harbor,
        &payload("harbor-push-artifact.json"),
        Some("application/vnd.docker.distribution.events.v1+json"),
        &RegistryHint::none(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "unsupported-content-type");
    // The quoted content type is bounded too.
    let long = format!("application/{}", "x".repeat(100_000));
    let e = webhook::parse(Source::Generic, b"{}", Some(&long), &RegistryHint::none()).unwrap_err();
    assert_bounded(&e);
}

#[test]
fn body_over_the_cap_is_413_before_parsing() {
    let mut body = b"{\"image\": \"alpine\"}".to_vec();
    body.resize(MAX_WEBHOOK_BODY_BYTES + 1, b' ');
    for source in Source::ALL {
        let e = parse_err(source, &body);
        assert_eq!(e.code(), "body-too-large", "{source}");
        assert_eq!(e.status(), 413);
    }
    // Exactly at the cap is fine (whitespace is valid JSON padding).
    body.truncate(MAX_WEBHOOK_BODY_BYTES);
    assert_eq!(parse(Source::Generic, &body).unwrap().events.len(), 1);
}

#[test]
fn event_count_is_capped_for_every_list() {
    let pull = json!({"id": "p", "action": "pull"});
    let at_limit = json!({ "events": vec![pull.clone(); MAX_EVENTS_PER_PAYLOAD] });
    assert_eq!(
        parse(Source::Distribution, &bytes(&at_limit))
            .unwrap()
            .skipped
            .len(),
        MAX_EVENTS_PER_PAYLOAD
    );
    let over = json!({ "events": vec![pull; MAX_EVENTS_PER_PAYLOAD + 1] });
    assert_eq!(
        parse_err(Source::Distribution, &bytes(&over)).code(),
        "too-many-events"
    );

    let mut harbor = payload_json("harbor-push-artifact.json");
    let r = harbor["event_data"]["resources"][0].clone();
    harbor["event_data"]["resources"] = json!(vec![r; MAX_EVENTS_PER_PAYLOAD + 1]);
    assert_eq!(
        parse_err(Source::Harbor, &bytes(&harbor)).code(),
        "too-many-events"
    );

    let mut quay = payload_json("quay-repo-push.json");
    quay["updated_tags"] = json!(vec!["t"; MAX_EVENTS_PER_PAYLOAD + 1]);
    assert_eq!(
        parse_err(Source::Quay, &bytes(&quay)).code(),
        "too-many-events"
    );

    // `image` plus a full `images` list is one too many.
    let generic = json!({"image": "a", "images": vec!["b"; MAX_EVENTS_PER_PAYLOAD]});
    assert_eq!(
        parse_err(Source::Generic, &bytes(&generic)).code(),
        "too-many-events"
    );
}

#[test]
fn a_megabyte_of_empty_events_is_counted_not_kept() {
    // ~350,000 `{}` entries under the body cap: the parser must not build 350,000 events.
    let mut body = b"{\"events\":[".to_vec();
    while body.len() < MAX_WEBHOOK_BODY_BYTES - 8 {
        body.extend_from_slice(b"{},");
    }
    body.extend_from_slice(b"{}]}");
    let e = parse_err(Source::Distribution, &body);
    assert_eq!(e.code(), "too-many-events");
    assert_eq!(e.status(), 413);
}

#[test]
fn huge_repository_name_is_rejected_with_a_short_message() {
    let huge = "a".repeat(100 * 1024);
    let mut d = push();
    d["events"][0]["target"]["repository"] = json!(huge);
    let e = parse_err(Source::Distribution, &bytes(&d));
    assert_eq!(e.code(), "invalid-reference");
    assert!(e.to_string().contains("events[0].target.repository"), "{e}");
    assert_bounded(&e);

    let mut h = payload_json("harbor-push-artifact.json");
    h["event_data"]["repository"]["repo_full_name"] = json!(huge);
    assert_bounded(&parse_err(Source::Harbor, &bytes(&h)));

    let mut hub = payload_json("dockerhub-push.json");
    hub["repository"]["repo_name"] = json!(huge);
    assert_bounded(&parse_err(Source::DockerHub, &bytes(&hub)));

    let mut q = payload_json("quay-repo-push.json");
    q["repository"] = json!(huge);
    assert_bounded(&parse_err(Source::Quay, &bytes(&q)));

    let e = parse_err(Source::Generic, &bytes(&json!({ "image": huge })));
    assert_eq!(e.code(), "invalid-reference");
    assert_bounded(&e);

    // Long tags, digests and hosts too.
    for (field, value) in [
        ("tag", "t".repeat(100_000)),
        ("digest", format!("sha256:{}", "a".repeat(100_000))),
    ] {
        let mut d = push();
        d["events"][0]["target"][field] = json!(value);
        let e = parse_err(Source::Distribution, &bytes(&d));
        assert_eq!(e.code(), "invalid-reference", "{field}");
        assert_bounded(&e);
    }
    let mut d = push();
    d["events"][0]["request"]["host"] = json!(format!("{}.com", "h".repeat(100_000)));
    assert_bounded(&parse_err(Source::Distribution, &bytes(&d)));
}

#[test]
fn serde_messages_quoting_huge_values_are_bounded_in_detail() {
    // serde quotes a wrongly typed string whole; detail() must not.
    let mut h = payload_json("harbor-push-artifact.json");
    h["occur_at"] = json!("x".repeat(100_000));
    let e = parse_err(Source::Harbor, &bytes(&h));
    assert_eq!(e.code(), "invalid-json");
    assert_bounded(&e);
}

#[test]
fn events_that_are_not_an_array() {
    for events in [
        json!({}),
        json!("push"),
        json!(1),
        json!(true),
        json!({"0": {}}),
    ] {
        let e = parse_err(Source::Distribution, &bytes(&json!({ "events": events })));
        assert_eq!(e.code(), "invalid-json", "{events}");
    }
    for body in [json!({}), json!({"events": null}), json!({"event": []})] {
        let e = parse_err(Source::Distribution, &bytes(&body));
        assert!(
            matches!(e, WebhookError::MissingField { ref field } if field == "events"),
            "{body}: {e}"
        );
    }
    assert!(
        parse(Source::Distribution, br#"{"events": []}"#)
            .unwrap()
            .events
            .is_empty()
    );
}

#[test]
fn numbers_where_strings_belong() {
    let cases: Vec<(Source, Value)> = vec![
        (Source::Distribution, {
            let mut d = push();
            d["events"][0]["target"]["repository"] = json!(42);
            d
        }),
        (Source::Distribution, {
            let mut d = push();
            d["events"][0]["id"] = json!(42);
            d
        }),
        (Source::Distribution, {
            let mut d = push();
            d["events"][0]["action"] = json!(1);
            d
        }),
        (Source::Distribution, {
            let mut d = push();
            d["events"][0]["target"]["digest"] = json!(["sha256:x"]);
            d
        }),
        (Source::Harbor, {
            let mut h = payload_json("harbor-push-artifact.json");
            h["event_data"]["resources"][0]["tag"] = json!(5);
            h
        }),
        (Source::Harbor, {
            let mut h = payload_json("harbor-push-artifact.json");
            h["occur_at"] = json!("yesterday");
            h
        }),
        (Source::DockerHub, {
            let mut hub = payload_json("dockerhub-push.json");
            hub["push_data"]["tag"] = json!(1);
            hub
        }),
        (Source::DockerHub, {
            let mut hub = payload_json("dockerhub-push.json");
            hub["push_data"]["pushed_at"] = json!("1417566161");
            hub
        }),
        (Source::Quay, {
            let mut q = payload_json("quay-repo-push.json");
            q["updated_tags"] = json!([1, 2]);
            q
        }),
        (Source::Generic, json!({"image": 1})),
        (Source::Generic, json!({"images": "alpine"})),
    ];
    for (source, body) in cases {
        let e = parse_err(source, &bytes(&body));
        assert_eq!(e.code(), "invalid-json", "{source}: {body}");
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for source in Source::ALL {
        let mut body = b"{\"events\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', 200_000));
        let e = parse_err(source, &body);
        assert_eq!(e.code(), "invalid-json", "{source}");
    }
}

#[test]
fn one_field_cannot_rewrite_another() {
    let d0 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let cases: Vec<(&str, &str, String)> = vec![
        ("target", "repository", format!("team/app@{d0}")),
        ("target", "repository", "team/app:latest".to_string()),
        ("target", "repository", "Team/App".to_string()),
        ("target", "repository", "../etc".to_string()),
        ("target", "tag", "v1@evil".to_string()),
        ("target", "tag", "a/b".to_string()),
        ("target", "tag", "-v1".to_string()),
        ("target", "digest", "sha256:abc".to_string()),
        (
            "target",
            "digest",
            "md5:d41d8cd98f00b204e9800998ecf8427e".to_string(),
        ),
        ("request", "host", "evil.example/x".to_string()),
        ("request", "host", "user@evil.example".to_string()),
        ("request", "host", "host:port".to_string()),
    ];
    for (obj, field, value) in cases {
        let mut d = push();
        d["events"][0][obj][field] = json!(value);
        let e = parse_err(Source::Distribution, &bytes(&d));
        assert_eq!(e.code(), "invalid-reference", "{obj}.{field} = {value}");
        assert!(
            e.to_string().contains(&format!("events[0].{obj}.{field}")),
            "{e}"
        );
    }
}

#[test]
fn host_that_reads_as_a_hub_path_needs_a_configured_host() {
    // A registry reached as `http://registry/` inside a cluster: Host is `registry`.
    let mut d = push();
    d["events"][0]["request"]["host"] = json!("registry");
    let e = parse_err(Source::Distribution, &bytes(&d));
    assert_eq!(e.code(), "invalid-reference");
    assert!(
        e.detail().contains("configure the registry host"),
        "{}",
        e.detail()
    );
    let hint = RegistryHint::host("registry.internal.example").unwrap();
    let parsed = webhook::parse(
        Source::Distribution,
        &bytes(&d),
        Some(content_type(Source::Distribution)),
        &hint,
    )
    .unwrap();
    assert_eq!(
        parsed.events[0].image().registry(),
        "registry.internal.example"
    );
    // localhost and ports are hosts on their own.
    for host in [
        "localhost",
        "localhost:5000",
        "registry:5000",
        "[::1]:5000",
        "REGISTRY.example.com",
    ] {
        let mut d = push();
        d["events"][0]["request"]["host"] = json!(host);
        let parsed = parse(Source::Distribution, &bytes(&d)).unwrap();
        assert_eq!(
            parsed.events[0].image().registry(),
            host.to_ascii_lowercase()
        );
    }
}

#[test]
fn pushes_missing_what_names_the_image() {
    let cases: Vec<(&str, &str)> = vec![
        ("/events/0/action", "events[0].action"),
        ("/events/0/target", "events[0].target"),
        ("/events/0/target/repository", "events[0].target.repository"),
        ("/events/0/request", "events[0].request.host"),
        ("/events/0/request/host", "events[0].request.host"),
    ];
    for (pointer, field) in cases {
        let mut d = push();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        d.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        let e = parse_err(Source::Distribution, &bytes(&d));
        assert!(
            matches!(e, WebhookError::MissingField { field: ref f } if f == field),
            "{pointer}: {e}"
        );
    }
    // Neither tag nor digest.
    let mut d = push();
    let target = d["events"][0]["target"].as_object_mut().unwrap();
    target.remove("tag");
    target.insert("digest".into(), json!(""));
    let e = parse_err(Source::Distribution, &bytes(&d));
    assert!(
        matches!(e, WebhookError::MissingField { ref field } if field == "events[0].target.digest"),
        "{e}"
    );

    let mut hub = payload_json("dockerhub-push.json");
    hub["push_data"].as_object_mut().unwrap().remove("tag");
    assert!(
        matches!(parse_err(Source::DockerHub, &bytes(&hub)), WebhookError::MissingField { ref field } if field == "push_data.tag")
    );
    let mut h = payload_json("harbor-push-artifact.json");
    h["event_data"]["resources"][0]
        .as_object_mut()
        .unwrap()
        .remove("resource_url");
    assert!(
        matches!(parse_err(Source::Harbor, &bytes(&h)), WebhookError::MissingField { ref field } if field == "event_data.resources[0].resource_url")
    );
    let mut q = payload_json("quay-repo-push.json");
    q.as_object_mut().unwrap().remove("docker_url");
    assert!(
        matches!(parse_err(Source::Quay, &bytes(&q)), WebhookError::MissingField { ref field } if field == "docker_url")
    );
    assert!(matches!(
        parse_err(Source::Generic, b"{}"),
        WebhookError::MissingField { .. }
    ));
    assert!(matches!(
        parse_err(Source::Generic, br#"{"images": []}"#),
        WebhookError::MissingField { .. }
    ));
}

#[test]
fn events_gantry_ignores_are_skipped_even_when_odd() {
    // A pull or delete with missing or strange fields must not block the registry's queue.
    let body = json!({"events": [
        {"id": "1", "action": "pull"},
        {"id": "2", "action": "delete", "target": {"repository": "Not/Valid@all"}},
        {"id": "3", "action": "mount", "request": {"method": "X".repeat(1000)}},
        {"id": "4", "action": "pull", "request": {"method": "X".repeat(1000)}},
        {"id": "5", "action": "replicate"},
        {"id": "6", "action": "push", "target": {"mediaType": "application/octet-stream"}},
        {"id": "7", "action": "push", "target": {"mediaType": "application/vnd.oci.image.config.v1+json", "repository": "Bad Name"}},
    ]});
    let parsed = parse(Source::Distribution, &bytes(&body)).unwrap();
    assert!(parsed.events.is_empty());
    let got: Vec<Value> = parsed
        .skipped
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            json!({"reason": {"code": "pull", "method": null}, "id": "1"}),
            json!({"reason": {"code": "delete"}, "id": "2"}),
            json!({"reason": {"code": "mount"}, "id": "3"}),
            json!({"reason": {"code": "pull", "method": null}, "id": "4"}),
            json!({"reason": {"code": "other-event", "kind": "replicate"}, "id": "5"}),
            json!({"reason": {"code": "blob-push"}, "id": "6"}),
            json!({"reason": {"code": "not-a-manifest", "media_type": "application/vnd.oci.image.config.v1+json"}, "id": "7"}),
        ]
    );
    // An absurd action name is quoted, bounded.
    let body = json!({"events": [{"action": "x".repeat(10_000)}]});
    let parsed = parse(Source::Distribution, &bytes(&body)).unwrap();
    let skipped = serde_json::to_string(&parsed.skipped).unwrap();
    assert!(skipped.len() < 300, "{}", skipped.len());
}

#[test]
fn over_long_informational_fields_are_dropped_not_truncated() {
    let mut d = push();
    d["events"][0]["id"] = json!("i".repeat(10_000));
    d["events"][0]["actor"] = json!({"name": "a".repeat(10_000)});
    d["events"][0]["timestamp"] = json!("t".repeat(10_000));
    d["events"][0]["target"]["mediaType"] = json!(format!("application/{}", "m".repeat(10_000)));
    let parsed = parse(Source::Distribution, &bytes(&d)).unwrap();
    // The unknown media type skips the event; its quote is bounded and the id dropped.
    assert_eq!(parsed.skipped[0].id, None);
    assert!(serde_json::to_string(&parsed.skipped).unwrap().len() < 300);

    d["events"][0]["target"]["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    let parsed = parse(Source::Distribution, &bytes(&d)).unwrap();
    let e = &parsed.events[0];
    assert_eq!((e.id(), e.actor(), e.occurred_at()), (None, None, None));
}

#[test]
fn duplicate_keys_and_top_level_shapes() {
    let e = parse_err(Source::Generic, br#"{"image": "a", "image": "b"}"#);
    assert_eq!(e.code(), "invalid-json");
    for body in [&b"[]"[..], b"[{}]", b"\"image\"", b"true"] {
        for source in Source::ALL {
            assert!(parse(source, body).is_err(), "{source} {body:?}");
        }
    }
}

#[test]
fn content_type_messages_read_well() {
    let e = webhook::parse(Source::Quay, b"{}", None, &RegistryHint::none()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no Content-Type; this endpoint accepts application/json"
    );
    let e = webhook::parse(
        Source::Harbor,
        b"{}",
        Some("text/plain"),
        &RegistryHint::none(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported content type \"text/plain\"; this endpoint accepts application/json, application/cloudevents+json"
    );
}
