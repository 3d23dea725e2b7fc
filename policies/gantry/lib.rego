# Helpers shared by the rule packages (and usable by yours: `import data.gantry.lib`).
#
# Written for strict builtin errors: Gantry evaluates with builtin errors turned into
# evaluation errors (a deny can never vanish because a builtin failed), so nothing here calls
# a parser on a string it has not validated first.
package gantry.lib

import rego.v1

# ---------------------------------------------------------------------------------------------
# Times: exceptions expire on a date ("2027-01-31", valid through that day, UTC) or at an
# RFC 3339 time ("2027-01-31T12:00:00Z").

_date_re := `^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$`

_time_re := `^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`

# A date or RFC 3339 time that parses (month and day checked, leap years included) and fits
# in nanoseconds since the epoch (years 1678-2261), so parse_time cannot raise an error.
valid_time(s) if {
	is_string(s)
	regex.match(_date_re, s)
	_valid_ymd(s)
}

valid_time(s) if {
	is_string(s)
	regex.match(_time_re, s)
	_valid_ymd(substring(s, 0, 10))
}

_months := {"01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"}

_valid_ymd(s) if {
	year := to_number(substring(s, 0, 4))
	year >= 1678
	year <= 2261
	month := substring(s, 5, 2)
	day := substring(s, 8, 2)
	month in _months
	day >= "01"
	day <= _days_in_month(year, month)
}

_days_in_month(year, "02") := "29" if _leap(year)

_days_in_month(year, "02") := "28" if not _leap(year)

_days_in_month(_, month) := "30" if month in {"04", "06", "09", "11"}

_days_in_month(_, month) := "31" if month in {"01", "03", "05", "07", "08", "10", "12"}

_leap(year) if {
	year % 4 == 0
	year % 100 != 0
}

_leap(year) if year % 400 == 0

# Nanoseconds since the epoch; only call with valid_time(s).
parse_time(s) := time.parse_rfc3339_ns(concat("", [s, "T00:00:00Z"])) if regex.match(_date_re, s)

parse_time(s) := time.parse_rfc3339_ns(s) if regex.match(_time_re, s)

# When an exception stops applying: the end of the day for a date, the instant for a time.
expiry_ns(s) := parse_time(s) + ((24 * 60) * 60) * 1000000000 if regex.match(_date_re, s)

expiry_ns(s) := parse_time(s) if regex.match(_time_re, s)

# ---------------------------------------------------------------------------------------------
# The image

# The normalised reference without digest ("registry.example/app:1.4"), or "".
reference := split(input.image.reference, "@")[0] if is_string(input.image.reference)
else := ""

# The repository ("registry.example/app"): the reference without tag or digest.
repository := regex.replace(reference, `:[^:/]*$`, "")

# Globs come from data, and glob.match raises an error on a malformed one ("[", "{a") — which
# under strict builtin errors would deny every image. So a glob is used only when it has this
# shape: literal characters (no backslash), "*", "?", simple classes "[abc]" / "[!a-z]" and
# alternatives "{a,b}" without nesting. Anything else matches nothing, which errs towards
# reporting: an allowlist entry that does not parse allows nothing, and an exception with
# one is reported as invalid-exception.
valid_glob(pattern) if {
	is_string(pattern)
	regex.match(`^([^\\\[\]{}]|\[!?[^\[\]/\\]+\]|\{[^{}\[\]\\]*\})*$`, pattern)
}

# A glob ("registry.example/team/*", "*" within a path segment, "**" across) matches the
# repository or the reference with its tag.
image_matches(pattern) if {
	reference != ""
	valid_glob(pattern)
	glob.match(pattern, ["/"], repository)
}

image_matches(pattern) if {
	reference != ""
	valid_glob(pattern)
	glob.match(pattern, ["/"], reference)
}

# A path glob from data ("usr/local/include/**"; a leading "/" is ignored) matches a path.
path_matches(pattern, path) if {
	is_string(path)
	valid_glob(pattern)
	glob.match(trim_prefix(pattern, "/"), ["/"], path)
}

# ---------------------------------------------------------------------------------------------
# Text

# Bytes in IEC units: "512 B", "1.5 KiB", "1.2 GiB".
format_bytes(n) := sprintf("%d B", [n]) if n < 1024
else := sprintf("%v KiB", [_one_decimal(n / 1024)]) if n < 1048576
else := sprintf("%v MiB", [_one_decimal(n / 1048576)]) if n < 1073741824
else := sprintf("%v GiB", [_one_decimal(n / 1073741824)])

_one_decimal(x) := round(x * 10) / 10

# A build step shortened for a message.
shorten(s, n) := s if count(s) <= n
else := concat("", [substring(s, 0, n), "…"])

# A config field location, for facts that come from the image config.
field(name) := {"field": name}
