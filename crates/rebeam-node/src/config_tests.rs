use super::*;

use std::os::unix::fs::PermissionsExt;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rebeam-node-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn node_names_are_one_key_chunk() {
    for good in ["a", "node-1", "b_2.local"] {
        assert!(valid_node_name(good), "{good}");
    }
    for bad in ["", "a/b", "*", "a b", "x$", "é"] {
        assert!(!valid_node_name(bad), "{bad}");
    }
}

#[test]
fn a_cookie_file_is_its_first_line_and_private() {
    let dir = scratch("cookie");
    let path = dir.join("cookie");
    std::fs::write(&path, "s3cret\nignored\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(read_cookie(Some(&path), Some("env".into())).expect("readable"), "s3cret", "the file wins");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = read_cookie(Some(&path), None).expect_err("others can read it");
    assert!(matches!(err, NodeError::CookieOpen { mode: 0o644, .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::write(&path, "\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(matches!(read_cookie(Some(&path), None), Err(NodeError::EmptyCookie)));
    assert!(matches!(read_cookie(Some(&dir.join("missing")), None), Err(NodeError::CookieFile { .. })));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn without_a_file_the_cookie_comes_from_the_environment() {
    assert_eq!(read_cookie(None, Some(" abc \n".into())).expect("set"), "abc");
    assert!(matches!(read_cookie(None, None), Err(NodeError::NoCookie)));
    assert!(matches!(read_cookie(None, Some("  ".into())), Err(NodeError::EmptyCookie)));
}

#[test]
fn the_zenoh_configuration_is_explicit_and_authenticated() {
    let options = NodeOptions {
        name: "a".into(),
        listen: vec!["tcp/127.0.0.1:7001".into()],
        connect: vec!["tcp/127.0.0.1:7002".into(), "tcp/127.0.0.1:7003".into()],
        cookie: "with \"quotes\"".into(),
        join_timeout: Duration::from_millis(2500),
        authority: false,
        lease: Duration::from_millis(1500),
        tls: None,
    };
    let config = options.zenoh_config(Path::new("/nowhere/dict")).expect("a valid configuration");
    let get = |key: &str| config.get_json(key).expect(key);
    assert_eq!(get("scouting/multicast/enabled"), "false");
    assert_eq!(get("listen/endpoints"), r#"["tcp/127.0.0.1:7001"]"#);
    assert_eq!(get("connect/endpoints"), r#"["tcp/127.0.0.1:7002","tcp/127.0.0.1:7003"]"#);
    assert_eq!(get("connect/timeout_ms"), "2500");
    assert_eq!(get("transport/link/tx/lease"), "1500");
    assert_eq!(get("transport/auth/usrpwd/password"), r#""with \"quotes\"""#);
    assert_eq!(options.dictionary_line(), "rebeam:with \"quotes\"\n");
}

fn tls_options(listen: &str, connect: &str) -> NodeOptions {
    NodeOptions {
        name: "a".into(),
        listen: vec![listen.into()],
        connect: vec![connect.into()],
        cookie: "c".into(),
        join_timeout: Duration::from_secs(1),
        authority: false,
        lease: crate::DEFAULT_LEASE,
        tls: Some(crate::Tls { ca: "/k/ca.pem".into(), cert: "/k/a.pem".into(), key: "/k/a.key".into() }),
    }
}

#[test]
fn with_tls_every_link_is_mutual_tls_against_the_ca() {
    let config = tls_options("tls/127.0.0.1:7001", "tls/127.0.0.1:7002").zenoh_config(Path::new("/d")).expect("valid");
    let get = |key: &str| config.get_json(key).expect(key);
    assert_eq!(get("transport/link/protocols"), r#"["tls"]"#);
    assert_eq!(get("transport/link/tls/root_ca_certificate"), r#""/k/ca.pem""#);
    assert_eq!(get("transport/link/tls/connect_certificate"), r#""/k/a.pem""#);
    assert_eq!(get("transport/link/tls/listen_certificate"), r#""/k/a.pem""#);
    assert_eq!(get("transport/link/tls/enable_mtls"), "true");
    assert_eq!(get("transport/auth/usrpwd/user"), r#""rebeam""#, "the cookie is asked for on top");
}

#[test]
fn tls_and_plain_endpoints_do_not_mix() {
    let plain = tls_options("tls/127.0.0.1:7001", "tcp/127.0.0.1:7002").zenoh_config(Path::new("/d"));
    assert!(matches!(plain, Err(NodeError::Endpoint { tls: true, .. })), "a tcp/ endpoint with TLS files");
    let mut bare = tls_options("tls/127.0.0.1:7001", "tls/127.0.0.1:7002");
    bare.tls = None;
    assert!(
        matches!(bare.zenoh_config(Path::new("/d")), Err(NodeError::Endpoint { tls: false, .. })),
        "a tls/ endpoint with nothing to check a peer against"
    );
}

#[test]
fn a_node_takes_its_zenoh_runtimes_unless_the_user_named_their_own() {
    // The only test here that touches the variable; no test of this crate starts Zenoh.
    std::env::remove_var(ZENOH_RUNTIME_ENV);
    use_node_runtimes();
    assert_eq!(std::env::var(ZENOH_RUNTIME_ENV).as_deref(), Ok(ZENOH_RUNTIME));
    let theirs = "(app: (worker_threads: 2))";
    std::env::set_var(ZENOH_RUNTIME_ENV, theirs);
    use_node_runtimes();
    assert_eq!(std::env::var(ZENOH_RUNTIME_ENV).as_deref(), Ok(theirs), "the user's own settings win");
    std::env::remove_var(ZENOH_RUNTIME_ENV);
}
