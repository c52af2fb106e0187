//! An Azure Functions host emulator, written from
//! `docs/functions-protocol.md` (no real host can run here, §10); the
//! section numbers below are that page's.
//! Section numbers in comments refer to that document.
//!
//! It discovers functions from `function.json` folders (§2.1),
//! starts the worker as the host does (§3.1), polls `GET /` every
//! 25 ms (§3.3), forwards HTTP requests of pure HTTP functions on their
//! `/api/...` path (§4.1), sends timer / Service Bus / RabbitMQ invocations
//! built with the host's value conversion (§5, §8) as chunked POSTs, and
//! reads replies with the host's rules (§6), panicking on replies a real
//! host would choke on (empty 2xx, wrong content type, unknown output keys,
//! base64-looking strings on a Service Bus output).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The version the emulated host announces (§5.1).
pub const HOST_VERSION: &str = "4.1045.200.25556";
/// A request the handler does not answer within this is a hang.
pub const HANG: Duration = Duration::from_secs(60);

pub use super::definitions::*;
pub use super::envelopes::*;
pub use super::wire::*;

/// What happened to a message on the emulated Service Bus queue (§7.2, §10).
#[derive(Debug, Default)]
pub struct QueueTrace {
    /// (DeliveryCount, succeeded) per delivery.
    pub deliveries: Vec<(u32, bool)>,
    /// Moved to the dead-letter queue (MaxDeliveryCountExceeded).
    pub dead_lettered: bool,
    /// Messages written through output bindings: (queue, body).
    pub sent: Vec<(String, String)>,
    /// Logs of the successful delivery.
    pub logs: Vec<String>,
}

/// The worker the emulator drives: the real binary, or the library's
/// handler in this process (for test-registered jobs).
pub struct Host {
    pub port: u16,
    pub functions: Vec<FunctionDef>,
    pub ready_after: Duration,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    child: Option<tokio::process::Child>,
    task: Option<tokio::task::JoinHandle<()>>,
    client: reqwest::Client,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        if let Some(c) = &mut self.child {
            let _ = c.start_kill();
        }
    }
}

fn pump(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            sink.lock().expect("lock").push(l);
        }
    });
}

impl Host {
    fn new(port: u16, functions: Vec<FunctionDef>) -> Self {
        Self {
            port,
            functions,
            ready_after: Duration::ZERO,
            stdout: Arc::default(),
            stderr: Arc::default(),
            child: None,
            task: None,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none()) // forwarding: redirects are not followed (§4.1)
                .timeout(HANG)
                .build()
                .expect("client"),
            _dirs: Vec::new(),
        }
    }

    /// Starts the real binary as the host does (§3.1): the executable and
    /// arguments of host.json's `customHandler.description`, the script root
    /// as working directory, the port and worker id in the environment,
    /// plus the app settings given; then waits for readiness.
    pub async fn start_binary(settings: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let data_dir = data.path().to_owned();
        let mut host = Self::spawn(|cmd, port, root| {
            for (k, _) in castiel_integrations::config::KEYS {
                cmd.env_remove(k);
            }
            let worker = uuid::Uuid::new_v4().to_string();
            cmd.env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
                .env("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
                .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", &worker)
                .env("FUNCTIONS_HTTPWORKER_ID", &worker)
                .env("FUNCTIONS_APP_ROOT_PATH", root)
                .env("FUNCTIONS_WORKER_RUNTIME", "custom")
                .env("DATA_DIR", &data_dir)
                .env("RUST_LOG", "info");
            for (k, v) in settings {
                cmd.env(k, v);
            }
        })
        .await;
        host._dirs.push(data);
        host
    }

    /// Starts the real binary like [`Host::start_binary`], but with exactly
    /// `env` and the port (`FUNCTIONS_CUSTOMHANDLER_PORT`) in its
    /// environment: nothing is inherited from the test's.
    pub async fn start_binary_with_exactly(env: &[(String, String)]) -> Self {
        Self::spawn(|cmd, port, _| {
            cmd.env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string());
        })
        .await
    }

    async fn spawn(configure: impl FnOnce(&mut tokio::process::Command, u16, &Path)) -> Self {
        let functions = discover(&repo().join("functions"));
        let root = tempfile::tempdir().expect("app root");
        std::fs::copy(repo().join("host.json"), root.path().join("host.json"))
            .expect("copy host.json");
        let port = free_port();
        let description = &host_json()["customHandler"]["description"];
        let args: Vec<String> = description["arguments"]
            .as_array()
            .expect("arguments")
            .iter()
            .map(|a| a.as_str().expect("string argument").to_owned())
            .collect();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_castiel-integrations"));
        cmd.args(&args).current_dir(root.path()).kill_on_drop(true);
        configure(&mut cmd, port, root.path());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn the handler");
        let mut host = Self::new(port, functions);
        pump(child.stdout.take().expect("stdout"), host.stdout.clone());
        pump(child.stderr.take().expect("stderr"), host.stderr.clone());
        host.child = Some(child);
        host._dirs = vec![root];
        host.ready_after = host.wait_ready(started).await;
        host
    }

    /// Serves the library's handler in this process with the given registry
    /// and App builder; the functions come from `functions` (test folders).
    pub async fn start_in_process<B, Fut>(
        registry: castiel_integrations::drivers::functions::Registry,
        functions: Vec<FunctionDef>,
        build: B,
    ) -> Self
    where
        B: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<castiel_integrations::app::AppState>> + Send + 'static,
    {
        let started = Instant::now();
        let listener = castiel_integrations::drivers::functions::handler::bind(0)
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut host = Self::new(port, functions);
        host.task = Some(tokio::spawn(async move {
            let _ =
                castiel_integrations::drivers::functions::handler::run(listener, registry, build)
                    .await;
        }));
        host.ready_after = host.wait_ready(started).await;
        host
    }

    /// §3.3: `GET /` every 25 ms for up to 30 s; any HTTP response is ready,
    /// a refused connection means keep waiting.
    async fn wait_ready(&mut self, started: Instant) -> Duration {
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "the handler exited during start ({status}); stderr: {:?}",
                    self.stderr.lock().expect("lock")
                );
            }
            let probe = async {
                let mut s = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
                s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    .await
                    .ok()?;
                let mut raw = Vec::new();
                s.read_to_end(&mut raw).await.ok()?;
                (!raw.is_empty()).then(|| parse_response(&raw))
            };
            if let Some(ans) = probe.await {
                assert_eq!(ans.status, 200, "GET / answers");
                assert_eq!(ans.json(), json!({}), "GET / answers {{}}");
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "Initializing HttpWorker timed out. (§3.3)"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until forwarded requests stop getting the handler's 503
    /// "starting" answer (the App is built after the port is bound).
    pub async fn wait_app(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ans = self.http("GET", "/api/health", &[], None).await;
            if ans.status == 200 {
                return;
            }
            assert_eq!(ans.status, 503, "only 503 while starting: {ans:?}");
            assert!(ans.headers.contains_key("retry-after"));
            assert!(
                Instant::now() < deadline,
                "the App was not built within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn function(&self, name: &str) -> &FunctionDef {
        self.functions
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no function {name}"))
    }

    /// The host's own headers on invocations (§4.1, §5.1).
    fn invocation_headers() -> Vec<(String, String)> {
        vec![
            (
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            ),
            (
                "User-Agent".into(),
                format!("Azure-Functions-Host/{HOST_VERSION}"),
            ),
            ("X-Azure-Functions-HostVersion".into(), HOST_VERSION.into()),
            (
                "X-Azure-Functions-InvocationId".into(),
                uuid::Uuid::new_v4().to_string(),
            ),
            (
                "traceparent".into(),
                format!(
                    "00-{}-{}-00",
                    uuid::Uuid::new_v4().simple(),
                    &uuid::Uuid::new_v4().simple().to_string()[..16]
                ),
            ),
        ]
    }

    /// `POST /<FunctionName>` with raw bytes, chunked.
    pub async fn invoke_raw(&self, name: &str, body: &[u8]) -> RawAnswer {
        raw_chunked(
            self.port,
            "POST",
            &format!("/{name}"),
            &Self::invocation_headers(),
            body,
            3,
        )
        .await
    }

    /// Invokes a function with an envelope and reads the reply as the host does.
    pub async fn invoke(&self, name: &str, envelope: &Value) -> Outcome {
        let ans = self.invoke_raw(name, envelope.to_string().as_bytes()).await;
        host_reads(self.function(name), &ans)
    }

    /// Fires a timer function (§8.1).
    pub async fn fire_timer(&self, name: &str, past_due: bool) -> Outcome {
        let env = timer_envelope(self.function(name), past_due, !past_due);
        self.invoke(name, &env).await
    }

    /// Puts a message on the function's Service Bus queue and lets the
    /// emulated broker deliver it: a failed invocation abandons it and it is
    /// redelivered at once with DeliveryCount + 1; at `max_delivery_count`
    /// it is dead-lettered; a success completes it and its outputs are sent.
    pub async fn service_bus(
        &self,
        name: &str,
        msg: &QueueMessage,
        max_delivery_count: u32,
    ) -> QueueTrace {
        let def = self.function(name).clone();
        let mut trace = QueueTrace::default();
        for count in 1..=max_delivery_count {
            match self
                .invoke(name, &service_bus_envelope(&def, msg, count))
                .await
            {
                Outcome::Success { outputs, logs } => {
                    trace.deliveries.push((count, true));
                    trace.logs = logs;
                    for (binding, value) in outputs {
                        let out = def.output(&binding).expect("checked");
                        let queue = out["queueName"].as_str().unwrap_or_default().to_owned();
                        for body in service_bus_bodies(&value) {
                            trace.sent.push((queue.clone(), body));
                        }
                    }
                    return trace;
                }
                Outcome::Failed { .. } => trace.deliveries.push((count, false)),
            }
        }
        trace.dead_lettered = true;
        trace
    }

    /// Forwards an HTTP request as the host does for pure HTTP functions
    /// (§4.1): only if a forwarded function's route matches (else the host
    /// answers 404 itself), on the original `/api/...` path, query rebuilt
    /// with repeated keys comma-joined, headers copied plus the host's, body
    /// only when it has a Content-Length.
    pub async fn http(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> HttpAnswer {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let prefix = host_json()["extensions"]["http"]["routePrefix"]
            .as_str()
            .unwrap_or("api")
            .to_owned();
        let matched = self
            .functions
            .iter()
            .filter(|f| f.is_forwarded())
            .find(|f| {
                let t = f.trigger();
                let methods_ok = t["methods"].as_array().is_none_or(|ms| {
                    ms.iter()
                        .any(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case(method)))
                });
                let route = t["route"].as_str().map_or(f.name.clone(), str::to_owned);
                methods_ok && route_matches(&format!("{prefix}/{route}"), path)
            });
        let Some(_function) = matched else {
            return HttpAnswer {
                status: 404,
                headers: Default::default(),
                body: Value::Null,
                forwarded: false,
            };
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match pairs.iter_mut().find(|(key, _)| *key == k) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                None => pairs.push((k.into_owned(), v.into_owned())),
            }
        }
        let mut url =
            url::Url::parse(&format!("http://127.0.0.1:{}{path}", self.port)).expect("url");
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let mut req = self
            .client
            .request(method.parse().expect("method"), url)
            .header("Host", "castiel-func.azurewebsites.net")
            .header("X-Azure-Functions-HostVersion", HOST_VERSION)
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("User-Agent", format!("Azure-Functions-Host/{HOST_VERSION}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            let text = b.to_string();
            req = req
                .header("Content-Type", "application/json")
                .header("Content-Length", text.len().to_string())
                .body(text);
        }
        let res = req.send().await.expect("forwarded request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        HttpAnswer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            forwarded: true,
        }
    }
}

/// A forwarded request's answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    /// Whether a function route matched and the request reached the handler.
    pub forwarded: bool,
}

impl HttpAnswer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// ASP.NET route template matching for the subset our function.json files
/// use (§2.4): literal segments (case-insensitive), `{name}`,
/// `{name:regex(^(a|b)$)}` and a final catch-all `{*name}` (which also
/// matches nothing).
pub fn route_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let p: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    for (i, seg) in t.iter().enumerate() {
        if seg.starts_with("{*") {
            return true;
        }
        let Some(actual) = p.get(i) else { return false };
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if let Some((_, constraint)) = inner.split_once(':') {
                let alts = constraint
                    .strip_prefix("regex(^(")
                    .and_then(|s| s.strip_suffix(")$)"))
                    .unwrap_or_else(|| panic!("unsupported route constraint {constraint}"));
                if !alts.split('|').any(|a| a.eq_ignore_ascii_case(actual)) {
                    return false;
                }
            }
        } else if !seg.eq_ignore_ascii_case(actual) {
            return false;
        }
    }
    t.len() == p.len()
}
