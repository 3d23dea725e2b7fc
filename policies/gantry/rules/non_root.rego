# The container must not run as root: uid 0 under any name, or no USER at all.
#
# Reads input.facts.user (USER resolved through the image's own etc/passwd) and, as a second
# line of defence, the USER string itself: "", "root", "0", "0:0" are root whatever the facts
# say. Codes: root-user (deny), unresolvable-user (warn, or deny when
# non_root.unresolvable_user is "deny"), non-numeric-user (warn, data flag
# non_root.warn_non_numeric_user).
package gantry.rules.non_root

import rego.v1

import data.gantry.lib

# Settings from data.gantry.non_root ({} when absent: every check that needs a value is off).
_cfg := c if {
	c := data.gantry.non_root
	is_object(c)
} else := {}

_user := u if {
	u := input.facts.user
	is_object(u)
} else := {}

# USER as written ("" when not set).
_configured := u if {
	u := input.config.user
	is_string(u)
} else := u if {
	u := _user.configured
	is_string(u)
} else := ""

# The user part of "user:group".
_user_part := split(_configured, ":")[0]

_numeric if regex.match(`^[0-9]+$`, _user_part)

# Why the image runs as root, when it does; the message says which case it is.
_root_reason := "USER is not set, so the container runs as root (uid 0)" if {
	_configured == ""
} else := sprintf("USER %s is uid 0 (root)", [_configured]) if {
	regex.match(`^0+$`, _user_part)
} else := sprintf("USER %s is root (uid 0)", [_configured]) if {
	_user_part == "root"
} else := sprintf("USER %s maps to uid 0 in etc/passwd: root under another name", [_configured]) if {
	_user.root == true
}

_root_allowed if {
	some pattern in object.get(_cfg, "allowed_root_images", [])
	lib.image_matches(pattern)
}

# The evidence: the passwd entry that resolves the name (with the config field), else the field.
_location := loc if {
	loc := _user.location
	is_object(loc)
	count(loc) > 0
} else := lib.field("config.User")

deny contains {
	"code": "root-user",
	"message": sprintf("%s; run as an unprivileged numeric user, e.g. USER 65532:65532", [_root_reason]),
	"location": _location,
} if {
	_root_reason
	not _root_allowed
}

# The runtime (runc, as Docker and containerd run it) refuses to start the container, or
# Gantry could not read the account file that decides.
_unresolvable if {
	not _root_reason
	_user.resolved == false
}

_unresolvable_message := sprintf("USER %s: the container will not start — the runtime fails with \"%s\" (%s); use a numeric USER or add the account to the final stage", [_configured, _user.start_error, object.get(_user, "reason", "")]) if {
	is_string(_user.start_error)
} else := sprintf("USER %s cannot be resolved (%s): its uid is unknown and the runtime may refuse to start the container; use a numeric USER or add the user", [_configured, object.get(_user, "reason", "no entry in etc/passwd of the final filesystem")])

# "deny" or "warn" (the default: Kubernetes' runAsUser overrides USER, so such an image
# can still run under a pod that sets it).
_unresolvable_severity := "deny" if _cfg.unresolvable_user == "deny"
else := "warn"

_unresolvable_finding := {
	"code": "unresolvable-user",
	"message": _unresolvable_message,
	"location": _location,
}

deny contains _unresolvable_finding if {
	_unresolvable
	_unresolvable_severity == "deny"
}

warn contains _unresolvable_finding if {
	_unresolvable
	_unresolvable_severity == "warn"
}

warn contains {
	"code": "non-numeric-user",
	"message": sprintf("USER %s is a name, not a number: Kubernetes cannot verify runAsNonRoot for it and refuses such pods; write %s", [_configured, _numeric_hint]),
	"location": _location,
} if {
	_cfg.warn_non_numeric_user == true
	not _root_reason
	not _numeric
}

_numeric_hint := sprintf("USER %v:%v", [_user.uid, _user.gid]) if {
	is_number(_user.uid)
	is_number(_user.gid)
} else := sprintf("USER %v", [_user.uid]) if {
	is_number(_user.uid)
} else := "the numeric uid (USER <uid>:<gid>)"
