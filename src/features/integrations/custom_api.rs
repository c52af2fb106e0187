//! A custom REST integration's description of its API (SPEC §9.6): where it
//! is, how to authenticate, and how to list, read, create and update each
//! entity. Typed, so that a body that does not fit is refused field by field
//! with a JSON pointer; [`CustomApi::validate`] checks what types cannot
//! (paths, pointers, the fields each choice needs). The base URL is checked
//! by the one URL policy when the integration is written.

use serde::{Deserialize, Serialize};
use serde_json::Map;
use utoipa::ToSchema;

use crate::domain::validation::{Violations, is_slug};

/// Most entities one API may describe.
pub const MAX_ENTITIES: usize = 50;

/// `customApi` of a `custom_rest` integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomApi {
    /// Base URL of every call (https; SSRF-checked).
    pub base_url: String,
    /// How calls authenticate (the credentials come from the connection).
    #[serde(default)]
    pub auth: CustomAuth,
    /// The call that tests the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// The entities this API serves (1–50).
    pub entities: Vec<CustomEntity>,
    /// Calls per second at most (1–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
}

/// How calls authenticate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomAuth {
    /// The scheme.
    #[serde(rename = "type")]
    pub kind: CustomAuthType,
    /// The header carrying the key (`api_key_header` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// The query parameter carrying the key (`api_key_query` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_param: Option<String>,
}

/// Authentication schemes of a custom API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomAuthType {
    /// No credentials.
    #[default]
    None,
    /// An API key in a header.
    ApiKeyHeader,
    /// An API key in a query parameter.
    ApiKeyQuery,
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: Basic`.
    Basic,
    /// OAuth2 client credentials.
    Oauth2ClientCredentials,
}

/// HTTP methods a custom API call may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET.
    #[default]
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// The call that tests a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Method (default GET).
    #[serde(default)]
    pub method: Method,
    /// Path below the base URL (`/…`).
    pub path: String,
}

/// One entity of a custom API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomEntity {
    /// Its name, as mappings refer to it (a slug).
    pub name: String,
    /// How to list its records.
    pub list: ListCall,
    /// How to read one record (path with `{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<PathCall>,
    /// How to create one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<MethodCall>,
    /// How to update one (path with `{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<MethodCall>,
}

/// How to list an entity's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListCall {
    /// Method (default GET).
    #[serde(default)]
    pub method: Method,
    /// Path below the base URL (`/…`).
    pub path: String,
    /// Fixed query parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Map<String, serde_json::Value>>,
    /// JSON pointer to the records array in an answer (`""`: the answer is the array).
    pub records_pointer: String,
    /// Field holding a record's id.
    pub id_field: String,
    /// Field holding when a record last changed (incremental sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at_field: Option<String>,
    /// Query parameter that asks for records changed since a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_param: Option<String>,
    /// How pages follow each other.
    #[serde(default)]
    pub pagination: Pagination,
}

/// How an entity's list is paged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One call returns everything.
    #[default]
    None,
    /// Numbered pages.
    #[serde(rename_all = "camelCase")]
    Page {
        /// The page-number parameter.
        page_param: String,
        /// The page-size parameter, if the API takes one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_param: Option<String>,
        /// Records per page (1–1000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_size: Option<u32>,
        /// The first page's number (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_page: Option<u32>,
    },
    /// An offset and a limit.
    #[serde(rename_all = "camelCase")]
    Offset {
        /// The offset parameter.
        offset_param: String,
        /// The limit parameter.
        limit_param: String,
        /// Records per page (1–1000).
        page_size: u32,
    },
    /// An opaque cursor from each answer.
    #[serde(rename_all = "camelCase")]
    Cursor {
        /// The parameter the cursor is sent in.
        cursor_param: String,
        /// JSON pointer to the next cursor in an answer.
        cursor_pointer: String,
    },
    /// The next page's URL in each answer.
    #[serde(rename_all = "camelCase")]
    NextUrl {
        /// JSON pointer to the next page's URL.
        next_url_pointer: String,
    },
    /// The next page's URL in the `Link` header (`rel="next"`).
    LinkHeader,
}

/// A call by path (method GET).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathCall {
    /// Path below the base URL, with `{id}`.
    pub path: String,
}

/// A call by method and path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodCall {
    /// Method.
    pub method: Method,
    /// Path below the base URL.
    pub path: String,
}

impl CustomApi {
    /// Checks what the types do not, reporting each bad field under `at`.
    pub fn validate(&self, at: &str, v: &mut Violations) {
        self.auth.validate(&format!("{at}/auth"), v);
        if let Some(h) = &self.health_check {
            check_path(&format!("{at}/healthCheck/path"), &h.path, false, v);
        }
        if self.entities.is_empty() || self.entities.len() > MAX_ENTITIES {
            v.add(format!("{at}/entities"), "must describe 1 to 50 entities");
        }
        for (i, e) in self.entities.iter().enumerate() {
            let here = format!("{at}/entities/{i}");
            if !is_slug(&e.name) {
                v.add(format!("{here}/name"), "must be a slug (a-z, 0-9, _ and -)");
            } else if self.entities[..i].iter().any(|o| o.name == e.name) {
                v.add(format!("{here}/name"), "names another entity already");
            }
            e.list.validate(&format!("{here}/list"), v);
            if let Some(g) = &e.get {
                check_path(&format!("{here}/get/path"), &g.path, true, v);
            }
            if let Some(c) = &e.create {
                check_path(&format!("{here}/create/path"), &c.path, false, v);
            }
            if let Some(u) = &e.update {
                check_path(&format!("{here}/update/path"), &u.path, true, v);
            }
        }
        if self
            .rate_limit_per_second
            .is_some_and(|r| !(1..=100).contains(&r))
        {
            v.add(format!("{at}/rateLimitPerSecond"), "must be from 1 to 100");
        }
    }
}

impl CustomAuth {
    fn validate(&self, at: &str, v: &mut Violations) {
        let (header, query) = match self.kind {
            CustomAuthType::ApiKeyHeader => (true, false),
            CustomAuthType::ApiKeyQuery => (false, true),
            _ => (false, false),
        };
        for (field, wanted, value) in [
            ("headerName", header, &self.header_name),
            ("queryParam", query, &self.query_param),
        ] {
            match (wanted, value) {
                (true, None) => v.add(format!("{at}/{field}"), "is required for this type"),
                (false, Some(_)) => v.add(format!("{at}/{field}"), "is not used by this type"),
                (true, Some(name)) if field == "headerName" => {
                    check_header_name(&format!("{at}/{field}"), name, v)
                }
                (true, Some(name)) => check_name(&format!("{at}/{field}"), name, v),
                (false, None) => {}
            }
        }
    }
}

impl ListCall {
    fn validate(&self, at: &str, v: &mut Violations) {
        check_path(&format!("{at}/path"), &self.path, false, v);
        check_pointer(&format!("{at}/recordsPointer"), &self.records_pointer, v);
        check_name(&format!("{at}/idField"), &self.id_field, v);
        if let Some(f) = &self.updated_at_field {
            check_name(&format!("{at}/updatedAtField"), f, v);
        }
        match (&self.incremental_param, &self.updated_at_field) {
            (Some(_), None) => v.add(
                format!("{at}/incrementalParam"),
                "needs updatedAtField, which says what it filters on",
            ),
            (Some(p), Some(_)) => check_name(&format!("{at}/incrementalParam"), p, v),
            _ => {}
        }
        let p = format!("{at}/pagination");
        match &self.pagination {
            Pagination::None | Pagination::LinkHeader => {}
            Pagination::Page {
                page_param,
                size_param,
                page_size,
                ..
            } => {
                check_name(&format!("{p}/pageParam"), page_param, v);
                if let Some(s) = size_param {
                    check_name(&format!("{p}/sizeParam"), s, v);
                }
                if let Some(n) = page_size {
                    check_page_size(&format!("{p}/pageSize"), *n, v);
                }
            }
            Pagination::Offset {
                offset_param,
                limit_param,
                page_size,
            } => {
                check_name(&format!("{p}/offsetParam"), offset_param, v);
                check_name(&format!("{p}/limitParam"), limit_param, v);
                check_page_size(&format!("{p}/pageSize"), *page_size, v);
            }
            Pagination::Cursor {
                cursor_param,
                cursor_pointer,
            } => {
                check_name(&format!("{p}/cursorParam"), cursor_param, v);
                check_pointer(&format!("{p}/cursorPointer"), cursor_pointer, v);
            }
            Pagination::NextUrl { next_url_pointer } => {
                check_pointer(&format!("{p}/nextUrlPointer"), next_url_pointer, v);
            }
        }
    }
}

/// A path below the base URL: starts with `/`, stays below it (no `..`, no
/// scheme or authority), printable; `{id}` present when `with_id`.
fn check_path(at: &str, path: &str, with_id: bool, v: &mut Violations) {
    if !path.starts_with('/') || path.starts_with("//") {
        v.add(at, "must be a path starting with a single /");
    } else if path.len() > 1000 || path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        v.add(
            at,
            "must be at most 1000 printable characters without spaces",
        );
    } else if path.split(['/', '?']).any(is_dot_dot) || path.contains('#') {
        v.add(at, "must not climb out of the base URL or carry a fragment");
    } else if with_id && !path.contains("{id}") {
        v.add(at, "must contain {id}");
    }
}

/// `..`, also percent-encoded (`%2e%2E`): URL parsers resolve both.
fn is_dot_dot(segment: &str) -> bool {
    segment.to_ascii_lowercase().replace("%2e", ".") == ".."
}

/// A header name: an RFC 9110 token (what HTTP can carry as a field name).
fn check_header_name(at: &str, name: &str, v: &mut Violations) {
    check_name(at, name, v);
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(tchar) {
        v.add(
            at,
            "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
        );
    }
}

/// A JSON pointer (RFC 6901): empty, or `/`-separated tokens.
fn check_pointer(at: &str, pointer: &str, v: &mut Violations) {
    let escapes_ok = pointer
        .split('~')
        .skip(1)
        .all(|rest| rest.starts_with('0') || rest.starts_with('1'));
    if !(pointer.is_empty() || pointer.starts_with('/')) || !escapes_ok || pointer.len() > 500 {
        v.add(at, "must be a JSON pointer (\"\" or /a/b)");
    }
}

/// A field or parameter name: 1–200 printable characters.
fn check_name(at: &str, name: &str, v: &mut Violations) {
    v.line(at, name, 1, 200);
    if name.chars().any(char::is_whitespace) {
        v.add(at, "must not contain spaces");
    }
}

fn check_page_size(at: &str, n: u32, v: &mut Violations) {
    if !(1..=1000).contains(&n) {
        v.add(at, "must be from 1 to 1000");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<CustomApi, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn valid() -> serde_json::Value {
        json!({
            "baseUrl": "https://api.example.com/v2",
            "auth": {"type": "api_key_header", "headerName": "X-Api-Key"},
            "healthCheck": {"method": "GET", "path": "/ping"},
            "entities": [{
                "name": "deals",
                "list": {
                    "method": "GET", "path": "/deals", "recordsPointer": "/data", "idField": "id",
                    "updatedAtField": "updated_at", "incrementalParam": "since",
                    "pagination": {"type": "cursor", "cursorParam": "after", "cursorPointer": "/next"}
                },
                "get": {"path": "/deals/{id}"},
                "update": {"method": "PATCH", "path": "/deals/{id}"}
            }],
            "rateLimitPerSecond": 5
        })
    }

    fn violations(api: &CustomApi) -> Vec<String> {
        let mut v = Violations::default();
        api.validate("/customApi", &mut v);
        v.into_vec().into_iter().map(|x| x.pointer).collect()
    }

    #[test]
    fn a_full_description_parses_and_validates() {
        let api = parse(valid()).expect("parses");
        assert!(violations(&api).is_empty(), "{:?}", violations(&api));
        assert_eq!(
            serde_json::to_value(&api).expect("json"),
            valid(),
            "round trip"
        );
    }

    #[test]
    fn unknown_fields_and_types_are_refused_by_parsing() {
        assert!(parse(json!({"foo": 1})).is_err());
        let mut bad = valid();
        bad["entities"][0]["list"]["pagination"] = json!({"type": "scroll"});
        assert!(parse(bad).is_err());
        let mut extra = valid();
        extra["auth"]["token"] = json!("secret");
        assert!(parse(extra).is_err());
    }

    #[test]
    fn header_names_must_be_tokens_and_paths_must_not_climb() {
        let mut bad = valid();
        bad["auth"]["headerName"] = json!("X:Key");
        bad["entities"][0]["list"]["path"] = json!("/deals/..");
        let api = parse(bad).expect("parses");
        assert_eq!(
            violations(&api),
            [
                "/customApi/auth/headerName",
                "/customApi/entities/0/list/path"
            ]
        );
    }

    #[test]
    fn what_types_cannot_say_is_checked_with_pointers() {
        let mut bad = valid();
        bad["auth"] = json!({"type": "api_key_query"});
        bad["entities"][0]["list"]["path"] = json!("https://evil/x");
        bad["entities"][0]["list"]["recordsPointer"] = json!("data");
        bad["entities"][0]["get"]["path"] = json!("/deals/%2E%2e/admin/{id}");
        bad["entities"][0]["update"]["path"] = json!("/deals");
        bad["rateLimitPerSecond"] = json!(0);
        let api = parse(bad).expect("parses");
        assert_eq!(
            violations(&api),
            [
                "/customApi/auth/queryParam",
                "/customApi/entities/0/list/path",
                "/customApi/entities/0/list/recordsPointer",
                "/customApi/entities/0/get/path",
                "/customApi/entities/0/update/path",
                "/customApi/rateLimitPerSecond",
            ]
        );
    }
}
