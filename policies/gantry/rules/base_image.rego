# The base image must be known and pinned by digest.
#
# Reads input.facts.base: the base recorded in the image itself (OCI annotations
# org.opencontainers.image.base.name/.digest, the same keys as config labels, or BuildKit
# provenance). "Pinned" means the reference as written carried a digest (FROM x:1@sha256:…);
# a tag plus the digest it resolved to on build day is not pinned.
#
# Codes: unpinned-base (deny: the recorded base reference has no digest), base-image-unknown
# (warn when nothing is recorded; deny when data.gantry.base_image.require_base_evidence).
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

_floating_note := sprintf(" and its tag %s moves by design", [_base.tag]) if {
	_base.floating == true
	is_string(_base.tag)
} else := " and it has no tag, so it means latest" if {
	_base.floating == true
} else := ""

_location := loc if {
	loc := _base.location
	is_object(loc)
	count(loc) > 0
} else := lib.field("manifest.annotations")

deny contains {
	"code": "unpinned-base",
	"message": sprintf("%s is written without a digest (%s evidence)%s: a rebuild may silently get a different base; write FROM name:tag@sha256:…", [_what, _evidence, _floating_note]),
	"location": _location,
} if {
	_known
	not _base.pinned == true
}

_unknown_message := "no base image is recorded (no org.opencontainers.image.base.* annotation or label, no BuildKit provenance), so whether it is pinned cannot be known; build with BuildKit (--provenance, or the base annotations), or ignore this for FROM scratch images"

deny contains {"code": "base-image-unknown", "message": _unknown_message, "location": _location} if {
	not _known
	_cfg.require_base_evidence == true
}

warn contains {"code": "base-image-unknown", "message": _unknown_message, "location": _location} if {
	not _known
	not _cfg.require_base_evidence == true
}
