//! `rebeam`: run a Python program as a supervised, parallel system.

mod node_args;
mod provision;
mod render;
mod top;
mod view;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use node_args::NodeArgs;

const ABOUT: &str = "Run Python programs as parallel, fault-tolerant systems.

`rebeam main.py` runs your script as `python main.py` would, with a pool of worker
processes beside it. Actors (GenPy classes) you start there run in parallel, under
supervisors that restart what crashes: an exception, a segfault in a C extension or
a killed worker costs one worker, never the program.";

const EXAMPLES: &str = "Examples:
  rebeam main.py                     run main.py with one worker per core
  rebeam --workers 4 main.py --port 8080
                                     four workers; --port 8080 goes to the script
  rebeam run --log-level debug main.py
                                     show what the governor does
  REBEAM_PYTHON=/opt/py/bin/python rebeam main.py
                                     use that interpreter for the script and workers
  rebeam --restart on-failure main.py
                                     run main.py again if it fails (3 times in 5 s at most)
  rebeam --node a --listen tcp/127.0.0.1:7447 --cookie-file ~/.rebeam-cookie main.py
  rebeam --node b --connect tcp/127.0.0.1:7447 --cookie-file ~/.rebeam-cookie main.py
                                     two nodes of one system: a call by name from b
                                     reaches an actor on a";

#[derive(Parser)]
#[command(
    name = "rebeam",
    version,
    about = ABOUT,
    after_help = EXAMPLES,
    override_usage = "rebeam [OPTIONS] <SCRIPT> [ARGS]...\n       rebeam <COMMAND>",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Python script under the governor (the default: `rebeam main.py` = `rebeam run main.py`).
    #[command(after_help = EXAMPLES)]
    Run(Box<RunArgs>),
    /// Control a running system: arm, disarm, force-disarm, status. Only the host arms.
    #[command(after_help = CTL_EXAMPLES)]
    Ctl(CtlArgs),
    /// A live view of a running system: its supervision tree, processes, safety state and bus.
    #[command(long_about = TOP_ABOUT, after_help = TOP_EXAMPLES)]
    Top(TopArgs),
    /// Serve a Python process that imported rebeam (library mode; started by `import rebeam`
    /// itself, not by hand).
    #[command(hide = true)]
    Serve(Box<ServeArgs>),
}

const CTL_EXAMPLES: &str = "Examples:
  rebeam ctl status        the safety state, the processes and the supervision tree
  rebeam ctl status --json the same as JSON (with mailboxes, counters, CPU, memory, the
                           safety history and the bus), for scripts: see `rebeam top`
  rebeam ctl arm           allow work marked @requires_armed to run
  rebeam ctl disarm        refuse new gated work; interrupt running gated work, kill it
                           after the grace period (rebeam run --safety-grace)
  rebeam ctl force-disarm  leave the error state (after a worker could not be stopped)

The running system is found through --socket (the path given to `rebeam --control-socket`
or shown in its start-up line), REBEAM_CONTROL if you set it, or, when this user runs
exactly one rebeam, that one. Only the host changes the safety state: arm, disarm and
force-disarm are refused to the run's own Python processes and anything they start.";

#[derive(Args)]
struct CtlArgs {
    /// The control socket of the run [default: REBEAM_CONTROL if set, or the only running rebeam].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Print the answer to `status` as JSON on stdout (one object: "safety", then the
    /// report's fields), for scripts; field names are stable, new ones come with a new
    /// "version".
    #[arg(long)]
    json: bool,

    #[arg(value_enum)]
    action: CtlAction,
}

const TOP_ABOUT: &str = "A live view of a running system, refreshed every --interval seconds.

Panes:
  supervision tree  each supervisor with its restart budget used (used/max in its window),
                    and each child: where it runs, its mailbox (calls handed to it and not
                    yet answered, plus messages waiting for it to be placed), messages per
                    second routed to it, how often it was restarted, and why it last crashed
  processes         the main process and each worker: pid, CPU (% of one core over the last
                    interval) and resident memory
  safety            the safety state and its latest transitions, newest first
  bus               each subscription's topic pattern, subscriber, queue (waiting/capacity)
                    and publications dropped

Rates need two refreshes: until then they show as -. Keys: q (or Esc, Ctrl-C) quits; the
view follows the terminal's size. It asks only for the status, which changes nothing, over
the same owner-only control socket as `rebeam ctl`.";

const TOP_EXAMPLES: &str = "Examples:
  rebeam top                         watch the only rebeam this user runs
  rebeam top --interval 0.25         refresh four times a second
  rebeam top --socket /run/me/robot.sock
                                     watch the run started with --control-socket that path
  rebeam ctl status --json           one report, for a script, instead of the view";

#[derive(Args)]
struct TopArgs {
    /// The control socket of the run [default: REBEAM_CONTROL if set, or the only running rebeam].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Seconds between refreshes.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = interval)]
    interval: f64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CtlAction {
    Arm,
    Disarm,
    ForceDisarm,
    Status,
}

/// When the script is run again after it ends (`--restart`).
#[derive(Clone, Copy, clap::ValueEnum)]
enum RestartFlag {
    /// Never: the run ends when the script does.
    Never,
    /// When it fails: an uncaught exception, a non-zero exit, a signal, a failed root supervisor.
    OnFailure,
    /// Whenever it ends, a clean exit included (until rebeam.shutdown() or a signal stops it).
    Always,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SafetyFlag {
    /// Only handlers marked @requires_armed need the system armed.
    Marked,
    /// Every message to every actor needs the system armed.
    RequireArmed,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    options: Options,

    /// Run the script and the workers as this user, so that the kernel keeps them from the
    /// control socket and from the governor (needs root, or CAP_SETUID and CAP_SETGID).
    #[arg(long, value_name = "USER")]
    python_user: Option<String>,

    /// Run the script again when it ends: on-failure or always, with what it started stopped
    /// first (the workers stay warm); a restart is logged with what ended the last run.
    #[arg(long, value_enum, default_value = "never")]
    restart: RestartFlag,

    /// With --restart: give up (and exit with the script's last status) after more than this
    /// many restarts within --restart-window seconds.
    #[arg(long, value_name = "N", default_value_t = rebeam_core::supervision::DEFAULT_MAX_RESTARTS,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(rebeam_core::supervision::MAX_RESTARTS)))]
    max_restarts: u32,

    /// With --restart: the window, in seconds, that --max-restarts counts restarts in.
    #[arg(long, value_name = "SECONDS", default_value_t = rebeam_core::supervision::DEFAULT_MAX_SECONDS as f64,
          value_parser = restart_window)]
    restart_window: f64,

    /// Do not install the script's declared dependencies (its `# /// script` block, else its
    /// project's [project] dependencies): run it with the interpreter as it is.
    #[arg(long)]
    no_env: bool,

    /// The Python script to run.
    script: PathBuf,

    /// Arguments passed to the script as sys.argv[1:].
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,

    // Last: its help heading would otherwise hold the options after it.
    #[command(flatten)]
    node: NodeArgs,
}

/// `rebeam serve`: the governor of a Python process that imported rebeam (library mode).
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    options: Options,

    /// The Python process this governor serves: it connects as the main process with the
    /// token in REBEAM_MAIN_TOKEN, and the governor ends when it does.
    #[arg(long, value_name = "PID")]
    parent_pid: u32,

    /// A pipe to write the socket paths to once listening.
    #[arg(long, value_name = "FD")]
    ready_fd: Option<i32>,

    /// The parent is a host program that runs no Python (a Rust application): it may arm and
    /// disarm on the control socket itself. Never set by `import rebeam`.
    #[arg(long)]
    host: bool,

    /// The same node options as `rebeam run`: library mode and the Rust host join as nodes.
    #[command(flatten)]
    node: NodeArgs,
}

/// Options of every governor.
#[derive(Args)]
struct Options {
    /// Worker processes hosting actors [default: number of cores].
    #[arg(short, long, env = rebeam_proto::env::WORKERS, value_name = "N")]
    workers: Option<usize>,

    /// Python interpreter for the script and the workers [default: REBEAM_PYTHON, the active
    /// virtualenv, the python beside this rebeam, ./.venv, then python3].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,

    /// Largest message (pickle plus buffers) in bytes; bigger messages are refused with an error.
    #[arg(long, value_name = "BYTES", default_value_t = rebeam_proto::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: u64,

    /// Seconds the whole system gets to stop politely on shutdown before everything is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = rebeam_governor::DEFAULT_SHUTDOWN_TIMEOUT.as_secs_f64(), value_parser = seconds)]
    shutdown_timeout: f64,

    /// Warm spare workers kept ready so restarts after a worker crash are fast.
    #[arg(long, value_name = "N", default_value_t = rebeam_governor::DEFAULT_SPARES)]
    spares: usize,

    /// Which Python work needs the system armed (the host arms with `rebeam ctl arm`).
    #[arg(long, value_enum, default_value = "marked")]
    safety: SafetyFlag,

    /// Seconds gated work gets to stop after a disarm before its worker is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = rebeam_governor::DEFAULT_SAFETY_GRACE.as_secs_f64(), value_parser = seconds)]
    safety_grace: f64,

    /// Let Python publish on this topic pattern although its prefix is reserved (safety.,
    /// actuator., param., rebeam.); repeat for more.
    #[arg(long, value_name = "PATTERN")]
    allow_publish: Vec<String>,

    /// Put the control socket (for `rebeam ctl --socket PATH`) here, in a directory owned by
    /// you and writable by no one else [default: ctl-<pid>.sock in the runtime directory].
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,

    /// Governor log level or filter (error, warn, info, debug, trace); also REBEAM_LOG.
    #[arg(long, env = rebeam_proto::env::LOG, value_name = "LEVEL", default_value = "info")]
    log_level: String,

    /// Fork workers from one Python that imported rebeam once (on), or start each worker as a
    /// fresh interpreter (off); also REBEAM_ZYGOTE.
    #[arg(long, env = rebeam_proto::env::ZYGOTE, value_enum, default_value = "on")]
    zygote: OnOff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// `rebeam main.py …` is `rebeam run main.py …`: insert `run` unless a subcommand or a
/// top-level flag comes first.
fn normalize(mut argv: Vec<OsString>) -> Vec<OsString> {
    const TOP_LEVEL: [&str; 9] = ["run", "ctl", "top", "serve", "help", "-h", "--help", "-V", "--version"];
    if let Some(first) = argv.get(1) {
        if !TOP_LEVEL.contains(&first.to_string_lossy().as_ref()) {
            argv.insert(1, "run".into());
        }
    }
    argv
}

struct Prefixed;

impl<S, N> FormatEvent<S, N> for Prefixed
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &tracing::Event<'_>) -> fmt::Result {
        let level = *event.metadata().level();
        let tag = match level {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(w, "rebeam {tag}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Zenoh's own logs (a node's links, retries, handshakes) are off unless the filter names
/// them (`--log-level info,zenoh=debug`): the node logs what a user needs (joins, losses,
/// refusals) in rebeam's words.
const ZENOH_QUIET: &str = "zenoh=off";

fn init_logging(filter: &str) {
    let filter = if filter.contains("zenoh") { filter.to_string() } else { format!("{filter},{ZENOH_QUIET}") };
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("rebeam: bad log filter {filter:?} ({e}); using 'info'");
        EnvFilter::new("info")
    });
    use tracing_subscriber::prelude::*;
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).event_format(Prefixed).with_filter(filter);
    // A node says when it refused a link for its cookie, whatever the filter says of Zenoh's logs.
    tracing_subscriber::registry().with(log).with(rebeam_node::refusals()).init();
}

/// A number of seconds for a flag: finite, ≥ 0 and short enough for a `Duration`, so the
/// conversion after parsing cannot panic.
pub(crate) fn seconds(text: &str) -> Result<f64, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 || Duration::try_from_secs_f64(secs).is_err() {
        return Err(format!("{text} is not a finite number of seconds ≥ 0 (for example 2.5)"));
    }
    Ok(secs)
}

/// A restart window: positive and at most the bound supervision sets for every tree.
fn restart_window(text: &str) -> Result<f64, String> {
    let secs = seconds(text)?;
    let max = rebeam_core::supervision::MAX_RESTART_WINDOW.as_secs_f64();
    if secs <= 0.0 || secs > max {
        return Err(format!("{text} is not within (0, {max}] seconds"));
    }
    Ok(secs)
}

/// A refresh interval: a number of seconds above 0.
fn interval(text: &str) -> Result<f64, String> {
    match seconds(text)? {
        s if s > 0.0 => Ok(s),
        _ => Err(format!("{text} is not above 0 seconds; give the time between refreshes (for example 0.5)")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize(std::env::args_os().collect()));
    match cli.command {
        Command::Run(args) => run(*args),
        Command::Ctl(args) => ctl(args),
        Command::Top(args) => top(args),
        Command::Serve(args) => serve(*args),
    }
}

fn top(args: TopArgs) -> ExitCode {
    let socket = match rebeam_governor::find_control_socket(args.socket.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rebeam top: {e}");
            return ExitCode::from(2);
        }
    };
    match top::run(socket, Duration::from_secs_f64(args.interval)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rebeam top: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ctl(args: CtlArgs) -> ExitCode {
    use rebeam_proto::{ControlRequest, ControlResponse};
    if args.json && !matches!(args.action, CtlAction::Status) {
        eprintln!("rebeam ctl: --json is for `status` only; arm, disarm and force-disarm print one line");
        return ExitCode::from(2);
    }
    let socket = match rebeam_governor::find_control_socket(args.socket.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rebeam ctl: {e}");
            return ExitCode::from(2);
        }
    };
    let request = match args.action {
        CtlAction::Arm => ControlRequest::Arm,
        CtlAction::Disarm => ControlRequest::Disarm,
        CtlAction::ForceDisarm => ControlRequest::ForceDisarm,
        CtlAction::Status => ControlRequest::Status,
    };
    match rebeam_governor::control_request(&socket, request) {
        Ok(ControlResponse::Safety { state, transitions }) => {
            for t in &transitions {
                println!("{}", render::transition(t));
            }
            println!("safety: {}", render::state_name(state));
            ExitCode::SUCCESS
        }
        Ok(ControlResponse::Status { state, report }) if args.json => match render::status_json(state, &report) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rebeam ctl: cannot write the report as JSON: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(ControlResponse::Status { state, report }) => {
            println!("safety:  {}", render::state_name(state));
            print!("{}", render::status(&report));
            ExitCode::SUCCESS
        }
        Ok(ControlResponse::Refused(refusal)) => {
            eprintln!("rebeam ctl: {}", render::refusal(&refusal));
            ExitCode::FAILURE
        }
        Ok(ControlResponse::Done) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rebeam ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    init_logging(&args.options.log_level);
    let script = match std::fs::metadata(&args.script) {
        Ok(m) if m.is_file() => std::path::absolute(&args.script).unwrap_or(args.script.clone()),
        Ok(_) => {
            eprintln!("rebeam: {} is not a file; give the path of a Python script", args.script.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("rebeam: cannot open script {}: {e}", args.script.display());
            return ExitCode::from(2);
        }
    };
    let python_user = match args.python_user.as_deref().map(rebeam_governor::PythonUser::lookup).transpose() {
        Ok(user) => user,
        Err(e) => {
            eprintln!("rebeam: {e}");
            return ExitCode::from(2);
        }
    };
    let node = match node_options(&args.node) {
        Ok(node) => node,
        Err(code) => return code,
    };
    let mut python = rebeam_governor::find_python(args.options.python.as_deref());
    if !args.no_env {
        python = match provision::interpreter_for(&script, &python) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("rebeam: {e}");
                return ExitCode::from(2);
            }
        };
    }
    let program = rebeam_governor::Program::Script { script, argv0: args.script.into_os_string(), args: args.args };
    let main_restart = rebeam_governor::MainRestartPolicy {
        restart: match args.restart {
            RestartFlag::Never => rebeam_core::supervision::Restart::Temporary,
            RestartFlag::OnFailure => rebeam_core::supervision::Restart::Transient,
            RestartFlag::Always => rebeam_core::supervision::Restart::Permanent,
        },
        intensity: rebeam_core::supervision::Intensity::new(
            args.max_restarts,
            Duration::from_secs_f64(args.restart_window),
        ),
    };
    govern(args.options, program, python_user, python, main_restart, node)
}

/// The node settings of `run` and `serve` alike, or the exit status of a run refused for them.
fn node_options(args: &NodeArgs) -> Result<Option<rebeam_node::NodeOptions>, ExitCode> {
    args.options().map_err(|e| {
        eprintln!("rebeam: {e}");
        ExitCode::from(2)
    })
}

fn serve(args: ServeArgs) -> ExitCode {
    init_logging(&args.options.log_level);
    let Some(token) = std::env::var(rebeam_proto::env::MAIN_TOKEN).ok().filter(|t| !t.is_empty()) else {
        eprintln!("rebeam serve: REBEAM_MAIN_TOKEN is not set; `import rebeam` starts this by itself");
        return ExitCode::from(2);
    };
    let node = match node_options(&args.node) {
        Ok(node) => node,
        Err(code) => return code,
    };
    let program =
        rebeam_governor::Program::Library { parent: args.parent_pid, token, ready_fd: args.ready_fd, host: args.host };
    let python = rebeam_governor::find_python(args.options.python.as_deref());
    // The library-mode main process is the user's own: it cannot be made another user, nor
    // restarted.
    govern(args.options, program, None, python, Default::default(), node)
}

fn govern(
    options: Options,
    program: rebeam_governor::Program,
    python_user: Option<rebeam_governor::PythonUser>,
    python: std::path::PathBuf,
    main_restart: rebeam_governor::MainRestartPolicy,
    node: Option<rebeam_node::NodeOptions>,
) -> ExitCode {
    if !(options.shutdown_timeout.is_finite() && options.shutdown_timeout >= 0.0) {
        eprintln!("rebeam: --shutdown-timeout must be a number of seconds ≥ 0");
        return ExitCode::from(2);
    }
    if !(options.safety_grace.is_finite() && options.safety_grace >= 0.0) {
        eprintln!("rebeam: --safety-grace must be a number of seconds ≥ 0");
        return ExitCode::from(2);
    }
    let workers = options.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if workers == 0 {
        eprintln!("rebeam: --workers must be at least 1");
        return ExitCode::from(2);
    }
    let config = rebeam_governor::Config {
        python,
        program,
        workers,
        spares: options.spares,
        max_message_bytes: options.max_message_bytes,
        shutdown_timeout: Duration::from_secs_f64(options.shutdown_timeout),
        log_filter: options.log_level,
        safety: match options.safety {
            SafetyFlag::Marked => rebeam_governor::SafetyMode::Marked,
            SafetyFlag::RequireArmed => rebeam_governor::SafetyMode::RequireArmed,
        },
        safety_grace: Duration::from_secs_f64(options.safety_grace),
        allow_publish: options.allow_publish,
        control_socket: options.control_socket,
        python_user,
        main_restart,
        zygote: options.zygote == OnOff::On,
    };
    // Zenoh's runtime refuses tokio's current-thread scheduler: a node's governor runs on one
    // worker thread instead.
    let runtime = match node.is_some() {
        false => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        true => tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rebeam: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ran = runtime.block_on(async {
        let Some(node) = node else { return rebeam_governor::run(config).await.map_err(|e| e.to_string()) };
        // On the runtime's one worker thread, not the thread that blocks on it: there the router
        // shares a thread with its sockets' tasks and the node's, so handing a frame between
        // them is a task switch, not a wake-up of another thread (several in every cross-node
        // call).
        let governed = tokio::spawn(async move {
            let (node, seam) = rebeam_node::join(node).await.map_err(|e| e.to_string())?;
            let ran = rebeam_governor::run_node(config, seam).await.map_err(|e| e.to_string());
            node.leave().await;
            ran
        });
        governed.await.unwrap_or_else(|e| Err(format!("the governor's task ended: {e}")))
    });
    match ran {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("rebeam: {e}");
            ExitCode::FAILURE
        }
    }
}
