//! Network UPS Tools on loopback: Debian's `dummy-ups` driver and `upsd`, in the foreground,
//! configured in a temp dir (NUT_CONFPATH/NUT_STATEPATH), upsd on a free port. The dummy UPS
//! reads its variables from a `.dev` file; [`Nut::set`] rewrites it to cut or restore the power,
//! and [`Nut::wait_status`] waits until upsd reports the change.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::ports::{free_port, retry_on_clash};
use crate::process::{wait_until, ServerProcess};
use crate::util;

const DRIVER: &str = "/lib/nut/dummy-ups";
const UPSD: &str = "/lib/nut/upsd";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A dummy UPS served by a real upsd. Dropping it stops both and removes the temp dir.
pub struct Nut {
    /// upsd's port on 127.0.0.1.
    pub port: u16,
    /// The UPS's name (`apc`).
    pub ups: String,
    upsd: Option<ServerProcess>,
    driver: Option<ServerProcess>,
    /// The last modification time given to the `.dev` file (the driver notices a change by it).
    last_write: Mutex<SystemTime>,
    dir: tempfile::TempDir,
}

impl Nut {
    /// Starts a UPS named `apc` on mains: `ups.status: OL`, charge 100 %, runtime 5400 s.
    pub fn start() -> anyhow::Result<Nut> {
        for p in [DRIVER, UPSD] {
            if !std::path::Path::new(p).exists() {
                bail!("{p} is missing: install nut-server and nut-client (scripts/install-deps.sh)");
            }
        }
        let dir = util::temp_dir("nut")?;
        let state = dir.path().join("state");
        std::fs::create_dir(&state).context("create NUT's state dir")?;
        std::fs::write(dir.path().join("ups.conf"), "[apc]\n  driver = dummy-ups\n  port = apc.dev\n")?;
        std::fs::write(dir.path().join("upsd.users"), "")?;
        std::fs::write(dir.path().join("nut.conf"), "MODE=standalone\n")?;
        let mut nut = Nut {
            port: 0,
            ups: "apc".into(),
            upsd: None,
            driver: None,
            last_write: Mutex::new(SystemTime::UNIX_EPOCH),
            dir,
        };
        nut.set(&[("ups.status", "OL"), ("battery.charge", "100"), ("battery.runtime", "5400")])?;
        let driver = ServerProcess::spawn(nut.command(DRIVER, &["-a", "apc"]), "dummy-ups", nut.path("driver.log"))?;
        nut.driver = Some(driver);
        retry_on_clash("upsd", "not listening", || {
            nut.port = free_port();
            nut.spawn_upsd()
        })?;
        Ok(nut)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(["-F", "-u", "root"]).args(args).current_dir(self.dir.path());
        cmd.env("NUT_CONFPATH", self.dir.path()).env("NUT_STATEPATH", self.path("state"));
        cmd
    }

    fn spawn_upsd(&mut self) -> anyhow::Result<()> {
        std::fs::write(self.path("upsd.conf"), format!("LISTEN 127.0.0.1 {}\n", self.port))?;
        let mut upsd = ServerProcess::spawn(self.command(UPSD, &[]), "upsd", self.path("upsd.log"))?;
        let (port, ups) = (self.port, self.ups.clone());
        // `WAIT` until the driver has read its file for the first time.
        let read = || get_var(port, &ups, "ups.status").ok().flatten();
        upsd.wait_ready(START_TIMEOUT, || read().is_some_and(|s| s != "WAIT"))?;
        self.upsd = Some(upsd);
        Ok(())
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Rewrites the dummy UPS's variables (all of them: what is not given is gone). Each
    /// write gets a modification time a second after the last one, so the driver, which
    /// re-reads the file when its time changes, never misses one.
    pub fn set(&self, vars: &[(&str, &str)]) -> anyhow::Result<()> {
        let text: String = vars.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let mut last = self.last_write.lock().unwrap_or_else(|p| p.into_inner());
        let when = SystemTime::now().max(*last + Duration::from_secs(1));
        let tmp = self.path("apc.dev.tmp");
        let mut file = std::fs::File::create(&tmp).context("write apc.dev")?;
        file.write_all(text.as_bytes())?;
        file.set_modified(when)?;
        drop(file);
        std::fs::rename(&tmp, self.path("apc.dev")).context("replace apc.dev")?;
        *last = when;
        Ok(())
    }

    /// Power cut: on battery with `runtime_s` seconds left.
    pub fn on_battery(&self, charge: u32, runtime_s: u32) -> anyhow::Result<()> {
        let (c, r) = (charge.to_string(), runtime_s.to_string());
        self.set(&[("ups.status", "OB DISCHRG"), ("battery.charge", &c), ("battery.runtime", &r)])
    }

    /// Battery low: the UPS is about to cut the load.
    pub fn low_battery(&self, charge: u32, runtime_s: u32) -> anyhow::Result<()> {
        let (c, r) = (charge.to_string(), runtime_s.to_string());
        self.set(&[("ups.status", "OB DISCHRG LB"), ("battery.charge", &c), ("battery.runtime", &r)])
    }

    /// Mains back, charging.
    pub fn on_line(&self, charge: u32) -> anyhow::Result<()> {
        let c = charge.to_string();
        let status = if charge < 100 { "OL CHRG" } else { "OL" };
        self.set(&[("ups.status", status), ("battery.charge", &c), ("battery.runtime", "5400")])
    }

    /// `ups.status` as upsd reports it now (None while its data is stale).
    pub fn status(&self) -> anyhow::Result<Option<String>> {
        get_var(self.port, &self.ups, "ups.status")
    }

    /// Waits until upsd reports `ups.status` = `want`.
    pub fn wait_status(&self, want: &str, timeout: Duration) -> anyhow::Result<()> {
        if wait_until(timeout, || self.status().ok().flatten().as_deref() == Some(want)) {
            return Ok(());
        }
        bail!("upsd did not report ups.status {want:?} within {timeout:?} (now {:?})", self.status())
    }

    /// Stops upsd (the driver keeps running): the UPS becomes unreachable.
    pub fn stop_upsd(&mut self) {
        if let Some(mut p) = self.upsd.take() {
            p.stop();
        }
    }
}

impl Drop for Nut {
    fn drop(&mut self) {
        self.stop_upsd();
        if let Some(mut p) = self.driver.take() {
            p.stop();
        }
    }
}

/// One `GET VAR` on a fresh connection: `Ok(None)` when upsd answers an `ERR`.
fn get_var(port: u16, ups: &str, var: &str) -> anyhow::Result<Option<String>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("GET VAR {ups} {var}\nLOGOUT\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let prefix = format!("VAR {ups} {var} \"");
    Ok(line.trim_end().strip_prefix(&prefix).and_then(|v| v.strip_suffix('"')).map(str::to_string))
}
