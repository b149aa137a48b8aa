//! The libpq password file (`$PGPASSFILE`, else `~/.pgpass`): lines of
//! `hostname:port:database:username:password`, `*` matching any value of a field, `\:` and
//! `\\` escaping, `#` comments; the first matching line wins. As libpq does, the file is
//! ignored (with a warning) unless it is a plain file with mode 0600 or stricter.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// `$PGPASSFILE`, else `$HOME/.pgpass`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| Path::new(&h).join(".pgpass"))
}

/// The host name a Unix-socket connection is looked up under: `localhost` for the default
/// socket directories (as libpq), else the directory itself.
pub fn socket_host(dir: &Path) -> String {
    if dir == Path::new("/var/run/postgresql") || dir == Path::new("/run/postgresql") || dir == Path::new("/tmp") {
        "localhost".to_string()
    } else {
        dir.display().to_string()
    }
}

/// The password for `host:port/dbname` as `user` in the file at `path`, if the file is usable
/// and a line matches.
pub fn lookup(path: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Option<Secret> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        tracing::warn!("password file {} is not a plain file; ignored", path.display());
        return None;
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access (mode {:o}); ignored: run chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
        return None;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}", path.display());
            return None;
        }
    };
    find(&text, host, &port.to_string(), dbname, user).map(Secret::new)
}

/// The password of the first line of `text` that matches.
pub fn find(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        let line: Vec<char> = line.trim_end_matches('\r').chars().collect();
        if line.is_empty() || line[0] == '#' {
            continue;
        }
        let mut at = 0;
        let mut matched = true;
        for want in [host, port, dbname, user] {
            match field_matches(&line[at..], want) {
                Some(used) => at += used,
                None => {
                    matched = false;
                    break;
                }
            }
        }
        if !matched {
            continue;
        }
        // The password: up to the next unescaped `:`, de-escaped.
        let mut password = String::new();
        let mut chars = line[at..].iter();
        while let Some(&c) = chars.next() {
            match c {
                ':' => break,
                '\\' => match chars.next() {
                    Some(&next) => password.push(next),
                    None => password.push('\\'),
                },
                c => password.push(c),
            }
        }
        return (!password.is_empty()).then_some(password);
    }
    None
}

/// If the field at the start of `rest` matches `want`, how many chars it uses with its `:`.
fn field_matches(rest: &[char], want: &str) -> Option<usize> {
    if rest.len() >= 2 && rest[0] == '*' && rest[1] == ':' {
        return Some(2);
    }
    let want: Vec<char> = want.chars().collect();
    let mut i = 0;
    let mut j = 0;
    while i < rest.len() {
        let mut escaped = false;
        if rest[i] == '\\' {
            i += 1;
            escaped = true;
            if i == rest.len() {
                return None;
            }
        }
        if rest[i] == ':' && !escaped && j == want.len() {
            return Some(i + 1);
        }
        if j == want.len() || rest[i] != want[j] {
            return None;
        }
        i += 1;
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_line_wins_and_wildcards_match_anything() {
        let text = "# comment\n\
                    db.example:5432:app:mon:first\n\
                    127.0.0.1:*:*:postgres:second\n\
                    *:*:*:*:fallback\n";
        assert_eq!(find(text, "db.example", "5432", "app", "mon").as_deref(), Some("first"));
        assert_eq!(find(text, "db.example", "5433", "app", "mon").as_deref(), Some("fallback"));
        assert_eq!(find(text, "127.0.0.1", "6000", "x", "postgres").as_deref(), Some("second"));
        assert_eq!(find("a:1:b:c:pw\n", "a", "1", "b", "cc"), None);
        assert_eq!(find("a:1:b:c\n", "a", "1", "b", "c"), None, "no password field");
    }

    #[test]
    fn escapes_in_fields_and_password() {
        let text = "h\\:x:5432:d\\\\b:u:p\\:w\\\\d:ignored\r\n";
        assert_eq!(find(text, "h:x", "5432", "d\\b", "u").as_deref(), Some("p:w\\d"));
        // `\*` is a literal star, not a wildcard.
        assert_eq!(find("\\*:*:*:*:pw\n", "host", "1", "d", "u"), None);
        assert_eq!(find("\\*:*:*:*:pw\n", "*", "1", "d", "u").as_deref(), Some("pw"));
    }

    #[test]
    fn a_file_others_can_read_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(lookup(&path, "h", 5432, "d", "u").is_none());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, "h", 5432, "d", "u").unwrap().expose(), "secret");
        assert!(lookup(dir.path(), "h", 5432, "d", "u").is_none(), "a directory is not a password file");
    }
}
