//! The switching lock held by another process (this test binary, re-run as a child that takes
//! the lock and waits for its stdin to close): checkers get exit 3 naming it, and the lock is
//! free again once the holder is killed — no stale lock.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use standby_common::exit::{self, Code};
use standby_common::switching::{self, SwitchLock};

const CHILD_ENV: &str = "STANDBY_TEST_SWITCH_HOLDER";

/// Not a test on its own: when run as the child, take the lock, say so, and hold it until
/// stdin closes (the parent dropped us or died).
#[test]
fn holder_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let _lock = SwitchLock::acquire("dns-failover", "switching DNS record db to backup").expect("child takes the lock");
    println!("\nSWITCH-LOCK-HELD");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

/// The child process, killed and reaped on drop.
struct HolderChild(Child);

impl HolderChild {
    fn spawn(run_dir: &std::path::Path) -> HolderChild {
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args(["--exact", "holder_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env(switching::RUN_DIR_ENV, run_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = HolderChild(child);
        let out = child.0.stdout.take().unwrap();
        let held = BufReader::new(out).lines().map_while(Result::ok).any(|l| l.contains("SWITCH-LOCK-HELD"));
        assert!(held, "child took the lock");
        child
    }
}

impl Drop for HolderChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_lock_held_by_another_process_refuses_with_code_3_and_is_released_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let holder = HolderChild::spawn(dir.path());
    let pid = holder.0.id();

    let err = switching::ensure_not_switching_in(dir.path(), "blue-green-deploy switch").unwrap_err();
    assert_eq!(exit::code_of(&err), Code::Locked);
    let msg = format!("{err}");
    let expected = format!("blue-green-deploy switch refused to start: dns-failover (pid {pid}) is switching DNS record db to backup since ");
    assert!(msg.starts_with(&expected), "{msg}");
    assert!(msg.contains("switching.lock") && msg.ends_with("nothing was changed"), "{msg}");

    let err = SwitchLock::acquire_in(dir.path(), "replica-promote", "promoting").unwrap_err();
    assert_eq!(exit::code_of(&err), Code::Locked);
    assert!(format!("{err}").contains(&format!("dns-failover (pid {pid})")), "{err}");
    let who = switching::holder_in(dir.path()).unwrap().expect("held");
    assert_eq!((who.tool.as_str(), who.pid), ("dns-failover", pid));

    // SIGKILL: the holder cannot clean up; the kernel releases the flock when it is reaped.
    drop(holder);
    assert_eq!(switching::holder_in(dir.path()).unwrap(), None);
    switching::ensure_not_switching_in(dir.path(), "blue-green-deploy switch").expect("free after the holder died");
    let lock = SwitchLock::acquire_in(dir.path(), "replica-promote", "promoting").expect("can be taken again");
    drop(lock);
}

/// A hook run by the holder (replica-promote's post-promote runs `dns-failover switch`) works
/// under its parent's lock; anyone else is refused.
#[test]
fn a_program_run_by_the_holder_works_under_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let holder = HolderChild::spawn(dir.path());
    let pid = holder.0.id().to_string();
    std::env::set_var(switching::HOLDER_ENV, &pid);
    let nested = SwitchLock::acquire_in(dir.path(), "dns-failover", "switching db to backup").expect("nested");
    assert_eq!(nested.env(), (switching::HOLDER_ENV, pid));
    drop(nested);
    // Dropping the nested guard does not release the parent's lock.
    std::env::set_var(switching::HOLDER_ENV, "1");
    let err = SwitchLock::acquire_in(dir.path(), "dns-failover", "switching db to backup").unwrap_err();
    assert_eq!(exit::code_of(&err), Code::Locked, "{err:#}");
    drop(holder);
}
