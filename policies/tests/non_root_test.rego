package gantry_test.non_root

import rego.v1

import data.gantry_test.fixtures as fx

root_message(inp) := f.message if {
	[f] := fx.with_code(fx.verdict(inp).violations, "root-user")
}

test_empty_user_is_root if {
	inp := fx.with_user("", null, 0, 0)
	contains(root_message(inp), "USER is not set")
}

test_user_0_is_root if {
	inp := fx.with_user("0", null, 0, 0)
	contains(root_message(inp), "USER 0 is uid 0")
}

test_user_0_0_is_root if {
	inp := fx.with_user("0:0", null, 0, 0)
	contains(root_message(inp), "USER 0:0 is uid 0")
}

test_user_root_is_root if {
	inp := fx.with_user("root", "root", 0, 0)
	contains(root_message(inp), "USER root is root")
}

test_toor_mapped_to_uid_0_is_root if {
	inp := object.union(fx.with_user("toor", "toor", 0, 0), {"facts": {"user": {"location": {
		"layer": fx.layer0, "layer_index": 0, "path": "etc/passwd", "field": "config.User",
	}}}})
	v := fx.verdict(inp)
	[f] := fx.with_code(v.violations, "root-user")
	contains(f.message, "USER toor maps to uid 0 in etc/passwd")
	f.location == {"layer": fx.layer0, "layer_index": 0, "path": "etc/passwd", "field": "config.User"}

	# Denied as root, so not also warned about the name.
	not "non-numeric-user" in fx.codes(v.warnings)
}

# Literal root forms are root even when the facts disagree (a second line of defence).
test_literal_root_without_facts_is_root if {
	every user in ["", "root", "0", "00", "0:1000", "root:root"] {
		inp := object.union(object.remove(fx.clean, ["facts"]), {"config": {"user": user}})
		"root-user" in fx.violation_codes(inp)
	}
}

test_root_by_name_without_passwd_entry_is_still_root if {
	inp := fx.with_user("root", "root", null, null)
	"root-user" in fx.violation_codes(inp)
	not "unresolvable-user" in fx.warning_codes(inp)
}

test_65534_65534_is_allowed if {
	inp := fx.with_user("65534:65534", null, 65534, 65534)
	v := fx.verdict(inp)
	v.decision == "allow"
	v.warnings == []
}

test_root_group_alone_is_not_root if {
	inp := fx.with_user("1000:0", null, 1000, 0)
	fx.verdict(inp).decision == "allow"
}

test_named_user_is_allowed_with_a_warning if {
	inp := fx.with_user("appuser", "appuser", 1001, 1001)
	v := fx.verdict(inp)
	v.decision == "allow"
	[w] := fx.with_code(v.warnings, "non-numeric-user")
	contains(w.message, "USER 1001:1001")
}

test_non_numeric_warning_can_be_turned_off if {
	inp := fx.with_user("appuser", "appuser", 1001, 1001)
	v := fx.verdict(inp) with data.gantry.non_root.warn_non_numeric_user as false
	v.warnings == []
}

test_unresolvable_name_warns if {
	inp := fx.with_user("ghost", "ghost", null, null)
	v := fx.verdict(inp)
	v.decision == "allow"
	fx.codes(v.warnings) == {"unresolvable-user", "non-numeric-user"}
	[w] := fx.with_code(v.warnings, "unresolvable-user")
	contains(w.message, "USER ghost cannot be resolved")
}

# What runc says when it refuses to start the container is quoted.
with_start_error(configured, name, error) := object.union(fx.with_user(configured, name, null, null), {"facts": {"user": {"start_error": error, "reason": "USER ghost is unresolvable: no entry in etc/passwd"}}})

test_start_error_is_said_plainly if {
	inp := with_start_error("ghost", "ghost", "unable to find user ghost: no matching entries in passwd file")
	[w] := fx.with_code(fx.verdict(inp).warnings, "unresolvable-user")
	contains(w.message, "USER ghost: the container will not start — the runtime fails with \"unable to find user ghost: no matching entries in passwd file\"")
}

test_unresolvable_user_severity_is_a_setting if {
	inp := with_start_error("ghost", "ghost", "unable to find user ghost: no matching entries in passwd file")
	v := fx.verdict(inp) with data.gantry.non_root.unresolvable_user as "deny"
	v.decision == "deny"
	"unresolvable-user" in fx.codes(v.violations)
	not "unresolvable-user" in fx.codes(v.warnings)

	# Any other value keeps the default, a warning.
	w := fx.verdict(inp) with data.gantry.non_root.unresolvable_user as "loud"
	"unresolvable-user" in fx.codes(w.warnings)
}

test_numeric_user_with_missing_group_is_unresolvable if {
	inp := object.union(fx.with_user("1000:staff", null, null, null), {"facts": {"user": {"start_error": "unable to find group staff: no matching entries in group file"}}})
	v := fx.verdict(inp)
	[w] := fx.with_code(v.warnings, "unresolvable-user")
	contains(w.message, "unable to find group staff")
	not "root-user" in fx.codes(v.violations)
}

test_root_allowed_for_listed_images if {
	inp := fx.with_user("", null, 0, 0)
	v := fx.verdict(inp) with data.gantry.non_root.allowed_root_images as ["registry.example/team/*"]
	v.decision == "allow"
	w := fx.verdict(inp) with data.gantry.non_root.allowed_root_images as ["registry.example/other/*"]
	w.decision == "deny"
}
