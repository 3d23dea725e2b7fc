package gantry_test.base_image

import rego.v1

import data.gantry_test.fixtures as fx

with_base(base) := fx.patched({"facts": {"base": base}})

none := {
	"name": null, "digest": null, "tag": null, "pinned": false, "floating": null,
	"evidence": "none", "layers": null, "location": null,
}

test_pinned_base_is_allowed if {
	fx.verdict(fx.clean).decision == "allow"
}

test_tag_without_digest_is_denied if {
	inp := with_base({
		"name": "docker.io/library/debian:bookworm", "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
		"tag": "bookworm", "pinned": false, "floating": false, "evidence": "annotation",
	})
	v := fx.verdict(inp)
	[f] := fx.with_code(v.violations, "unpinned-base")
	contains(f.message, "docker.io/library/debian:bookworm is written without a digest")
	f.location == {"field": "manifest.annotations[\"org.opencontainers.image.base.name\"]"}
}

test_floating_tag_is_denied_and_said if {
	inp := with_base({"name": "docker.io/library/alpine:latest", "tag": "latest", "pinned": false, "floating": true, "evidence": "provenance", "location": {"field": "attestation predicate"}})
	[f] := fx.with_code(fx.verdict(inp).violations, "unpinned-base")
	contains(f.message, "tag latest moves by design")
	f.location == {"field": "attestation predicate"}
}

test_candidates_without_a_name if {
	inp := with_base({"name": null, "pinned": false, "floating": null, "evidence": "provenance", "candidates": ["docker.io/library/golang:1.22", "docker.io/library/alpine:3.20"]})
	[f] := fx.with_code(fx.verdict(inp).violations, "unpinned-base")
	contains(f.message, "golang:1.22")
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
