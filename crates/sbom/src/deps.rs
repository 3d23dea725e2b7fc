//! The dependency graph: each package's declared dependencies resolved to components present
//! in the image.
//!
//! A dependency is a name as the metadata writes it (`libc6 (>= 2.34)`, `urllib3<3,>=1.21.1`,
//! `so:libc.musl-x86_64.so.1`); it becomes an edge only to a component of the same ecosystem
//! with that (normalised) name. When several components carry the name, the closest wins:
//! - npm follows Node's lookup: `node_modules/NAME` next to the dependent, then in each
//!   parent directory up to the root;
//! - every other ecosystem prefers the candidates whose location shares the longest path
//!   prefix with the dependent's (the same status file, the same `site-packages`, the same
//!   binary), and keeps every candidate that ties (multi-arch `libc6:amd64` and `libc6:i386`).
//!
//! Dependencies that name nothing present (virtual packages, `so:` provides, optional extras
//! that were not installed) give no edge: the graph only has edges between components.

use std::collections::{BTreeSet, HashMap};

/// One package, as the resolver sees it.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    /// purl type.
    pub ecosystem: &'a str,
    /// Full name (npm `@scope/name`, maven `group:artifact`).
    pub name: String,
    /// Location path (no leading `/`).
    pub path: &'a str,
    /// Declared dependencies.
    pub dependencies: &'a [String],
}

/// The name under which an ecosystem looks packages up.
pub fn key(ecosystem: &str, name: &str) -> String {
    match ecosystem {
        // PEP 503: case-insensitive, runs of `-_.` are one `-`.
        "pypi" => {
            let mut out = String::with_capacity(name.len());
            let mut sep = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    sep = true;
                } else {
                    if sep && !out.is_empty() {
                        out.push('-');
                    }
                    sep = false;
                    out.push(c.to_ascii_lowercase());
                }
            }
            out
        }
        "deb" | "apk" => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// The package names one declared dependency may be satisfied by (alternatives for dpkg's
/// `a | b`), already [`key`]ed; empty when the dependency cannot name a package.
pub fn dependency_names(ecosystem: &str, dep: &str) -> Vec<String> {
    let dep = dep.trim();
    let names: Vec<&str> = match ecosystem {
        "deb" => dep
            .split('|')
            .map(|alt| {
                let alt = alt.trim();
                let end = alt
                    .find(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
                    .unwrap_or(alt.len());
                let name = &alt[..end];
                // `libc6:amd64`, `python3:any`
                name.split(':').next().unwrap_or(name)
            })
            .collect(),
        "apk" | "rpm" => {
            // apk `so:`/`cmd:`/`pc:` provides and `!conflicts`, rpm file and library
            // requirements (`/bin/sh`, `libc.so.6()(64bit)`, `rpmlib(…)`) name no package.
            if dep.starts_with('!') || dep.starts_with('/') || dep.contains('(') {
                return Vec::new();
            }
            let end = dep
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '=' | '~'))
                .unwrap_or(dep.len());
            let name = &dep[..end];
            if name.contains(':') {
                return Vec::new();
            }
            vec![name]
        }
        "pypi" => {
            // PEP 508: a requirement only for an extra is not a dependency of the install.
            if let Some((_, marker)) = dep.split_once(';')
                && marker.contains("extra")
            {
                return Vec::new();
            }
            let end = dep
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(dep.len());
            vec![&dep[..end]]
        }
        "npm" => {
            // `name`, `@scope/name`, or either with `@range`.
            let at = dep
                .char_indices()
                .skip(1)
                .find(|(_, c)| *c == '@')
                .map_or(dep.len(), |(i, _)| i);
            vec![&dep[..at]]
        }
        "maven" => {
            // `group:artifact[:version…]` or a bare artifact.
            let mut parts = dep.split(':');
            match (parts.next(), parts.next()) {
                (Some(g), Some(a)) => return vec![format!("{g}:{a}")],
                _ => vec![dep],
            }
        }
        // golang module paths, cargo crate names (`name version` in cargo-auditable's view).
        _ => vec![dep.split_whitespace().next().unwrap_or("")],
    };
    names
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|n| key(ecosystem, n))
        .collect()
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn common_components(a: &str, b: &str) -> usize {
    a.split('/')
        .zip(b.split('/'))
        .take_while(|(x, y)| x == y)
        .count()
}

/// Resolves every node's dependencies: `edges[i]` are the indexes node `i` depends on,
/// sorted, without duplicates or self-edges.
pub fn resolve(nodes: &[Node<'_>]) -> Vec<Vec<usize>> {
    let mut by_name: HashMap<(&str, String), Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        by_name
            .entry((n.ecosystem, key(n.ecosystem, &n.name)))
            .or_default()
            .push(i);
    }
    let npm_paths: HashMap<&str, Vec<usize>> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.ecosystem == "npm")
        .fold(HashMap::new(), |mut m, (i, n)| {
            m.entry(n.path).or_default().push(i);
            m
        });
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut out = BTreeSet::new();
            for dep in n.dependencies {
                for name in dependency_names(n.ecosystem, dep) {
                    let Some(candidates) = by_name.get(&(n.ecosystem, name.clone())) else {
                        continue;
                    };
                    let found = if n.ecosystem == "npm" {
                        node_lookup(n.path, &name, &npm_paths)
                            .unwrap_or_else(|| closest(n.path, candidates, nodes))
                    } else {
                        closest(n.path, candidates, nodes)
                    };
                    out.extend(found.into_iter().filter(|&j| j != i));
                    break;
                }
            }
            out.into_iter().collect()
        })
        .collect()
}

/// Node's `require` lookup from the directory of `from` (a `package.json`).
fn node_lookup(
    from: &str,
    name: &str,
    npm_paths: &HashMap<&str, Vec<usize>>,
) -> Option<Vec<usize>> {
    let mut dir = parent(from);
    loop {
        if !dir.ends_with("node_modules") {
            let candidate = if dir.is_empty() {
                format!("node_modules/{name}/package.json")
            } else {
                format!("{dir}/node_modules/{name}/package.json")
            };
            if let Some(found) = npm_paths.get(candidate.as_str()) {
                return Some(found.clone());
            }
        }
        if dir.is_empty() {
            return None;
        }
        dir = parent(dir);
    }
}

/// The candidates whose location shares the most leading path components with `from`.
fn closest(from: &str, candidates: &[usize], nodes: &[Node<'_>]) -> Vec<usize> {
    let best = candidates
        .iter()
        .map(|&j| common_components(from, nodes[j].path))
        .max()
        .unwrap_or(0);
    candidates
        .iter()
        .copied()
        .filter(|&j| common_components(from, nodes[j].path) == best)
        .collect()
}

/// Components no other component depends on, plus one member of each cycle not reachable
/// from them (smallest index first), so that every node is reachable from the result.
pub fn roots(edges: &[Vec<usize>], members: &[usize]) -> Vec<usize> {
    let member: BTreeSet<usize> = members.iter().copied().collect();
    let mut depended = BTreeSet::new();
    for &i in members {
        depended.extend(edges[i].iter().copied().filter(|j| member.contains(j)));
    }
    let mut roots: Vec<usize> = members
        .iter()
        .copied()
        .filter(|i| !depended.contains(i))
        .collect();
    let mut seen = BTreeSet::new();
    let visit = |start: usize, seen: &mut BTreeSet<usize>| {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if seen.insert(i) {
                stack.extend(edges[i].iter().copied().filter(|j| member.contains(j)));
            }
        }
    };
    for &r in &roots {
        visit(r, &mut seen);
    }
    let mut sorted: Vec<usize> = members.to_vec();
    sorted.sort_unstable();
    for i in sorted {
        if !seen.contains(&i) {
            roots.push(i);
            visit(i, &mut seen);
        }
    }
    roots.sort_unstable();
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(eco: &'a str, name: &str, path: &'a str, deps: &'a [String]) -> Node<'a> {
        Node {
            ecosystem: eco,
            name: name.into(),
            path,
            dependencies: deps,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_are_read_per_ecosystem() {
        assert_eq!(
            dependency_names("deb", "libc6 (>= 2.34)"),
            vec!["libc6".to_string()]
        );
        assert_eq!(
            dependency_names("deb", "debconf (>= 0.5) | debconf-2.0"),
            vec!["debconf".to_string(), "debconf-2.0".to_string()]
        );
        assert_eq!(dependency_names("deb", "python3:any"), vec!["python3"]);
        assert_eq!(
            dependency_names("apk", "so:libc.musl-x86_64.so.1"),
            Vec::<String>::new()
        );
        assert_eq!(dependency_names("apk", "musl>=1.2"), vec!["musl"]);
        assert_eq!(dependency_names("apk", "!foo"), Vec::<String>::new());
        assert_eq!(dependency_names("rpm", "/bin/sh"), Vec::<String>::new());
        assert_eq!(
            dependency_names("rpm", "libc.so.6()(64bit)"),
            Vec::<String>::new()
        );
        assert_eq!(dependency_names("rpm", "glibc >= 2.28"), vec!["glibc"]);
        assert_eq!(
            dependency_names("pypi", "charset_normalizer<4,>=2"),
            vec!["charset-normalizer"]
        );
        assert_eq!(
            dependency_names("pypi", "PySocks!=1.5.7,>=1.5.6; extra == \"socks\""),
            Vec::<String>::new()
        );
        assert_eq!(
            dependency_names("pypi", "importlib-metadata; python_version < \"3.8\""),
            vec!["importlib-metadata"]
        );
        assert_eq!(
            dependency_names("npm", "@babel/core@^7.0.0"),
            vec!["@babel/core"]
        );
        assert_eq!(dependency_names("npm", "debug"), vec!["debug"]);
        assert_eq!(
            dependency_names("maven", "org.slf4j:slf4j-api:2.0.9"),
            vec!["org.slf4j:slf4j-api"]
        );
        assert_eq!(dependency_names("cargo", "serde 1.0.1"), vec!["serde"]);
    }

    #[test]
    fn pep503_keys() {
        assert_eq!(key("pypi", "Charset_Normalizer"), "charset-normalizer");
        assert_eq!(key("pypi", "zope.interface"), "zope-interface");
        assert_eq!(key("pypi", "a__b--c"), "a-b-c");
    }

    #[test]
    fn npm_follows_node_lookup() {
        let none = s(&[]);
        let dep_on_ms = s(&["ms"]);
        let nodes = vec![
            node(
                "npm",
                "debug",
                "app/node_modules/debug/package.json",
                &dep_on_ms,
            ),
            node("npm", "ms", "app/node_modules/ms/package.json", &none),
            node(
                "npm",
                "send",
                "app/node_modules/send/package.json",
                &dep_on_ms,
            ),
            node(
                "npm",
                "ms",
                "app/node_modules/send/node_modules/ms/package.json",
                &none,
            ),
            node(
                "npm",
                "other",
                "srv/node_modules/other/package.json",
                &dep_on_ms,
            ),
        ];
        let edges = resolve(&nodes);
        assert_eq!(edges[0], vec![1]);
        assert_eq!(edges[2], vec![3]);
        // Not reachable by Node's lookup: the closest by path.
        assert_eq!(edges[4], vec![1, 3]);
    }

    #[test]
    fn closest_location_wins_and_ties_are_kept() {
        let none = s(&[]);
        let req = s(&["urllib3<3"]);
        let libc = s(&["libc6 (>= 2.36)"]);
        let nodes = vec![
            node(
                "pypi",
                "requests",
                "usr/lib/python3/dist-packages/requests-2.dist-info/METADATA",
                &req,
            ),
            node(
                "pypi",
                "urllib3",
                "usr/lib/python3/dist-packages/urllib3-1.dist-info/METADATA",
                &none,
            ),
            node(
                "pypi",
                "urllib3",
                "opt/venv/lib/site-packages/urllib3-2.dist-info/METADATA",
                &none,
            ),
            node("deb", "bash", "var/lib/dpkg/status", &libc),
            node("deb", "libc6", "var/lib/dpkg/status", &none),
            node("deb", "libc6", "var/lib/dpkg/status", &none),
            node("apk", "libc6", "lib/apk/db/installed", &none),
        ];
        let edges = resolve(&nodes);
        assert_eq!(edges[0], vec![1]);
        assert_eq!(edges[3], vec![4, 5]);
    }

    #[test]
    fn roots_cover_cycles() {
        // 0 -> 1 -> 2; 3 <-> 4 (a cycle nothing else reaches); 5 alone.
        let edges = vec![vec![1], vec![2], vec![], vec![4], vec![3], vec![]];
        assert_eq!(roots(&edges, &[0, 1, 2, 3, 4, 5]), vec![0, 3, 5]);
        assert_eq!(roots(&edges, &[1, 2]), vec![1]);
    }
}
