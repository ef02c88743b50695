//! The `when:` condition of a runbook step, evaluated on the agent's `info -o json` facts.
//!
//! Deliberately tiny: a runbook is read at 3 a.m. by someone who did not write it, so a
//! condition is a few comparisons of a fact with a literal, joined by `&&` and `||` (`&&`
//! binds tighter, no parentheses), e.g. `runtime == "jvm"`, `runtime in ["go", "other"]`,
//! `uid != 0 && runtime == "python"`. Facts are checked when the runbook is read, not when it
//! runs: a typo such as `runtime == "java"` is an error before anything touches the cluster.

use std::fmt;

use serde_json::Value;

/// The runtimes the agent's `info` reports (debug-images/agent, `runtime`).
pub const RUNTIMES: [&str; 5] = ["go", "jvm", "python", "node", "other"];

/// A fact of `info -o json` a condition may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// `go`, `jvm`, `python`, `node` or `other`.
    Runtime,
    /// The target's executable path, e.g. `/app/server`.
    Exe,
    Uid,
    Gid,
}

impl Fact {
    pub const ALL: [Fact; 4] = [Fact::Runtime, Fact::Exe, Fact::Uid, Fact::Gid];

    pub fn name(self) -> &'static str {
        match self {
            Fact::Runtime => "runtime",
            Fact::Exe => "exe",
            Fact::Uid => "uid",
            Fact::Gid => "gid",
        }
    }

    fn is_number(self) -> bool {
        matches!(self, Fact::Uid | Fact::Gid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Text(String),
    Number(i64),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Text(text) => write!(f, "{text:?}"),
            Literal::Number(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    Equal(Literal),
    NotEqual(Literal),
    In(Vec<Literal>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub fact: Fact,
    pub test: Test,
}

/// `any` of (`all` of comparisons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub any: Vec<Vec<Comparison>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Text(String),
    Number(i64),
    Equal,
    NotEqual,
    And,
    Or,
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let two =
            |next: char, token: Token, chars: &mut std::iter::Peekable<std::str::CharIndices>| {
                if chars.next_if(|(_, n)| *n == next).is_some() {
                    Ok(token)
                } else {
                    Err(format!("unexpected {c:?} at offset {at} (write {c}{next})"))
                }
            };
        let token = match c {
            c if c.is_whitespace() => continue,
            '=' => two('=', Token::Equal, &mut chars)?,
            '!' => two('=', Token::NotEqual, &mut chars)?,
            '&' => two('&', Token::And, &mut chars)?,
            '|' => two('|', Token::Or, &mut chars)?,
            '[' => Token::Open,
            ']' => Token::Close,
            ',' => Token::Comma,
            '"' | '\'' => {
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        Some((_, end)) if end == c => break,
                        Some((_, ch)) => literal.push(ch),
                        None => return Err(format!("unclosed quote at offset {at}")),
                    }
                }
                Token::Text(literal)
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut digits = c.to_string();
                while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_digit()) {
                    digits.push(d);
                }
                Token::Number(
                    digits
                        .parse()
                        .map_err(|_| format!("{digits:?} is not a number"))?,
                )
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = c.to_string();
                while let Some((_, w)) =
                    chars.next_if(|(_, w)| w.is_ascii_alphanumeric() || *w == '_')
                {
                    word.push(w);
                }
                Token::Word(word)
            }
            other => return Err(format!("unexpected {other:?} at offset {at}")),
        };
        out.push(token);
    }
    Ok(out)
}

const EXAMPLE: &str = "e.g. `runtime == \"jvm\"`, `runtime in [\"go\", \"node\"]`, `uid != 0`";

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, String> {
        let tokens = tokens(text)?;
        if tokens.is_empty() {
            return Err(format!("an empty condition ({EXAMPLE})"));
        }
        let mut rest = tokens.as_slice();
        let mut any = vec![Vec::new()];
        loop {
            let (comparison, after) = comparison(rest)?;
            if let Some(all) = any.last_mut() {
                all.push(comparison);
            }
            match after.split_first() {
                None => break,
                Some((Token::And, after)) => rest = after,
                Some((Token::Or, after)) => {
                    any.push(Vec::new());
                    rest = after;
                }
                Some((other, _)) => {
                    return Err(format!(
                        "expected `&&`, `||` or the end after a comparison, found {}",
                        shown(other)
                    ));
                }
            }
        }
        Ok(Condition { any })
    }

    /// Whether the condition holds for the agent's `info -o json` document. A fact the
    /// document lacks makes its comparison false, whichever the operator.
    pub fn holds(&self, facts: &Value) -> bool {
        self.any
            .iter()
            .any(|all| all.iter().all(|c| c.holds(facts)))
    }
}

impl Comparison {
    fn holds(&self, facts: &Value) -> bool {
        let value = &facts[self.fact.name()];
        let actual = match value {
            Value::String(s) => Literal::Text(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(n) => Literal::Number(n),
                None => return false,
            },
            _ => return false,
        };
        match &self.test {
            Test::Equal(l) => actual == *l,
            Test::NotEqual(l) => actual != *l,
            Test::In(ls) => ls.contains(&actual),
        }
    }
}

fn shown(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("`{w}`"),
        Token::Text(t) => format!("{t:?}"),
        Token::Number(n) => n.to_string(),
        Token::Equal => "`==`".into(),
        Token::NotEqual => "`!=`".into(),
        Token::And => "`&&`".into(),
        Token::Or => "`||`".into(),
        Token::Open => "`[`".into(),
        Token::Close => "`]`".into(),
        Token::Comma => "`,`".into(),
    }
}

fn comparison(tokens: &[Token]) -> Result<(Comparison, &[Token]), String> {
    let facts = || {
        Fact::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (fact, rest) = match tokens.split_first() {
        Some((Token::Word(word), rest)) => match Fact::ALL.iter().find(|f| f.name() == word) {
            Some(fact) => (*fact, rest),
            None => {
                return Err(format!(
                    "unknown fact `{word}`: a condition can test {}",
                    facts()
                ));
            }
        },
        Some((other, _)) => {
            return Err(format!(
                "expected a fact ({}) but found {} ({EXAMPLE})",
                facts(),
                shown(other)
            ));
        }
        None => return Err(format!("a condition ends too early ({EXAMPLE})")),
    };
    let (test, rest) = match rest.split_first() {
        Some((Token::Equal, rest)) => {
            let (l, rest) = literal(fact, rest)?;
            (Test::Equal(l), rest)
        }
        Some((Token::NotEqual, rest)) => {
            let (l, rest) = literal(fact, rest)?;
            (Test::NotEqual(l), rest)
        }
        Some((Token::Word(w), rest)) if w == "in" => {
            let Some((Token::Open, mut rest)) = rest.split_first() else {
                return Err(format!("`in` takes a list: `{} in [...]`", fact.name()));
            };
            let mut list = Vec::new();
            loop {
                let (l, after) = literal(fact, rest)?;
                list.push(l);
                match after.split_first() {
                    Some((Token::Comma, after)) => rest = after,
                    Some((Token::Close, after)) => {
                        rest = after;
                        break;
                    }
                    _ => return Err("a list is `[` values separated by `,` then `]`".into()),
                }
            }
            (Test::In(list), rest)
        }
        Some((other, _)) => {
            return Err(format!(
                "expected `==`, `!=` or `in` after `{}`, found {}",
                fact.name(),
                shown(other)
            ));
        }
        None => {
            return Err(format!(
                "`{}` needs a comparison: `==`, `!=` or `in`",
                fact.name()
            ));
        }
    };
    Ok((Comparison { fact, test }, rest))
}

fn literal(fact: Fact, tokens: &[Token]) -> Result<(Literal, &[Token]), String> {
    let (literal, rest) = match tokens.split_first() {
        Some((Token::Text(t), rest)) => (Literal::Text(t.clone()), rest),
        Some((Token::Number(n), rest)) => (Literal::Number(*n), rest),
        Some((Token::Word(w), _)) => {
            return Err(format!("`{w}` is not a value: quote text (\"{w}\")"));
        }
        Some((other, _)) => return Err(format!("expected a value, found {}", shown(other))),
        None => return Err(format!("`{}` is compared with nothing", fact.name())),
    };
    match (&literal, fact.is_number()) {
        (Literal::Text(t), true) => Err(format!(
            "`{}` is a number: compare it with one, not {t:?}",
            fact.name()
        )),
        (Literal::Number(n), false) => Err(format!(
            "`{}` is text: quote the value (\"{n}\")",
            fact.name()
        )),
        (Literal::Text(t), false) if fact == Fact::Runtime && !RUNTIMES.contains(&t.as_str()) => {
            Err(format!(
                "the agent reports no runtime {t:?}: it is one of {}",
                RUNTIMES.map(|r| format!("\"{r}\"")).join(", ")
            ))
        }
        _ => Ok((literal, rest)),
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self
            .any
            .iter()
            .map(|all| {
                all.iter()
                    .map(|c| {
                        let name = c.fact.name();
                        match &c.test {
                            Test::Equal(l) => format!("{name} == {l}"),
                            Test::NotEqual(l) => format!("{name} != {l}"),
                            Test::In(ls) => format!(
                                "{name} in [{}]",
                                ls.iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" && ")
            })
            .collect();
        f.write_str(&all.join(" || "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn holds(condition: &str, facts: Value) -> bool {
        Condition::parse(condition)
            .unwrap_or_else(|e| panic!("{condition}: {e}"))
            .holds(&facts)
    }

    #[test]
    fn compares_the_agents_facts() {
        let jvm = json!({"runtime": "jvm", "uid": 65532, "exe": "/usr/bin/java"});
        assert!(holds("runtime == \"jvm\"", jvm.clone()));
        assert!(holds("runtime == 'jvm'", jvm.clone()));
        assert!(!holds("runtime != \"jvm\"", jvm.clone()));
        assert!(holds("runtime in [\"go\", \"jvm\"]", jvm.clone()));
        assert!(holds("uid != 0 && runtime == \"jvm\"", jvm.clone()));
        assert!(!holds("uid == 0 && runtime == \"jvm\"", jvm.clone()));
        assert!(holds("uid == 0 || exe == \"/usr/bin/java\"", jvm.clone()));
        assert!(holds(
            "runtime == \"go\" || runtime == \"jvm\" && uid == 65532",
            jvm
        ));
    }

    #[test]
    fn a_missing_fact_makes_every_comparison_false() {
        assert!(!holds("runtime == \"jvm\"", json!({})));
        assert!(!holds("runtime != \"jvm\"", json!({})));
    }

    #[test]
    fn typos_are_caught_when_the_runbook_is_read() {
        let error = |text: &str| Condition::parse(text).unwrap_err();
        assert!(error("runtime == \"java\"").contains("no runtime \"java\""));
        assert!(error("runtme == \"jvm\"").contains("unknown fact `runtme`"));
        assert!(
            error("runtime = \"jvm\"").contains("write ==")
                || error("runtime = \"jvm\"").contains("==")
        );
        assert!(error("runtime == jvm").contains("quote text"));
        assert!(error("uid == \"0\"").contains("is a number"));
        assert!(error("runtime == \"jvm").contains("unclosed quote"));
        assert!(error("runtime == \"jvm\" and uid == 0").contains("expected `&&`"));
        assert!(error("").contains("empty"));
        assert!(error("runtime in \"jvm\"").contains("takes a list"));
        assert!(error("runtime in [\"jvm\"").contains("a list is"));
        assert!(error("uid == 99999999999999999999").contains("not a number"));
    }

    #[test]
    fn shows_itself_in_canonical_form() {
        let c = Condition::parse("runtime=='jvm'&&uid!=0||runtime in ['go']")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.to_string(),
            "runtime == \"jvm\" && uid != 0 || runtime in [\"go\"]"
        );
    }
}
