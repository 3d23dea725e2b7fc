//! A policy bundle: Rego modules, test modules and JSON data, from `policies/` (embedded) or a
//! directory; its digest.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::PolicyError;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_bundle.rs"));
}

/// Largest single file `from_dir` and `with_data_file` read. Rego modules are kilobytes and
/// data files (allowlists, exceptions) rarely pass a megabyte; the cap keeps a mistaken path
/// (a log file, `/dev/zero`) from being read into memory whole. The bundle as a whole is
/// bounded again by `PolicyLimits::max_policy_bytes` when it is compiled.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Deepest directory nesting `from_dir` follows (a symlink loop ends here, not in a stack
/// overflow).
const MAX_DEPTH: usize = 32;

/// Most files `from_dir` loads.
const MAX_FILES: usize = 10_000;

/// One Rego source file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Path relative to the bundle root with `/` separators, e.g. `gantry/rules/size.rego`.
    pub path: String,
    /// The Rego source.
    pub source: String,
}

/// Rego modules plus data: what a policy is made of.
///
/// Files are sorted into three groups, the same way for the built-in bundle and for a
/// directory:
/// - **modules**: every `*.rego` file, except
/// - **test modules**: `*.rego` files under a directory named `tests`, and `*_test.rego`
///   files; they are loaded only by [`run_tests`](crate::run_tests), never for a verdict;
/// - **data**: `data.json` at the root of the bundle (`{}` when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyBundle {
    origin: String,
    modules: Vec<Module>,
    test_modules: Vec<Module>,
    data: Value,
}

impl PolicyBundle {
    /// The bundle shipped in the binary: the workspace's `policies/` directory at build time.
    ///
    /// Fails only if the embedded `data.json` is not a JSON object, which this crate's tests
    /// rule out for every build that passes them.
    pub fn builtin() -> Result<Self, PolicyError> {
        let files = builtin::FILES
            .iter()
            .map(|(path, source)| ((*path).to_string(), (*source).to_string()));
        Self::from_files("builtin", files)
    }

    /// Loads every `*.rego` file under `dir` (recursively; hidden entries skipped) and
    /// `dir/data.json` if present. See the type's documentation for what counts as a test.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let dir = dir.as_ref();
        let mut paths = Vec::new();
        walk(dir, dir, 0, &mut paths)?;
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for (rel, abs) in paths {
            files.push((rel, read_capped(&abs)?));
        }
        Self::from_files(&dir.display().to_string(), files)
    }

    /// The bundle a command line or a config file names: the directory `dir` (the built-in
    /// bundle when `None`) with the data file `data` merged over its data
    /// ([`with_data_file`](Self::with_data_file)) when given. The one way `gantry scan`,
    /// `gantry sbom`, `gantry policy test` and `gantry serve` load policies; compile it with
    /// [`Policy::load`](crate::Policy::load).
    pub fn load(dir: Option<&Path>, data: Option<&Path>) -> Result<Self, PolicyError> {
        let bundle = match dir {
            Some(dir) => Self::from_dir(dir)?,
            None => Self::builtin()?,
        };
        match data {
            Some(file) => bundle.with_data_file(file),
            None => Ok(bundle),
        }
    }

    /// Builds a bundle from `(relative path, contents)` pairs.
    fn from_files(
        origin: &str,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, PolicyError> {
        let mut bundle = Self {
            origin: origin.to_string(),
            modules: Vec::new(),
            test_modules: Vec::new(),
            data: Value::Object(Default::default()),
        };
        for (path, contents) in files {
            if path == "data.json" {
                bundle.data = parse_data(&format!("{origin}/data.json"), &contents)?;
            } else if path.ends_with(".rego") {
                let module = Module {
                    path,
                    source: contents,
                };
                if is_test_path(&module.path) {
                    bundle.test_modules.push(module);
                } else {
                    bundle.modules.push(module);
                }
            }
        }
        bundle.modules.sort_by(|a, b| a.path.cmp(&b.path));
        bundle.test_modules.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(bundle)
    }

    /// Merges `data` over the bundle's data as a JSON merge patch (RFC 7396): objects merge
    /// key by key, recursively; any other value (a number, a list) replaces what was there; a
    /// `null` removes the key. So `{"gantry": {"size": {"max_uncompressed_bytes": 2147483648}}}`
    /// changes one threshold and keeps every other default, and a list such as
    /// `gantry.exceptions` is replaced as a whole.
    pub fn with_data(mut self, data: Value) -> Result<Self, PolicyError> {
        if !data.is_object() {
            return Err(PolicyError::Data {
                origin: "override".into(),
                message: "must be a JSON object (e.g. {\"gantry\": {…}})".into(),
            });
        }
        merge_patch(&mut self.data, data);
        Ok(self)
    }

    /// Reads a JSON file and merges it over the bundle's data like [`with_data`](Self::with_data).
    pub fn with_data_file(self, path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let text = read_capped(path)?;
        let data = parse_data(&path.display().to_string(), &text)?;
        self.with_data(data)
    }

    /// Replaces the bundle's data entirely (no merge).
    pub fn replace_data(mut self, data: Value) -> Result<Self, PolicyError> {
        if !data.is_object() {
            return Err(PolicyError::Data {
                origin: "replacement".into(),
                message: "must be a JSON object".into(),
            });
        }
        self.data = data;
        Ok(self)
    }

    /// Adds a module (e.g. one extra rule file over the built-in bundle). A path ending in
    /// `_test.rego` or under `tests/` is added as a test module.
    pub fn with_module(
        mut self,
        path: impl Into<String>,
        source: impl Into<String>,
    ) -> Result<Self, PolicyError> {
        let module = Module {
            path: path.into(),
            source: source.into(),
        };
        if self
            .modules
            .iter()
            .chain(&self.test_modules)
            .any(|m| m.path == module.path)
        {
            return Err(PolicyError::DuplicateModule { path: module.path });
        }
        let list = if is_test_path(&module.path) {
            &mut self.test_modules
        } else {
            &mut self.modules
        };
        list.push(module);
        list.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(self)
    }

    /// Where the bundle came from: `builtin` or the directory.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The policy modules, sorted by path.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The test modules, sorted by path.
    pub fn test_modules(&self) -> &[Module] {
        &self.test_modules
    }

    /// The data document (`data.json`, with any overrides merged in).
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// `sha256:<hex>` over the modules (sorted by path) and the data, in a canonical encoding:
    /// the same bundle gives the same digest on every machine and run, whatever the key order
    /// or whitespace of `data.json`. Test modules are not part of it (they do not decide
    /// anything). Stored verdicts are keyed by this digest.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"gantry-policy-bundle/v1\n");
        for m in &self.modules {
            hasher.update(format!("module {}:", m.path.len()).as_bytes());
            hasher.update(m.path.as_bytes());
            hasher.update(format!(" {}:", m.source.len()).as_bytes());
            hasher.update(m.source.as_bytes());
            hasher.update(b"\n");
        }
        let data = canonical_json(&self.data);
        hasher.update(format!("data {}:", data.len()).as_bytes());
        hasher.update(data.as_bytes());
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }

    /// Total bytes of module sources and canonical data: what `max_policy_bytes` bounds.
    pub(crate) fn size_bytes(&self) -> usize {
        self.modules.iter().map(|m| m.source.len()).sum::<usize>()
            + canonical_json(&self.data).len()
    }
}

/// A path is a test module when a directory on it is named `tests` or the file name ends in
/// `_test.rego`.
fn is_test_path(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let file = parts.pop().unwrap_or_default();
    file.ends_with("_test.rego") || parts.contains(&"tests")
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if depth > MAX_DEPTH {
        return Err(io(std::io::Error::other(format!(
            "directories nested deeper than {MAX_DEPTH} (a symlink loop?)"
        ))));
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // Follows symlinks, as `opa` does for bundle directories.
        let meta = std::fs::metadata(&path).map_err(|source| PolicyError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(root, &path, depth + 1, out)?;
            continue;
        }
        let rel = relative(root, &path);
        if name.ends_with(".rego") || rel == "data.json" {
            if out.len() >= MAX_FILES {
                return Err(io(std::io::Error::other(format!(
                    "more than {MAX_FILES} policy files"
                ))));
            }
            out.push((rel, path));
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads a UTF-8 file of at most [`MAX_FILE_BYTES`].
fn read_capped(path: &Path) -> Result<String, PolicyError> {
    let io = |source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(PolicyError::TooLarge {
            what: path.display().to_string(),
            bytes: bytes.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn parse_data(origin: &str, text: &str) -> Result<Value, PolicyError> {
    let data: Value = serde_json::from_str(text).map_err(|e| PolicyError::Data {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    if !data.is_object() {
        return Err(PolicyError::Data {
            origin: origin.to_string(),
            message: "must be a JSON object (e.g. {\"gantry\": {…}})".into(),
        });
    }
    Ok(data)
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(&key);
            } else {
                merge_patch(target.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

/// JSON with object keys sorted and no whitespace, independent of serde_json's
/// `preserve_order` feature (which another crate in the build may turn on).
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(key.clone()));
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_files_into_modules_tests_and_data() {
        let b = PolicyBundle::from_files(
            "t",
            [
                ("gantry/rules/a.rego".into(), "package a".into()),
                ("tests/a.rego".into(), "package t".into()),
                ("gantry/b_test.rego".into(), "package t2".into()),
                ("data.json".into(), r#"{"x": 1}"#.into()),
            ],
        )
        .unwrap();
        assert_eq!(b.modules().len(), 1);
        assert_eq!(b.test_modules().len(), 2);
        assert_eq!(b.data(), &json!({"x": 1}));
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge_patch(
            &mut t,
            json!({"a": {"b": 2, "c": [3]}, "d": null, "e": true}),
        );
        assert_eq!(t, json!({"a": {"b": 2, "c": [3]}, "e": true}));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v: Value =
            serde_json::from_str(r#"{"b": [1, {"z": 1, "a": "x\"y"}], "a": 1.5}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":1.5,"b":[1,{"a":"x\"y","z":1}]}"#
        );
    }

    #[test]
    fn digest_ignores_data_formatting_and_tests() {
        let a = PolicyBundle::from_files(
            "a",
            [
                ("p.rego".into(), "package p".into()),
                ("data.json".into(), r#"{"x": 1, "y": 2}"#.into()),
            ],
        )
        .unwrap();
        let b = PolicyBundle::from_files(
            "b",
            [
                ("data.json".into(), "{\n  \"y\": 2,\n  \"x\": 1\n}".into()),
                ("p.rego".into(), "package p".into()),
                ("tests/t.rego".into(), "package t".into()),
            ],
        )
        .unwrap();
        assert_eq!(a.digest(), b.digest());
        let c = a.clone().with_data(json!({"x": 3})).unwrap();
        assert_ne!(a.digest(), c.digest());
    }
}
