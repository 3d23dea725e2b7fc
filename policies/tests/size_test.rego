package gantry_test.size

import rego.v1

import data.gantry_test.fixtures as fx

gib := 1073741824

big := fx.patched({
	"layers": [
		fx.clean.layers[0],
		object.union(fx.clean.layers[1], {"uncompressed_size": 1288490189, "created_by": "RUN apt-get install -y texlive-full"}),
	],
	"facts": {"size": {"uncompressed_bytes": 1290490189, "layer_count": 2}},
})

test_over_the_limit_is_denied_at_the_largest_layer if {
	v := fx.verdict(big)
	[f] := fx.with_code(v.violations, "image-too-large")
	f.location == {"layer": fx.layer1, "layer_index": 1}
	contains(f.message, "1.2 GiB uncompressed, over the limit of 1 GiB")
	contains(f.message, "largest layer is #1")
	contains(f.message, "texlive-full")
}

test_limit_from_data if {
	v := fx.verdict(big) with data.gantry.size.max_uncompressed_bytes as 2 * gib
	v.decision == "allow"
}

test_missing_limit_disables_the_check if {
	v := fx.verdict(big) with data.gantry.size as {}
	v.decision == "allow"
}

test_exactly_at_the_limit_is_allowed if {
	inp := fx.patched({"facts": {"size": {"uncompressed_bytes": gib}}})
	fx.verdict(inp).decision == "allow"
}

test_too_many_layers if {
	inp := fx.patched({"facts": {"size": {"layer_count": 101}}})
	v := fx.verdict(inp)
	[f] := fx.with_code(v.violations, "too-many-layers")
	contains(f.message, "101 layers, over the limit of 100")
	v2 := fx.verdict(inp) with data.gantry.size.max_layers as null
	v2.decision == "allow"
}

test_wasted_space_warns if {
	inp := fx.patched({"facts": {"size": {"wasted_bytes": 52428800}}})
	v := fx.verdict(inp)
	v.decision == "allow"
	[w] := fx.with_code(v.warnings, "wasted-space")
	contains(w.message, "50 MiB")
}

test_small_waste_is_quiet if {
	inp := fx.patched({"facts": {"size": {"wasted_bytes": 1048576}}})
	fx.verdict(inp).warnings == []
}

test_wasted_ratio if {
	inp := fx.patched({"facts": {"size": {"wasted_bytes": 5000000}}})
	fx.verdict(inp).warnings == []
	v := fx.verdict(inp) with data.gantry.size.max_wasted_ratio as 0.1
	"wasted-space" in fx.codes(v.warnings)
}
