//! The answers every operation can give besides its own, added to the OpenAPI document in one
//! place so that the document stays true without each handler repeating them: problem bodies
//! are `application/problem+json`; an operation with a body can be refused as malformed (400),
//! too large (413), of another media type (415) or invalid (422); one with parameters as
//! invalid (422), with query parameters as too long a URI (414); one with path parameters as
//! naming nothing (404); a protected one without a session (401) or, for staff and admin
//! scopes, without the role (403); every API operation may be rate limited (429) or time out
//! (503).

use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Ref;
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};

use crate::error::PROBLEM_JSON;

/// Writes every checked text field's schema in place (`{"type": "string", "maxLength": N}`)
/// instead of as a reference to a `TextN` component that only says the same: utoipa files each
/// `Text<N>` under a name of its own, and query and header parameters would otherwise point at
/// components nobody registered.
pub fn inline_text_schemas(doc: &mut OpenApi) {
    fn inline(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let max = map
                    .get("$ref")
                    .and_then(|r| r.as_str())
                    .and_then(|r| r.strip_prefix("#/components/schemas/Text"))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(max) = max {
                    map.clear();
                    map.insert("type".into(), "string".into());
                    map.insert("maxLength".into(), max.into());
                } else {
                    map.values_mut().for_each(inline);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(inline),
            _ => {}
        }
    }
    let inlined = serde_json::to_value(&*doc).and_then(|mut value| {
        if let Some(schemas) = value
            .pointer_mut("/components/schemas")
            .and_then(|s| s.as_object_mut())
        {
            schemas.retain(|name, _| {
                !(name.starts_with("Text") && name[4..].chars().all(|c| c.is_ascii_digit()))
            });
        }
        inline(&mut value);
        serde_json::from_value::<OpenApi>(value)
    });
    match inlined {
        Ok(inlined) => *doc = inlined,
        Err(e) => {
            tracing::error!(error = %e, "could not inline the text schemas of the API document")
        }
    }
}

/// See the module doc.
pub struct StandardProblems;

impl Modify for StandardProblems {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let in_api = path.starts_with("/api/v1/");
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                add_standard_problems(operation, in_api);
                problems_as_problem_json(operation);
            }
        }
    }
}

fn add_standard_problems(operation: &mut Operation, in_api: bool) {
    let mut add: Vec<(&str, &str)> = Vec::new();
    let params = operation.parameters.as_deref().unwrap_or_default();
    let has_path_param = params.iter().any(|p| match p {
        RefOr::T(p) => matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path),
        RefOr::Ref(_) => false,
    });
    if operation.request_body.is_some() {
        add.push(("400", "The body is not valid JSON"));
        add.push(("413", "The body is larger than 1 MiB"));
        add.push(("415", "The body is not JSON"));
        add.push(("422", "A field is invalid"));
    }
    if !params.is_empty() {
        add.push(("422", "A parameter is invalid"));
    }
    let has_query_param = params.iter().any(|p| match p {
        RefOr::T(p) => matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query),
        RefOr::Ref(_) => false,
    });
    if has_query_param {
        add.push(("414", "The URI is longer than 8 KiB"));
    }
    if has_path_param {
        add.push(("404", "Nothing has that id"));
    }
    if let Some(requirements) = &operation.security
        && !requirements.is_empty()
    {
        add.push(("401", "No valid access token"));
        let scoped = serde_json::to_value(requirements)
            .map(|v| v.to_string().contains("staff") || v.to_string().contains("admin"))
            .unwrap_or(false);
        if scoped {
            add.push(("403", "The account's role does not allow this"));
        }
    }
    if in_api {
        add.push(("429", "Too many requests from this client"));
        add.push(("503", "The request took too long or a dependency is down"));
    }
    for (status, description) in add {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    }
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

/// Handlers declare `body = Problem`, which utoipa files under `application/json`; the server
/// sends `application/problem+json`.
fn problems_as_problem_json(operation: &mut Operation) {
    for response in operation.responses.responses.values_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let is_problem = response.content.get("application/json").is_some_and(|c| {
            matches!(c, RefOr::T(c)
                if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")))
        });
        if is_problem && let Some(content) = response.content.shift_remove("application/json") {
            response.content.insert(PROBLEM_JSON.to_owned(), content);
        }
    }
}
