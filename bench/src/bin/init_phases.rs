//! Where a function's init time goes: each step of `StreamPipeline::run` before the first
//! Runtime API request, timed on its own, median of several rounds in fresh processes.
//!
//! Then the SDK configuration and an S3 client, with the default credential chain against the
//! environment's keys (what `runnel::aws` does when they are set), side by side.
//!
//! `init-phases [--runs N]`: re-runs itself once per round and measurement, so every round pays
//! the one-time costs (TLS roots, lazy statics) as a cold start does.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use runnel::pipeline::StreamConfig;
use runnel::sink::S3Store;

const PHASES: [&str; 5] = [
    "tokio runtime",
    "logging",
    "configuration",
    "SDK config (region, credentials)",
    "S3 client (HTTPS connector, TLS roots) + processor",
];

fn child() -> anyhow::Result<()> {
    let mut marks = vec![Instant::now()];
    let rt = tokio::runtime::Runtime::new()?;
    marks.push(Instant::now());
    rt.block_on(async {
        runnel::telemetry::init_logging("init-phases");
        marks.push(Instant::now());
        let config = StreamConfig::from_env("kinesis-processor")?;
        marks.push(Instant::now());
        let aws = runnel::aws::Aws::from_env().await;
        marks.push(Instant::now());
        let processor = kinesis_processor::pipeline()
            .store(S3Store::new(aws.s3()))
            .config(config)
            .build()?;
        marks.push(Instant::now());
        drop(processor);
        anyhow::Ok(())
    })?;
    let micros: Vec<String> = marks
        .windows(2)
        .map(|w| (w[1] - w[0]).as_micros().to_string())
        .collect();
    println!("{}", micros.join(" "));
    Ok(())
}

/// Loads an SDK configuration with the default chain or the environment's keys and builds an S3
/// client from it; prints µs.
fn sdk_load(kind: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let t = Instant::now();
    rt.block_on(async {
        let b = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(runnel::aws::https_client())
            .region(aws_config::Region::new("us-east-1"));
        let b = match kind {
            "env" => b.credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
            _ => b,
        };
        let sdk = b.load().await;
        // The client builds its HTTPS connector (TLS roots): include it, as a function's init does.
        drop(aws_sdk_s3::Client::new(&sdk));
    });
    println!("{}", t.elapsed().as_micros());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child();
    }
    if args.get(1).map(String::as_str) == Some("--sdk-load") {
        return sdk_load(args.get(2).map(String::as_str).unwrap_or("default"));
    }
    let runs: usize = match args.get(1).map(String::as_str) {
        Some("--runs") => args
            .get(2)
            .context("--runs needs a value")?
            .parse()
            .context("--runs takes a whole number")?,
        Some(other) => bail!("unknown argument {other:?}"),
        None => 30,
    };
    let me = std::env::current_exe()?;
    let run = |args: &[&str]| -> anyhow::Result<Vec<u64>> {
        let out = Command::new(&me)
            .args(args)
            .envs([
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("OUTPUT_BUCKET", "bench-curated"),
                ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ])
            .output()?;
        if !out.status.success() {
            bail!("child failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|v| v.parse().context("a number of µs"))
            .collect()
    };
    let median_ms = |mut s: Vec<u64>| {
        s.sort_unstable();
        s[s.len() / 2] as f64 / 1e3
    };
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); PHASES.len()];
    let (mut chain, mut keys) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (n, v) in run(&["--child"])?
            .into_iter()
            .enumerate()
            .take(PHASES.len())
        {
            samples[n].push(v);
        }
        chain.extend(run(&["--sdk-load", "default"])?);
        keys.extend(run(&["--sdk-load", "env"])?);
    }
    println!("init phases of kinesis-processor's main, median of {runs} fresh processes:");
    for (name, s) in PHASES.iter().zip(samples) {
        println!("  {name:<54} {:>7.2} ms", median_ms(s));
    }
    let (chain, keys) = (median_ms(chain), median_ms(keys));
    println!(
        "SDK config + S3 client: default credential chain {chain:.2} ms, environment keys {keys:.2} ms ({:.2}×)",
        chain / keys
    );
    Ok(())
}
