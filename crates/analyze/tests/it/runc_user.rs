//! `USER` resolved as the container runtime resolves it: one test per case of
//! `github.com/moby/sys/user.GetExecUser` (runc's `libcontainer/user`, used by runc and by
//! Docker), each against real layers. The comment of each test quotes what that function does.

use gantry_analyze::facts::UserFacts;
use gantry_model::oci::Compression;
use gantry_testkit::LayerBuilder;

use crate::Image;

fn accounts(passwd: &str, group: &str) -> Image {
    Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .file("etc/passwd", passwd)
            .file("etc/group", group),
    ])
}

fn user(image: &Image, spec: &str) -> UserFacts {
    image.facts_as(spec).user
}

/// (uid, gid, supplementary gids, start error) — what the runtime would run with.
fn runs(u: &UserFacts) -> (Option<u32>, Option<u32>, Vec<u32>, Option<&str>) {
    (
        u.uid,
        u.gid,
        u.supplementary_gids.clone(),
        u.start_error.as_deref(),
    )
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
app:x:1001:1001:App:/home/app:/bin/sh\n\
svc:x:1002:1002::/srv:/bin/false\n";
const GROUP: &str = "root:x:0:\napp:x:1001:\nsvc:x:1002:\nstaff:x:50:app,svc\nwheel:x:10:app\n";

// "If userArg is empty, default to the current state of the user": the filter matches
// `u.Uid == defaults.Uid` (0), so the gid and home come from the FIRST uid-0 line.
#[test]
fn empty_user_takes_gid_and_home_of_the_first_uid_0_entry() {
    let image = accounts("root:x:0:7:root:/root:/bin/sh\n", "root:x:0:\n");
    let u = user(&image, "");
    assert_eq!(runs(&u), (Some(0), Some(7), vec![], None));
    assert_eq!(u.home.as_deref(), Some("/root"));
    assert_eq!(u.root, Some(true));
}

// passwd comment lines are not skipped by ParsePasswdFilter: `# comment` is an entry with
// uid 0 and gid 0 (missing fields), so it is the first uid-0 match for an empty USER.
#[test]
fn passwd_comments_are_entries_to_the_runtime() {
    let image = accounts("# generated\nroot:x:0:7:root:/root:/bin/sh\n", "");
    let u = user(&image, "");
    assert_eq!(runs(&u), (Some(0), Some(0), vec![], None));
    assert_eq!(u.home.as_deref(), Some(""));
}

// "If the userArg is numeric, always treat it as a UID": first entry with that uid.
#[test]
fn numeric_uid_takes_the_first_entry_with_that_uid() {
    let image = accounts(
        "root:x:0:0::/root:/bin/sh\nfirst:x:1500:15:::/bin/sh\nsecond:x:1500:16:::/bin/sh\n",
        "",
    );
    let u = user(&image, "1500");
    assert_eq!(runs(&u), (Some(1500), Some(15), vec![], None));
    assert!(u.numeric);
    assert_eq!(u.name, None);
}

// "the only other valid option is if it's a numeric username with no associated entry in
// passwd": the uid as written, gid 0 (the default).
#[test]
fn numeric_uid_without_an_entry_runs_with_gid_0() {
    let image = accounts(PASSWD, GROUP);
    let u = user(&image, "4242");
    assert_eq!(runs(&u), (Some(4242), Some(0), vec![], None));
    assert_eq!(u.home.as_deref(), Some("/"));
}

// "if you specify a numeric user or group id, they will not be evaluated as usernames": an
// account named 1234 is not used for USER 1234.
#[test]
fn a_name_that_looks_numeric_is_a_uid() {
    let image = accounts(
        "root:x:0:0::/root:/bin/sh\n1234:x:5000:5000::/:/bin/sh\n",
        "",
    );
    let u = user(&image, "1234");
    assert_eq!(runs(&u), (Some(1234), Some(0), vec![], None));
}

// parseNumeric is strconv.Atoi: leading zeros and a `+` sign are numbers.
#[test]
fn leading_zeros_and_plus_sign_are_numbers() {
    let image = accounts(PASSWD, GROUP);
    assert_eq!(runs(&user(&image, "01001")).0, Some(1001));
    assert_eq!(runs(&user(&image, "+1001")).1, Some(1001));
    assert!(user(&image, "+1001").numeric);
}

// parseNumeric: "uids and gids must be in range 0-2147483647" (ErrRange), also for a
// negative number and for one beyond 64 bits.
#[test]
fn ids_out_of_range_stop_the_container() {
    let image = accounts(PASSWD, GROUP);
    for spec in [
        "-1",
        "2147483648",
        "99999999999999999999",
        "1001:-5",
        "1001:4294967296",
    ] {
        let u = user(&image, spec);
        assert_eq!(
            (u.uid, u.resolved, u.start_error.as_deref()),
            (
                None,
                false,
                Some("uids and gids must be in range 0-2147483647")
            ),
            "{spec}"
        );
    }
    assert_eq!(runs(&user(&image, "2147483647")).0, Some(2147483647));
}

// Anything Atoi rejects as syntax is a name: `0x10` and ` 1` are looked up by name.
#[test]
fn hex_and_spaced_numbers_are_names() {
    let image = accounts(PASSWD, GROUP);
    for spec in ["0x10", " 1"] {
        let u = user(&image, spec);
        assert!(!u.numeric, "{spec}");
        assert_eq!(
            u.start_error,
            Some(format!(
                "unable to find user {spec}: no matching entries in passwd file"
            ))
        );
    }
}

// "First match wins, even if there's more than one matching entry."
#[test]
fn duplicate_names_first_entry_wins() {
    let image = accounts(
        "app:x:2000:2000::/a:/bin/sh\napp:x:0:0::/root:/bin/sh\n",
        "",
    );
    let u = user(&image, "app");
    assert_eq!(runs(&u), (Some(2000), Some(2000), vec![], None));
    assert_eq!(u.home.as_deref(), Some("/a"));
    assert_eq!(u.root, Some(false));
}

// "unable to find user X: no matching entries in passwd file".
#[test]
fn unknown_name_stops_the_container() {
    let image = accounts(PASSWD, GROUP);
    let u = user(&image, "ghost");
    assert_eq!(
        runs(&u),
        (
            None,
            None,
            vec![],
            Some("unable to find user ghost: no matching entries in passwd file")
        )
    );
    assert!(
        u.reason.contains("the container will not start"),
        "{}",
        u.reason
    );
    assert_eq!(u.location.path.as_deref(), Some("etc/passwd"));
}

// GetExecUserPath ignores the error of opening passwd: with no file a name cannot be
// found — `root` included — but a numeric uid runs.
#[test]
fn missing_passwd_fails_names_even_root_but_not_numbers() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip).file_mode("app", b"x", 0o755),
    ]);
    for spec in ["root", "app"] {
        let u = user(&image, spec);
        assert_eq!(
            u.start_error,
            Some(format!(
                "unable to find user {spec}: no matching entries in passwd file"
            ))
        );
        assert!(
            u.reason.contains("the final filesystem has no etc/passwd"),
            "{}",
            u.reason
        );
    }
    assert_eq!(
        runs(&user(&image, "65532:65532")),
        (Some(65532), Some(65532), vec![], None)
    );
    assert_eq!(runs(&user(&image, "")), (Some(0), Some(0), vec![], None));
}

// The file is opened inside the container's root: an absolute link resolves from the image
// root, a relative one from the link's directory.
#[test]
fn passwd_symlinks_resolve_inside_the_image_root() {
    for (link, target, real) in [
        ("etc/passwd", "/opt/accounts/passwd", "opt/accounts/passwd"),
        ("etc/passwd", "../usr/lib/passwd", "usr/lib/passwd"),
    ] {
        let image = Image::new(vec![
            LayerBuilder::new(Compression::Gzip)
                .dir("etc")
                .symlink(link, target)
                .file(real, PASSWD),
        ]);
        let u = user(&image, "svc");
        assert_eq!(runs(&u), (Some(1002), Some(1002), vec![], None), "{target}");
        assert_eq!(u.location.path.as_deref(), Some(real));
    }
}

// `..` cannot climb above the root (the kernel resolves `/..` to `/` after pivot_root):
// a link with too many `..` lands inside the image, never on the host.
#[test]
fn a_symlink_never_escapes_the_root() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .symlink("etc/passwd", "../../../../../../usr/lib/passwd")
            .file("usr/lib/passwd", PASSWD),
    ]);
    let u = user(&image, "app");
    assert_eq!(runs(&u).0, Some(1001));
    assert_eq!(u.location.path.as_deref(), Some("usr/lib/passwd"));
}

// A link loop or a dangling link fails to open (ELOOP, ENOENT); the error is ignored, so
// passwd counts as empty: names fail, numbers run.
#[test]
fn looping_and_dangling_links_count_as_no_passwd() {
    for layer in [
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .symlink("etc/passwd", "passwd2")
            .symlink("etc/passwd2", "passwd"),
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .symlink("etc/passwd", "/nowhere/passwd"),
    ] {
        let image = Image::new(vec![layer]);
        let u = user(&image, "app");
        assert_eq!(
            u.start_error.as_deref(),
            Some("unable to find user app: no matching entries in passwd file")
        );
        assert!(
            u.reason.contains("does not resolve inside the image"),
            "{}",
            u.reason
        );
        assert_eq!(runs(&user(&image, "1001")).0, Some(1001));
    }
}

// openUserFile refuses a path that is not a regular file, and GetExecUserPath ignores that
// error: a directory at etc/passwd is no passwd.
#[test]
fn a_directory_at_etc_passwd_counts_as_no_passwd() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .dir("etc/passwd"),
    ]);
    let u = user(&image, "app");
    assert!(
        u.reason.contains("etc/passwd is a directory"),
        "{}",
        u.reason
    );
    assert!(u.start_error.is_some());
    assert_eq!(runs(&user(&image, "7")), (Some(7), Some(0), vec![], None));
}

// parseLine: "Ignore cases where we don't have enough fields", numbers with "conversion
// errors ignored": too few fields leave gid 0 and home empty; extra fields are ignored.
#[test]
fn too_few_and_too_many_fields() {
    let image = accounts(
        "root:x:0:0::/root:/bin/sh\nshort:x:1003\nlong:x:1004:1004::/l:/bin/sh:extra:fields\n",
        "",
    );
    let u = user(&image, "short");
    assert_eq!(runs(&u), (Some(1003), Some(0), vec![], None));
    assert_eq!(u.home.as_deref(), Some(""));
    assert_eq!(
        runs(&user(&image, "long")),
        (Some(1004), Some(1004), vec![], None)
    );
}

// `*e, _ = strconv.Atoi(p)`: a uid field that is not a number is 0 — the user runs as root.
#[test]
fn a_non_numeric_uid_field_is_root() {
    let image = accounts(
        "root:x:0:0::/root:/bin/sh\napp:x:abc:1001::/app:/bin/sh\n",
        "",
    );
    let u = user(&image, "app");
    assert_eq!(runs(&u), (Some(0), Some(1001), vec![], None));
    assert_eq!(u.root, Some(true));
    assert_eq!(u.reason, "USER app maps to uid 0 in etc/passwd");
}

// Lines are trimmed (bytes.TrimSpace) and blank ones skipped; CRLF endings are fine.
#[test]
fn whitespace_blank_lines_and_crlf() {
    let image = accounts(
        "\n   \nroot:x:0:0::/root:/bin/sh\r\n\t app:x:1001:1001::/app:/bin/sh  \r\n",
        "",
    );
    let u = user(&image, "app");
    assert_eq!(runs(&u), (Some(1001), Some(1001), vec![], None));
    assert_eq!(u.home.as_deref(), Some("/app"));
}

// NIS compat lines (`+name`, `-name`, `+::::::`) are plain entries named `+name` etc.: they
// never match `name`.
#[test]
fn nis_lines_do_not_match_the_name() {
    let image = accounts(
        "+app::::::\n-app:x:5:5::/:/bin/sh\nroot:x:0:0::/root:/bin/sh\n",
        "",
    );
    assert!(user(&image, "app").start_error.is_some());
    // …but `+app` parses with uid 0: an empty USER matches it first.
    assert_eq!(runs(&user(&image, "")), (Some(0), Some(0), vec![], None));
}

// bufio.Scanner's 64 KiB token limit: a longer passwd line ends the scan with an error and
// "unable to find user …" — for a numeric uid too, because the error is returned whenever
// the file was opened.
#[test]
fn a_passwd_line_over_64_kib_fails_every_lookup() {
    let passwd = format!(
        "root:x:0:0::/root:/bin/sh\njunk:{}\napp:x:1001:1001::/:/bin/sh\n",
        "x".repeat(70_000)
    );
    let image = accounts(&passwd, "");
    assert_eq!(
        user(&image, "app").start_error.as_deref(),
        Some("unable to find user app: bufio.Scanner: token too long")
    );
    assert_eq!(
        user(&image, "1001").start_error.as_deref(),
        Some("unable to find user 1001: bufio.Scanner: token too long")
    );
}

// "Only start modifying user.Gid if it is in explicit form": `user:group` by name takes the
// first group entry with that name, and no supplementary groups.
#[test]
fn explicit_group_by_name() {
    let image = accounts(PASSWD, &format!("{GROUP}staff:x:51:\n"));
    let u = user(&image, "app:staff");
    assert_eq!(runs(&u), (Some(1001), Some(50), vec![], None));
    assert_eq!(u.group.as_deref(), Some("staff"));
}

// "If the groupArg is numeric, always treat it as a GID"; with no entry, the number as written.
#[test]
fn explicit_numeric_group_with_and_without_entry() {
    let image = accounts(PASSWD, GROUP);
    assert_eq!(
        runs(&user(&image, "app:50")),
        (Some(1001), Some(50), vec![], None)
    );
    assert_eq!(
        runs(&user(&image, "app:777")),
        (Some(1001), Some(777), vec![], None)
    );
    assert_eq!(
        runs(&user(&image, "4000:4000")),
        (Some(4000), Some(4000), vec![], None)
    );
}

// "unable to find group X: no matching entries in group file" — also when etc/group is
// missing.
#[test]
fn unknown_group_name_stops_the_container() {
    let image = accounts(PASSWD, GROUP);
    let u = user(&image, "app:ghosts");
    assert_eq!(
        u.start_error.as_deref(),
        Some("unable to find group ghosts: no matching entries in group file")
    );
    assert_eq!(u.location.path.as_deref(), Some("etc/group"));

    let no_group = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .file("etc/passwd", PASSWD),
    ]);
    assert!(user(&no_group, "app:staff").start_error.is_some());
    assert_eq!(
        runs(&user(&no_group, "app:50")),
        (Some(1001), Some(50), vec![], None)
    );
}

// ParseGroupFilter skips `#` comments (unlike passwd) and does not trim member names.
#[test]
fn group_comments_and_untrimmed_members() {
    let image = accounts(
        PASSWD,
        "# staff:x:50:app\nstaff:x:51:svc, app\nwheel:x:10:app\n",
    );
    // `, app` has a leading space: only wheel lists `app`.
    assert_eq!(
        runs(&user(&image, "app")),
        (Some(1001), Some(1001), vec![10], None)
    );
    assert_eq!(runs(&user(&image, "app:staff")).1, Some(51));
}

// "Supplementary group ids only make sense if in the implicit form": every group listing the
// matched user name, in file order, duplicates kept.
#[test]
fn supplementary_groups_of_a_user_found_by_name_or_uid() {
    let image = accounts(PASSWD, &format!("{GROUP}again:x:50:app\n"));
    assert_eq!(
        runs(&user(&image, "app")),
        (Some(1001), Some(1001), vec![50, 10, 50], None)
    );
    // A uid found in passwd has a name, so its groups are looked up too.
    assert_eq!(runs(&user(&image, "1002")).2, vec![50]);
    // `user:` has an empty group part: the implicit form.
    assert_eq!(runs(&user(&image, "app:")).2, vec![50, 10, 50]);
    // A uid with no passwd entry has no name, hence no supplementary groups.
    assert_eq!(runs(&user(&image, "4242")).2, Vec::<u32>::new());
}

// strings.Cut at the first `:`: `:group` is the default uid with an explicit group, and in
// `a:b:c` the group part is `b:c`.
#[test]
fn split_at_the_first_colon() {
    let image = accounts(PASSWD, GROUP);
    assert_eq!(
        runs(&user(&image, ":staff")),
        (Some(0), Some(50), vec![], None)
    );
    assert_eq!(
        user(&image, "app:staff:extra").start_error.as_deref(),
        Some("unable to find group staff:extra: no matching entries in group file")
    );
}

// The account files of the final filesystem count: a later layer that replaces etc/passwd
// replaces the users (and one that deletes it leaves none).
#[test]
fn the_final_passwd_counts() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .file("etc/passwd", PASSWD),
        LayerBuilder::new(Compression::Gzip).whiteout("etc/passwd"),
    ]);
    assert!(user(&image, "app").start_error.is_some());
}

// Gantry's own limit: a passwd over 1 MiB is not parsed, so a name cannot be told — the
// uid is unknown, and nothing claims the container will or will not start.
#[test]
fn a_passwd_gantry_cannot_read_is_unknown_not_a_start_failure() {
    let mut huge = String::from(PASSWD);
    while huge.len() <= 2 * 1024 * 1024 {
        huge.push_str("filler:x:1:1::/:/bin/false\n");
    }
    let image = accounts(&huge, GROUP);
    let u = user(&image, "app");
    assert_eq!(
        (u.uid, u.resolved, u.start_error.as_deref()),
        (None, false, None)
    );
    assert!(u.reason.contains("could not be parsed"), "{}", u.reason);
    // A numeric uid still runs; its gid would come from the unread file, so it is unknown.
    let u = user(&image, "1001");
    assert_eq!(
        (u.uid, u.gid, u.start_error.as_deref()),
        (Some(1001), None, None)
    );
}
