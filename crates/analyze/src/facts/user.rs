//! `facts.user`: who the container runs as, resolved through the image's own account files.
//!
//! Rules, as container runtimes (runc, containerd) apply them:
//! - `USER` is `user[:group]`; an empty user part runs as root (uid 0).
//! - A numeric user is the uid as written. Its gid is the group part if numeric, else the
//!   group's gid from `etc/group`, else the primary gid of the uid's `etc/passwd` entry,
//!   else 0 (what the runtime uses for a uid with no entry).
//! - A name is looked up in the **final** filesystem's `etc/passwd` (following symlinks, see
//!   [`crate::Filesystem::resolve`]), first entry wins; with no entry it is unresolvable —
//!   except `root`, which runtimes map to uid 0 anyway.
//! - `numeric` says whether the user part is a number: the kubelet can only verify
//!   `runAsNonRoot` for a numeric `USER`.

use gantry_model::Location;
use serde::{Deserialize, Serialize};

use super::Layers;
use crate::Filesystem;
use crate::analyzers::passwd::{GroupEntry, PasswdEntry};
use gantry_model::fs::EntryKind;

/// `facts.user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacts {
    /// `USER` as written.
    pub configured: String,
    /// User part when not numeric (and not empty), else null.
    pub name: Option<String>,
    /// Group part as written, or null.
    pub group: Option<String>,
    /// Resolved uid, or null when unresolvable.
    pub uid: Option<u32>,
    /// Resolved gid, or null.
    pub gid: Option<u32>,
    /// The user part is a number.
    pub numeric: bool,
    /// The uid is known.
    pub resolved: bool,
    /// uid == 0; null when unresolvable.
    pub root: Option<bool>,
    /// Why, for a human.
    pub reason: String,
    /// `config.User`, plus the passwd file consulted (layer, path) when there was one.
    pub location: Location,
}

const FIELD: &str = "config.User";

/// An account file of the final filesystem.
enum Accounts<'a, T> {
    /// No such file.
    Missing,
    /// Present but not parsed (see the unknowns) or not at a path the analyzer reads.
    Unreadable { why: String, location: Location },
    /// Parsed.
    Parsed {
        entries: &'a [T],
        location: Location,
    },
}

impl<T> Accounts<'_, T> {
    fn location(&self) -> Option<&Location> {
        match self {
            Accounts::Missing => None,
            Accounts::Unreadable { location, .. } | Accounts::Parsed { location, .. } => {
                Some(location)
            }
        }
    }
}

fn accounts<'a, T>(
    layers: &'a Layers<'a>,
    fs: &'a Filesystem,
    path: &str,
    pick: impl Fn(&'a crate::LayerReport) -> Vec<(&'a str, &'a [T])>,
) -> Accounts<'a, T> {
    let Some((real, f)) = fs.resolve(path) else {
        return match fs.get(path) {
            None => Accounts::Missing,
            Some(_) => Accounts::Unreadable {
                why: format!("{path} is a symlink that does not resolve"),
                location: layers.location(fs.get(path).map_or(0, |f| f.layer), path),
            },
        };
    };
    // A hard link's content is its target's, in the same layer.
    let real = match (&f.entry.kind, &f.entry.link_target) {
        (EntryKind::Hardlink, Some(t)) => t.clone(),
        _ => real,
    };
    let location = layers.location(f.layer, &real);
    let parsed = layers.get(f.layer).and_then(|l| {
        pick(l.report)
            .into_iter()
            .rev()
            .find(|(p, _)| *p == real)
            .map(|(_, e)| e)
    });
    match parsed {
        Some(entries) => Accounts::Parsed { entries, location },
        None if f.entry.kind == EntryKind::Dir => Accounts::Unreadable {
            why: format!("{path} is a directory"),
            location,
        },
        None => Accounts::Unreadable {
            why: if real == path {
                format!("{path} could not be parsed (see unknowns)")
            } else {
                format!("{path} resolves to {real}, which could not be read")
            },
            location,
        },
    }
}

fn passwd<'a>(layers: &'a Layers<'a>, fs: &'a Filesystem) -> Accounts<'a, PasswdEntry> {
    accounts(layers, fs, "etc/passwd", |r| {
        r.passwd
            .iter()
            .map(|p| (p.path.as_str(), p.entries.as_slice()))
            .collect()
    })
}

fn group<'a>(layers: &'a Layers<'a>, fs: &'a Filesystem) -> Accounts<'a, GroupEntry> {
    accounts(layers, fs, "etc/group", |r| {
        r.groups
            .iter()
            .map(|g| (g.path.as_str(), g.entries.as_slice()))
            .collect()
    })
}

/// Resolves `configured` (the config's `User`).
pub(crate) fn derive(layers: &Layers<'_>, fs: &Filesystem, configured: &str) -> UserFacts {
    let (user_part, group_part) = match configured.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (configured, None),
    };
    let numeric_uid = user_part.parse::<u32>().ok();
    let numeric = numeric_uid.is_some();
    let name = (!numeric && !user_part.is_empty()).then(|| user_part.to_string());
    let field_only = Location {
        field: Some(FIELD.into()),
        ..Location::default()
    };
    let with_field = |loc: Option<&Location>| {
        loc.map_or_else(
            || field_only.clone(),
            |l| Location {
                field: Some(FIELD.into()),
                ..l.clone()
            },
        )
    };
    let passwd = passwd(layers, fs);
    let entries: &[PasswdEntry] = match &passwd {
        Accounts::Parsed { entries, .. } => entries,
        _ => &[],
    };

    // The uid, the passwd entry it came from (for the default gid), and why.
    let (uid, entry, mut reason, location) = if user_part.is_empty() {
        (
            Some(0),
            None,
            "USER is not set: runs as root".to_string(),
            field_only.clone(),
        )
    } else if let Some(uid) = numeric_uid {
        let entry = entries.iter().find(|e| e.uid == uid);
        let reason = match entry {
            Some(e) => format!(
                "USER {configured} is numeric: uid {uid} ({} in etc/passwd)",
                e.name
            ),
            None => format!("USER {configured} is numeric: uid {uid}"),
        };
        let location = if entry.is_some() {
            with_field(passwd.location())
        } else {
            field_only.clone()
        };
        (Some(uid), entry, reason, location)
    } else if let Some(e) = entries.iter().find(|e| e.name == user_part) {
        (
            Some(e.uid),
            Some(e),
            format!("USER {user_part} maps to uid {} in etc/passwd", e.uid),
            with_field(passwd.location()),
        )
    } else if user_part == "root" {
        (
            Some(0),
            None,
            "no passwd entry; runtimes map root to uid 0".to_string(),
            with_field(passwd.location()),
        )
    } else {
        let why = match &passwd {
            Accounts::Missing => "the final filesystem has no etc/passwd".to_string(),
            Accounts::Unreadable { why, .. } => why.clone(),
            Accounts::Parsed { .. } => "no entry in etc/passwd".to_string(),
        };
        (
            None,
            None,
            format!("USER {user_part} is unresolvable: {why}"),
            with_field(passwd.location()),
        )
    };

    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => Some(gid),
            Err(_) => {
                let groups = group(layers, fs);
                let found = match &groups {
                    Accounts::Parsed { entries, .. } => entries.iter().find(|e| e.name == g),
                    _ => None,
                };
                match found {
                    Some(e) => Some(e.gid),
                    None => {
                        reason.push_str(&format!(
                            "; group {g} is not in etc/group (the runtime refuses to start)"
                        ));
                        None
                    }
                }
            }
        },
        None => match (uid, entry) {
            (_, Some(e)) => Some(e.gid),
            (Some(_), None) => Some(0),
            (None, None) => None,
        },
    };

    UserFacts {
        configured: configured.to_string(),
        name,
        group: group_part.map(str::to_string),
        uid,
        gid,
        numeric,
        resolved: uid.is_some(),
        root: uid.map(|u| u == 0),
        reason,
        location,
    }
}
