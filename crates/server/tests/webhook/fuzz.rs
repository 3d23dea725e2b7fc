//! A small deterministic mutation fuzz: every payload file, mutated byte-wise and JSON-wise by a
//! fixed-seed generator, through every parser. Nothing may panic; what parses must be
//! consistent (references round-trip, counts within the cap, messages bounded).

use gantry_server::webhook::{self, MAX_EVENTS_PER_PAYLOAD, Parsed, RegistryHint, Source};
use serde_json::{Value, json};

use super::util::{content_type, payload, payload_names};

/// Mutants per payload file and mutation style: 18 files × 2 styles × 300 × 6 parsers ≈ 65k parses.
const MUTANTS: usize = 300;

/// xorshift64*: deterministic, no dependency, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING_BYTES: &[u8] = b"{}[]\":,@/\\\0\xff 0-e.";

fn mutate_bytes(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    for _ in 0..=rng.below(4) {
        let len = b.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(32).min(len - i);
                b.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(64).min(len - i);
                let chunk = b[i..i + n].to_vec();
                let at = rng.below(len);
                b.splice(at..at, chunk);
            }
            4 => b.truncate(rng.below(len + 1)),
            _ => {
                let at = rng.below(len + 1);
                b.insert(at, INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())]);
            }
        }
    }
    b
}

/// A replacement value of another type or shape.
fn odd_value(rng: &mut Rng, old: &Value) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(1e308),
        3 => json!(""),
        // Now and then far over every length limit, usually around them.
        4 if rng.below(10) == 0 => json!("x".repeat(70_000)),
        4 => json!("x".repeat(rng.below(600))),
        5 => json!([]),
        6 => json!({}),
        7 => json!([old.clone(), old.clone()]),
        8 => json!("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        9 => json!("UPPER/Case:tag@x"),
        10 => json!(true),
        _ => match old {
            Value::String(s) => json!(format!("{s}{s}")),
            other => other.clone(),
        },
    }
}

/// Replaces one node of the document (chosen by a random walk) with an odd value, or removes it.
fn mutate_json(rng: &mut Rng, doc: &Value) -> Value {
    let mut doc = doc.clone();
    let mut node = &mut doc;
    loop {
        let descend = rng.below(3) != 0;
        let next_key: Option<Result<String, usize>> = match node {
            Value::Object(m) if descend && !m.is_empty() => {
                let k = m.keys().nth(rng.below(m.len())).cloned();
                k.map(Ok)
            }
            Value::Array(a) if descend && !a.is_empty() => Some(Err(rng.below(a.len()))),
            _ => None,
        };
        match next_key {
            Some(Ok(k)) => {
                if rng.below(8) == 0 {
                    if let Value::Object(m) = node {
                        m.remove(&k);
                    }
                    return doc;
                }
                node = node.get_mut(&k).unwrap();
            }
            Some(Err(i)) => node = node.get_mut(i).unwrap(),
            None => {
                *node = odd_value(rng, node);
                return doc;
            }
        }
    }
}

/// Parses one mutant and checks the invariants; true when it produced events.
fn check(source: Source, body: &[u8]) -> bool {
    let result = webhook::parse(
        source,
        body,
        Some(content_type(source)),
        &RegistryHint::none(),
    );
    match result {
        Ok(Parsed { events, skipped }) => {
            assert!(events.len() + skipped.len() <= MAX_EVENTS_PER_PAYLOAD + 1);
            for e in &events {
                let text = e.image().to_string();
                let again: gantry_model::ImageRef = text.parse().unwrap();
                assert_eq!(&again, e.image());
                assert_eq!(e.source(), source);
                assert!(e.id().is_none_or(|id| id.len() <= 300));
            }
            !events.is_empty()
        }
        Err(e) => {
            assert!(
                e.to_string().len() < 600,
                "{source}: {}",
                e.to_string().len()
            );
            assert!(e.detail().len() <= 1028);
            assert!((400..500).contains(&e.status()));
            false
        }
    }
}

#[test]
fn mutated_payloads_never_panic_and_stay_consistent() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed_ok = 0usize;
    for name in payload_names() {
        let body = payload(&name);
        let doc: Value = serde_json::from_slice(&body).unwrap();
        for _ in 0..MUTANTS {
            let by_bytes = mutate_bytes(&mut rng, &body);
            let by_json = serde_json::to_vec(&mutate_json(&mut rng, &doc)).unwrap();
            for mutant in [&by_bytes, &by_json] {
                for source in Source::ALL {
                    parsed_ok += usize::from(check(source, mutant));
                }
            }
        }
    }
    // The mutations must leave many payloads valid, or the fuzz only exercises the JSON parser.
    assert!(parsed_ok > 1000, "only {parsed_ok} mutants produced events");
}
