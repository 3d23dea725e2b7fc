package gantry_test.completeness

import rego.v1

import data.gantry_test.fixtures as fx

foreign := fx.patched({"layers": [
	fx.clean.layers[0],
	object.union(fx.clean.layers[1], {
		"media_type": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		"uncompressed_size": null, "files": null, "walked": false,
	}),
]})

test_unwalked_layer_warns if {
	v := fx.verdict(foreign)
	v.decision == "allow"
	[w] := fx.with_code(v.warnings, "layer-not-walked")
	w.location == {"layer": fx.layer1, "layer_index": 1}
	contains(w.message, "foreign")
}

test_unwalked_layer_denied_when_required if {
	v := fx.verdict(foreign) with data.gantry.completeness.deny_unwalked_layers as true
	v.decision == "deny"
	"layer-not-walked" in fx.codes(v.violations)
}

test_unknown_warns if {
	inp := fx.patched({"unknowns": [{"analyzer": "passwd", "path": "etc/passwd", "reason": "line 3 has 5 fields", "layer": fx.layer0}]})
	v := fx.verdict(inp)
	[w] := fx.with_code(v.warnings, "unparsed-file")
	w.location == {"layer": fx.layer0, "path": "etc/passwd"}
	v2 := fx.verdict(inp) with data.gantry.completeness.warn_unknowns as false
	v2.warnings == []
}
