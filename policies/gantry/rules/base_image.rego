# The base image must be recorded, pinned, and (when the platform team lists them) approved.
#
# Reads input.facts.base: the base recorded in the image itself (OCI annotations
# org.opencontainers.image.base.name/.digest, BuildKit provenance, or the same keys as config
# labels) and its class, `pin`: digest | version | floating | unknown (docs/checks.md says how
# each builder's record is classified). Tags listed in data.gantry.base_image.floating_tags
# float even when they look like a version.
#
# Codes: unpinned-base (deny for a floating base; for a version tag a warning, or a deny when
# base_image.require_digest), base-image-unknown (warn; deny when
# base_image.require_base_evidence), base-not-approved (deny when base_image.allowed is a
# non-empty list and the base is not on it).
package gantry.rules.base_image

import rego.v1

import data.gantry.lib

# Settings from data.gantry.base_image ({} when absent: every check that needs a value is off).
_cfg := c if {
	c := data.gantry.base_image
	is_object(c)
} else := {}

_base := b if {
	b := input.facts.base
	is_object(b)
} else := {}

_evidence := e if {
	e := _base.evidence
	is_string(e)
} else := "none"

_known if _evidence != "none"

_candidates := [c | some c in object.get(_base, "candidates", []); is_string(c)]

_what := sprintf("the base image %s", [_base.name]) if {
	is_string(_base.name)
} else := sprintf("the build's images (%s; the final stage's base cannot be told apart)", [concat(", ", _candidates)]) if {
	count(_candidates) > 0
} else := "the base image (name not recorded)"

# The class as Gantry recorded it. Inputs stored before `pin` existed are read as they were
# judged then: pinned only with a digest, anything else floating (so a stored deny stays a
# deny when it is evaluated again).
_recorded_pin := p if {
	p := _base.pin
	p in {"digest", "version", "floating", "unknown"}
} else := "unknown" if {
	not _known
} else := "digest" if {
	_base.pinned == true
} else := "floating"

_floating_tags := {lower(t) | some t in object.get(_cfg, "floating_tags", []); is_string(t)}

_tag := lower(_base.tag) if is_string(_base.tag)

# A listed tag, or a tag whose leading component (before the first "-") is listed.
_listed if _tag in _floating_tags

_listed if split(_tag, "-")[0] in _floating_tags

_pin := "floating" if {
	_recorded_pin == "version"
	_listed
} else := _recorded_pin

_reason := sprintf("tag %s is listed in base_image.floating_tags: it moves by design", [_base.tag]) if {
	_recorded_pin == "version"
	_listed
} else := r if {
	r := _base.pin_reason
	is_string(r)
	r != ""
} else := "no digest is recorded with it"

_location := loc if {
	loc := _base.location
	is_object(loc)
	count(loc) > 0
} else := lib.field("manifest.annotations")

_floating_message := sprintf("%s floats: %s (%s evidence); a rebuild may silently get a different base — pin it by digest, FROM name:version@sha256:…", [_what, _reason, _evidence])

_version_message := sprintf("%s is pinned by a version tag, not a digest: %s (%s evidence); write FROM name:version@sha256:… so rebuilds get the same base", [_what, _reason, _evidence])

deny contains {"code": "unpinned-base", "message": _floating_message, "location": _location} if {
	_pin == "floating"
}

deny contains {"code": "unpinned-base", "message": _version_message, "location": _location} if {
	_pin == "version"
	_cfg.require_digest == true
}

warn contains {"code": "unpinned-base", "message": _version_message, "location": _location} if {
	_pin == "version"
	not _cfg.require_digest == true
}

_unknown_message := "no base image is recorded (no org.opencontainers.image.base.* annotation or label, no BuildKit provenance), so whether it is pinned cannot be known; build with BuildKit (--provenance), or set the base annotations, or ignore this for FROM scratch images"

# Known evidence of class unknown (the provenance of a FROM scratch build) has nothing to pin.
_nothing_to_judge if not _known

deny contains {"code": "base-image-unknown", "message": _unknown_message, "location": _location} if {
	_nothing_to_judge
	_cfg.require_base_evidence == true
}

warn contains {"code": "base-image-unknown", "message": _unknown_message, "location": _location} if {
	_nothing_to_judge
	not _cfg.require_base_evidence == true
}

# ---------------------------------------------------------------------------------------------
# Approved bases: data.gantry.base_image.allowed lists repository prefixes
# ("docker.io/library/debian", "gcr.io/distroless/"), or objects
# {"repository": "…", "digests": ["sha256:…"]} that also pin the allowed digests.

_allowed := [a | some a in object.get(_cfg, "allowed", []); _allowed_entry(a)]

_allowed_entry(a) if is_string(a)

_allowed_entry(a) if {
	is_object(a)
	is_string(a.repository)
}

_prefix(a) := a if is_string(a)

_prefix(a) := a.repository if is_object(a)

_repo_matches(prefix, repo) if repo == trim_suffix(prefix, "/")

_repo_matches(prefix, repo) if {
	endswith(prefix, "/")
	startswith(repo, prefix)
}

_repo_matches(prefix, repo) if {
	not endswith(prefix, "/")
	startswith(repo, concat("", [prefix, "/"]))
}

_digest_ok(a, _) if is_string(a)

_digest_ok(a, _) if {
	is_object(a)
	not is_array(a.digests)
}

_digest_ok(a, digest) if {
	is_object(a)
	is_array(a.digests)
	digest in a.digests
}

_approved(repo, digest) if {
	some a in _allowed
	_repo_matches(_prefix(a), repo)
	_digest_ok(a, digest)
}

_approval_on if count(_allowed) > 0

_repositories := [r | r := _base.repository; is_string(r)] if {
	is_string(_base.repository)
} else := [r | some r in object.get(_base, "candidate_repositories", []); is_string(r)]

_not_approved contains r if {
	some r in _repositories
	not _approved(r, object.get(_base, "digest", null))
}

_allowed_text := concat(", ", [_prefix(a) | some a in _allowed])

deny contains {
	"code": "base-not-approved",
	"message": sprintf("%s is not an approved base (%s is not allowed by base_image.allowed: %s)", [_what, concat(", ", sort([r | some r in _not_approved])), _allowed_text]),
	"location": _location,
} if {
	_approval_on
	count(_not_approved) > 0
}

# A digest recorded alone (ko's record of a base given by digest) is approved when an entry
# lists that digest.
_digest_approved if {
	some a in _allowed
	is_object(a)
	is_array(a.digests)
	_base.digest in a.digests
}

# A base that cannot be named cannot be shown to be approved.
deny contains {
	"code": "base-not-approved",
	"message": sprintf("the base image cannot be checked against base_image.allowed (%s): %s", [_allowed_text, _unnamed_reason]),
	"location": _location,
} if {
	_approval_on
	count(_repositories) == 0
	not _base.scratch == true
	not _digest_approved
}

_unnamed_reason := "no base is recorded" if not _known
else := "only its digest is recorded, not its repository"

# ---------------------------------------------------------------------------------------------
# Base freshness: `gantry serve` checks the tag the base was built from (input.context.base;
# absent for the CLI and before the first check). When the tag now points elsewhere, the base
# was replaced after the image was built — usually with fixes — and the image should be
# rebuilt. A warning; a deny when base_image.deny_outdated is true.

_freshness := b if {
	b := input.context.base
	is_object(b)
} else := {}

_outdated if _freshness.outdated == true

_since := s if {
	s := _freshness.outdated_since
	is_string(s)
} else := "an unknown time"

_now_at := sprintf(", now %s", [d]) if {
	d := _freshness.current_digest
	is_string(d)
} else := ""

_outdated_message := sprintf("base %s outdated since %s: the tag no longer points at %s, the base this image was built on%s; rebuild the image to get the current base", [_freshness.reference, _since, _freshness.recorded_digest, _now_at])

deny contains {"code": "base-outdated", "message": _outdated_message, "location": lib.field("context.base")} if {
	_outdated
	_cfg.deny_outdated == true
}

warn contains {"code": "base-outdated", "message": _outdated_message, "location": lib.field("context.base")} if {
	_outdated
	not _cfg.deny_outdated == true
}
