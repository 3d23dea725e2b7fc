package gantry_test.practices

import rego.v1

import data.gantry_test.fixtures as fx

# `clean` with config members replaced (lists are replaced by object.union anyway).
with_config(patch) := fx.patched({"config": patch})

with_facts(patch) := fx.patched({"facts": patch})

test_clean_image_has_no_practice_findings if {
	fx.verdict(fx.clean).warnings == []
}

# ---------------------------------------------------------------------------------------------
# dev-dependency-shipped

npm_dev(name, version, evidence) := {
	"ecosystem": "npm", "name": name, "version": version, "project": "app", "evidence": evidence,
	"source": "app/package-lock.json",
	"location": {"layer": fx.layer1, "layer_index": 1, "path": sprintf("app/node_modules/%s/package.json", [name])},
}

test_npm_dev_dependencies_one_finding_per_project if {
	inp := with_facts({"dev_dependencies": [
		npm_dev("typescript", "5.6.3", "lockfile"),
		npm_dev("jest", "29.7.0", "lockfile"),
	]})
	v := fx.verdict(inp)
	v.decision == "allow"
	[w] := fx.with_code(v.warnings, "dev-dependency-shipped")
	contains(w.message, "2 npm development dependencies are installed in app/node_modules (jest 29.7.0, typescript 5.6.3)")
	contains(w.message, "app/package-lock.json marks them \"dev\": true")
	contains(w.message, "npm ci --omit=dev")
	w.location.path == "app/node_modules/jest/package.json"
}

test_npm_dev_dependency_from_the_graph if {
	d := object.union(npm_dev("eslint", "9.1.0", "dependency-graph"), {"source": "app/package.json"})
	[w] := fx.with_code(fx.verdict(with_facts({"dev_dependencies": [d]})).warnings, "dev-dependency-shipped")
	contains(w.message, "1 npm development dependency is installed")
	contains(w.message, "reachable only from devDependencies of app/package.json")
}

test_many_npm_dev_dependencies_are_counted if {
	deps := [npm_dev(sprintf("pkg%d", [i]), "1.0.0", "lockfile") | some i in numbers.range(1, 8)]
	[w] := fx.with_code(fx.verdict(with_facts({"dev_dependencies": deps})).warnings, "dev-dependency-shipped")
	contains(w.message, "and 3 more")
}

pypi(name, version) := {
	"ecosystem": "pypi", "name": name, "version": version, "arch": null, "source": null,
	"purl": sprintf("pkg:pypi/%s@%s", [lower(name), version]),
	"location": {"layer": fx.layer1, "layer_index": 1, "path": sprintf("usr/local/lib/python3.12/site-packages/%s-%s.dist-info/METADATA", [name, version])},
}

test_python_dev_tools if {
	inp := fx.patched({"packages": [pypi("pytest", "8.3.2"), pypi("Flask", "3.0.3"), pypi("Pre_Commit", "3.8.0")]})
	v := fx.verdict(inp)
	ws := fx.with_code(v.warnings, "dev-dependency-shipped")
	count(ws) == 2
	some w in ws
	contains(w.message, "the Python development tool pytest 8.3.2 is installed in the final image")
	w.location.path == "usr/local/lib/python3.12/site-packages/pytest-8.3.2.dist-info/METADATA"
}

test_dev_dependencies_switch_and_list if {
	inp := fx.patched({"packages": [pypi("pytest", "8.3.2")]})
	off := fx.verdict(inp) with data.gantry.practices.warn_dev_dependencies as false
	off.warnings == []
	other := fx.verdict(inp) with data.gantry.practices.python_dev_tools as ["mypy"]
	other.warnings == []
}

# ---------------------------------------------------------------------------------------------
# no-init-process

test_node_as_pid1_is_informational if {
	every argv in [
		{"entrypoint": ["node", "server.js"], "cmd": null},
		{"entrypoint": null, "cmd": ["/usr/local/bin/node", "server.js"]},
		{"entrypoint": ["npm"], "cmd": ["start"]},
		{"entrypoint": null, "cmd": ["python3.12", "-m", "app"]},
		{"entrypoint": ["/bin/sh", "-c", "exec node server.js"], "cmd": null},
	] {
		v := fx.verdict(with_config(argv))
		v.decision == "allow"
		[w] := fx.with_code(v.warnings, "no-init-process")
		startswith(w.message, "informational: ")
	}
}

test_an_init_in_front_is_fine if {
	every argv in [
		{"entrypoint": ["/sbin/tini", "--", "node", "server.js"], "cmd": null},
		{"entrypoint": ["dumb-init", "--"], "cmd": ["python", "app.py"]},
		{"entrypoint": ["/app/server"], "cmd": null},
		{"entrypoint": null, "cmd": null},
	] {
		v := fx.verdict(with_config(argv))
		not "no-init-process" in fx.codes(v.warnings)
	}
}

test_no_init_location_and_switch if {
	inp := with_config({"entrypoint": null, "cmd": ["node", "index.js"]})
	[w] := fx.with_code(fx.verdict(inp).warnings, "no-init-process")
	w.location == {"field": "config.Cmd"}
	off := fx.verdict(inp) with data.gantry.practices.warn_no_init as false
	off.warnings == []
}

# ---------------------------------------------------------------------------------------------
# no-healthcheck

test_no_healthcheck if {
	every hc in [null, ["NONE"], []] {
		v := fx.verdict(with_config({"healthcheck": hc}))
		[w] := fx.with_code(v.warnings, "no-healthcheck")
		w.location == {"field": "config.Healthcheck"}
	}
}

test_no_healthcheck_not_in_admission_and_switchable if {
	inp := with_config({"healthcheck": null})
	adm := fx.verdict(object.union(inp, {"context": {"mode": "admission"}}))
	adm.warnings == []
	off := fx.verdict(inp) with data.gantry.practices.warn_no_healthcheck as false
	off.warnings == []
}

# ---------------------------------------------------------------------------------------------
# missing-ca-certificates, missing-tzdata

go_client := {
	"path": "app/server", "language": "go",
	"evidence": "links crypto/x509.loadSystemRoots: it verifies certificates against the system CA store, and no fallback roots are compiled in",
	"location": {"layer": fx.layer1, "layer_index": 1, "path": "app/server"},
}

test_tls_client_without_ca_bundle if {
	inp := with_facts({"tls": {"ca_certificates": null, "clients": [go_client]}})
	[w] := fx.with_code(fx.verdict(inp).warnings, "missing-ca-certificates")
	contains(w.message, "app/server links crypto/x509.loadSystemRoots")
	contains(w.message, "certificate signed by unknown authority")
	w.location.path == "app/server"
}

test_tls_client_with_ca_bundle_or_off if {
	inp := with_facts({"tls": {"ca_certificates": "etc/ssl/certs/ca-certificates.crt", "clients": [go_client]}})
	fx.verdict(inp).warnings == []
	bare := with_facts({"tls": {"ca_certificates": null, "clients": [go_client]}})
	off := fx.verdict(bare) with data.gantry.practices.warn_missing_ca_certificates as false
	off.warnings == []
}

test_zone_loader_without_zoneinfo if {
	loader := object.union(go_client, {"evidence": "links time.LoadLocation and not time/tzdata: named zones are read from the system's zone database"})
	inp := with_facts({"timezone": {"zoneinfo": null, "loaders": [loader, object.union(loader, {"path": "app/other"})]}})
	[w] := fx.with_code(fx.verdict(inp).warnings, "missing-tzdata")
	contains(w.message, "time.LoadLocation")
	contains(w.message, "(and 1 other binaries)")
	ok := with_facts({"timezone": {"zoneinfo": "usr/share/zoneinfo", "loaders": [loader]}})
	fx.verdict(ok).warnings == []
}

# ---------------------------------------------------------------------------------------------
# add-remote-url, add-archive

with_history(created_by) := with_config({"history": [
	{"created_by": "bazel build @distroless//static", "empty_layer": false, "layer_index": 0},
	{"created_by": created_by, "empty_layer": false, "layer_index": 1},
]})

test_add_of_a_url if {
	every cb in [
		"ADD https://example.com/tool.tar.gz /opt/ # buildkit",
		"ADD --chown=1000:1000 http://example.com/app.jar /app/app.jar # buildkit",
		"ADD [\"https://example.com/x\", \"/x\"] # buildkit",
		"/bin/sh -c #(nop) ADD https://example.com/x /x",
		"ADD git@github.com:org/repo.git /src # buildkit",
	] {
		v := fx.verdict(with_history(cb))
		[w] := fx.with_code(v.warnings, "add-remote-url")
		w.location == {"field": "config.history[1]", "layer": fx.layer1, "layer_index": 1}
		not "add-archive" in fx.codes(v.warnings)
	}
}

test_add_of_a_url_with_checksum_or_copy_is_fine if {
	every cb in [
		"ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/x /x # buildkit",
		"COPY https.txt /x # buildkit",
		"RUN curl -fsSL https://example.com/x -o /x # buildkit",
	] {
		v := fx.verdict(with_history(cb))
		v.warnings == []
	}
}

test_add_of_an_archive if {
	v := fx.verdict(with_history("ADD vendor/app-1.2.tar.gz /opt/app/ # buildkit"))
	[w] := fx.with_code(v.warnings, "add-archive")
	contains(w.message, "ADDs the archive vendor/app-1.2.tar.gz")
}

test_add_archive_exemptions if {
	every cb in [
		# A root filesystem into /: how base images are made.
		"ADD alpine-minirootfs-3.20.3-x86_64.tar.gz / # buildkit",
		# The classic builder records only a content hash.
		"/bin/sh -c #(nop) ADD file:4e5a8f0b0b3c4c1a in /opt",
		# A plain file.
		"ADD config.yaml /app/ # buildkit",
	] {
		v := fx.verdict(with_history(cb))
		v.warnings == []
	}
	in_base := object.union(with_history("ADD app.tgz /opt/ # buildkit"), {"layers": [{}, {"in_base": true}]})
	fx.verdict(object.union(in_base, {"layers": [fx.clean.layers[0], object.union(fx.clean.layers[1], {"in_base": true})]})).warnings == []
}
