//! `passwd` and `group`: the accounts an image defines, so `USER name` can be mapped to a uid.
//!
//! The files are parsed the way the container runtime parses them — runc and Docker use
//! `github.com/moby/sys/user` (formerly runc's `libcontainer/user`): every non-blank line of
//! `passwd` is an entry, split at `:` with missing fields left empty and ids that are not
//! numbers read as 0 (`strconv.Atoi` with the error ignored); `group` skips `#` comment
//! lines as well. A `passwd` line longer than 64 KiB (a `group` line longer than 1 MiB)
//! stops the runtime's scanner with an error, so it is recorded. Lines that are not
//! well-formed entries are still counted and reported as an unknown: the runtime's reading
//! of them is rarely what the author meant.
//!
//! Every file named `passwd` or `group` is read, so that `etc/passwd` can be followed through
//! a symlink to wherever it points inside the image (`usr/lib/passwd`, `usr/share/baselayout`,
//! or anywhere else); unknowns are reported only for the places account files are kept
//! ([`ACCOUNT_PATHS`]), not for a binary or a script that happens to share the name.

use gantry_model::fs::FileEntry;
use serde::{Deserialize, Serialize};

use super::{Analyzer, Interest, LayerAnalysis};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "passwd";

/// Real account files are a few KiB (a large LDAP-synced one a few hundred); 1 MiB is far
/// beyond any of them, so a bigger file is treated as hostile and not parsed.
pub const MAX_BYTES: usize = 1024 * 1024;

/// The longest `passwd` line the runtime reads: `bufio.Scanner`'s default token limit
/// (`MaxScanTokenSize`, 64 KiB including the newline). A longer line makes its lookup fail.
pub const MAX_PASSWD_LINE: usize = 64 * 1024 - 1;

/// The longest `group` line the runtime reads: moby/sys/user raises the scanner's limit to
/// 1 MiB for groups, whose member lists can be long.
pub const MAX_GROUP_LINE: usize = 1024 * 1024 - 1;

/// Where distributions keep account files; unknowns are reported for these paths only.
pub const ACCOUNT_PATHS: &[&str] = &[
    "etc/passwd",
    "etc/group",
    "usr/lib/passwd",
    "usr/lib/group",
    "usr/share/baselayout/passwd",
    "usr/share/baselayout/group",
    "usr/share/defaults/etc/passwd",
    "usr/share/defaults/etc/group",
];

/// One `passwd` line as the runtime reads it: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdEntry {
    /// Login name (the first field, as written).
    pub name: String,
    /// User id (0 when the field is missing or not a number, as `strconv.Atoi` with its
    /// error ignored gives).
    pub uid: i64,
    /// Primary group id (same reading).
    pub gid: i64,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// One `group` line as the runtime reads it: `name:password:gid:member,member`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id (0 when missing or not a number).
    pub gid: i64,
    /// Supplementary members, split at `,` and not trimmed (as the runtime splits them).
    pub members: Vec<String>,
}

/// A parsed `passwd` file of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdFile {
    /// Path in the layer.
    pub path: String,
    /// Entries in file order, up to a line the runtime cannot read (the first entry of a
    /// name or uid wins, as in the runtime).
    pub entries: Vec<PasswdEntry>,
    /// Lines that are not well-formed entries (read anyway, as the runtime reads them).
    pub malformed: u32,
    /// 1-based number of the first of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_malformed: Option<usize>,
    /// 1-based number of a line too long for the runtime's scanner: every lookup in this
    /// file fails there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_line: Option<usize>,
}

/// A parsed `group` file of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFile {
    /// Path in the layer.
    pub path: String,
    /// Entries in file order.
    pub entries: Vec<GroupEntry>,
    /// Lines that are not well-formed entries.
    pub malformed: u32,
    /// 1-based number of the first of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_malformed: Option<usize>,
    /// 1-based number of a line too long for the runtime's scanner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_line: Option<usize>,
}

/// Reads account files.
#[derive(Debug)]
pub struct PasswdAnalyzer;

impl Analyzer for PasswdAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        // 2: every file named passwd or group; lines read as the runtime reads them.
        2
    }

    fn interest(&self) -> Interest {
        Interest::paths(&["**/passwd", "**/group"], MAX_BYTES)
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
        // Only the files the runtime reads are worth an unknown; any other file named
        // passwd or group is kept (a `USER` may point the runtime's lookup there) but
        // not reported when unreadable.
        let canonical = ACCOUNT_PATHS.contains(&entry.path.as_str());
        let budget = self.budget.clone();
        let mut unknown = |reason: String| {
            if canonical {
                let unknown = Unknown {
                    analyzer: ID.to_string(),
                    path: entry.path.clone(),
                    reason,
                };
                budget.keep(Kept::Findings, &mut self.unknowns, unknown);
            }
        };
        if !complete {
            unknown(format!(
                "{} bytes, larger than the {} KiB limit for account files; not parsed",
                entry.size,
                MAX_BYTES / 1024
            ));
            return;
        }
        if content.contains(&0) {
            unknown("not a text file (NUL bytes); not parsed".into());
            return;
        }
        let text = String::from_utf8_lossy(content);
        // Each file's entries are bounded by MAX_BYTES; how many files is bounded by the
        // file-record budget.
        if entry.path.ends_with("group") {
            let file = parse_group(&entry.path, &text);
            if let Some(reason) = describe(&file.malformed_lines(), file.entries.len(), "group") {
                unknown(reason);
            }
            self.budget.keep(Kept::Files, &mut self.groups, file);
        } else {
            let file = parse_passwd(&entry.path, &text);
            if let Some(reason) = describe(&file.malformed_lines(), file.entries.len(), "passwd") {
                unknown(reason);
            }
            self.budget.keep(Kept::Files, &mut self.passwd, file);
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.passwd.extend(self.passwd);
        report.groups.extend(self.groups);
        report.unknowns.extend(self.unknowns);
    }
}

/// Lines a parser skipped because they were not valid (used by the package database
/// parsers).
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

/// What was odd about an account file: (malformed lines, first of them, unreadable line).
type OddLines = (u32, Option<usize>, Option<usize>);

impl PasswdFile {
    fn malformed_lines(&self) -> OddLines {
        (self.malformed, self.first_malformed, self.unreadable_line)
    }
}

impl GroupFile {
    fn malformed_lines(&self) -> OddLines {
        (self.malformed, self.first_malformed, self.unreadable_line)
    }
}

/// The unknown's reason for a file with odd lines, when it has any.
fn describe(odd: &OddLines, entries: usize, kind: &str) -> Option<String> {
    let limit = if kind == "group" { "1 MiB" } else { "64 KiB" };
    match *odd {
        (_, _, Some(line)) => Some(format!(
            "line {line} is longer than {limit}: the container runtime stops reading the file there and fails every user lookup in it"
        )),
        (0, _, None) => None,
        (n, first, None) => Some(format!(
            "{n} line(s) are not well-formed {kind} entries, first at line {}; {entries} line(s) read as the container runtime reads them (missing fields empty, ids that are not numbers 0)",
            first.unwrap_or(0)
        )),
    }
}

/// Go's `strconv.Atoi` as moby/sys/user reads an id field (`*e, _ = strconv.Atoi(p)`): an
/// optional sign and decimal digits; anything else is 0 (the syntax error is ignored) and an
/// overflow is clamped to the 64-bit range (`Atoi` returns the clamped value with its error).
pub fn atoi_lenient(field: &str) -> i64 {
    match atoi(field) {
        Ok(n) => n,
        Err(AtoiError::Syntax) => 0,
        Err(AtoiError::Range(clamped)) => clamped,
    }
}

/// Why [`atoi`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtoiError {
    /// Not `[+-]?[0-9]+` (Go's `strconv.ErrSyntax`).
    Syntax,
    /// Outside the 64-bit range (Go's `strconv.ErrRange`), with the clamped value.
    Range(i64),
}

/// Go's `strconv.Atoi` on a 64-bit platform: `[+-]?[0-9]+`, base 10, no spaces or
/// underscores. Hand-written because Rust's `i64::from_str` accepts the same syntax but does
/// not say which bound an overflow hit, and the runtime uses the clamped value.
pub fn atoi(s: &str) -> Result<i64, AtoiError> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AtoiError::Syntax);
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        let next = n.checked_mul(10).and_then(|m| {
            if negative {
                m.checked_sub(d)
            } else {
                m.checked_add(d)
            }
        });
        match next {
            Some(v) => n = v,
            None => return Err(AtoiError::Range(if negative { i64::MIN } else { i64::MAX })),
        }
    }
    Ok(n)
}

/// Lines as Go's `bufio.Scanner` with `ScanLines` yields them (a trailing `\r` dropped),
/// trimmed like `bytes.TrimSpace`, with their 1-based numbers; stops with the number of the
/// first line longer than `max_line`.
fn lines(text: &str, max_line: usize) -> (Vec<(usize, &str)>, Option<usize>) {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        if raw.len() > max_line {
            return (out, Some(i + 1));
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if !line.is_empty() {
            out.push((i + 1, line));
        }
    }
    (out, None)
}

/// Lines that carry no entry for Gantry's own unknowns (the runtime still reads `passwd`
/// comments and NIS lines as entries): `#` comments and NIS compat lines (`+`, `-`).
fn conventional(line: &str) -> bool {
    line.starts_with(['#', '+', '-'])
}

/// Parses a `passwd` file as the runtime does. Never fails.
pub fn parse_passwd(path: &str, text: &str) -> PasswdFile {
    let (lines, unreadable_line) = lines(text, MAX_PASSWD_LINE);
    let mut entries = Vec::with_capacity(lines.len());
    let mut malformed = 0u32;
    let mut first_malformed = None;
    for (number, line) in lines {
        let f: Vec<&str> = line.split(':').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or_default();
        let well_formed = f.len() == 7
            && !field(0).is_empty()
            && atoi(field(2)).is_ok_and(|n| (0..=i64::from(u32::MAX)).contains(&n))
            && atoi(field(3)).is_ok_and(|n| (0..=i64::from(u32::MAX)).contains(&n));
        if !well_formed && !conventional(line) {
            malformed = malformed.saturating_add(1);
            first_malformed.get_or_insert(number);
        }
        entries.push(PasswdEntry {
            name: field(0).to_string(),
            uid: atoi_lenient(field(2)),
            gid: atoi_lenient(field(3)),
            home: field(5).to_string(),
            shell: field(6).to_string(),
        });
    }
    PasswdFile {
        path: path.to_string(),
        entries,
        malformed,
        first_malformed,
        unreadable_line,
    }
}

/// Parses a `group` file as the runtime does (`#` comment lines skipped). Never fails.
pub fn parse_group(path: &str, text: &str) -> GroupFile {
    let (lines, unreadable_line) = lines(text, MAX_GROUP_LINE);
    let mut entries = Vec::with_capacity(lines.len());
    let mut malformed = 0u32;
    let mut first_malformed = None;
    for (number, line) in lines {
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or_default();
        let well_formed = f.len() == 4
            && !field(0).is_empty()
            && atoi(field(2)).is_ok_and(|n| (0..=i64::from(u32::MAX)).contains(&n));
        if !well_formed && !conventional(line) {
            malformed = malformed.saturating_add(1);
            first_malformed.get_or_insert(number);
        }
        let members = match field(3) {
            "" => Vec::new(),
            list => list.split(',').map(str::to_string).collect(),
        };
        entries.push(GroupEntry {
            name: field(0).to_string(),
            gid: atoi_lenient(field(2)),
            members,
        });
    }
    GroupFile {
        path: path.to_string(),
        entries,
        malformed,
        first_malformed,
        unreadable_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_are_read_as_the_runtime_reads_them() {
        let f = parse_passwd(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n\
             # comment\n\
             \n\
             \t toor:x:0:0::/root:/bin/sh\r\n\
             broken line\n\
             neg:x:-1:0::/:/bin/false\n\
             big:x:99999999999999999999:0::/:/bin/false\n\
             short:x:1001\n\
             appuser:x:1001:1001:App,,,:/home/app:/usr/sbin/nologin:extra\n\
             +::::::\n",
        );
        let got: Vec<_> = f
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.uid, e.gid, e.home.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("root", 0, 0, "/root"),
                ("# comment", 0, 0, ""),
                ("toor", 0, 0, "/root"),
                ("broken line", 0, 0, ""),
                ("neg", -1, 0, "/"),
                ("big", i64::MAX, 0, "/"),
                ("short", 1001, 0, ""),
                ("appuser", 1001, 1001, "/home/app"),
                ("+", 0, 0, ""),
            ]
        );
        // broken, neg, big, short, appuser (8 fields); not the comment or the NIS line.
        assert_eq!(f.malformed, 5);
        assert_eq!(f.unreadable_line, None);
    }

    #[test]
    fn group_skips_comments_and_keeps_members_untrimmed() {
        let g = parse_group(
            "etc/group",
            "root:x:0:\n# wheel:x:10:root\nstaff:x:50:alice, bob,,\nbad:x:zz:\nshort:x\n",
        );
        let got: Vec<_> = g
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.gid, e.members.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("root", 0, vec![]),
                (
                    "staff",
                    50,
                    vec!["alice".into(), " bob".into(), "".into(), "".into()]
                ),
                ("bad", 0, vec![]),
                ("short", 0, vec![]),
            ]
        );
        assert_eq!(g.malformed, 2);
    }

    #[test]
    fn a_line_too_long_for_the_runtime_scanner_is_recorded() {
        let text = format!(
            "root:x:0:0::/:/bin/sh\nx:{}\napp:x:1:1::/:/bin/sh\n",
            "y".repeat(70_000)
        );
        let f = parse_passwd("etc/passwd", &text);
        assert_eq!(f.unreadable_line, Some(2));
        assert_eq!(f.entries.len(), 1);
        // A group line of the same length is within the runtime's 1 MiB group limit.
        let g = parse_group("etc/group", &text);
        assert_eq!((g.unreadable_line, g.entries.len()), (None, 3));
    }

    #[test]
    fn atoi_matches_go() {
        for (s, want) in [
            ("0", Ok(0)),
            ("007", Ok(7)),
            ("+42", Ok(42)),
            ("-1", Ok(-1)),
            ("9223372036854775807", Ok(i64::MAX)),
            ("9223372036854775808", Err(AtoiError::Range(i64::MAX))),
            ("-9223372036854775809", Err(AtoiError::Range(i64::MIN))),
            ("", Err(AtoiError::Syntax)),
            ("+", Err(AtoiError::Syntax)),
            (" 1", Err(AtoiError::Syntax)),
            ("1_000", Err(AtoiError::Syntax)),
            ("0x10", Err(AtoiError::Syntax)),
            ("١", Err(AtoiError::Syntax)),
        ] {
            assert_eq!(atoi(s), want, "{s:?}");
        }
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
            "\r\r\n\n",
        ] {
            let _ = parse_passwd("etc/passwd", input);
            let _ = parse_group("etc/group", input);
        }
    }
}
