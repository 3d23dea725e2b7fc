# No secrets in any layer, including files a later layer deleted: a deleted file still ships
# in the layer that added it, and anyone who can pull the image can extract it.
#
# Reads input.facts.secrets (files in every layer, ENV, build history). Code:
# secret-in-image (deny), one per secret. secrets.ignore_rules skips a detector by id,
# secrets.ignore_paths skips files by glob (test fixtures, documentation keys).
package gantry.rules.secrets

import rego.v1

import data.gantry.lib

# Settings from data.gantry.secrets ({} when absent: every check that needs a value is off).
_cfg := c if {
	c := data.gantry.secrets
	is_object(c)
} else := {}

_ignored(s) if _rule(s) in object.get(_cfg, "ignore_rules", [])

_ignored(s) if {
	some pattern in object.get(_cfg, "ignore_paths", [])
	lib.path_matches(pattern, s.location.path)
}

# Every member is read defensively: a secret fact with a missing member must still deny.
_rule(s) := r if {
	r := s.rule
	is_string(r)
} else := "unknown detector"

_what(s) := sprintf("%s (%s)", [s.description, _rule(s)]) if is_string(s.description)
else := sprintf("a secret (%s)", [_rule(s)])

_where(s) := "in the image config's environment (ENV), visible to anyone who can pull or inspect the image" if {
	s.source == "env"
} else := "in the build history (a RUN/ARG step), visible with docker history" if {
	s.source == "history"
} else := sprintf("in %s, layer %v", [s.location.path, s.location.layer_index]) if {
	is_string(s.location.path)
	is_number(s.location.layer_index)
} else := sprintf("in %s", [s.location.path]) if {
	is_string(s.location.path)
} else := "in the image"

_location(s) := loc if {
	loc := s.location
	is_object(loc)
} else := {}

_deleted(s) := "; a later layer deletes it, but the layer that added it still ships it to everyone who pulls the image" if {
	s.deleted == true
} else := ""

deny contains {
	"code": "secret-in-image",
	"message": sprintf("%s %s%s; rotate it, and pass secrets at build time with RUN --mount=type=secret, at run time from the orchestrator", [_what(s), _where(s), _deleted(s)]),
	"location": _location(s),
} if {
	some s in object.get(input, ["facts", "secrets"], [])
	is_object(s)
	not _ignored(s)
}
