//! Self-signed server certificates made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::process::run_checked;
use crate::util::{civil, now_secs};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Writes `<dir>/<common_name>.crt` and `<dir>/<common_name>.key` (RSA 2048, no passphrase)
/// and returns `(cert, key)`.
///
/// The certificate is a leaf (`CA:FALSE`, `serverAuth`) with subjectAltName
/// `DNS:localhost, IP:127.0.0.1` (plus `DNS:<common_name>` when that is a host name), so a
/// client that trusts it as its only root (reqwest `add_root_certificate`) accepts it.
/// With `days > 0` it is valid from now for `days` days. With `days <= 0` it has already
/// expired: it was valid for one day and ran out `-days` days ago (minus one minute, for
/// `days == 0`).
pub fn self_signed(dir: &Path, common_name: &str, days: i64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let stem: String =
        common_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let work = crate::util::temp_dir("openssl").context("temp dir for openssl")?;
    let mut san = String::from("DNS:localhost, IP:127.0.0.1");
    if common_name != "localhost"
        && common_name.parse::<std::net::IpAddr>().is_err()
        && common_name.contains(|c: char| c.is_ascii_alphabetic())
    {
        san.push_str(&format!(", DNS:{common_name}"));
    }
    let config = work.path().join("openssl.cnf");
    std::fs::write(
        &config,
        format!(
            "[req]\n\
             distinguished_name = dn\n\
             prompt = no\n\
             [dn]\n\
             CN = {common_name}\n\
             [ca]\n\
             default_ca = selfsign\n\
             [selfsign]\n\
             database = {db}\n\
             serial = {serial}\n\
             new_certs_dir = {dir}\n\
             default_md = sha256\n\
             policy = anything\n\
             unique_subject = no\n\
             [anything]\n\
             commonName = supplied\n\
             [leaf]\n\
             basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth\n\
             subjectKeyIdentifier = hash\n\
             subjectAltName = {san}\n",
            db = work.path().join("index.txt").display(),
            serial = work.path().join("serial").display(),
            dir = work.path().display(),
        ),
    )?;

    if days > 0 {
        let mut req = Command::new("openssl");
        req.args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
            .arg("-config")
            .arg(&config)
            .args(["-extensions", "leaf", "-subj"])
            .arg(format!("/CN={common_name}"))
            .args(["-days", &days.to_string(), "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert);
        run_checked(req, TIMEOUT).context("openssl req -x509")?;
        return Ok((cert, key));
    }

    // `openssl req -days` takes only positive numbers; `openssl ca -selfsign` takes dates.
    std::fs::write(work.path().join("index.txt"), "")?;
    let csr = work.path().join("req.csr");
    let mut req = Command::new("openssl");
    req.args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256"])
        .arg("-config")
        .arg(&config)
        .arg("-subj")
        .arg(format!("/CN={common_name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr);
    run_checked(req, TIMEOUT).context("openssl req -new")?;
    let end = now_secs() + days * 86_400 - 60;
    let start = end - 86_400;
    let mut ca = Command::new("openssl");
    ca.args(["ca", "-batch", "-selfsign", "-notext", "-rand_serial"])
        .arg("-config")
        .arg(&config)
        .args(["-extensions", "leaf", "-keyfile"])
        .arg(&key)
        .arg("-in")
        .arg(&csr)
        .arg("-out")
        .arg(&cert)
        .args(["-startdate", &asn1_time(start), "-enddate", &asn1_time(end)]);
    run_checked(ca, TIMEOUT).context("openssl ca -selfsign")?;
    Ok((cert, key))
}

/// `YYYYMMDDHHMMSSZ`, the form `openssl ca -startdate/-enddate` takes.
fn asn1_time(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z")
}
