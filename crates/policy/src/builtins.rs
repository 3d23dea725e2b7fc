//! Capped replacements for the builtins whose output their arguments can make arbitrarily
//! large.
//!
//! regorus checks its time limit between interpreter steps, never inside a builtin, so one
//! call of `numbers.range(1, 2e8)` ran 23 s and built 4.7 GB despite the 2 s limit
//! (issue 11). The builtins that turn a few bytes of arguments into an unbounded result are
//! replaced here, through regorus' extension mechanism (an extension is looked up before a
//! builtin of the same name), by versions that refuse results of more than
//! [`PolicyLimits::max_builtin_elements`](crate::PolicyLimits::max_builtin_elements)
//! elements *before* building them. Same results as regorus' own otherwise (strict mode:
//! non-integers are errors).
//!
//! - `numbers.range(a, b)`, `numbers.range_step(a, b, step)`: |b − a| / step + 1 elements;
//! - `net.cidr_expand(cidr)`: 2^(bits − prefix) addresses (`::/0` is 2^128).
//!
//! Other builtins produce output proportional to their inputs (strings, arrays and objects
//! the policy already holds), which the time limit bounds through the steps that built them.

use std::net::IpAddr;

use anyhow::{anyhow, bail};
use regorus::Value;

/// Registers the capped builtins on `engine`.
pub(crate) fn register(engine: &mut regorus::Engine, max_elements: usize) -> anyhow::Result<()> {
    engine.add_extension(
        "numbers.range".to_string(),
        2,
        Box::new(move |args: Vec<Value>| {
            let (a, b) = (
                integer(&args, 0, "numbers.range")?,
                integer(&args, 1, "numbers.range")?,
            );
            stepped("numbers.range", a, b, 1, max_elements)
        }),
    )?;
    engine.add_extension(
        "numbers.range_step".to_string(),
        3,
        Box::new(move |args: Vec<Value>| {
            let name = "numbers.range_step";
            let (a, b) = (integer(&args, 0, name)?, integer(&args, 1, name)?);
            let step = args
                .get(2)
                .and_then(|v| v.as_i64().ok())
                .filter(|s| *s > 0)
                .ok_or_else(|| anyhow!("{name}: step must be a positive integer"))?;
            stepped(name, a, b, step, max_elements)
        }),
    )?;
    engine.add_extension(
        "net.cidr_expand".to_string(),
        1,
        Box::new(move |args: Vec<Value>| cidr_expand(&args, max_elements)),
    )?;
    Ok(())
}

fn integer(args: &[Value], i: usize, name: &str) -> anyhow::Result<i64> {
    args.get(i)
        .and_then(|v| v.as_i64().ok())
        .ok_or_else(|| anyhow!("{name}: operand {} must be an integer", i + 1))
}

fn too_many(name: &str, n: u128, max: usize) -> anyhow::Error {
    anyhow!(
        "{name}: the result would have {n} elements, more than the {max} a builtin may return \
         (policy-builtin-elements)"
    )
}

/// `a`, `a ± step`, … up to `b` inclusive, descending when `b < a`.
fn stepped(name: &str, a: i64, b: i64, step: i64, max: usize) -> anyhow::Result<Value> {
    let span = (i128::from(b) - i128::from(a)).unsigned_abs();
    let n = span / step.unsigned_abs() as u128 + 1;
    if n > max as u128 {
        return Err(too_many(name, n, max));
    }
    let step = if b < a { -step } else { step };
    let mut out = Vec::with_capacity(n as usize);
    let mut v = a;
    for _ in 0..n {
        out.push(Value::from(v));
        v = match v.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(Value::from(out))
}

/// Every address of a CIDR block, network and broadcast addresses included (as OPA).
fn cidr_expand(args: &[Value], max: usize) -> anyhow::Result<Value> {
    const NAME: &str = "net.cidr_expand";
    let text = args
        .first()
        .and_then(|v| v.as_string().ok())
        .ok_or_else(|| anyhow!("{NAME}: the operand must be a string"))?;
    let (addr, prefix) = text
        .split_once('/')
        .ok_or_else(|| anyhow!("{NAME}: {text:?} is not a CIDR block"))?;
    let addr: IpAddr = addr.parse().map_err(|e| anyhow!("{NAME}: {text:?}: {e}"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|e| anyhow!("{NAME}: {text:?}: {e}"))?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > bits {
        bail!("{NAME}: {text:?}: prefix longer than the address");
    }
    let host_bits = bits - prefix;
    let n: u128 = if host_bits >= 128 {
        u128::MAX
    } else {
        1u128 << host_bits
    };
    if n > max as u128 {
        return Err(too_many(NAME, n, max));
    }
    let out: Vec<Value> = match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            let base = u32::from(a) & mask;
            (0..n as u32)
                .map(|i| Value::from(std::net::Ipv4Addr::from(base + i).to_string()))
                .collect()
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            let base = u128::from(a) & mask;
            (0..n)
                .map(|i| Value::from(std::net::Ipv6Addr::from(base + i).to_string()))
                .collect()
        }
    };
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &Value) -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    }

    #[test]
    fn ranges_match_opa_and_stop_at_the_cap() {
        assert_eq!(ints(&stepped("r", 1, 4, 1, 10).unwrap()), [1, 2, 3, 4]);
        assert_eq!(ints(&stepped("r", 4, 1, 1, 10).unwrap()), [4, 3, 2, 1]);
        assert_eq!(ints(&stepped("r", 3, 3, 1, 10).unwrap()), [3]);
        assert_eq!(ints(&stepped("r", 0, 10, 4, 10).unwrap()), [0, 4, 8]);
        assert_eq!(ints(&stepped("r", 10, 0, 4, 10).unwrap()), [10, 6, 2]);
        let e = stepped("numbers.range", 1, 200_000_000, 1, 1_000_000).unwrap_err();
        assert!(e.to_string().contains("200000000 elements"), "{e}");
        assert!(stepped("r", i64::MIN, i64::MAX, 1, 10).is_err());
        assert_eq!(
            stepped("r", i64::MAX - 1, i64::MAX, 1, 10)
                .map(|v| ints(&v))
                .unwrap(),
            [i64::MAX - 1, i64::MAX]
        );
    }

    #[test]
    fn cidr_blocks_are_expanded_within_the_cap() {
        let v = cidr_expand(&[Value::from("192.168.1.0/30")], 10).unwrap();
        let got: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_string().unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            ["192.168.1.0", "192.168.1.1", "192.168.1.2", "192.168.1.3"]
        );
        assert!(cidr_expand(&[Value::from("::/0")], 1_000_000).is_err());
        assert!(cidr_expand(&[Value::from("10.0.0.0/8")], 1_000_000).is_err());
        assert!(cidr_expand(&[Value::from("10.0.0.0/33")], 10).is_err());
        assert!(cidr_expand(&[Value::from("nope")], 10).is_err());
    }
}
