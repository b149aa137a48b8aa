//! `cargo xtask dist`: what a user installs.
//!
//! - `target/dist/standby-VERSION-ARCH.tar.gz`: the six binaries, a man page per tool
//!   (clap_mangen, from the same clap definitions as `--help`), bash/zsh/fish completions
//!   (clap_complete), the example config, the chain scripts, crontab and systemd units, and
//!   SHA256SUMS of the binaries.
//! - `target/dist/standby_VERSION_ARCH.deb`: the same, laid out for Debian (binaries in
//!   /usr/bin, pages in /usr/share/man/man1, the example config as the conffile
//!   /etc/standby/standby.toml, units in /lib/systemd/system, a tmpfiles entry for the
//!   switching lock's /run/standby) with a `standby` system user for the state dir
//!   /var/lib/standby. Built with `dpkg-deb --root-owner-group`, which every Debian has: no
//!   cargo-deb to compile in CI for the same package.
//!
//! `--debug` packages the debug binaries as they are (no release build): what the tests install.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::CommandFactory;

use crate::run::{root, step};

/// A tool's name and its clap definition (the one `--help` prints).
pub fn commands() -> Vec<clap::Command> {
    vec![
        smoke_test::cli::Cli::command(),
        downtime_monitor::cli::Cli::command(),
        dns_failover::cli::Cli::command(),
        replica_promote::cli::Cli::command(),
        blue_green_deploy::cli::Cli::command(),
        backup_sync::cli::Cli::command(),
    ]
}

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Units and the tmpfiles entry shipped in the package (scripts/systemd).
const UNITS: &[&str] = &[
    "downtime-monitor.service",
    "dns-failover.service",
    "backup-sync.service",
    "backup-sync.timer",
    "replica-promote-check.service",
    "replica-promote-check.timer",
];
/// Chain scripts shipped in /usr/share/standby/scripts.
const SCRIPTS: &[&str] =
    &["failover.sh", "deploy.sh", "nightly-backup.sh", "post-deploy-smoke.sh", "power-switchover.sh"];

pub fn dist(args: &[String]) -> anyhow::Result<()> {
    let debug = match args {
        [] => false,
        [flag] if flag == "--debug" => true,
        _ => bail!("usage: cargo xtask dist [--debug]"),
    };
    let profile = if debug { "debug" } else { "release" };
    if !debug {
        let mut build = crate::run::cargo();
        build.args(["build", "--release", "--workspace", "--bins", "--exclude", "xtask"]);
        step(build)?;
    }
    let bins = target_dir().join(profile);
    let out = target_dir().join("dist");
    let made = package(&bins, &out, Packing::for_profile(debug))?;
    eprintln!("xtask: {}\nxtask: {}", made.tarball.display(), made.deb.display());
    Ok(())
}

/// The target dir cargo builds into (CARGO_TARGET_DIR honoured).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

pub struct Made {
    pub tarball: PathBuf,
    pub deb: PathBuf,
}

/// How hard to compress: debug binaries are ~50 MB each, and xz on them takes minutes.
#[derive(Debug, Clone, Copy)]
pub enum Packing {
    Small,
    Fast,
}

impl Packing {
    fn for_profile(debug: bool) -> Packing {
        if debug {
            Packing::Fast
        } else {
            Packing::Small
        }
    }
    fn gzip(self) -> &'static str {
        match self {
            Packing::Small => "gzip -9n",
            Packing::Fast => "gzip -1n",
        }
    }
    fn dpkg_deb(self) -> &'static str {
        match self {
            Packing::Small => "-Zxz",
            Packing::Fast => "-Znone",
        }
    }
}

/// Both artefacts from the binaries in `bins`, into `out`.
pub fn package(bins: &Path, out: &Path, packing: Packing) -> anyhow::Result<Made> {
    for command in commands() {
        let bin = bins.join(command.get_name());
        if !bin.is_file() {
            bail!("{} is missing: build the workspace's binaries first", bin.display());
        }
    }
    std::fs::create_dir_all(out)?;
    let arch = dpkg_architecture()?;
    let tarball = tarball(bins, out, &arch, packing)?;
    let deb = deb(bins, out, &arch, packing)?;
    Ok(Made { tarball, deb })
}

fn dpkg_architecture() -> anyhow::Result<String> {
    let out = Command::new("dpkg").arg("--print-architecture").output().context("dpkg --print-architecture")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A fresh, empty directory.
fn fresh(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

fn copy(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(to: &Path, text: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(to, text).with_context(|| format!("writing {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The man page of one tool, roff.
fn man_page(command: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    Ok(page)
}

/// A tool's completion script for one shell.
fn completion(command: &clap::Command, shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = command.clone();
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

/// Where each shell looks for completions: (shell, path under the install root).
fn completion_paths(tool: &str) -> [(clap_complete::Shell, String); 3] {
    use clap_complete::Shell;
    [
        (Shell::Bash, format!("usr/share/bash-completion/completions/{tool}")),
        (Shell::Zsh, format!("usr/share/zsh/vendor-completions/_{tool}")),
        (Shell::Fish, format!("usr/share/fish/vendor_completions.d/{tool}.fish")),
    ]
}

fn run(mut cmd: Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn tarball(bins: &Path, out: &Path, arch: &str, packing: Packing) -> anyhow::Result<PathBuf> {
    let name = format!("standby-{VERSION}-{arch}");
    let stage = out.join("stage").join(&name);
    fresh(&stage)?;
    let src = root();
    let mut sums = Command::new("sha256sum");
    sums.current_dir(stage.join("bin"));
    for command in commands() {
        let tool = command.get_name();
        copy(&bins.join(tool), &stage.join("bin").join(tool), 0o755)?;
        sums.arg(tool);
        write(&stage.join(format!("man/man1/{tool}.1")), &man_page(&command)?, 0o644)?;
        for (shell, path) in completion_paths(tool) {
            let file = Path::new(&path).file_name().unwrap_or_default().to_os_string();
            let dir = stage.join("completions").join(shell.to_string());
            write(&dir.join(file), &completion(&command, shell), 0o644)?;
        }
    }
    let sums = sums.output().context("sha256sum")?;
    write(&stage.join("SHA256SUMS"), &sums.stdout, 0o644)?;
    copy(&src.join("README.md"), &stage.join("README.md"), 0o644)?;
    copy(&src.join("examples/standby.toml"), &stage.join("examples/standby.toml"), 0o644)?;
    copy(&src.join("examples/smoke.toml"), &stage.join("examples/smoke.toml"), 0o644)?;
    for script in SCRIPTS {
        copy(&src.join("scripts").join(script), &stage.join("scripts").join(script), 0o755)?;
    }
    copy(&src.join("scripts/standby.cron"), &stage.join("scripts/standby.cron"), 0o644)?;
    for unit in UNITS.iter().chain(&["standby.tmpfiles"]) {
        copy(&src.join("scripts/systemd").join(unit), &stage.join("systemd").join(unit), 0o644)?;
    }
    let tarball = out.join(format!("{name}.tar.gz"));
    let mut tar = Command::new("tar");
    tar.arg("-I").arg(packing.gzip()).arg("-cf").arg(&tarball).arg("--owner=0").arg("--group=0").arg("-C");
    tar.arg(stage.parent().unwrap_or(out)).arg(&name);
    run(tar)?;
    Ok(tarball)
}

const POSTINST: &str = r#"#!/bin/sh
# The standby system user owns the state dir; the daemons (downtime-monitor, dns-failover) run
# as it. Tools run by root (backup-sync, replica-promote) keep their state there too.
set -e
if [ "$1" = configure ]; then
  if ! getent passwd standby >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/standby --no-create-home \
      --shell /usr/sbin/nologin --comment "standby tools" standby
  fi
  install -d -o standby -g standby -m 0750 /var/lib/standby
  if command -v systemd-tmpfiles >/dev/null && [ -d /run/systemd/system ]; then
    systemd-tmpfiles --create standby.conf || true
  fi
fi
exit 0
"#;

fn control(arch: &str, installed_kb: u64) -> String {
    format!(
        "Package: standby\n\
         Version: {VERSION}\n\
         Architecture: {arch}\n\
         Maintainer: standby developers <standby@example.org>\n\
         Installed-Size: {installed_kb}\n\
         Depends: libc6 (>= 2.36), passwd\n\
         Recommends: restic, rclone, postgresql-client-15, nginx | nginx-light, nut-client\n\
         Section: admin\n\
         Priority: optional\n\
         Description: keep a small team's servers alive through power cuts and dead servers\n \
         Six single-purpose tools chained by exit codes: backup-sync (restic-format backups,\n \
         dumps, offsite copies, test restores), dns-failover, replica-promote (PostgreSQL\n \
         promotion, switchover, rejoin), blue-green-deploy (nginx), smoke-test and\n \
         downtime-monitor (uptime checks, UPS through NUT, reports, alerts).\n"
    )
}

fn deb(bins: &Path, out: &Path, arch: &str, packing: Packing) -> anyhow::Result<PathBuf> {
    let name = format!("standby_{VERSION}_{arch}");
    let stage = out.join("stage").join(&name);
    fresh(&stage)?;
    let src = root();
    for command in commands() {
        let tool = command.get_name();
        copy(&bins.join(tool), &stage.join("usr/bin").join(tool), 0o755)?;
        let page = stage.join(format!("usr/share/man/man1/{tool}.1"));
        write(&page, &man_page(&command)?, 0o644)?;
        run({
            let mut gzip = Command::new("gzip");
            gzip.args(["-9nf"]).arg(&page);
            gzip
        })?;
        for (shell, path) in completion_paths(tool) {
            write(&stage.join(path), &completion(&command, shell), 0o644)?;
        }
    }
    copy(&src.join("examples/standby.toml"), &stage.join("etc/standby/standby.toml"), 0o644)?;
    for unit in UNITS {
        copy(&src.join("scripts/systemd").join(unit), &stage.join("lib/systemd/system").join(unit), 0o644)?;
    }
    copy(&src.join("scripts/systemd/standby.tmpfiles"), &stage.join("usr/lib/tmpfiles.d/standby.conf"), 0o644)?;
    for script in SCRIPTS {
        copy(&src.join("scripts").join(script), &stage.join("usr/share/standby/scripts").join(script), 0o755)?;
    }
    let doc = stage.join("usr/share/doc/standby");
    copy(&src.join("README.md"), &doc.join("README.md"), 0o644)?;
    copy(&src.join("scripts/standby.cron"), &doc.join("examples/standby.cron"), 0o644)?;
    copy(&src.join("examples/smoke.toml"), &doc.join("examples/smoke.toml"), 0o644)?;
    write(&doc.join("copyright"), copyright().as_bytes(), 0o644)?;

    let installed_kb = dir_size(&stage)?.div_ceil(1024);
    let debian = stage.join("DEBIAN");
    write(&debian.join("control"), control(arch, installed_kb).as_bytes(), 0o644)?;
    write(&debian.join("conffiles"), b"/etc/standby/standby.toml\n", 0o644)?;
    write(&debian.join("postinst"), POSTINST.as_bytes(), 0o755)?;

    let deb = out.join(format!("{name}.deb"));
    let mut build = Command::new("dpkg-deb");
    build.args(["--root-owner-group", packing.dpkg_deb(), "--build"]).arg(&stage).arg(&deb);
    run(build)?;
    Ok(deb)
}

fn copyright() -> String {
    let license = env!("CARGO_PKG_LICENSE");
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: standby\n\n\
         Files: *\nCopyright: the standby developers\nLicense: {license}\n"
    )
}

fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    //! The package as a user gets it: built from the debug binaries (the workspace's tests
    //! build them), installed with `dpkg -i`, used, removed. Needs root (CI runs as root).

    use super::*;

    /// target/debug, from this test's own path (target/debug/deps/xtask-HASH).
    fn debug_bins() -> PathBuf {
        let exe = std::env::current_exe().expect("test exe");
        exe.parent().and_then(Path::parent).expect("target/debug").to_path_buf()
    }

    fn sh(program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    fn installed() -> bool {
        let out = sh("dpkg-query", &["-W", "-f=${Status}", "standby"]);
        String::from_utf8_lossy(&out.stdout).contains("install ok installed")
    }

    /// Purges the package when the test ends, also on a failed assertion.
    struct Purge;
    impl Drop for Purge {
        fn drop(&mut self) {
            let _ = sh("dpkg", &["--purge", "standby"]);
        }
    }

    #[test]
    fn the_deb_installs_every_tool_with_its_man_page_and_removes_cleanly() {
        if String::from_utf8_lossy(&sh("id", &["-u"]).stdout).trim() != "0" {
            eprintln!("skipped: dpkg -i needs root (CI runs as root)");
            return;
        }
        assert!(!installed(), "a standby package is installed already: this test would replace it");
        let out = tempfile::tempdir().expect("tempdir");
        let made = package(&debug_bins(), out.path(), Packing::Fast).expect("package");

        let listing = sh("tar", &["-tzf", made.tarball.to_str().expect("utf-8")]);
        let listing = String::from_utf8_lossy(&listing.stdout);
        for command in commands() {
            let tool = command.get_name();
            for part in [
                format!("bin/{tool}"),
                format!("man/man1/{tool}.1"),
                format!("completions/bash/{tool}"),
                format!("completions/zsh/_{tool}"),
            ] {
                assert!(listing.lines().any(|l| l.ends_with(&part)), "{part} missing from the tarball:\n{listing}");
            }
        }

        let _purge = Purge;
        let install = sh("dpkg", &["-i", made.deb.to_str().expect("utf-8")]);
        assert!(install.status.success(), "dpkg -i: {}", String::from_utf8_lossy(&install.stderr));
        for command in commands() {
            let tool = command.get_name();
            let version = sh(&format!("/usr/bin/{tool}"), &["--version"]);
            let said = String::from_utf8_lossy(&version.stdout);
            assert!(version.status.success() && said.contains(VERSION), "{tool} --version: {said}");
        }
        let page = sh("man", &["-w", "dns-failover"]);
        assert_eq!(String::from_utf8_lossy(&page.stdout).trim(), "/usr/share/man/man1/dns-failover.1.gz");
        let text =
            Command::new("man").args(["-P", "cat", "dns-failover"]).env("MANWIDTH", "100").output().expect("man");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("switch") && text.contains("--check-config"), "man dns-failover:\n{text}");
        let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/backup-sync").expect("completion");
        assert!(bash.contains("restore") && bash.contains("--read-data-subset"), "bash completion lacks subcommands");

        // The conffile is the example config, and every tool accepts it.
        for command in commands() {
            let tool = command.get_name();
            let check =
                sh(&format!("/usr/bin/{tool}"), &["--check-config", "-q", "--config", "/etc/standby/standby.toml"]);
            assert!(
                check.status.success(),
                "{tool} rejects the packaged config: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let user = sh("getent", &["passwd", "standby"]);
        assert!(user.status.success(), "no standby system user");
        let state = sh("stat", &["-c", "%U %a", "/var/lib/standby"]);
        assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "standby 750");
        assert!(Path::new("/lib/systemd/system/dns-failover.service").is_file());

        let remove = sh("dpkg", &["-r", "standby"]);
        assert!(remove.status.success(), "dpkg -r: {}", String::from_utf8_lossy(&remove.stderr));
        assert!(!Path::new("/usr/bin/dns-failover").exists(), "a binary outlived dpkg -r");
        assert!(Path::new("/etc/standby/standby.toml").exists(), "dpkg -r keeps the conffile");
        let purge = sh("dpkg", &["--purge", "standby"]);
        assert!(purge.status.success());
        assert!(!Path::new("/etc/standby/standby.toml").exists(), "purge removes the conffile");
    }
}
