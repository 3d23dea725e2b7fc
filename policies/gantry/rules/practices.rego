# Practices of multi-stage builds that the other rules do not cover. All warnings; each has a
# switch in data.gantry.practices (docs/policies/data.md). Codes:
#   dev-dependency-shipped   npm development dependencies or Python test/dev tools in the final image
#   no-init-process          a Node or Python program is PID 1 with no init (informational)
#   no-healthcheck           the config has no HEALTHCHECK (informational)
#   missing-ca-certificates  a binary verifies TLS against the system CA store, and there is none
#   missing-tzdata           a binary loads named zones from the system, and there is no zone database
#   add-remote-url           a history step ADDs a URL (downloaded at build time, unverified)
#   add-archive              a history step ADDs a local archive (extracted; COPY ships it as is)
package gantry.rules.practices

import rego.v1

import data.gantry.lib

# Settings from data.gantry.practices ({} when absent: every check is off).
_cfg := c if {
	c := data.gantry.practices
	is_object(c)
} else := {}

_on(key) if _cfg[key] == true

_facts := f if {
	f := input.facts
	is_object(f)
} else := {}

_config := c if {
	c := input.config
	is_object(c)
} else := {}

_basename(path) := regex.replace(path, `^.*/`, "")

# ---------------------------------------------------------------------------------------------
# Development dependencies

_npm_dev := [d |
	some d in object.get(_facts, "dev_dependencies", [])
	is_object(d)
	d.ecosystem == "npm"
]

_npm_projects := {d.project | some d in _npm_dev}

_project_name(p) := "the image root" if p == ""
else := p

warn contains {
	"code": "dev-dependency-shipped",
	"message": sprintf("%d npm development dependenc%s installed in %s/node_modules (%s): only development needs %s (%s); install the final stage's modules with npm ci --omit=dev", [n, _plural(n), _project_name(project), _names(deps), _them(n), _npm_evidence(deps[0])]),
	"location": object.get(deps[0], "location", {}),
} if {
	_on("warn_dev_dependencies")
	some project in _npm_projects
	deps := sort_by_name([d | some d in _npm_dev; d.project == project])
	n := count(deps)
	n > 0
}

sort_by_name(ds) := [d |
	some name in sort({x.name | some x in ds})
	some d in ds
	d.name == name
]

_plural(1) := "y is"

_plural(n) := "ies are" if n != 1

_them(1) := "it"

_them(n) := "them" if n != 1

_names(deps) := concat(", ", [sprintf("%s %s", [d.name, d.version]) | some i, d in deps; i < 5]) if count(deps) <= 5
else := sprintf("%s and %d more", [concat(", ", [sprintf("%s %s", [d.name, d.version]) | some i, d in deps; i < 5]), count(deps) - 5])

_npm_evidence(d) := sprintf("%s marks them \"dev\": true", [d.source]) if d.evidence == "lockfile"
else := sprintf("reachable only from devDependencies of %s", [d.source])

_normal(name) := lower(regex.replace(name, `[-_.]+`, "-"))

_python_tools := {_normal(t) | some t in object.get(_cfg, "python_dev_tools", []); is_string(t)}

warn contains {
	"code": "dev-dependency-shipped",
	"message": sprintf("the Python development tool %s %s is installed in the final image (%s): tests, type checks and linters run in the build, not in production; install only the application's requirements in the final stage", [p.name, p.version, object.get(p.location, "path", "site-packages")]),
	"location": p.location,
} if {
	_on("warn_dev_dependencies")
	some p in object.get(input, "packages", [])
	is_object(p)
	p.ecosystem == "pypi"
	is_string(p.name)
	_normal(p.name) in _python_tools
}

# ---------------------------------------------------------------------------------------------
# PID 1

_array(x) := x if is_array(x)
else := []

_argv := array.concat(_array(_config.entrypoint), _array(_config.cmd)) if count(_array(_config.entrypoint)) > 0
else := _array(_config.cmd)

_shells := {"sh", "bash", "ash", "dash", "zsh"}

# The program that ends up as PID 1: the first word, or the command of `sh -c "…"`.
_pid1 := _basename(_argv[0]) if {
	count(_argv) > 0
	not _basename(_argv[0]) in _shells
} else := _basename(word) if {
	count(_argv) >= 3
	_basename(_argv[0]) in _shells
	_argv[1] == "-c"
	words := [w | some w in split(trim_space(_argv[2]), " "); w != ""; w != "exec"]
	word := words[0]
}

_inits := {"tini", "tini-static", "dumb-init", "docker-init", "catatonit", "s6-svscan", "runsvdir", "supervisord", "init"}

_interpreter if regex.match(`^(node|nodejs|npm|npx|yarn|pnpm|python[0-9.]*|pypy[0-9.]*)$`, _pid1)

warn contains {
	"code": "no-init-process",
	"message": sprintf("informational: %s is PID 1 (%s): Node and Python neither reap orphaned processes nor get default signal handling as PID 1, so children can pile up as zombies and SIGTERM may be ignored until the kill timeout; run it under an init (ENTRYPOINT [\"tini\", \"--\", …] or dumb-init), or start the container with docker run --init", [_pid1, _command_text]),
	"location": lib.field(_argv_field),
} if {
	_on("warn_no_init")
	_interpreter
	not _pid1 in _inits
}

_command_text := lib.shorten(concat(" ", _argv), 120)

_argv_field := "config.Entrypoint" if count(_array(_config.entrypoint)) > 0
else := "config.Cmd"

# ---------------------------------------------------------------------------------------------
# HEALTHCHECK

_healthcheck := h if {
	h := _config.healthcheck
	is_array(h)
	count(h) > 0
	h[0] != "NONE"
}

warn contains {
	"code": "no-healthcheck",
	"message": "informational: the image has no HEALTHCHECK: Docker and Compose cannot tell a hung container from a healthy one (Kubernetes ignores HEALTHCHECK and uses the pod's probes instead)",
	"location": lib.field("config.Healthcheck"),
} if {
	_on("warn_no_healthcheck")
	not _healthcheck
	# Admission judges for Kubernetes, which never runs HEALTHCHECK.
	not input.context.mode == "admission"
}

# ---------------------------------------------------------------------------------------------
# Run-time files: CA certificates and the zone database

_tls := t if {
	t := _facts.tls
	is_object(t)
} else := {}

_tls_clients := [c | some c in object.get(_tls, "clients", []); is_object(c)]

warn contains {
	"code": "missing-ca-certificates",
	"message": sprintf("%s %s, but the image has no CA certificates (no etc/ssl/certs/ca-certificates.crt or another bundle Go and OpenSSL read, no SSL_CERT_FILE): its HTTPS connections will fail with \"certificate signed by unknown authority\"; copy a CA bundle into the final stage (COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/) or use a base with one%s", [_tls_clients[0].path, _tls_clients[0].evidence, _others(count(_tls_clients))]),
	"location": object.get(_tls_clients[0], "location", {"path": _tls_clients[0].path}),
} if {
	_on("warn_missing_ca_certificates")
	count(_tls_clients) > 0
	_tls.ca_certificates == null
}

_tz := t if {
	t := _facts.timezone
	is_object(t)
} else := {}

_zone_loaders := [c | some c in object.get(_tz, "loaders", []); is_object(c)]

warn contains {
	"code": "missing-tzdata",
	"message": sprintf("%s %s, but the image has no zone database (no usr/share/zoneinfo, no ZONEINFO): loading a named zone such as Europe/Paris will fail; add tzdata to the final stage, or build with -tags timetzdata (import _ \"time/tzdata\")%s", [_zone_loaders[0].path, _zone_loaders[0].evidence, _others(count(_zone_loaders))]),
	"location": object.get(_zone_loaders[0], "location", {"path": _zone_loaders[0].path}),
} if {
	_on("warn_missing_tzdata")
	count(_zone_loaders) > 0
	_tz.zoneinfo == null
}

_others(1) := ""

_others(n) := sprintf(" (and %d other binaries)", [n - 1]) if n > 1

# ---------------------------------------------------------------------------------------------
# ADD in the build history

# The words of an ADD step as BuildKit (`ADD src dst # buildkit`), the classic builder and
# Buildah (`/bin/sh -c #(nop) ADD file:… in /dst`) record it; JSON form unwrapped.
_add_words(created_by) := words if {
	text := regex.replace(regex.replace(created_by, `\s*#\s*buildkit\s*$`, ""), `^.*#\(nop\)\s*`, "")
	regex.match(`^(?i)ADD\s`, text)
	plain := regex.replace(substring(text, 4, -1), `[\[\]",]`, " ")
	words := [w | some w in regex.split(`\s+`, trim_space(plain)); w != ""; w != "in"]
}

_add_sources(words) := [w | some i, w in words; i < count(words) - 1; not startswith(w, "--")]

_add_dest(words) := words[count(words) - 1]

_remote(src) if regex.match(`^(?i)(https?|ftp)://`, src)

_remote(src) if startswith(src, "git@")

_archive(src) if regex.match(`(?i)\.(tar|tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2?|tar\.zst|tzst)$`, src)

_checksum(words) if {
	some w in words
	startswith(w, "--checksum")
}

_history := [h | some h in _array(_config.history); is_object(h)]

_step_location(i, h) := loc if {
	li := h.layer_index
	is_number(li)
	layer := input.layers[li]
	loc := {"field": sprintf("config.history[%d]", [i]), "layer": layer.digest, "layer_index": li}
} else := {"field": sprintf("config.history[%d]", [i])}

_in_base(h) if {
	li := h.layer_index
	is_number(li)
	input.layers[li].in_base == true
}

warn contains {
	"code": "add-remote-url",
	"message": sprintf("build step %d downloads %s with ADD (%s): the download is not verified and changes whenever the server's file does; use ADD --checksum=sha256:… or fetch it in a RUN step that checks a digest", [i, src, lib.shorten(h.created_by, 120)]),
	"location": _step_location(i, h),
} if {
	_on("warn_add_remote_url")
	some i, h in _history
	is_string(h.created_by)
	words := _add_words(h.created_by)
	not _checksum(words)
	some src in _add_sources(words)
	_remote(src)
}

warn contains {
	"code": "add-archive",
	"message": sprintf("build step %d ADDs the archive %s (%s): ADD extracts local archives, so the image gets its contents, not the file; use COPY to ship the archive itself, or waive this when extraction is meant", [i, src, lib.shorten(h.created_by, 120)]),
	"location": _step_location(i, h),
} if {
	_on("warn_add_archive")
	some i, h in _history
	is_string(h.created_by)
	words := _add_words(h.created_by)
	# Extracting a root filesystem into / is what base images are made of.
	_add_dest(words) != "/"
	not _in_base(h)
	some src in _add_sources(words)
	not _remote(src)
	_archive(src)
}
