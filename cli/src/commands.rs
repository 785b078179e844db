use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use collector::app::App;
use collector::config::{Backend, Config, Secret};
use collector::domain::export::{self, ExportFilter};
use collector::domain::input::ArchiveRequest;
use collector::domain::stats::{Overview, Stats, human_bytes};
use collector::domain::types::Platform;
use collector::http::{self, HttpState};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "collector",
    version,
    about = "Collects the data to fine-tune your own model: serve the API, inspect, archive, export."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the whole API on the embedded store (SQLite file + archive folder under COLLECTOR_DATA_DIR).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Mint a local bearer token (HS256 with COLLECTOR_JWT_SECRET).
    Token {
        #[arg(long)]
        sub: String,
        /// admin or service (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Lifetime, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        ttl: String,
    },
    /// Fill the store with realistic sample data.
    Demo {
        #[arg(long, default_value_t = 200)]
        count: u32,
        #[arg(long)]
        json: bool,
    },
    /// Storage statistics, costs and readiness.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Move records older than the retention period into gzip JSONL archives.
    Archive(ArchiveArgs),
    /// Write training data as JSONL.
    Export(ExportArgs),
}

#[derive(Args)]
struct ArchiveArgs {
    /// Archive records older than this many days (default DATA_RETENTION_DAYS).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days_old: Option<u32>,
    /// When another run holds the archive lease, wait for it (else exit with code 3).
    #[arg(long)]
    wait: bool,
    /// Show what would be archived; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print statistics only.
    #[arg(long)]
    stats_only: bool,
    #[arg(long)]
    platform: Option<String>,
    /// List every object written.
    #[arg(long)]
    verbose: bool,
    /// Also append the run's summary to this file.
    #[arg(long)]
    log_file: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    platform: String,
    /// openai (chat SFT), openai_dpo (preference pairs from corrections), bedrock.
    #[arg(long, default_value = "openai")]
    format: String,
    /// Only one side of the leakage-free split: train or validation (by user).
    #[arg(long)]
    split: Option<String>,
    /// Share of users on the validation side.
    #[arg(long, default_value_t = collector::domain::export::DEFAULT_VALIDATION_FRACTION)]
    validation_fraction: f64,
    /// Write the rejected lines' ids and reasons (JSONL) to this file.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Output file (default: stdout).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    #[arg(long)]
    include_archived: bool,
    /// Keep failed interactions too.
    #[arg(long)]
    include_failed: bool,
    #[arg(long)]
    with_feedback_only: bool,
    #[arg(long)]
    include_metadata: bool,
    /// RFC 3339 time or YYYY-MM-DD.
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    /// At most this many lines (>= 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    #[arg(long)]
    json: bool,
}

/// Another archive run holds the lease: exit code 3 (CONTRACT section 6a).
#[derive(Debug, thiserror::Error)]
#[error("archive_running: another archive run is in progress (use --wait to wait for it)")]
struct ArchiveRunning;

pub async fn run(cli: Cli) -> std::process::ExitCode {
    let serving = matches!(cli.command, Command::Serve { .. });
    init_tracing(serving);
    match dispatch(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<ArchiveRunning>().is_some() {
                std::process::ExitCode::from(3)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Logs go to stderr so `--json` output on stdout stays clean.
fn init_tracing(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn dispatch(cli: Cli) -> Result<()> {
    let mut config = Config::from_env()?;
    match cli.command {
        // Only the commands that sign or check tokens touch the secret (and so the data folder):
        // `stats` against the AWS backend leaves no local files behind.
        Command::Serve { addr } => {
            ensure_secret(&mut config)?;
            serve(config, &addr).await
        }
        Command::Token { sub, groups, ttl } => {
            ensure_secret(&mut config)?;
            token(&config, &sub, &groups, &ttl)
        }
        Command::Demo { count, json } => crate::demo::run(&open(config).await?, count, json).await,
        Command::Stats { json } => {
            let s = open(config).await?.stats().await?;
            print_stats(&s, json)
        }
        Command::Archive(a) => archive(open(config).await?, a).await,
        Command::Export(e) => export_cmd(open(config).await?, e).await,
    }
}

/// The store `COLLECTOR_BACKEND` names: the embedded one, or the AWS tables and bucket the
/// functions use (so `stats`, `archive` and `export` run against a deployment or the emulator).
async fn open(config: Config) -> Result<App> {
    match config.backend {
        Backend::Local => App::open_local(config).context("cannot open the embedded store"),
        Backend::Aws => App::open_aws(config).await.context("cannot open the AWS backend"),
    }
}

/// Without COLLECTOR_JWT_SECRET, `serve` and `token` share a random secret kept in the data
/// folder (mode 0600), so a newcomer needs no setup.
fn ensure_secret(config: &mut Config) -> Result<()> {
    if config.jwt_secret.is_some() {
        return Ok(());
    }
    let path = config.data_dir.join("jwt-secret");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
            let s = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            write_private(&path, &s).with_context(|| format!("cannot write {}", path.display()))?;
            s
        }
    };
    config.jwt_secret = Some(Secret::new(secret));
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(text.as_bytes())
}

/// Secrets shorter than this (in bytes) are warned about at start-up: HS256 tokens signed with a
/// short secret can be brute-forced offline from one token seen, into an admin's.
const SHORT_SECRET_BYTES: usize = 32;

async fn serve(config: Config, addr: &str) -> Result<()> {
    if config.jwt_secret.as_ref().is_some_and(|s| s.expose().len() < SHORT_SECRET_BYTES) {
        // The contract takes any secret; a short one still serves, and says so.
        eprintln!(
            "warning: COLLECTOR_JWT_SECRET is shorter than {SHORT_SECRET_BYTES} bytes: a token seen on the wire can be \
             brute-forced into an admin's; use e.g. `openssl rand -hex 32`"
        );
    }
    let app = open(config).await?;
    tokio::spawn(app.clone().housekeeping());
    let router = http::router(HttpState::local(app));
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "collector serving; docs at /docs");
    eprintln!("collector listening on http://{local} (docs: http://{local}/docs)");
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn parse_ttl(raw: &str) -> Result<Duration> {
    let raw = raw.trim();
    let (num, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = num.parse().with_context(|| format!("--ttl {raw:?}: expected a number with s, m, h or d"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("--ttl {raw:?}: unit must be s, m, h or d"),
    };
    // At most ten years: a token's `exp` must stay a sane timestamp.
    match n.checked_mul(unit_secs) {
        Some(secs) if secs <= 10 * 366 * 86400 => Ok(Duration::from_secs(secs)),
        _ => bail!("--ttl {raw:?}: at most 10 years"),
    }
}

fn token(config: &Config, sub: &str, groups: &[String], ttl: &str) -> Result<()> {
    for g in groups {
        if g != "admin" && g != "service" {
            bail!("--group {g:?}: must be admin or service");
        }
    }
    let secret = config.jwt_secret.as_ref().context("no JWT secret")?;
    let t = http::auth::mint_token(secret.expose(), sub, groups, &config.groups_claim, Some(parse_ttl(ttl)?))?;
    println!("{t}");
    Ok(())
}

fn print_stats(s: &Stats, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let o = &s.overview;
    println!("Records   {} total, {} active, {} archived", o.total_records, o.active_records, o.archived_records);
    println!(
        "Quality   {:.0}% successful, {:.0}% with feedback ({} positive, {} negative)",
        o.success_rate * 100.0,
        o.feedback_rate * 100.0,
        o.positive_feedback,
        o.negative_feedback
    );
    println!(
        "Storage   hot {}, archive {} in {} objects; compression saved {} on {} records",
        s.storage.hot_human,
        s.storage.archive_human,
        s.storage.archive_objects,
        human_bytes(s.storage.compression_saved_bytes),
        s.storage.compressed_records
    );
    println!(
        "Costs     ${:.4}/month (hot ${:.4}, archive ${:.4}); without archiving ${:.4}; saving ${:.4} ({:.1}%)",
        s.costs.total_monthly_usd,
        s.costs.hot_monthly_usd,
        s.costs.archive_monthly_usd,
        s.costs.without_archiving_monthly_usd,
        s.costs.savings_monthly_usd,
        s.costs.savings_percentage
    );
    if !s.by_platform.is_empty() {
        println!();
        println!(
            "{:<16} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}  readiness",
            "platform", "total", "active", "archived", "successful", "feedback", "hot"
        );
        for (p, c) in &s.by_platform {
            let r = s.training_readiness.get(p);
            println!(
                "{:<16} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}  {}{}",
                p,
                c.total,
                c.active,
                c.archived,
                c.successful,
                c.with_feedback,
                human_bytes(c.hot_bytes),
                r.map_or(0, |r| r.readiness_score),
                if r.is_some_and(|r| r.is_ready) { " ready" } else { "" }
            );
        }
    }
    if !s.recommendations.is_empty() {
        println!();
        for r in &s.recommendations {
            println!("- {r}");
        }
    }
    Ok(())
}

fn overview_line(o: &Overview) -> String {
    format!("{} total, {} active, {} archived", o.total_records, o.active_records, o.archived_records)
}

fn spinner(enabled: bool, msg: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} records [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_owned());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

async fn archive(app: App, a: ArchiveArgs) -> Result<()> {
    if a.stats_only {
        return print_stats(&app.stats().await?, a.json);
    }
    let platform =
        a.platform.as_deref().map(Platform::parse).transpose().map_err(|m| anyhow::anyhow!("--platform: {m}"))?;
    let pb = spinner(!a.json && std::io::stderr().is_terminal(), if a.dry_run { "planning" } else { "archiving" });
    let progress = {
        let pb = pb.clone();
        move |n: u64| pb.set_position(n)
    };
    let req = ArchiveRequest { days_old: a.days_old, dry_run: a.dry_run, platform, wait: a.wait };
    let report = match app.archive(&req, None, Some(&progress)).await {
        Ok(r) => r,
        Err(collector::app::AppError::ArchiveRunning) => {
            pb.finish_and_clear();
            return Err(ArchiveRunning.into());
        }
        Err(e) => return Err(anyhow::anyhow!(describe(e))),
    };
    pb.finish_and_clear();
    let mut text = String::new();
    text.push_str(&format!(
        "{}archived {} records older than {} into {} objects\n",
        if report.dry_run { "[dry run] would have " } else { "" },
        report.archived_records,
        report.cutoff.to_rfc3339(),
        report.archives.len()
    ));
    text.push_str(&format!("before: {}\nafter:  {}\n", overview_line(&report.before), overview_line(&report.after)));
    let m = &report.maintenance;
    if m.compacted_objects + m.rolled_forward + m.rolled_back + m.swept_objects > 0 {
        text.push_str(&format!(
            "erased {} deleted lines from {} objects; reconciled {} interrupted objects ({} rolled back); swept {}\n",
            m.erased_lines,
            m.compacted_objects,
            m.rolled_forward + m.rolled_back,
            m.rolled_back,
            m.swept_objects
        ));
    }
    if m.copied_unreadable_lines + m.dropped_corrupt_segments > 0 {
        text.push_str(&format!(
            "compaction kept {} unreadable archive lines as they were and dropped {} corrupt gzip segments (see the log)\n",
            m.copied_unreadable_lines, m.dropped_corrupt_segments
        ));
    }
    if m.failed_compactions > 0 {
        text.push_str(&format!(
            "could not compact {} archive objects (missing or unreadable, see the log): their deleted lines stay unreadable and the next run tries again\n",
            m.failed_compactions
        ));
    }
    if !report.complete {
        text.push_str("stopped for its time budget: run again to carry on\n");
    }
    if a.verbose {
        for o in &report.archives {
            text.push_str(&format!(
                "  {} {} records, {} -> {} ({:.1}x, {})\n",
                o.object_key,
                o.record_count,
                human_bytes(o.raw_bytes),
                human_bytes(o.compressed_bytes),
                o.compression_ratio,
                o.storage_class.as_str()
            ));
        }
    }
    if let Some(path) = &a.log_file {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(f, "{} {}", chrono::Utc::now().to_rfc3339(), text.trim_end().replace('\n', "\n  "))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// Expected failures in words; internal details were logged.
fn describe(e: collector::app::AppError) -> String {
    use collector::app::AppError;
    match e {
        AppError::ArchivingDisabled => "archiving is disabled (ENABLE_DATA_ARCHIVING=false)".into(),
        AppError::Validation(d) => {
            d.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}

async fn export_cmd(app: App, e: ExportArgs) -> Result<()> {
    use collector::domain::formats::{Format, Split};
    let format = Format::parse(&e.format)
        .with_context(|| format!("--format {:?}: must be openai, openai_dpo or bedrock", e.format))?;
    let split = e
        .split
        .as_deref()
        .map(|s| Split::parse(s).with_context(|| format!("--split {s:?}: must be train or validation")))
        .transpose()?;
    if !(0.0..=1.0).contains(&e.validation_fraction) {
        bail!("--validation-fraction {}: must be from 0 to 1", e.validation_fraction);
    }
    let platform = Platform::parse(&e.platform).map_err(|m| anyhow::anyhow!("platform: {m}"))?;
    let time = |name: &str, v: &Option<String>| -> Result<_> {
        v.as_deref()
            .map(|raw| {
                export::parse_time_or_date(raw)
                    .with_context(|| format!("--{name} {raw:?}: expected RFC 3339 or YYYY-MM-DD"))
            })
            .transpose()
    };
    let filter = ExportFilter {
        success_only: !e.include_failed,
        with_feedback_only: e.with_feedback_only,
        include_archived: e.include_archived,
        since: time("since", &e.since)?,
        until: time("until", &e.until)?,
        limit: e.limit,
        include_metadata: e.include_metadata,
        format,
        split,
        validation_fraction: e.validation_fraction,
        ..ExportFilter::default()
    };
    // A file export is written to a temporary file beside the target and renamed onto it only
    // once it is whole and recorded: a failed or cut export leaves the target as it was.
    let staged = match &e.output {
        Some(p) => {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let file = tempfile::Builder::new()
                .prefix(".collector-export-")
                .tempfile_in(dir)
                .with_context(|| format!("cannot create a file in {}", dir.display()))?;
            Some(file)
        }
        None => None,
    };
    let mut out: Box<dyn Write> = match &staged {
        Some(file) => Box::new(std::io::BufWriter::new(file.as_file())),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let pb = spinner(e.output.is_some() && !e.json && std::io::stderr().is_terminal(), "exporting");
    let req = collector::app::ExportRequest { platform: platform.clone(), filter };
    let (mut rx, summary) = app.export_counted(req.clone());
    let (mut lines, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!(describe(e)))?;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        bytes += chunk.len() as u64;
        out.write_all(&chunk)?;
        pb.set_position(lines);
    }
    out.flush()?;
    drop(out);
    pb.finish_and_clear();
    if let Some(file) = &staged {
        file.as_file().sync_all().context("cannot write the export")?;
    }
    let summary = summary.await.context("the export ended without a summary")?;
    // Every byte is written: its manifest (CONTRACT 4a), unless it wrote no line. An export not
    // to be used (e.g. records in it were deleted while it ran) is not renamed into place (the
    // temporary file goes when dropped); lines already written to stdout cannot be taken back,
    // the exit code says so.
    let manifest = app
        .record_export(collector::app::CLI_CALLER, &req, &summary)
        .await
        .map_err(|err| anyhow::anyhow!(describe(err)))?;
    if let (Some(file), Some(p)) = (staged, &e.output) {
        file.persist(p).map_err(|err| {
            // The export is recorded: keep its bytes where they are and say where.
            let kept = err.file.into_temp_path().keep().map(|t| t.display().to_string()).unwrap_or_default();
            anyhow::anyhow!("cannot rename the export onto {} ({}); it is in {kept}", p.display(), err.error)
        })?;
    }
    let export_id = manifest.as_ref().map(|m| m.export_id.to_string());
    if let Some(path) = &e.rejects {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        );
        for r in &summary.reject_samples {
            writeln!(f, "{}", serde_json::to_string(r)?)?;
        }
        f.flush()?;
    }
    let target = e.output.as_ref().map_or("stdout".to_owned(), |p| p.display().to_string());
    if e.json && e.output.is_some() {
        println!(
            "{}",
            serde_json::json!({"platform": platform.as_str(), "format": summary.format, "lines": lines, "bytes": bytes,
            "rejected": summary.rejected, "duplicates": summary.duplicates, "archive_skipped_lines": summary.archive_skipped_lines,
            "file": target, "export_id": export_id, "sha256": summary.sha256})
        );
    } else if !e.json {
        // On stderr, so an export to stdout stays pure JSONL.
        eprintln!(
            "wrote {lines} {} lines ({}) to {target}; left out {} duplicates and {} failing checks{}",
            summary.format,
            human_bytes(bytes as i64),
            summary.duplicates,
            summary.rejected_total(),
            if summary.rejected.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    summary.rejected.iter().map(|(r, n)| format!("{r}: {n}")).collect::<Vec<_>>().join(", ")
                )
            }
        );
    }
    // On stderr unless it is in the --json summary (with --json to stdout too, which has none).
    if let Some(id) = &export_id
        && !(e.json && e.output.is_some())
    {
        eprintln!("export id: {id} (sha256 {})", summary.sha256);
    }
    // Always on stderr when there are any (with --json to stdout too, which has no summary).
    if summary.archive_skipped_lines > 0 && !(e.json && e.output.is_some()) {
        eprintln!(
            "skipped {} unreadable archive lines (logged with their object key and line number)",
            summary.archive_skipped_lines
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(604800));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
