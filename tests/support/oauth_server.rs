//! An independent OAuth 2.0 server for tests: `tests/oauth-server/server.js`
//! (the npm package oauth2-mock-server, with PKCE, client and refresh-token
//! checks added through its hooks), run with the machine's Node.js.
//! `scripts/test` installs it (`npm ci --prefix tests/oauth-server`).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The client the server accepts.
pub const CLIENT_ID: &str = "castiel-test-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "castiel-test-secret-5f1e9a";
/// The `instance_url` its code exchange answers (Salesforce's field).
pub const INSTANCE_URL: &str = "https://127.0.0.1:9443";

#[derive(Default)]
struct Seen {
    lines: Vec<Value>,
}

/// A running server; stopped when dropped.
pub struct OauthServer {
    child: Child,
    stdin: Option<ChildStdin>,
    seen: Arc<(Mutex<Seen>, Condvar)>,
    /// Base URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-server")
}

impl OauthServer {
    /// Starts the server and waits until it listens.
    pub fn start() -> Self {
        let dir = dir();
        assert!(
            dir.join("node_modules/oauth2-mock-server").is_dir(),
            "the OAuth test server is not installed: run scripts/test, or `npm ci --prefix tests/oauth-server`"
        );
        let mut child = Command::new("node")
            .arg("server.js")
            .current_dir(&dir)
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("INSTANCE_URL", INSTANCE_URL)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (Node.js) must be installed: scripts/test installs it");
        let stdout = child.stdout.take().expect("stdout");
        let seen: Arc<(Mutex<Seen>, Condvar)> = Arc::default();
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let (lock, cv) = &*sink;
                lock.lock().expect("lock").lines.push(v);
                cv.notify_all();
            }
        });
        let stdin = child.stdin.take();
        let mut server = Self {
            child,
            stdin,
            seen,
            issuer: String::new(),
        };
        let issuer = server.wait_for(|lines| {
            lines
                .iter()
                .find_map(|v| v["issuer"].as_str().map(str::to_owned))
        });
        // It names itself `localhost`; it listens on IPv4 only.
        server.issuer = issuer.replace("localhost", "127.0.0.1");
        server
    }

    /// Waits until `find` finds something in what the server printed.
    fn wait_for<T>(&self, mut find: impl FnMut(&[Value]) -> Option<T>) -> T {
        let (lock, cv) = &*self.seen;
        let mut seen = lock.lock().expect("lock");
        loop {
            if let Some(found) = find(&seen.lines) {
                return found;
            }
            let (next, timeout) = cv
                .wait_timeout(seen, Duration::from_secs(30))
                .expect("lock");
            assert!(
                !timeout.timed_out(),
                "the OAuth test server did not answer in 30 s"
            );
            seen = next;
        }
    }

    /// Sends a command (`revoke-all`, `expires-in <s>`, `rotate on|off`) and
    /// waits for its acknowledgement.
    pub fn command(&mut self, line: &str) {
        let acks = |lines: &[Value]| lines.iter().filter(|v| v.get("ack").is_some()).count();
        let before = self.wait_for(|l| Some(acks(l)));
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write command");
        stdin.flush().expect("flush");
        self.wait_for(|l| (acks(l) > before).then_some(()));
    }

    /// Token requests of a grant type the server answered with `status`
    /// (`None`: any status).
    pub fn token_requests(&self, grant: &str, status: Option<u16>) -> usize {
        let (lock, _) = &*self.seen;
        lock.lock()
            .expect("lock")
            .lines
            .iter()
            .filter(|v| v["token"] == grant)
            .filter(|v| status.is_none_or(|s| v["status"] == s))
            .count()
    }

    /// Asserts that the server saw exactly `n` token requests of a grant
    /// answered with `status` (`None`: any). Its log line can reach this
    /// process after the answer did, so it first waits for `n` of them.
    pub fn expect_token_requests(&self, grant: &str, status: Option<u16>, n: usize) {
        let count = |lines: &[Value]| {
            lines
                .iter()
                .filter(|v| v["token"] == grant)
                .filter(|v| status.is_none_or(|s| v["status"] == s))
                .count()
        };
        self.wait_for(|lines| (count(lines) >= n).then_some(()));
        assert_eq!(
            self.token_requests(grant, status),
            n,
            "{grant} token requests ({status:?})"
        );
    }

    /// The authorization endpoint.
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.issuer)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// Settings pointing the Salesforce provider's OAuth at this server.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("SALESFORCE_CLIENT_ID", CLIENT_ID.to_owned()),
            ("SALESFORCE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("SALESFORCE_AUTHORIZATION_URL", self.authorize_url()),
            ("SALESFORCE_TOKEN_URL", self.token_url()),
            ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.1/32".to_owned()),
            (
                "OAUTH_ALLOWED_RETURN_ORIGINS",
                "https://app.castiel.test".to_owned(),
            ),
            (
                "OAUTH_REDIRECT_BASE_URL",
                "https://integrations.castiel.test".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// What a browser does at the authorization endpoint: follows the
    /// provider's redirect no further, answering the callback's query.
    pub async fn authorize(&self, authorization_url: &str) -> String {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let resp = client
            .get(authorization_url)
            .send()
            .await
            .expect("authorize");
        assert_eq!(resp.status().as_u16(), 302, "the server redirects back");
        let location = resp.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        let url = url::Url::parse(&location).expect("redirect URL");
        assert!(
            location.starts_with(
                "https://integrations.castiel.test/api/v1/integrations/oauth/callback"
            ),
            "redirected to the service's callback: {location}"
        );
        url.query().unwrap_or_default().to_owned()
    }
}

impl OauthServer {
    /// Stops the server: its endpoints refuse connections from now on.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OauthServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
