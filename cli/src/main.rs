//! `runnel produce`: sends IoT readings to a Kinesis stream — from an NDJSON or CSV file, or
//! generated at a given count and rate — with PutRecords batching and retry of failed records.
//! `runnel new`: writes a new pipeline function crate (see [`new`]).
//! `runnel replay`: invokes a function again with a batch its event source mapping gave up on.
//! `runnel quarantine`: lists, shows and redrives quarantined entries.

mod new;
mod quarantine;
mod replay;

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use runnel::apps::producer::{Entry, Producer, RetryPolicy};

#[derive(Parser)]
#[command(name = "runnel", version, about = "Runnel pipeline tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send readings to a Kinesis stream.
    Produce(ProduceArgs),
    /// Create a new pipeline function: a crate with a sample transform, tests, events and a SAM
    /// template.
    New(new::NewArgs),
    /// Invoke a function again with a batch its event source mapping gave up on, from the
    /// on-failure record (S3 object, SQS/SNS message body) or the Kinesis range an alert names.
    Replay(replay::ReplayArgs),
    /// List, show and redrive quarantined entries and rows (through the function's current
    /// transform).
    Quarantine(quarantine::QuarantineArgs),
}

#[derive(clap::Args)]
struct ProduceArgs {
    /// Stream name.
    #[arg(long)]
    stream: String,
    /// Read readings from this NDJSON (.ndjson/.jsonl) or CSV (.csv, with a header) file.
    #[arg(long)]
    input: Option<std::path::PathBuf>,
    /// Generate this many synthetic readings (when no --input).
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Also send this many poison records (bad JSON, out-of-range values) among them.
    #[arg(long, default_value_t = 0)]
    poison: u64,
    /// Records per second (0: as fast as the stream takes them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Field whose value is the partition key.
    #[arg(long, default_value = "device_id")]
    partition_key_field: String,
    /// Pack this many readings into one record as NDJSON (1: one reading per record).
    #[arg(long, default_value_t = 1)]
    aggregate: usize,
    /// Gzip each record.
    #[arg(long)]
    gzip: bool,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Day of the synthetic event times (YYYY-MM-DD; default today, UTC).
    #[arg(long)]
    day: Option<String>,
}

/// A reproducible synthetic reading.
fn synthetic(i: u64, seed: u64, day: &str) -> serde_json::Value {
    let mut x = seed ^ (i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let device = next() % 500;
    let seconds = i % 86_400;
    serde_json::json!({
        "device_id": format!("sensor-{device:04}"),
        "ts": format!("{day}T{:02}:{:02}:{:02}Z", seconds / 3600, (seconds / 60) % 60, seconds % 60),
        "temperature": 15.0 + (next() % 2000) as f64 / 100.0,
        "unit": "C",
        "humidity": 30.0 + (next() % 4000) as f64 / 100.0,
        "battery": (next() % 100) as f64,
    })
}

fn poison(i: u64) -> Vec<u8> {
    match i % 3 {
        0 => br#"{"device_id":"sensor-x","ts":"#.to_vec(),
        1 => br#"{"device_id":"sensor-x","ts":"2026-11-22T00:00:00Z","temperature":999}"#.to_vec(),
        _ => b"\x00\x01 not a reading".to_vec(),
    }
}

fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".csv") {
        let mut reader = csv::Reader::from_reader(file);
        let headers = reader.headers()?.clone();
        let mut out = Vec::new();
        for (n, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{} row {}", path.display(), n + 2))?;
            let mut obj = serde_json::Map::new();
            for (h, v) in headers.iter().zip(row.iter()) {
                let value = v
                    .parse::<f64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| v.into());
                obj.insert(h.to_string(), value);
            }
            out.push(serde_json::Value::Object(obj));
        }
        Ok(out)
    } else {
        std::io::BufReader::new(file)
            .lines()
            .enumerate()
            .filter(|(_, l)| l.as_ref().map(|l| !l.trim().is_empty()).unwrap_or(true))
            .map(|(n, l)| {
                let l = l?;
                serde_json::from_str(&l)
                    .with_context(|| format!("{} line {}", path.display(), n + 1))
            })
            .collect()
    }
}

fn encode(data: Vec<u8>, gzip: bool) -> Vec<u8> {
    if !gzip {
        return data;
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &data).expect("write to memory");
    e.finish().expect("finish in memory")
}

async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    if args.aggregate == 0 {
        bail!("--aggregate must be at least 1");
    }
    let day = args
        .day
        .clone()
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
    let readings = match &args.input {
        Some(path) => read_input(path)?,
        None => (0..args.count)
            .map(|i| synthetic(i, args.seed, &day))
            .collect(),
    };
    let mut entries: Vec<Entry> = readings
        .chunks(args.aggregate)
        .map(|chunk| {
            let key = chunk[0]
                .get(&args.partition_key_field)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_else(|| "none".into());
            let mut data = Vec::new();
            for r in chunk {
                data.extend_from_slice(r.to_string().as_bytes());
                data.push(b'\n');
            }
            Entry {
                partition_key: key,
                data: encode(data, args.gzip),
            }
        })
        .collect();
    // Spread the poison records evenly through the stream.
    if args.poison > 0 {
        let step = (entries.len() as u64 / (args.poison + 1)).max(1) as usize;
        for p in 0..args.poison {
            let at = ((p as usize + 1) * step).min(entries.len());
            entries.insert(
                at,
                Entry {
                    partition_key: format!("poison-{p}"),
                    data: poison(p),
                },
            );
        }
    }
    let aws = runnel::aws::Aws::from_env().await;
    let producer = Producer::new(aws.kinesis(), &args.stream, RetryPolicy::default());
    let total = entries.len() as u64;
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} {msg}")
                .expect("valid template"),
        );
        b
    });
    let started = Instant::now();
    let chunk = if args.rate == 0 {
        entries.len().max(1)
    } else {
        (args.rate as usize).clamp(1, 500)
    };
    let mut sent = 0u64;
    let mut last_line = Instant::now();
    for (n, part) in entries.chunks(chunk).enumerate() {
        let report = producer
            .send(part, |p| {
                if let Some(b) = &bar {
                    b.set_position(sent + p.sent);
                    b.set_message(format!("{} retried", p.retried));
                } else if last_line.elapsed() > Duration::from_secs(2) || sent + p.sent == total {
                    eprintln!(
                        "produce: {}/{} records sent, {} retried",
                        sent + p.sent,
                        total,
                        p.retried
                    );
                    last_line = Instant::now();
                }
            })
            .await?;
        sent += report.sent;
        if args.rate > 0 {
            let due = Duration::from_secs_f64((n + 1) as f64 * chunk as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    if let Some(b) = bar {
        b.finish();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"stream\":{:?},\"records\":{sent},\"poison\":{},\"seconds\":{secs:.2}}}",
        args.stream, args.poison
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let result = match Cli::parse().command {
        Command::Produce(args) => produce(args).await,
        Command::New(args) => new::run(args),
        Command::Replay(args) => replay::run(args).await,
        Command::Quarantine(args) => quarantine::run(args).await,
    };
    // The message and its causes; a backtrace would bury them and says nothing to a user.
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
