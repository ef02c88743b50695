//! The plugin's source layout, held by a test instead of by memory (docs/layout.md).
//!
//! `src/` is split into folders that name layers, bottom to top (`LAYERS`); the crate root
//! `lib.rs` and the files beside it (`TOP`) sit above them all, and the binary (`BINARY`)
//! above the library, calling it only. A module may use its own folder or a folder below, never one above, and no
//! two files may depend on each other, directly or around a longer loop. Both rules read the
//! real module paths: every `use crate::…`, `crate::…::`, `super::…` and child-module path
//! outside `#[cfg(test)]`, resolved to the file that defines the module it names, so a
//! re-export cannot hide an upward import. A third rule keeps each file under
//! `MAX_CODE_LINES` lines of non-test code (blank and comment-only lines not counted).
//!
//! Plain Rust over the source text: comments and literals are blanked first, then test items
//! are cut out, then paths are read from what is left.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The files of the crate root, above the last layer: `lib.rs` (parse, dispatch, exit) and
/// `fuzzing.rs` (the parsers of outside input, opened to the fuzz targets).
const TOP: &[&str] = &["lib.rs", "fuzzing.rs"];

/// The layers of `src/`, bottom to top. The `TOP` files are above the last one.
const LAYERS: &[&str] = &[
    "base", "kube", "output", "toolkit", "session", "transfer", "fanout", "cmd",
];

/// The most lines of non-test code one file of `src/` may hold (STYLE.md, rule 13).
const MAX_CODE_LINES: usize = 600;

#[test]
fn imports_go_down_the_layers_and_never_round_a_cycle() {
    let tree = SourceTree::read(&src_dir());
    let mut problems = Vec::new();
    problems.extend(tree.layer_violations());
    problems.extend(tree.cycles());
    assert!(
        problems.is_empty(),
        "the layout of src/ breaks its rules (docs/layout.md; layers bottom to top: {}, then lib.rs):\n{}",
        LAYERS.join(" → "),
        problems.join("\n")
    );
}

#[test]
fn no_file_passes_the_line_limit() {
    let tree = SourceTree::read(&src_dir());
    let long: Vec<String> = tree
        .files
        .iter()
        .filter(|(_, file)| file.code_lines > MAX_CODE_LINES)
        .map(|(path, file)| {
            format!(
                "{path} has {} lines of non-test code (at most {MAX_CODE_LINES}): split it along a seam",
                file.code_lines
            )
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}

/// The checker checks: each rule fails on a small tree that breaks it.
#[test]
fn the_rules_catch_what_they_are_for() {
    let dir = std::env::temp_dir().join(format!("layers-test-{}", std::process::id()));
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "lib.rs",
        "mod base;\nmod kube;\nuse crate::kube::client::Cluster;\n",
    );
    write("base/mod.rs", "pub mod error;\npub mod exit;\n");
    // Upward, hidden in a group, past a string and a comment that only look like imports.
    write(
        "base/error.rs",
        "// use crate::kube::nothing;\nconst S: &str = \"crate::kube::x\";\nuse crate::{kube::client::{Cluster}, base::exit};\n#[cfg(test)]\nmod tests { use crate::kube::client::Test; }\n",
    );
    write("base/exit.rs", "pub fn f() { super::error::g(); }\n");
    write("kube/mod.rs", "pub mod client;\n");
    write("kube/client.rs", "use crate::base::error::Error;\n");
    let tree = SourceTree::read(&dir);
    let layers = tree.layer_violations();
    let cycles = tree.cycles();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        layers,
        [
            "base/error.rs uses crate::kube::client::Cluster, from layer kube, above its own layer base"
        ]
    );
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].contains("base/error.rs → base/exit.rs (crate::base::exit)")
            && cycles[0].contains("base/exit.rs → base/error.rs (super::error::g)"),
        "{}",
        cycles[0]
    );
}

/// The plugin's binary, under `src/`: the library's `main` and nothing else.
const BINARY: &str = "bin/kubectl-distroless_debug.rs";

/// The binary is the library's: it declares no module of its own and reaches nothing but the
/// library's `main`.
#[test]
fn the_binary_only_calls_the_library() {
    let problems = binary_problems(&src_dir().join(BINARY));
    assert!(problems.is_empty(), "src/{BINARY}: {}", problems.join("; "));
    // The check checks: a binary with a module of its own and a path of its own fails.
    let dir = std::env::temp_dir().join(format!("layers-main-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("main.rs");
    std::fs::write(
        &file,
        "mod base;\nuse crate::base::exit;\nfn main() { kubectl_distroless_debug::main(); }\n",
    )
    .unwrap();
    let problems = binary_problems(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        problems,
        [
            "it declares `mod base;` (modules belong to the library, src/lib.rs)",
            "it uses `crate::…` (it may only call kubectl_distroless_debug::main)"
        ]
    );
}

/// What is wrong with `file` as the thin binary over the library.
fn binary_problems(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let tokens = tokenize(&without_test_items(&blank_comments_and_literals(&text)));
    let mut problems: Vec<String> = declared_modules(&tokens)
        .iter()
        .map(|m| format!("it declares `mod {m};` (modules belong to the library, src/lib.rs)"))
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Ident(word) = token else { continue };
        let starts_path =
            tokens.get(i + 1) == Some(&Token::Path) && (i == 0 || tokens[i - 1] != Token::Path);
        if starts_path && !matches!(word.as_str(), "std" | "kubectl_distroless_debug") {
            problems.push(format!(
                "it uses `{word}::…` (it may only call kubectl_distroless_debug::main)"
            ));
        }
    }
    let calls_main = tokens.windows(3).any(|w| {
        w == [
            Token::Ident("kubectl_distroless_debug".into()),
            Token::Path,
            Token::Ident("main".into()),
        ]
    });
    if !calls_main {
        problems.push("it does not call kubectl_distroless_debug::main".into());
    }
    problems
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// One file of the module tree, as the rules see it.
struct SourceFile {
    /// Its module path from the crate root (`["kube", "cluster"]`).
    module: Vec<String>,
    /// Every path it uses outside test code, with the path as written.
    uses: Vec<(Vec<String>, String)>,
    code_lines: usize,
}

/// The non-test module tree reached from `lib.rs`, keyed by path under `src/`.
struct SourceTree {
    files: BTreeMap<String, SourceFile>,
}

impl SourceTree {
    fn read(src: &Path) -> SourceTree {
        let mut files = BTreeMap::new();
        let mut pending = vec![(PathBuf::from("lib.rs"), Vec::<String>::new())];
        while let Some((relative, module)) = pending.pop() {
            let text = std::fs::read_to_string(src.join(&relative))
                .unwrap_or_else(|e| panic!("cannot read src/{}: {e}", relative.display()));
            let code = without_test_items(&blank_comments_and_literals(&text));
            let tokens = tokenize(&code);
            let children = declared_modules(&tokens);
            // lib.rs and mod.rs hold their children beside them, other files in a folder
            // named after themselves.
            let own_dir = match relative.file_name().and_then(|n| n.to_str()) {
                Some("lib.rs" | "mod.rs") => relative.parent().unwrap().to_path_buf(),
                _ => relative.with_extension(""),
            };
            for child in &children {
                let flat = own_dir.join(format!("{child}.rs"));
                let nested = own_dir.join(child).join("mod.rs");
                let found = if src.join(&flat).exists() {
                    flat
                } else {
                    nested
                };
                let mut child_module = module.clone();
                child_module.push(child.clone());
                pending.push((found, child_module));
            }
            let uses = paths_used(&tokens, &module, &children);
            let code_lines = code.lines().filter(|l| !l.trim().is_empty()).count();
            let key = relative.to_string_lossy().replace('\\', "/");
            files.insert(
                key,
                SourceFile {
                    module,
                    uses,
                    code_lines,
                },
            );
        }
        SourceTree { files }
    }

    /// The file that defines the longest known module prefix of `path`.
    fn file_of(&self, path: &[String]) -> Option<&str> {
        self.files
            .iter()
            .filter(|(_, f)| path.starts_with(&f.module))
            .max_by_key(|(_, f)| f.module.len())
            .map(|(k, _)| k.as_str())
    }

    /// Each file's dependencies on other files, with the first path that makes each one.
    fn edges(&self) -> BTreeMap<&str, BTreeMap<&str, &str>> {
        let mut edges: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        for (name, file) in &self.files {
            let out = edges.entry(name.as_str()).or_default();
            for (path, written) in &file.uses {
                if let Some(target) = self.file_of(path)
                    && target != name
                {
                    out.entry(target).or_insert(written.as_str());
                }
            }
        }
        edges
    }

    fn layer_violations(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, file) in &self.files {
            let Some(own) = layer_of(name) else {
                problems.push(format!(
                    "{name} is in no layer folder: move it under one of {}",
                    LAYERS.join(", ")
                ));
                continue;
            };
            for (path, written) in &file.uses {
                let Some(target) = self.file_of(path) else {
                    continue;
                };
                let Some(theirs) = layer_of(target) else {
                    continue;
                };
                if theirs > own {
                    problems.push(format!(
                        "{name} uses {written}, from layer {}, above its own layer {}",
                        layer_name(theirs),
                        layer_name(own)
                    ));
                }
            }
        }
        problems
    }

    /// Every set of files that depend on each other, with the imports that close the loop.
    fn cycles(&self) -> Vec<String> {
        let edges = self.edges();
        let mut problems = Vec::new();
        for component in strongly_connected(&edges) {
            if component.len() < 2 {
                continue;
            }
            let members: BTreeSet<&str> = component.iter().copied().collect();
            let mut text = format!("import cycle between {}:", component.join(", "));
            for from in &component {
                for (to, written) in &edges[from] {
                    if members.contains(to) {
                        let _ = write!(text, "\n    {from} → {to} ({written})");
                    }
                }
            }
            problems.push(text);
        }
        problems
    }
}

/// The layer index of a file under `src/`: its top folder, or above all of them for the
/// `TOP` files.
fn layer_of(file: &str) -> Option<usize> {
    if TOP.contains(&file) {
        return Some(LAYERS.len());
    }
    let (folder, _) = file.split_once('/')?;
    LAYERS.iter().position(|l| *l == folder)
}

fn layer_name(index: usize) -> &'static str {
    LAYERS.get(index).copied().unwrap_or("lib.rs")
}

/// Tarjan's algorithm; components come out in a stable order, each sorted.
fn strongly_connected<'a>(
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
        s: &mut State<'a>,
    ) {
        let i = s.index.len();
        s.index.insert(node, i);
        s.low.insert(node, i);
        s.stack.push(node);
        s.on_stack.insert(node);
        for next in edges.get(node).into_iter().flat_map(|m| m.keys()) {
            if !s.index.contains_key(next) {
                visit(next, edges, s);
                let low = s.low[node].min(s.low[next]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next) {
                let low = s.low[node].min(s.index[next]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for node in edges.keys() {
        if !s.index.contains_key(node) {
            visit(node, edges, &mut s);
        }
    }
    s.out.sort();
    s.out
}

/// The source with comments and the insides of string and char literals turned to spaces,
/// newlines kept, so that nothing inside them reads as code.
fn blank_comments_and_literals(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        if c[i] == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if (c[i] == 'r' || (c[i] == 'b' && at(i + 1) == 'r'))
            && !is_ident(at(i.wrapping_sub(1)))
            && {
                let mut k = i + if c[i] == 'b' { 2 } else { 1 };
                while at(k) == '#' {
                    k += 1;
                }
                at(k) == '"'
            }
        {
            // A raw string: r#"…"# with as many hashes at the end as at the start.
            let mut k = i + if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(k) == '#' {
                hashes += 1;
                k += 1;
            }
            out.extend(&c[i..=k]);
            i = k + 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                    out.extend(&c[i..=i + hashes]);
                    i += hashes + 1;
                    break;
                }
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            // A char literal (a lifetime has no closing quote right after one char).
            out.push('\'');
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            }
            out.push('\'');
            i += 1;
        } else {
            if is_ident(c[i]) {
                // Copy a whole word so that an `r` or `b` inside it never starts a literal.
                while i < c.len() && is_ident(c[i]) {
                    out.push(c[i]);
                    i += 1;
                }
                continue;
            }
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// Blanks each item under `#[cfg(test)]` (its attributes, then up to its `;` or its closing
/// brace). Expects comments and literals already blanked.
fn without_test_items(code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= c.len() {
        if c[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut k = i + marker.len();
        let mut depth = 0usize;
        while k < c.len() {
            match c[k] {
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 && c[k] == '}' {
                        break;
                    }
                }
                ';' if depth == 0 => break,
                _ => {}
            }
            k += 1;
        }
        let end = (k + 1).min(c.len());
        for ch in &mut c[start..end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = k + 1;
    }
    c.into_iter().collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    /// `::`
    Path,
}

fn tokenize(code: &str) -> Vec<Token> {
    let c: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if is_ident(c[i]) {
            let start = i;
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            tokens.push(Token::Ident(c[start..i].iter().collect()));
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            tokens.push(Token::Path);
            i += 2;
        } else {
            if !c[i].is_whitespace() {
                tokens.push(Token::Punct(c[i]));
            }
            i += 1;
        }
    }
    tokens
}

/// The names of `mod name;` declarations (test ones are already blanked).
fn declared_modules(tokens: &[Token]) -> Vec<String> {
    tokens
        .windows(3)
        .filter_map(|w| match w {
            [Token::Ident(m), Token::Ident(name), Token::Punct(';')] if m == "mod" => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
}

/// Every path this file uses into the crate, made absolute: `crate::…`, `super::…`,
/// `self::…` and paths that start with one of its own child modules, use-groups expanded.
fn paths_used(
    tokens: &[Token],
    module: &[String],
    children: &[String],
) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Ident(word) = token else { continue };
        if i > 0 && tokens[i - 1] == Token::Path {
            continue;
        }
        if tokens.get(i + 1) != Some(&Token::Path) {
            continue;
        }
        let base: Vec<String> = match word.as_str() {
            "crate" => Vec::new(),
            "self" => module.to_vec(),
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            child if children.iter().any(|c| c == child) => {
                let mut base = module.to_vec();
                base.push(child.to_string());
                base
            }
            _ => continue,
        };
        let mut written = vec![word.clone()];
        let mut base = base;
        let mut k = i + 2;
        // `super::super::…`
        while word == "super" && tokens.get(k) == Some(&Token::Ident("super".into())) {
            base.pop();
            written.push("super".into());
            k += 2;
        }
        expand_tree(tokens, k, base, written, &mut out);
    }
    out
}

/// Reads one use-tree (or expression path) starting at `k`, pushing each full path found.
fn expand_tree(
    tokens: &[Token],
    mut k: usize,
    mut path: Vec<String>,
    mut written: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) -> usize {
    loop {
        match tokens.get(k) {
            Some(Token::Ident(segment)) => {
                if segment != "self" {
                    path.push(segment.clone());
                }
                written.push(segment.clone());
                k += 1;
                if tokens.get(k) == Some(&Token::Path) {
                    k += 1;
                    continue;
                }
                out.push((path, written.join("::")));
                return k;
            }
            Some(Token::Punct('{')) => {
                k += 1;
                loop {
                    match tokens.get(k) {
                        Some(Token::Punct('}')) | None => return k + 1,
                        Some(Token::Punct(',')) => k += 1,
                        Some(Token::Ident(_)) | Some(Token::Punct('{')) => {
                            k = expand_tree(tokens, k, path.clone(), written.clone(), out);
                            // Skip an `as name` rename.
                            while let Some(Token::Ident(_)) = tokens.get(k) {
                                k += 1;
                            }
                        }
                        Some(_) => k += 1,
                    }
                }
            }
            _ => {
                // `crate::module::*` or a path cut short: the module itself is used.
                out.push((path, written.join("::")));
                return k;
            }
        }
    }
}
