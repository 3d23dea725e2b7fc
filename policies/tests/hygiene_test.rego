package gantry_test.hygiene

import rego.v1

import data.gantry_test.fixtures as fx

noisy := fx.patched({"facts": {
	"setuid": [{"path": "usr/bin/passwd", "mode": 2541, "setuid": true, "setgid": false, "location": {"layer": fx.layer0, "layer_index": 0, "path": "usr/bin/passwd"}}],
	"shell": {"present": true, "paths": ["bin/sh", "bin/bash"]},
	"package_managers": [{"name": "apt", "path": "usr/bin/apt"}],
}})

test_hygiene_is_off_by_default if {
	v := fx.verdict(noisy)
	v.decision == "allow"
	v.warnings == []
}

test_setuid_warns_when_on if {
	v := fx.verdict(noisy) with data.gantry.hygiene.warn_setuid as true
	v.decision == "allow"
	[w] := fx.with_code(v.warnings, "setuid-file")
	contains(w.message, "usr/bin/passwd is setuid (mode 4755)")
	w.location.path == "usr/bin/passwd"
}

test_setuid_allowlist if {
	v := fx.verdict(noisy) with data.gantry.hygiene.warn_setuid as true with data.gantry.hygiene.allowed_setuid_paths as ["usr/bin/passwd"]
	v.warnings == []
}

test_shell_warns_when_on if {
	v := fx.verdict(noisy) with data.gantry.hygiene.warn_shell as true
	[w] := fx.with_code(v.warnings, "shell-present")
	contains(w.message, "bin/bash, bin/sh")
	w.location == {"path": "bin/bash"}
}

test_package_manager_warns_when_on if {
	v := fx.verdict(noisy) with data.gantry.hygiene.warn_package_manager as true
	[w] := fx.with_code(v.warnings, "package-manager-present")
	contains(w.message, "apt")
}
