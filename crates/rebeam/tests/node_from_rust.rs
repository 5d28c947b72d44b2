//! The Rust host as a node: a host on node "h" joins a `rebeam --node a` run on loopback, calls
//! the actor there by name, and is called back (its own Python actor, by name, from node a).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const T: Duration = Duration::from_secs(20);

/// Node a's program: a counter that says where it runs, and an actor that calls back a name.
const NODE_A: &str = r#"
import os
import rebeam
from rebeam import GenPy, Supervisor, receive

class Counter(GenPy):
    name = "counter"

    @receive("add")
    def add(self, source, n):
        self.state["n"] = self.state.get("n", 0) + n
        return {"n": self.state["n"], "node": os.environ["REBEAM_NODE"]}

    @receive("call_back")
    def call_back(self, source, name):
        status, value = rebeam.call(name, "echo", "from a")
        return [status, value]

if __name__ == "__main__":
    Supervisor(modules=[Counter()])
    print("NODE A READY", flush=True)
"#;

#[derive(Debug, Deserialize)]
struct Added {
    n: u32,
    node: String,
}

/// Node a's run, killed (with its workers: they follow their governor) when dropped.
struct NodeA(Child);

impl Drop for NodeA {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_host_on_node_h_calls_an_actor_on_node_a_by_name_and_is_called_back() {
    let Some(builder) = common::builder() else { return };
    let venv = common::venv().unwrap();
    let dir = std::env::temp_dir().join(format!("rebeam-node-from-rust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cookie = dir.join("cookie");
    std::fs::write(&cookie, "s3cret-shared\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.join("node_a.py"), NODE_A).unwrap();
    let endpoint = format!("tcp/127.0.0.1:{}", free_port());

    let mut a = Command::new(venv.join("bin/rebeam"))
        .args(["--workers", "1", "--node", "a", "--listen", &endpoint, "--cookie-file"])
        .arg(&cookie)
        .arg(dir.join("node_a.py"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("node a starts");
    let stdout = a.stdout.take().unwrap();
    let a = NodeA(a);
    // Kept open to the end: node a may still write, and a closed pipe would fail it.
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("NODE A READY"));
    assert!(ready, "node a ended before it was ready");

    let runtime = builder.node("h").connect(&endpoint).cookie_file(&cookie).start().expect("node h starts");
    let deadline = Instant::now() + T;
    let mut nodes = runtime.nodes().unwrap();
    while nodes != ["a", "h"] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        nodes = runtime.nodes().unwrap();
    }
    assert_eq!(nodes, ["a", "h"]);

    let added: Added = runtime.call("counter", "add", &2, T).expect("a call by name reaches node a");
    assert_eq!((added.n, added.node.as_str()), (2, "a"));
    let added: Added = runtime.call("counter", "add", &3, T).expect("and keeps its state");
    assert_eq!(added.n, 5);

    runtime
        .spawn(rebeam::Spawn::new("host_fixtures:Echo").name("echo"))
        .expect("the host's own actor starts on node h");
    let back: (String, String) = runtime.call("counter", "call_back", "echo", T).expect("node a calls back");
    assert_eq!(back, ("ok".to_string(), "from a".to_string()));

    let err = runtime.call::<_, Added>("nobody", "add", &1, T).unwrap_err();
    assert!(matches!(&err, rebeam::Error::Remote { info, .. } if info.kind == rebeam::ErrorKind::NoProcess), "{err}");
    drop(runtime);
    drop(a);
    drop(lines);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn node_settings_without_a_node_name_are_refused_before_anything_starts() {
    let Some(builder) = common::builder() else { return };
    let err = builder.connect("tcp/127.0.0.1:7447").start().err().expect("no runtime");
    assert!(matches!(err, rebeam::Error::Settings(_)), "{err}");
    assert!(err.to_string().contains("Builder::node"), "{err}");
}
