package gantry_test.exceptions

import rego.v1

import data.gantry_test.fixtures as fx

root := fx.with_user("", null, 0, 0)

exception(patch) := object.union({"code": "root-user", "reason": "legacy daemon, ticket OPS-12", "expires": "2027-01-31"}, patch)

test_valid_exception_waives if {
	v := fx.verdict(root) with data.gantry.exceptions as [exception({})]
	v.decision == "allow"
	[w] := v.waived
	w.finding.code == "root-user"
	w.reason == "legacy daemon, ticket OPS-12"
	w.expires == "2027-01-31"
	v.warnings == []
}

test_exception_for_another_code_does_not_waive if {
	v := fx.verdict(root) with data.gantry.exceptions as [exception({"code": "build-toolchain"})]
	v.decision == "deny"
	v.waived == []
}

test_expired_exception_does_not_waive_and_warns if {
	v := fx.verdict(root) with data.gantry.exceptions as [exception({"expires": "2026-11-21"})]
	v.decision == "deny"
	"root-user" in fx.codes(v.violations)
	[w] := fx.with_code(v.warnings, "expired-exception")
	contains(w.message, "2026-11-21")
	w.location == {"field": "config.User"}
}

# A date is valid through the end of that day (UTC); context.now is 2026-11-22T15:00:00Z.
test_exception_expiring_today_still_applies if {
	v := fx.verdict(root) with data.gantry.exceptions as [exception({"expires": "2026-11-22"})]
	v.decision == "allow"
}

test_exception_with_rfc3339_expiry if {
	past := fx.verdict(root) with data.gantry.exceptions as [exception({"expires": "2026-11-22T14:59:59Z"})]
	past.decision == "deny"
	future := fx.verdict(root) with data.gantry.exceptions as [exception({"expires": "2026-11-22T16:00:00+01:00"})]
	future.decision == "deny"
	later := fx.verdict(root) with data.gantry.exceptions as [exception({"expires": "2026-11-22T17:00:00+01:00"})]
	later.decision == "allow"
}

test_expired_exception_that_matches_nothing_is_quiet if {
	v := fx.verdict(fx.clean) with data.gantry.exceptions as [exception({"expires": "2020-01-01"})]
	v.warnings == []
}

test_exception_without_reason_is_invalid if {
	v := fx.verdict(root) with data.gantry.exceptions as [object.remove(exception({}), ["reason"])]
	v.decision == "deny"
	[w] := fx.with_code(v.warnings, "invalid-exception")
	contains(w.message, "reason")
}

test_exception_without_expiry_is_invalid if {
	v := fx.verdict(root) with data.gantry.exceptions as [object.remove(exception({}), ["expires"])]
	v.decision == "deny"
	"invalid-exception" in fx.codes(v.warnings)
}

test_exception_with_impossible_date_is_invalid if {
	every bad in ["2027-02-29", "2027-13-01", "2027-04-31", "31/01/2027", "2027-01-31T25:00:00Z", 20270131] {
		v := fx.verdict(root) with data.gantry.exceptions as [exception({"expires": bad})]
		v.decision == "deny"
		"invalid-exception" in fx.codes(v.warnings)
	}
}

test_leap_day_is_a_date if {
	v := fx.verdict(root) with data.gantry.exceptions as [exception({"expires": "2028-02-29"})]
	v.decision == "allow"
}

test_exceptions_not_a_list_is_reported if {
	v := fx.verdict(root) with data.gantry.exceptions as {"code": "root-user"}
	v.decision == "deny"
	"invalid-exception" in fx.codes(v.warnings)
}

test_exception_scoped_to_image if {
	mine := fx.verdict(root) with data.gantry.exceptions as [exception({"image": "registry.example/team/*"})]
	mine.decision == "allow"
	tagged := fx.verdict(root) with data.gantry.exceptions as [exception({"image": "registry.example/team/api:1.*"})]
	tagged.decision == "allow"
	other := fx.verdict(root) with data.gantry.exceptions as [exception({"image": "registry.example/other/*"})]
	other.decision == "deny"
	deeper := fx.verdict(root) with data.gantry.exceptions as [exception({"image": "registry.example/*"})]
	deeper.decision == "deny"
	any_depth := fx.verdict(root) with data.gantry.exceptions as [exception({"image": "registry.example/**"})]
	any_depth.decision == "allow"
}

# Bind values from other rules to a local before `with … as`: regorus evaluates an `as`
# expression that reads another rule inside the modified document, where it is undefined.
test_exception_scoped_to_digest if {
	digest := fx.clean.image.digest
	mine := fx.verdict(root) with data.gantry.exceptions as [exception({"digest": digest})]
	mine.decision == "allow"
	other := fx.verdict(root) with data.gantry.exceptions as [exception({"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"})]
	other.decision == "deny"
}

toolchain := fx.patched({"facts": {"toolchain": [
	{"name": "gcc", "category": "compiler", "evidence": "path", "package": "gcc-12", "reason": "C compiler driver", "location": {"layer": fx.layer1, "layer_index": 1, "path": "usr/bin/gcc"}},
	{"name": "make", "category": "build-tool", "evidence": "path", "package": "make", "reason": "build driver", "location": {"layer": fx.layer1, "layer_index": 1, "path": "usr/bin/make"}},
]}})

test_exception_scoped_to_path if {
	v := fx.verdict(toolchain) with data.gantry.exceptions as [exception({"code": "build-toolchain", "path": "/usr/bin/gcc"})]
	v.decision == "deny"
	[w] := v.waived
	w.finding.location.path == "usr/bin/gcc"
	[f] := v.violations
	f.location.path == "usr/bin/make"
}

test_first_matching_exception_gives_the_reason if {
	v := fx.verdict(root) with data.gantry.exceptions as [exception({"reason": "first"}), exception({"reason": "second"})]
	[w] := v.waived
	w.reason == "first"
}

test_meta_findings_cannot_be_waived if {
	v := fx.verdict(object.union(fx.clean, {"version": 2})) with data.gantry.exceptions as [exception({"code": "unsupported-input-version"})]
	v.decision == "deny"
}

test_warnings_can_be_waived if {
	inp := fx.with_user("app", "app", 1001, 1001)
	"non-numeric-user" in fx.warning_codes(inp)
	v := fx.verdict(inp) with data.gantry.exceptions as [exception({"code": "non-numeric-user"})]
	v.warnings == []
	[w] := v.waived
	w.finding.severity == "warn"
}

# Without context.now (an input built by hand), the clock decides.
test_without_context_now_the_clock_decides if {
	inp := object.remove(root, ["context"])
	future := fx.verdict(inp) with data.gantry.exceptions as [exception({"expires": "2261-12-31"})]
	future.decision == "allow"
	past := fx.verdict(inp) with data.gantry.exceptions as [exception({"expires": "2001-01-01"})]
	past.decision == "deny"
}

test_exception_with_malformed_glob_is_invalid_not_an_error if {
	v := fx.verdict(toolchain) with data.gantry.exceptions as [exception({"code": "build-toolchain", "path": "usr/bin/[gcc"})]
	v.decision == "deny"
	count(fx.with_code(v.violations, "build-toolchain")) == 2
	[w] := fx.with_code(v.warnings, "invalid-exception")
	contains(w.message, "`path` must be a glob")
}
