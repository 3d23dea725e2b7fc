# Build toolchains and build leftovers must not ship in the final image.
#
# Reads input.facts.toolchain (what the analyzers found in the FINAL filesystem, by path, ELF
# identity or owning package). A fact counts when its category is listed in
# data.gantry.toolchain.deny_categories (deny) or warn_categories (warn) and it is not
# allowlisted by name, package or path. Facts of one category from one package are reported
# once (gcc, gcc-12 and x86_64-linux-gnu-gcc-12 from package gcc-12 are one finding, not
# three), as are facts of one category and name without a package; a finding is located at
# its first path and says how many other paths it stands for.
#
# Codes: build-toolchain (compilers, build drivers, language toolchains, headers, -dev
# packages, node build tools) and build-leftover (source maps, VCS directories, source trees).
package gantry.rules.toolchain

import rego.v1

import data.gantry.lib

# Settings from data.gantry.toolchain ({} when absent: every check that needs a value is off).
_cfg := c if {
	c := data.gantry.toolchain
	is_object(c)
} else := {}

_leftover_categories := {"source-map", "vcs", "source-tree"}

_deny_categories := {c | some c in object.get(_cfg, "deny_categories", [])}

_warn_categories := {c | some c in object.get(_cfg, "warn_categories", [])} - _deny_categories

_facts := [t |
	some t in object.get(input, ["facts", "toolchain"], [])
	is_object(t)
	not _allowed(t)
]

_allowed(t) if t.name in object.get(_cfg, "allow_names", [])

_allowed(t) if {
	is_string(t.package)
	t.package in object.get(_cfg, "allow_packages", [])
}

_allowed(t) if {
	some pattern in object.get(_cfg, "allow_paths", [])
	lib.path_matches(pattern, t.location.path)
}

_key(t) := [t.category, "package", t.package] if is_string(t.package)
else := [t.category, "name", object.get(t, "name", "")]

_keys := {_key(t) | some t in _facts}

# key -> the facts of that group
_groups := {key: items |
	some key in _keys
	items := [t | some t in _facts; _key(t) == key]
}

_location(t) := loc if {
	loc := t.location
	is_object(loc)
} else := {}

_path(t) := p if {
	p := t.location.path
	is_string(p)
} else := ""

# One finding per group, coded by what the category is.
_finding(key, items) := object.union({"code": "build-leftover"}, _described(items, key[0])) if {
	key[0] in _leftover_categories
}

_finding(key, items) := object.union({"code": "build-toolchain"}, _described(items, key[0])) if {
	not key[0] in _leftover_categories
}

_described(items, category) := f if {
	first_path := min({_path(t) | some t in items})
	first := [t | some t in items; _path(t) == first_path][0]
	others := count({_path(t) | some t in items}) - 1
	f := {
		"message": sprintf("%v (%v: %v) ships in the final image%s%s%s; %s", [
			object.get(first, "name", "a build tool"), category, object.get(first, "reason", "no reason given"),
			_at(first_path), _more(others), _package(first), _advice(category),
		]),
		"location": _location(first),
	}
}

_at("") := ""

_at(p) := sprintf(" at %s", [p]) if p != ""

_more(0) := ""

_more(n) := sprintf(" and %d more path(s)", [n]) if n > 0

_package(t) := sprintf(", installed by package %s", [t.package]) if is_string(t.package)
else := ""

_advice(category) := "remove it from the final image (do not COPY it from the build stage)" if category in _leftover_categories
else := "build in a separate stage and copy only the artifacts into the final one"

deny contains _finding(key, items) if {
	some key, items in _groups
	key[0] in _deny_categories
}

warn contains _finding(key, items) if {
	some key, items in _groups
	key[0] in _warn_categories
}
