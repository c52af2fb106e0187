//! An answer of the router, shared by the test binaries that call it.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

/// An answer, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON (`null` when it is not JSON).
    pub body: Value,
    /// The body as text, for assertion messages.
    pub text: String,
}

impl Answer {
    /// Reads a whole response.
    pub async fn read(res: Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        Self {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The ETag header without quotes; `None` when the answer has none.
    #[allow(dead_code, reason = "not every test binary checks for a missing ETag")]
    pub fn etag_header(&self) -> Option<String> {
        let value = self.headers.get(header::ETAG)?;
        let text = value
            .to_str()
            .unwrap_or_else(|_| panic!("ETag is not text: {value:?}"));
        Some(text.trim_matches('"').to_owned())
    }

    /// The ETag header without quotes, for answers that must carry one:
    /// panics when it is missing or empty, so two answers without an ETag
    /// never compare equal.
    #[allow(dead_code, reason = "not every test binary reads ETags")]
    pub fn etag(&self) -> String {
        match self.etag_header() {
            Some(e) if !e.is_empty() => e,
            other => panic!(
                "expected an ETag on this {} answer, got {other:?}: {}",
                self.status, self.text
            ),
        }
    }

    /// The pointers of a problem's `errors`.
    #[allow(dead_code, reason = "not every test binary checks pointers")]
    pub fn pointers(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
