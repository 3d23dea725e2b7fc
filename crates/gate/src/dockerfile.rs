//! The base image of the stage a Dockerfile build produced, as the Dockerfile wrote it.
//!
//! BuildKit's `mode=max` provenance carries the Dockerfile itself (`source.infos[].data`) and
//! the build arguments; its dependency list names every stage's image. To tell which one the
//! final stage was built `FROM` — and whether that `FROM` named a digest — this module reads
//! the `FROM` lines: global `ARG` defaults and `--build-arg` values substituted, stage names
//! followed (`FROM build AS final` is the `build` stage's base), the target stage chosen by
//! the `target` argument or else the last stage.
//!
//! Hand-written rather than a Dockerfile crate: only `FROM` and global `ARG` are needed, with
//! BuildKit's line continuation, comments, the `escape` directive and heredocs skipped, and
//! the crates on crates.io either do not substitute arguments or bring a full grammar
//! (pest) for a few dozen lines of logic. Anything this reader cannot be sure of (an
//! argument with no value, a stage loop) gives `None`: no answer, never a guess.

use std::collections::BTreeMap;

/// Dockerfiles larger than this are not read (a real one is a few KiB).
pub const MAX_DOCKERFILE_BYTES: usize = 1024 * 1024;

/// The `FROM` of the built stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalFrom {
    /// An image reference as written (arguments substituted).
    Image {
        /// The reference, e.g. `golang:1.22@sha256:…`.
        reference: String,
        /// 1-based line of its `FROM`.
        line: usize,
    },
    /// `FROM scratch`: the image has no base.
    Scratch {
        /// 1-based line of its `FROM`.
        line: usize,
    },
}

struct Stage {
    name: Option<String>,
    image: String,
    line: usize,
}

/// The base of the stage `target` (or of the last stage), or `None` when it cannot be told.
pub fn final_from(
    dockerfile: &str,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Option<FinalFrom> {
    if dockerfile.len() > MAX_DOCKERFILE_BYTES {
        return None;
    }
    let (stages, global_args) = stages(dockerfile);
    let mut args: BTreeMap<String, Option<String>> = global_args;
    for (k, v) in build_args {
        // A build argument only overrides an ARG the Dockerfile declares.
        if args.contains_key(k) {
            args.insert(k.clone(), Some(v.clone()));
        }
    }
    let mut index = match target {
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))?,
        None => stages.len().checked_sub(1)?,
    };
    for _ in 0..=stages.len() {
        let stage = stages.get(index)?;
        let image = substitute(&stage.image, &args)?;
        if image.eq_ignore_ascii_case("scratch") {
            return Some(FinalFrom::Scratch { line: stage.line });
        }
        let lower = image.to_ascii_lowercase();
        match stages[..index]
            .iter()
            .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Some(earlier) => index = earlier,
            None => {
                return Some(FinalFrom::Image {
                    reference: image,
                    line: stage.line,
                });
            }
        }
    }
    None
}

/// Logical instructions (continuations joined, comments and heredoc bodies skipped), with
/// the line each starts on.
fn instructions(dockerfile: &str) -> Vec<(usize, String)> {
    let mut escape = '\\';
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut heredoc: Option<(String, bool)> = None;
    let mut in_directives = true;
    for (i, raw) in dockerfile.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some((word, strip_tabs)) = &heredoc {
            let candidate = if *strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if candidate == word {
                heredoc = None;
            }
            continue;
        }
        let trimmed = line.trim_start();
        if in_directives {
            if let Some(d) = trimmed.strip_prefix('#') {
                if let Some((k, v)) = d.split_once('=')
                    && k.trim().eq_ignore_ascii_case("escape")
                {
                    if v.trim() == "`" {
                        escape = '`';
                    }
                    continue;
                }
            } else if !trimmed.is_empty() {
                in_directives = false;
            }
        }
        if trimmed.starts_with('#') {
            continue;
        }
        let (body, continues) = match line.trim_end().strip_suffix(escape) {
            Some(b) => (b, true),
            None => (line, false),
        };
        let (start, mut text) = current.take().unwrap_or((i + 1, String::new()));
        text.push_str(body);
        if continues {
            text.push(' ');
            current = Some((start, text));
        } else {
            heredoc = heredoc_start(&text);
            if !text.trim().is_empty() {
                out.push((start, text));
            }
        }
    }
    if let Some(c) = current {
        out.push(c);
    }
    out
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"` in an instruction: the word that ends its body.
fn heredoc_start(instruction: &str) -> Option<(String, bool)> {
    let at = instruction.find("<<")?;
    let rest = &instruction[at + 2..];
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let word: String = rest
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some((word, strip_tabs))
}

type Args = BTreeMap<String, Option<String>>;

fn stages(dockerfile: &str) -> (Vec<Stage>, Args) {
    let mut stages = Vec::new();
    let mut global = BTreeMap::new();
    for (line, text) in instructions(dockerfile) {
        let mut words = text.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("ARG") && stages.is_empty() {
            for w in words {
                match w.split_once('=') {
                    Some((k, v)) => global.insert(k.to_string(), Some(unquote(v).to_string())),
                    None => global.insert(w.to_string(), None),
                };
            }
        } else if keyword.eq_ignore_ascii_case("FROM") {
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let Some(image) = rest.first() else {
                continue;
            };
            let name = match rest.as_slice() {
                [_, as_kw, name, ..] if as_kw.eq_ignore_ascii_case("as") => {
                    Some(name.to_ascii_lowercase())
                }
                _ => None,
            };
            stages.push(Stage {
                name,
                image: (*image).to_string(),
                line,
            });
        }
    }
    (stages, global)
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Substitutes `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alternative}`; `None`
/// when a name has no value (the reference cannot be known).
fn substitute(s: &str, args: &Args) -> Option<String> {
    let value = |name: &str| args.get(name).cloned().flatten();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}')?;
            let expr = &braced[..end];
            rest = &braced[end + 1..];
            if let Some((name, default)) = expr.split_once(":-") {
                out.push_str(
                    &value(name)
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| default.to_string()),
                );
            } else if let Some((name, alt)) = expr.split_once(":+") {
                if value(name).is_some_and(|v| !v.is_empty()) {
                    out.push_str(alt);
                }
            } else {
                out.push_str(&value(expr)?);
            }
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            out.push_str(&value(&after[..len])?);
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str, line: usize) -> Option<FinalFrom> {
        Some(FinalFrom::Image {
            reference: reference.into(),
            line,
        })
    }

    #[test]
    fn last_stage_and_stage_names() {
        let df = "# syntax=docker/dockerfile:1\n\
                  FROM golang:1.22 AS build\n\
                  RUN go build -o /app .\n\
                  FROM gcr.io/distroless/static-debian12:nonroot@sha256:abc AS final\n\
                  COPY --from=build /app /app\n";
        let none = BTreeMap::new();
        assert_eq!(
            final_from(df, None, &none),
            image("gcr.io/distroless/static-debian12:nonroot@sha256:abc", 4)
        );
        assert_eq!(
            final_from(df, Some("build"), &none),
            image("golang:1.22", 2)
        );
        assert_eq!(final_from(df, Some("nope"), &none), None);
        // A stage built FROM another stage has that stage's base.
        let df = "FROM alpine:3.20 AS base\nFROM base AS app\nRUN true\n";
        assert_eq!(final_from(df, None, &none), image("alpine:3.20", 1));
        assert_eq!(
            final_from("FROM alpine AS a\nFROM scratch\n", None, &none),
            Some(FinalFrom::Scratch { line: 2 })
        );
    }

    #[test]
    fn arguments_continuations_and_heredocs() {
        let df = "ARG BASE=debian\nARG TAG\n\
                  FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-12.12} \\\n   AS final\n\
                  RUN <<EOF\nFROM evil:latest\nEOF\n";
        let mut args = BTreeMap::new();
        assert_eq!(final_from(df, None, &args), image("debian:12.12", 3));
        args.insert("TAG".to_string(), "12.12@sha256:ff".to_string());
        assert_eq!(
            final_from(df, None, &args),
            image("debian:12.12@sha256:ff", 3)
        );
        // An argument the Dockerfile does not declare changes nothing.
        args.insert("BASE".to_string(), "ubuntu".to_string());
        args.insert("OTHER".to_string(), "x".to_string());
        assert_eq!(
            final_from(df, None, &args),
            image("ubuntu:12.12@sha256:ff", 3)
        );
        // No value at all: cannot be told.
        assert_eq!(
            final_from("ARG V\nFROM img:$V\n", None, &BTreeMap::new()),
            None
        );
        // Backtick escape directive.
        let df = "# escape=`\nFROM mcr.microsoft.com/windows:ltsc2022 `\n  AS x\n";
        assert_eq!(
            final_from(df, None, &BTreeMap::new()),
            image("mcr.microsoft.com/windows:ltsc2022", 2)
        );
    }

    #[test]
    fn hostile_input_gives_no_answer_not_a_panic() {
        let none = BTreeMap::new();
        for df in [
            "",
            "FROM",
            "FROM ${",
            "FROM $",
            "FROM a AS a\nFROM a AS b\n",
            "RUN <<\n",
            "\\\n\\\n",
            "FROM x AS\n",
        ] {
            let _ = final_from(df, None, &none);
        }
        assert_eq!(
            final_from(&"x".repeat(MAX_DOCKERFILE_BYTES + 1), None, &none),
            None
        );
    }
}
