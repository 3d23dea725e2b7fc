# Hygiene warnings that are noisy on ordinary distribution bases, so each is off unless
# data.gantry.hygiene turns it on (docs/policies/data.md). Codes, all warn:
#   setuid-file              a setuid/setgid file (privilege escalation path) — warn_setuid
#   shell-present            a shell in the final image — warn_shell
#   package-manager-present  a package manager in the final image — warn_package_manager
package gantry.rules.hygiene

import rego.v1

import data.gantry.lib

# Settings from data.gantry.hygiene ({} when absent: every check that needs a value is off).
_cfg := c if {
	c := data.gantry.hygiene
	is_object(c)
} else := {}

_setuid_allowed(f) if {
	some pattern in object.get(_cfg, "allowed_setuid_paths", [])
	lib.path_matches(pattern, f.path)
}

_bits(f) := "setuid and setgid" if {
	f.setuid == true
	f.setgid == true
} else := "setuid" if {
	f.setuid == true
} else := "setgid"

# Permission bits in octal, as ls and chmod show them.
_mode(f) := sprintf(" (mode %s)", [format_int(f.mode % 4096, 8)]) if is_number(f.mode)
else := ""

warn contains {
	"code": "setuid-file",
	"message": sprintf("%s is %s%s: a process in the container can gain its owner's privileges through it; remove the bit (chmod u-s,g-s) or the file", [f.path, _bits(f), _mode(f)]),
	"location": object.get(f, "location", {"path": f.path}),
} if {
	_cfg.warn_setuid == true
	some f in object.get(input, ["facts", "setuid"], [])
	is_object(f)
	is_string(f.path)
	not _setuid_allowed(f)
}

warn contains {
	"code": "shell-present",
	"message": sprintf("a shell ships in the final image (%s): anyone who can exec into the container gets one; use a distroless or scratch final stage", [concat(", ", paths)]),
	"location": {"path": paths[0]},
} if {
	_cfg.warn_shell == true
	input.facts.shell.present == true
	paths := sort([p | some p in object.get(input.facts.shell, "paths", []); is_string(p)])
	count(paths) > 0
}

warn contains {
	"code": "package-manager-present",
	"message": sprintf("the package manager %s ships in the final image: software can be installed at run time; use a final stage without one", [pm.name]),
	"location": {"path": pm.path},
} if {
	_cfg.warn_package_manager == true
	some pm in object.get(input, ["facts", "package_managers"], [])
	is_object(pm)
	is_string(pm.path)
}
