//! The README's "A first session", run verbatim with bash against the built `persql` on a
//! fresh directory, so the README cannot drift from what the server does.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal, kill_process_group};
use tempfile::TempDir;

use crate::support::{PERSQL_BIN, free_port};

/// The heading the block sits under.
const HEADING: &str = "## A first session";

/// Longer than the block needs (a few seconds), short enough to fail a hung step.
const DEADLINE: Duration = Duration::from_secs(120);

pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The first ```sh fence after `HEADING`, without its fence lines.
fn first_session_block(readme: &str) -> String {
    let (_, after) = readme
        .split_once(&format!("\n{HEADING}\n"))
        .unwrap_or_else(|| panic!("README.md has no {HEADING:?} section"));
    let (_, fenced) = after
        .split_once("\n```sh\n")
        .expect("the first session has a ```sh block");
    let (block, _) = fenced
        .split_once("\n```\n")
        .expect("the ```sh block is closed");
    block.to_owned() + "\n"
}

#[test]
fn the_readme_first_session_runs_verbatim_on_a_fresh_data_dir() {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).expect("README");
    let block = first_session_block(&readme);

    // `persql` on PATH is the test build of the same command line.
    let tmp = TempDir::new().unwrap();
    let bin = tmp.path().join("bin");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(PERSQL_BIN, bin.join("persql")).unwrap();
    let script = tmp.path().join("first-session.sh");
    std::fs::write(&script, &block).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail"])
        .arg(&script)
        .current_dir(&work)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(tmp.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("stderr")).unwrap())
        // Its own process group, so the server it starts goes too if a step fails.
        .process_group(0);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PERSQL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PERSQL_LISTEN", format!("127.0.0.1:{}", free_port()));
    let mut child = cmd.spawn().expect("bash");
    let group = Pid::from_child(&child);

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever is left of the group (nothing, when the block ran to its end).
    let _ = kill_process_group(group, Signal::KILL);
    let _ = child.wait();

    let stdout = std::fs::read_to_string(tmp.path().join("stdout")).unwrap_or_default();
    let stderr = std::fs::read_to_string(tmp.path().join("stderr")).unwrap_or_default();
    let report = format!("--- block\n{block}--- stdout\n{stdout}--- stderr\n{stderr}");
    match status {
        None => panic!("the first session did not finish within {DEADLINE:?}\n{report}"),
        Some(s) => assert!(s.success(), "the first session failed ({s})\n{report}"),
    }
    assert!(
        stdout.contains(r#""body":"hello""#),
        "the last query reads the row back\n{report}"
    );
    assert!(
        work.join("data").join("control.db").exists(),
        "the session's data dir is the fresh ./data\n{report}"
    );
}

#[test]
fn the_first_session_block_is_the_sh_fence_under_its_heading() {
    let readme =
        "# T\n\n## A first session\n\nProse.\n\n```sh\necho one\necho two\n```\n\n```sh\nno\n```\n";
    assert_eq!(first_session_block(readme), "echo one\necho two\n");
}
