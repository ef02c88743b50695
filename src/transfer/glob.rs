//! Path patterns for `snapshot --include/--exclude`, matched against paths as the target sees
//! them (`/etc/app/v2/config.yaml`).
//!
//! `*` matches within one path component, `?` one character of it, `**` any number of
//! whole components (also none). A pattern starting with `/` is anchored at the root; one
//! without any `/` (`*.log`, `node_modules`) matches a name anywhere, as in .gitignore; other
//! relative patterns are anchored at the root. A trailing `/` is ignored: a pattern that
//! matches a directory covers everything below it, which the callers decide.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    /// Components of the pattern; an unanchored name pattern is `["**", name]`.
    parts: Vec<String>,
}

impl Glob {
    pub fn new(text: &str) -> Result<Glob, String> {
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(format!(
                "{text:?} is not a pattern (an empty one would match everything)"
            ));
        }
        if trimmed.contains('\0') {
            return Err(format!("{text:?} contains a NUL byte"));
        }
        let mut parts: Vec<String> = trimmed
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(String::from)
            .collect();
        if parts.iter().any(|p| p == "..") {
            return Err(format!("{text:?}: `..` has no meaning in a pattern"));
        }
        if parts.iter().any(|p| p.contains("**") && p != "**") {
            return Err(format!(
                "{text:?}: `**` must be a whole component (`/var/**/x.log`)"
            ));
        }
        if !trimmed.contains('/') {
            parts.insert(0, "**".into());
        }
        Ok(Glob {
            text: text.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A pattern without wildcards names one path; the agent can then skip it at the
    /// source instead of sending it to be dropped here.
    pub fn literal_path(&self) -> Option<String> {
        let wild = |p: &String| p.contains(['*', '?']);
        if self.parts.iter().any(wild) {
            return None;
        }
        Some(format!("/{}", self.parts.join("/")))
    }

    /// Whether `path` (absolute, `/`-separated) matches.
    #[cfg(test)]
    pub fn matches(&self, path: &str) -> bool {
        let names: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let parts: Vec<&str> = self.parts.iter().map(String::as_str).collect();
        match_parts(&parts, &names)
    }

    /// Whether `path` or one of the directories above it matches.
    pub fn covers(&self, path: &str) -> bool {
        let names: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let parts: Vec<&str> = self.parts.iter().map(String::as_str).collect();
        (1..=names.len()).any(|n| match_parts(&parts, &names[..n]))
    }
}

fn match_parts(parts: &[&str], names: &[&str]) -> bool {
    match parts.split_first() {
        None => names.is_empty(),
        Some((&"**", rest)) => (0..=names.len()).any(|skip| match_parts(rest, &names[skip..])),
        Some((part, rest)) => match names.split_first() {
            Some((name, names)) => {
                match_name(part.as_bytes(), name.as_bytes()) && match_parts(rest, names)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one name.
fn match_name(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative with one backtrack point: linear for the usual patterns, never exponential.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                n += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(text: &str) -> Glob {
        Glob::new(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("/etc/app", "/etc/app", true),
            ("/etc/app", "/etc/app/v2", false),
            ("/etc/*", "/etc/passwd", true),
            ("/etc/*", "/etc/app/v2", false),
            ("/etc/**", "/etc/app/v2/config.yaml", true),
            ("/etc/**", "/etc", true),
            ("/var/**/*.log", "/var/log/app/x.log", true),
            ("/var/**/*.log", "/var/x.log", true),
            ("/var/**/*.log", "/var/log/x.txt", false),
            ("*.log", "/deep/down/there/a.log", true),
            ("*.log", "/a.log", true),
            ("*.log", "/a.log/b", false),
            ("node_modules", "/srv/app/node_modules", true),
            ("etc/ssl", "/etc/ssl", true),
            ("etc/ssl", "/usr/etc/ssl", false),
            ("/tmp/", "/tmp", true),
            ("/s?n*", "/sandbox-app", true),
            ("/s?n*", "/s", false),
            ("/*a*b*c", "/xaybzc", true),
            ("/*a*b*c", "/xaybz", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                glob(pattern).matches(path),
                *expected,
                "{pattern} vs {path}"
            );
        }
    }

    #[test]
    fn covers_means_the_path_or_a_directory_above_it() {
        assert!(glob("/etc/app").covers("/etc/app/v2/config.yaml"));
        assert!(glob("/etc/app").covers("/etc/app"));
        assert!(!glob("/etc/app").covers("/etc"));
        assert!(glob("node_modules").covers("/srv/node_modules/x/y.js"));
    }

    #[test]
    fn literal_patterns_can_be_left_to_the_agent() {
        assert_eq!(
            glob("/var/cache/").literal_path().as_deref(),
            Some("/var/cache")
        );
        assert_eq!(glob("etc/ssl").literal_path().as_deref(), Some("/etc/ssl"));
        assert_eq!(glob("/var/*.log").literal_path(), None);
        // A bare name matches anywhere: not one path.
        assert_eq!(glob("node_modules").literal_path(), None);
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        assert!(Glob::new("").unwrap_err().contains("not a pattern"));
        assert!(Glob::new("/").unwrap_err().contains("not a pattern"));
        assert!(Glob::new("/a/../b").unwrap_err().contains("`..`"));
        assert!(Glob::new("/a/x**").unwrap_err().contains("whole component"));
    }

    #[test]
    fn many_stars_do_not_explode() {
        let g = glob(&format!("/{}b", "*a".repeat(30)));
        assert!(!g.matches(&format!("/{}", "a".repeat(200))));
    }
}
