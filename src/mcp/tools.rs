//! The tool table: each tool of the catalog with its input JSON Schema, read from the OpenAPI
//! document's operation for its route, and how a call's arguments map onto that route. The
//! document is the one `GET /api/v1/openapi.json` serves, built from the same route table and
//! the same request-body schemas the server validates against, so a tool cannot take what its
//! route refuses. This module reads the document as JSON and nothing else of it; the caller
//! builds it (`api::openapi::document`).
//!
//! A tool's arguments are the operation's path and query parameters and the request body's
//! properties, side by side in one object; `org_id` is left out (it is the caller's key's
//! organisation), and so are the fields a tool sets itself. A create takes one more argument,
//! `idempotency_key`, sent as the `Idempotency-Key` header.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::mcp::catalog::{CATALOG, Effect, ORG_PARAMETER, ToolDef};

/// The argument a create sends as the `Idempotency-Key` header.
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";

/// Keywords of a request body's own object that cannot be said of the tool's argument object,
/// which also holds the path and query parameters: the widget's "at least one property" and its
/// refused property names (`project_id` is one of them, as a body key). The server still
/// checks them and answers a tool error.
pub const BODY_ONLY_KEYWORDS: &[&str] = &["minProperties", "propertyNames"];

/// Where one argument goes in the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    Path,
    Query,
    Body,
}

/// One tool, ready to list and to call.
pub struct Tool {
    pub def: &'static ToolDef,
    /// The input JSON Schema (`{"type": "object", …}`).
    pub input_schema: Map<String, Value>,
    /// The operation's path and query parameters, by name.
    pub parameters: Vec<(String, Place)>,
    /// Whether the route reads a body: arguments that are no parameter go there.
    pub has_body: bool,
}

impl Tool {
    pub fn name(&self) -> &'static str {
        self.def.name
    }

    /// Where an argument of this name goes.
    pub fn place(&self, name: &str) -> Option<Place> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, place)| place.clone())
            .or(self.has_body.then_some(Place::Body))
    }

    pub fn takes_idempotency_key(&self) -> bool {
        self.def.effect == Effect::Create
    }
}

/// Every tool of the catalog, with its schema.
pub struct ToolTable {
    pub tools: Vec<Tool>,
}

impl ToolTable {
    /// Builds each tool's schema from `document`, the OpenAPI document as JSON. Fails when a
    /// tool's route is missing from it or its schema cannot be turned into a tool's.
    pub fn from_openapi(document: &Value) -> Result<ToolTable, String> {
        let tools = CATALOG
            .iter()
            .map(|def| tool(document, def).map_err(|e| format!("tool {}: {e}", def.name)))
            .collect::<Result<_, _>>()?;
        Ok(ToolTable { tools })
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name() == name)
    }

    /// The tools as a Markdown table (docs/mcp.md, `rogeriq mcp --list-tools`): name, purpose,
    /// route, arguments (required ones in bold) and hints.
    pub fn markdown(&self) -> String {
        let mut text = String::from(
            "| tool | what it does | API route | arguments (**required**) | hints |\n\
             |---|---|---|---|---|\n",
        );
        for tool in &self.tools {
            let required: Vec<&str> = tool
                .input_schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let arguments: Vec<String> = tool
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, _)| {
                    if required.contains(&name.as_str()) {
                        format!("**`{name}`**")
                    } else {
                        format!("`{name}`")
                    }
                })
                .collect();
            let mut route = format!("`{} {}`", tool.def.method, tool.def.path);
            for (name, value) in tool.def.fixed {
                route.push_str(&format!(" with `{name}: {value}`"));
            }
            text.push_str(&format!(
                "| `{}` | {} | {route} | {} | {} |\n",
                tool.name(),
                tool.def.description,
                if arguments.is_empty() {
                    "—".to_string()
                } else {
                    arguments.join(", ")
                },
                tool.def.effect.hints(),
            ));
        }
        text
    }
}

/// The operation of `method path` in the document.
pub fn operation<'d>(document: &'d Value, method: &str, path: &str) -> Option<&'d Value> {
    document["paths"]
        .get(path)?
        .get(method.to_ascii_lowercase())
}

/// The JSON Schema of a route's request body, with the component it names resolved.
pub fn request_body_schema(document: &Value, operation: &Value) -> Option<Value> {
    let schema = operation
        .get("requestBody")?
        .pointer("/content/application~1json/schema")?;
    Some(resolve(document, schema))
}

fn resolve(document: &Value, schema: &Value) -> Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/"))
    {
        Some(pointer) => document
            .pointer(&format!("/{pointer}"))
            .cloned()
            .unwrap_or(Value::Null),
        None => schema.clone(),
    }
}

/// A body schema as an object's own part (its properties and required names) and the further
/// constraints of an `allOf` beside it.
pub struct SplitBody {
    pub properties: Map<String, Value>,
    pub required: Vec<String>,
    pub constraints: Vec<Value>,
}

/// Splits a body schema: either an object, or `allOf` of an object and constraints.
pub fn split_body(body: &Value) -> Result<SplitBody, String> {
    let (own, constraints) = match body.get("allOf").and_then(Value::as_array) {
        Some(all) => {
            let (first, rest) = all.split_first().ok_or("an empty allOf")?;
            (first, rest.to_vec())
        }
        None => (body, Vec::new()),
    };
    let known = ["type", "properties", "required", "description", "allOf"];
    if let Some(object) = own.as_object()
        && let Some(other) = object
            .keys()
            .find(|k| !known.contains(&k.as_str()) && !BODY_ONLY_KEYWORDS.contains(&k.as_str()))
    {
        return Err(format!(
            "the body schema has a keyword no tool can take: {other}"
        ));
    }
    let properties = own["properties"].as_object().cloned().unwrap_or_default();
    let required = own["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(SplitBody {
        properties,
        required,
        constraints,
    })
}

/// Whether `constraint`, an `anyOf` of alternatives, has one that only requires fields of
/// `fixed`.
fn satisfied_by(constraint: &Value, fixed: &[(&str, &str)]) -> bool {
    let requires_only_fixed = |alternative: &Value| {
        let required = alternative["required"].as_array();
        alternative
            .as_object()
            .is_some_and(|a| a.keys().all(|k| k == "type" || k == "required"))
            && required.is_some_and(|names| {
                !names.is_empty()
                    && names
                        .iter()
                        .all(|n| fixed.iter().any(|(f, _)| n.as_str() == Some(*f)))
            })
    };
    constraint["anyOf"]
        .as_array()
        .is_some_and(|alternatives| alternatives.iter().any(requires_only_fixed))
}

fn tool(document: &Value, def: &'static ToolDef) -> Result<Tool, String> {
    let op = operation(document, def.method, def.path)
        .ok_or_else(|| format!("no operation {} {} in the document", def.method, def.path))?;
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut parameters = Vec::new();
    for parameter in op["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"]
            .as_str()
            .ok_or("a parameter without a name")?;
        let place = match parameter["in"].as_str() {
            Some("path") => Place::Path,
            Some("query") => Place::Query,
            // `Idempotency-Key`: a create's `idempotency_key` argument, added below.
            Some("header") => continue,
            other => return Err(format!("parameter {name} in {other:?}")),
        };
        parameters.push((name.to_string(), place.clone()));
        if place == Place::Path && name == ORG_PARAMETER {
            continue;
        }
        properties.insert(name.to_string(), parameter["schema"].clone());
        if parameter["required"] == true {
            required.push(name.to_string());
        }
    }
    let body = request_body_schema(document, op);
    let mut constraints = Vec::new();
    if let Some(body) = &body {
        let split = split_body(body)?;
        let body_required = op["requestBody"]["required"] == true;
        for (name, schema) in split.properties {
            if properties.contains_key(&name) {
                return Err(format!("{name} is both a parameter and a body field"));
            }
            properties.insert(name, schema);
        }
        if body_required {
            required.extend(split.required);
        }
        constraints = split.constraints;
    }
    for (name, _) in def.fixed {
        if properties.remove(*name).is_none() {
            return Err(format!("the fixed field {name} is not in the body"));
        }
        required.retain(|r| r != name);
    }
    // A constraint the fixed fields satisfy ("at least one field" of a PATCH) asks nothing of
    // the arguments.
    constraints.retain(|constraint| !satisfied_by(constraint, def.fixed));
    if def.effect == Effect::Create {
        properties.insert(
            IDEMPOTENCY_KEY.into(),
            json!({
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "description": "Sent as the Idempotency-Key header: a retry with the same key \
                                does not create a second object.",
            }),
        );
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    let unique: BTreeSet<&String> = required.iter().collect();
    if unique.len() != required.len() {
        return Err("a required name twice".into());
    }
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    if !constraints.is_empty() {
        schema.insert("allOf".into(), Value::Array(constraints));
    }
    Ok(Tool {
        def,
        input_schema: schema,
        parameters,
        has_body: body.is_some(),
    })
}
