package gantry_test.lib

import rego.v1

import data.gantry.lib

test_valid_times if {
	every t in ["2027-01-31", "2028-02-29", "2000-02-29", "2027-01-31T00:00:00Z", "2027-12-31T23:59:59.123456789+05:30"] {
		lib.valid_time(t)
	}
}

test_invalid_times if {
	every t in [
		"2027-02-29", "1900-02-29", "2027-00-10", "2027-01-32", "2027-1-31", "0999-01-01",
		"2027-01-31T24:00:00Z", "9999-12-31", "2262-06-01", "2027-01-31T10:00:00", "2027-01-31 10:00:00Z", "tomorrow", "", 3, null,
	] {
		not lib.valid_time(t)
	}
}

test_date_expires_at_the_end_of_the_day if {
	lib.expiry_ns("2027-01-31") == lib.parse_time("2027-02-01T00:00:00Z")
	lib.expiry_ns("2027-01-31T12:00:00Z") == lib.parse_time("2027-01-31T12:00:00Z")
}

test_repository_strips_tag_and_digest if {
	lib.repository == "registry.example:5000/team/api" with input.image.reference as "registry.example:5000/team/api:1.4@sha256:abc"
	lib.reference == "registry.example:5000/team/api:1.4" with input.image.reference as "registry.example:5000/team/api:1.4@sha256:abc"
	lib.repository == "registry.example:5000/team/api" with input.image.reference as "registry.example:5000/team/api"
}

test_no_reference_matches_no_image_glob if {
	not lib.image_matches("**") with input.image.reference as null
}

test_format_bytes if {
	lib.format_bytes(512) == "512 B"
	lib.format_bytes(1536) == "1.5 KiB"
	lib.format_bytes(20971520) == "20 MiB"
	lib.format_bytes(1288490189) == "1.2 GiB"
}

test_shorten if {
	lib.shorten("abc", 5) == "abc"
	lib.shorten("abcdef", 3) == "abc…"
}

test_valid_globs if {
	every g in ["usr/bin/*", "registry.example/**", "a?c", "usr/lib/[a-z]*.so", "x/[!.]*", "*.{js,map}", "plain"] {
		lib.valid_glob(g)
	}
}

test_malformed_globs_match_nothing_instead_of_failing if {
	every g in ["[", "usr/[abc", "{a", "{a,{b}}", "a\\*", "[]", 3] {
		not lib.valid_glob(g)
		not lib.path_matches(g, "usr/bin/x")
	}
}
