//! secrets: credentials shipped in a layer — private keys, cloud and forge tokens, `.env`
//! files, registry and package-index credentials.
//!
//! Every layer is scanned, including files a later layer deletes: the bytes still ship in
//! the blob and anyone who pulls the image can read them. The facts mark those `deleted`.
//!
//! **How a file is scanned.** The analyzer asks for every regular file
//! ([`super::EveryFile`]) except what cannot hold a readable credential: empty files, media,
//! archives and compiled objects by extension (`.png`, `.gz`, `.so`, `.pyc`, `.jar`, …), and
//! trees of locale data, man pages, time zones and dpkg's bookkeeping. Key material keeps its
//! usual names (`.pem`, `.key`, `.crt`, `id_rsa`) and is always read. Of each file at most
//! [`MAX_BYTES`] are read; a file with a NUL byte in its first 8 KiB is binary and is not
//! scanned for content. One Aho-Corasick automaton over the literal anchors of every rule
//! (`PRIVATE KEY-----`, `AKIA`, `ghp_`, …) runs over the bytes; only the rules whose anchors
//! occur run their regex to confirm. A few rules depend on the file's name instead (`.env`,
//! `.pypirc`, `.git-credentials`, `.docker/config.json`, kube configs, `id_rsa`).
//!
//! **Nothing secret is stored.** A match keeps the rule, the path and a redacted form: the
//! first 4 characters and `…` (nothing at all for values shorter than 8), the variable name
//! for assignments, the `-----BEGIN … PRIVATE KEY-----` line for keys (a header, not key
//! material).
//!
//! Config `Env` and history `created_by` are scanned by the facts with [`scan_text`].
//!
//! **Cost** (`examples/analyze_bench.rs`, 50,000 files / 100 MiB of small text, binaries and
//! media, 2 cores): the walk alone takes about 150 ms uncompressed (320 ms gzip), the other
//! built-in analyzers add nothing measurable, and this one about 90 ms — 60 ms of it the
//! automaton pass at about 1.1 GB/s, the rest copying content into the shared buffer.
//! A DFA or disabling the automaton's own prefilter measured the same.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use gantry_model::fs::FileEntry;
use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use super::{Analyzer, EveryFile, Interest, LayerAnalysis};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "secrets";

/// Bytes read from each file. Credentials files, keys, `.env` and config files are a few
/// KiB; 1 MiB covers any of them many times over and the head of large text files (bundled
/// JavaScript, logs), while a layer of 50,000 small files still costs only the copy and one
/// automaton pass each. Beyond it a file is scanned partially: a key appended after the
/// first MiB of a large text file is missed.
pub const MAX_BYTES: usize = 1024 * 1024;

/// A NUL byte in this many leading bytes marks a binary file.
const BINARY_SNIFF: usize = 8 * 1024;

/// Matches kept per file: a test fixture full of keys says what it is after a few.
const MAX_PER_FILE: usize = 16;

/// Matches kept per layer; beyond it an unknown says the list is cut.
const MAX_PER_LAYER: usize = 1000;

/// One credential found in a layer file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecretHit {
    /// Path in the layer.
    pub path: String,
    /// Stable rule id (see [`rules`]).
    pub rule: String,
    /// What the rule detects.
    pub description: String,
    /// Redacted form: never the secret itself.
    pub redacted: String,
}

/// One credential found in a text (see [`scan_text`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretMatch {
    /// Stable rule id.
    pub rule: &'static str,
    /// What the rule detects.
    pub description: &'static str,
    /// Redacted form.
    pub redacted: String,
}

/// How much of a match may be shown.
#[derive(Debug, Clone, Copy)]
enum Redact {
    /// The first n characters, then `…`.
    Keep(usize),
    /// The captured text is not secret (a PEM header): shown, then ` …`.
    Header,
}

/// A rule that applies to any text: literal anchors for the prefilter and a regex whose
/// capture group 1 is the secret.
#[derive(Debug)]
struct ContentRule {
    id: &'static str,
    description: &'static str,
    anchors: &'static [&'static str],
    pattern: &'static str,
    redact: Redact,
    /// Values containing this are documentation examples (`AKIAIOSFODNN7EXAMPLE`).
    example: Option<&'static str>,
}

/// The content rules, most specific first: a later rule's match overlapping an earlier
/// one's is the same secret and is dropped.
const CONTENT_RULES: &[ContentRule] = &[
    ContentRule {
        id: "private-key",
        description: "private key (PEM, OpenSSH or PGP)",
        anchors: &["PRIVATE KEY-----", "PRIVATE KEY BLOCK-----"],
        // The header, then (for encrypted PEM and PGP armour) header lines, then at least 40
        // characters of key material: a source file that merely mentions the marker
        // (`b"-----BEGIN PRIVATE KEY-----"`) does not match. `\n` escapes are allowed for
        // keys embedded in JSON (cloud service-account files).
        pattern: r"(?-u)(-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----)(?:\s|\\[rn])+(?:[A-Za-z-]+:[^\r\n\\]*(?:\s|\\[rn])+)*[A-Za-z0-9+/=]{40}",
        redact: Redact::Header,
        example: None,
    },
    ContentRule {
        id: "aws-access-key-id",
        description: "AWS access key id",
        anchors: &["AKIA", "ASIA"],
        pattern: r"(?-u)\b((?:AKIA|ASIA)[0-9A-Z]{16})\b",
        redact: Redact::Keep(4),
        example: Some("EXAMPLE"),
    },
    ContentRule {
        id: "aws-secret-access-key",
        description: "AWS secret access key",
        anchors: &[
            "secret_access_key",
            "SECRET_ACCESS_KEY",
            "SecretAccessKey",
            "secretAccessKey",
        ],
        pattern: r#"(?i-u)(?:aws_?)?secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        redact: Redact::Keep(4),
        example: Some("EXAMPLEKEY"),
    },
    ContentRule {
        id: "github-token",
        description: "GitHub token",
        anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        pattern: r"(?-u)\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{50,255})\b",
        redact: Redact::Keep(4),
        example: None,
    },
    ContentRule {
        id: "gitlab-token",
        description: "GitLab personal access token",
        anchors: &["glpat-"],
        pattern: r"(?-u)\b(glpat-[A-Za-z0-9_-]{20,})",
        redact: Redact::Keep(4),
        example: None,
    },
    ContentRule {
        id: "slack-token",
        description: "Slack token",
        anchors: &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"],
        pattern: r"(?-u)\b(xox[baprs]-[0-9A-Za-z]{10,}(?:-[0-9A-Za-z]+)*)",
        redact: Redact::Keep(4),
        example: None,
    },
    ContentRule {
        id: "slack-webhook",
        description: "Slack incoming webhook URL",
        anchors: &["hooks.slack.com/services/"],
        pattern: r"(?-u)(https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{20,})",
        redact: Redact::Keep(33),
        example: None,
    },
    ContentRule {
        id: "stripe-secret-key",
        description: "Stripe live secret key",
        anchors: &["sk_live_", "rk_live_"],
        pattern: r"(?-u)\b((?:sk|rk)_live_[0-9A-Za-z]{20,})",
        redact: Redact::Keep(4),
        example: None,
    },
    ContentRule {
        id: "google-api-key",
        description: "Google API key",
        anchors: &["AIza"],
        pattern: r"(?-u)\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
        redact: Redact::Keep(4),
        example: None,
    },
    ContentRule {
        id: "npm-token",
        description: "npm access token",
        anchors: &["npm_"],
        pattern: r"(?-u)\b(npm_[A-Za-z0-9]{36})(?:[^A-Za-z0-9]|$)",
        redact: Redact::Keep(4),
        example: None,
    },
    ContentRule {
        id: "npmrc-auth-token",
        description: "npm registry _authToken",
        anchors: &["_authToken"],
        // `${NPM_TOKEN}` (read from the environment at run time) is the safe form: skipped.
        pattern: r#"(?-u)_authToken\s*=\s*["']?([^\s"'$][^\s"']*)"#,
        redact: Redact::Keep(4),
        example: None,
    },
    ContentRule {
        id: "kubeconfig-client-key",
        description: "Kubernetes client key (client-key-data)",
        anchors: &["client-key-data"],
        pattern: r#"(?-u)client-key-data:\s*["']?([A-Za-z0-9+/=]{20,})"#,
        redact: Redact::Keep(4),
        example: None,
    },
];

/// Rules that depend on the file's name (not anchored by the prefilter).
const FILE_RULES: &[(&str, &str)] = &[
    ("dotenv-secret", ".env file assigns a secret-named variable"),
    ("pypirc-password", "password in .pypirc"),
    ("git-credentials", "credentials in .git-credentials"),
    (
        "docker-config-auth",
        "registry credentials in .docker/config.json",
    ),
    ("kubeconfig-token", "bearer token in a kube config"),
    ("ssh-private-key-file", "SSH private key file (by name)"),
];

/// The rule applied to config `Env` entries and history lines by [`scan_text`].
const VARIABLE_RULE: (&str, &str) = (
    "secret-variable",
    "secret-named variable with a value (ENV, ARG or RUN)",
);

/// Every rule id with its description, in a fixed order (for docs and tests).
pub fn rules() -> Vec<(&'static str, &'static str)> {
    CONTENT_RULES
        .iter()
        .map(|r| (r.id, r.description))
        .chain(FILE_RULES.iter().copied())
        .chain([VARIABLE_RULE])
        .collect()
}

fn file_rule(id: &str) -> (&'static str, &'static str) {
    FILE_RULES
        .iter()
        .copied()
        .find(|(i, _)| *i == id)
        .unwrap_or(("unknown", "unknown"))
}

struct Compiled {
    prefilter: AhoCorasick,
    /// For each automaton pattern, the content rule it anchors.
    anchor_rule: Vec<usize>,
    content: Vec<Regex>,
    /// `NAME=value` in env and history (upper-case names, as variables are written).
    variable: Regex,
    /// `NAME=value` lines of a `.env` file (any case).
    dotenv: Regex,
    pypirc: Regex,
    git_credentials: Regex,
    kube_token: Regex,
    docker_auth: Regex,
    /// `name=value` of any case, for redaction ([`redact_text`]).
    assignment: Regex,
}

/// Compiled once. `None` only if a pattern above does not compile — a bug that a unit test
/// catches; the analyzer then reports an unknown per layer instead of failing quietly.
static COMPILED: LazyLock<Option<Compiled>> = LazyLock::new(compile);

fn compile() -> Option<Compiled> {
    let mut anchors = Vec::new();
    let mut anchor_rule = Vec::new();
    for (i, r) in CONTENT_RULES.iter().enumerate() {
        for a in r.anchors {
            anchors.push(*a);
            anchor_rule.push(i);
        }
    }
    let prefilter = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(&anchors)
        .ok()?;
    let content = CONTENT_RULES
        .iter()
        .map(|r| Regex::new(r.pattern).ok())
        .collect::<Option<Vec<_>>>()?;
    Some(Compiled {
        prefilter,
        anchor_rule,
        content,
        variable: Regex::new(
            r#"(?-u)(?:^|[^A-Za-z0-9_])([A-Z][A-Z0-9_]*)=("[^"]*"|'[^']*'|[^\s"';&|)]*)"#,
        )
        .ok()?,
        dotenv: Regex::new(
            r"(?m-u)^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*([^\r\n]*)",
        )
        .ok()?,
        pypirc: Regex::new(r"(?m-u)^[ \t]*password[ \t]*[:=][ \t]*([^\s][^\r\n]*)").ok()?,
        git_credentials: Regex::new(r"(?m-u)^[a-zA-Z][a-zA-Z0-9+.-]*://[^:/\s@]+:([^@\s]+)@")
            .ok()?,
        kube_token: Regex::new(r#"(?m-u)^[ \t-]*token:[ \t]*["']?([A-Za-z0-9._~+/=-]{8,})"#)
            .ok()?,
        docker_auth: Regex::new(r#"(?-u)"(?:auth|identitytoken)"\s*:\s*"([^"]+)""#).ok()?,
        assignment: Regex::new(
            r#"(?-u)(?:^|[^A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]*)=("[^"]*"|'[^']*'|[^\s"';&|)]*)"#,
        )
        .ok()?,
    })
}

fn redact(secret: &[u8], how: Redact) -> String {
    let s = String::from_utf8_lossy(secret);
    match how {
        Redact::Header => format!("{s} …"),
        Redact::Keep(n) => keep(&s, n),
    }
}

/// The first `n` characters and `…`; only `…` when the value is shorter than `2n` (a short
/// password must not be half shown).
fn keep(s: &str, n: usize) -> String {
    if s.chars().count() < 2 * n.min(4) || s.chars().count() <= n {
        return "…".to_string();
    }
    let mut out: String = s.chars().take(n).collect();
    out.push('…');
    out
}

/// A match with the span of the secret, for overlap checks.
struct Found {
    rule: &'static str,
    description: &'static str,
    redacted: String,
    span: Range<usize>,
}

fn push(out: &mut Vec<Found>, f: Found, limit: usize) {
    let dup = out.iter().any(|o| {
        (o.span.start < f.span.end && f.span.start < o.span.end)
            || (o.rule == f.rule && o.redacted == f.redacted)
    });
    if !dup && out.len() < limit {
        out.push(f);
    }
}

/// Runs the prefilter and the content rules it triggers over `bytes`.
fn scan_content(c: &Compiled, bytes: &[u8], out: &mut Vec<Found>, limit: usize) {
    let mut triggered = vec![false; CONTENT_RULES.len()];
    let mut any = false;
    for m in c.prefilter.find_overlapping_iter(bytes) {
        if let Some(&r) = c.anchor_rule.get(m.pattern().as_usize()) {
            triggered[r] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    for (i, rule) in CONTENT_RULES.iter().enumerate() {
        if !triggered[i] {
            continue;
        }
        for caps in c.content[i].captures_iter(bytes) {
            if out.len() >= limit {
                return;
            }
            let Some(secret) = caps.get(1) else { continue };
            if rule
                .example
                .is_some_and(|e| contains(secret.as_bytes(), e.as_bytes()))
            {
                continue;
            }
            push(
                out,
                Found {
                    rule: rule.id,
                    description: rule.description,
                    redacted: redact(secret.as_bytes(), rule.redact),
                    span: secret.range(),
                },
                limit,
            );
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// Secret-looking names, in one place for both uses:
// - a *finding* (`secret-variable`, `dotenv-secret`) needs a name that says the value is a
//   secret: `*_TOKEN`, `*_SECRET`, `*_PASSWORD`, `*_PASSWD`, `*_KEY` (and the words alone);
// - *redaction* of reports ([`is_secret_name`]) is wider, as hiding a harmless value costs
//   nothing: the words anywhere in the name (`*TOKEN*`, `*SECRET*`, …), any `*_KEY`, and
//   every `AWS_*` variable.
// Names about public material (`GPG_KEY` in the official Python images is a key
// fingerprint) are neither.

/// Words that make a name about public material, whatever else it says.
const PUBLIC_NAME_WORDS: &[&str] = &["GPG", "PGP", "PUBLIC"];

/// Name suffixes (after `_`, or alone) that make a finding.
const SECRET_NAME_SUFFIXES: &[&str] = &["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY"];

/// Words anywhere in a name that make its value redacted.
const REDACTED_NAME_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "APIKEY",
    "PRIVATE",
];

/// Name prefixes that make a value redacted: cloud credentials travel in groups
/// (`AWS_ACCESS_KEY_ID`, `AWS_SESSION_TOKEN`, …).
const REDACTED_NAME_PREFIXES: &[&str] = &["AWS_"];

/// A name upper-cased with `.` and `-` read as `_` (label keys are dotted).
fn normal_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Whether a variable name says its value is a secret (a finding; see above).
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    if PUBLIC_NAME_WORDS.iter().any(|w| n.contains(w)) {
        return false;
    }
    SECRET_NAME_SUFFIXES
        .iter()
        .any(|w| n == *w || n.ends_with(&format!("_{w}")))
}

/// Whether the value of a variable, label or annotation of this name is kept out of
/// reports: secret-looking words anywhere (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`, …), any
/// `*_KEY`, any `AWS_*` — wider than what makes a finding. Names about public material
/// (`GPG_KEY`, `*PUBLIC*`) are not.
pub fn is_secret_name(name: &str) -> bool {
    let n = normal_name(name);
    if PUBLIC_NAME_WORDS.iter().any(|w| n.contains(w)) {
        return false;
    }
    n == "KEY"
        || n.ends_with("_KEY")
        || REDACTED_NAME_WORDS.iter().any(|w| n.contains(w))
        || REDACTED_NAME_PREFIXES.iter().any(|p| n.starts_with(p))
}

/// What replaces a redacted value: no part of it and no fingerprint, so nothing about the
/// secret can be recovered or matched across images.
pub const REDACTED: &str = "<redacted>";

/// `text` with every span a content rule matches (tokens, keys; for a private key, the key
/// material after its header) and the value of every secret-named `name=value`
/// ([`is_secret_name`]) replaced by [`REDACTED`]. For history lines, commands and label
/// values, before they are stored or printed; the secret facts come from the raw text.
pub fn redact_text(text: &str) -> String {
    let Some(c) = COMPILED.as_ref() else {
        // Rules that do not compile (a bug a test catches): keep nothing that could hold a
        // secret.
        return REDACTED.to_string();
    };
    let bytes = text.as_bytes();
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (i, rule) in CONTENT_RULES.iter().enumerate() {
        for caps in c.content[i].captures_iter(bytes) {
            let Some(m) = caps.get(1) else { continue };
            let span = match rule.redact {
                // The header is not secret; what follows it up to the END line is.
                Redact::Header => {
                    let end = memchr::memmem::find(&bytes[m.end()..], b"-----END")
                        .map_or(bytes.len(), |e| m.end() + e);
                    m.end()..end
                }
                Redact::Keep(_) => m.range(),
            };
            spans.push(span);
        }
    }
    for caps in c.assignment.captures_iter(bytes) {
        let (Some(name), Some(value)) = (caps.get(1), caps.get(2)) else {
            continue;
        };
        if is_secret_name(&String::from_utf8_lossy(name.as_bytes()))
            && assigned_value(value.as_bytes()).is_some()
        {
            spans.push(value.range());
        }
    }
    if spans.is_empty() {
        return text.to_string();
    }
    spans.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for span in spans {
        if span.end <= at {
            continue;
        }
        let start = span.start.max(at);
        out.extend_from_slice(&bytes[at..start]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = span.end;
    }
    out.extend_from_slice(&bytes[at..]);
    String::from_utf8_lossy(&out).into_owned()
}

/// A `NAME=value` environment entry (or a label or annotation, as `name` and `value`) for a
/// report: the whole value redacted when the name is secret-looking (values may hold
/// spaces), else whatever [`redact_text`] finds in it.
pub fn redact_assignment(name: &str, value: &str) -> String {
    if is_secret_name(name) && !value.trim().is_empty() {
        REDACTED.to_string()
    } else {
        redact_text(value)
    }
}

/// An `Env` entry `NAME=value` for a report ([`redact_assignment`]).
pub fn redact_env(entry: &str) -> String {
    match entry.split_once('=') {
        Some((name, value)) => format!("{name}={}", redact_assignment(name, value)),
        None => redact_text(entry),
    }
}

/// An assigned value with quotes removed, unless it is empty or a reference to another
/// variable (`$X`, `${X}`), which holds no secret itself.
fn assigned_value(raw: &[u8]) -> Option<&[u8]> {
    let raw = raw.trim_ascii();
    let v = raw
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .or_else(|| raw.strip_prefix(b"'").and_then(|r| r.strip_suffix(b"'")))
        .unwrap_or(raw);
    (!v.is_empty() && !v.starts_with(b"$")).then_some(v)
}

fn variable_found(
    (id, description): (&'static str, &'static str),
    name: &[u8],
    value: &[u8],
    span: Range<usize>,
) -> Found {
    let name = String::from_utf8_lossy(name);
    Found {
        rule: id,
        description,
        redacted: format!("{name}={}", keep(&String::from_utf8_lossy(value), 4)),
        span,
    }
}

/// Scans a config or history text (`KEY=value` of `Env`, a `created_by` line): every
/// content rule, plus secret-named variables given a value (`ENV API_TOKEN=…`,
/// `ARG`s recorded as `|1 NPM_TOKEN=…`, `export DB_PASSWORD=…`).
pub fn scan_text(text: &str) -> Vec<SecretMatch> {
    let Some(c) = COMPILED.as_ref() else {
        return Vec::new();
    };
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    scan_content(c, bytes, &mut found, MAX_PER_FILE);
    for caps in c.variable.captures_iter(bytes) {
        let (Some(name), Some(raw)) = (caps.get(1), caps.get(2)) else {
            continue;
        };
        if !secret_name(&String::from_utf8_lossy(name.as_bytes())) {
            continue;
        }
        if let Some(value) = assigned_value(raw.as_bytes()) {
            push(
                &mut found,
                variable_found(VARIABLE_RULE, name.as_bytes(), value, raw.range()),
                MAX_PER_FILE,
            );
        }
    }
    found
        .into_iter()
        .map(|f| SecretMatch {
            rule: f.rule,
            description: f.description,
            redacted: f.redacted,
        })
        .collect()
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_dotenv(name: &str) -> bool {
    let env_like = name == ".env" || name.starts_with(".env.") || name.ends_with(".env");
    let template = [".example", ".sample", ".template", ".dist", ".defaults"]
        .iter()
        .any(|s| name.ends_with(s));
    env_like && !template
}

fn is_docker_config(path: &str) -> bool {
    path == ".docker/config.json" || path.ends_with("/.docker/config.json")
}

fn is_kubeconfig(path: &str, name: &str) -> bool {
    path == ".kube/config" || path.ends_with("/.kube/config") || name.contains("kubeconfig")
}

const SSH_KEY_NAMES: &[&str] = &[
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
];

/// Files read whatever their extension or directory.
fn named_credential(path: &str, name: &str) -> bool {
    is_dotenv(name)
        || matches!(name, ".npmrc" | ".pypirc" | ".git-credentials")
        || is_docker_config(path)
        || is_kubeconfig(path, name)
        || SSH_KEY_NAMES.contains(&name)
}

/// Extensions of files that cannot hold a readable credential: media, fonts, archives
/// (compressed: a token inside is not visible to a byte scan anyway), compiled objects and
/// databases. `.pem`, `.key`, `.crt`, `.json`, `.yaml`… are not here.
const SKIP_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "bmp", "ico", "webp", "tif", "tiff", "psd", "svgz", "mp3", "mp4",
    "m4a", "avi", "mov", "mkv", "webm", "wav", "ogg", "flac", "woff", "woff2", "ttf", "otf", "eot",
    "pdf", "zip", "gz", "tgz", "bz2", "xz", "zst", "lz4", "lzma", "7z", "rar", "jar", "war", "ear",
    "whl", "egg", "so", "a", "o", "ko", "pyc", "pyo", "class", "dll", "exe", "dylib", "wasm",
    "node", "mo", "db", "sqlite", "sqlite3", "deb", "rpm", "apk", "pack", "idx",
];

/// Trees that hold only generated system data (locales, time zones, terminfo, manuals,
/// dpkg's per-file checksums and lists).
const SKIP_DIRS: &[&str] = &[
    "proc/",
    "sys/",
    "dev/",
    "usr/share/zoneinfo/",
    "usr/share/locale/",
    "usr/share/i18n/",
    "usr/share/terminfo/",
    "usr/share/man/",
    "usr/share/doc/",
    "usr/lib/locale/",
    "var/lib/dpkg/info/",
];

/// The every-file filter: decides from the entry alone.
pub fn wants(entry: &FileEntry) -> bool {
    if entry.size == 0 {
        return false;
    }
    let path = entry.path.as_str();
    let name = base_name(path);
    if named_credential(path, name) {
        return true;
    }
    if SKIP_DIRS.iter().any(|d| path.starts_with(d)) {
        return false;
    }
    if name.contains(".so.") {
        return false;
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => {
            !SKIP_EXTENSIONS.iter().any(|s| s.eq_ignore_ascii_case(ext))
        }
        _ => true,
    }
}

/// Scans one file's content (at most [`MAX_BYTES`] of it).
pub fn scan_file(path: &str, content: &[u8]) -> Vec<SecretMatch> {
    let Some(c) = COMPILED.as_ref() else {
        return Vec::new();
    };
    let name = base_name(path);
    let mut found = Vec::new();
    let binary = content[..content.len().min(BINARY_SNIFF)].contains(&0);
    if !binary {
        scan_content(c, content, &mut found, MAX_PER_FILE);
        scan_named(c, path, name, content, &mut found);
    }
    if SSH_KEY_NAMES.contains(&name) && !found.iter().any(|f| f.rule == "private-key") {
        let (id, description) = file_rule("ssh-private-key-file");
        push(
            &mut found,
            Found {
                rule: id,
                description,
                redacted: "…".to_string(),
                span: 0..0,
            },
            MAX_PER_FILE,
        );
    }
    found
        .into_iter()
        .map(|f| SecretMatch {
            rule: f.rule,
            description: f.description,
            redacted: f.redacted,
        })
        .collect()
}

fn scan_named(c: &Compiled, path: &str, name: &str, content: &[u8], found: &mut Vec<Found>) {
    let capture_rule = |re: &Regex, id: &str, found: &mut Vec<Found>| {
        let (id, description) = file_rule(id);
        for caps in re.captures_iter(content) {
            if let Some(m) = caps
                .get(1)
                .filter(|m| !m.as_bytes().trim_ascii().is_empty())
            {
                push(
                    found,
                    Found {
                        rule: id,
                        description,
                        redacted: keep(&String::from_utf8_lossy(m.as_bytes()), 4),
                        span: m.range(),
                    },
                    MAX_PER_FILE,
                );
            }
        }
    };
    if is_dotenv(name) {
        for caps in c.dotenv.captures_iter(content) {
            let (Some(n), Some(raw)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            if !secret_name(&String::from_utf8_lossy(n.as_bytes())) {
                continue;
            }
            // An unquoted value ends at a ` #` comment.
            let raw_bytes = raw.as_bytes();
            let value = if raw_bytes.starts_with(b"\"") || raw_bytes.starts_with(b"'") {
                raw_bytes
            } else {
                raw_bytes
                    .windows(2)
                    .position(|w| w == b" #")
                    .map_or(raw_bytes, |i| &raw_bytes[..i])
            };
            if let Some(v) = assigned_value(value) {
                push(
                    found,
                    variable_found(file_rule("dotenv-secret"), n.as_bytes(), v, raw.range()),
                    MAX_PER_FILE,
                );
            }
        }
    }
    match name {
        ".pypirc" => capture_rule(&c.pypirc, "pypirc-password", found),
        ".git-credentials" => capture_rule(&c.git_credentials, "git-credentials", found),
        _ => {}
    }
    if is_kubeconfig(path, name) {
        capture_rule(&c.kube_token, "kubeconfig-token", found);
    }
    if is_docker_config(path) {
        docker_config(c, content, found);
    }
}

/// `.docker/config.json`: every `auths` entry with an `auth` (base64 `user:password`) or
/// `identitytoken`. Falls back to a regex when the JSON does not parse.
fn docker_config(c: &Compiled, content: &[u8], found: &mut Vec<Found>) {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, Auth>,
    }
    #[derive(Deserialize)]
    struct Auth {
        #[serde(default)]
        auth: Option<String>,
        #[serde(default)]
        identitytoken: Option<String>,
    }
    let (id, description) = file_rule("docker-config-auth");
    match serde_json::from_slice::<Config>(content) {
        Ok(cfg) => {
            for (i, (registry, a)) in cfg.auths.iter().enumerate() {
                for value in [&a.auth, &a.identitytoken].into_iter().flatten() {
                    if value.trim().is_empty() {
                        continue;
                    }
                    push(
                        found,
                        Found {
                            rule: id,
                            description,
                            redacted: format!("{registry}: {}", keep(value, 4)),
                            // Distinct per entry (there are no byte offsets here).
                            span: usize::MAX - 2 * i - 1..usize::MAX - 2 * i,
                        },
                        MAX_PER_FILE,
                    );
                }
            }
        }
        Err(_) => {
            for caps in c.docker_auth.captures_iter(content) {
                if let Some(m) = caps.get(1) {
                    push(
                        found,
                        Found {
                            rule: id,
                            description,
                            redacted: keep(&String::from_utf8_lossy(m.as_bytes()), 4),
                            span: m.range(),
                        },
                        MAX_PER_FILE,
                    );
                }
            }
        }
    }
}

/// Scans every file of every layer for credentials.
#[derive(Debug)]
pub struct SecretsAnalyzer;

impl Analyzer for SecretsAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        1
    }

    fn interest(&self) -> Interest {
        Interest {
            globs: &[],
            max_bytes: MAX_BYTES,
            every_file: Some(EveryFile {
                max_bytes: MAX_BYTES,
                wants,
            }),
            working_bytes: super::no_working_bytes,
        }
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(SecretsLayer {
            budget: budget.clone(),
            ..SecretsLayer::default()
        })
    }
}

#[derive(Default)]
struct SecretsLayer {
    budget: Budget,
    hits: Vec<SecretHit>,
    cut: bool,
}

impl LayerAnalysis for SecretsLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], _complete: bool) {
        for m in scan_file(&entry.path, content) {
            if self.hits.len() >= MAX_PER_LAYER {
                self.cut = true;
                return;
            }
            let hit = SecretHit {
                path: entry.path.clone(),
                rule: m.rule.to_string(),
                description: m.description.to_string(),
                redacted: m.redacted,
            };
            self.budget.keep(Kept::Findings, &mut self.hits, hit);
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        if COMPILED.is_none() {
            report.unknowns.push(Unknown {
                analyzer: ID.to_string(),
                path: String::new(),
                reason: "secret rules failed to compile: layer not scanned".into(),
            });
        }
        if self.cut {
            report.unknowns.push(Unknown {
                analyzer: ID.to_string(),
                path: String::new(),
                reason: format!(
                    "more than {MAX_PER_LAYER} secret matches in this layer: the rest are not listed"
                ),
            });
        }
        report.secrets.extend(self.hits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(m: &[SecretMatch]) -> Vec<(&str, &str)> {
        m.iter().map(|m| (m.rule, m.redacted.as_str())).collect()
    }

    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8+NqyZ5gYc2t5hTq7v0aL3Q0E\nZmFrZQ==\n-----END RSA PRIVATE KEY-----\n";

    #[test]
    fn reports_keep_names_and_lose_values() {
        assert_eq!(
            redact_env("API_TOKEN=tok_1234567890"),
            "API_TOKEN=<redacted>"
        );
        assert_eq!(
            redact_env("db_password=two words"),
            "db_password=<redacted>"
        );
        assert_eq!(redact_env("AWS_REGION=eu-west-1"), "AWS_REGION=<redacted>");
        assert_eq!(redact_env("SIGNING_KEY=abc"), "SIGNING_KEY=<redacted>");
        assert_eq!(
            redact_env("GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D"),
            "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D"
        );
        assert_eq!(redact_env("PATH=/usr/bin"), "PATH=/usr/bin");
        assert_eq!(redact_env("EMPTY_TOKEN="), "EMPTY_TOKEN=");
        // A token under an innocent name is found by its shape.
        let gh = format!("ghp_{}", "a".repeat(36));
        assert_eq!(redact_env(&format!("GITHUB={gh}")), "GITHUB=<redacted>");
        assert_eq!(
            redact_text(&format!(
                "|2 NPM_TOKEN=npm_x API_KEY=\"k y\" /bin/sh -c curl -H 'x: {gh}' && export DB_PASSWORD=hunter2; echo ok"
            )),
            "|2 NPM_TOKEN=<redacted> API_KEY=<redacted> /bin/sh -c curl -H 'x: <redacted>' && export DB_PASSWORD=<redacted>; echo ok"
        );
        // References to other variables hold no secret and stay readable.
        assert_eq!(redact_text("ENV TOKEN=$CI_TOKEN"), "ENV TOKEN=$CI_TOKEN");
        // A key's header stays, its material goes.
        assert_eq!(
            redact_text(PEM),
            "-----BEGIN RSA PRIVATE KEY-----<redacted>-----END RSA PRIVATE KEY-----\n"
        );
        assert_eq!(
            redact_assignment("org.example.api-token", "v"),
            "<redacted>"
        );
        assert_eq!(
            redact_assignment("org.opencontainers.image.title", "app"),
            "app"
        );
    }

    #[test]
    fn every_pattern_compiles() {
        assert!(COMPILED.is_some());
        let ids: Vec<_> = rules().iter().map(|(id, _)| *id).collect();
        let mut dedup = ids.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), ids.len(), "duplicate rule id");
    }

    #[test]
    fn finds_token_formats_and_redacts_them() {
        let text = format!(
            "{PEM}\
             aws = AKIA2E0A8F3B244C9986\n\
             example = AKIAIOSFODNN7EXAMPLE\n\
             aws_secret_access_key = abcdefghij0123456789ABCDEFGHIJ0123456789\n\
             gh ghp_{a36}\n\
             pat github_pat_{a82}\n\
             glpat-abcdefghij0123456789\n\
             xoxb-1234567890-abcdefghij\n\
             https://hooks.slack.com/services/T0000/B0000/{a24}\n\
             sk_live_{a24}\n\
             AIza{a35}\n\
             npm_{a36}\n",
            a36 = "a".repeat(36),
            a82 = "b".repeat(82),
            a24 = "c".repeat(24),
            a35 = "d".repeat(35),
        );
        let m = scan_file("app/config.txt", text.as_bytes());
        assert_eq!(
            rules_of(&m),
            vec![
                ("private-key", "-----BEGIN RSA PRIVATE KEY----- …"),
                ("aws-access-key-id", "AKIA…"),
                ("aws-secret-access-key", "abcd…"),
                ("github-token", "ghp_…"),
                ("github-token", "gith…"),
                ("gitlab-token", "glpa…"),
                ("slack-token", "xoxb…"),
                ("slack-webhook", "https://hooks.slack.com/services/…"),
                ("stripe-secret-key", "sk_l…"),
                ("google-api-key", "AIza…"),
                ("npm-token", "npm_…"),
            ]
        );
        for hit in &m {
            assert!(!hit.redacted.contains("aaaa"), "{hit:?}");
        }
    }

    #[test]
    fn marker_without_key_material_is_not_a_key() {
        let src = br#"PEM = b"-----BEGIN PRIVATE KEY-----"  # marker only"#;
        assert!(scan_file("lib/python3/site-packages/x.py", src).is_empty());
        let json = br#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"}"#;
        assert_eq!(
            rules_of(&scan_file("app/sa.json", json)),
            vec![("private-key", "-----BEGIN PRIVATE KEY----- …")]
        );
    }

    #[test]
    fn named_files() {
        let env = b"# config\nAPI_TOKEN=abcdef123456\nexport DB_PASSWORD='hunter22hunter'\nEMPTY_SECRET=\nREF_KEY=${OTHER}\nGPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D\nPORT=8080\nshort_key=abc # comment\n";
        assert_eq!(
            rules_of(&scan_file("app/.env", env)),
            vec![
                ("dotenv-secret", "API_TOKEN=abcd…"),
                ("dotenv-secret", "DB_PASSWORD=hunt…"),
                ("dotenv-secret", "short_key=…"),
            ]
        );
        assert!(scan_file("app/.env.example", env).is_empty());
        assert_eq!(
            rules_of(&scan_file(
                "root/.npmrc",
                b"//registry.npmjs.org/:_authToken=abcdef0123456789\n//x/:_authToken=${NPM_TOKEN}\n"
            )),
            vec![("npmrc-auth-token", "abcd…")]
        );
        assert_eq!(
            rules_of(&scan_file(
                "root/.pypirc",
                b"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n"
            )),
            vec![("pypirc-password", "pypi…")]
        );
        assert_eq!(
            rules_of(&scan_file(
                "root/.git-credentials",
                b"https://bob:s3cr3tpassw0rd@github.com\n"
            )),
            vec![("git-credentials", "s3cr…")]
        );
        assert_eq!(
            rules_of(&scan_file(
                "root/.docker/config.json",
                br#"{"auths":{"registry.example":{"auth":"Ym9iOnMzY3IzdA=="},"empty.example":{}}}"#
            )),
            vec![("docker-config-auth", "registry.example: Ym9i…")]
        );
        assert_eq!(
            rules_of(&scan_file(
                "root/.kube/config",
                b"users:\n- name: x\n  user:\n    token: eyJhbGciOiJSUzI1NiJ9.abc\n    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=\n"
            )),
            vec![
                ("kubeconfig-client-key", "LS0t…"),
                ("kubeconfig-token", "eyJh…")
            ]
        );
        assert_eq!(
            rules_of(&scan_file("root/.ssh/id_rsa", PEM.as_bytes())),
            vec![("private-key", "-----BEGIN RSA PRIVATE KEY----- …")]
        );
        assert_eq!(
            rules_of(&scan_file("root/.ssh/id_ed25519", b"\x00\x01binary")),
            vec![("ssh-private-key-file", "…")]
        );
    }

    #[test]
    fn binary_files_are_not_scanned_for_content() {
        let mut bin = b"\x7fELF\x00\x00".to_vec();
        bin.extend(format!("ghp_{}", "a".repeat(36)).bytes());
        assert!(scan_file("usr/bin/tool", &bin).is_empty());
    }

    #[test]
    fn scans_config_text() {
        assert_eq!(
            rules_of(&scan_text("AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986")),
            vec![("aws-access-key-id", "AKIA…")]
        );
        assert_eq!(
            rules_of(&scan_text(
                "RUN |1 NPM_TOKEN=abcdefgh12345678 /bin/sh -c npm ci && export API_KEY=\"zzzzyyyyxxxx\""
            )),
            vec![
                ("secret-variable", "NPM_TOKEN=abcd…"),
                ("secret-variable", "API_KEY=zzzz…")
            ]
        );
        // The specific rule wins over the generic one for the same value.
        assert_eq!(
            rules_of(&scan_text(&format!("GITHUB_TOKEN=ghp_{}", "a".repeat(36)))),
            vec![("github-token", "ghp_…")]
        );
        assert!(scan_text("PATH=/usr/local/bin:/usr/bin").is_empty());
        assert!(scan_text("GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D").is_empty());
        assert!(scan_text("DB_PASSWORD=$DB_PASSWORD_FROM_FILE").is_empty());
    }

    #[test]
    fn filter_skips_media_and_keeps_keys() {
        let e = |path: &str, size: u64| FileEntry {
            path: path.into(),
            kind: gantry_model::fs::EntryKind::File,
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
            link_target: None,
        };
        assert!(wants(&e("etc/ssl/private/server.key", 10)));
        assert!(wants(&e("app/cert.pem", 10)));
        assert!(wants(&e("app/main.js", 10)));
        assert!(wants(&e("Makefile", 10)));
        assert!(!wants(&e("app/logo.PNG", 10)));
        assert!(!wants(&e("usr/lib/x86_64-linux-gnu/libc.so.6", 10)));
        assert!(!wants(&e("usr/share/zoneinfo/UTC", 10)));
        assert!(!wants(&e("app/empty.txt", 0)));
        assert!(wants(&e("usr/share/doc/.env", 10)));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for input in [
            &b""[..],
            b"-----BEGIN",
            b"-----BEGIN PRIVATE KEY-----",
            b"AKIA",
            b"_authToken=",
            b"\xff\xfe\xfd",
            b"client-key-data:",
        ] {
            let _ = scan_file(".env", input);
            let _ = scan_file("root/.docker/config.json", input);
            let _ = scan_text(&String::from_utf8_lossy(input));
        }
        let many = "AKIA2E0A8F3B244C9986 ".repeat(10_000);
        assert!(scan_file("x", many.as_bytes()).len() <= MAX_PER_FILE);
    }
}
