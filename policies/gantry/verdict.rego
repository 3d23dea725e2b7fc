# The entry point of Gantry's policy bundle: data.gantry.verdict.
#
# Every package under data.gantry.rules contributes findings through two partial set rules,
#
#     deny contains {"code": "kebab-case-code", "message": "…", "location": {…}}
#     warn contains {"code": "…", "message": "…", "location": {…}}
#
# so a rule file can be added without touching this one. This package
#   1. collects and normalises those findings (severity from the rule name; a finding
#      without a kebab-case code and a message becomes a `malformed-finding` violation,
#      never a silent drop),
#   2. applies data.gantry.exceptions (waivers with a reason and an expiry date), reporting
#      invalid exceptions and expired ones that would still match,
#   3. returns {"decision", "violations", "warnings", "waived"} (docs/policies/input.md).
#
# The input document is versioned; an input of another version is a violation, because the
# rules would read fields whose meaning they do not know.
package gantry

import rego.v1

import data.gantry.lib

verdict := {
	"decision": _decision,
	"violations": [f | some f in _violations],
	"warnings": [f | some f in _warnings],
	"waived": [w | some w in _waived],
}

_decision := "deny" if count(_violations) > 0
else := "allow"

# Findings this package produces itself: they cannot be waived.
_meta_codes := {
	"malformed-finding",
	"unsupported-input-version",
	"invalid-exception",
	"expired-exception",
}

_violations := {f | some f in _findings; f.severity == "deny"; not _waived_by(f)} | {f | some f in _meta; f.severity == "deny"}

_warnings := {f | some f in _findings; f.severity == "warn"; not _waived_by(f)} | {f | some f in _meta; f.severity == "warn"}

# ---------------------------------------------------------------------------------------------
# Collecting findings from data.gantry.rules.<name>.{deny,warn}

_severity := {"deny": "deny", "warn": "warn"}

# Every finding of every rule package, normalised (a set: identical findings count once).
_findings contains f if {
	some pkg, kind
	rules := data.gantry.rules[pkg][kind]
	_severity[kind]
	_is_collection(rules)
	some raw in rules
	f := _normalize(pkg, kind, raw)
}

_is_collection(x) if is_set(x)

_is_collection(x) if is_array(x)

_meta contains f if {
	some pkg, kind
	rules := data.gantry.rules[pkg][kind]
	_severity[kind]
	not _is_collection(rules)
	f := {
		"code": "malformed-finding",
		"severity": "deny",
		"message": sprintf("data.gantry.rules.%s.%s must be a set of findings (`%s contains {…} if …`), not %v", [pkg, kind, kind, rules]),
	}
}

_normalize(pkg, kind, raw) := f if {
	_well_formed(raw)
	base := {"code": raw.code, "severity": _severity[kind], "message": raw.message}
	loc := _location(raw)
	f := _with_location(base, loc)
} else := {
	"code": "malformed-finding",
	"severity": "deny",
	"message": sprintf("data.gantry.rules.%s.%s produced a finding that is not {\"code\": kebab-case string, \"message\": string, \"location\": {layer, layer_index, path, field} or null}: %v", [pkg, kind, raw]),
}

_well_formed(raw) if {
	is_object(raw)
	is_string(raw.code)
	regex.match(`^[a-z0-9]+(-[a-z0-9]+)*$`, raw.code)
	is_string(raw.message)
	raw.message != ""
	_location_ok(object.get(raw, "location", null))
}

_location_ok(null) := true

_location_ok(loc) if {
	is_object(loc)
	every key, val in loc {
		_location_member_ok(key, val)
	}
}

# Members of a location this bundle knows; others (added to input locations within v1) are
# dropped by _location, and null members are allowed.
_location_member_ok(_, null) := true

_location_member_ok(key, val) if {
	key in {"layer", "path", "field"}
	is_string(val)
}

_location_member_ok("layer_index", val) if {
	is_number(val)
	val >= 0
	val == round(val)
}

_location_member_ok(key, _) if not key in {"layer", "layer_index", "path", "field"}

_location(raw) := {key: val |
	some key in ["layer", "layer_index", "path", "field"]
	val := raw.location[key]
	val != null
}

_with_location(base, loc) := base if count(loc) == 0

_with_location(base, loc) := object.union(base, {"location": loc}) if count(loc) > 0

# ---------------------------------------------------------------------------------------------
# Input version

_meta contains f if {
	not input.version == 1
	f := {
		"code": "unsupported-input-version",
		"severity": "deny",
		"message": sprintf("the input document has version %v; this policy bundle reads version 1 (docs/policies/input.md)", [object.get(input, "version", "none")]),
	}
}

# ---------------------------------------------------------------------------------------------
# Exceptions: data.gantry.exceptions is a list of
#   {"code": "root-user", "reason": "…", "expires": "2027-01-31",
#    "image": "registry.example/team/*", "digest": "sha256:…", "path": "usr/bin/*", "owner": "…"}
# code, reason and expires are required; image, digest and path narrow the match.

_exceptions := e if {
	e := data.gantry.exceptions
	is_array(e)
} else := []

_meta contains f if {
	e := data.gantry.exceptions
	not is_array(e)
	f := {
		"code": "invalid-exception",
		"severity": "warn",
		"message": sprintf("data.gantry.exceptions must be a list of exceptions, not %v: no exception applies", [e]),
	}
}

# Why an exception is unusable, one string per problem.
_problems(e) := {"it is not an object"} if not is_object(e)

_problems(e) := p if {
	is_object(e)
	p := {msg |
		some check in _exception_checks
		not _check_ok(check, e)
		msg := check.message
	}
}

_exception_checks := [
	{"name": "code", "message": "`code` must be a finding code (kebab-case)"},
	{"name": "reason", "message": "`reason` must say why the finding is acceptable"},
	{"name": "expires", "message": "`expires` must be a date (YYYY-MM-DD) or an RFC 3339 time"},
	{"name": "image", "message": "`image` must be a glob string (literal characters, *, **, ?, [abc], {a,b})"},
	{"name": "digest", "message": "`digest` must be a digest string (sha256:…)"},
	{"name": "path", "message": "`path` must be a glob string (literal characters, *, **, ?, [abc], {a,b})"},
	{"name": "owner", "message": "`owner` must be a string"},
]

_check_ok(check, e) if {
	check.name == "code"
	is_string(e.code)
	regex.match(`^[a-z0-9]+(-[a-z0-9]+)*$`, e.code)
}

_check_ok(check, e) if {
	check.name == "reason"
	is_string(e.reason)
	trim_space(e.reason) != ""
}

_check_ok(check, e) if {
	check.name == "expires"
	lib.valid_time(e.expires)
}

_check_ok(check, e) if {
	check.name in {"image", "digest", "path", "owner"}
	object.get(e, check.name, null) == null
}

_check_ok(check, e) if {
	check.name in {"digest", "owner"}
	is_string(e[check.name])
}

_check_ok(check, e) if {
	check.name in {"image", "path"}
	lib.valid_glob(e[check.name])
}

_valid_ids contains i if {
	some i, e in _exceptions
	count(_problems(e)) == 0
}

_meta contains f if {
	some i, e in _exceptions
	problems := _problems(e)
	count(problems) > 0
	f := {
		"code": "invalid-exception",
		"severity": "warn",
		"message": sprintf("exception %d (%s) is ignored: %s", [i, _describe(e), concat("; ", sort(problems))]),
	}
}

_describe(e) := sprintf("code %v", [e.code]) if is_object(e)
else := sprintf("%v", [e])

_now_ns := lib.parse_time(input.context.now) if {
	lib.valid_time(input.context.now)
} else := time.now_ns()

_active_ids contains i if {
	some i in _valid_ids
	_now_ns < lib.expiry_ns(_exceptions[i].expires)
}

_expired_ids contains i if {
	some i in _valid_ids
	not i in _active_ids
}

_matches(e, f) if {
	e.code == f.code
	not f.code in _meta_codes
	_image_matches(e)
	_digest_matches(e)
	_path_matches(e, f)
}

_image_matches(e) if object.get(e, "image", null) == null

_image_matches(e) if lib.image_matches(e.image)

_digest_matches(e) if object.get(e, "digest", null) == null

_digest_matches(e) if e.digest == input.image.digest

_path_matches(e, _) if object.get(e, "path", null) == null

_path_matches(e, f) if lib.path_matches(e.path, f.location.path)

# The exceptions that waive a finding now, by index.
_active_for(f) := {i | some i in _active_ids; _matches(_exceptions[i], f)}

_waived_by(f) if count(_active_for(f)) > 0

_waived contains w if {
	some f in _findings
	ids := _active_for(f)
	count(ids) > 0
	e := _exceptions[min(ids)]
	w := {"finding": f, "reason": e.reason, "expires": e.expires}
}

# An expired exception is reported where it would still have waived a finding: the finding
# counts again, and the warning says which exception to renew or remove.
_meta contains f if {
	some finding in _findings
	not _waived_by(finding)
	some i in _expired_ids
	e := _exceptions[i]
	_matches(e, finding)
	base := {
		"code": "expired-exception",
		"severity": "warn",
		"message": sprintf("exception %d for %s expired on %s (reason was: %s); the finding counts again: %s", [i, e.code, e.expires, e.reason, finding.message]),
	}
	f := _with_location(base, object.get(finding, "location", {}))
}
