# Size limits: what every node pulls and stores for every replica.
#
# Reads input.facts.size and input.layers. Codes: image-too-large (deny, over
# size.max_uncompressed_bytes), too-many-layers (deny, over size.max_layers), wasted-space
# (warn: bytes shipped but deleted or overwritten by later layers, over size.max_wasted_bytes
# or size.max_wasted_ratio). A missing or null threshold disables its check.
package gantry.rules.size

import rego.v1

import data.gantry.lib

# Settings from data.gantry.size ({} when absent: every check that needs a value is off).
_cfg := c if {
	c := data.gantry.size
	is_object(c)
} else := {}

_size := s if {
	s := input.facts.size
	is_object(s)
} else := {}

_layers := [l | some l in object.get(input, "layers", []); is_object(l)]

_sized_layers := [l | some l in _layers; is_number(l.uncompressed_size)]

# The largest layer: where the bytes are, so the finding points at a layer.
_largest := layer if {
	biggest := max([l.uncompressed_size | some l in _sized_layers])
	layer := [l | some l in _sized_layers; l.uncompressed_size == biggest][0]
}

_layer_location(l) := {key: val |
	some key, name in {"layer": "digest", "layer_index": "index"}
	val := l[name]
	val != null
}

_largest_text := sprintf("; the largest layer is #%v (%s, %s)", [
	_largest.index, lib.format_bytes(_largest.uncompressed_size),
	lib.shorten(object.get(_largest, "created_by", "") , 80),
]) if {
	is_string(_largest.created_by)
} else := sprintf("; the largest layer is #%v (%s)", [_largest.index, lib.format_bytes(_largest.uncompressed_size)]) if {
	_largest
} else := ""

_largest_location := _layer_location(_largest) if _largest
else := lib.field("manifest.layers")

deny contains {
	"code": "image-too-large",
	"message": sprintf("the image is %s uncompressed, over the limit of %s%s", [
		lib.format_bytes(total), lib.format_bytes(limit), _largest_text,
	]),
	"location": _largest_location,
} if {
	limit := _cfg.max_uncompressed_bytes
	is_number(limit)
	total := _size.uncompressed_bytes
	is_number(total)
	total > limit
}

_layer_count := n if {
	n := _size.layer_count
	is_number(n)
} else := count(_layers)

deny contains {
	"code": "too-many-layers",
	"message": sprintf("the image has %d layers, over the limit of %d: every layer is a separate download and overlay mount; merge RUN steps or build in stages", [_layer_count, limit]),
	"location": lib.field("manifest.layers"),
} if {
	limit := _cfg.max_layers
	is_number(limit)
	_layer_count > limit
}

_wasted := w if {
	w := _size.wasted_bytes
	is_number(w)
} else := 0

_wasted_over if {
	limit := _cfg.max_wasted_bytes
	is_number(limit)
	_wasted > limit
}

_wasted_over if {
	ratio := _cfg.max_wasted_ratio
	is_number(ratio)
	total := _size.uncompressed_bytes
	is_number(total)
	total > 0
	_wasted / total > ratio
}

warn contains {
	"code": "wasted-space",
	"message": sprintf("%s of the image are files that a later layer deletes or overwrites: they are still downloaded; delete them in the same RUN step that creates them, or build in stages", [lib.format_bytes(_wasted)]),
	"location": lib.field("manifest.layers"),
} if {
	_wasted_over
}
