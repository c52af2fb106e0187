//! The emulated host's side of the wire: chunked invocation requests, the
//! raw answers and how the host reads them (`docs/functions-protocol.md` §4, §6).

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::definitions::FunctionDef;
use super::host::HANG;

/// Repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's host.json.
pub fn host_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("host.json")).expect("host.json"))
        .expect("json")
}

/// A free port as `WorkerUtilities.GetUnusedTcpPort()` picks it (§3.1).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

/// The answer to a raw request.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub(crate) fn decode_chunked(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&b[..pos]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("hex");
        b = &b[pos + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
    out
}

/// Sends one HTTP/1.1 request over a fresh IPv4 connection, the body in
/// chunked encoding with no Content-Length, as the host's `ObjectContent`
/// does (§5.1). `chunks` splits the body to exercise reassembly.
pub async fn raw_chunked(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    chunks: usize,
) -> RawAnswer {
    let fut = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        // Write errors are tolerated: a server may answer before reading
        // everything; the answer is what counts.
        let mut wire = head.into_bytes();
        let size = body.len().div_ceil(chunks.max(1)).max(1);
        let mut parts = vec![wire.clone()];
        wire.clear();
        for c in body.chunks(size) {
            let mut chunk = format!("{:x}\r\n", c.len()).into_bytes();
            chunk.extend_from_slice(c);
            chunk.extend_from_slice(b"\r\n");
            parts.push(chunk);
        }
        parts.push(b"0\r\n\r\n".to_vec());
        for part in parts {
            if s.write_all(&part).await.is_err() {
                break;
            }
        }
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        parse_response(&raw)
    };
    tokio::time::timeout(HANG, fut)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: the handler did not answer within {HANG:?}"))
}

pub(crate) fn parse_response(raw: &[u8]) -> RawAnswer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP response");
    let head = std::str::from_utf8(&raw[..split]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        decode_chunked(rest)
    } else {
        rest.to_vec()
    };
    RawAnswer {
        status,
        headers,
        body,
    }
}

/// How the host reads an invocation reply (§6).
#[derive(Debug)]
pub enum Outcome {
    Success {
        outputs: Map<String, Value>,
        logs: Vec<String>,
    },
    Failed {
        status: u16,
    },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success { .. })
    }
}

/// Applies the host's reply rules; replies a real host would hang on or
/// misbind are test failures.
pub fn host_reads(def: &FunctionDef, ans: &RawAnswer) -> Outcome {
    if !(200..300).contains(&ans.status) {
        // EnsureSuccessStatusCode throws: the invocation fails; Logs are dropped.
        return Outcome::Failed { status: ans.status };
    }
    assert!(
        !ans.body.is_empty(),
        "{}: empty 2xx body: the host would wait until functionTimeout (§6.3)",
        def.name
    );
    let ct = ans
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        ct.starts_with("application/json") || ct.starts_with("text/json"),
        "{}: 2xx with content type {ct:?}: UnsupportedMediaTypeException (§6.2)",
        def.name
    );
    let v: Value = serde_json::from_slice(&ans.body)
        .unwrap_or_else(|e| panic!("{}: invalid JSON reply: {e}", def.name));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{}: reply is not a JSON object", def.name));
    let get = |k: &str| {
        obj.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let outputs = get("Outputs")
        .and_then(|o| o.as_object().cloned())
        .unwrap_or_default();
    let logs = get("Logs")
        .and_then(|l| l.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|l| l.as_str().unwrap_or_default().to_owned())
        .collect();
    for (key, value) in &outputs {
        // Case-sensitive, unknown keys silently ignored by the host (§6.4): a bug for us.
        let binding = def.output(key).unwrap_or_else(|| {
            panic!(
                "{}: Outputs.{key} matches no output binding (§6.4)",
                def.name
            )
        });
        if binding["type"] != "http"
            && binding["dataType"] != "binary"
            && let Some(s) = value.as_str()
        {
            let decodes = base64::engine::general_purpose::STANDARD.decode(s).is_ok();
            assert!(
                !decodes,
                "{}: Outputs.{key} is a base64-looking string: the host sends System.Byte[] (§6.5)",
                def.name
            );
        }
    }
    Outcome::Success { outputs, logs }
}
