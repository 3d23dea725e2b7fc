//! `facts.user`: who the container runs as, resolved the way the container runtime resolves
//! it.
//!
//! runc and Docker resolve `USER` with `github.com/moby/sys/user` (`GetExecUser`, formerly
//! runc's `libcontainer/user`) against `etc/passwd` and `etc/group` as they stand in the
//! container's root filesystem after all layers; the files are opened inside that root, so a
//! symlink — absolute or relative — resolves against the image root and never above it
//! ([`crate::Filesystem::resolve`], loops bounded). This module follows that function case by
//! case (the tests in `tests/it/runc_user.rs` name each one):
//!
//! - `USER` is split at the first `:` into a user and a group part. A part that is a number
//!   (Go's `strconv.Atoi`: an optional sign, decimal digits) is an id and is never looked up
//!   as a name; a number outside 0..=2147483647 makes the runtime fail.
//! - No user part: uid 0, with the gid and home of the first `passwd` entry with uid 0.
//! - A numeric uid takes the gid and home of the first entry with that uid; with none it
//!   runs as that uid with gid 0.
//! - A name takes the first entry with that name; with none — also when `passwd` is missing,
//!   and also for `root` — the runtime refuses to start the container ("unable to find user").
//! - A `passwd` or `group` that is missing, a dangling or looping link, or not a regular
//!   file is as if empty (the runtime ignores the error of opening it).
//! - An explicit group takes the first `group` entry with that name (or gid); a name with no
//!   entry makes the runtime fail, a number with none is used as written. Without an explicit
//!   group, a user found by name or uid gets as supplementary groups every group that lists
//!   it as a member, in file order.
//! - A line the runtime's scanner cannot read (over 64 KiB in `passwd`, 1 MiB in `group`)
//!   makes every lookup in that file fail.
//!
//! `numeric` says whether the user part is a number: the kubelet can only verify
//! `runAsNonRoot` for a numeric `USER`.

use gantry_model::Location;
use gantry_model::fs::EntryKind;
use serde::{Deserialize, Serialize};

use super::Layers;
use crate::Filesystem;
use crate::analyzers::passwd::{AtoiError, GroupEntry, GroupFile, PasswdEntry, PasswdFile, atoi};

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
    /// Supplementary group ids the runtime adds: every `etc/group` entry that lists the user,
    /// in file order (only when `USER` names no group).
    #[serde(default)]
    pub supplementary_gids: Vec<u32>,
    /// Home directory from the `passwd` entry (`/` when there is none); null when the
    /// container would not start.
    #[serde(default)]
    pub home: Option<String>,
    /// The runtime refuses to start the container, and this is what it says (runc's and
    /// Docker's wording); null when it starts, or when Gantry could not read the account file
    /// to tell.
    #[serde(default)]
    pub start_error: Option<String>,
}

const FIELD: &str = "config.User";

/// What the runtime's defaults are before the lookup (runc's `setupUser`).
const DEFAULT_HOME: &str = "/";

/// The valid range of a `USER` id (moby/sys/user's `minID`..`maxID`: 32-bit compatible).
const MAX_ID: i64 = (1 << 31) - 1;

/// An account file of the final filesystem, as the runtime sees it.
enum Accounts<'a, F> {
    /// The runtime cannot open it as a regular file (missing, dangling or looping link, a
    /// directory or device): it reads nothing, without error.
    Absent { why: String },
    /// A regular file Gantry did not parse (too large, binary, or at a path the analyzer does
    /// not read): what the runtime would find is unknown.
    Unread { why: String, location: Location },
    /// Parsed.
    Parsed { file: &'a F, location: Location },
}

impl<F> Accounts<'_, F> {
    fn location(&self) -> Option<&Location> {
        match self {
            Accounts::Absent { .. } => None,
            Accounts::Unread { location, .. } | Accounts::Parsed { location, .. } => Some(location),
        }
    }
}

fn accounts<'a, F>(
    layers: &'a Layers<'a>,
    fs: &'a Filesystem,
    path: &str,
    pick: impl Fn(&'a crate::LayerReport) -> &'a [F],
    file_path: impl Fn(&F) -> &str,
) -> Accounts<'a, F> {
    let Some((real, f)) = fs.resolve(path) else {
        return Accounts::Absent {
            why: match fs.get(path) {
                None => format!("the final filesystem has no {path}"),
                Some(_) => format!(
                    "{path} is a symlink that does not resolve inside the image (dangling, or a loop)"
                ),
            },
        };
    };
    // A hard link's content is its target's, in the same layer.
    let real = match (&f.entry.kind, &f.entry.link_target) {
        (EntryKind::Hardlink, Some(t)) => t.clone(),
        (EntryKind::File, _) => real,
        (kind, _) => {
            return Accounts::Absent {
                why: format!(
                    "{path} is {}, not a regular file (the runtime ignores it)",
                    kind_name(kind)
                ),
            };
        }
    };
    let location = layers.location(f.layer, &real);
    let parsed = layers
        .get(f.layer)
        .and_then(|l| pick(l.report).iter().rev().find(|p| file_path(p) == real));
    match parsed {
        Some(file) => Accounts::Parsed { file, location },
        None => Accounts::Unread {
            why: if real == path {
                format!("{path} could not be parsed (see unknowns)")
            } else {
                format!("{path} resolves to {real}, which Gantry could not read")
            },
            location,
        },
    }
}

fn kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Dir => "a directory",
        EntryKind::Symlink => "a symlink",
        EntryKind::Char | EntryKind::Block => "a device",
        EntryKind::Fifo => "a FIFO",
        EntryKind::File | EntryKind::Hardlink => "a file",
    }
}

fn passwd<'a>(layers: &'a Layers<'a>, fs: &'a Filesystem) -> Accounts<'a, PasswdFile> {
    accounts(layers, fs, "etc/passwd", |r| &r.passwd, |p| &p.path)
}

fn group<'a>(layers: &'a Layers<'a>, fs: &'a Filesystem) -> Accounts<'a, GroupFile> {
    accounts(layers, fs, "etc/group", |r| &r.groups, |g| &g.path)
}

/// One part of `USER`, as moby/sys/user's `parseUserArg` / `parseGroupArg` read it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg<'s> {
    Id(i64),
    Name(&'s str),
}

impl Arg<'_> {
    /// `None` for an empty part; an error for a number out of range.
    fn parse(part: &str) -> Result<Option<Arg<'_>>, String> {
        if part.is_empty() {
            return Ok(None);
        }
        match atoi(part) {
            Ok(id) if (0..=MAX_ID).contains(&id) => Ok(Some(Arg::Id(id))),
            Ok(_) | Err(AtoiError::Range(_)) => Err(format!(
                "{part} is outside the range of ids the runtime accepts (uids and gids must be in range 0-{MAX_ID})"
            )),
            Err(AtoiError::Syntax) => Ok(Some(Arg::Name(part))),
        }
    }
}

/// An id the kernel accepts for `setuid`/`setgid` (`(uid_t)-1` is "no change").
fn valid_id(id: i64) -> Option<u32> {
    u32::try_from(id).ok().filter(|&v| v != u32::MAX)
}

/// What the lookup produced, before it is turned into facts.
struct Lookup {
    uid: Option<i64>,
    gid: Option<i64>,
    home: Option<String>,
    sgids: Vec<i64>,
    reason: String,
    start_error: Option<String>,
    /// Gantry could not read a file the answer depends on.
    unknown: bool,
    location: Location,
}

/// Resolves `configured` (the config's `User`).
pub(crate) fn derive(layers: &Layers<'_>, fs: &Filesystem, configured: &str) -> UserFacts {
    let (user_part, group_part) = match configured.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (configured, None),
    };
    let user_arg = Arg::parse(user_part);
    let group_arg = Arg::parse(group_part.unwrap_or_default());
    let numeric = matches!(user_arg, Ok(Some(Arg::Id(_))));
    let name = (!numeric && !user_part.is_empty()).then(|| user_part.to_string());
    let field_only = Location {
        field: Some(FIELD.into()),
        ..Location::default()
    };
    let lookup = match (user_arg, group_arg) {
        (Err(e), _) | (_, Err(e)) => Lookup {
            uid: None,
            gid: None,
            home: None,
            sgids: Vec::new(),
            reason: format!("USER {configured} cannot be used: {e}; the container will not start"),
            start_error: Some("uids and gids must be in range 0-2147483647".into()),
            unknown: false,
            location: field_only.clone(),
        },
        (Ok(user_arg), Ok(group_arg)) => lookup(layers, fs, configured, user_arg, group_arg),
    };
    let with_field = |loc: Location| Location {
        field: Some(FIELD.into()),
        ..loc
    };

    // Ids the kernel would refuse (read from an account file) stop the start as well.
    let mut start_error = lookup.start_error;
    let mut reason = lookup.reason;
    let uid = lookup.uid.and_then(|u| {
        let valid = valid_id(u);
        if valid.is_none() && start_error.is_none() {
            reason.push_str(&format!(
                "; uid {u} is not a valid id, so the container will not start"
            ));
            start_error = Some(format!("invalid uid {u}"));
        }
        valid
    });
    let gid = lookup.gid.and_then(|g| {
        let valid = valid_id(g);
        if valid.is_none() && start_error.is_none() {
            reason.push_str(&format!(
                "; gid {g} is not a valid id, so the container will not start"
            ));
            start_error = Some(format!("invalid gid {g}"));
        }
        valid
    });
    let mut supplementary_gids = Vec::new();
    for g in &lookup.sgids {
        match valid_id(*g) {
            Some(v) => supplementary_gids.push(v),
            None if start_error.is_none() => {
                reason.push_str(&format!(
                    "; supplementary gid {g} is not a valid id, so the container will not start"
                ));
                start_error = Some(format!("invalid supplementary gid {g}"));
            }
            None => {}
        }
    }
    let starts = start_error.is_none() && !lookup.unknown;
    let uid = uid.filter(|_| start_error.is_none());
    UserFacts {
        configured: configured.to_string(),
        name,
        group: group_part.map(str::to_string),
        uid,
        gid: gid.filter(|_| start_error.is_none()),
        numeric,
        resolved: uid.is_some(),
        root: uid.map(|u| u == 0),
        reason,
        location: with_field(lookup.location),
        supplementary_gids: if starts {
            supplementary_gids
        } else {
            Vec::new()
        },
        home: lookup.home.filter(|_| starts),
        start_error,
    }
}

fn lookup(
    layers: &Layers<'_>,
    fs: &Filesystem,
    configured: &str,
    user_arg: Option<Arg<'_>>,
    group_arg: Option<Arg<'_>>,
) -> Lookup {
    let passwd = passwd(layers, fs);
    let passwd_location = passwd.location().cloned().unwrap_or_default();
    let fail = |reason: String, error: String, location: &Location| Lookup {
        uid: None,
        gid: None,
        home: None,
        sgids: Vec::new(),
        reason: format!("{reason}; the container will not start (the runtime fails: {error})"),
        start_error: Some(error),
        unknown: false,
        location: location.clone(),
    };
    // The name the runtime puts in its error message: the user part, or the default uid.
    let spec_name = match &user_arg {
        None => "0".to_string(),
        Some(Arg::Id(_)) | Some(Arg::Name(_)) => configured
            .split_once(':')
            .map_or(configured, |(u, _)| u)
            .to_string(),
    };

    let entries: &[PasswdEntry] = match &passwd {
        Accounts::Parsed { file, location } => {
            if let Some(line) = file.unreadable_line {
                return fail(
                    format!(
                        "USER {configured}: line {line} of {} is longer than the runtime reads",
                        file.path
                    ),
                    format!("unable to find user {spec_name}: bufio.Scanner: token too long"),
                    location,
                );
            }
            &file.entries
        }
        Accounts::Unread { why, location } => {
            // A numeric or empty user does not need the file to start, but its gid and
            // groups do; a name cannot be told at all.
            if let Some(Arg::Name(n)) = user_arg {
                return Lookup {
                    uid: None,
                    gid: None,
                    home: None,
                    sgids: Vec::new(),
                    reason: format!("USER {n} is unresolvable: {why}"),
                    start_error: None,
                    unknown: true,
                    location: location.clone(),
                };
            }
            &[]
        }
        Accounts::Absent { .. } => &[],
    };
    let passwd_unread = matches!(passwd, Accounts::Unread { .. });

    let matched = entries.iter().find(|e| match &user_arg {
        None => e.uid == 0,
        Some(Arg::Id(id)) => e.uid == *id,
        Some(Arg::Name(n)) => e.name == *n,
    });
    let (uid, gid, home, matched_name, mut reason, location) = match (&user_arg, matched) {
        (None, entry) => (
            0,
            entry.map_or(0, |e| e.gid),
            entry.map_or(DEFAULT_HOME.to_string(), |e| e.home.clone()),
            entry.map(|e| e.name.as_str()).unwrap_or_default(),
            "USER is not set: runs as root".to_string(),
            if entry.is_some() {
                passwd_location.clone()
            } else {
                Location::default()
            },
        ),
        (Some(Arg::Id(id)), Some(e)) => (
            *id,
            e.gid,
            e.home.clone(),
            e.name.as_str(),
            format!(
                "USER {configured} is numeric: uid {id} ({} in etc/passwd)",
                e.name
            ),
            passwd_location.clone(),
        ),
        (Some(Arg::Id(id)), None) => (
            *id,
            0,
            DEFAULT_HOME.to_string(),
            "",
            format!("USER {configured} is numeric: uid {id}"),
            Location::default(),
        ),
        (Some(Arg::Name(n)), Some(e)) => (
            e.uid,
            e.gid,
            e.home.clone(),
            e.name.as_str(),
            format!("USER {n} maps to uid {} in etc/passwd", e.uid),
            passwd_location.clone(),
        ),
        (Some(Arg::Name(n)), None) => {
            let why = match &passwd {
                Accounts::Absent { why } => why.clone(),
                _ => "no entry in etc/passwd".to_string(),
            };
            return fail(
                format!("USER {n} is unresolvable: {why}"),
                format!("unable to find user {n}: no matching entries in passwd file"),
                &passwd_location,
            );
        }
    };

    // Groups: an explicit group, or the supplementary groups of a user found by name or uid.
    let mut sgids = Vec::new();
    let mut gid = gid;
    // The gid comes from the passwd entry unless a group is given.
    let mut gid_known = !passwd_unread || group_arg.is_some();
    let mut unknown = passwd_unread;
    if group_arg.is_some() || !matched_name.is_empty() {
        let groups = group(layers, fs);
        let group_entries: &[GroupEntry] = match &groups {
            Accounts::Parsed { file, location } => {
                if let Some(line) = file.unreadable_line {
                    return fail(
                        format!(
                            "USER {configured}: line {line} of {} is longer than the runtime reads",
                            file.path
                        ),
                        format!(
                            "unable to find groups for spec {matched_name}: bufio.Scanner: token too long"
                        ),
                        location,
                    );
                }
                &file.entries
            }
            Accounts::Unread { why, .. } => {
                unknown = true;
                if !matches!(group_arg, Some(Arg::Id(_))) {
                    gid_known = group_arg.is_none() && gid_known;
                }
                reason.push_str(&format!("; its groups are unknown: {why}"));
                &[]
            }
            Accounts::Absent { .. } => &[],
        };
        match &group_arg {
            Some(arg) => {
                let found = group_entries.iter().find(|g| match arg {
                    Arg::Id(id) => g.gid == *id,
                    Arg::Name(n) => g.name == *n,
                });
                match (found, arg) {
                    (Some(g), _) => gid = g.gid,
                    (None, Arg::Id(id)) => gid = *id,
                    (None, Arg::Name(n)) if !matches!(groups, Accounts::Unread { .. }) => {
                        let why = match &groups {
                            Accounts::Absent { why } => why.clone(),
                            _ => "it has no entry in etc/group".to_string(),
                        };
                        let location = groups.location().cloned().unwrap_or(location);
                        return fail(
                            format!("USER {configured}: group {n} is unresolvable: {why}"),
                            format!("unable to find group {n}: no matching entries in group file"),
                            &location,
                        );
                    }
                    (None, Arg::Name(_)) => {}
                }
            }
            None => {
                sgids = group_entries
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == matched_name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    Lookup {
        uid: Some(uid),
        gid: gid_known.then_some(gid),
        home: Some(home),
        sgids,
        reason,
        start_error: None,
        unknown,
        location,
    }
}
