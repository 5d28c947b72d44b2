//! Zenoh's own request/reply floor on this machine, for the cross-node call benchmark to stand
//! beside: one process answers queries on a key, another sends them one at a time.
//!
//! `rebeam-zenoh-floor serve tcp/127.0.0.1:PORT` answers every query with its own payload until
//! killed; `rebeam-zenoh-floor query tcp/127.0.0.1:PORT N` sends N queries with a small payload
//! (after a warm-up of N/10) and prints one JSON line: `{"n": N, "p50_us": …, "p99_us": …}`.
//! Both sessions are opened as rebeam's nodes open theirs (`rebeam_node::open_session`: peer
//! mode, explicit endpoints, the cookie's handshake, the lease), so the floor and a cross-node
//! call cross the same kind of link; `--plain` (after the mode) takes Zenoh's defaults instead
//! (peers, multicast scouting off, no handshake, Zenoh's own threads), to show what those
//! settings cost. Without it, Zenoh's runtimes are a node's too (`rebeam_node::ZENOH_RUNTIME`,
//! unless `ZENOH_RUNTIME` is set).

use std::time::{Duration, Instant};

use zenoh::query::QueryTarget;
use zenoh::sample::Locality;

const KEY: &str = "rebeam-floor/echo";
/// About the size of a small rebeam call's frame (header, subject, a pickled dict).
const PAYLOAD_BYTES: usize = 96;
const USAGE: &str = "usage: rebeam-zenoh-floor serve [--plain] ENDPOINT | query [--plain] ENDPOINT N";
/// The floor's cookie: both of its sessions are this benchmark's, so it guards nothing.
const FLOOR_COOKIE: &str = "rebeam-zenoh-floor";

/// A session listening on `listen` or joining `connect`: a node's kind, or Zenoh's defaults.
async fn open(plain: bool, listen: Option<&str>, connect: Option<&str>) -> zenoh::Result<zenoh::Session> {
    if plain {
        return zenoh::open(plain_config(listen, connect)).await;
    }
    let options = rebeam_node::NodeOptions {
        name: if listen.is_some() { "floor-serve" } else { "floor-query" }.to_string(),
        listen: listen.into_iter().map(str::to_string).collect(),
        connect: connect.into_iter().map(str::to_string).collect(),
        cookie: FLOOR_COOKIE.to_string(),
        join_timeout: rebeam_node::DEFAULT_JOIN_TIMEOUT,
        authority: false,
        lease: rebeam_node::DEFAULT_LEASE,
        tls: None,
    };
    Ok(rebeam_node::open_session(&options).await?)
}

fn plain_config(listen: Option<&str>, connect: Option<&str>) -> zenoh::Config {
    let mut config = zenoh::Config::default();
    let list =
        |e: Option<&str>| serde_json::Value::from(e.map(|e| vec![e.to_string()]).unwrap_or_default()).to_string();
    for (key, value) in [
        ("mode", "\"peer\"".to_string()),
        ("scouting/multicast/enabled", "false".to_string()),
        ("listen/endpoints", list(listen)),
        ("connect/endpoints", list(connect)),
        ("connect/exit_on_failure", "true".to_string()),
        ("connect/timeout_ms", "10000".to_string()),
        ("connect/retry", r#"{"period_init_ms": 50, "period_max_ms": 1000, "period_increase_factor": 2}"#.to_string()),
    ] {
        config.insert_json5(key, &value).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    config
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1e6
}

fn main() -> zenoh::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let plain = args.get(1).is_some_and(|a| a == "--plain");
    if plain {
        args.remove(1);
    } else {
        // As a node's `rebeam` does, before any thread starts.
        rebeam_node::use_node_runtimes();
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?.block_on(run(plain, args))
}

async fn run(plain: bool, args: Vec<String>) -> zenoh::Result<()> {
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", endpoint] => {
            let session = open(plain, Some(endpoint), None).await?;
            let _queryable = session
                .declare_queryable(KEY)
                .callback(|query| {
                    use zenoh::Wait;
                    let payload = query.payload().map(|p| p.to_bytes().into_owned()).unwrap_or_default();
                    let _ = query.reply(KEY, payload).wait();
                })
                .await?;
            println!("ready");
            std::future::pending::<()>().await;
            Ok(())
        }
        ["query", endpoint, n] => {
            let n: usize = n.parse()?;
            let session = open(plain, None, Some(endpoint)).await?;
            let payload = vec![7u8; PAYLOAD_BYTES];
            let mut times = Vec::with_capacity(n);
            for i in 0..n + n / 10 {
                let t = Instant::now();
                let replies = session
                    .get(KEY)
                    .payload(payload.clone())
                    .target(QueryTarget::All)
                    .allowed_destination(Locality::Remote)
                    .await?;
                let reply = replies.recv_async().await?;
                reply.result().map_err(|e| format!("an error reply: {e:?}"))?;
                if i >= n / 10 {
                    times.push(t.elapsed());
                }
            }
            times.sort();
            println!(
                r#"{{"n": {n}, "p50_us": {:.1}, "p99_us": {:.1}}}"#,
                percentile(&times, 0.5),
                percentile(&times, 0.99)
            );
            session.close().await?;
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}
