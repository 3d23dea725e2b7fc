//! `passwd` and `group`: the accounts an image defines, so `USER name` can be mapped to a uid.
//!
//! Besides `etc/passwd` and `etc/group` the analyzer reads the few places distributions keep
//! the real files when `etc/passwd` is a symlink (`usr/lib`, `usr/share/baselayout`,
//! `usr/share/defaults/etc`), so the facts can follow such a link.

use gantry_model::fs::FileEntry;
use serde::{Deserialize, Serialize};

use super::{Analyzer, Interest, LayerAnalysis};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "passwd";

/// Real account files are a few KiB (a large LDAP-synced one a few hundred); 1 MiB is far
/// beyond any of them, so a bigger file is treated as hostile and not parsed.
pub const MAX_BYTES: usize = 1024 * 1024;

/// One `passwd` line: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// One `group` line: `name:password:gid:member,member`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// A parsed `passwd` file of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdFile {
    /// Path in the layer.
    pub path: String,
    /// Valid entries, in file order (the first entry of a name wins, as in `getpwnam`).
    pub entries: Vec<PasswdEntry>,
    /// Lines that were not valid entries (skipped; reported as an unknown too).
    pub malformed: u32,
}

/// A parsed `group` file of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFile {
    /// Path in the layer.
    pub path: String,
    /// Valid entries, in file order.
    pub entries: Vec<GroupEntry>,
    /// Lines that were not valid entries.
    pub malformed: u32,
}

/// Reads account files.
#[derive(Debug)]
pub struct PasswdAnalyzer;

impl Analyzer for PasswdAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        1
    }

    fn interest(&self) -> Interest {
        Interest::paths(
            &[
                "etc/passwd",
                "etc/group",
                "usr/lib/passwd",
                "usr/lib/group",
                "usr/share/baselayout/passwd",
                "usr/share/baselayout/group",
                "usr/share/defaults/etc/passwd",
                "usr/share/defaults/etc/group",
            ],
            MAX_BYTES,
        )
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(PasswdLayer {
            budget: budget.clone(),
            ..PasswdLayer::default()
        })
    }
}

#[derive(Default)]
struct PasswdLayer {
    budget: Budget,
    passwd: Vec<PasswdFile>,
    groups: Vec<GroupFile>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for PasswdLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let unknown = |reason: String| Unknown {
            analyzer: ID.to_string(),
            path: entry.path.clone(),
            reason,
        };
        if !complete {
            let reason = format!(
                "{} bytes, larger than the {} KiB limit for account files; not parsed",
                entry.size,
                MAX_BYTES / 1024
            );
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        if content.contains(&0) {
            let reason = "not a text file (NUL bytes); not parsed".into();
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        let text = String::from_utf8_lossy(content);
        let is_group = entry.path.ends_with("group");
        let (valid, bad) = if is_group {
            let (entries, bad) = parse_group(&text);
            let n = entries.len();
            self.groups.push(GroupFile {
                path: entry.path.clone(),
                entries,
                malformed: bad.count,
            });
            (n, bad)
        } else {
            let (entries, bad) = parse_passwd(&text);
            let n = entries.len();
            self.passwd.push(PasswdFile {
                path: entry.path.clone(),
                entries,
                malformed: bad.count,
            });
            (n, bad)
        };
        if let Some(reason) = bad.describe(valid) {
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.passwd.extend(self.passwd);
        report.groups.extend(self.groups);
        report.unknowns.extend(self.unknowns);
    }
}

/// Lines a parser skipped because they were not valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Malformed {
    /// How many.
    pub count: u32,
    /// 1-based number of the first one.
    pub first_line: Option<usize>,
}

impl Malformed {
    pub(crate) fn add(&mut self, line: usize) {
        self.count = self.count.saturating_add(1);
        self.first_line.get_or_insert(line);
    }

    /// The unknown's reason, when anything was skipped.
    pub(crate) fn describe(&self, valid: usize) -> Option<String> {
        let first = self.first_line.unwrap_or(0);
        match (self.count, valid) {
            (0, _) => None,
            (n, 0) => Some(format!(
                "no valid entries: {n} malformed line(s), first at line {first}"
            )),
            (n, _) => Some(format!(
                "{n} malformed line(s) skipped, first at line {first}; {valid} valid entries used"
            )),
        }
    }
}

/// Lines that carry no entry and are not errors: blank, `#` comments (tolerated by the
/// tools that edit these files), and NIS compat lines (`+`, `-`).
fn ignorable(line: &str) -> bool {
    line.trim().is_empty() || line.starts_with(['#', '+', '-'])
}

/// Parses a `passwd` file. Never fails: invalid lines are counted and skipped.
pub fn parse_passwd(text: &str) -> (Vec<PasswdEntry>, Malformed) {
    let mut entries = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if ignorable(line) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let parsed = match f.as_slice() {
            [name, _pw, uid, gid, _gecos, home, shell] if !name.is_empty() => {
                match (uid.parse::<u32>(), gid.parse::<u32>()) {
                    (Ok(uid), Ok(gid)) => Some(PasswdEntry {
                        name: (*name).to_string(),
                        uid,
                        gid,
                        home: (*home).to_string(),
                        shell: (*shell).to_string(),
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        match parsed {
            Some(e) => entries.push(e),
            None => bad.add(i + 1),
        }
    }
    (entries, bad)
}

/// Parses a `group` file. Never fails: invalid lines are counted and skipped.
pub fn parse_group(text: &str) -> (Vec<GroupEntry>, Malformed) {
    let mut entries = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if ignorable(line) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let parsed = match f.as_slice() {
            [name, _pw, gid, members] if !name.is_empty() => {
                gid.parse::<u32>().ok().map(|gid| GroupEntry {
                    name: (*name).to_string(),
                    gid,
                    members: members
                        .split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
            }
            _ => None,
        };
        match parsed {
            Some(e) => entries.push(e),
            None => bad.add(i + 1),
        }
    }
    (entries, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_counts_malformed_lines() {
        let (e, bad) = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n\
             # comment\n\
             \n\
             toor:x:0:0::/root:/bin/sh\r\n\
             broken line\n\
             neg:x:-1:0::/:/bin/false\n\
             big:x:4294967296:0::/:/bin/false\n\
             :x:1:1::/:/bin/false\n\
             appuser:x:1001:1001:App,,,:/home/app:/usr/sbin/nologin\n\
             +::::::\n",
        );
        let names: Vec<_> = e.iter().map(|e| (e.name.as_str(), e.uid, e.gid)).collect();
        assert_eq!(
            names,
            vec![("root", 0, 0), ("toor", 0, 0), ("appuser", 1001, 1001)]
        );
        assert_eq!(e[2].home, "/home/app");
        assert_eq!(e[1].shell, "/bin/sh");
        assert_eq!(
            bad,
            Malformed {
                count: 4,
                first_line: Some(5)
            }
        );
        assert!(bad.describe(3).unwrap().contains("4 malformed"));
    }

    #[test]
    fn parses_group_members() {
        let (g, bad) = parse_group("root:x:0:\nstaff:x:50:alice, bob,,\nbad:x:zz:\nshort:x\n");
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].members, vec!["alice", "bob"]);
        assert_eq!(bad.count, 2);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for input in [
            "",
            ":",
            "::::::",
            "a:b:c:d:e:f:g:h:i",
            "\u{0}\u{0}:\u{0}",
            "root:x:0:0:root:/root",
            &"x:".repeat(10_000),
            "é:x:1:1:é:/é:/é",
        ] {
            let _ = parse_passwd(input);
            let _ = parse_group(input);
        }
        let (e, bad) = parse_passwd("garbage\nmore garbage");
        assert!(e.is_empty());
        assert!(bad.describe(0).unwrap().starts_with("no valid entries"));
    }
}
