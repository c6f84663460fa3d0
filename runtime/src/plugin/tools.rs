//! The tools a plugin of the `tools` world offers Claude, read from its
//! `tools` export once per loaded version and checked: names valid and
//! distinct, input schemas JSON object schemas.

use serde::{Deserialize, Serialize};

/// The most tools one plugin may offer.
pub const MAX_TOOLS: usize = 64;

/// The largest input schema or description kept, in bytes.
const MAX_TOOL_TEXT: usize = 16 << 10;

/// One tool a tools plugin offers, as checked when the plugin was loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name within the plugin.
    pub name: String,
    /// What it does, for Claude.
    pub description: String,
    /// The JSON Schema of its input: an object schema.
    pub input_schema: serde_json::Map<String, serde_json::Value>,
}

impl ToolSpec {
    /// Checks the list a plugin's `tools` export gave: names valid and
    /// distinct, schemas JSON objects of type `object`, at most `MAX_TOOLS`.
    pub fn checked(
        offered: impl IntoIterator<Item = (String, String, String)>,
    ) -> Result<Vec<ToolSpec>, String> {
        let mut tools: Vec<ToolSpec> = Vec::new();
        for (name, description, schema) in offered {
            if tools.len() == MAX_TOOLS {
                return Err(format!("it offers more than {MAX_TOOLS} tools"));
            }
            if !valid_name(&name) {
                return Err(format!(
                    "tool name `{}` is not 1 to 64 of a-z, A-Z, 0-9, `_` and `-`",
                    name.escape_debug()
                ));
            }
            if tools.iter().any(|t| t.name == name) {
                return Err(format!("it offers the tool `{name}` twice"));
            }
            if description.len() > MAX_TOOL_TEXT || schema.len() > MAX_TOOL_TEXT {
                return Err(format!(
                    "tool `{name}`: its description or schema is over {} KiB",
                    MAX_TOOL_TEXT >> 10
                ));
            }
            let input_schema = match serde_json::from_str::<serde_json::Value>(&schema) {
                Ok(serde_json::Value::Object(schema))
                    if schema.get("type").and_then(|t| t.as_str()) == Some("object") =>
                {
                    schema
                }
                Ok(_) => {
                    return Err(format!(
                        "tool `{name}`: its input schema is not an object schema (`{{\"type\": \"object\", ...}}`)"
                    ))
                }
                Err(e) => return Err(format!("tool `{name}`: its input schema is not JSON: {e}")),
            };
            tools.push(ToolSpec {
                name,
                description,
                input_schema,
            });
        }
        Ok(tools)
    }
}

/// Whether `name` may name a tool (what the Messages API and MCP clients
/// accept).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, schema: &str) -> (String, String, String) {
        (name.into(), "does a thing".into(), schema.into())
    }

    const OBJECT: &str = r#"{"type": "object", "properties": {"name": {"type": "string"}}}"#;

    #[test]
    fn a_list_of_valid_tools_is_kept_with_its_schemas() {
        let tools =
            ToolSpec::checked([tool("lookup_customer", OBJECT), tool("create-lead", OBJECT)]).unwrap();
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0].input_schema["properties"]["name"]["type"], "string");
    }

    #[test]
    fn bad_names_twins_and_schemas_refuse_the_list_naming_the_tool() {
        for (offered, wanted) in [
            (vec![tool("has space", OBJECT)], "tool name `has space` is not"),
            (vec![tool("", OBJECT)], "tool name `` is not"),
            (
                vec![tool("a", OBJECT), tool("a", OBJECT)],
                "offers the tool `a` twice",
            ),
            (
                vec![tool("a", "{not json")],
                "tool `a`: its input schema is not JSON",
            ),
            (
                vec![tool("a", r#"{"type": "string"}"#)],
                "tool `a`: its input schema is not an object schema",
            ),
            (vec![tool("a", "[]")], "not an object schema"),
        ] {
            let error = ToolSpec::checked(offered).unwrap_err();
            assert!(error.contains(wanted), "{error}");
        }
        let many = (0..=MAX_TOOLS).map(|i| tool(&format!("t{i}"), OBJECT));
        assert!(ToolSpec::checked(many).unwrap_err().contains("more than 64"));
    }
}
