//! `runnel quarantine list | show | redrive`: what a pipeline set aside, and processing it again
//! through the function's current transform (see `runnel::pipeline::redrive`). Stream entries
//! and ingested rows share one format and one layout (`<prefix>/dt=<day>/`), so the same
//! commands serve a stream function and an ingest function.

use std::collections::{BTreeMap, HashSet};

use anyhow::{bail, Context};
use runnel::pipeline::redrive::{QuarantinedEntry, RedriveAnswer, RedriveRequest};

/// Requests stay well under Lambda's 6 MB synchronous payload.
const REQUEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(clap::Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    command: QuarantineCommand,
}

#[derive(clap::Subcommand)]
enum QuarantineCommand {
    /// Count entries by day, kind and reason.
    List(Select),
    /// Print one entry, its data decoded.
    Show {
        /// The entry's `_id`.
        id: String,
        #[command(flatten)]
        at: Location,
    },
    /// Process entries again through the function's current transform (a stream function's
    /// entries, or an ingest function's rows): entries valid now land with their original ids
    /// and leave quarantine; the others stay.
    Redrive {
        #[command(flatten)]
        select: Select,
        /// The pipeline's function.
        #[arg(long)]
        function: String,
        /// Only say what would be redriven.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Args)]
struct Location {
    /// The quarantine bucket.
    #[arg(long, env = "QUARANTINE_BUCKET")]
    bucket: String,
    /// The pipeline's quarantine prefix.
    #[arg(long, env = "QUARANTINE_PREFIX", default_value = "quarantine/iot")]
    prefix: String,
}

#[derive(clap::Args)]
struct Select {
    #[command(flatten)]
    at: Location,
    /// Only this arrival day (YYYY-MM-DD).
    #[arg(long)]
    day: Option<String>,
    /// Only this kind (`validation`, `json`, `rejected`, …).
    #[arg(long)]
    kind: Option<String>,
    /// Only these entries (repeat the flag).
    #[arg(long = "id")]
    ids: Vec<String>,
}

/// An entry and where it is stored.
struct Stored {
    key: String,
    entry: QuarantinedEntry,
}

/// One quarantine object: its version and its lines, each with its entry's `_id` (`None`: not
/// an entry, kept as it is).
struct Object {
    etag: Option<String>,
    lines: Vec<(Option<String>, String)>,
}

pub async fn run(args: QuarantineArgs) -> anyhow::Result<()> {
    let aws = runnel::aws::Aws::from_env().await;
    let s3 = aws.s3();
    match args.command {
        QuarantineCommand::List(select) => {
            let (entries, _) = read(&s3, &select).await?;
            let mut groups: BTreeMap<(String, String, String), usize> = BTreeMap::new();
            for s in &entries {
                let e = &s.entry;
                *groups
                    .entry((e.day(), e.kind.clone(), e.reason.clone()))
                    .or_default() += 1;
            }
            println!("{:<14} {:<11} {:>7}  reason", "day", "kind", "entries");
            for ((day, kind, reason), n) in &groups {
                let day = day.trim_start_matches("dt=");
                println!("{day:<14} {kind:<11} {n:>7}  {}", shorten(reason, 100));
            }
            println!("{} entries", entries.len());
        }
        QuarantineCommand::Show { id, at } => {
            let select = Select {
                at,
                day: None,
                kind: None,
                ids: vec![id.clone()],
            };
            let (entries, _) = read(&s3, &select).await?;
            let Some(found) = entries.first() else {
                bail!(
                    "no entry {id} under s3://{}/{}/",
                    select.at.bucket,
                    select.at.prefix
                );
            };
            println!("s3://{}/{}", select.at.bucket, found.key);
            println!("{}", serde_json::to_string_pretty(&found.entry)?);
            match found.entry.data() {
                Ok(data) => println!("data: {}", String::from_utf8_lossy(&data)),
                Err(e) => println!("data: not base64 ({e})"),
            }
        }
        QuarantineCommand::Redrive {
            select,
            function,
            dry_run,
        } => redrive(&aws, &s3, &select, &function, dry_run).await?,
    }
    Ok(())
}

async fn redrive(
    aws: &runnel::aws::Aws,
    s3: &aws_sdk_s3::Client,
    select: &Select,
    function: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let (entries, objects) = read(s3, select).await?;
    if entries.is_empty() {
        println!("redrive: no entries selected");
        return Ok(());
    }
    if dry_run {
        println!(
            "redrive: would send {} entries to {function}",
            entries.len()
        );
        return Ok(());
    }
    let lambda = aws.lambda();
    let mut total = RedriveAnswer::default();
    let mut batch: Vec<QuarantinedEntry> = Vec::new();
    let mut size = 0;
    for (n, s) in entries.iter().enumerate() {
        size += s.entry.data_base64.len() + 512;
        batch.push(s.entry.clone());
        if size >= REQUEST_BYTES || n + 1 == entries.len() {
            let request = RedriveRequest {
                entries: std::mem::take(&mut batch),
            };
            size = 0;
            let event = serde_json::to_vec(&request.to_event())?;
            let answer = runnel::apps::replay::invoke(&lambda, function, event)
                .await
                .with_context(|| format!("invoking {function}"))?;
            if let Some(error) = answer.function_error {
                bail!("{function} failed ({error}): {}", answer.body);
            }
            let answer: RedriveAnswer = serde_json::from_value(answer.body.clone())
                .with_context(|| format!("{function} did not answer a redrive: {}", answer.body))?;
            total.landed.extend(answer.landed);
            total.still_bad.extend(answer.still_bad);
            total.failed.extend(answer.failed);
        }
    }
    let removed = remove_landed(s3, &select.at.bucket, &objects, &total.landed).await?;
    println!(
        "redrive: {} entries: {} landed ({removed} removed from quarantine), {} still bad, {} failed",
        entries.len(),
        total.landed.len(),
        total.still_bad.len(),
        total.failed.len()
    );
    for bad in &total.still_bad {
        println!("  still bad: {} — {}", bad.id, shorten(&bad.reason, 120));
    }
    if !total.failed.is_empty() {
        bail!(
            "{} entries failed transiently ({}): redrive again (nothing lands twice)",
            total.failed.len(),
            total.failed.join(", ")
        );
    }
    Ok(())
}

/// Rewrites each object that held a landed entry without it (deleted when nothing is left),
/// only if the object is unchanged since it was read.
async fn remove_landed(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    objects: &BTreeMap<String, Object>,
    landed: &[String],
) -> anyhow::Result<usize> {
    let landed: HashSet<&str> = landed.iter().map(String::as_str).collect();
    let mut removed = 0;
    for (key, object) in objects {
        let keep: Vec<&String> = object
            .lines
            .iter()
            .filter(|(id, _)| id.as_deref().is_none_or(|id| !landed.contains(id)))
            .map(|(_, line)| line)
            .collect();
        if keep.len() == object.lines.len() {
            continue;
        }
        let gone = object.lines.len() - keep.len();
        let result = if keep.is_empty() {
            s3.delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| anyhow::Error::new(aws_sdk_s3::Error::from(e)))
        } else {
            let mut body = String::new();
            for line in keep {
                body.push_str(line);
                body.push('\n');
            }
            let mut put = s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into_bytes().into())
                .content_type("application/x-ndjson");
            if let Some(etag) = &object.etag {
                put = put.if_match(etag);
            }
            put.send()
                .await
                .map(|_| ())
                .map_err(|e| anyhow::Error::new(aws_sdk_s3::Error::from(e)))
        };
        match result {
            Ok(()) => removed += gone,
            Err(e) => eprintln!(
                "redrive: s3://{bucket}/{key} left as it is ({e:#}); its landed entries stay \
                 listed until the next redrive, which lands nothing twice"
            ),
        }
    }
    Ok(removed)
}

/// The selected entries, and every object they are in.
async fn read(
    s3: &aws_sdk_s3::Client,
    select: &Select,
) -> anyhow::Result<(Vec<Stored>, BTreeMap<String, Object>)> {
    // Entries are under `dt=<day>/`; whole objects set aside by ingest (`objects/`) are not.
    let prefix = match &select.day {
        Some(day) => format!("{}/dt={day}/", select.at.prefix.trim_end_matches('/')),
        None => format!("{}/dt=", select.at.prefix.trim_end_matches('/')),
    };
    let bucket = &select.at.bucket;
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    let ids: HashSet<&str> = select.ids.iter().map(String::as_str).collect();
    let (mut entries, mut objects, mut unreadable) = (Vec::new(), BTreeMap::new(), 0);
    for key in keys {
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .with_context(|| format!("reading s3://{bucket}/{key}"))?;
        let etag = object.e_tag().map(str::to_string);
        let body = object.body.collect().await?.into_bytes();
        let text = String::from_utf8_lossy(&body);
        let mut lines = Vec::new();
        let mut selected = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(entry) = serde_json::from_str::<QuarantinedEntry>(line) else {
                unreadable += 1;
                lines.push((None, line.to_string()));
                continue;
            };
            lines.push((Some(entry.id.clone()), line.to_string()));
            let wanted = (ids.is_empty() || ids.contains(entry.id.as_str()))
                && select.kind.as_ref().is_none_or(|k| *k == entry.kind);
            if wanted {
                selected = true;
                entries.push(Stored {
                    key: key.clone(),
                    entry,
                });
            }
        }
        if selected {
            objects.insert(key, Object { etag, lines });
        }
    }
    if unreadable > 0 {
        eprintln!(
            "quarantine: {unreadable} lines under s3://{bucket}/{prefix} are not entries; skipped"
        );
    }
    Ok((entries, objects))
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
