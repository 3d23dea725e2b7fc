package gantry_test.toolchain

import rego.v1

import data.gantry_test.fixtures as fx

tool(name, category, pkg, path) := {
	"name": name,
	"category": category,
	"evidence": "path",
	"package": pkg,
	"reason": sprintf("%s for tests", [category]),
	"location": {"layer": fx.layer1, "layer_index": 1, "path": path},
}

with_tools(tools) := fx.patched({"facts": {"toolchain": tools}})

test_compiler_is_denied_with_location if {
	v := fx.verdict(with_tools([tool("gcc", "compiler", "gcc-12", "usr/bin/gcc")]))
	v.decision == "deny"
	[f] := fx.with_code(v.violations, "build-toolchain")
	f.location == {"layer": fx.layer1, "layer_index": 1, "path": "usr/bin/gcc"}
	contains(f.message, "gcc (compiler")
	contains(f.message, "usr/bin/gcc")
	contains(f.message, "package gcc-12")
}

test_each_tool_is_its_own_finding if {
	v := fx.verdict(with_tools([
		tool("gcc", "compiler", "gcc-12", "usr/bin/gcc"),
		tool("make", "build-tool", "make", "usr/bin/make"),
		tool("go", "language-toolchain", null, "usr/local/go/bin/go"),
	]))
	count(fx.with_code(v.violations, "build-toolchain")) == 3
}

test_headers_of_one_package_are_one_finding if {
	v := fx.verdict(with_tools([
		tool("python3.11-dev", "dev-headers", "libpython3.11-dev", "usr/include/python3.11/Python.h"),
		tool("python3.11-dev", "dev-headers", "libpython3.11-dev", "usr/include/python3.11/abstract.h"),
		tool("python3.11-dev", "dev-headers", "libpython3.11-dev", "usr/include/python3.11/object.h"),
	]))
	[f] := fx.with_code(v.violations, "build-toolchain")
	f.location.path == "usr/include/python3.11/Python.h"
	contains(f.message, "and 2 more path(s)")
}

test_source_maps_and_vcs_are_leftovers if {
	v := fx.verdict(with_tools([
		tool("main.js.map", "source-map", null, "app/dist/main.js.map"),
		tool(".git", "vcs", null, "app/.git"),
	]))
	count(fx.with_code(v.violations, "build-leftover")) == 2
	not "build-toolchain" in fx.codes(v.violations)
}

test_source_tree_is_a_warning_by_default if {
	v := fx.verdict(with_tools([tool("typescript sources", "source-tree", null, "app/src/index.ts")]))
	v.decision == "allow"
	"build-leftover" in fx.codes(v.warnings)
}

test_typescript_in_node_modules_is_denied if {
	v := fx.verdict(with_tools([tool("typescript", "node-build", null, "app/node_modules/typescript/bin/tsc")]))
	"build-toolchain" in fx.codes(v.violations)
}

test_allow_by_name if {
	inp := with_tools([tool("make", "build-tool", "make", "usr/bin/make")])
	v := fx.verdict(inp) with data.gantry.toolchain.allow_names as ["make"]
	v.decision == "allow"
}

test_allow_by_package if {
	inp := with_tools([tool("cpp", "compiler", "cpp-12", "usr/bin/cpp")])
	v := fx.verdict(inp) with data.gantry.toolchain.allow_packages as ["cpp-12"]
	v.decision == "allow"
}

test_allow_by_path_glob if {
	inp := with_tools([
		tool("python3.12 headers", "dev-headers", null, "usr/local/include/python3.12/Python.h"),
		tool("gcc", "compiler", null, "usr/bin/gcc"),
	])
	v := fx.verdict(inp) with data.gantry.toolchain.allow_paths as ["/usr/local/include/python3*/**"]
	[f] := v.violations
	f.location.path == "usr/bin/gcc"
}

test_category_moved_to_warn if {
	inp := with_tools([tool("main.js.map", "source-map", null, "app/main.js.map")])
	v := fx.verdict(inp) with data.gantry.toolchain.deny_categories as ["compiler"] with data.gantry.toolchain.warn_categories as ["source-map"]
	v.decision == "allow"
	"build-leftover" in fx.codes(v.warnings)
}

test_unlisted_category_is_ignored if {
	inp := with_tools([tool("gcc", "compiler", null, "usr/bin/gcc")])
	v := fx.verdict(inp) with data.gantry.toolchain.deny_categories as []
	v.decision == "allow"
	v.warnings == []
}

test_binaries_of_one_package_are_one_finding if {
	v := fx.verdict(with_tools([
		tool("gcc", "compiler", "gcc-12", "usr/bin/gcc"),
		tool("gcc-12", "compiler", "gcc-12", "usr/bin/gcc-12"),
		tool("x86_64-linux-gnu-gcc-12", "compiler", "gcc-12", "usr/bin/x86_64-linux-gnu-gcc-12"),
		tool("gcc-12", "compiler", "gcc-12", "var/lib/dpkg/status"),
	]))
	[f] := fx.with_code(v.violations, "build-toolchain")
	f.location.path == "usr/bin/gcc"
	contains(f.message, "and 3 more path(s)")
}

test_same_package_different_categories_are_separate if {
	v := fx.verdict(with_tools([
		tool("gcc", "compiler", "gcc-12", "usr/bin/gcc"),
		tool("gcc-12", "dev-package", "gcc-12", "var/lib/dpkg/status"),
	]))
	count(fx.with_code(v.violations, "build-toolchain")) == 2
}

test_malformed_allowlist_glob_allows_nothing if {
	inp := with_tools([tool("gcc", "compiler", null, "usr/bin/gcc")])
	v := fx.verdict(inp) with data.gantry.toolchain.allow_paths as ["usr/bin/[gcc"]
	v.decision == "deny"
}

test_incomplete_tool_fact_still_denies if {
	v := fx.verdict(with_tools([{"category": "compiler"}]))
	v.decision == "deny"
	"build-toolchain" in fx.codes(v.violations)
}
