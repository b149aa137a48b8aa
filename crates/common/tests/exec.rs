//! `exec::Cmd::stream` against real programs: a gigabyte through a small buffer in bounded
//! memory, the timeout, a missing program, a failure with the tail of stderr. Its own test
//! binary (own process), so the peak-RSS figure is not disturbed by other tests.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::io::Read;
use std::time::Duration;

use standby_common::exec::{Cmd, STDERR_TAIL_BYTES};
use standby_common::exit::{self, Code};

/// Peak resident set size of this process, in KiB (`VmHWM` in /proc/self/status).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM value")
}

#[test]
fn a_gigabyte_streams_through_a_small_buffer_in_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let before = peak_rss_kib();
    let mut out = Cmd::new("head")
        .args(["-c", &GIB.to_string(), "/dev/zero"])
        .timeout(Duration::from_secs(300))
        .stream()
        .expect("start head");
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    let mut nonzero = false;
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        nonzero |= buf[..n].iter().any(|b| *b != 0);
        total += n as u64;
    }
    assert_eq!(out.bytes_read(), GIB);
    let done = out.finish().expect("head succeeds");
    assert_eq!(total, GIB);
    assert!(!nonzero);
    assert_eq!(done.bytes, GIB);
    assert!(done.status.success());
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB while streaming 1 GiB");
}

#[test]
fn stream_timeout_kills_the_group_and_names_program_and_timeout() {
    // The grandchild `sleep` holds stdout open: only killing the group ends the read.
    let mut out = Cmd::shell("echo first; sleep 30 & sleep 30").timeout(Duration::from_millis(300)).stream().unwrap();
    let mut text = String::new();
    let err = out.read_to_string(&mut text).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(err.to_string().contains("sh: timed out after 0.3s"), "{err}");
    assert_eq!(text, "first\n", "output before the timeout was delivered");
    let err = out.finish().unwrap_err();
    assert_eq!(format!("{err}"), "sh: timed out after 0.3s and was killed");
}

#[test]
fn finish_without_reading_enforces_the_timeout_too() {
    let out = Cmd::shell("sleep 30").timeout(Duration::from_millis(200)).stream().unwrap();
    let err = out.finish().unwrap_err();
    assert!(format!("{err}").contains("sh: timed out after 0.2s"), "{err}");
}

#[test]
fn buffered_timeout_names_program_and_timeout() {
    let err = Cmd::new("sleep").arg("30").timeout(Duration::from_millis(200)).run().unwrap_err();
    assert_eq!(format!("{err}"), "sleep: timed out after 0.2s and was killed");
}

#[test]
fn stream_of_a_missing_program_is_code_4_and_named() {
    let err = Cmd::new("standby-no-such-program").stream().unwrap_err();
    assert_eq!(exit::code_of(&err), Code::Unavailable);
    assert!(format!("{err}").starts_with("standby-no-such-program: not installed"), "{err}");
}

#[test]
fn failure_carries_the_tail_of_stderr_even_when_stderr_is_large() {
    // 1 MiB of stderr before the last line: the child must not block on a full stderr pipe
    // while we read stdout, and only the tail is kept.
    let script =
        "head -c 1048576 /dev/zero | tr '\\0' x >&2; echo >&2; echo 'pg_dump: error: connection refused' >&2; \
                  echo partial; exit 3";
    let mut out = Cmd::shell(script).timeout(Duration::from_secs(60)).stream().unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(text, "partial\n");
    let err = out.finish().unwrap_err();
    let msg = format!("{err}");
    assert!(msg.starts_with("sh exited with status 3: "), "{}", &msg[..msg.len().min(200)]);
    assert!(msg.ends_with("pg_dump: error: connection refused"), "{}", &msg[msg.len().saturating_sub(200)..]);
    assert!(msg.len() <= STDERR_TAIL_BYTES + 100, "only the tail is kept: {} bytes", msg.len());
}

#[test]
fn finishing_early_does_not_hang_on_unread_output() {
    let mut out = Cmd::new("yes").timeout(Duration::from_secs(60)).stream().unwrap();
    let mut buf = [0u8; 4];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"y\ny\n");
    let err = out.finish().unwrap_err();
    assert!(format!("{err}").starts_with("yes was killed by signal 13"), "broken pipe: {err}");
}

#[test]
fn successful_stream_keeps_stderr_warnings() {
    let mut out = Cmd::shell("echo warn >&2; printf abc").stream().unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let done = out.finish().unwrap();
    assert_eq!((text.as_str(), done.bytes, done.stderr_tail.as_slice()), ("abc", 3, &b"warn\n"[..]));
}
