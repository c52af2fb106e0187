//! The SSRF guard (SPEC §8): hostile targets are refused in every spelling,
//! exceptions in OUTBOUND_ALLOWED_CIDRS are honoured, and real requests go
//! only to checked addresses, without following redirects.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use castiel_integrations::config::parse_cidr;
use castiel_integrations::platform::outbound::{
    HostResolver, OutboundClient, OutboundError, OutboundPolicy,
};
use url::Url;

/// A resolver with fixed answers, standing in for hostile DNS.
struct FakeDns(HashMap<&'static str, Vec<IpAddr>>);

#[async_trait]
impl HostResolver for FakeDns {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match self.0.get(host) {
            Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
            None if host == "localhost" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such host",
            )),
        }
    }
}

fn dns() -> Arc<FakeDns> {
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    Arc::new(FakeDns(HashMap::from([
        ("internal.test", vec![ip("10.1.2.3")]),
        ("rebind.test", vec![ip("93.184.216.34"), ip("192.168.0.5")]),
        ("v6internal.test", vec![ip("fd00::5")]),
        ("metadata.test", vec![ip("169.254.169.254")]),
        ("mapped.test", vec![ip("::ffff:10.0.0.8")]),
        ("public.test", vec![ip("93.184.216.34")]),
    ])))
}

const HOSTILE: &[&str] = &[
    "https://127.0.0.1/",
    "https://127.1.2.3/",
    "https://localhost/",
    "https://10.0.0.1/",
    "https://10.255.255.255/",
    "https://172.16.0.1/",
    "https://172.31.255.254/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.0.1/",
    "https://100.64.0.1/",
    "https://100.127.255.254/",
    "https://0.0.0.0/",
    "https://0.1.2.3/",
    "https://224.0.0.1/",
    "https://239.255.255.250/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://192.0.2.1/",
    "https://198.51.100.7/",
    "https://203.0.113.9/",
    "https://198.18.0.1/",
    "https://192.0.0.8/",
    "https://[::1]/",
    "https://[::]/",
    "https://[fc00::1]/",
    "https://[fd12:3456::1]/",
    "https://[fe80::1]/",
    "https://[febf::1]/",
    "https://[ff02::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:10.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:7f00:1]/",
    "https://[64:ff9b::127.0.0.1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b:1::1]/",
    "https://[2002:7f00:1::]/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://[2001:db8::1]/",
    "https://[2001::1]/",
    "https://[::127.0.0.1]/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://0x7f.0.0.1/",
    "https://127.1/",
    "https://017700000001/",
    "https://0xa9.0xfe.0xa9.0xfe/",
    "https://internal.test/",
    "https://rebind.test/",
    "https://v6internal.test/",
    "https://metadata.test./",
    "https://mapped.test/",
];

fn policy(allowed: &[&str]) -> OutboundPolicy {
    let nets = allowed
        .iter()
        .map(|s| parse_cidr(s).expect("cidr"))
        .collect();
    OutboundPolicy::with_resolver(nets, dns())
}

#[tokio::test]
async fn hostile_targets_are_refused() {
    assert!(HOSTILE.len() >= 40);
    let p = policy(&[]);
    for target in HOSTILE {
        let url = Url::parse(target).expect(target);
        match p.check_url(&url).await {
            Err(OutboundError::Blocked { .. }) => {}
            other => panic!("{target} was not blocked: {other:?}"),
        }
        // The create-time check refuses them too.
        assert!(
            p.check_for_storage(&url).await.is_err(),
            "{target} accepted for storage"
        );
    }
}

#[tokio::test]
async fn nothing_is_refused_when_listed_as_an_exception() {
    for target in HOSTILE {
        let url = Url::parse(target).expect(target);
        // Learn the target's addresses, then allow exactly those.
        let addrs: Vec<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(url::Host::Domain(d)) => dns()
                .lookup(d.trim_end_matches('.'), 443)
                .await
                .expect("fake dns")
                .iter()
                .map(SocketAddr::ip)
                .collect(),
            None => unreachable!(),
        };
        let allowed: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let p = policy(&allowed);
        p.check_url(&url)
            .await
            .unwrap_or_else(|e| panic!("{target} refused despite exception: {e}"));
        // Plain http is allowed to exceptions only.
        let mut http = url.clone();
        http.set_scheme("http").expect("http");
        p.check_url(&http)
            .await
            .unwrap_or_else(|e| panic!("{http} refused despite exception: {e}"));
    }
}

#[tokio::test]
async fn public_targets_pass_and_form_rules_hold() {
    let p = policy(&[]);
    for ok in [
        "https://93.184.216.34/hook",
        "https://[2606:4700::1111]/",
        "https://public.test/x?y=1",
    ] {
        p.check_url(&Url::parse(ok).expect(ok))
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let refused = [
        ("http://93.184.216.34/", "https"),
        ("http://public.test/", "https"),
        ("https://user:pw@public.test/", "credentials"),
        ("ftp://public.test/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://public.test/", "scheme"),
    ];
    for (target, why) in refused {
        let err = p
            .check_url(&Url::parse(target).expect(target))
            .await
            .expect_err(target);
        assert!(err.to_string().contains(why), "{target}: {err}");
    }
    // A name that does not resolve yet may be stored over https, never used.
    let later = Url::parse("https://not-yet.test/").expect("url");
    p.check_for_storage(&later)
        .await
        .expect("unresolvable https accepted for storage");
    assert!(matches!(
        p.check_url(&later).await,
        Err(OutboundError::Resolve(_))
    ));
    let later_http = Url::parse("http://not-yet.test/").expect("url");
    assert!(p.check_for_storage(&later_http).await.is_err());
}

async fn receiver() -> SocketAddr {
    let app = Router::new().route("/ok", get(|| async { "fine" })).route(
        "/redirect",
        get(|| async {
            (StatusCode::FOUND, [("location", "http://127.0.0.1:1/ok")]).into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

#[tokio::test]
async fn requests_go_only_to_checked_addresses() {
    let addr = receiver().await;
    let blocked = OutboundClient::new(policy(&[]), Duration::from_secs(5));
    for target in [
        format!("http://127.0.0.1:{}/ok", addr.port()),
        format!("http://localhost:{}/ok", addr.port()),
        format!("https://localhost:{}/ok", addr.port()),
    ] {
        let req = blocked
            .request(reqwest::Method::GET, Url::parse(&target).expect("url"))
            .build()
            .expect("req");
        let err = blocked.execute(req).await.expect_err(&target);
        assert!(
            matches!(
                err,
                OutboundError::Blocked { .. } | OutboundError::SchemeNotAllowed
            ),
            "{target}: {err:?}"
        );
    }
    let allowed = OutboundClient::new(policy(&["127.0.0.1/32"]), Duration::from_secs(5));
    for host in ["127.0.0.1", "localhost"] {
        let url = Url::parse(&format!("http://{host}:{}/ok", addr.port())).expect("url");
        let res = allowed
            .execute(
                allowed
                    .request(reqwest::Method::GET, url)
                    .build()
                    .expect("req"),
            )
            .await
            .expect("allowed");
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.expect("body"), "fine");
    }
    // Redirects come back as they are; they are never followed.
    let url = Url::parse(&format!("http://127.0.0.1:{}/redirect", addr.port())).expect("url");
    let res = allowed
        .execute(
            allowed
                .request(reqwest::Method::GET, url)
                .build()
                .expect("req"),
        )
        .await
        .expect("redirect answer");
    assert_eq!(res.status(), 302);
}
