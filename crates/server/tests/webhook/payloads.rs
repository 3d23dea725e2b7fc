//! Every payload file of a supported sender, parsed by its sender's parser, compared with the
//! exact expected events and skips (serialised, so a reader sees the whole outcome).

use gantry_server::webhook::{self, PushKind, RegistryHint, Source};
use serde_json::{Value, json};

use super::util::{content_type, parse, payload, payload_json, payload_names, to_json};

const M1: &str = "sha256:defe8bf6c44107eb4ae1035a196acaf36695f70a868f0e6b031ea6491624e69e";
const M2: &str = "sha256:5cca0e4c05be6ee00a542398db59c9a5a8cb73979f64a5c992bace09aeebc797";
const INDEX: &str = "sha256:658a413d7dabf291bea8f257522990c82edd956d8944acc7ebaf562bd9baed3d";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// (payload file, sender, expected `Parsed` as JSON)
fn cases() -> Vec<(&'static str, Source, Value)> {
    vec![
        (
            "distribution-2.8.2-captured-push-manifest-by-tag.json",
            Source::Distribution,
            json!({"events": [{
                "id": "846390b5-33f2-4850-adca-15cb0160db55",
                "source": "distribution",
                "image": format!("127.0.0.1:15000/team/app:v1@{M1}"),
                "digest": M1,
                "tag": "v1",
                "media_type": OCI_MANIFEST,
                "kind": "manifest",
                "occurred_at": "2026-11-22T10:11:30.05446491Z",
                "actor": null,
            }], "skipped": []}),
        ),
        (
            // An index child, pushed by digest: no tag.
            "distribution-2.8.2-captured-push-manifest-by-digest.json",
            Source::Distribution,
            json!({"events": [{
                "id": "37712823-f6c3-4802-b752-6f4d20d18149",
                "source": "distribution",
                "image": format!("127.0.0.1:15000/team/app@{M2}"),
                "digest": M2,
                "tag": null,
                "media_type": OCI_MANIFEST,
                "kind": "manifest",
                "occurred_at": "2026-11-22T10:11:30.697131155Z",
                "actor": null,
            }], "skipped": []}),
        ),
        (
            "distribution-2.8.2-captured-push-index-by-tag.json",
            Source::Distribution,
            json!({"events": [{
                "id": "e0fe935d-2016-4730-93dc-89c39c8ca214",
                "source": "distribution",
                "image": format!("127.0.0.1:15000/team/app:v2@{INDEX}"),
                "digest": INDEX,
                "tag": "v2",
                "media_type": OCI_INDEX,
                "kind": "index",
                "occurred_at": "2026-11-22T10:11:30.714011365Z",
                "actor": null,
            }], "skipped": []}),
        ),
        (
            "distribution-2.8.2-captured-push-blob.json",
            Source::Distribution,
            json!({"events": [], "skipped": [
                {"reason": {"code": "blob-push"}, "id": "ccb4f9c5-2e84-4eff-8055-e4883179531b"},
            ]}),
        ),
        (
            "distribution-2.8.2-captured-mount-blob.json",
            Source::Distribution,
            json!({"events": [], "skipped": [
                {"reason": {"code": "mount"}, "id": "a89e23a9-fa07-4625-b95d-fa36fa61b1d7"},
            ]}),
        ),
        (
            "distribution-2.8.2-captured-pull-manifest.json",
            Source::Distribution,
            json!({"events": [], "skipped": [
                {"reason": {"code": "pull", "method": "GET"}, "id": "31dfe1b0-99e0-4b1e-a808-c1d514a932a6"},
            ]}),
        ),
        (
            // `docker push` checks existence with HEAD; Distribution reports it as a pull.
            "distribution-2.8.2-captured-pull-by-head-manifest.json",
            Source::Distribution,
            json!({"events": [], "skipped": [
                {"reason": {"code": "pull", "method": "HEAD"}, "id": "f85ff109-1c72-43c8-b649-3691e0b3c0eb"},
            ]}),
        ),
        (
            "distribution-2.8.2-captured-delete-manifest.json",
            Source::Distribution,
            json!({"events": [], "skipped": [
                {"reason": {"code": "delete"}, "id": "4debfe99-0ac5-4891-9d58-899108905162"},
            ]}),
        ),
        (
            // The same DELETE also emits one tag delete per tag that pointed at the manifest.
            "distribution-2.8.2-captured-delete-tag.json",
            Source::Distribution,
            json!({"events": [], "skipped": [
                {"reason": {"code": "delete"}, "id": "1e51a443-8b3c-40ca-b5d7-e3e35df4ca9a"},
            ]}),
        ),
        (
            // Distribution's documentation: a manifest pushed by digest, then two layer blobs
            // with a layer media type (not application/octet-stream).
            "distribution-docs-push-envelope.json",
            Source::Distribution,
            json!({"events": [{
                "id": "asdf-asdf-asdf-asdf-0",
                "source": "distribution",
                "image": "registrycluster.local/library/test@sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
                "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
                "tag": null,
                "media_type": DOCKER_MANIFEST,
                "kind": "manifest",
                "occurred_at": "2006-01-02T15:04:05Z",
                "actor": "test-actor",
            }], "skipped": [
                {"reason": {"code": "not-a-manifest", "media_type": "application/vnd.docker.container.image.rootfs.diff+x-gtar"}, "id": "asdf-asdf-asdf-asdf-1"},
                {"reason": {"code": "not-a-manifest", "media_type": "application/vnd.docker.container.image.rootfs.diff+x-gtar"}, "id": "asdf-asdf-asdf-asdf-2"},
            ]}),
        ),
        (
            "distribution-docs-pull-manifest.json",
            Source::Distribution,
            json!({"events": [], "skipped": [
                {"reason": {"code": "pull", "method": "GET"}, "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7"},
            ]}),
        ),
        (
            "gitlab-registry-push-manifest.json",
            Source::Gitlab,
            json!({"events": [{
                "id": "a582a0f3-e620-43e6-8e98-ff850fc9d984",
                "source": "gitlab",
                "image": "registry.test:5000/root/test:latest@sha256:af06af3514c44a964d3b905b498cf6493db8f1cde7c10e078213a89c87308ba0",
                "digest": "sha256:af06af3514c44a964d3b905b498cf6493db8f1cde7c10e078213a89c87308ba0",
                "tag": "latest",
                "media_type": DOCKER_MANIFEST,
                "kind": "manifest",
                "occurred_at": "2023-01-25T14:45:54.17327+11:00",
                "actor": "root",
            }], "skipped": []}),
        ),
        (
            "harbor-push-artifact.json",
            Source::Harbor,
            json!({"events": [{
                "id": null,
                "source": "harbor",
                "image": "hub.harbor.com/test-webhook/debian:latest@sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
                "digest": "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
                "tag": "latest",
                "media_type": null,
                "kind": "unknown",
                "occurred_at": "2020-04-15T03:45:08Z",
                "actor": "admin",
            }], "skipped": []}),
        ),
        (
            "harbor-pull-artifact-cloudevents.json",
            Source::Harbor,
            json!({"events": [], "skipped": [
                {"reason": {"code": "pull", "method": null}, "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2"},
            ]}),
        ),
        (
            "harbor-scanning-completed.json",
            Source::Harbor,
            json!({"events": [], "skipped": [
                {"reason": {"code": "other-event", "kind": "SCANNING_COMPLETED"}, "id": null},
            ]}),
        ),
        (
            // No digest: the tag is resolved later. The id is synthesised.
            "dockerhub-push.json",
            Source::DockerHub,
            json!({"events": [{
                "id": "svendowideit/testhook:latest@1417566161",
                "source": "dockerhub",
                "image": "docker.io/svendowideit/testhook:latest",
                "digest": null,
                "tag": "latest",
                "media_type": null,
                "kind": "unknown",
                "occurred_at": "2014-12-03T00:22:41Z",
                "actor": "trustedbuilder",
            }], "skipped": []}),
        ),
        (
            "quay-repo-push.json",
            Source::Quay,
            json!({"events": [{
                "id": null,
                "source": "quay",
                "image": "quay.io/dgangaia/test:latest",
                "digest": null,
                "tag": "latest",
                "media_type": null,
                "kind": "unknown",
                "occurred_at": null,
                "actor": null,
            }], "skipped": []}),
        ),
    ]
}

#[test]
fn every_payload_file_gives_exactly_the_expected_events_and_skips() {
    for (file, source, expected) in cases() {
        let parsed = parse(source, &payload(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(to_json(&parsed), expected, "{file}");
    }
}

#[test]
fn every_payload_file_has_a_case() {
    let covered: Vec<&str> = cases().iter().map(|(f, ..)| *f).collect();
    for name in payload_names() {
        // Headers of one delivery, used by the auth tests.
        if name == "distribution-2.8.2-captured-request-headers.json" {
            continue;
        }
        assert!(
            covered.contains(&name.as_str()),
            "{name} has no expected outcome"
        );
    }
}

#[test]
fn events_serialise_and_read_back() {
    for (file, source, _) in cases() {
        let parsed = parse(source, &payload(file)).unwrap();
        for event in &parsed.events {
            let json = serde_json::to_string(event).unwrap();
            let back: webhook::PushEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, event, "{file}");
        }
    }
    // A stored event whose digest disagrees with its image is refused.
    let parsed = parse(
        Source::Distribution,
        &payload("distribution-2.8.2-captured-push-manifest-by-tag.json"),
    )
    .unwrap();
    let mut json = serde_json::to_value(&parsed.events[0]).unwrap();
    json["digest"] = json!(M2);
    assert!(serde_json::from_value::<webhook::PushEvent>(json).is_err());
}

#[test]
fn accessors_agree_with_the_image() {
    let parsed = parse(
        Source::Distribution,
        &payload("distribution-2.8.2-captured-push-index-by-tag.json"),
    )
    .unwrap();
    let e = &parsed.events[0];
    assert_eq!(e.kind(), PushKind::Index);
    assert_eq!(e.source(), Source::Distribution);
    assert_eq!(e.tag(), Some("v2"));
    assert_eq!(e.digest().map(|d| d.to_string()).as_deref(), Some(INDEX));
    assert_eq!(e.image().registry(), "127.0.0.1:15000");
    assert_eq!(e.image().repository(), "team/app");
    assert_eq!(e.media_type(), Some(OCI_INDEX));
    assert_eq!(e.id(), Some("e0fe935d-2016-4730-93dc-89c39c8ca214"));
    assert_eq!(e.actor(), None);
}

#[test]
fn configured_registry_host_replaces_the_request_host() {
    let hint = RegistryHint::host("registry.example.com").unwrap();
    for (file, source) in [
        (
            "distribution-2.8.2-captured-push-manifest-by-tag.json",
            Source::Distribution,
        ),
        ("gitlab-registry-push-manifest.json", Source::Gitlab),
        ("harbor-push-artifact.json", Source::Harbor),
        ("quay-repo-push.json", Source::Quay),
    ] {
        let parsed =
            webhook::parse(source, &payload(file), Some(content_type(source)), &hint).unwrap();
        assert_eq!(
            parsed.events[0].image().registry(),
            "registry.example.com",
            "{file}"
        );
    }
    // Docker Hub is always docker.io; generic references name their own registry.
    let parsed = webhook::parse(
        Source::DockerHub,
        &payload("dockerhub-push.json"),
        Some("application/json"),
        &hint,
    )
    .unwrap();
    assert_eq!(parsed.events[0].image().registry(), "docker.io");
}

#[test]
fn docker_manifest_list_push_is_an_index() {
    let mut body = payload_json("distribution-2.8.2-captured-push-index-by-tag.json");
    body["events"][0]["target"]["mediaType"] =
        json!("application/vnd.docker.distribution.manifest.list.v2+json");
    let parsed = parse(Source::Distribution, &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(parsed.events[0].kind(), PushKind::Index);
}

#[test]
fn push_without_media_type_needs_the_manifest_fetched() {
    let mut body = payload_json("distribution-2.8.2-captured-push-manifest-by-tag.json");
    body["events"][0]["target"]
        .as_object_mut()
        .unwrap()
        .remove("mediaType");
    let parsed = parse(Source::Distribution, &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(parsed.events[0].kind(), PushKind::Unknown);
    assert_eq!(parsed.events[0].media_type(), None);
}

#[test]
fn distribution_batch_keeps_order_and_mixes_events_and_skips() {
    let files = [
        "distribution-2.8.2-captured-push-blob.json",
        "distribution-2.8.2-captured-push-manifest-by-tag.json",
        "distribution-2.8.2-captured-push-manifest-by-digest.json",
        "distribution-2.8.2-captured-push-index-by-tag.json",
        "distribution-2.8.2-captured-pull-by-head-manifest.json",
    ];
    let events: Vec<Value> = files
        .iter()
        .map(|f| payload_json(f)["events"][0].clone())
        .collect();
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    let parsed = parse(Source::Distribution, &body).unwrap();
    let images: Vec<String> = parsed
        .events
        .iter()
        .map(|e| e.image().to_string())
        .collect();
    assert_eq!(
        images,
        [
            format!("127.0.0.1:15000/team/app:v1@{M1}"),
            format!("127.0.0.1:15000/team/app@{M2}"),
            format!("127.0.0.1:15000/team/app:v2@{INDEX}"),
        ]
    );
    let codes: Vec<&str> = parsed.skipped.iter().map(|s| s.reason.code()).collect();
    assert_eq!(codes, ["blob-push", "pull"]);
}

#[test]
fn distribution_3x_envelope_media_type_is_accepted() {
    let body = payload("distribution-2.8.2-captured-push-manifest-by-tag.json");
    for ct in [
        "application/vnd.docker.distribution.events.v2+json",
        "application/json",
        "application/json; charset=utf-8",
        "Application/VND.Docker.Distribution.Events.V1+JSON",
    ] {
        let parsed = webhook::distribution::parse(&body, Some(ct), &RegistryHint::none()).unwrap();
        assert_eq!(parsed.events.len(), 1, "{ct}");
    }
}

#[test]
fn gitlab_rename_is_skipped() {
    let body = json!({"events": [{
        "id": "r1",
        "action": "rename",
        "target": {"repository": "group/old", "rename": {"type": "name", "from": "old", "to": "new"}},
        "actor": {"name": "root", "user_type": "gitlab_or_ldap"},
    }]});
    let parsed = parse(Source::Gitlab, &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(
        to_json(&parsed),
        json!({"events": [], "skipped": [{"reason": {"code": "rename"}, "id": "r1"}]})
    );
}

#[test]
fn harbor_cloudevents_push_drops_the_digest_posing_as_tag() {
    let mut body = payload_json("harbor-pull-artifact-cloudevents.json");
    body["type"] = json!("harbor.artifact.pushed");
    let parsed = webhook::harbor::parse(
        &serde_json::to_vec(&body).unwrap(),
        Some("application/cloudevents+json"),
        &RegistryHint::none(),
    )
    .unwrap();
    let d = "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c";
    assert_eq!(
        to_json(&parsed),
        json!({"events": [{
            "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2",
            "source": "harbor",
            "image": format!("harbor.dev/library/busybox@{d}"),
            "digest": d,
            "tag": null,
            "media_type": null,
            "kind": "unknown",
            "occurred_at": "2023-03-06T06:08:43Z",
            "actor": "robot$library+scanner-Trivy-51fe4548-bbe5-11ed-9217-0242ac14000d",
        }], "skipped": []})
    );
}

#[test]
fn harbor_several_resources_get_distinct_ids() {
    let mut body = payload_json("harbor-pull-artifact-cloudevents.json");
    body["type"] = json!("harbor.artifact.pushed");
    let r = body["data"]["resources"][0].clone();
    body["data"]["resources"] = json!([r.clone(), r]);
    let parsed = parse(Source::Harbor, &serde_json::to_vec(&body).unwrap()).unwrap();
    let ids: Vec<_> = parsed.events.iter().map(|e| e.id()).collect();
    assert_eq!(
        ids,
        [
            Some("4b2f89a6-548d-4c12-9993-a1f5790b97d2#0"),
            Some("4b2f89a6-548d-4c12-9993-a1f5790b97d2#1")
        ]
    );
}

#[test]
fn harbor_nested_project_path_and_scan_events() {
    // Harbor repositories nest below the project: `test/alpine/helm`.
    let mut body = payload_json("harbor-scanning-completed.json");
    body["type"] = json!("PUSH_ARTIFACT");
    let parsed = parse(Source::Harbor, &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(
        parsed.events[0].image().to_string(),
        "harbor.xxx.xxxx.com/test/alpine/helm:3.8.1@sha256:b50334049354ed01330403212605dce2f4676a4e787ed113506861d9cf3c5424"
    );
    for (kind, code) in [
        ("DELETE_ARTIFACT", "delete"),
        ("harbor.artifact.deleted", "delete"),
        ("PULL_ARTIFACT", "pull"),
        ("QUOTA_EXCEED", "other-event"),
        ("harbor.scan.completed", "other-event"),
    ] {
        body["type"] = json!(kind);
        let parsed = parse(Source::Harbor, &serde_json::to_vec(&body).unwrap()).unwrap();
        assert!(parsed.events.is_empty(), "{kind}");
        assert_eq!(parsed.skipped[0].reason.code(), code, "{kind}");
    }
}

#[test]
fn quay_one_event_per_updated_tag_and_empty_tags_skipped() {
    let mut body = payload_json("quay-repo-push.json");
    body["updated_tags"] = json!(["latest", "v1.2", "v1"]);
    let parsed = parse(Source::Quay, &serde_json::to_vec(&body).unwrap()).unwrap();
    let images: Vec<String> = parsed
        .events
        .iter()
        .map(|e| e.image().to_string())
        .collect();
    assert_eq!(
        images,
        [
            "quay.io/dgangaia/test:latest",
            "quay.io/dgangaia/test:v1.2",
            "quay.io/dgangaia/test:v1"
        ]
    );
    body["updated_tags"] = json!([]);
    let parsed = parse(Source::Quay, &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(
        to_json(&parsed),
        json!({"events": [], "skipped": [{"reason": {"code": "no-tags"}, "id": null}]})
    );
}

#[test]
fn dockerhub_float_timestamp_and_official_image() {
    let mut body = payload_json("dockerhub-push.json");
    body["push_data"]["pushed_at"] = json!(1_417_566_161.5);
    body["repository"]["repo_name"] = json!("ubuntu");
    let parsed = parse(Source::DockerHub, &serde_json::to_vec(&body).unwrap()).unwrap();
    let e = &parsed.events[0];
    assert_eq!(e.image().to_string(), "docker.io/library/ubuntu:latest");
    assert_eq!(e.id(), Some("ubuntu:latest@1417566161"));
    assert_eq!(e.occurred_at(), Some("2014-12-03T00:22:41Z"));
}

#[test]
fn generic_single_list_and_ids() {
    let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let parsed = parse(Source::Generic, br#"{"image": "alpine"}"#).unwrap();
    assert_eq!(
        to_json(&parsed),
        json!({"events": [{
            "id": null, "source": "generic", "image": "docker.io/library/alpine:latest",
            "digest": null, "tag": "latest", "media_type": null, "kind": "unknown",
            "occurred_at": null, "actor": null,
        }], "skipped": []})
    );
    let body = json!({"id": "ci-42", "image": "ghcr.io/o/app:v1", "images": [format!("registry:5000/app@{d}"), "bitnami/Redis:7"]});
    let err = parse(Source::Generic, &serde_json::to_vec(&body).unwrap()).unwrap_err();
    assert_eq!(err.code(), "invalid-reference");
    assert!(err.to_string().contains("images[1]"), "{err}");

    let body = json!({"id": "ci-42", "image": "ghcr.io/o/app:v1", "images": [format!("registry:5000/app@{d}")]});
    let parsed = parse(Source::Generic, &serde_json::to_vec(&body).unwrap()).unwrap();
    let got: Vec<(Option<&str>, String)> = parsed
        .events
        .iter()
        .map(|e| (e.id(), e.image().to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("ci-42#0"), "ghcr.io/o/app:v1".to_string()),
            (Some("ci-42#1"), format!("registry:5000/app@{d}")),
        ]
    );
}
