package gantry_test.verdict

import rego.v1

import data.gantry_test.fixtures as fx

test_clean_image_is_allowed if {
	v := fx.verdict(fx.clean)
	v.decision == "allow"
	v.violations == []
	v.warnings == []
	v.waived == []
}

test_other_input_version_is_denied if {
	v := fx.verdict(object.union(fx.clean, {"version": 2}))
	v.decision == "deny"
	fx.codes(v.violations) == {"unsupported-input-version"}
}

test_missing_input_version_is_denied if {
	inp := object.remove(fx.clean, ["version"])
	"unsupported-input-version" in fx.violation_codes(inp)
}

test_findings_have_severity_of_their_list if {
	inp := fx.with_user("", null, 0, 0)
	v := fx.verdict(inp)
	every f in v.violations {
		f.severity == "deny"
	}
	every f in v.warnings {
		f.severity == "warn"
	}
}

# A user rule package is collected without touching verdict.rego (simulated with `with`).
test_user_rule_package_is_collected if {
	v := fx.verdict(fx.clean) with data.gantry.rules.custom.deny as {{"code": "my-rule", "message": "mine", "location": {"path": "x"}}}
	v.decision == "deny"
	[f] := fx.with_code(v.violations, "my-rule")
	f.severity == "deny"
	f.location == {"path": "x"}
}

test_malformed_finding_denies_instead_of_vanishing if {
	v := fx.verdict(fx.clean) with data.gantry.rules.custom.warn as {{"code": "Not Kebab", "message": "x"}}
	v.decision == "deny"
	"malformed-finding" in fx.codes(v.violations)
}

test_finding_without_message_is_malformed if {
	v := fx.verdict(fx.clean) with data.gantry.rules.custom.deny as {{"code": "x-y"}}
	"malformed-finding" in fx.codes(v.violations)
}

test_non_set_deny_is_malformed if {
	v := fx.verdict(fx.clean) with data.gantry.rules.custom.deny as true
	"malformed-finding" in fx.codes(v.violations)
}

test_unknown_location_members_are_dropped if {
	v := fx.verdict(fx.clean) with data.gantry.rules.custom.warn as {{"code": "x-y", "message": "m", "location": {"path": "a", "offset": 3, "field": null}}}
	[f] := fx.with_code(v.warnings, "x-y")
	f.location == {"path": "a"}
}

test_bad_location_type_is_malformed if {
	v := fx.verdict(fx.clean) with data.gantry.rules.custom.warn as {{"code": "x-y", "message": "m", "location": {"layer_index": "2"}}}
	"malformed-finding" in fx.codes(v.violations)
}
