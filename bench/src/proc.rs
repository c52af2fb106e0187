//! Starting, probing and measuring the processes under test.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The fixed HS256 secret the service is started with.
pub const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";

/// Which program a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// castiel-integrations `serve`.
    Service,
    /// The bare axum baseline.
    Baseline,
}

impl Kind {
    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Baseline => "baseline",
        }
    }
}

/// The two release binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// castiel-integrations.
    pub service: PathBuf,
    /// bench-baseline.
    pub baseline: PathBuf,
}

/// A started process; killed on drop.
#[derive(Debug)]
pub struct Running {
    /// Which program.
    pub kind: Kind,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `(VmRSS, VmHWM)` in KiB from /proc.
    pub fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        memory_kib(self.pid())
    }

    /// The process's log so far (for error messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text.get(start..).unwrap_or_default().to_owned()
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); log:\n{}",
                self.kind.name(),
                self.log_tail()
            );
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(VmRSS, VmHWM)` of a process in KiB.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("{name} not in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts a process; `data_dir` is the service's DATA_DIR (and holds the log).
pub fn spawn(
    bins: &Binaries,
    kind: Kind,
    data_dir: &Path,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Running> {
    let port = free_port()?;
    let log = data_dir.join(format!("{}.log", kind.name()));
    let out = std::fs::File::create(&log)?;
    let mut cmd = match kind {
        Kind::Service => {
            let mut c = Command::new(&bins.service);
            c.arg("serve");
            c
        }
        Kind::Baseline => Command::new(&bins.baseline),
    };
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    if kind == Kind::Service {
        cmd.env("DATA_DIR", data_dir)
            .env("JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "info");
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", kind.name()))?;
    Ok(Running {
        kind,
        port,
        child,
        log,
    })
}

/// The status of `GET path` on a new connection, or `None` if nobody answers.
pub fn probe(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Polls `GET /health` until it answers 200; returns the time since `t0`.
pub fn wait_healthy(p: &mut Running, t0: Instant, limit: Duration) -> anyhow::Result<Duration> {
    loop {
        if probe(p.port, "/health") == Some(200) {
            return Ok(t0.elapsed());
        }
        p.check_alive()?;
        if t0.elapsed() > limit {
            bail!(
                "{} gave no 200 on /health within {limit:?}; log:\n{}",
                p.kind.name(),
                p.log_tail()
            );
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Starts a process and waits for its first 200; returns it and the time taken.
pub fn start(
    bins: &Binaries,
    kind: Kind,
    data_dir: &Path,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<(Running, Duration)> {
    let t0 = Instant::now();
    let mut p = spawn(bins, kind, data_dir, extra_env)?;
    let took = wait_healthy(&mut p, t0, Duration::from_secs(30))?;
    Ok((p, took))
}

/// Mints a tenant token with the service's `token` command.
pub fn mint_token(bins: &Binaries, data_dir: &Path, tenant: &str) -> anyhow::Result<String> {
    let out = Command::new(&bins.service)
        .args(["token", "--tenant", tenant])
        .env_clear()
        .env("DATA_DIR", data_dir)
        .env("JWT_SECRET", JWT_SECRET)
        .stdin(Stdio::null())
        .output()
        .context("running `castiel-integrations token`")?;
    if !out.status.success() {
        bail!("token failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}
