//! Init time: from process start to the first `GET /2018-06-01/runtime/invocation/next` on a
//! local Runtime API, for each binary given, median of several starts after warm-ups. Also the
//! resident memory once the function waits for its first event.
//!
//! `init-time [--runs N] [--json FILE] NAME=PATH ...` (put the baseline first, e.g.
//! `hello=target/release/hello`; ratios are against it). Each binary gets the configuration the
//! template gives Runnel's functions, pointing at nothing: init must not make network calls.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use runnel_bench::median;

const NEXT: &[u8] = b"GET /2018-06-01/runtime/invocation/next";
const WARM_UPS: usize = 3;

struct Start {
    init: Duration,
    rss_kib: u64,
}

fn start_once(path: &str) -> anyhow::Result<Start> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let first = listener.accept().and_then(|(mut socket, _)| {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while !line.ends_with(b"\r\n") && socket.read(&mut byte)? == 1 {
                line.push(byte[0]);
            }
            Ok((Instant::now(), line, socket))
        });
        let _ = tx.send(first);
    });
    let started = Instant::now();
    let mut child = Command::new(path)
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", addr.to_string().as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "bench"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            ("OUTPUT_BUCKET", "bench-curated"),
            // As the template deploys them: s3-ingest starts the day's Glue job, failure-alert
            // keeps dedupe markers.
            ("GLUE_JOB_NAME", "bench-daily-etl"),
            ("DEDUPE_BUCKET", "bench-curated"),
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:bench",
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {path}"))?;
    let result = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(accepted) => break accepted.context("reading the first request"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait()? {
                    bail!("{path} exited during init ({status}); run it by hand to see why");
                }
                if started.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    bail!("{path} made no Runtime API request within 10 s");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the listener thread ended"),
        }
    };
    let outcome = result.and_then(|(at, line, socket)| {
        if !line.starts_with(NEXT) {
            bail!(
                "{path}: first request was {:?}",
                String::from_utf8_lossy(&line)
            );
        }
        // Let the process settle into its wait before reading its memory.
        std::thread::sleep(Duration::from_millis(20));
        let rss_kib = resident_kib(child.id()).unwrap_or(0);
        drop(socket);
        Ok(Start {
            init: at - started,
            rss_kib,
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// VmRSS of a process, in KiB (Linux).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn main() -> anyhow::Result<()> {
    let mut runs = 30;
    let mut json_out = None;
    let mut binaries = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .context("--runs needs a value")?
                    .parse()
                    .context("--runs takes a whole number")?
            }
            "--json" => json_out = Some(args.next().context("--json needs a value")?),
            spec => {
                let (name, path) = spec
                    .split_once('=')
                    .with_context(|| format!("{spec:?}: expected NAME=PATH"))?;
                binaries.push((name.to_string(), path.to_string()));
            }
        }
    }
    if binaries.is_empty() {
        bail!("give at least one NAME=PATH, the baseline first");
    }
    let mut results = Vec::new();
    for (name, path) in &binaries {
        let mut inits = Vec::new();
        let mut rss = Vec::new();
        for n in 0..WARM_UPS + runs {
            let start = start_once(path)?;
            if n >= WARM_UPS {
                inits.push(start.init);
                rss.push(start.rss_kib);
            }
        }
        rss.sort_unstable();
        results.push((name.clone(), median(inits), rss[rss.len() / 2]));
    }
    let base = results[0].1.as_secs_f64();
    println!(
        "init time, median of {runs} starts (process start → first GET /runtime/invocation/next):"
    );
    let mut figures = Vec::new();
    for (name, init, rss) in &results {
        let ms = init.as_secs_f64() * 1e3;
        let ratio = init.as_secs_f64() / base;
        println!(
            "  {name:<20} {ms:>7.2} ms  {ratio:>5.2}× {:<10}  RSS after init {:>6.1} MiB",
            if name == &results[0].0 {
                "(baseline)"
            } else {
                ""
            },
            *rss as f64 / 1024.0
        );
        figures
            .push(serde_json::json!({"name": name, "init_ms": ms, "ratio": ratio, "rss_kib": rss}));
    }
    if let Some(path) = json_out {
        std::fs::write(&path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
