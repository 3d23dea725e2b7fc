//! The `distribution-2.8.2-captured-*.json` payloads are recordings of Debian's
//! `docker-registry` (the one the harness runs): this test records them again — the same
//! operations against a fresh `RegistryHarness` whose notification endpoint is a listener
//! here — and checks that every committed capture has exactly the shape of the event the live
//! registry sends for that operation (every key path, every value's JSON type, and the values
//! that name the operation: action, target media type, request method, tag present or not).
//! Ids, digests, times and ports differ from one recording to the next, so they are not
//! compared; the parsers' expectations for those values are in `payloads.rs`.
//!
//! `GANTRY_RECORD_DIR=DIR cargo test -p gantry-server --test server recorded` also writes the
//! fresh recordings into DIR under the committed names, to replace the files after review
//! (the expected ids and digests in `payloads.rs` then change with them).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_model::oci::Compression;
use gantry_testkit::{
    Artifact, ImageBuilder, IndexBuilder, LayerBuilder, RegistryClient, RegistryHarness,
    RegistryOptions,
};
use serde_json::Value;

use super::util::payload_json;

/// One POST the registry made: its headers and body.
#[derive(Debug, Clone)]
struct Delivery {
    headers: BTreeMap<String, String>,
    body: Value,
}

/// A listener that answers 200 to every POST and keeps what it got.
fn capture() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = BTreeMap::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_string(), v.trim().to_string());
                        }
                    }
                    let len = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if let Ok(body) = serde_json::from_slice(&body) {
                        sink.lock().unwrap().push(Delivery { headers, body });
                    }
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    (url, got)
}

/// Every key path of a document with the JSON type at it (`events/*/target/size: number`).
fn shape(v: &Value, path: &str, out: &mut BTreeMap<String, &'static str>) {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.insert(path.to_string(), kind);
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| shape(v, &format!("{path}/{k}"), out)),
        // Elements share one path: how many references an index has is not its shape.
        Value::Array(a) => a.iter().for_each(|v| shape(v, &format!("{path}/*"), out)),
        _ => {}
    }
}

fn shape_of(v: &Value) -> BTreeMap<String, &'static str> {
    let mut out = BTreeMap::new();
    shape(v, "", &mut out);
    out
}

/// What names the operation of a one-event envelope.
fn operation(body: &Value) -> (String, String, String, bool) {
    let e = &body["events"][0];
    (
        e["action"].as_str().unwrap_or_default().to_string(),
        e["target"]["mediaType"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        e["request"]["method"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        e["target"]["tag"].is_string(),
    )
}

#[test]
fn committed_distribution_captures_have_the_shape_the_harness_registry_sends() {
    let (url, got) = capture();
    let registry = RegistryHarness::start_with_options(RegistryOptions {
        config_patch: Some(serde_json::json!({"notifications": {
            "events": {"includereferences": true},
            "endpoints": [{
                "name": "record",
                "url": url,
                "headers": {"Authorization": ["Bearer test-token"]},
                "timeout": "3s",
                "threshold": 3,
                "backoff": "1s",
            }],
        }})),
        ..RegistryOptions::default()
    })
    .unwrap();
    let client = RegistryClient::new(&registry, None);

    // push blob + manifest by tag; an index (children by digest) by tag; a mount; GET and
    // HEAD of a manifest; a manifest DELETE (which also deletes its tag).
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/motd", "recorded\n"))
        .build()
        .unwrap();
    image.push(&registry, "team/app", Some("v1"), None).unwrap();
    let arm = ImageBuilder::new()
        .platform(gantry_model::Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: None,
        })
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/motd", "arm\n"))
        .build()
        .unwrap();
    let index = IndexBuilder::new()
        .image(image.clone())
        .image(arm)
        .build()
        .unwrap();
    index.push(&registry, "team/app", Some("v2"), None).unwrap();
    let layer = image.layers[0].digest.to_string();
    client
        .request(
            "POST",
            &format!("/v2/team/other/blobs/uploads/?mount={layer}&from=team/app"),
            &[],
        )
        .unwrap();
    let accept = [(
        "Accept",
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
    )];
    client
        .request("GET", "/v2/team/app/manifests/v1", &accept)
        .unwrap();
    client
        .request("HEAD", "/v2/team/app/manifests/v2", &accept)
        .unwrap();
    client
        .request(
            "DELETE",
            &format!("/v2/team/app/manifests/{}", image.manifest_digest),
            &[],
        )
        .unwrap();

    // Deliveries are asynchronous: wait for the last operation's two events.
    let deadline = Instant::now() + Duration::from_secs(20);
    let recorded: Vec<Delivery> = loop {
        let now = got.lock().unwrap().clone();
        let events = now
            .iter()
            .flat_map(|d| d.body["events"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["action"] == "delete")
            .count();
        if events >= 2 || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // One event per envelope, as the committed files hold them (the registry may batch).
    let singles: Vec<Value> = recorded
        .iter()
        .flat_map(|d| d.body["events"].as_array().cloned().unwrap_or_default())
        .map(|e| serde_json::json!({"events": [e]}))
        .collect();

    let names = [
        "push-blob",
        "push-manifest-by-tag",
        "push-manifest-by-digest",
        "push-index-by-tag",
        "mount-blob",
        "pull-manifest",
        "pull-by-head-manifest",
        "delete-manifest",
        "delete-tag",
    ];
    let record_dir = std::env::var_os("GANTRY_RECORD_DIR").map(std::path::PathBuf::from);
    for name in names {
        let file = format!("distribution-2.8.2-captured-{name}.json");
        let committed = payload_json(&file);
        let wanted = operation(&committed);
        let live = singles
            .iter()
            .find(|s| operation(s) == wanted && shape_of(s) == shape_of(&committed))
            .unwrap_or_else(|| {
                let same_op: Vec<_> = singles.iter().filter(|s| operation(s) == wanted).collect();
                panic!(
                    "{file}: no live event of operation {wanted:?} with its shape.\n\
                     committed shape: {:#?}\nlive events of that operation: {same_op:#?}",
                    shape_of(&committed)
                )
            });
        if let Some(dir) = &record_dir {
            std::fs::create_dir_all(dir).unwrap();
            let text = serde_json::to_string_pretty(live).unwrap();
            std::fs::write(dir.join(&file), text + "\n").unwrap();
        }
    }

    // The headers of a delivery, as committed (values of Host and Content-Length vary).
    let committed = payload_json("distribution-2.8.2-captured-request-headers.json");
    let delivery = &recorded[0];
    for (key, value) in committed["headers"].as_object().unwrap() {
        let live = delivery
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str());
        assert!(
            live.is_some(),
            "the registry no longer sends {key}: {:?}",
            delivery.headers
        );
        if !["Host", "Content-Length"].contains(&key.as_str()) {
            assert_eq!(live, value.as_str(), "header {key}");
        }
    }
}
