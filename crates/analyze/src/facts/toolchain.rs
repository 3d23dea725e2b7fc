//! `facts.toolchain`: build tools and build leftovers in the final image.
//!
//! Only what is **visible in the final filesystem** counts: a compiler that a later layer
//! deleted does not run in the container (its bytes still ship, which the size facts count),
//! and a package counts only when the final package database lists it as installed.
//!
//! Evidence:
//! - **path**: compiler and build-driver names (plain, versioned `gcc-12`, target-prefixed
//!   `x86_64-linux-gnu-gcc-12`) in any `bin`/`sbin` directory, GCC's `cc1`/`cc1plus`,
//!   language toolchains (`go`, `rustc`, `cargo`, `rustup`, `javac`, `mvn`, `gradle`,
//!   `usr/lib/go-*`, `.rustup`), TypeScript and node-gyp in `node_modules`, headers
//!   (`usr/include` as ONE fact with a count; Python's `Python.h`), `.git` directories,
//!   source maps (content-checked per layer by the `toolchain` analyzer), dependency caches
//!   and source trees (aggregated per top-most directory, never one fact per file);
//! - **package**: toolchain packages in the final dpkg/apk database (`build-essential`,
//!   `gcc-12`, `make`, `golang-go`, `*-dev`…), and every file such a package installed in a
//!   `bin` directory that no path rule recognised — so a renamed compiler still counts;
//! - **elf**: Go toolchain commands (`cmd/go`, `cmd/compile`, `cmd/link`, …) recognised by the
//!   main package in their embedded build info, whatever the file is called. C compiler drivers
//!   are not identified by content (their identifying bytes are deep in the binary; see the
//!   `toolchain` analyzer) — the package evidence catches renamed distro compilers instead.
//!
//! A path fact names its owning package when the package file lists say so.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use gantry_model::Location;
use gantry_model::fs::EntryKind;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Layers, base_name, parent};
use crate::Filesystem;
use crate::package::Package;

/// What kind of build leftover a fact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// C/C++/Fortran compilers, preprocessors, assemblers, linkers.
    Compiler,
    /// make, cmake, ninja, autotools, pkg-config…
    BuildTool,
    /// go, rustc/cargo, javac/maven/gradle.
    LanguageToolchain,
    /// Header trees (`usr/include`, `Python.h`).
    DevHeaders,
    /// `*-dev` packages.
    DevPackage,
    /// TypeScript, node-gyp.
    NodeBuild,
    /// `*.map` source maps.
    SourceMap,
    /// `.git` directories.
    Vcs,
    /// Source files and dependency caches.
    SourceTree,
}

/// How the fact was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// By its path.
    Path,
    /// By the executable's content (Go build info).
    Elf,
    /// By the package database.
    Package,
}

/// `facts.toolchain[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ToolchainFact {
    /// What was found (`gcc`, `gcc-12`, `usr/include`, `dist/*.map`).
    pub name: String,
    /// Category.
    pub category: Category,
    /// Evidence.
    pub evidence: Evidence,
    /// Owning package when known, else null.
    pub package: Option<String>,
    /// Why it counts, for a human.
    pub reason: String,
    /// Where: layer, index, path (for packages, the database file).
    pub location: Location,
}

use Category::*;

/// Tools recognised by name in a `bin`/`sbin` directory (also with a target prefix and a
/// version suffix for the C toolchain and build tools, see `BIN_PATTERN`).
const BIN_TOOLS: &[(&str, Category, &str)] = &[
    ("gcc", Compiler, "GNU C compiler driver"),
    ("g++", Compiler, "GNU C++ compiler driver"),
    ("cc", Compiler, "C compiler driver"),
    ("c++", Compiler, "C++ compiler driver"),
    ("cpp", Compiler, "C preprocessor"),
    ("clang", Compiler, "Clang C compiler driver"),
    ("clang++", Compiler, "Clang C++ compiler driver"),
    ("gfortran", Compiler, "GNU Fortran compiler"),
    ("as", Compiler, "assembler (binutils)"),
    ("ld", Compiler, "linker (binutils)"),
    ("ld.bfd", Compiler, "linker (binutils)"),
    ("ld.gold", Compiler, "linker (binutils gold)"),
    ("make", BuildTool, "make build driver"),
    ("gmake", BuildTool, "GNU make build driver"),
    ("cmake", BuildTool, "CMake build generator"),
    ("ninja", BuildTool, "Ninja build driver"),
    ("autoconf", BuildTool, "Autoconf configure-script generator"),
    ("automake", BuildTool, "Automake Makefile generator"),
    ("libtool", BuildTool, "GNU Libtool"),
    ("m4", BuildTool, "m4 macro processor (autotools)"),
    ("bison", BuildTool, "Bison parser generator"),
    ("flex", BuildTool, "Flex lexer generator"),
    ("pkg-config", BuildTool, "pkg-config compiler-flags helper"),
    ("go", LanguageToolchain, "Go toolchain"),
    ("rustc", LanguageToolchain, "Rust compiler"),
    ("cargo", LanguageToolchain, "Rust build tool"),
    ("rustup", LanguageToolchain, "Rust toolchain installer"),
    ("javac", LanguageToolchain, "Java compiler (JDK)"),
    ("mvn", LanguageToolchain, "Apache Maven build tool"),
    ("gradle", LanguageToolchain, "Gradle build tool"),
    ("tsc", NodeBuild, "TypeScript compiler"),
    ("node-gyp", NodeBuild, "node-gyp native addon build tool"),
];

/// `[target-]tool[-version]` for the C toolchain and build tools: `gcc-12`,
/// `x86_64-linux-gnu-gcc-12`, `x86_64-alpine-linux-musl-gcc`, `automake-1.16`.
const BIN_PATTERN: &str = r"^(?:[a-z0-9_]+(?:-[a-z0-9_]+)*-linux(?:-[a-z0-9_]+)?-)?(gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|gfortran|as|ld|ld\.bfd|ld\.gold|make|gmake|cmake|ninja|autoconf|automake|libtool|m4|bison|flex|pkg-config)(?:-[0-9]+(?:\.[0-9]+)*)?$";

/// Toolchain packages by name, first match wins.
const PACKAGE_RULES: &[(&str, Category, &str)] = &[
    (
        r"^(build-essential|build-base)$",
        BuildTool,
        "meta-package for C/C++ compilers, make and libc headers",
    ),
    (
        r"^(gcc|gcc-c\+\+|g\+\+|cpp|gfortran|gccgo|gobjc|gobjc\+\+|gnat)(-[0-9]+(\.[0-9]+)*)?(-[a-z0-9_]+(-[a-z0-9_]+)*-linux-[a-z0-9]+)?$",
        Compiler,
        "GCC compiler package",
    ),
    (
        r"^(clang|clang\+\+|llvm)(-[0-9]+(\.[0-9]+)*)?$",
        Compiler,
        "Clang/LLVM compiler package",
    ),
    (
        r"^binutils(-[a-z0-9_]+(-[a-z0-9_]+)*-linux-[a-z0-9]+)?$",
        Compiler,
        "assembler and linker package (binutils)",
    ),
    (
        r"^(make|make-guile|remake|cmake|ninja-build|ninja|samurai|meson|scons|autoconf|automake|autotools-dev|libtool|libtool-bin|m4|bison|flex|pkg-config|pkgconf)$",
        BuildTool,
        "build tool package",
    ),
    (
        r"^(go|golang(-[0-9]+(\.[0-9]+)*)?(-go|-src)?)$",
        LanguageToolchain,
        "Go toolchain package",
    ),
    (
        r"^(rustc|rust|cargo|rustup|rust-all)(-[0-9]+(\.[0-9]+)*)?$",
        LanguageToolchain,
        "Rust toolchain package",
    ),
    (
        r"^(default-jdk(-headless)?|openjdk-[0-9]+-jdk(-headless)?|openjdk[0-9]+(-jdk)?|java-[0-9.]+-openjdk-devel|maven|gradle|ant)$",
        LanguageToolchain,
        "Java development kit or build tool package",
    ),
    (
        r"^(node-gyp|node-typescript|typescript)$",
        NodeBuild,
        "Node.js build tool package",
    ),
    (
        r"^(linux-headers(-.+)?|.+-dev|.+-devel)$",
        DevPackage,
        "development package (headers, static libraries)",
    ),
];

struct Rules {
    bin: Regex,
    packages: Vec<(Regex, Category, &'static str)>,
}

/// `None` only if a pattern above does not compile (a unit test checks they all do).
static RULES: LazyLock<Option<Rules>> = LazyLock::new(|| {
    Some(Rules {
        bin: Regex::new(BIN_PATTERN).ok()?,
        packages: PACKAGE_RULES
            .iter()
            .map(|(p, c, r)| Regex::new(p).ok().map(|re| (re, *c, *r)))
            .collect::<Option<Vec<_>>>()?,
    })
});

fn classify_bin(rules: &Rules, name: &str) -> Option<(Category, &'static str)> {
    let tool = match rules.bin.captures(name).and_then(|c| c.get(1)) {
        Some(m) => m.as_str(),
        None => name,
    };
    BIN_TOOLS
        .iter()
        .find(|(n, _, _)| *n == tool)
        .map(|(_, c, r)| (*c, *r))
}

fn classify_package(rules: &Rules, name: &str) -> Option<(Category, &'static str)> {
    rules
        .packages
        .iter()
        .find(|(re, _, _)| re.is_match(name))
        .map(|(_, c, r)| (*c, *r))
}

/// Path → owning package, from the final databases' file lists. A path listed by several
/// packages (a shared directory) has no single owner. With a merged `/usr`, `bin/x` and
/// `usr/bin/x` name the same file, so both spellings are recorded.
fn owners(packages: &[Package]) -> HashMap<String, Option<&str>> {
    let mut map: HashMap<String, Option<&str>> = HashMap::new();
    for p in packages {
        for f in &p.files {
            for key in spellings(f) {
                map.entry(key)
                    .and_modify(|o| {
                        if *o != Some(p.name.as_str()) {
                            *o = None;
                        }
                    })
                    .or_insert(Some(p.name.as_str()));
            }
        }
    }
    map
}

const MERGED: &[&str] = &["bin/", "sbin/", "lib/", "lib32/", "lib64/", "libx32/"];

/// `path` and its other spelling under a merged `/usr`.
fn spellings(path: &str) -> Vec<String> {
    let mut out = vec![path.to_string()];
    if MERGED.iter().any(|m| path.starts_with(m)) {
        out.push(format!("usr/{path}"));
    } else if let Some(rest) = path.strip_prefix("usr/")
        && MERGED.iter().any(|m| rest.starts_with(m))
    {
        out.push(rest.to_string());
    }
    out
}

/// An aggregate: many paths, one fact.
struct Group {
    count: usize,
    first: String,
    layer: usize,
}

impl Group {
    fn add(groups: &mut BTreeMap<String, Group>, key: String, path: &str, layer: usize) {
        groups
            .entry(key)
            .and_modify(|g| g.count += 1)
            .or_insert_with(|| Group {
                count: 1,
                first: path.to_string(),
                layer,
            });
    }
}

/// Directories whose mere presence is a fact (key = the directory).
struct DirRule {
    category: Category,
    name: String,
    reason: &'static str,
}

fn dir_rules(comps: &[&str], mut found: impl FnMut(usize, DirRule)) {
    for (i, c) in comps.iter().enumerate() {
        let next = comps.get(i + 1).copied();
        match (*c, next) {
            ("node_modules", Some("typescript")) => found(
                i + 1,
                DirRule {
                    category: NodeBuild,
                    name: "typescript".into(),
                    reason: "TypeScript compiler in node_modules",
                },
            ),
            ("node_modules", Some("node-gyp")) => found(
                i + 1,
                DirRule {
                    category: NodeBuild,
                    name: "node-gyp".into(),
                    reason: "node-gyp native addon build tool in node_modules",
                },
            ),
            (".rustup", _) => found(
                i,
                DirRule {
                    category: LanguageToolchain,
                    name: ".rustup".into(),
                    reason: "rustup toolchain directory",
                },
            ),
            (".cargo", Some("registry")) => found(
                i + 1,
                DirRule {
                    category: SourceTree,
                    name: ".cargo/registry".into(),
                    reason: "Cargo registry cache (dependency sources)",
                },
            ),
            (".cache", Some("go-build")) => found(
                i + 1,
                DirRule {
                    category: SourceTree,
                    name: "go-build".into(),
                    reason: "Go build cache",
                },
            ),
            ("pkg", Some("mod")) if comps.get(i + 2) == Some(&"cache") => found(
                i + 1,
                DirRule {
                    category: SourceTree,
                    name: "pkg/mod".into(),
                    reason: "Go module cache (dependency sources)",
                },
            ),
            _ => {}
        }
    }
    if let ["usr", "lib", go, ..] = comps
        && go.starts_with("go-")
    {
        found(
            2,
            DirRule {
                category: LanguageToolchain,
                name: (*go).to_string(),
                reason: "Go toolchain (GOROOT)",
            },
        );
    }
}

const C_EXTENSIONS: &[&str] = &["c", "cc", "cpp", "cxx"];
const H_EXTENSIONS: &[&str] = &["h", "hh", "hpp", "hxx"];

/// Trees where C sources and headers are part of installed software, not build leftovers.
const C_EXCLUDED_PREFIXES: &[&str] = &[
    "usr/include/",
    "usr/local/include/",
    "usr/share/",
    "usr/lib/",
    "usr/lib64/",
    "usr/libexec/",
    "usr/local/lib/",
    "usr/src/",
    "lib/",
    "lib64/",
];
const C_EXCLUDED_COMPONENTS: &[&str] = &[
    "node_modules",
    "site-packages",
    "dist-packages",
    "include",
    ".cargo",
    ".rustup",
];

fn extension(name: &str) -> Option<&str> {
    name.rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .map(|(_, e)| e)
}

fn under_any(path: &str, roots: &BTreeSet<String>) -> bool {
    roots.iter().any(|r| {
        r.is_empty()
            || path
                .strip_prefix(r.as_str())
                .is_some_and(|s| s.starts_with('/'))
    })
}

/// Main packages of the Go toolchain's commands (build info `path`) and the name to report.
const GO_TOOLCHAIN_MAINS: &[(&str, &str)] = &[
    ("cmd/go", "go"),
    ("cmd/compile", "compile"),
    ("cmd/link", "link"),
    ("cmd/asm", "asm"),
    ("cmd/cgo", "cgo"),
];

pub(crate) fn derive(
    layers: &Layers<'_>,
    fs: &Filesystem,
    packages: &[Package],
) -> Vec<ToolchainFact> {
    let Some(rules) = RULES.as_ref() else {
        return Vec::new();
    };
    let owners = owners(packages);
    let owner = |path: &str| owners.get(path).copied().flatten().map(str::to_string);
    let mut facts = Vec::new();
    let path_fact =
        |name: &str, category, reason: String, path: &str, layer: usize| ToolchainFact {
            name: name.to_string(),
            category,
            evidence: Evidence::Path,
            package: owner(path),
            reason,
            location: layers.location(layer, path),
        };

    let mut dirs: BTreeMap<String, (DirRule, usize)> = BTreeMap::new();
    let mut include: BTreeMap<&str, (usize, BTreeMap<usize, usize>)> = BTreeMap::new();
    let mut ts: BTreeMap<String, Group> = BTreeMap::new();
    let mut go_files: Vec<(&str, usize)> = Vec::new();
    let mut go_mods: BTreeSet<String> = BTreeSet::new();
    let mut goroots: BTreeSet<String> = BTreeSet::new();
    let mut c_files: Vec<(&str, usize, bool)> = Vec::new();

    for (path, f) in &fs.files {
        let comps: Vec<&str> = path.split('/').collect();
        dir_rules(&comps, |i, rule| {
            dirs.entry(comps[..=i].join("/")).or_insert((rule, f.layer));
        });
        if f.entry.kind == EntryKind::Dir {
            continue;
        }
        let name = base_name(path);
        let dir = parent(path);
        let dir_name = base_name(dir);

        // Under node_modules, packages' own `bin/` scripts are covered by the
        // node_modules rules.
        if matches!(dir_name, "bin" | "sbin")
            && !comps.contains(&"node_modules")
            && let Some((category, reason)) = classify_bin(rules, name)
            && fs
                .resolve(path)
                .is_some_and(|(_, t)| t.entry.kind != EntryKind::Dir)
        {
            facts.push(path_fact(name, category, reason.into(), path, f.layer));
        }
        if matches!(name, "cc1" | "cc1plus")
            && (path.starts_with("usr/lib/gcc/") || path.starts_with("usr/libexec/gcc/"))
        {
            facts.push(path_fact(
                name,
                Compiler,
                "GCC compiler proper".into(),
                path,
                f.layer,
            ));
        }
        if dir.ends_with("node_modules/.bin") && matches!(name, "tsc" | "node-gyp") {
            let (category, reason) = classify_bin(rules, name).unwrap_or((NodeBuild, ""));
            facts.push(path_fact(name, category, reason.into(), path, f.layer));
        }
        // `X/bin/go` makes X a GOROOT, unless X is a prefix like `usr` (`usr/bin/go` is a
        // link into the real GOROOT).
        if name == "go" && dir_name == "bin" && !matches!(parent(dir), "" | "usr" | "usr/local") {
            goroots.insert(parent(dir).to_string());
        }
        if let Some(i) = comps.windows(2).position(|w| w == ["pkg", "tool"]) {
            goroots.insert(comps[..i].join("/"));
        }
        for root in ["usr/include", "usr/local/include"] {
            if path.strip_prefix(root).is_some_and(|s| s.starts_with('/')) {
                let (n, by_layer) = include.entry(root).or_default();
                *n += 1;
                *by_layer.entry(f.layer).or_default() += 1;
                if name == "Python.h"
                    && comps.len() == root.split('/').count() + 2
                    && base_name(dir).starts_with("python3")
                {
                    facts.push(path_fact(
                        name,
                        DevHeaders,
                        format!("Python C API headers ({dir_name}): a python3-dev leftover"),
                        path,
                        f.layer,
                    ));
                }
            }
        }
        if name == "HEAD" && dir_name == ".git" {
            facts.push(path_fact(
                dir,
                Vcs,
                "git repository metadata (.git directory)".into(),
                path,
                f.layer,
            ));
        }
        let ext = extension(name);
        if name == "go.mod" {
            go_mods.insert(dir.to_string());
        } else if ext == Some("go") {
            go_files.push((path, f.layer));
        } else if matches!(ext, Some("ts" | "tsx"))
            && !name.ends_with(".d.ts")
            && !comps.contains(&"node_modules")
            && let Some(i) = comps[..comps.len() - 1].iter().position(|c| *c == "src")
        {
            Group::add(&mut ts, comps[..=i].join("/"), path, f.layer);
        } else if let Some(e) = ext {
            let source = C_EXTENSIONS.contains(&e);
            if (source || H_EXTENSIONS.contains(&e))
                && !C_EXCLUDED_PREFIXES.iter().any(|p| path.starts_with(p))
                && !comps.iter().any(|c| C_EXCLUDED_COMPONENTS.contains(c))
            {
                c_files.push((path, f.layer, source));
            }
        }
    }

    for (key, (rule, layer)) in dirs {
        facts.push(path_fact(
            &rule.name,
            rule.category,
            rule.reason.into(),
            &key,
            layer,
        ));
    }
    for (root, (n, by_layer)) in include {
        // The layer that contributed most headers (lowest index on a tie).
        let layer = by_layer
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or(0, |(l, _)| *l);
        facts.push(ToolchainFact {
            name: root.to_string(),
            category: DevHeaders,
            evidence: Evidence::Path,
            package: None,
            reason: format!("{n} C/C++ header files under {root}"),
            location: layers.location(layer, root),
        });
    }

    // Caches and toolchains own their sources: not source trees of the application.
    let mut vendored: BTreeSet<String> = goroots.clone();
    vendored.extend(
        facts
            .iter()
            .filter(|f| matches!(f.name.as_str(), "pkg/mod" | ".cargo/registry" | ".rustup"))
            .filter_map(|f| f.location.path.clone()),
    );
    // Go: sources grouped by the outermost directory with a go.mod above them.
    let mut go: BTreeMap<String, Group> = BTreeMap::new();
    for (path, layer) in go_files {
        if under_any(path, &vendored) {
            continue;
        }
        let comps: Vec<&str> = path.split('/').collect();
        let module = (0..comps.len())
            .map(|i| comps[..i].join("/"))
            .find(|d| go_mods.contains(d));
        if let Some(module) = module {
            Group::add(&mut go, module, path, layer);
        }
    }
    for (module, g) in go {
        let shown = if module.is_empty() { "." } else { &module };
        facts.push(path_fact(
            &format!("{shown}/**/*.go"),
            SourceTree,
            format!("{} Go source files in module {shown}", g.count),
            &g.first,
            g.layer,
        ));
    }
    for (src, g) in ts {
        facts.push(path_fact(
            &format!("{src}/**/*.ts"),
            SourceTree,
            format!("{} TypeScript source files under {src}", g.count),
            &g.first,
            g.layer,
        ));
    }
    // C/C++: grouped per top-most directory holding sources; header-only groups are
    // libraries' public headers, not a source tree.
    let mut c_groups: BTreeMap<String, (Group, bool)> = BTreeMap::new();
    let mut c_dirs: BTreeSet<String> = BTreeSet::new();
    for (path, _, _) in &c_files {
        if !under_any(path, &vendored) {
            c_dirs.insert(parent(path).to_string());
        }
    }
    for (path, layer, source) in c_files {
        if under_any(path, &vendored) {
            continue;
        }
        let dir = parent(path);
        let comps: Vec<&str> = dir.split('/').collect();
        let top = (1..=comps.len())
            .map(|i| comps[..i].join("/"))
            .find(|d| c_dirs.contains(d))
            .unwrap_or_else(|| dir.to_string());
        let entry = c_groups.entry(top).or_insert_with(|| {
            (
                Group {
                    count: 0,
                    first: path.to_string(),
                    layer,
                },
                false,
            )
        });
        entry.0.count += 1;
        entry.1 |= source;
    }
    for (dir, (g, has_source)) in c_groups {
        if !has_source {
            continue;
        }
        let shown = if dir.is_empty() { "." } else { &dir };
        facts.push(path_fact(
            shown,
            SourceTree,
            format!("{} C/C++ source files under {shown}", g.count),
            &g.first,
            g.layer,
        ));
    }

    // Source maps the `toolchain` analyzer confirmed, still visible, per directory.
    let mut maps: BTreeMap<String, Group> = BTreeMap::new();
    for l in layers.all() {
        for p in &l.report.source_maps {
            if fs.get(p).is_some_and(|f| f.layer == l.index) {
                Group::add(&mut maps, parent(p).to_string(), p, l.index);
            }
        }
    }
    for (dir, g) in maps {
        let name = if g.count == 1 {
            g.first.clone()
        } else {
            format!("{dir}/*.map")
        };
        facts.push(path_fact(
            &name,
            SourceMap,
            format!(
                "{} source map(s): they map shipped code back to the original sources",
                g.count
            ),
            &g.first,
            g.layer,
        ));
    }

    // Package evidence: the toolchain packages, then their binaries no path rule named.
    let path_facts: BTreeSet<String> = facts
        .iter()
        .filter_map(|f| f.location.path.clone())
        .collect();
    let mut owned = Vec::new();
    for p in packages {
        let Some((category, reason)) = classify_package(rules, &p.name) else {
            continue;
        };
        facts.push(ToolchainFact {
            name: p.name.clone(),
            category,
            evidence: Evidence::Package,
            package: Some(p.name.clone()),
            reason: reason.to_string(),
            location: p.location.clone(),
        });
        for file in &p.files {
            if !matches!(base_name(parent(file)), "bin" | "sbin") {
                continue;
            }
            // The spelling that exists in the final filesystem (merged /usr or not).
            let Some((path, f)) = spellings(file)
                .into_iter()
                .find_map(|s| fs.get(&s).map(|f| (s, f)))
            else {
                continue;
            };
            if f.entry.kind == EntryKind::Dir
                || path_facts.contains(&path)
                || !fs
                    .resolve(&path)
                    .is_some_and(|(_, t)| t.entry.kind != EntryKind::Dir)
            {
                continue;
            }
            owned.push(ToolchainFact {
                name: base_name(&path).to_string(),
                category,
                evidence: Evidence::Package,
                package: Some(p.name.clone()),
                reason: format!("installed by {} ({reason})", p.name),
                location: layers.location(f.layer, &path),
            });
        }
    }
    facts.extend(owned);

    // ELF evidence: Go toolchain commands recognised by the main package recorded in their
    // build info, so a renamed or relocated `go` still counts. Skipped where a path rule
    // already reported the same file.
    let reported: BTreeSet<String> = facts
        .iter()
        .filter_map(|f| f.location.path.clone())
        .collect();
    for l in layers.all() {
        for (path, main) in &l.report.go_mains {
            let Some(command) = GO_TOOLCHAIN_MAINS.iter().find(|(m, _)| m == main) else {
                continue;
            };
            if reported.contains(path) || fs.get(path).is_none_or(|f| f.layer != l.index) {
                continue;
            }
            facts.push(ToolchainFact {
                name: command.1.to_string(),
                category: Category::LanguageToolchain,
                evidence: Evidence::Elf,
                package: owner(path),
                reason: format!(
                    "Go toolchain command ({main}), identified by its embedded build info"
                ),
                location: layers.location(l.index, path),
            });
        }
    }

    facts.sort_by(|a, b| {
        (
            &a.location.path,
            &a.name,
            a.evidence,
            a.category,
            &a.package,
        )
            .cmp(&(
                &b.location.path,
                &b.name,
                b.evidence,
                b.category,
                &b.package,
            ))
    });
    facts.dedup();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compile() {
        assert!(RULES.is_some());
    }

    #[test]
    fn bin_names() {
        let Some(r) = RULES.as_ref() else {
            panic!("rules")
        };
        let c = |n: &str| classify_bin(r, n).map(|(c, _)| c);
        for n in [
            "gcc",
            "gcc-12",
            "x86_64-linux-gnu-gcc-12",
            "x86_64-alpine-linux-musl-gcc",
            "arm-linux-gnueabihf-g++",
            "cc",
            "c++",
            "ld.gold",
            "x86_64-linux-gnu-ld.bfd",
            "clang-15",
        ] {
            assert_eq!(c(n), Some(Compiler), "{n}");
        }
        for n in ["make", "automake-1.16", "x86_64-linux-gnu-pkg-config"] {
            assert_eq!(c(n), Some(BuildTool), "{n}");
        }
        assert_eq!(c("go"), Some(LanguageToolchain));
        for n in [
            "gcc-ar",
            "gcc-ar-12",
            "python3",
            "ldd",
            "asdf",
            "ccache",
            "go1",
        ] {
            assert_eq!(c(n), None, "{n}");
        }
    }

    #[test]
    fn package_names() {
        let Some(r) = RULES.as_ref() else {
            panic!("rules")
        };
        let c = |n: &str| classify_package(r, n).map(|(c, _)| c);
        assert_eq!(c("build-essential"), Some(BuildTool));
        assert_eq!(c("gcc-12"), Some(Compiler));
        assert_eq!(c("gcc-12-x86-64-linux-gnu"), Some(Compiler));
        assert_eq!(c("cpp"), Some(Compiler));
        assert_eq!(c("g++"), Some(Compiler));
        assert_eq!(c("binutils-x86-64-linux-gnu"), Some(Compiler));
        assert_eq!(c("golang-1.19-go"), Some(LanguageToolchain));
        assert_eq!(c("libc6-dev"), Some(DevPackage));
        assert_eq!(c("python3-dev"), Some(DevPackage));
        assert_eq!(c("linux-headers"), Some(DevPackage));
        for n in [
            "gcc-12-base",
            "libgcc-s1",
            "libgcc",
            "binutils-common",
            "libbinutils",
            "make-doc",
            "libclang-cpp15",
            "golang-github-foo",
            "python3",
            "devscripts",
        ] {
            assert_eq!(c(n), None, "{n}");
        }
    }

    #[test]
    fn merged_usr_spellings() {
        assert_eq!(spellings("bin/gcc"), vec!["bin/gcc", "usr/bin/gcc"]);
        assert_eq!(spellings("usr/bin/gcc"), vec!["usr/bin/gcc", "bin/gcc"]);
        assert_eq!(spellings("usr/share/x"), vec!["usr/share/x"]);
    }
}
