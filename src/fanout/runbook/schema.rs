//! docs/runbook.schema.json, generated from the runbook's Rust types.
//!
//! The keys come from serde itself: [`fields_of`] asks the derived `Deserialize` of the raw
//! types which fields it accepts (the same list `deny_unknown_fields` enforces), so a key added
//! to the types and not described here shows up as an empty schema and fails the test. The
//! choices (toolkits, profiles, runtimes) come from the same enums the flags and the `when:`
//! parser use. `UPDATE_SCHEMA=1 cargo test runbook` rewrites the file; the test fails while
//! the committed file differs from what this emits.

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_json::{Map, Value, json};

use super::when::{Fact, RUNTIMES};
use super::{RawRunbook, RawStep};
use crate::session::profile::Profile;
use crate::toolkit::catalog::ToolkitArg;

pub const SCHEMA_FILE: &str = "docs/runbook.schema.json";

/// The fields a derived `Deserialize` of a struct accepts, asked of serde itself.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs are introspected"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("introspected"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn names<T: clap::ValueEnum>() -> Vec<String> {
    T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|v| v.get_name().to_string())
        .collect()
}

/// The schema of one key of the runbook mapping.
fn runbook_key(key: &str) -> Value {
    match key {
        "name" => json!({
            "description": "What the runbook is called; shown in results.",
            "type": "string", "minLength": 1
        }),
        "description" => json!({
            "description": "Free text for the reader.",
            "type": "string"
        }),
        "toolkit" => json!({
            "description": "Which of our debug images runs the steps (as --toolkit; auto: per pod, the one that fits its runtime). Flags override it.",
            "enum": names::<ToolkitArg>()
        }),
        "image" => json!({
            "description": "Any image instead of ours (as --image): it needs `sh` and `sleep`; `when` and `collect` need one of our toolkits.",
            "type": "string", "pattern": "^\\S+$"
        }),
        "profile" => json!({
            "description": "Security profile of the debug container (as --profile).",
            "enum": names::<Profile>()
        }),
        "timeout" => json!({
            "description": "Per pod: the debug container's start plus every step. Default 2m; --timeout overrides it.",
            "$ref": "#/$defs/duration"
        }),
        "steps" => json!({
            "description": "Run in order within a pod; a failing step that is not allowed to fail skips the rest.",
            "type": "array", "minItems": 1,
            "items": { "$ref": "#/$defs/step" }
        }),
        _ => json!({}),
    }
}

fn step_key(key: &str) -> Value {
    match key {
        "name" => json!({
            "description": "Unique in the runbook; names the step's files under --out-dir.",
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
        }),
        "run" => json!({
            "description": "A command in the debug container: a string runs with `sh -c`, a list is an argv. The target's filesystem is at /target.",
            "oneOf": [
                { "type": "string", "minLength": 1 },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        }),
        "collect" => json!({
            "description": "An absolute path in the target's filesystem (file or directory), copied to --out-dir.",
            "type": "string", "pattern": "^/"
        }),
        "timeout" => json!({
            "description": "Limit for this step; past it the step counts as failed.",
            "$ref": "#/$defs/duration"
        }),
        "allow_failure" => json!({
            "description": "A failure of this step is reported but does not fail the run.",
            "type": "boolean", "default": false
        }),
        "when" => json!({
            "description": format!(
                "Run the step only if this holds for the agent's facts about the target: comparisons of {} with `==`, `!=` or `in [...]`, joined by `&&` and `||`; runtime is one of {}.",
                Fact::ALL.map(Fact::name).join(", "),
                RUNTIMES.join(", ")
            ),
            "type": "string", "minLength": 1,
            "examples": ["runtime == \"jvm\"", "runtime in [\"go\", \"node\"] && uid != 0"]
        }),
        _ => json!({}),
    }
}

fn object(fields: &[&str], describe: fn(&str) -> Value, required: &[&str]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.to_string(), describe(f)))
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

/// The JSON Schema (draft 2020-12) of a runbook file.
pub fn schema() -> Value {
    let mut root = object(fields_of::<RawRunbook>(), runbook_key, &["name", "steps"]);
    let mut step = object(fields_of::<RawStep>(), step_key, &["name"]);
    // Exactly one of run and collect.
    step["oneOf"] = json!([
        { "required": ["run"], "not": { "required": ["collect"] } },
        { "required": ["collect"], "not": { "required": ["run"] } }
    ]);
    root["not"] = json!({ "required": ["toolkit", "image"] });
    let mut document = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/distroless-debug/kubectl-distroless-debug/docs/runbook.schema.json",
        "title": "kubectl distroless-debug runbook",
        "description": "Diagnostic steps run in a debug container next to each selected pod (docs/runbooks.md). Generated from src/fanout/runbook.rs: do not edit.",
    });
    if let (Some(document), Some(root)) = (document.as_object_mut(), root.as_object()) {
        document.extend(root.clone());
    }
    document["$defs"] = json!({
        "step": step,
        "duration": {
            "description": "A duration: 90s, 15m, 1h30m, 500ms (units h, m, s, ms).",
            "type": "string",
            "pattern": "^([0-9]+(h|m|s|ms))+$"
        }
    });
    document
}

/// The schema as committed: pretty JSON with a final newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_serde_accepts_is_described() {
        assert_eq!(
            fields_of::<RawRunbook>(),
            [
                "name",
                "description",
                "toolkit",
                "image",
                "profile",
                "timeout",
                "steps"
            ]
        );
        for field in fields_of::<RawRunbook>() {
            assert_ne!(runbook_key(field), json!({}), "runbook key {field}");
        }
        for field in fields_of::<RawStep>() {
            assert_ne!(step_key(field), json!({}), "step key {field}");
        }
    }

    #[test]
    fn the_committed_schema_is_what_the_types_generate() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_FILE);
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, schema_text())
                .unwrap_or_else(|e| panic!("write {SCHEMA_FILE}: {e}"));
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == schema_text(),
            "{SCHEMA_FILE} is stale: run `UPDATE_SCHEMA=1 cargo test runbook` and commit it"
        );
    }

    #[test]
    fn the_schema_offers_the_same_choices_as_the_flags() {
        let s = schema();
        assert_eq!(
            s["properties"]["toolkit"]["enum"],
            json!(["auto", "base", "net", "full", "jvm", "python", "go", "node"])
        );
        assert!(
            s["properties"]["profile"]["enum"]
                .as_array()
                .is_some_and(|p| p.contains(&json!("auto")) && p.contains(&json!("sysadmin")))
        );
        assert_eq!(s["$defs"]["step"]["required"], json!(["name"]));
    }
}
