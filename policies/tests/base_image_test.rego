package gantry_test.base_image

import rego.v1

import data.gantry_test.fixtures as fx

# `clean` with facts.base replaced (not merged) by `base`.
with_base(base) := object.union(fx.patched({"facts": {"base": null}}), {"facts": {"base": base}})

none := {
	"name": null, "digest": null, "tag": null, "pinned": false, "floating": null,
	"evidence": "none", "layers": null, "location": null, "pin": "unknown",
	"pin_reason": "nothing records the base image",
}

annotation := {"field": "manifest.annotations[\"org.opencontainers.image.base.name\"]"}

# A base as Buildah records it: the stored name and the resolved digest.
buildah(tag, pin, reason) := {
	"name": concat("", ["docker.io/library/debian:", tag]), "repository": "docker.io/library/debian",
	"digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
	"tag": tag, "pinned": false, "floating": pin == "floating", "pin": pin, "pin_reason": reason,
	"evidence": "annotation", "location": annotation,
}

test_pinned_base_is_allowed if {
	fx.verdict(fx.clean).decision == "allow"
}

test_floating_base_is_denied_with_the_reason if {
	inp := with_base(buildah("12", "floating", "tag 12 is a bare major version: it moves with every minor release"))
	v := fx.verdict(inp)
	[f] := fx.with_code(v.violations, "unpinned-base")
	contains(f.message, "the base image docker.io/library/debian:12 floats: tag 12 is a bare major version")
	contains(f.message, "(annotation evidence)")
	f.location == annotation
}

test_version_tag_is_a_warning if {
	inp := with_base(buildah("12.12", "version", "tag 12.12 is a specific version, with the digest it resolved to at build time recorded"))
	v := fx.verdict(inp)
	v.decision == "allow"
	[w] := fx.with_code(v.warnings, "unpinned-base")
	contains(w.message, "is pinned by a version tag, not a digest: tag 12.12 is a specific version")
}

test_version_tag_denied_when_a_digest_is_required if {
	inp := with_base(buildah("12.12", "version", "tag 12.12 is a specific version"))
	v := fx.verdict(inp) with data.gantry.base_image.require_digest as true
	v.decision == "deny"
	"unpinned-base" in fx.codes(v.violations)
	not "unpinned-base" in fx.codes(v.warnings)
}

# data.gantry.base_image.floating_tags makes a listed tag float even when it looks like a
# version, whole or as its leading component.
test_listed_tags_float if {
	every tag in ["2.0", "2.0-slim", "Release-1.2"] {
		inp := with_base(object.union(buildah(tag, "version", "x"), {"tag": tag}))
		v := fx.verdict(inp) with data.gantry.base_image.floating_tags as ["2.0", "release"]
		[f] := fx.with_code(v.violations, "unpinned-base")
		contains(f.message, "is listed in base_image.floating_tags")
	}
	inp := with_base(buildah("2.1", "version", "x"))
	v := fx.verdict(inp) with data.gantry.base_image.floating_tags as ["2.0"]
	v.decision == "allow"
}

test_digest_only_record_is_pinned if {
	inp := with_base({
		"name": null, "repository": null, "tag": null, "pin": "digest", "pinned": true, "floating": false,
		"digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
		"pin_reason": "only the base digest is recorded (as ko records a base given by digest)",
		"evidence": "annotation", "location": {"field": "manifest.annotations[\"org.opencontainers.image.base.digest\"]"},
	})
	fx.verdict(inp).decision == "allow"
}

test_candidates_without_a_name if {
	inp := with_base({
		"name": null, "pinned": false, "floating": true, "pin": "floating", "evidence": "provenance",
		"pin_reason": "the final stage's base cannot be told apart among the build's images; the weakest: tag latest names no specific version",
		"candidates": ["golang:1.22", "alpine:latest"],
		"candidate_repositories": ["docker.io/library/golang", "docker.io/library/alpine"],
	})
	[f] := fx.with_code(fx.verdict(inp).violations, "unpinned-base")
	contains(f.message, "golang:1.22")
}

# Inputs stored before `pin` existed are judged as they were then: without a digest, denied.
test_inputs_without_pin if {
	legacy := object.remove(buildah("12.12", "version", "x"), ["pin", "pin_reason"])
	"unpinned-base" in fx.violation_codes(with_base(legacy))
	pinned := object.union(legacy, {"pinned": true})
	fx.verdict(with_base(pinned)).decision == "allow"
}

test_no_evidence_is_a_warning if {
	v := fx.verdict(with_base(none))
	v.decision == "allow"
	[w] := fx.with_code(v.warnings, "base-image-unknown")
	w.location == {"field": "manifest.annotations"}
}

test_missing_base_fact_is_unknown_never_pinned if {
	inp := object.union(fx.clean, {"facts": {"base": null}})
	"base-image-unknown" in fx.warning_codes(inp)
}

test_no_evidence_denied_when_required if {
	v := fx.verdict(with_base(none)) with data.gantry.base_image.require_base_evidence as true
	v.decision == "deny"
	"base-image-unknown" in fx.codes(v.violations)
	not "base-image-unknown" in fx.codes(v.warnings)
}

test_from_scratch_provenance_has_nothing_to_pin if {
	inp := with_base(object.union(none, {"evidence": "provenance", "scratch": true, "pin_reason": "the final stage is FROM scratch"}))
	v := fx.verdict(inp) with data.gantry.base_image.allowed as ["docker.io/library/"]
	v.decision == "allow"
	v.warnings == []
}

# ---------------------------------------------------------------------------------------------
# base_image.allowed

test_approved_bases_by_prefix if {
	every allowed in [["gcr.io/distroless/"], ["gcr.io/distroless"], ["gcr.io/distroless/static-debian12"]] {
		v := fx.verdict(fx.clean) with data.gantry.base_image.allowed as allowed
		v.decision == "allow"
	}
}

test_base_outside_the_list_is_denied if {
	every allowed in [["docker.io/library/"], ["gcr.io/distro"], ["gcr.io/distroless/static"]] {
		v := fx.verdict(fx.clean) with data.gantry.base_image.allowed as allowed
		[f] := fx.with_code(v.violations, "base-not-approved")
		contains(f.message, "gcr.io/distroless/static-debian12 is not allowed")
	}
}

test_approved_with_digests if {
	good := [{"repository": "gcr.io/distroless/", "digests": ["sha256:3333333333333333333333333333333333333333333333333333333333333333"]}]
	fx.verdict(fx.clean).decision == "allow" with data.gantry.base_image.allowed as good
	bad := [{"repository": "gcr.io/distroless/", "digests": ["sha256:4444444444444444444444444444444444444444444444444444444444444444"]}]
	v := fx.verdict(fx.clean) with data.gantry.base_image.allowed as bad
	"base-not-approved" in fx.codes(v.violations)
}

test_unknown_base_cannot_be_approved if {
	v := fx.verdict(with_base(none)) with data.gantry.base_image.allowed as ["docker.io/library/"]
	[f] := fx.with_code(v.violations, "base-not-approved")
	contains(f.message, "no base is recorded")
}

test_every_candidate_must_be_approved if {
	inp := with_base({
		"name": null, "pinned": true, "floating": false, "pin": "digest", "evidence": "provenance",
		"candidates": ["golang:1.22@sha256:aa", "gcr.io/distroless/static@sha256:bb"],
		"candidate_repositories": ["docker.io/library/golang", "gcr.io/distroless/static"],
	})
	v := fx.verdict(inp) with data.gantry.base_image.allowed as ["gcr.io/distroless/"]
	[f] := fx.with_code(v.violations, "base-not-approved")
	contains(f.message, "docker.io/library/golang is not allowed")
	w := fx.verdict(inp) with data.gantry.base_image.allowed as ["gcr.io/distroless/", "docker.io/library/golang"]
	w.decision == "allow"
}

test_empty_or_malformed_allowed_list_is_off if {
	every allowed in [[], [7, {"digests": []}]] {
		v := fx.verdict(with_base(none)) with data.gantry.base_image.allowed as allowed
		not "base-not-approved" in fx.codes(v.violations)
	}
}

# What `gantry serve` puts in input.context.base after checking the base's tag.
freshness(outdated) := {
	"reference": "docker.io/library/debian:12.12",
	"recorded_digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
	"current_digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
	"checked_at": "2026-12-04T10:00:00Z",
	"outdated": outdated,
	"outdated_since": {true: "2026-12-01T08:00:00Z", false: null}[outdated],
}

with_freshness(outdated) := object.union(fx.clean, {"context": object.union(fx.clean.context, {"base": freshness(outdated)})})

test_outdated_base_is_a_warning_saying_since_when if {
	v := fx.verdict(with_freshness(true))
	v.decision == "allow"
	[f] := fx.with_code(v.warnings, "base-outdated")
	contains(f.message, "base docker.io/library/debian:12.12 outdated since 2026-12-01T08:00:00Z")
	contains(f.message, "now sha256:5555")
	contains(f.message, "rebuild the image")
	f.location == {"field": "context.base"}
}

test_outdated_base_denies_when_configured if {
	v := fx.verdict(with_freshness(true)) with data.gantry.base_image.deny_outdated as true
	v.decision == "deny"
	"base-outdated" in fx.codes(v.violations)
}

test_fresh_or_unchecked_base_says_nothing if {
	every inp in [with_freshness(false), fx.clean] {
		v := fx.verdict(inp) with data.gantry.base_image.deny_outdated as true
		not "base-outdated" in fx.codes(v.violations)
		not "base-outdated" in fx.codes(v.warnings)
	}
}
