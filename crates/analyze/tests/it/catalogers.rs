//! The SBOM catalogers (issue 4) on real layers: every ecosystem with realistic metadata,
//! hostile and truncated inputs, and what the final filesystem keeps.

use gantry_analyze::facts::{Category, Evidence};
use gantry_analyze::{Ecosystem, Package, Unknown};
use gantry_model::oci::Compression;
use gantry_testkit::LayerBuilder;

use crate::craft::{self, Section, Val};
use crate::{Image, walk};

/// (name, version, purl) of the final packages of one ecosystem.
fn summary(pkgs: &[Package], eco: Ecosystem) -> Vec<(String, String, String)> {
    pkgs.iter()
        .filter(|p| p.ecosystem == eco)
        .map(|p| (p.name.clone(), p.version.clone(), p.purl.clone()))
        .collect()
}

fn find<'a>(pkgs: &'a [Package], name: &str) -> &'a Package {
    pkgs.iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no package {name} in {pkgs:#?}"))
}

fn unknowns_of<'a>(unknowns: &'a [Unknown], analyzer: &str) -> Vec<(&'a str, &'a str)> {
    unknowns
        .iter()
        .filter(|u| u.analyzer == analyzer)
        .map(|u| (u.path.as_str(), u.reason.as_str()))
        .collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// dpkg

const DPKG_STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12985
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Replaces: libc6-amd64
Depends: libgcc-s1
Recommends: libidn2-0 (>= 2.0.5~)
Suggests: glibc-doc, debconf | debconf-2.0, libc-l10n, locales, libnss-nis, libnss-nisplus
Breaks: aide (<< 0.17.3-4+b3), busybox (<< 1.30.1-6), hurd (<< 1:0.9.git20220301-2)
Conffiles:
 /etc/gai.conf 28fa76ff5a9e0566eaa1e11f1ce51f09
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
Homepage: https://www.gnu.org/software/libc/libc.html

Package: libgcc-s1
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Multi-Arch: same
Source: gcc-12
Version: 12.2.0-14
Provides: libgcc1 (= 1:12.2.0-14)
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)
Description: GCC support library

Package: gcc-12-base
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: gcc-12
Version: 12.2.0-14
Description: GCC, the GNU Compiler Collection (base package)

Package: mawk
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: foreign
Version: 1.3.4.20200120-3.1
Provides: awk
Pre-Depends: libc6 (>= 2.34)
Description: Pattern scanning and text processing language

Package: base-files
Essential: yes
Status: install ok installed
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u5
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Pre-Depends: awk
Breaks: debian-security-support (<< 2019.04.25), initscripts (<< 2.88dsf-13.3)
Description: Debian base system miscellaneous files

Package: debconf
Status: install ok installed
Architecture: all
Multi-Arch: foreign
Version: 1.5.82
Replaces: debconf-tiny
Provides: debconf-2.0
Pre-Depends: perl-base (>= 5.20.1-3~)
Description: Debian configuration management system

Package: login
Status: deinstall ok config-files
Architecture: amd64
Version: 1:4.13+dfsg1-1+b1
";

const LIBC_COPYRIGHT: &str = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: GNU C Library
Source: https://www.gnu.org/software/libc/

Files: *
Copyright: 1991-2023 Free Software Foundation, Inc.
License: LGPL-2.1+
 This library is free software; you can redistribute it and/or
 modify it under the terms of the GNU Lesser General Public
 License as published by the Free Software Foundation.
 .
 On Debian systems, the complete text of the GNU Lesser General Public
 License can be found in `/usr/share/common-licenses/LGPL-2.1'.

Files: debian/*
Copyright: 1998-2023 Debian glibc maintainers
License: GPL-2+ or LGPL-2.1+
 On Debian systems, see /usr/share/common-licenses/GPL-2.

Files: sunrpc/*
License: LGPL-2.1+
";

const MAWK_COPYRIGHT: &str = "\
This is the Debian GNU/Linux prepackaged version of mawk, an
interpreter for the AWK Programming Language.

Copyright: 1991-1996,2014 Michael D. Brennan
Copyright: 2008-2019,2020 Thomas E. Dickey

    This program is free software; you can redistribute it and/or modify
    it under the terms of the GNU General Public License, version 2, as
    published by the Free Software Foundation.

On Debian GNU/Linux systems, the complete text of the GNU General
Public License can be found in `/usr/share/common-licenses/GPL-2'.
";

#[test]
fn dpkg_dependencies_licenses_and_purls() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file(
                "etc/os-release",
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
            )
            .file("var/lib/dpkg/status", DPKG_STATUS)
            .file("usr/share/doc/libc6/copyright", LIBC_COPYRIGHT)
            .file("usr/share/doc/mawk/copyright", MAWK_COPYRIGHT)
            .file(
                "usr/share/doc/gcc-12-base/copyright",
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-3+ with GCC-Runtime-Library-Exception\n",
            )
            .symlink("usr/share/doc/libgcc-s1", "gcc-12-base"),
    ]);
    let pkgs = image.packages();
    let deb = summary(&pkgs, Ecosystem::Deb);
    assert_eq!(deb.len(), 6, "{deb:#?}");
    let libc = find(&pkgs, "libc6");
    assert_eq!(
        libc.purl,
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    );
    assert_eq!(libc.cataloger, "dpkg");
    assert_eq!(libc.source.as_deref(), Some("glibc"));
    assert_eq!(libc.dependencies, strs(&["libgcc-s1"]));
    assert_eq!(libc.licenses, strs(&["LGPL-2.1+", "GPL-2+ or LGPL-2.1+"]));
    // Versions and alternatives dropped; self-references and missing packages kept by name.
    assert_eq!(
        find(&pkgs, "libgcc-s1").dependencies,
        strs(&["gcc-12-base", "libc6"])
    );
    // A virtual name resolves to the installed package that provides it.
    assert_eq!(find(&pkgs, "base-files").dependencies, strs(&["mawk"]));
    assert_eq!(find(&pkgs, "debconf").dependencies, strs(&["perl-base"]));
    // Licenses: DEP-5 names; common-licenses references otherwise; a linked doc directory.
    assert_eq!(find(&pkgs, "mawk").licenses, strs(&["GPL-2"]));
    assert_eq!(
        find(&pkgs, "libgcc-s1").licenses,
        strs(&["GPL-3+ with GCC-Runtime-Library-Exception"])
    );
    assert!(find(&pkgs, "debconf").licenses.is_empty());
    assert_eq!(
        find(&pkgs, "debconf").purl,
        "pkg:deb/debian/debconf@1.5.82?arch=all&distro=debian-12"
    );
    assert!(pkgs.iter().all(|p| p.name != "login"));
}

// ---------------------------------------------------------------------------------------
// apk

const APK_INSTALLED: &str = "\
C:Q1Zw1S7wRDhSlwN+AxTUW/nZEAbf0=
P:musl
V:1.2.5-r0
A:x86_64
S:410968
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712157932
c:4e2e4d0bd8b3bfe45d7e5cb5ad0a8f7ea0fd95ad
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1jrRaa9KSuBT1SWjuwvUU8L0rUXc=
R:libc.musl-x86_64.so.1

C:Q1aHlIRqHMR9BM6dQ0lldLwxFPRWg=
P:busybox
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r29 cmd:sh=1.36.1-r29
F:bin
R:busybox
R:sh

P:libcrypto3
V:3.3.2-r0
A:x86_64
L:Apache-2.0
o:openssl
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3

P:libssl3
V:3.3.2-r0
A:x86_64
L:Apache-2.0
o:openssl
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3
p:so:libssl.so.3=3

P:ssl_client
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3 so:libssl.so.3 so:libmissing.so.9

P:ca-certificates-bundle
V:20240705-r0
A:x86_64
L:MPL-2.0 AND MIT
o:ca-certificates
r:ca-certificates-cacert
D:!ca-certificates-cacert

P:alpine-baselayout
V:3.6.5-r0
A:x86_64
L:GPL-2.0-only
o:alpine-baselayout
D:alpine-baselayout-data=3.6.5-r0 /bin/sh
";

#[test]
fn apk_licenses_and_resolved_dependencies() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file(
                "etc/os-release",
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
            )
            .file("lib/apk/db/installed", APK_INSTALLED),
    ]);
    let pkgs = image.packages();
    assert_eq!(summary(&pkgs, Ecosystem::Apk).len(), 7);
    let musl = find(&pkgs, "musl");
    assert_eq!(
        musl.purl,
        "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"
    );
    assert_eq!(musl.licenses, strs(&["MIT"]));
    assert_eq!(find(&pkgs, "busybox").dependencies, strs(&["musl"]));
    assert_eq!(
        find(&pkgs, "ssl_client").dependencies,
        strs(&["musl", "libcrypto3", "libssl3"]),
        "so: names resolve through p:, an unprovided one is dropped"
    );
    assert_eq!(
        find(&pkgs, "alpine-baselayout").dependencies,
        strs(&["alpine-baselayout-data", "busybox"])
    );
    assert!(
        find(&pkgs, "ca-certificates-bundle")
            .dependencies
            .is_empty()
    );
    assert_eq!(
        find(&pkgs, "ca-certificates-bundle").licenses,
        strs(&["MPL-2.0 AND MIT"])
    );
}

// ---------------------------------------------------------------------------------------
// rpm

const RHEL_OS_RELEASE: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\n";

fn rpm_headers() -> Vec<Vec<u8>> {
    use Val::*;
    vec![
        craft::rpm_header(&[
            (1000, Str("glibc")),
            (1001, Str("2.34")),
            (1002, Str("100.el9_4.2")),
            (1014, Str("LGPLv2+ and LGPLv2+ with exceptions and GPLv2+")),
            (1022, Str("x86_64")),
            (1044, Str("glibc-2.34-100.el9_4.2.src.rpm")),
            (
                1047,
                Strs(vec!["libc.so.6()(64bit)", "glibc", "glibc(x86-64)"]),
            ),
            (
                1049,
                Strs(vec!["rpmlib(CompressedFileNames)", "basesystem"]),
            ),
            (1116, I32(vec![0, 1])),
            (1117, Strs(vec!["libc.so.6", "ldd"])),
            (1118, Strs(vec!["/usr/lib64/", "/usr/bin/"])),
            (1004, I18n("The GNU libc libraries")),
        ]),
        craft::rpm_header(&[
            (1000, Str("openssl-libs")),
            (1001, Str("3.0.7")),
            (1002, Str("27.el9")),
            (1003, I32(vec![1])),
            (1014, Str("ASL 2.0")),
            (1022, Str("x86_64")),
            (1044, Str("openssl-3.0.7-27.el9.src.rpm")),
            (
                1047,
                Strs(vec![
                    "config(openssl-libs)",
                    "libcrypto.so.3()(64bit)",
                    "openssl-libs",
                ]),
            ),
            (
                1049,
                Strs(vec![
                    "/bin/sh",
                    "ca-certificates",
                    "config(openssl-libs)",
                    "libc.so.6()(64bit)",
                    "libz.so.1()(64bit)",
                    "rpmlib(PayloadIsZstd)",
                ]),
            ),
            (1116, I32(vec![0])),
            (1117, Strs(vec!["libcrypto.so.3.0.7"])),
            (1118, Strs(vec!["/usr/lib64/"])),
        ]),
        craft::rpm_header(&[
            (1000, Str("bash")),
            (1001, Str("5.1.8")),
            (1002, Str("9.el9")),
            (1003, I32(vec![0])),
            (1014, Str("GPLv3+")),
            (1022, Str("x86_64")),
            (1044, Str("bash-5.1.8-9.el9.src.rpm")),
            (
                1047,
                Strs(vec!["/bin/bash", "/bin/sh", "bash", "bash(x86-64)"]),
            ),
            (
                1049,
                Strs(vec!["libc.so.6()(64bit)", "libtinfo.so.6()(64bit)"]),
            ),
            (1116, I32(vec![0, 0])),
            (1117, Strs(vec!["bash", "sh"])),
            (1118, Strs(vec!["/usr/bin/"])),
        ]),
        craft::rpm_header(&[
            (1000, Str("ca-certificates")),
            (1001, Str("2024.2.69_v8.0.303")),
            (1002, Str("91.4.el9_4")),
            (1014, Str("MIT AND GPL-2.0-or-later")),
            (1022, Str("noarch")),
            (
                1044,
                Str("ca-certificates-2024.2.69_v8.0.303-91.4.el9_4.src.rpm"),
            ),
        ]),
        craft::rpm_header(&[
            (1000, Str("zlib")),
            (1001, Str("1.2.11")),
            (1002, Str("40.el9")),
            (1022, Str("x86_64")),
            (1047, Strs(vec!["libz.so.1()(64bit)"])),
        ]),
        // The key rpm keeps as a pseudo-package: not software.
        craft::rpm_header(&[
            (1000, Str("gpg-pubkey")),
            (1001, Str("fd431d51")),
            (1002, Str("4ae0493b")),
        ]),
    ]
}

#[test]
fn rpm_sqlite_database() {
    let mut blobs = rpm_headers();
    // A header whose data store is cut short.
    let mut cut = blobs[2].clone();
    cut.truncate(cut.len() - 10);
    blobs.push(cut);
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Zstd)
            .file("etc/os-release", RHEL_OS_RELEASE)
            .file("var/lib/rpm/rpmdb.sqlite", craft::rpmdb_sqlite(&blobs))
            .file("var/lib/rpm/rpmdb.sqlite-shm", vec![0u8; 32768])
            .file("var/lib/rpm/rpmdb.sqlite-wal", ""),
    ]);
    let pkgs = image.packages();
    let rpm = summary(&pkgs, Ecosystem::Rpm);
    assert_eq!(
        rpm,
        vec![
            (
                "bash".into(),
                "5.1.8-9.el9".into(),
                "pkg:rpm/rhel/bash@5.1.8-9.el9?arch=x86_64&distro=rhel-9.4".into()
            ),
            (
                "ca-certificates".into(),
                "2024.2.69_v8.0.303-91.4.el9_4".into(),
                "pkg:rpm/rhel/ca-certificates@2024.2.69_v8.0.303-91.4.el9_4?arch=noarch&distro=rhel-9.4".into()
            ),
            (
                "glibc".into(),
                "2.34-100.el9_4.2".into(),
                "pkg:rpm/rhel/glibc@2.34-100.el9_4.2?arch=x86_64&distro=rhel-9.4".into()
            ),
            (
                "openssl-libs".into(),
                "1:3.0.7-27.el9".into(),
                "pkg:rpm/rhel/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1".into()
            ),
            (
                "zlib".into(),
                "1.2.11-40.el9".into(),
                "pkg:rpm/rhel/zlib@1.2.11-40.el9?arch=x86_64&distro=rhel-9.4".into()
            ),
        ]
    );
    let ssl = find(&pkgs, "openssl-libs");
    assert_eq!(
        ssl.dependencies,
        strs(&["bash", "ca-certificates", "glibc", "zlib"])
    );
    assert_eq!(ssl.licenses, strs(&["ASL 2.0"]));
    assert_eq!(
        (ssl.source.as_deref(), ssl.source_version.as_deref()),
        (Some("openssl"), Some("3.0.7-27.el9"))
    );
    assert_eq!(ssl.files, strs(&["usr/lib64/libcrypto.so.3.0.7"]));
    assert_eq!(
        find(&pkgs, "glibc").files,
        strs(&["usr/lib64/libc.so.6", "usr/bin/ldd"])
    );
    // bash needs libtinfo, which is not installed: dropped.
    assert_eq!(find(&pkgs, "bash").dependencies, strs(&["glibc"]));
    let unknowns = unknowns_of(&image.reports[0].unknowns, "rpm");
    assert_eq!(unknowns.len(), 1, "{unknowns:?}");
    assert!(
        unknowns[0].1.contains("1 of 6 package headers malformed"),
        "{unknowns:?}"
    );
}

#[test]
fn rpm_unsupported_and_corrupt_databases_are_unknowns() {
    let mut bdb = vec![0u8; 4096];
    bdb[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
    let mut sqlite_garbage = b"SQLite format 3\0".to_vec();
    sqlite_garbage.extend(craft::filler(8192, 7));
    let report = walk(
        LayerBuilder::new(Compression::Gzip)
            .file("var/lib/rpm/Packages", bdb)
            .file("usr/lib/sysimage/rpm/Packages.db", b"RpmP\x00\x00\x00\x00")
            .file("usr/lib/sysimage/rpm/rpmdb.sqlite", sqlite_garbage)
            .file("var/lib/rpm/rpmdb.sqlite", b"not a database at all")
            .file("var/lib/rpm/rpmdb.sqlite-wal", vec![1u8; 4096]),
    );
    assert!(report.packages.is_empty());
    let u = unknowns_of(&report.unknowns, "rpm");
    assert_eq!(u.len(), 5, "{u:#?}");
    assert!(
        u[0].0 == "var/lib/rpm/Packages"
            && u[0].1.contains("BerkeleyDB database not supported yet")
    );
    assert!(u[1].1.contains("NDB database not supported yet"));
    assert!(u[2].1.starts_with("SQLite"), "{}", u[2].1);
    assert!(u[3].1.contains("not a SQLite database"));
    assert!(u[4].1.contains("write-ahead log of 4096 bytes"));
}

#[test]
fn rpm_database_that_is_not_rpms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // A view that would never end if it were queried.
        conn.execute_batch(
            "CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x AS hnum, x AS blob FROM c;",
        )
        .unwrap();
    }
    let view = std::fs::read(&path).unwrap();
    let path = dir.path().join("generated");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // Every row computes a 30 MB value: bounded by the total, not by the file.
        conn.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, n INTEGER, blob BLOB GENERATED ALWAYS AS (zeroblob(30000000)) VIRTUAL);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000) INSERT INTO Packages (n) SELECT x FROM c;",
        )
        .unwrap();
    }
    let generated = std::fs::read(&path).unwrap();
    let other = craft::rpmdb_sqlite(&[b"\x00\x00\x00\x01\x00\x00\x00\x00".to_vec()]);
    let report = walk(
        LayerBuilder::new(Compression::None)
            .file("var/lib/rpm/rpmdb.sqlite", view)
            .file("usr/lib/sysimage/rpm/rpmdb.sqlite", other),
    );
    let u = unknowns_of(&report.unknowns, "rpm");
    assert!(u[0].1.contains("`Packages` is a view"), "{u:?}");
    assert!(u[1].1.contains("1 of 1 package headers malformed"), "{u:?}");
    let started = std::time::Instant::now();
    let report =
        walk(LayerBuilder::new(Compression::None).file("var/lib/rpm/rpmdb.sqlite", generated));
    let u = unknowns_of(&report.unknowns, "rpm");
    assert!(
        u[0].1.contains("add up to more than the database file"),
        "{u:?}"
    );
    assert!(
        started.elapsed().as_secs() < 5,
        "bounded: {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Python

const REQUESTS_METADATA: &str = "\
Metadata-Version: 2.1
Name: requests
Version: 2.31.0
Summary: Python HTTP for Humans.
Home-page: https://requests.readthedocs.io
Author: Kenneth Reitz
Author-email: me@kennethreitz.org
License: Apache 2.0
Project-URL: Documentation, https://requests.readthedocs.io
Project-URL: Source, https://github.com/psf/requests
Platform: UNKNOWN
Classifier: Development Status :: 5 - Production/Stable
Classifier: Environment :: Web Environment
Classifier: Intended Audience :: Developers
Classifier: License :: OSI Approved :: Apache Software License
Classifier: Natural Language :: English
Classifier: Programming Language :: Python :: 3
Requires-Python: >=3.7
Description-Content-Type: text/markdown
License-File: LICENSE
Requires-Dist: charset-normalizer (<4,>=2)
Requires-Dist: idna (<4,>=2.5)
Requires-Dist: urllib3 (<3,>=1.21.1)
Requires-Dist: certifi (>=2017.4.17)
Provides-Extra: security
Provides-Extra: socks
Requires-Dist: PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'
Provides-Extra: use_chardet_on_py3
Requires-Dist: chardet (<6,>=3.0.2) ; extra == 'use_chardet_on_py3'

# Requests

**Requests** is a simple, yet elegant, HTTP library.

License: not a header, this is the description
";

const TYPING_EXTENSIONS_METADATA: &str = "\
Metadata-Version: 2.1
Name: typing_extensions
Version: 4.9.0
Summary: Backported and Experimental Type Hints for Python 3.8+
Keywords: annotations,backport,checker,checking,function,hinting,hints,type,typechecking,typehinting,typehints,typing
Author-email: \"Guido van Rossum, Jukka Lehtosalo, Łukasz Langa, Michael Lee\" <levkivskyi@gmail.com>
Requires-Python: >=3.8
Description-Content-Type: text/markdown
Classifier: Development Status :: 5 - Production/Stable
Classifier: License :: OSI Approved :: Python Software Foundation License
Classifier: Operating System :: OS Independent
Project-URL: Bug Tracker, https://github.com/python/typing_extensions/issues

# Typing Extensions
";

const ATTRS_METADATA: &str = "\
Metadata-Version: 2.4
Name: attrs
Version: 25.1.0
Summary: Classes Without Boilerplate
License-Expression: MIT
License-File: LICENSE
Classifier: Development Status :: 5 - Production/Stable
Requires-Python: >=3.8
Provides-Extra: tests
Requires-Dist: hypothesis; extra == 'tests'
";

#[test]
fn python_distributions() {
    let site = "usr/local/lib/python3.12/site-packages";
    let dist = "usr/lib/python3/dist-packages";
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file(
                &format!("{site}/requests-2.31.0.dist-info/METADATA"),
                REQUESTS_METADATA,
            )
            .file(
                &format!("{site}/requests-2.31.0.dist-info/RECORD"),
                "requests/__init__.py,sha256=x,5000\n",
            )
            .file(
                &format!("{site}/typing_extensions-4.9.0.dist-info/METADATA"),
                TYPING_EXTENSIONS_METADATA,
            )
            .file(&format!("{site}/attrs-25.1.0.dist-info/METADATA"), ATTRS_METADATA)
            .file(
                &format!("{dist}/six-1.16.0.egg-info/PKG-INFO"),
                "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nSummary: Python 2 and 3 compatibility utilities\nLicense: MIT\nPlatform: UNKNOWN\n",
            )
            // Debian ships some distributions twice, as pip sees them once.
            .file(
                &format!("{dist}/cryptography.egg-info/PKG-INFO"),
                "Metadata-Version: 2.1\nName: cryptography\nVersion: 38.0.4\nLicense: BSD-3-Clause OR Apache-2.0\n",
            )
            .file(
                &format!("{dist}/cryptography-38.0.4.dist-info/METADATA"),
                "Metadata-Version: 2.1\nName: cryptography\nVersion: 38.0.4\nLicense: BSD-3-Clause OR Apache-2.0\n",
            )
            .file(
                &format!("{site}/cryptography-42.0.5.dist-info/METADATA"),
                "Metadata-Version: 2.1\nName: cryptography\nVersion: 42.0.5\n",
            )
            .file(
                &format!("{dist}/python_apt-2.6.0.egg-info"),
                "Metadata-Version: 1.1\nName: python-apt\nVersion: 2.6.0\nSummary: Python bindings for APT\nLicense: GNU GPL\nPlatform: posix\n",
            )
            .file(
                &format!("{site}/broken-1.0.dist-info/METADATA"),
                "Metadata-Version: 2.1\nName: broken\n\nno version\n",
            ),
    ]);
    let pkgs = image.packages();
    assert_eq!(
        summary(&pkgs, Ecosystem::Pypi),
        vec![
            (
                "attrs".into(),
                "25.1.0".into(),
                "pkg:pypi/attrs@25.1.0".into()
            ),
            (
                "cryptography".into(),
                "38.0.4".into(),
                "pkg:pypi/cryptography@38.0.4".into()
            ),
            (
                "cryptography".into(),
                "42.0.5".into(),
                "pkg:pypi/cryptography@42.0.5".into()
            ),
            (
                "python-apt".into(),
                "2.6.0".into(),
                "pkg:pypi/python-apt@2.6.0".into()
            ),
            (
                "requests".into(),
                "2.31.0".into(),
                "pkg:pypi/requests@2.31.0".into()
            ),
            ("six".into(), "1.16.0".into(), "pkg:pypi/six@1.16.0".into()),
            (
                "typing_extensions".into(),
                "4.9.0".into(),
                "pkg:pypi/typing-extensions@4.9.0".into()
            ),
        ]
    );
    let requests = find(&pkgs, "requests");
    assert_eq!(requests.licenses, strs(&["Apache 2.0"]));
    assert_eq!(
        requests.dependencies,
        strs(&[
            "charset-normalizer",
            "idna",
            "urllib3",
            "certifi",
            "pysocks",
            "chardet"
        ])
    );
    assert_eq!(
        requests.location.path.as_deref(),
        Some("usr/local/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA")
    );
    assert_eq!(
        find(&pkgs, "typing_extensions").licenses,
        strs(&["Python Software Foundation License"])
    );
    assert_eq!(find(&pkgs, "attrs").licenses, strs(&["MIT"]));
    assert_eq!(
        find(&pkgs, "cryptography").location.path.as_deref(),
        Some("usr/lib/python3/dist-packages/cryptography-38.0.4.dist-info/METADATA")
    );
    let u = unknowns_of(&image.reports[0].unknowns, "python");
    assert_eq!(u.len(), 1);
    assert!(
        u[0].0.ends_with("broken-1.0.dist-info/METADATA") && u[0].1.contains("no Name or Version")
    );
}

#[test]
fn python_metadata_with_a_huge_description_is_read_from_its_headers() {
    let mut text = REQUESTS_METADATA.to_string();
    text.push_str(&"long description line\n".repeat(40_000));
    let mut endless = "Metadata-Version: 2.1\nName: x\nVersion: 1\n".to_string();
    endless.push_str(&"Classifier: Framework :: Django\n".repeat(20_000));
    let report = walk(
        LayerBuilder::new(Compression::Gzip)
            .file(
                "app/venv/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
                text,
            )
            .file(
                "app/venv/lib/python3.11/site-packages/x-1.dist-info/METADATA",
                endless,
            ),
    );
    assert_eq!(report.packages.len(), 1);
    assert_eq!(report.packages[0].name, "requests");
    let u = unknowns_of(&report.unknowns, "python");
    assert!(
        u[0].1
            .contains("header block does not end within the first 256 KiB"),
        "{u:?}"
    );
}

// ---------------------------------------------------------------------------------------
// npm

const EXPRESS_PACKAGE_JSON: &str = r#"{
  "name": "express",
  "description": "Fast, unopinionated, minimalist web framework",
  "version": "4.19.2",
  "author": "TJ Holowaychuk <tj@vision-media.ca>",
  "license": "MIT",
  "repository": "expressjs/express",
  "homepage": "http://expressjs.com/",
  "keywords": ["express", "framework", "sinatra", "web", "http", "rest", "restful", "router", "app", "api"],
  "dependencies": {
    "accepts": "~1.3.8",
    "body-parser": "1.20.2",
    "debug": "2.6.9",
    "qs": "6.11.0"
  },
  "devDependencies": {
    "mocha": "10.2.0"
  },
  "engines": { "node": ">= 0.10.0" },
  "files": ["LICENSE", "History.md", "Readme.md", "index.js", "lib/"]
}"#;

const BABEL_CORE_PACKAGE_JSON: &str = r#"{
  "name": "@babel/core",
  "version": "7.24.0",
  "description": "Babel compiler core.",
  "main": "./lib/index.js",
  "author": "The Babel Team (https://babel.dev/team)",
  "license": "MIT",
  "publishConfig": { "access": "public" },
  "repository": { "type": "git", "url": "https://github.com/babel/babel.git", "directory": "packages/babel-core" },
  "dependencies": {
    "@ampproject/remapping": "^2.2.0",
    "@babel/code-frame": "^7.23.5",
    "debug": "^4.1.0",
    "semver": "^6.3.1"
  },
  "optionalDependencies": { "fsevents": "^2.3.2" },
  "type": "commonjs"
}"#;

#[test]
fn npm_installed_packages() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file(
                "app/package.json",
                r#"{"name":"my-app","version":"1.0.0","private":true,"dependencies":{"express":"^4"}}"#,
            )
            .file("app/node_modules/express/package.json", EXPRESS_PACKAGE_JSON)
            .file("app/node_modules/@babel/core/package.json", BABEL_CORE_PACKAGE_JSON)
            .file(
                "app/node_modules/debug/package.json",
                r#"{"name":"debug","version":"2.6.9","license":"MIT","dependencies":{"ms":"2.0.0"}}"#,
            )
            .file(
                "app/node_modules/debug/node_modules/ms/package.json",
                r#"{"name":"ms","version":"2.0.0","license":"MIT"}"#,
            )
            .file(
                "app/node_modules/resolve/test/resolver/node_modules/fixture/package.json",
                r#"{"name":"fixture","version":"0.0.0"}"#,
            )
            .file(
                "app/node_modules/resolve/package.json",
                r#"{"name":"resolve","version":"1.22.8","licenses":[{"type":"MIT","url":"x"}]}"#,
            )
            .file("app/node_modules/broken/package.json", "{\"name\": \"broken\",")
            .file(
                "usr/local/lib/node_modules/npm/package.json",
                r#"{"name":"npm","version":"10.5.0","license":"Artistic-2.0"}"#,
            ),
    ]);
    let pkgs = image.packages();
    assert_eq!(
        summary(&pkgs, Ecosystem::Npm),
        vec![
            (
                "@babel/core".into(),
                "7.24.0".into(),
                "pkg:npm/%40babel/core@7.24.0".into()
            ),
            ("debug".into(), "2.6.9".into(), "pkg:npm/debug@2.6.9".into()),
            (
                "express".into(),
                "4.19.2".into(),
                "pkg:npm/express@4.19.2".into()
            ),
            ("ms".into(), "2.0.0".into(), "pkg:npm/ms@2.0.0".into()),
            ("npm".into(), "10.5.0".into(), "pkg:npm/npm@10.5.0".into()),
            (
                "resolve".into(),
                "1.22.8".into(),
                "pkg:npm/resolve@1.22.8".into()
            ),
        ]
    );
    let babel = find(&pkgs, "@babel/core");
    assert_eq!(babel.namespace.as_deref(), Some("@babel"));
    assert_eq!(
        babel.dependencies,
        strs(&[
            "@ampproject/remapping",
            "@babel/code-frame",
            "debug",
            "semver",
            "fsevents"
        ])
    );
    assert_eq!(find(&pkgs, "express").licenses, strs(&["MIT"]));
    assert_eq!(
        find(&pkgs, "express").dependencies,
        strs(&["accepts", "body-parser", "debug", "qs"])
    );
    assert_eq!(find(&pkgs, "resolve").licenses, strs(&["MIT"]));
    let u = unknowns_of(&image.reports[0].unknowns, "npm");
    assert_eq!(u.len(), 1);
    assert!(u[0].0 == "app/node_modules/broken/package.json" && u[0].1.contains("not valid JSON"));
}

// ---------------------------------------------------------------------------------------
// Go

const NODE_EXPORTER_MODINFO: &str = "path\tgithub.com/prometheus/node_exporter\n\
mod\tgithub.com/prometheus/node_exporter\tv1.8.2\th1:hHybBJIIdGxbuiv1tFnXFmHSzMTPwUsb5ETQ44=\n\
dep\tgithub.com/alecthomas/kingpin/v2\tv2.4.0\th1:f48lwail6p8zpO1bC4TxtqACaGqHYA22qkHjHpqDjYY=\n\
dep\tgithub.com/beevik/ntp\tv1.3.1\th1:Y/srlT8L1yQr58kyPWFPZIxRL8ttx2SRIpVYJqZIlAM=\n\
dep\tgithub.com/prometheus/client_golang\tv1.19.1\th1:wZWJDwK+NameRJuPGDhlnFgx8e8HN3XHQeLaYJFJBOE=\n\
=>\tgithub.com/prometheus/client_golang\tv1.20.0\th1:jBzTZ7B099Rg24tny+qngoynol8LtVYlA2bqx3vEloI=\n\
dep\tgithub.com/BurntSushi/toml\tv1.3.2\th1:o7IhLm0Msx3BaB+n3Ag7L8EVlByGnpq14C4YWiu/gL8=\n\
dep\tgolang.org/x/sys\tv0.22.0\th1:RI27ohtqKCnwULzJLqkv897zojh5/DwS/ENaMzUOaWI=\n\
build\t-buildmode=exe\n\
build\t-compiler=gc\n\
build\t-ldflags=\"-X github.com/prometheus/common/version.Version=1.8.2\"\n\
build\tCGO_ENABLED=0\n\
build\tGOARCH=amd64\n\
build\tGOOS=linux\n\
build\tvcs=git\n\
build\tvcs.revision=f1e0e8360aa60b6cb5e5cc1560bed348fc2c1895\n\
build\tvcs.modified=false\n";

/// A Go binary: `.text` filler, then (aligned) the build info, then data — the build info
/// several MiB in, beyond any prefix the dispatcher buffers.
fn go_binary(text_len: usize, buildinfo: Vec<u8>) -> Vec<u8> {
    craft::elf64(
        vec![
            Section::new(".text", craft::filler(text_len, 1)),
            // Go programs that read build info carry the magic as data too.
            Section::new(".rodata", b"\xff Go buildinf:\x00\x00decoy".to_vec()),
            Section::new(".go.buildinfo", buildinfo),
            Section::new(".noptrdata", craft::filler(100_000, 2)),
        ],
        vec![Section::new(
            ".comment",
            b"Go cmd/compile go1.22.5\0".to_vec(),
        )],
    )
}

#[test]
fn go_binaries() {
    let binary = go_binary(
        3 * 1024 * 1024,
        craft::go_buildinfo("go1.22.5", NODE_EXPORTER_MODINFO),
    );
    let mut pre118 = b"\xff Go buildinf:".to_vec();
    pre118.extend([8, 0]);
    pre118.resize(32, 0);
    pre118.extend(0x0060_1000u64.to_le_bytes());
    pre118.extend(0x0060_1010u64.to_le_bytes());
    let mut truncated = craft::go_buildinfo("go1.21.0", NODE_EXPORTER_MODINFO);
    truncated.truncate(100);
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file_mode("bin/node_exporter", &binary, 0o755)
            // Not executable: not scanned (Go binaries are shipped executable).
            .file_mode("opt/copy-of-node_exporter", &binary, 0o644)
            .file_mode("usr/bin/old-go-tool", go_binary(50_000, pre118), 0o755)
            .file_mode(
                "usr/bin/cut-short",
                craft::elf64(vec![Section::new(".go.buildinfo", truncated)], vec![]),
                0o755,
            )
            .file_mode(
                "usr/bin/script",
                "#!/bin/sh\necho \\xff Go buildinf:\n",
                0o755,
            ),
    ]);
    let pkgs = image.packages();
    let go = summary(&pkgs, Ecosystem::Golang);
    assert_eq!(
        go,
        vec![
            (
                "github.com/BurntSushi/toml".into(),
                "v1.3.2".into(),
                "pkg:golang/github.com/burntsushi/toml@v1.3.2".into()
            ),
            (
                "github.com/alecthomas/kingpin/v2".into(),
                "v2.4.0".into(),
                "pkg:golang/github.com/alecthomas/kingpin/v2@v2.4.0".into()
            ),
            (
                "github.com/beevik/ntp".into(),
                "v1.3.1".into(),
                "pkg:golang/github.com/beevik/ntp@v1.3.1".into()
            ),
            (
                "github.com/prometheus/client_golang".into(),
                "v1.20.0".into(),
                "pkg:golang/github.com/prometheus/client_golang@v1.20.0".into()
            ),
            (
                "github.com/prometheus/node_exporter".into(),
                "v1.8.2".into(),
                "pkg:golang/github.com/prometheus/node_exporter@v1.8.2".into()
            ),
            (
                "golang.org/x/sys".into(),
                "v0.22.0".into(),
                "pkg:golang/golang.org/x/sys@v0.22.0".into()
            ),
            (
                "stdlib".into(),
                "go1.22.5".into(),
                "pkg:golang/stdlib@go1.22.5".into()
            ),
        ]
    );
    let main = find(&pkgs, "github.com/prometheus/node_exporter");
    assert_eq!(main.cataloger, "go-buildinfo");
    assert_eq!(main.location.path.as_deref(), Some("bin/node_exporter"));
    assert_eq!(main.namespace.as_deref(), Some("github.com/prometheus"));
    assert_eq!(main.dependencies.len(), 6);
    assert!(
        pkgs.iter()
            .all(|p| p.location.path.as_deref() != Some("opt/copy-of-node_exporter"))
    );
    let u = unknowns_of(&image.reports[0].unknowns, "go-buildinfo");
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(u[0].0 == "usr/bin/old-go-tool" && u[0].1.contains("pointer format"));
    assert!(
        u[1].0 == "usr/bin/cut-short" && u[1].1.contains("ends inside"),
        "{u:?}"
    );
    assert!(unknowns_of(&image.reports[0].unknowns, "rust-auditable").is_empty());
}

// ---------------------------------------------------------------------------------------
// Rust (cargo-auditable)

const RIPGREP_DEPS: &str = r#"{"packages":[{"name":"aho-corasick","version":"1.1.2","source":"crates.io","dependencies":[5]},{"name":"bstr","version":"1.9.0","source":"crates.io","dependencies":[5,7]},{"name":"cc","version":"1.0.83","source":"crates.io","kind":"build","dependencies":[3]},{"name":"jobserver","version":"0.1.27","source":"crates.io","kind":"build"},{"name":"grep","version":"0.3.1","source":"crates.io","dependencies":[1,6]},{"name":"memchr","version":"2.7.1","source":"crates.io"},{"name":"regex-automata","version":"0.4.5","source":"crates.io","dependencies":[0,5]},{"name":"serde","version":"1.0.195","source":"crates.io"},{"name":"ripgrep","version":"14.1.0","source":"local","dependencies":[1,2,4,5],"root":true}],"format":1}"#;

fn rust_binary(dep: Option<Vec<u8>>, debug_before: usize, symtab_after: usize) -> Vec<u8> {
    let mut unloaded = vec![Section::new(".comment", b"rustc version 1.75.0\0".to_vec())];
    if debug_before > 0 {
        unloaded.push(Section::new(".debug_info", craft::filler(debug_before, 3)));
    }
    if let Some(d) = dep {
        unloaded.push(Section {
            align: 1,
            ..Section::new(".dep-v0", d)
        });
    }
    if symtab_after > 0 {
        unloaded.push(Section {
            kind: 2,
            ..Section::new(".symtab", craft::filler(symtab_after, 4))
        });
    }
    craft::elf64(
        vec![
            Section::new(".text", craft::filler(600_000, 5)),
            Section::new(".rodata", craft::filler(50_000, 6)),
        ],
        unloaded,
    )
}

#[test]
fn rust_auditable_binaries() {
    let deps = craft::zlib(RIPGREP_DEPS.as_bytes());
    let mb = 1024 * 1024;
    let image = Image::new(vec![
        LayerBuilder::new(Compression::None)
            .file_mode(
                "usr/bin/rg",
                rust_binary(Some(deps.clone()), 0, 20_000),
                0o755,
            )
            // Debug info after .dep-v0 (lld, GNU ld): found in the window after the code.
            .file_mode(
                "usr/local/bin/rg-debug-after",
                rust_binary(Some(deps.clone()), 0, 21 * mb),
                0o755,
            )
            // Debug info before .dep-v0: found in the window before the section headers.
            .file_mode(
                "usr/local/bin/rg-debug-before",
                rust_binary(Some(deps.clone()), 21 * mb, 100_000),
                0o755,
            )
            // .dep-v0 in neither window.
            .file_mode(
                "usr/local/bin/rg-lost",
                rust_binary(Some(deps.clone()), 5 * mb, 17 * mb),
                0o755,
            )
            // A zlib bomb.
            .file_mode(
                "usr/local/bin/bomb",
                rust_binary(Some(craft::zlib(&vec![b' '; 9 * mb])), 0, 0),
                0o755,
            )
            .file_mode(
                "usr/local/bin/garbage-json",
                rust_binary(Some(craft::zlib(b"{\"packages\":[{\"name\":1}]}")), 0, 0),
                0o755,
            )
            // A C binary: no .dep-v0, nothing to say.
            .file_mode("usr/bin/ls", rust_binary(None, 0, 10_000), 0o755)
            // The section header table first, as Go's linker writes it, and large debug
            // info: the table is read at once and only names and candidates are kept.
            .file_mode(
                "usr/local/bin/rg-table-first",
                craft::elf64_with(
                    vec![Section::new(".text", craft::filler(600_000, 5))],
                    vec![
                        Section::new(".debug_info", craft::filler(30 * mb, 8)),
                        Section {
                            align: 1,
                            ..Section::new(".dep-v0", deps.clone())
                        },
                        Section::new(".debug_line", craft::filler(2 * mb, 9)),
                    ],
                    true,
                ),
                0o755,
            ),
    ]);
    let pkgs = image.packages();
    let cargo: Vec<_> = pkgs
        .iter()
        .filter(|p| {
            p.ecosystem == Ecosystem::Cargo && p.location.path.as_deref() == Some("usr/bin/rg")
        })
        .map(|p| (p.name.as_str(), p.purl.as_str()))
        .collect();
    assert_eq!(
        cargo,
        vec![
            ("aho-corasick", "pkg:cargo/aho-corasick@1.1.2"),
            ("bstr", "pkg:cargo/bstr@1.9.0"),
            ("grep", "pkg:cargo/grep@0.3.1"),
            ("memchr", "pkg:cargo/memchr@2.7.1"),
            ("regex-automata", "pkg:cargo/regex-automata@0.4.5"),
            ("ripgrep", "pkg:cargo/ripgrep@14.1.0"),
            ("serde", "pkg:cargo/serde@1.0.195"),
        ]
    );
    let rg = pkgs
        .iter()
        .find(|p| p.name == "ripgrep" && p.location.path.as_deref() == Some("usr/bin/rg"))
        .unwrap();
    assert_eq!(rg.dependencies, strs(&["bstr", "grep", "memchr"]));
    for path in [
        "usr/local/bin/rg-debug-after",
        "usr/local/bin/rg-debug-before",
        "usr/local/bin/rg-table-first",
    ] {
        assert!(
            pkgs.iter()
                .any(|p| p.name == "ripgrep" && p.location.path.as_deref() == Some(path)),
            "{path}"
        );
    }
    let u = unknowns_of(&image.reports[0].unknowns, "rust-auditable");
    assert_eq!(u.len(), 3, "{u:#?}");
    assert!(u[0].0 == "usr/local/bin/rg-lost" && u[0].1.contains("outside the bytes kept"));
    assert!(u[1].0 == "usr/local/bin/bomb" && u[1].1.contains("inflates to more than 8 MiB"));
    assert!(u[2].0 == "usr/local/bin/garbage-json" && u[2].1.contains("not cargo-auditable JSON"));
}

#[test]
fn hostile_elf_files_do_not_panic() {
    let deps = craft::zlib(RIPGREP_DEPS.as_bytes());
    let end_table = rust_binary(Some(deps.clone()), 0, 1000);
    let table_first = craft::elf64_with(
        vec![Section::new(".text", craft::filler(5000, 5))],
        vec![Section {
            align: 1,
            ..Section::new(".dep-v0", deps)
        }],
        true,
    );
    let mut layer = LayerBuilder::new(Compression::None);
    for (kind, good) in [("end", &end_table), ("first", &table_first)] {
        // Every truncation of the headers and tables.
        for cut in [
            4,
            20,
            63,
            64,
            100,
            119,
            120,
            121,
            200,
            500,
            5000,
            good.len() - 100,
            good.len() - 1,
        ] {
            layer = layer.file_mode(&format!("bin/{kind}-cut{cut}"), &good[..cut], 0o755);
        }
        // Garbage in every field of the file header, and through the section headers.
        let table_at = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
        let fields = (4..64)
            .step_by(2)
            .chain((table_at..table_at + 5 * 64).step_by(7));
        for at in fields {
            let mut b = good.clone();
            b[at] ^= 0xff;
            b[at + 1] ^= 0x7f;
            layer = layer.file_mode(&format!("bin/{kind}-flip{at}"), b, 0o755);
        }
    }
    let report = walk(layer);
    // Nothing panics, nothing is invented, and broken files are unknowns.
    let doc: serde_json::Value = serde_json::from_str(RIPGREP_DEPS).unwrap();
    let names: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        report
            .packages
            .iter()
            .all(|p| names.contains(&p.name.as_str()))
    );
    assert!(unknowns_of(&report.unknowns, "rust-auditable").len() > 20);
}

// ---------------------------------------------------------------------------------------
// Java

fn pom(group: &str, artifact: &str, version: &str) -> String {
    format!(
        "#Generated by Maven\n#Tue Oct 03 14:55:56 UTC 2023\ngroupId={group}\nartifactId={artifact}\nversion={version}\n"
    )
}

fn library_jar(group: &str, artifact: &str, version: &str) -> Vec<u8> {
    let pom = pom(group, artifact, version);
    craft::zip(&[
        (
            "META-INF/MANIFEST.MF",
            format!("Manifest-Version: 1.0\r\nCreated-By: Maven JAR Plugin 3.3.0\r\nBuild-Jdk-Spec: 17\r\nImplementation-Title: {artifact}\r\nImplementation-Version: {version}\r\n\r\n").as_bytes(),
            false,
        ),
        (&format!("META-INF/maven/{group}/{artifact}/pom.properties"), pom.as_bytes(), false),
        ("com/example/Lib.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x3d", false),
    ])
}

#[test]
fn java_archives() {
    let guava = craft::zip(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nAutomatic-Module-Name: com.google.common\r\nBundle-License: http://www.apache.org/licenses/LICENSE-2.0.tx\r\n t\r\nBundle-SymbolicName: com.google.guava\r\nBundle-Version: 32.1.3.jre\r\nBuild-Jdk-Spec: 1.8\r\n\r\n",
            false,
        ),
        (
            "META-INF/maven/com.google.guava/guava/pom.properties",
            pom("com.google.guava", "guava", "32.1.3-jre").as_bytes(),
            false,
        ),
        ("com/google/common/base/Optional.class", b"\xca\xfe\xba\xbe", false),
    ]);
    let jackson = library_jar("com.fasterxml.jackson.core", "jackson-databind", "2.15.3");
    let tomcat = library_jar("org.apache.tomcat.embed", "tomcat-embed-core", "10.1.16");
    let boot = craft::zip(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.launch.JarLauncher\r\nStart-Class: com.example.demo.DemoApplication\r\nSpring-Boot-Version: 3.2.0\r\nSpring-Boot-Classes: BOOT-INF/classes/\r\nSpring-Boot-Lib: BOOT-INF/lib/\r\n\r\n",
            false,
        ),
        (
            "META-INF/maven/com.example/demo/pom.properties",
            pom("com.example", "demo", "0.0.1-SNAPSHOT").as_bytes(),
            false,
        ),
        ("BOOT-INF/classes/com/example/demo/DemoApplication.class", b"\xca\xfe\xba\xbe", false),
        ("BOOT-INF/lib/jackson-databind-2.15.3.jar", &jackson, true),
        ("BOOT-INF/lib/tomcat-embed-core-10.1.16.jar", &tomcat, true),
        ("BOOT-INF/lib/guava-32.1.3-jre.jar", &guava, true),
    ]);
    // A manifest-only library: the name and version come from the file name and manifest.
    let plain = craft::zip(&[(
        "META-INF/MANIFEST.MF",
        b"Manifest-Version: 1.0\nImplementation-Title: Commons Codec\nImplementation-Version: 1.16.0\nImplementation-Vendor-Id: commons-codec\n\n",
        false,
    )]);
    let war = craft::zip(&[
        ("WEB-INF/web.xml", b"<web-app/>", false),
        ("WEB-INF/lib/commons-codec-1.16.0.jar", &plain, false),
    ]);
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file("app/demo-0.0.1-SNAPSHOT.jar", &boot)
            .file("usr/local/tomcat/webapps/ROOT.war", &war)
            .file("usr/share/java/guava.jar", &guava)
            .file("opt/broken.jar", b"PK\x03\x04 this is not a zip")
            .file(
                "opt/nothing.jar",
                craft::zip(&[("README", b"no metadata", false)]),
            ),
    ]);
    let pkgs = image.packages();
    let maven: Vec<_> = pkgs
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Maven)
        .map(|p| {
            (
                p.purl.as_str(),
                p.location.path.as_deref().unwrap_or(""),
                p.files.first().map(String::as_str).unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        maven,
        vec![
            (
                "pkg:maven/commons-codec/commons-codec@1.16.0",
                "usr/local/tomcat/webapps/ROOT.war",
                "usr/local/tomcat/webapps/ROOT.war!/WEB-INF/lib/commons-codec-1.16.0.jar"
            ),
            (
                "pkg:maven/com.example/demo@0.0.1-SNAPSHOT",
                "app/demo-0.0.1-SNAPSHOT.jar",
                ""
            ),
            (
                "pkg:maven/com.google.guava/guava@32.1.3-jre",
                "app/demo-0.0.1-SNAPSHOT.jar",
                "app/demo-0.0.1-SNAPSHOT.jar!/BOOT-INF/lib/guava-32.1.3-jre.jar"
            ),
            (
                "pkg:maven/com.google.guava/guava@32.1.3-jre",
                "usr/share/java/guava.jar",
                ""
            ),
            (
                "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.15.3",
                "app/demo-0.0.1-SNAPSHOT.jar",
                "app/demo-0.0.1-SNAPSHOT.jar!/BOOT-INF/lib/jackson-databind-2.15.3.jar"
            ),
            (
                "pkg:maven/org.apache.tomcat.embed/tomcat-embed-core@10.1.16",
                "app/demo-0.0.1-SNAPSHOT.jar",
                "app/demo-0.0.1-SNAPSHOT.jar!/BOOT-INF/lib/tomcat-embed-core-10.1.16.jar"
            ),
        ]
    );
    let guava_pkg = pkgs.iter().find(|p| p.name == "guava").unwrap();
    assert_eq!(
        guava_pkg.licenses,
        strs(&["http://www.apache.org/licenses/LICENSE-2.0.txt"])
    );
    assert_eq!(guava_pkg.namespace.as_deref(), Some("com.google.guava"));
    let u = unknowns_of(&image.reports[0].unknowns, "java");
    assert_eq!(u.len(), 3, "{u:#?}");
    // A war without Maven metadata: named by its file, but no version anywhere.
    assert!(
        u[0].0 == "usr/local/tomcat/webapps/ROOT.war" && u[0].1.contains("no name and version")
    );
    assert!(u[1].0 == "opt/broken.jar" && u[1].1.contains("not a readable zip archive"));
    assert!(
        u[2].0 == "opt/nothing.jar" && u[2].1.contains("no name and version"),
        "{u:?}"
    );
}

#[test]
fn java_zip_bombs_deep_nesting_and_oversized_archives() {
    // 40 MiB of zeros deflate to 40 KiB: declared beyond the nested-archive limit.
    let big = vec![0u8; 40 * 1024 * 1024];
    let bomb = craft::zip(&[
        (
            "META-INF/maven/evil/bomb/pom.properties",
            pom("evil", "bomb", "1").as_bytes(),
            false,
        ),
        ("BOOT-INF/lib/huge.jar", &big, false),
    ]);
    drop(big);
    // Five levels of archives in archives.
    let mut deep = library_jar("org.example", "level5", "5");
    for level in (1..5).rev() {
        deep = craft::zip(&[
            (
                &format!("META-INF/maven/org.example/level{level}/pom.properties"),
                pom("org.example", &format!("level{level}"), &level.to_string()).as_bytes(),
                false,
            ),
            (&format!("lib/level{}.jar", level + 1), &deep, true),
        ]);
    }
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file("app/bomb.jar", &bomb)
            .file("app/deep.ear", &deep)
            .zeros("app/huge.war", 65 * 1024 * 1024),
    ]);
    let pkgs = image.packages();
    let names: Vec<_> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["bomb", "level1", "level2", "level3", "level4"]);
    let u = unknowns_of(&image.reports[0].unknowns, "java");
    assert_eq!(u.len(), 3, "{u:#?}");
    assert!(
        u[0].0 == "app/bomb.jar"
            && u[0].1.contains(
                "BOOT-INF/lib/huge.jar: 41943040 bytes inflated, over the 32 MiB per nested archive limit"
            ),
        "{u:?}"
    );
    assert!(
        u[1].0 == "app/deep.ear"
            && u[1]
                .1
                .contains("lib/level5.jar: nested more than 3 archives deep"),
        "{u:?}"
    );
    assert!(u[2].0 == "app/huge.war" && u[2].1.contains("larger than the 64 MiB limit"));
}

// ---------------------------------------------------------------------------------------
// The final filesystem

#[test]
fn final_packages_come_from_visible_metadata_only() {
    let site = "usr/lib/python3.11/site-packages";
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n")
            .file(
                "app/node_modules/left-pad/package.json",
                r#"{"name":"left-pad","version":"1.3.0"}"#,
            )
            .file(
                "app/node_modules/lodash/package.json",
                r#"{"name":"lodash","version":"4.17.20"}"#,
            )
            .file(
                &format!("{site}/urllib3-1.26.0.dist-info/METADATA"),
                "Name: urllib3\nVersion: 1.26.0\n",
            )
            .file(
                &format!("{site}/cmake-3.28.1.dist-info/METADATA"),
                "Name: cmake\nVersion: 3.28.1\n",
            )
            .file_mode(
                "usr/bin/tool",
                go_binary(
                    10_000,
                    craft::go_buildinfo(
                        "go1.21.0",
                        "path\tex.com/tool\nmod\tex.com/tool\tv0.1.0\t\n",
                    ),
                ),
                0o755,
            ),
        LayerBuilder::new(Compression::Zstd)
            .whiteout("app/node_modules/left-pad")
            .file(
                "app/node_modules/lodash/package.json",
                r#"{"name":"lodash","version":"4.17.21"}"#,
            )
            .whiteout(&format!("{site}/urllib3-1.26.0.dist-info"))
            .file(
                &format!("{site}/urllib3-2.2.1.dist-info/METADATA"),
                "Name: urllib3\nVersion: 2.2.1\n",
            )
            .whiteout("usr/bin/tool"),
    ]);
    let pkgs = image.packages();
    let got: Vec<_> = pkgs
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.location.layer_index))
        .collect();
    assert_eq!(
        got,
        vec![
            ("cmake", "3.28.1", Some(0)),
            ("urllib3", "2.2.1", Some(1)),
            ("lodash", "4.17.21", Some(1))
        ]
    );
    // The policy input sees them too, with their purls.
    let facts = image.facts_as("");
    let input: Vec<_> = facts
        .packages
        .iter()
        .map(|p| {
            (
                p.ecosystem.as_str(),
                p.purl.as_str(),
                p.location.layer.clone(),
            )
        })
        .collect();
    assert_eq!(
        input,
        vec![
            ("pypi", "pkg:pypi/cmake@3.28.1", Some(image.layer(0))),
            ("pypi", "pkg:pypi/urllib3@2.2.1", Some(image.layer(1))),
            ("npm", "pkg:npm/lodash@4.17.21", Some(image.layer(1))),
        ]
    );
    // A Python package named like a build tool is not an OS toolchain package.
    assert!(facts.toolchain.is_empty(), "{:?}", facts.toolchain);
}

#[test]
fn go_toolchain_is_recognised_by_its_build_info_whatever_its_name() {
    let go_cmd = go_binary(
        200_000,
        craft::go_buildinfo("go1.22.5", "path\tcmd/go\nbuild\t-compiler=gc\n"),
    );
    let ordinary = go_binary(
        200_000,
        craft::go_buildinfo("go1.22.5", NODE_EXPORTER_MODINFO),
    );
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            // Renamed and relocated: no path rule knows this name.
            .file_mode("opt/tools/gobuilder", &go_cmd, 0o755)
            .file_mode("bin/node_exporter", &ordinary, 0o755)
            .file_mode("opt/deleted/go", &go_cmd, 0o755),
        LayerBuilder::new(Compression::Gzip).whiteout("opt/deleted"),
    ]);
    let facts = image.facts_as("65534");
    let elf: Vec<_> = facts
        .toolchain
        .iter()
        .filter(|t| t.evidence == Evidence::Elf)
        .map(|t| (t.name.as_str(), t.category, t.location.path.as_deref()))
        .collect();
    // The deleted copy does not run in the container; the ordinary Go program is no toolchain.
    assert_eq!(
        elf,
        vec![(
            "go",
            Category::LanguageToolchain,
            Some("opt/tools/gobuilder")
        )]
    );
}
