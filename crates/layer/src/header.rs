//! Parsing of the pieces of a tar stream that are not plain field access on `tar::Header`:
//! numeric fields, the header checksum and PAX records. Semantics follow Go's
//! `archive/tar`, the reader containerd and Docker unpack layers with, so Gantry sees the
//! same files the runtime creates.
//!
//! Public because it is Gantry's one tar header parser: the layer walk uses it, and so does
//! gantry-registry's index of image archives (oci-archive, docker-archive). Each caller keeps
//! its own limits on how much it reads.

/// Size of a tar block.
pub const BLOCK: u64 = 512;

/// Parses a numeric header field: octal text (surrounded by spaces or NULs; empty means
/// 0), or GNU base-256 when the high bit of the first byte is set. Negative base-256
/// values and overflow are rejected (`None`): no field Gantry reads can be negative.
pub fn parse_numeric(field: &[u8]) -> Option<u64> {
    let first = *field.first()?;
    if first & 0x80 != 0 {
        if first & 0x40 != 0 {
            return None; // negative
        }
        let mut value = u64::from(first & 0x3f);
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    let trimmed = trim(field, |b| b == b' ' || b == 0);
    let digits = trimmed.split(|&b| b == 0).next().unwrap_or_default();
    let mut value: u64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

fn trim(bytes: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|&b| !strip(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !strip(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Offset and length of the checksum field.
const CKSUM: std::ops::Range<usize> = 148..156;

/// Checks the header checksum: the sum of all bytes with the checksum field read as spaces.
/// Like GNU tar and Go, both the unsigned and the historic signed sum are accepted.
pub fn check_checksum(block: &[u8; 512]) -> Result<(), String> {
    let stored = block
        .get(CKSUM)
        .and_then(parse_numeric)
        .ok_or_else(|| "tar header has an unreadable checksum field".to_string())?;
    let mut unsigned: i64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if CKSUM.contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    if i64::try_from(stored).is_ok_and(|s| s == unsigned || s == signed) {
        Ok(())
    } else {
        Err(format!(
            "tar header checksum is {stored}, computed {unsigned}"
        ))
    }
}

/// The PAX records Gantry applies to the next entry. An empty value means "keep the
/// header's value", as in Go's `mergePAX`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pax {
    /// `path`: the entry's path, over the header's (and a GNU long name's).
    pub path: Option<Vec<u8>>,
    /// `linkpath`: the link target, over the header's.
    pub linkpath: Option<Vec<u8>>,
    /// `size`: the data size, over the header's (entries of 8 GiB and more carry it here).
    pub size: Option<u64>,
    /// `uid`.
    pub uid: Option<u64>,
    /// `gid`.
    pub gid: Option<u64>,
    /// `GNU.sparse.name`: the real name of a GNU PAX-format sparse file, whose header path
    /// is a placeholder (`GNUSparseFile.%p/name`). Go applies it over `path`.
    pub sparse_name: Option<Vec<u8>>,
}

/// Parses a PAX extended header body: records of the form `"%d %s=%s\n"`, where the
/// leading decimal is the length of the whole record.
///
/// The records are length-prefixed, so values may contain newlines; `tar::PaxExtensions`
/// splits on `\n` and would reject (or misread) such records, so the body is parsed here.
pub fn parse_pax(mut body: &[u8]) -> Result<Pax, String> {
    let mut pax = Pax::default();
    while !body.is_empty() {
        let space = body
            .iter()
            .take(21)
            .position(|&b| b == b' ')
            .ok_or("PAX record without a length")?;
        let len: usize = std::str::from_utf8(&body[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record with an invalid length")?;
        if len <= space + 1 || len > body.len() {
            return Err(format!("PAX record length {len} is out of range"));
        }
        let (record, rest) = body.split_at(len);
        body = rest;
        let Some((&b'\n', kv)) = record[space + 1..].split_last() else {
            return Err("PAX record does not end with a newline".into());
        };
        let eq = kv
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        let (key, value) = (&kv[..eq], &kv[eq + 1..]);
        if key.is_empty() {
            return Err("PAX record with an empty key".into());
        }
        if value.is_empty() {
            continue;
        }
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "PAX record {} has a non-numeric value",
                        String::from_utf8_lossy(key)
                    )
                })
        };
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => pax.size = Some(number()?),
            b"uid" => pax.uid = Some(number()?),
            b"gid" => pax.gid = Some(number()?),
            b"GNU.sparse.name" => pax.sparse_name = Some(value.to_vec()),
            _ => {}
        }
    }
    Ok(pax)
}

/// Truncates a GNU long name/link body at its first NUL, as Go's `parseString` does.
pub fn c_string(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn numeric_fields() {
        assert_eq!(parse_numeric(b"0000644\0"), Some(0o644));
        assert_eq!(parse_numeric(b" 644 \0\0"), Some(0o644));
        assert_eq!(parse_numeric(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(parse_numeric(b"        "), Some(0));
        assert_eq!(parse_numeric(b"12\0junk"), Some(0o12));
        assert_eq!(parse_numeric(b"0009\0"), None);
        assert_eq!(parse_numeric(b"-1\0"), None);
        assert_eq!(parse_numeric(b""), None);
        // base-256: 8 GiB in a 12-byte size field.
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[7] = 0x02;
        assert_eq!(parse_numeric(&f), Some(8 << 30));
        assert_eq!(parse_numeric(&[0xff; 12]), None, "negative");
        let mut huge = [0xffu8; 12];
        huge[0] = 0x80;
        assert_eq!(parse_numeric(&huge), None, "overflows u64");
        assert_eq!(
            parse_numeric(b"77777777777777777777777"),
            None,
            "overflows u64"
        );
    }

    #[test]
    fn checksum_accepts_unsigned_and_signed_sums() {
        let mut h = tar::Header::new_ustar();
        h.set_path("a").unwrap();
        h.set_cksum();
        assert!(check_checksum(h.as_bytes()).is_ok());
        h.as_mut_bytes()[0] = b'b';
        assert!(check_checksum(h.as_bytes()).is_err());

        // A header with high bytes whose checksum was computed with signed chars.
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[0] = 0xe9;
        let signed: i64 = h
            .as_bytes()
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if CKSUM.contains(&i) {
                    32
                } else {
                    i64::from(b as i8)
                }
            })
            .sum();
        let field = format!("{signed:06o}\0 ");
        h.as_mut_bytes()[CKSUM].copy_from_slice(field.as_bytes());
        assert!(check_checksum(h.as_bytes()).is_ok());
    }

    #[test]
    fn pax_records() {
        let body =
            b"30 path=a/very/long/path/name\n11 uid=123\n11 size=42\n16 linkpath=tgt\n7 gid=\n";
        let pax = parse_pax(body).unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"a/very/long/path/name"[..]));
        assert_eq!(pax.uid, Some(123));
        assert_eq!(pax.gid, None, "empty value keeps the header's");
        assert_eq!(pax.size, Some(42));
        assert_eq!(pax.linkpath.as_deref(), Some(&b"tgt"[..]));
        // Values may contain newlines: the record length is authoritative.
        let pax = parse_pax(b"12 path=a\nb\n").unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"a\nb"[..]));
        // Unknown keys are ignored.
        assert_eq!(
            parse_pax(b"27 SCHILY.xattr.user.x=yyy\n").unwrap(),
            Pax::default()
        );
    }

    #[test]
    fn malformed_pax_records() {
        for bad in [
            &b"x path=a\n"[..],
            b"100 path=a\n",
            b"0 \n",
            b"2 \n",
            b"9 patha=\x00",
            b"8 patha\n",
            b"7 =abc\n",
            b"11 size=1x\n",
            b"12 uid=-100\n",
            b"99999999999999999999999999 path=a\n",
            b"path=a\n",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
