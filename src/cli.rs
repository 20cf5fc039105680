//! Command-line options (clap derive) and their resolution into a checked [`Plan`].
//!
//! Nothing past this module sees an option string: values are parsed into typed ones here, and
//! combinations are checked before any file is opened or request sent.

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use std::net::IpAddr;

use http::Method;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::config::{
    Config, FetchSettings, Limits, OutputOptions, Rate, StateSettings, default_user_agent,
    parse_bytes, parse_duration, parse_header, parse_method, parse_proxy, parse_resolve,
};
use crate::error::Error;
use crate::extract::{
    ExtractSpec, PatternSpec, SelectSpec, ValueSpec, parse_pattern, parse_select,
};
use crate::input::{ShardArg, Source};
use crate::output::{self, Format};
use crate::schedule::{RetryPolicy, RobotsPolicy, product_token};

const AFTER_HELP: &str = "\
Examples:
  fetch --concurrency 50 urls.txt > out.csv
  cat urls.txt | fetch -o out.csv
  fetch --rate 600/m --timeout 5s --max-time 10m a.txt b.txt -o out.csv

Exit codes: 0 done, 1 I/O error, 2 usage error, 3 more rows failed than
--fail-on-errors allows, 4 rows changed (--exit-on-change), 124 --max-time
reached, 130 interrupted (SIGINT), 143 terminated (SIGTERM).";

/// Fetch many URLs concurrently and write one CSV row per URL.
///
/// Reads URLs one per line from the files given (in order), or from stdin. Blank lines and lines
/// starting with '#' are skipped; every other line gets exactly one row, including lines that are
/// not valid URLs (they get an error row).
#[derive(Debug, Parser)]
#[command(name = "fetch", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Files of URLs, one per line; '-' reads stdin. With none, stdin is read when it is not a
    /// terminal.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Write the CSV to FILE instead of stdout.
    #[arg(help_heading = "Input and output", short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format: csv; jsonl (one JSON object per row, same keys, numbers as numbers, empty
    /// cells as null); or xlsx (a workbook with typed cells and a summary sheet; needs -o).
    /// Default: xlsx when -o ends in .xlsx, else csv.
    #[arg(help_heading = "Input and output", long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<Format>,

    /// The columns to write, in this order (comma-separated). Default: the default columns;
    /// starting with '+', those and then the ones named (e.g. +location,wire_bytes).
    /// Example: --fields line,url,status,title
    #[arg(
        help_heading = "Input and output",
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub fields: Option<Vec<String>>,

    /// Don't write the CSV header row (e.g. for all but one of several outputs to concatenate).
    #[arg(help_heading = "Input and output", long)]
    pub no_header: bool,

    /// Start the CSV with a UTF-8 byte-order mark, so Excel reads non-ASCII text correctly.
    #[arg(help_heading = "Input and output", long)]
    pub bom: bool,

    /// Write rows in input order instead of as they finish (see --order-window).
    #[arg(help_heading = "Input and output", long)]
    pub ordered: bool,

    /// With --ordered: how many lines may be read ahead of the oldest row not written yet. A slow
    /// URL holds up rows behind it by at most this many.
    #[arg(
        help_heading = "Input and output",
        long,
        value_name = "N",
        default_value_t = 10_000,
        requires = "ordered"
    )]
    pub order_window: usize,

    /// With -o FILE: continue an earlier run of the same list, skipping the lines already in FILE
    /// (or in FILE.partial, left by a crash), and append the rest.
    #[arg(help_heading = "Input and output", long, requires = "output")]
    pub resume: bool,

    /// Skip URLs already seen earlier in this run (no row for the repeats).
    #[arg(help_heading = "Input and output", long)]
    pub dedupe: bool,

    /// Take only shard K of N of the list (K from 0), split by host; auto/N reads K from
    /// JOB_COMPLETION_INDEX (Kubernetes) or SLURM_ARRAY_TASK_ID (Slurm).
    #[arg(help_heading = "Input and output", long, value_name = "K/N")]
    pub shard: Option<ShardArg>,

    /// Merge the outputs of several shards (FILEs) into one, header once, rows in line order
    /// when each shard ran with --ordered; write to -o or stdout.
    #[arg(help_heading = "Input and output", long)]
    pub merge: bool,

    /// Also write the summary as JSON to FILE, for monitoring.
    #[arg(help_heading = "Input and output", long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Remember what each URL looked like in an SQLite database FILE (created on first use):
    /// requests become conditional (If-None-Match, If-Modified-Since), and the columns change,
    /// changed_fields and last_changed compare each row with the last run. Implies --hash.
    #[arg(help_heading = "Memory between runs", long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// With --state: don't send the stored validators (every page is fetched whole); changes
    /// are still tracked.
    #[arg(help_heading = "Memory between runs", long, requires = "state")]
    pub no_conditional: bool,

    /// With --state: exit with code 4 when at least one row changed (change = changed), so a
    /// cron wrapper can act on changes without reading the output.
    #[arg(help_heading = "Memory between runs", long, requires = "state")]
    pub exit_on_change: bool,

    /// Exit with code 3 when the share of rows with an error or a 5xx status exceeds RATE
    /// (e.g. 5% or 0.05; 0 fails on any).
    #[arg(help_heading = "Input and output", long, value_name = "RATE", value_parser = parse_share)]
    pub fail_on_errors: Option<f64>,

    /// No progress bar and no summary on stderr (errors are still reported).
    #[arg(help_heading = "Input and output", short, long)]
    pub quiet: bool,

    /// Most requests in flight at once (1 to 100000).
    #[arg(help_heading = "Limits", short, long, value_name = "N", default_value = "50", value_parser = parse_concurrency)]
    pub concurrency: NonZeroUsize,

    /// Most request starts per second (20 or 20/s), minute (600/m) or hour (3600/h), spread evenly.
    /// Default: unlimited.
    #[arg(help_heading = "Limits", short, long, value_name = "RATE")]
    pub rate: Option<Rate>,

    /// Most requests in flight to one host (scheme, host and port). Default: only --concurrency.
    #[arg(help_heading = "Limits", long, value_name = "N", value_parser = parse_concurrency)]
    pub per_host_concurrency: Option<NonZeroUsize>,

    /// Most request starts to one host, in the forms of --rate. Default: unlimited.
    #[arg(help_heading = "Limits", long, value_name = "RATE")]
    pub per_host_rate: Option<Rate>,

    /// Fetch each host's robots.txt before its first request and obey it for the user agent
    /// (-A): disallowed URLs get the error 'robots' and no request; Crawl-delay spaces the
    /// host's requests.
    #[arg(help_heading = "Limits", long)]
    pub robots: bool,

    /// With --robots: the longest Crawl-delay honoured (a host asking for more gets this).
    #[arg(help_heading = "Limits", long, value_name = "DUR", default_value = "30s", value_parser = parse_duration, requires = "robots")]
    pub max_crawl_delay: Duration,

    /// Limit on each whole request: connect, send, headers and body (e.g. 500ms, 10s, 1m).
    #[arg(help_heading = "Limits", short, long, value_name = "DUR", default_value = "10s", value_parser = parse_limit)]
    pub timeout: Duration,

    /// Limit on establishing each connection. Default: only --timeout applies.
    #[arg(help_heading = "Limits", long, value_name = "DUR", value_parser = parse_limit)]
    pub connect_timeout: Option<Duration>,

    /// Deadline for the whole run: after it no request starts, requests in flight are recorded
    /// as 'deadline', and fetch exits with code 124. Must not be zero.
    #[arg(help_heading = "Limits", long, value_name = "DUR", value_parser = parse_limit)]
    pub max_time: Option<Duration>,

    /// Threads that run requests. One event loop drives every connection with the least CPU
    /// per URL; more help only when TLS handshakes to many hosts keep one core busy.
    #[arg(help_heading = "Limits", long, value_name = "N", default_value = "1", value_parser = parse_threads)]
    pub threads: NonZeroUsize,

    /// Retry a URL up to N times on connection errors, timeouts and 408, 425, 429, 500, 502, 503,
    /// 504. Every retry passes the same limits as a first request.
    #[arg(help_heading = "Retries", long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// Backoff before the first retry, doubled for each further one (up to 30s), with jitter.
    #[arg(help_heading = "Retries", long, value_name = "DUR", default_value = "500ms", value_parser = parse_duration)]
    pub retry_base: Duration,

    /// Longest Retry-After honoured; a server asking for longer is retried after this.
    #[arg(help_heading = "Retries", long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub max_retry_after: Duration,

    /// Request method: GET or HEAD.
    #[arg(help_heading = "Requests", short = 'X', long, value_name = "METHOD", default_value = "GET", value_parser = parse_method)]
    pub method: Method,

    /// Extra request header, 'Name: value'; repeatable. Not sent on after a redirect to another
    /// origin when it carries credentials (Authorization, Cookie).
    #[arg(help_heading = "Requests", short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// User-Agent header sent with every request. Default: fetch/<version>.
    #[arg(help_heading = "Requests", short = 'A', long, value_name = "TEXT", value_parser = parse_user_agent)]
    pub user_agent: Option<HeaderValue>,

    /// Most redirects followed per URL; a longer chain (or a loop) is an error,
    /// too_many_redirects (with 0, any redirect is).
    #[arg(
        help_heading = "Requests",
        long,
        value_name = "N",
        default_value_t = 10
    )]
    pub max_redirects: u32,

    /// Don't follow redirects: record the 3xx response itself.
    #[arg(help_heading = "Requests", long)]
    pub no_follow: bool,

    /// Stop reading a body after this many bytes (after decoding); the row notes the truncation.
    #[arg(help_heading = "Requests", long, value_name = "BYTES", default_value = "10MiB", value_parser = parse_bytes)]
    pub max_body: u64,

    /// Connect to ADDR (several: ADDR,ADDR, tried in order) for HOST instead of asking DNS;
    /// repeatable, and repeats add addresses (e.g. www.example.test:127.0.0.2).
    #[arg(help_heading = "Requests", long, value_name = "HOST:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<(String, Vec<IpAddr>)>,

    /// Send every request through this proxy: http://, or https:// for TLS to the proxy;
    /// credentials in it become Proxy-Authorization. Without it, the http_proxy, https_proxy
    /// and all_proxy environment variables apply. NO_PROXY (or --noproxy) applies to both.
    #[arg(help_heading = "TLS and proxies", long, value_name = "URL", value_parser = parse_proxy)]
    pub proxy: Option<Url>,

    /// Hosts to reach without the proxy, comma-separated, instead of NO_PROXY: names (with
    /// their subdomains), addresses, networks (10.0.0.0/8), each with an optional :port; '*'
    /// for all; '' to ignore NO_PROXY.
    #[arg(help_heading = "TLS and proxies", long, value_name = "LIST")]
    pub noproxy: Option<String>,

    /// Trust the CA certificates in this PEM file too, beside the system's (for a private CA).
    #[arg(help_heading = "TLS and proxies", long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Accept invalid TLS certificates (expired, self-signed, wrong host), of sites and of an
    /// https:// proxy. Off by default.
    #[arg(help_heading = "TLS and proxies", short = 'k', long)]
    pub insecure: bool,

    /// Add the columns tls_version, cert_subject, cert_issuer, cert_not_after and
    /// cert_days_left for HTTPS rows: the site's leaf certificate, also when the handshake
    /// rejected it.
    #[arg(help_heading = "TLS and proxies", long)]
    pub tls_info: bool,

    /// Don't extract the page title (the title column stays, empty).
    #[arg(help_heading = "Columns and extraction", long)]
    pub no_title: bool,

    /// Add a column NAME with the text of the first element matching the CSS selector, or with
    /// an attribute of it: NAME=CSS@attr. Repeatable.
    /// Example: --select 'og=meta[property="og:title"]@content'
    #[arg(help_heading = "Columns and extraction", long, value_name = "NAME=CSS", value_parser = |s: &str| parse_select(s, false))]
    pub select: Vec<SelectSpec>,

    /// Like --select, but with every match, joined with ' | '. Repeatable.
    #[arg(help_heading = "Columns and extraction", long, value_name = "NAME=CSS", value_parser = |s: &str| parse_select(s, true))]
    pub select_all: Vec<SelectSpec>,

    /// Add a column NAME with the first capture group (or the whole match) of the regular
    /// expression in the decoded body. Repeatable. Example: --regex 'price=\$(\d+\.\d\d)'
    #[arg(help_heading = "Columns and extraction", long, value_name = "NAME=PATTERN", value_parser = parse_pattern)]
    pub regex: Vec<PatternSpec>,

    /// Add a body_sha256 column: the SHA-256 of the body as read (decoded, capped), to see which
    /// pages changed since the last run.
    #[arg(help_heading = "Columns and extraction", long)]
    pub hash: bool,

    /// Write a response header of the final response as a column (several values joined with
    /// ', '); COLUMN names the column (default: the header's name in lowercase). Repeatable.
    /// Example: --header-column Server --header-column X-Cache=cache
    #[arg(help_heading = "Columns and extraction", long, value_name = "NAME[=COLUMN]", value_parser = parse_header_column)]
    pub header_column: Vec<(HeaderName, String)>,

    /// Write text cells as they are. By default a cell a spreadsheet would run as a formula
    /// (starting with =, +, -, @, tab, CR, LF) gets a leading apostrophe.
    #[arg(help_heading = "Columns and extraction", long)]
    pub raw: bool,

    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(help_heading = "Other", long, value_name = "SHELL", exclusive = true)]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) and exit.
    #[arg(help_heading = "Other", long, exclusive = true)]
    pub man: bool,

    /// Where each value option appeared on the command line (filled by `from_matches`).
    #[arg(skip)]
    value_positions: ValuePositions,
}

#[derive(Debug, Default)]
struct ValuePositions {
    select: Vec<usize>,
    select_all: Vec<usize>,
    regex: Vec<usize>,
}

/// What to run, checked and typed.
#[derive(Debug)]
pub struct Plan {
    pub config: Config,
    pub sources: Vec<Source>,
    pub output: Option<PathBuf>,
    pub quiet: bool,
    /// Async worker threads: 1 is a single-threaded event loop.
    pub threads: NonZeroUsize,
    pub resume: bool,
    pub summary_json: Option<PathBuf>,
    pub fail_on_errors: Option<f64>,
    /// `--exit-on-change`: exit 4 when a row changed.
    pub exit_on_change: bool,
}

/// What the command line asks for, checked.
pub enum Action {
    /// Fetch a list.
    Run(Box<Plan>),
    /// `--merge`: shard outputs into one.
    Merge(MergePlan),
    /// `--completions SHELL`.
    Completions(clap_complete::Shell),
    /// `--man`.
    Man,
}

/// `--merge FILE...`: the shard outputs, and where the merged rows go.
pub struct MergePlan {
    pub files: Vec<PathBuf>,
    pub output: Option<PathBuf>,
    pub format: Format,
    pub quiet: bool,
}

impl Args {
    /// Checks the options against each other and the environment (is stdin a terminal? would the
    /// output overwrite an input?) and says what to do.
    pub fn resolve(self) -> Result<Action, Error> {
        if let Some(shell) = self.completions {
            return Ok(Action::Completions(shell));
        }
        if self.man {
            return Ok(Action::Man);
        }
        if self.merge {
            return self.merge_plan().map(Action::Merge);
        }
        self.run_plan().map(|plan| Action::Run(Box::new(plan)))
    }

    fn merge_plan(self) -> Result<MergePlan, Error> {
        let files: Vec<PathBuf> = self
            .inputs
            .iter()
            .filter(|p| p.as_os_str() != "-")
            .cloned()
            .collect();
        if files.is_empty() || files.len() != self.inputs.len() {
            return Err(Error::Usage(
                "--merge needs the shard output files as arguments (not stdin)".into(),
            ));
        }
        if let Some(out) = &self.output {
            refuse_to_clobber(out, &files, false)?;
        }
        let format = self.format();
        self.check_format(format)?;
        Ok(MergePlan {
            files,
            format,
            output: self.output,
            quiet: self.quiet,
        })
    }

    fn run_plan(mut self) -> Result<Plan, Error> {
        let sources = self.sources()?;
        let format = self.format();
        self.check_format(format)?;
        if let Some(out) = &self.output {
            let files: Vec<PathBuf> = sources
                .iter()
                .filter_map(|s| match s {
                    Source::File(path) => Some(path.clone()),
                    Source::Stdin => None,
                })
                .collect();
            refuse_to_clobber(out, &files, sources.contains(&Source::Stdin))?;
        }
        if let Some(state) = &self.state {
            refuse_state_clobber(state, self.output.as_deref(), &sources)?;
        }
        let extract = ExtractSpec {
            title: !self.no_title,
            values: self.values_in_order(),
            // The state compares bodies by their digest.
            hash: self.hash || self.state.is_some(),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        check_column_names(&extract, &self.header_column, self.state.is_some())?;
        let config = Config {
            limits: Limits {
                concurrency: self.concurrency,
                rate: self.rate,
                per_host_concurrency: self.per_host_concurrency,
                per_host_rate: self.per_host_rate,
                retry: RetryPolicy {
                    retries: self.retries,
                    base: self.retry_base,
                    max_retry_after: self.max_retry_after,
                },
                max_time: self.max_time,
                robots: self.robots.then(|| RobotsPolicy {
                    agent: product_token(&robots_agent(&headers, self.user_agent.as_ref())),
                    max_crawl_delay: self.max_crawl_delay,
                }),
            },
            fetch: FetchSettings {
                method: self.method,
                user_agent: self.user_agent.unwrap_or_else(default_user_agent),
                headers,
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
                max_body: self.max_body,
                follow_redirects: !self.no_follow,
                max_redirects: self.max_redirects,
                proxy: self.proxy,
                noproxy: self.noproxy,
                cacert: self.cacert,
                insecure: self.insecure,
                resolve: self.resolve,
                tls_info: self.tls_info,
                header_columns: self.header_column,
            },
            extract,
            output: OutputOptions {
                format,
                sheet_rows: output::SHEET_ROWS,
                fields: self.fields,
                raw: self.raw,
                header: !self.no_header,
                bom: self.bom,
                ordered: self.ordered.then_some(self.order_window.max(1)),
            },
            dedupe: self.dedupe,
            shard: self
                .shard
                .map(|s| s.resolve(|name| std::env::var(name).ok()))
                .transpose()
                .map_err(Error::Usage)?,
            state: self.state.map(|path| StateSettings {
                path,
                conditional: !self.no_conditional,
            }),
            progress: !self.quiet && std::io::stderr().is_terminal(),
        };
        Ok(Plan {
            config,
            sources,
            output: self.output,
            quiet: self.quiet,
            threads: self.threads,
            resume: self.resume,
            summary_json: self.summary_json,
            fail_on_errors: self.fail_on_errors,
            exit_on_change: self.exit_on_change,
        })
    }

    /// The format asked for: `--format`, else xlsx for an output file named `*.xlsx`, else CSV.
    fn format(&self) -> Format {
        let workbook = self.output.as_ref().is_some_and(|path| {
            path.extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("xlsx"))
        });
        match self.format {
            Some(format) => format,
            None if workbook => Format::Xlsx,
            None => Format::Csv,
        }
    }

    /// What the format allows: CSV's niceties are CSV's; a workbook is written whole, to a
    /// file, and cannot be continued.
    fn check_format(&self, format: Format) -> Result<(), Error> {
        let usage = |why: &str| Err(Error::Usage(why.to_owned()));
        match format {
            Format::Csv => Ok(()),
            Format::Jsonl if self.bom || self.no_header => {
                usage("--bom and --no-header are for CSV; JSON Lines has neither")
            }
            Format::Jsonl => Ok(()),
            Format::Xlsx if self.bom || self.no_header => usage(
                "--bom and --no-header are for CSV; a workbook is UTF-8 and always has its \
                 header row",
            ),
            Format::Xlsx if self.output.is_none() => {
                usage("a workbook is written whole at the end: give it a file with -o FILE.xlsx")
            }
            Format::Xlsx if self.resume => Err(Error::Usage(format!(
                "cannot --resume into a workbook: {}",
                output::XLSX_RESUME
            ))),
            Format::Xlsx => Ok(()),
        }
    }

    /// The `--select`, `--select-all` and `--regex` columns in the order they were given (clap
    /// collects each option separately; `order_values` remembered their positions).
    fn values_in_order(&mut self) -> Vec<ValueSpec> {
        let mut values: Vec<(usize, ValueSpec)> = Vec::new();
        let mut take = |specs: Vec<ValueSpec>, positions: &[usize]| {
            for (i, spec) in specs.into_iter().enumerate() {
                values.push((positions.get(i).copied().unwrap_or(usize::MAX), spec));
            }
        };
        let positions = std::mem::take(&mut self.value_positions);
        take(
            std::mem::take(&mut self.select)
                .into_iter()
                .map(Into::into)
                .collect(),
            &positions.select,
        );
        take(
            std::mem::take(&mut self.select_all)
                .into_iter()
                .map(Into::into)
                .collect(),
            &positions.select_all,
        );
        take(
            std::mem::take(&mut self.regex)
                .into_iter()
                .map(Into::into)
                .collect(),
            &positions.regex,
        );
        values.sort_by_key(|(position, _)| *position);
        values.into_iter().map(|(_, spec)| spec).collect()
    }

    /// Parses the command line, remembering where each value option appeared.
    pub fn parse_ordered() -> Args {
        let matches = Args::command().get_matches();
        Args::from_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// [`Args::parse_ordered`] for a given command line (tests).
    pub fn try_parse_ordered_from<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(args)?;
        Args::from_matches(&matches)
    }

    fn from_matches(matches: &clap::ArgMatches) -> Result<Args, clap::Error> {
        let mut args = Args::from_arg_matches(matches)?;
        let positions = |id: &str| -> Vec<usize> {
            matches
                .indices_of(id)
                .map(Iterator::collect)
                .unwrap_or_default()
        };
        args.value_positions = ValuePositions {
            select: positions("select"),
            select_all: positions("select_all"),
            regex: positions("regex"),
        };
        Ok(args)
    }

    fn sources(&self) -> Result<Vec<Source>, Error> {
        if !self.inputs.is_empty() {
            return Ok(self.inputs.iter().map(|p| Source::from_arg(p)).collect());
        }
        if std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "no input: give a file of URLs (one per line), or pipe them on stdin \
                 (try 'fetch --help')"
                    .into(),
            ));
        }
        Ok(vec![Source::Stdin])
    }
}

/// The User-Agent requests carry (a `-H User-Agent` wins over `-A`), whose product token
/// robots.txt groups are matched against.
fn robots_agent(headers: &HeaderMap, user_agent: Option<&HeaderValue>) -> String {
    headers
        .get(http::header::USER_AGENT)
        .or(user_agent)
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || String::from_utf8_lossy(default_user_agent().as_bytes()).into_owned(),
            String::from,
        )
}

/// An output that would overwrite one of the inputs is a usage error.
fn refuse_to_clobber(out: &Path, files: &[PathBuf], reads_stdin: bool) -> Result<(), Error> {
    match output::clobbers_input(out, files, reads_stdin) {
        Some(input) => Err(Error::Usage(format!(
            "the output file '{}' is also an input ({input}); writing it would destroy it",
            out.display()
        ))),
        None => Ok(()),
    }
}

/// The state file must not be the output or an input: writing one would destroy the other.
fn refuse_state_clobber(
    state: &Path,
    output: Option<&Path>,
    sources: &[Source],
) -> Result<(), Error> {
    let files: Vec<PathBuf> = sources
        .iter()
        .filter_map(|s| match s {
            Source::File(path) => Some(path.clone()),
            Source::Stdin => None,
        })
        .chain(output.map(Path::to_path_buf))
        .collect();
    // The same file, or (not created yet) the same name.
    let named_alike =
        |other: &Path| std::path::absolute(state).ok() == std::path::absolute(other).ok();
    let same = output::clobbers_input(state, &files, false).or_else(|| {
        files
            .iter()
            .find(|f| named_alike(f))
            .map(|f| f.display().to_string())
    });
    match same {
        Some(other) => Err(Error::Usage(format!(
            "the state file '{}' is also an input or the output ({other}); give it a file of \
             its own",
            state.display()
        ))),
        None => Ok(()),
    }
}

/// Header and value columns need names of their own: not a built-in column's, not another's;
/// with `--state`, not `body` either (`changed_fields` names the page's body so).
fn check_column_names(
    extract: &ExtractSpec,
    headers: &[(HeaderName, String)],
    state: bool,
) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    let names = headers
        .iter()
        .map(|(_, column)| column.as_str())
        .chain(extract.value_names());
    for name in names {
        if output::is_built_in(name) {
            return Err(Error::Usage(format!(
                "'{name}' is the name of a built-in column; choose another for \
                 --header-column, --select or --regex (NAME=COLUMN)"
            )));
        }
        if state && name == "body" {
            return Err(Error::Usage(
                "with --state, 'body' names the page's body in changed_fields; choose another \
                 column name for --header-column, --select or --regex"
                    .into(),
            ));
        }
        if !seen.insert(name) {
            return Err(Error::Usage(format!(
                "the column name '{name}' is given twice in --header-column, --select or --regex"
            )));
        }
    }
    Ok(())
}

/// Parses `--header-column NAME[=COLUMN]`.
fn parse_header_column(s: &str) -> Result<(HeaderName, String), String> {
    let (name, column) = match s.split_once('=') {
        Some((name, column)) => (name.trim(), column.trim().to_owned()),
        None => (s.trim(), s.trim().to_ascii_lowercase()),
    };
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("'{name}' is not a valid header name"))?;
    if column.is_empty() {
        return Err(format!("'{s}' names no column"));
    }
    Ok((header, column))
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s.to_ascii_lowercase().as_str() {
        "csv" => Ok(Format::Csv),
        "jsonl" | "ndjson" => Ok(Format::Jsonl),
        "xlsx" => Ok(Format::Xlsx),
        _ => Err(format!("'{s}' is not a format; use csv, jsonl or xlsx")),
    }
}

/// A share of rows: `5%`, or a fraction from 0 to 1 (`0.05`, `0`).
fn parse_share(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (number, scale) = match s.strip_suffix('%') {
        Some(percent) => (percent.trim(), 100.0),
        None => (s, 1.0),
    };
    let share = number
        .parse::<f64>()
        .map(|n| n / scale)
        .map_err(|_| format!("'{s}' is not a share; use e.g. 5% or 0.05"))?;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("'{s}' is not between 0 and 100%"));
    }
    Ok(share)
}

/// Concurrency limits: at least 1; at most 100,000, beyond which no machine has the sockets.
fn parse_concurrency(s: &str) -> Result<NonZeroUsize, String> {
    count_up_to(s, 100_000)
}

/// A thread count: more threads than this would only contend for the same cores.
fn parse_threads(s: &str) -> Result<NonZeroUsize, String> {
    count_up_to(s, 256)
}

/// A whole number from 1 to `max`.
fn count_up_to(s: &str, max: usize) -> Result<NonZeroUsize, String> {
    s.trim()
        .parse::<NonZeroUsize>()
        .ok()
        .filter(|n| n.get() <= max)
        .ok_or_else(|| format!("'{s}' is not a number from 1 to {max}"))
}

/// A time limit: a duration that is not zero (a zero limit would fail every request).
fn parse_limit(s: &str) -> Result<Duration, String> {
    let limit = parse_duration(s)?;
    if limit.is_zero() {
        return Err(
            "must be above zero: a zero limit would end every request (or the run) at once".into(),
        );
    }
    Ok(limit)
}

/// A User-Agent must be a valid header value (no control characters).
fn parse_user_agent(s: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(s)
        .map_err(|_| "the user agent has characters not allowed in an HTTP header".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_typed_values() {
        let args = Args::try_parse_from([
            "fetch",
            "-c",
            "8",
            "-r",
            "600/m",
            "-t",
            "500ms",
            "--max-body",
            "1M",
            "a.txt",
            "-",
        ])
        .unwrap();
        assert_eq!(args.concurrency.get(), 8);
        assert_eq!(args.rate.unwrap().interval(), Duration::from_millis(100));
        assert_eq!(args.timeout, Duration::from_millis(500));
        assert_eq!(args.max_body, 1 << 20);
        let plan = run_plan(args);
        assert_eq!(plan.sources, [Source::File("a.txt".into()), Source::Stdin]);
    }

    fn run_plan(args: Args) -> Plan {
        match args.resolve() {
            Ok(Action::Run(plan)) => *plan,
            _ => panic!("a run"),
        }
    }

    #[test]
    fn merge_and_the_other_commands_resolve_apart() {
        let merge = Args::try_parse_ordered_from(["fetch", "--merge", "a.csv", "b.csv"]).unwrap();
        assert!(matches!(merge.resolve(), Ok(Action::Merge(plan)) if plan.files.len() == 2));
        let stdin = Args::try_parse_ordered_from(["fetch", "--merge", "-"]).unwrap();
        assert!(matches!(stdin.resolve(), Err(Error::Usage(_))));
        let man = Args::try_parse_ordered_from(["fetch", "--man"]).unwrap();
        assert!(matches!(man.resolve(), Ok(Action::Man)));
    }

    #[test]
    fn value_columns_keep_the_order_given() {
        let args = Args::try_parse_ordered_from([
            "fetch",
            "--regex",
            "price=x",
            "--select-all",
            "tags=li",
            "--select",
            "h=h1",
            "a",
        ])
        .unwrap();
        let plan = run_plan(args);
        let names: Vec<&str> = plan.config.extract.value_names().collect();
        assert_eq!(names, ["price", "tags", "h"]);
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["fetch", "-c", "0", "a"][..],
            &["fetch", "-r", "fast", "a"],
            &["fetch", "-t", "soon", "a"],
            &["fetch", "--max-body", "lots", "a"],
            &["fetch", "--format", "xml", "a"],
            &["fetch", "--fail-on-errors", "150%", "a"],
            &["fetch", "--resume", "a"],
            &["fetch", "--order-window", "5", "a"],
            &["fetch", "-c", "18446744073709551615", "a"],
            &["fetch", "-t", "0", "a"],
            &["fetch", "--connect-timeout", "0s", "a"],
            &["fetch", "-A", "bad\rua", "a"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
