//! The forms a secret takes in text: raw, or with any of its bytes escaped the way encoders and
//! renderers escape them (percent-encoding in either hex case, form encoding's `+` for a space,
//! JSON's and Markdown's backslashes and `\u00XX`, HTML entities), and base64 at any alignment.
//!
//! An encoder may escape any subset of the bytes, so the escaped forms are not listed but
//! matched: [`find`] walks the text accepting, for each byte of the secret, the byte itself or
//! any escape of it. base64 has one form per alignment of the secret inside the encoded bytes
//! (`Basic base64(id:secret)` holds the secret at the id's length modulo 3): [`base64_cores`]
//! gives, per alignment, the characters that only the secret's bits decide, so a secret is
//! found inside base64 whatever precedes or follows it.

use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The spellings of `secret` an encoder or renderer writes whole: the raw text,
/// `application/x-www-form-urlencoded`, and percent-encoding of every other byte in both hex
/// cases (their base64 is looked for too).
pub fn spellings(secret: &str) -> Vec<String> {
    /// What `application/x-www-form-urlencoded` leaves as it is (WHATWG URL).
    const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');
    /// What RFC 3986 leaves unreserved (the Basic credentials of RFC 6749 §2.3.1).
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let upper = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
    let mut all = vec![
        secret.to_string(),
        secret
            .split(' ')
            .map(|part| utf8_percent_encode(part, FORM).to_string())
            .collect::<Vec<_>>()
            .join("+"),
        utf8_percent_encode(secret, UNRESERVED).to_string(),
        lower_hex(&upper),
        upper,
    ];
    all.sort();
    all.dedup();
    all
}

/// `%2F` as `%2f`.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            out.push(c);
            if c == '%' {
                hex_left = 2;
            }
        }
    }
    out
}

/// Per alignment (0, 1, 2 bytes into a base64 group) and alphabet (standard, URL-safe), the
/// base64 characters that only `bytes` decide: present in the base64 of any text that holds
/// `bytes` at that alignment.
pub fn base64_cores(bytes: &[u8]) -> Vec<String> {
    let mut cores = Vec::with_capacity(6);
    for engine in [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for k in 0..3usize {
            let mut padded = vec![0u8; k];
            padded.extend_from_slice(bytes);
            padded.extend_from_slice(&[0, 0]);
            let encoded = engine.encode(&padded);
            // Character c holds bits 6c..6c+6; the secret holds bits 8k..8(k+n).
            let first = (8 * k).div_ceil(6);
            let end = 8 * (k + bytes.len()) / 6;
            if end > first {
                cores.push(encoded[first..end].to_string());
            }
        }
    }
    cores
}

/// The first place at or after `from` where `hay` holds `secret`, raw or with any of its bytes
/// escaped: `(start, end)`, both on character boundaries.
pub fn find(hay: &str, secret: &[u8], from: usize) -> Option<(usize, usize)> {
    let bytes = hay.as_bytes();
    let first = *secret.first()?;
    let mut at = Vec::new();
    let mut next = Vec::new();
    for start in from..bytes.len() {
        let b = bytes[start];
        // Every form of a secret begins with its first byte or an escape's first character.
        if b != first && !matches!(b, b'%' | b'+' | b'\\' | b'&') {
            continue;
        }
        at.clear();
        at.push(start);
        for &want in secret {
            next.clear();
            for &p in &at {
                step(bytes, p, want, &mut next);
            }
            next.sort_unstable();
            next.dedup();
            std::mem::swap(&mut at, &mut next);
            if at.is_empty() {
                break;
            }
        }
        if let Some(&end) = at.last()
            && hay.is_char_boundary(start)
            && hay.is_char_boundary(end)
        {
            return Some((start, end));
        }
    }
    None
}

/// Where the text continues after `want` read at `p`, for each way it can be written there.
fn step(hay: &[u8], p: usize, want: u8, out: &mut Vec<usize>) {
    let rest = &hay[p.min(hay.len())..];
    let Some(&c) = rest.first() else { return };
    if c == want {
        out.push(p + 1);
    }
    match c {
        b'%' if rest.len() >= 3 && hex(&rest[1..3]) == Some(want) => out.push(p + 3),
        b'+' if want == b' ' => out.push(p + 1),
        b'\\' if rest.get(1) == Some(&want) => out.push(p + 2),
        b'\\'
            if rest.len() >= 6 && rest[1] == b'u' && hex(&rest[2..4]) == Some(0) && hex(&rest[4..6]) == Some(want) =>
        {
            out.push(p + 6)
        }
        b'&' => {
            if let Some(len) = entity(rest, want) {
                out.push(p + len);
            }
        }
        _ => {}
    }
}

/// Two hex digits, either case.
fn hex(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(two[0])? * 16 + digit(two[1])?) as u8)
}

/// The length of an HTML entity for the ASCII byte `want` at the start of `rest`: named
/// (`&amp;`) or numeric (`&#39;`, `&#x27;`).
fn entity(rest: &[u8], want: u8) -> Option<usize> {
    let semi = rest.iter().take(8).position(|&c| c == b';')?;
    let body = std::str::from_utf8(&rest[1..semi]).ok()?;
    let value = match body {
        "amp" => b'&' as u32,
        "lt" => b'<' as u32,
        "gt" => b'>' as u32,
        "quot" => b'"' as u32,
        "apos" => b'\'' as u32,
        _ => match body.strip_prefix('#')? {
            h if h.starts_with(['x', 'X']) => u32::from_str_radix(&h[1..], 16).ok()?,
            d => d.parse().ok()?,
        },
    };
    (want.is_ascii() && value == want as u32).then_some(semi + 1)
}
