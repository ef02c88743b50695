//! Object metadata the server assigns: uids, timestamps, generated name suffixes.

use serde_json::Value;

/// Now as a `metav1.Time` (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Now as a `metav1.MicroTime`.
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// `now + seconds` as a `metav1.Time`.
pub fn rfc3339_in(seconds: i64) -> String {
    let ts = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds elapsed since a `metav1.Time`, if it parses.
pub fn age_seconds(time: &str) -> Option<i64> {
    let ts: jiff::Timestamp = time.parse().ok()?;
    Some(jiff::Timestamp::now().duration_since(ts).as_secs().max(0))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is not something a test double can recover from meaningfully;
    // fall back to the clock so names stay unique enough.
    if getrandom::fill(&mut buf).is_err() {
        let nanos = jiff::Timestamp::now().as_nanosecond().to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = nanos[i % nanos.len()].wrapping_add(i as u8);
        }
    }
    buf
}

/// A random RFC 4122 version 4 uid.
pub fn new_uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Five characters from the alphabet the apiserver uses for `generateName`
/// (k8s.io/apimachinery/pkg/util/rand: no vowels, no confusable digits).
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<16>()
        .iter()
        .take(len)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A random token of hex characters.
pub fn random_hex(bytes: usize) -> String {
    random_bytes::<32>()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn namespace_of(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn resource_version_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
