//! The only unsafe code in the harness: signals, `prctl(PR_SET_PDEATHSIG)` in `pre_exec`.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child get SIGKILL when the thread that forked it (the harness's spawner
/// thread, which lives as long as the test process) goes away, and refuses to start
/// the child if the parent is already gone.
pub(crate) fn kill_when_parent_dies(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec. It only calls prctl(2)
    // and getppid(2), which are async-signal-safe, and builds io::Errors from raw OS codes,
    // which does not allocate; it touches no lock and no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Sends `signal` to one process. `Ok(false)` when it does not exist.
pub(crate) fn kill(pid: u32, signal: i32) -> io::Result<bool> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 names exactly one process.
    let rc = unsafe { libc::kill(pid, signal) };
    check(rc)
}

/// Sends `signal` to every process of a process group. `Ok(false)` when the group is empty.
pub(crate) fn kill_group(pgid: u32, signal: i32) -> io::Result<bool> {
    let pgid = libc::pid_t::try_from(pgid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: kill(2) with a negative pid signals the group; pgid > 1 so this never means
    // "every process" (-1) or "our own group" (0).
    let rc = unsafe { libc::kill(-pgid, signal) };
    check(rc)
}

fn check(rc: libc::c_int) -> io::Result<bool> {
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}
