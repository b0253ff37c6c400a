//! One sample line of the text exposition: `name{label="value",...} value [timestamp]`.
//!
//! Label names are bare (`job`) or, when the request negotiated `escaping=allow-utf-8` and the
//! name is not a legacy one, quoted (`"service.name"`); values are always quoted. Quoted strings
//! escape `\\`, `\"` and newlines (`\n`), as Go's `expfmt` writes them.

use std::sync::Arc;

use crate::model::Interner;

/// A sample's labels, sorted by name, each name once.
pub(super) type Pairs = Vec<(Arc<str>, Arc<str>)>;

/// The labels and value of a sample line. Label names and `job` values come from the interner,
/// as in the JSON read. The error says what is wrong, for the log.
pub(super) fn parse_sample(line: &[u8], interner: &mut Interner) -> Result<(Pairs, f64), String> {
    let mut at = line
        .iter()
        .position(|&b| b == b'{' || b == b' ')
        .ok_or("no value")?;
    let mut pairs = Pairs::new();
    let mut text = Vec::new();
    if line[at] == b'{' {
        at += 1;
        loop {
            match line.get(at) {
                Some(b'}') => {
                    at += 1;
                    break;
                }
                None => return Err("unterminated labels".into()),
                _ => {}
            }
            text.clear();
            at = if line[at] == b'"' {
                quoted(line, at, &mut text)?
            } else {
                let end = line[at..]
                    .iter()
                    .position(|&b| b == b'=')
                    .map(|n| at + n)
                    .ok_or("a label without `=`")?;
                text.extend_from_slice(&line[at..end]);
                end
            };
            let name = interner.get(utf8(&text)?);
            if line.get(at) != Some(&b'=') || line.get(at + 1) != Some(&b'"') {
                return Err(format!("label {name:?} has no quoted value"));
            }
            text.clear();
            at = quoted(line, at + 1, &mut text)?;
            let value = utf8(&text)?;
            let value = if &*name == "job" {
                interner.get(value)
            } else {
                value.into()
            };
            pairs.push((name, value));
            match line.get(at) {
                Some(b',') => at += 1,
                Some(b'}') => {}
                _ => return Err("expected `,` or `}` after a label".into()),
            }
        }
    }
    let rest = line.get(at..).unwrap_or_default();
    let rest = rest.strip_prefix(b" ").ok_or("no space before the value")?;
    // A timestamp may follow the value; the gateway refuses pushes with one, so it is ignored.
    let value = rest.split(|&b| b == b' ').next().unwrap_or_default();
    let value = go_float(utf8(value)?).ok_or_else(|| format!("bad value {value:?}"))?;
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err("a repeated label name".into());
    }
    Ok((pairs, value))
}

/// The quoted string starting at `line[at]` (a `"`), unescaped into `out`; the index after its
/// closing quote.
fn quoted(line: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    let mut i = at + 1;
    loop {
        let next = memchr::memchr2(b'"', b'\\', &line[i..]).ok_or("unterminated string")?;
        out.extend_from_slice(&line[i..i + next]);
        i += next;
        if line[i] == b'"' {
            return Ok(i + 1);
        }
        match line.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'"') => out.push(b'"'),
            Some(b'n') => out.push(b'\n'),
            other => return Err(format!("unknown escape {:?}", other.map(|&b| b as char))),
        }
        i += 2;
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
}

/// A sample value as Go writes it (`strconv.FormatFloat(v, 'g', -1, 64)`, `+Inf`, `-Inf`,
/// `NaN`), with the same reading as the JSON read's.
fn go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        s => s.parse().ok(),
    }
}
