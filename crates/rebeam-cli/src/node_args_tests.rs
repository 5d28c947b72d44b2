use clap::error::ErrorKind;
use clap::Parser;

use super::NodeArgs;
use crate::{Cli, Command};

/// `rebeam run … main.py` and `rebeam serve …` with the same node options.
fn both(node_options: &[&str]) -> [Result<Cli, clap::Error>; 2] {
    let run = ["rebeam", "run"].into_iter().chain(node_options.iter().copied()).chain(["main.py"]);
    let serve = ["rebeam", "serve", "--parent-pid", "1"].into_iter().chain(node_options.iter().copied());
    [Cli::try_parse_from(run), Cli::try_parse_from(serve)]
}

fn node_args(cli: Cli) -> NodeArgs {
    match cli.command {
        Command::Run(args) => args.node,
        Command::Serve(args) => args.node,
        _ => panic!("neither run nor serve"),
    }
}

/// What a parse kept, field by field, to compare run's with serve's.
fn fields(n: &NodeArgs) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {} {} {} {:?} {:?} {:?}",
        n.node,
        n.listen,
        n.connect,
        n.cookie_file,
        n.join_timeout,
        n.authority,
        n.lease,
        n.tls_ca,
        n.tls_cert,
        n.tls_key
    )
}

#[test]
fn serve_takes_every_node_option_run_takes_and_keeps_the_same_values() {
    let options = [
        "--node",
        "b",
        "--listen",
        "tcp/127.0.0.1:7448",
        "--connect",
        "tcp/127.0.0.1:7447",
        "--connect",
        "tcp/127.0.0.1:7449",
        "--cookie-file",
        "/k/cookie",
        "--join-timeout",
        "3",
        "--authority",
        "--lease",
        "2.5",
        "--tls-ca",
        "/k/ca.pem",
        "--tls-cert",
        "/k/b.pem",
        "--tls-key",
        "/k/b.key",
    ];
    let [run, serve] = both(&options).map(|cli| node_args(cli.expect("the options parse")));
    assert_eq!(fields(&run), fields(&serve));
    assert_eq!(serve.node.as_deref(), Some("b"));
    assert_eq!(serve.connect, ["tcp/127.0.0.1:7447", "tcp/127.0.0.1:7449"]);
    assert_eq!((serve.join_timeout, serve.lease, serve.authority), (3.0, 2.5, true));
}

#[test]
fn serve_without_node_options_is_no_node_with_the_defaults() {
    let [run, serve] = both(&[]).map(|cli| node_args(cli.expect("no options parse")));
    assert_eq!(fields(&run), fields(&serve));
    assert_eq!(serve.node, None);
    assert_eq!(serve.lease, rebeam_node::DEFAULT_LEASE.as_secs_f64());
}

#[test]
fn serve_refuses_what_run_refuses_with_the_same_error() {
    let wrong: [&[&str]; 5] = [
        &["--connect", "tcp/127.0.0.1:7447"],
        &["--cookie-file", "/k/cookie"],
        &["--node", "b", "--lease=-1"],
        &["--node", "b", "--join-timeout", "soon"],
        &["--node", "b", "--tls-ca", "/k/ca.pem"],
    ];
    for options in wrong {
        let [run, serve] = both(options).map(|cli| cli.err().unwrap_or_else(|| panic!("{options:?} parsed")));
        assert_eq!(run.kind(), serve.kind(), "{options:?}");
        assert!(matches!(run.kind(), ErrorKind::MissingRequiredArgument | ErrorKind::ValueValidation), "{run}");
        // The same complaint, whatever the usage line after it says.
        let first = |e: &clap::Error| e.to_string().lines().next().unwrap_or_default().to_string();
        assert_eq!(first(&run), first(&serve), "{options:?}");
    }
}

/// One test for everything that reads or changes the environment, so that no two run at once.
#[test]
fn the_options_check_the_name_read_the_cookie_and_name_the_node_to_its_processes() {
    let parse = |options: &[&str]| {
        let argv = ["rebeam", "serve", "--parent-pid", "1"].into_iter().chain(options.iter().copied());
        node_args(Cli::try_parse_from(argv).expect("the options parse"))
    };
    let dir = std::env::temp_dir().join(format!("rebeam-node-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cookie = dir.join("cookie");
    std::fs::write(&cookie, "s3cret\nignored\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o600)).unwrap();

    std::env::set_var(rebeam_proto::env::NODE, "inherited");
    assert!(parse(&[]).options().unwrap().is_none());
    assert!(std::env::var_os(rebeam_proto::env::NODE).is_none(), "a node name from an outer run is not kept");

    let bad = parse(&["--node", "b c"]).options().unwrap_err();
    assert!(matches!(bad, rebeam_node::NodeError::BadName(ref n) if n == "b c"), "{bad}");

    let cookie_arg = cookie.display().to_string();
    let node = parse(&["--node", "b", "--connect", "tcp/127.0.0.1:7447", "--cookie-file", &cookie_arg])
        .options()
        .unwrap()
        .expect("a node");
    assert_eq!((node.name.as_str(), node.cookie.as_str()), ("b", "s3cret"));
    assert_eq!(node.connect, ["tcp/127.0.0.1:7447"]);
    assert_eq!(std::env::var(rebeam_proto::env::NODE).as_deref(), Ok("b"));

    std::env::set_var(rebeam_node::COOKIE_ENV, "from-the-environment");
    let node = parse(&["--node", "b"]).options().unwrap().expect("a node");
    assert_eq!(node.cookie, "from-the-environment");
    assert!(std::env::var_os(rebeam_node::COOKIE_ENV).is_none(), "the cookie is kept from the run's processes");
    assert!(matches!(parse(&["--node", "b"]).options(), Err(rebeam_node::NodeError::NoCookie)));
    std::env::remove_var(rebeam_proto::env::NODE);
    let _ = std::fs::remove_dir_all(&dir);
}
