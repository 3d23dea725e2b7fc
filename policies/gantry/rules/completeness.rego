# What Gantry could not see. A layer that was not walked (a foreign or unknown media type)
# may hold files no rule looked at; a file an analyzer could not parse is an "unknown".
# Codes: layer-not-walked (warn; deny when completeness.deny_unwalked_layers), unparsed-file
# (warn, when completeness.warn_unknowns).
package gantry.rules.completeness

import rego.v1

# Settings from data.gantry.completeness ({} when absent: every check that needs a value is off).
_cfg := c if {
	c := data.gantry.completeness
	is_object(c)
} else := {}

_unwalked contains {
	"code": "layer-not-walked",
	"message": sprintf("layer #%v (%v) was not walked: no rule saw its files, so a secret or toolchain in it would go unnoticed", [object.get(l, "index", "?"), object.get(l, "media_type", "unknown media type")]),
	"location": {key: val | some key, name in {"layer": "digest", "layer_index": "index"}; val := l[name]; val != null},
} if {
	some l in object.get(input, "layers", [])
	is_object(l)
	l.walked == false
}

deny contains f if {
	_cfg.deny_unwalked_layers == true
	some f in _unwalked
}

warn contains f if {
	not _cfg.deny_unwalked_layers == true
	some f in _unwalked
}

warn contains {
	"code": "unparsed-file",
	"message": sprintf("the %v analyzer could not read %v (%v): the facts it would give are missing", [object.get(u, "analyzer", "?"), object.get(u, "path", "?"), object.get(u, "reason", "no reason given")]),
	"location": {key: val | some key in ["layer", "path"]; val := u[key]; is_string(val)},
} if {
	_cfg.warn_unknowns == true
	some u in object.get(input, "unknowns", [])
	is_object(u)
}
