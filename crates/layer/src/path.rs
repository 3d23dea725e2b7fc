//! Entry path normalisation and whiteout recognition.

use gantry_model::fs::Whiteout;

/// Why a path was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    /// A `..` component or a leading `/`.
    Traversal,
    /// Longer than the limit (normalised length).
    TooLong(usize),
}

/// Normalises an archive path: strips `./` components, collapses `//`, drops a trailing
/// `/`. The root (`.`, `./`, empty) becomes `""`.
///
/// Stricter than containerd on purpose, which cleans `a/../b` to `b` and treats `/etc/x` as
/// `etc/x`: no legitimate layer builder writes either, and a scanner that resolved them
/// would have to guess which of several writers' semantics the runtime applies.
pub(crate) fn normalize(raw: &str, max_len: usize) -> Result<String, PathError> {
    if raw.starts_with('/') {
        return Err(PathError::Traversal);
    }
    let mut out = String::with_capacity(raw.len());
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(PathError::Traversal),
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    if out.len() > max_len {
        return Err(PathError::TooLong(out.len()));
    }
    Ok(out)
}

/// What a (normalised) entry path means for the layer changeset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Meaning {
    /// An ordinary entry.
    Entry,
    /// A whiteout marker.
    Whiteout(Whiteout),
    /// AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`, and anything under them): not part of
    /// the image filesystem, skipped as containerd and Docker do.
    AufsMeta,
    /// `.wh.` with an empty name, or `.wh..` (the directory itself).
    InvalidWhiteout,
    /// `.wh...`: would delete the parent directory.
    WhiteoutTraversal,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const META_PREFIX: &str = ".wh..wh.";
const OPAQUE: &str = ".wh..wh..opq";

pub(crate) fn meaning(path: &str) -> Meaning {
    let (dir, base) = match path.rsplit_once('/') {
        Some((dir, base)) => (dir, base),
        None => ("", path),
    };
    if !dir.is_empty() && dir.split('/').any(|c| c.starts_with(META_PREFIX)) {
        return Meaning::AufsMeta;
    }
    if base == OPAQUE {
        return Meaning::Whiteout(Whiteout {
            path: dir.to_string(),
            opaque: true,
        });
    }
    if base.starts_with(META_PREFIX) {
        return Meaning::AufsMeta;
    }
    let Some(name) = base.strip_prefix(WHITEOUT_PREFIX) else {
        return Meaning::Entry;
    };
    match name {
        "" | "." => Meaning::InvalidWhiteout,
        ".." => Meaning::WhiteoutTraversal,
        name => Meaning::Whiteout(Whiteout {
            path: if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            },
            opaque: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn normalizes() {
        for (raw, want) in [
            ("usr/bin/gcc", "usr/bin/gcc"),
            ("./usr/bin/", "usr/bin"),
            ("usr//bin///gcc", "usr/bin/gcc"),
            ("./", ""),
            (".", ""),
            ("", ""),
            ("a/./b/.", "a/b"),
            ("..a/b..", "..a/b.."),
            ("...", "..."),
        ] {
            assert_eq!(normalize(raw, 4096).unwrap(), want, "{raw:?}");
        }
    }

    #[test]
    fn refuses_traversal_and_long_paths() {
        for raw in [
            "../x",
            "a/../../x",
            "a/..",
            "/etc/x",
            "/",
            "./../x",
            "a/b/../c",
        ] {
            assert_eq!(normalize(raw, 4096), Err(PathError::Traversal), "{raw:?}");
        }
        assert_eq!(normalize("abcde", 4), Err(PathError::TooLong(5)));
        assert_eq!(normalize("./abcd/", 4).unwrap(), "abcd");
    }

    fn wh(path: &str, opaque: bool) -> Meaning {
        Meaning::Whiteout(Whiteout {
            path: path.into(),
            opaque,
        })
    }

    #[test]
    fn whiteouts() {
        assert_eq!(meaning("etc/.wh.passwd"), wh("etc/passwd", false));
        assert_eq!(meaning(".wh.etc"), wh("etc", false));
        assert_eq!(meaning("var/lib/.wh..wh..opq"), wh("var/lib", true));
        assert_eq!(meaning(".wh..wh..opq"), wh("", true));
        assert_eq!(meaning(".wh..wh.plnk"), Meaning::AufsMeta);
        assert_eq!(meaning(".wh..wh.plnk/123.456"), Meaning::AufsMeta);
        assert_eq!(meaning("x/.wh..wh.aufs"), Meaning::AufsMeta);
        assert_eq!(meaning("x/.wh."), Meaning::InvalidWhiteout);
        assert_eq!(meaning(".wh."), Meaning::InvalidWhiteout);
        assert_eq!(meaning("x/.wh.."), Meaning::InvalidWhiteout);
        assert_eq!(meaning("x/.wh..."), Meaning::WhiteoutTraversal);
        assert_eq!(
            meaning("x/.wh.a/b"),
            Meaning::Entry,
            "only the base name marks a whiteout"
        );
        assert_eq!(meaning("x/a.wh.b"), Meaning::Entry);
        assert_eq!(meaning("usr/bin/gcc"), Meaning::Entry);
    }
}
