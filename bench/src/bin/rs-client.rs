//! Rust benchmark clients: the TCP floor, raw blocking tungstenite, and
//! tokio-tungstenite. Prints one JSON object (one line) with the results.
//!
//!   rs-client CLIENT SCENARIO [key=value ...]
//!
//! CLIENT: floor | tungstenite | tokio
//! SCENARIO and keys (defaults in brackets):
//!   pingpong  url= n=[20000] warmup=[1000] size=[64]
//!   pipelined url= n=[1000000] size=[64]
//!   bulk      url= size=[16777216] reps=[3]
//!   scale     url= n=[1000] idle=[5]   (seconds of idling measured)
//!   handshake url= n=[200] ca=FILE     (ca for wss:// URLs)
//! The floor needs no url: it runs its own TCP echo thread in-process.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

type Args = HashMap<String, String>;

fn arg<T: std::str::FromStr>(a: &Args, k: &str, d: T) -> T {
    a.get(k).and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn url(a: &Args) -> String {
    a.get("url").cloned().expect("url= is required")
}

fn host_port(u: &str) -> String {
    let rest = u.split("://").nth(1).expect("url");
    rest.split('/').next().unwrap().to_string()
}

fn cfg() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

fn payload(size: usize) -> String {
    "x".repeat(size)
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of the whole process, in microseconds.
fn cpu_us() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn lat_json(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "\"n\":{},\"median_us\":{:.2},\"p99_us\":{:.2},\"min_us\":{:.2}",
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.99),
        v[0]
    )
}

// ------------------------------------------------------------------ floor

fn floor(scn: &str, a: &Args) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    match scn {
        "pingpong" => {
            let size = arg(a, "size", 64usize);
            std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                s.set_nodelay(true).unwrap();
                let mut b = vec![0u8; size];
                while s.read_exact(&mut b).is_ok() {
                    if s.write_all(&b).is_err() {
                        return;
                    }
                }
            });
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            let n = arg(a, "n", 20000usize);
            let w = arg(a, "warmup", 1000usize);
            let out = vec![b'x'; size];
            let mut b = vec![0u8; size];
            let mut lat = Vec::with_capacity(n);
            for i in 0..n + w {
                let t = Instant::now();
                c.write_all(&out).unwrap();
                c.read_exact(&mut b).unwrap();
                if i >= w {
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
            format!("{{{}}}", lat_json(lat))
        }
        "bulk" => {
            // Store and forward, like a WebSocket echo of one message: the
            // echo thread reads all `size` bytes, then writes them back.
            let size = arg(a, "size", 16usize << 20);
            let reps = arg(a, "reps", 3usize);
            std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                s.set_nodelay(true).unwrap();
                let mut b = vec![0u8; size];
                while s.read_exact(&mut b).is_ok() {
                    if s.write_all(&b).is_err() {
                        return;
                    }
                }
            });
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            let out = vec![7u8; size];
            let mut b = vec![0u8; size];
            let mut times = Vec::new();
            for _ in 0..reps + 1 {
                let t = Instant::now();
                c.write_all(&out).unwrap();
                c.read_exact(&mut b).unwrap();
                times.push(t.elapsed().as_secs_f64());
            }
            bulk_json(size, times)
        }
        _ => panic!("floor: no scenario {scn}"),
    }
}

/// The first echo is a warm-up; throughput of the median of the rest.
fn bulk_json(size: usize, mut times: Vec<f64>) -> String {
    times.remove(0);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = pct(&times, 0.5);
    format!(
        "{{\"size\":{size},\"reps\":{},\"median_ms\":{:.3},\"mib_per_s\":{:.1}}}",
        times.len(),
        med * 1e3,
        size as f64 / (1 << 20) as f64 / med
    )
}

// ------------------------------------------------------------ tungstenite

fn tls_client_config(a: &Args) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let ca = a.get("ca").expect("ca= is required for wss://");
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(c.expect("CA PEM")).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn tung_connect(u: &str) -> WebSocket<TcpStream> {
    let s = TcpStream::connect(host_port(u)).unwrap();
    s.set_nodelay(true).unwrap();
    tungstenite::client::client_with_config(u, s, Some(cfg()))
        .map_err(|e| format!("{e}"))
        .unwrap()
        .0
}

fn tung_read_data(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        let m = ws.read().unwrap();
        if m.is_text() || m.is_binary() {
            return m;
        }
    }
}

fn tung(scn: &str, a: &Args) -> String {
    match scn {
        "pingpong" => {
            let mut ws = tung_connect(&url(a));
            let n = arg(a, "n", 20000usize);
            let w = arg(a, "warmup", 1000usize);
            let p = payload(arg(a, "size", 64usize));
            let mut lat = Vec::with_capacity(n);
            for i in 0..n + w {
                let t = Instant::now();
                ws.send(Message::text(p.as_str())).unwrap();
                tung_read_data(&mut ws);
                if i >= w {
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
            let _ = ws.close(None);
            format!("{{{}}}", lat_json(lat))
        }
        "pipelined" => {
            let mut ws = tung_connect(&url(a));
            let n = arg(a, "n", 1_000_000usize);
            let p = payload(arg(a, "size", 64usize));
            // The writer: a second WebSocket (client role) over a clone of
            // the same TCP stream, on its own thread.
            let w = ws.get_ref().try_clone().unwrap();
            let t0 = Instant::now();
            let writer = std::thread::spawn(move || {
                let mut wws = WebSocket::from_raw_socket(w, Role::Client, Some(cfg()));
                let msg = tungstenite::Utf8Bytes::from(p);
                for _ in 0..n {
                    wws.write(Message::Text(msg.clone())).unwrap();
                }
                wws.flush().unwrap();
            });
            let mut got = 0usize;
            while got < n {
                if let Message::Text(_) = ws.read().unwrap() {
                    got += 1;
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            writer.join().unwrap();
            pipe_json(n, secs)
        }
        "bulk" => {
            let mut ws = tung_connect(&url(a));
            let size = arg(a, "size", 16usize << 20);
            let reps = arg(a, "reps", 3usize);
            let data = tungstenite::Bytes::from(vec![7u8; size]);
            let mut times = Vec::new();
            for _ in 0..reps + 1 {
                let t = Instant::now();
                ws.send(Message::Binary(data.clone())).unwrap();
                let m = tung_read_data(&mut ws);
                assert_eq!(m.len(), size);
                times.push(t.elapsed().as_secs_f64());
            }
            bulk_json(size, times)
        }
        "scale" => {
            let u = url(a);
            let n = arg(a, "n", 1000usize);
            let idle = arg(a, "idle", 5.0f64);
            let r0 = rss_kib();
            let t = Instant::now();
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(tung_connect(&u));
            }
            let open_s = t.elapsed().as_secs_f64();
            let r1 = rss_kib();
            let c0 = cpu_us();
            std::thread::sleep(Duration::from_secs_f64(idle));
            let c1 = cpu_us();
            scale_json(n, open_s, r0, r1, c0, c1, idle)
        }
        "handshake" => {
            let u = url(a);
            let n = arg(a, "n", 200usize);
            let tls = u.starts_with("wss://").then(|| tls_client_config(a));
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n + 5 {
                let t = Instant::now();
                let s = TcpStream::connect(host_port(&u)).unwrap();
                s.set_nodelay(true).unwrap();
                if let Some(tls) = &tls {
                    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                    let conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
                    let stream = rustls::StreamOwned::new(conn, s);
                    let (mut ws, _) =
                        tungstenite::client::client_with_config(u.as_str(), stream, Some(cfg()))
                            .map_err(|e| format!("{e}"))
                            .unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                    let _ = ws.close(None);
                    while ws.read().is_ok() {}
                } else {
                    let (mut ws, _) =
                        tungstenite::client::client_with_config(u.as_str(), s, Some(cfg()))
                            .map_err(|e| format!("{e}"))
                            .unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                    let _ = ws.close(None);
                    while ws.read().is_ok() {}
                }
            }
            lat.drain(0..5); // warm-up
            format!("{{{}}}", lat_json(lat))
        }
        _ => panic!("tungstenite: no scenario {scn}"),
    }
}

fn pipe_json(n: usize, secs: f64) -> String {
    format!(
        "{{\"n\":{n},\"secs\":{secs:.3},\"msgs_per_s\":{:.0}}}",
        n as f64 / secs
    )
}

fn scale_json(n: usize, open_s: f64, r0: u64, r1: u64, c0: u64, c1: u64, idle: f64) -> String {
    format!(
        "{{\"n\":{n},\"open_s\":{open_s:.3},\"rss_before_kib\":{r0},\"rss_after_kib\":{r1},\
         \"rss_per_socket_kib\":{:.1},\"idle_s\":{idle},\"idle_cpu_ms\":{:.2}}}",
        (r1 as f64 - r0 as f64) / n as f64,
        (c1 - c0) as f64 / 1e3
    )
}

// ------------------------------------------------------- tokio-tungstenite

mod tok {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio_tungstenite::WebSocketStream;

    async fn connect(u: &str) -> WebSocketStream<tokio::net::TcpStream> {
        let s = tokio::net::TcpStream::connect(host_port(u)).await.unwrap();
        s.set_nodelay(true).unwrap();
        tokio_tungstenite::client_async_with_config(u, s, Some(cfg()))
            .await
            .map_err(|e| format!("{e}"))
            .unwrap()
            .0
    }

    async fn next_data<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Message {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            if m.is_text() || m.is_binary() {
                return m;
            }
        }
    }

    pub async fn run(scn: &str, a: &Args) -> String {
        match scn {
            "pingpong" => {
                let mut ws = connect(&url(a)).await;
                let n = arg(a, "n", 20000usize);
                let w = arg(a, "warmup", 1000usize);
                let p = payload(arg(a, "size", 64usize));
                let mut lat = Vec::with_capacity(n);
                for i in 0..n + w {
                    let t = Instant::now();
                    ws.send(Message::text(p.as_str())).await.unwrap();
                    next_data(&mut ws).await;
                    if i >= w {
                        lat.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                format!("{{{}}}", lat_json(lat))
            }
            "pipelined" => {
                let ws = connect(&url(a)).await;
                let n = arg(a, "n", 1_000_000usize);
                let msg = tungstenite::Utf8Bytes::from(payload(arg(a, "size", 64usize)));
                let (mut sink, mut stream) = ws.split();
                let t0 = Instant::now();
                // Sender and receiver are separate tasks (the runtime has 2
                // worker threads). feed() buffers; one flush at the end
                // (tungstenite also flushes whenever its buffer fills).
                let sender = tokio::spawn(async move {
                    for _ in 0..n {
                        sink.feed(Message::Text(msg.clone())).await.unwrap();
                    }
                    sink.flush().await.unwrap();
                    sink
                });
                let receiver = tokio::spawn(async move {
                    let mut got = 0usize;
                    while got < n {
                        if let Message::Text(_) = stream.next().await.unwrap().unwrap() {
                            got += 1;
                        }
                    }
                    t0.elapsed().as_secs_f64()
                });
                let secs = receiver.await.unwrap();
                let _ = sender.await;
                pipe_json(n, secs)
            }
            "bulk" => {
                let mut ws = connect(&url(a)).await;
                let size = arg(a, "size", 16usize << 20);
                let reps = arg(a, "reps", 3usize);
                let data = tungstenite::Bytes::from(vec![7u8; size]);
                let mut times = Vec::new();
                for _ in 0..reps + 1 {
                    let t = Instant::now();
                    ws.send(Message::Binary(data.clone())).await.unwrap();
                    let m = next_data(&mut ws).await;
                    assert_eq!(m.len(), size);
                    times.push(t.elapsed().as_secs_f64());
                }
                bulk_json(size, times)
            }
            "scale" => {
                let u = url(a);
                let n = arg(a, "n", 1000usize);
                let idle = arg(a, "idle", 5.0f64);
                let r0 = rss_kib();
                let t = Instant::now();
                // Open concurrently; each connection then lives in its own
                // task waiting for messages.
                let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(n.max(1));
                for _ in 0..n {
                    let u = u.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let mut ws = connect(&u).await;
                        tx.send(()).await.unwrap();
                        while let Some(Ok(_)) = ws.next().await {}
                    });
                }
                for _ in 0..n {
                    rx.recv().await.unwrap();
                }
                let open_s = t.elapsed().as_secs_f64();
                let r1 = rss_kib();
                let c0 = cpu_us();
                tokio::time::sleep(Duration::from_secs_f64(idle)).await;
                let c1 = cpu_us();
                scale_json(n, open_s, r0, r1, c0, c1, idle)
            }
            "handshake" => {
                let u = url(a);
                let n = arg(a, "n", 200usize);
                let tls = u
                    .starts_with("wss://")
                    .then(|| tokio_rustls::TlsConnector::from(tls_client_config(a)));
                let mut lat = Vec::with_capacity(n);
                for _ in 0..n + 5 {
                    let t = Instant::now();
                    let s = tokio::net::TcpStream::connect(host_port(&u)).await.unwrap();
                    s.set_nodelay(true).unwrap();
                    if let Some(tls) = &tls {
                        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                        let s = tls.connect(name, s).await.unwrap();
                        let (mut ws, _) =
                            tokio_tungstenite::client_async_with_config(u.as_str(), s, Some(cfg()))
                                .await
                                .unwrap();
                        lat.push(t.elapsed().as_secs_f64() * 1e6);
                        let _ = ws.close(None).await;
                        while let Some(Ok(_)) = ws.next().await {}
                    } else {
                        let (mut ws, _) =
                            tokio_tungstenite::client_async_with_config(u.as_str(), s, Some(cfg()))
                                .await
                                .unwrap();
                        lat.push(t.elapsed().as_secs_f64() * 1e6);
                        let _ = ws.close(None).await;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                }
                lat.drain(0..5);
                format!("{{{}}}", lat_json(lat))
            }
            _ => panic!("tokio: no scenario {scn}"),
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() < 2 {
        eprintln!("usage: rs-client floor|tungstenite|tokio SCENARIO [key=value ...]");
        std::process::exit(2);
    }
    let a: Args = argv[2..]
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let scn = argv[1].as_str();
    let out = match argv[0].as_str() {
        "floor" => floor(scn, &a),
        "tungstenite" => tung(scn, &a),
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(tok::run(scn, &a)),
        c => panic!("no client {c}"),
    };
    println!("{out}");
}
