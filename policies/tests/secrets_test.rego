package gantry_test.secrets

import rego.v1

import data.gantry_test.fixtures as fx

key := {
	"rule": "private-key",
	"description": "PEM private key",
	"source": "file",
	"deleted": false,
	"redacted": "-----BEGIN RSA PRIVATE KEY----- …",
	"location": {"layer": fx.layer1, "layer_index": 1, "path": "root/.ssh/id_rsa"},
}

with_secrets(secrets) := fx.patched({"facts": {"secrets": secrets}})

test_secret_file_is_denied_with_location if {
	v := fx.verdict(with_secrets([key]))
	v.decision == "deny"
	[f] := fx.with_code(v.violations, "secret-in-image")
	f.location == key.location
	contains(f.message, "PEM private key (private-key) in root/.ssh/id_rsa, layer 1")
	not contains(f.message, "deletes")
}

test_deleted_secret_still_ships if {
	v := fx.verdict(with_secrets([object.union(key, {"deleted": true})]))
	v.decision == "deny"
	[f] := fx.with_code(v.violations, "secret-in-image")
	contains(f.message, "a later layer deletes it, but the layer that added it still ships it")
}

test_env_secret if {
	s := {"rule": "aws-access-key", "description": "AWS access key id", "source": "env", "deleted": false, "redacted": "AKIA…", "location": {"field": "config.Env"}}
	[f] := fx.with_code(fx.verdict(with_secrets([s])).violations, "secret-in-image")
	contains(f.message, "environment (ENV)")
	f.location == {"field": "config.Env"}
}

test_history_secret if {
	s := {"rule": "github-token", "description": "GitHub token", "source": "history", "deleted": false, "redacted": "ghp_…", "location": {"field": "history[3]"}}
	[f] := fx.with_code(fx.verdict(with_secrets([s])).violations, "secret-in-image")
	contains(f.message, "build history")
}

test_each_secret_is_a_finding if {
	other := object.union(key, {"location": {"path": "app/.env", "layer_index": 1, "layer": fx.layer1}, "rule": "dotenv", "description": ".env file"})
	count(fx.verdict(with_secrets([key, other])).violations) == 2
}

test_ignored_rule if {
	v := fx.verdict(with_secrets([key])) with data.gantry.secrets.ignore_rules as ["private-key"]
	v.decision == "allow"
}

test_ignored_path if {
	v := fx.verdict(with_secrets([key])) with data.gantry.secrets.ignore_paths as ["root/.ssh/*"]
	v.decision == "allow"
	w := fx.verdict(with_secrets([key])) with data.gantry.secrets.ignore_paths as ["usr/share/doc/**"]
	w.decision == "deny"
}

# A secret fact with members missing still denies (never dropped for want of a message).
test_incomplete_secret_fact_still_denies if {
	v := fx.verdict(with_secrets([{"source": "file"}]))
	v.decision == "deny"
	[f] := fx.with_code(v.violations, "secret-in-image")
	contains(f.message, "unknown detector")
	not f.location
}
