# Inputs and helpers shared by the policy tests.
#
# `clean` is a distroless-style image that every shipped rule allows: numeric non-root
# USER, base pinned by digest, no toolchain or secret, small. Each test changes one thing
# with object.union (objects merge recursively; lists are replaced).
package gantry_test.fixtures

import rego.v1

layer0 := "sha256:aaaa000000000000000000000000000000000000000000000000000000000000"

layer1 := "sha256:bbbb000000000000000000000000000000000000000000000000000000000000"

clean := {
	"version": 1,
	"image": {
		"source": "registry.example/team/api:1.4",
		"reference": "registry.example/team/api:1.4",
		"digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		"media_type": "application/vnd.oci.image.manifest.v1+json",
		"config_digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
		"index_digest": null,
		"platform": "linux/amd64",
		"annotations": {},
		"labels": {},
	},
	"config": {
		"user": "65534:65534",
		"env": ["PATH=/usr/bin"],
		"entrypoint": ["/app/server"],
		"cmd": null,
		"working_dir": "/app",
		"exposed_ports": [],
		"healthcheck": ["CMD", "/app/server", "-healthcheck"],
		"history": [
			{"created_by": "bazel build @distroless//static", "empty_layer": false, "layer_index": 0},
			{"created_by": "COPY /out/server /app/server", "empty_layer": false, "layer_index": 1},
		],
	},
	"layers": [
		{
			"index": 0, "digest": layer0, "diff_id": layer0,
			"media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
			"compressed_size": 800000, "uncompressed_size": 2000000, "files": 400,
			"created_by": "bazel build @distroless//static", "in_base": true, "walked": true,
		},
		{
			"index": 1, "digest": layer1, "diff_id": layer1,
			"media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
			"compressed_size": 7000000, "uncompressed_size": 19000000, "files": 3,
			"created_by": "COPY /out/server /app/server", "in_base": false, "walked": true,
		},
	],
	"facts": {
		"user": user_fact("65534:65534", null, 65534, 65534),
		"toolchain": [],
		"secrets": [],
		"setuid": [],
		"shell": {"present": false, "paths": []},
		"package_managers": [],
		"base": {
			"name": "gcr.io/distroless/static-debian12:nonroot@sha256:3333333333333333333333333333333333333333333333333333333333333333",
			"digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
			"tag": "nonroot",
			"repository": "gcr.io/distroless/static-debian12",
			"pin": "digest",
			"pin_reason": "the recorded base reference carries a digest",
			"pinned": true,
			"floating": false,
			"evidence": "annotation",
			"layers": [0],
			"location": {"field": "manifest.annotations[\"org.opencontainers.image.base.name\"]"},
		},
		"size": {
			"compressed_bytes": 7800000, "uncompressed_bytes": 21000000, "layer_count": 2,
			"final_bytes": 20900000, "wasted_bytes": 0, "hidden_bytes": 0,
			"largest_layer_bytes": 19000000,
		},
		"os": null,
	},
	"packages": [],
	"unknowns": [],
	"context": {"now": "2026-11-22T15:00:00Z", "mode": "cli"},
}

# facts.user as the analyzers derive it; name is the user part when not numeric.
user_fact(configured, name, uid, gid) := {
	"configured": configured,
	"name": name,
	"group": null,
	"uid": uid,
	"gid": gid,
	"numeric": name == null,
	"resolved": uid != null,
	"root": _root(uid),
	"reason": "test",
	"location": {"field": "config.User"},
}

_root(null) := null

_root(uid) := uid == 0 if uid != null

# `clean` with USER set and its resolved fact.
with_user(configured, name, uid, gid) := object.union(clean, {
	"config": {"user": configured},
	"facts": {"user": user_fact(configured, name, uid, gid)},
})

# `clean` with a patch merged in.
patched(patch) := object.union(clean, patch)

# The verdict of the built-in policy for an input.
verdict(inp) := v if {
	v := data.gantry.verdict with input as inp
}

codes(findings) := {f.code | some f in findings}

violation_codes(inp) := codes(verdict(inp).violations)

warning_codes(inp) := codes(verdict(inp).warnings)

# The findings with one code.
with_code(findings, code) := [f | some f in findings; f.code == code]
