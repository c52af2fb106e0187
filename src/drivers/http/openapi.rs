//! The answers every route shares, written into the OpenAPI document once
//! instead of on each handler, so that the document says exactly what the
//! server answers (SPEC §5): every error is `application/problem+json`; a
//! route behind a bearer token can answer 400 (a repeated identity header),
//! 401 and 403; a route with a path parameter 404; a route with a body 400,
//! 408, 413 and 415; an idempotent create 409; every API route 503 (a
//! dependency down). Paging parameters carry their bounds.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder};

/// The content type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One ETag, strong or weak, quoted or not, or `*` (`extract::IfMatch`).
const IF_MATCH: &str = r#"^(\*|(W/)?"?[!#-+\--~]+"?)$"#;

/// Whether a parameter's schema is a plain string.
fn is_text(schema: Option<&RefOr<utoipa::openapi::schema::Schema>>) -> bool {
    matches!(
        schema,
        Some(RefOr::T(utoipa::openapi::schema::Schema::Object(o)))
            if o.schema_type == utoipa::openapi::schema::SchemaType::Type(Type::String)
                && o.format.is_none()
                && o.enum_values.is_none()
    )
}

/// Applies the shared answers to every operation of `doc`.
pub fn apply(doc: &mut OpenApi) {
    for (path, item) in &mut doc.paths.paths {
        for op in operations(item) {
            conform(path, op);
        }
    }
}

/// Marks the request body of `method path` as optional (it may be left
/// out, and the defaults apply; when sent it is the documented object,
/// never `null`).
pub fn optional_body(doc: &mut OpenApi, path: &str, method: &str) {
    let Some(item) = doc.paths.paths.get_mut(path) else {
        return;
    };
    let op = match method {
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        _ => None,
    };
    if let Some(body) = op.and_then(|o| o.request_body.as_mut()) {
        body.required = Some(Required::False);
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn conform(path: &str, op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let params = op.parameters.as_deref().unwrap_or_default();
    let in_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let idempotent = params
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("Idempotency-Key"));
    let body = op.request_body.is_some();
    let api = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if secured {
        shared.extend([
            (
                "400",
                "The request is invalid (every bad field is named by a JSON pointer)",
            ),
            ("401", "No valid bearer token"),
            (
                "403",
                "X-Tenant-ID names another tenant, or the route needs a super-admin",
            ),
        ]);
    }
    if in_path {
        shared.push(("404", "Not found (or another tenant's)"));
    }
    if body {
        shared.extend([
            (
                "400",
                "The request is invalid (every bad field is named by a JSON pointer)",
            ),
            ("408", "The request body did not arrive in time"),
            ("413", "The request body is over 1 MiB"),
            ("415", "The request body is not JSON"),
        ]);
    }
    if idempotent {
        shared.push(("409", "The Idempotency-Key is in use by another request"));
    }
    if api {
        shared.push(("503", "A dependency is unavailable; retry later"));
    }
    let responses = &mut op.responses.responses;
    for (code, description) in shared {
        responses
            .entry(code.to_owned())
            .or_insert_with(|| RefOr::T(problem(description)));
    }
    for (code, response) in responses.iter_mut() {
        if code.as_str() >= "400"
            && let RefOr::T(r) = response
        {
            let description = std::mem::take(&mut r.description);
            *r = problem(&description);
        }
    }
    if params
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("If-Match"))
    {
        responses
            .entry("412".to_owned())
            .or_insert_with(|| RefOr::T(problem("If-Match names another version")));
    }
    for p in op.parameters.iter_mut().flatten() {
        let query = matches!(p.parameter_in, ParameterIn::Query);
        if p.name.eq_ignore_ascii_case("If-Match") {
            p.schema = Some(RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(IF_MATCH))
                    .into(),
            ));
        } else if query && is_text(p.schema.as_ref()) && p.name != "continuationToken" {
            // `QueryParams::text`: 1 to 200 characters.
            p.schema = Some(RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(200))
                    .into(),
            ));
        }
        if p.name == "limit" && query {
            p.schema = Some(RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(200))
                    .default(Some(50.into()))
                    .into(),
            ));
        }
    }
}
