//! `kswizard ssh-copy-id`: log in to a password host with its password once, authorize the
//! taskbox's public key for that user, and prove that key login works, so that hosts.ini no longer
//! needs the password.

use std::path::{Path, PathBuf};

use super::runner::sh_quote;
use super::transport::{self, ConnectError};
use crate::model::{Auth, Host};

/// Why a host could not be switched to key login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyIdError {
    /// The key files: what is wrong with them, and what to do.
    Key(String),
    /// Logging in with the password failed.
    Connect(ConnectError),
    /// On the host: adding the key, or logging in with it.
    Host { host: String, why: String },
}

impl std::fmt::Display for CopyIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyIdError::Key(why) => write!(f, "{why}"),
            CopyIdError::Connect(e) => write!(f, "{e}"),
            CopyIdError::Host { host, why } => write!(f, "{host}: {why}"),
        }
    }
}

impl std::error::Error for CopyIdError {}

/// A public key to install, and the private key that logs in with it.
#[derive(Debug, Clone)]
pub struct Key {
    pub public: PathBuf,
    pub private: PathBuf,
    /// The key's line, as it goes into `authorized_keys`.
    line: String,
    /// Type and base64 blob: what tells this key apart from others, whatever its comment or
    /// options.
    kind: String,
    blob: String,
}

impl Key {
    /// The key in `public` (`….pub`); the private key is the same path without `.pub`.
    pub fn read(public: &Path) -> Result<Key, CopyIdError> {
        let private = private_of(public)?;
        let text = std::fs::read_to_string(public)
            .map_err(|e| CopyIdError::Key(format!("{}: {e}", public.display())))?;
        let line = text.lines().next().unwrap_or("").trim().to_string();
        let mut fields = line.split_whitespace();
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            return Err(CopyIdError::Key(format!(
                "{}: expected an OpenSSH public key line (`ssh-ed25519 AAAA… comment`)",
                public.display()
            )));
        };
        let blob_ok = blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if !kind.starts_with("ssh-") && !kind.starts_with("ecdsa-") && !kind.starts_with("sk-")
            || !blob_ok
        {
            return Err(CopyIdError::Key(format!(
                "{}: expected an OpenSSH public key line (`ssh-ed25519 AAAA… comment`), found `{kind} …`",
                public.display()
            )));
        }
        if !private.exists() {
            return Err(CopyIdError::Key(format!(
                "{}: the private key of {} is missing; key login needs it next to the public key",
                private.display(),
                public.display()
            )));
        }
        Ok(Key {
            public: public.to_path_buf(),
            private,
            kind: kind.to_string(),
            blob: blob.to_string(),
            line,
        })
    }

    /// Make a new ed25519 key pair without a passphrase at `public` (and its private key).
    pub fn generate(public: &Path) -> Result<Key, CopyIdError> {
        let private = private_of(public)?;
        if private.exists() {
            return Err(CopyIdError::Key(format!(
                "{} exists but {} does not: write it with `ssh-keygen -y -f {0} > {1}`",
                private.display(),
                public.display()
            )));
        }
        if let Some(dir) = private.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CopyIdError::Key(format!("{}: {e}", dir.display())))?;
        }
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&private)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| CopyIdError::Key(format!("cannot run ssh-keygen: {e}")))?;
        if !out.status.success() {
            return Err(CopyIdError::Key(format!(
                "ssh-keygen could not write {}: {}",
                private.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Key::read(public)
    }
}

fn private_of(public: &Path) -> Result<PathBuf, CopyIdError> {
    public
        .to_str()
        .and_then(|p| p.strip_suffix(".pub"))
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            CopyIdError::Key(format!(
                "{}: --key names the public key file, whose name ends in .pub",
                public.display()
            ))
        })
}

/// The shell that appends `key` to the login user's `authorized_keys` once: the directory 0700, the
/// file 0600, no second line for a key already there (whatever its comment).
fn append_script(key: &Key) -> String {
    format!(
        "set -e\n\
         umask 077\n\
         mkdir -p \"$HOME/.ssh\"\n\
         chmod 700 \"$HOME/.ssh\"\n\
         f=\"$HOME/.ssh/authorized_keys\"\n\
         touch \"$f\"\n\
         chmod 600 \"$f\"\n\
         if ! awk -v t={kind} -v b={blob} '{{for (i = 1; i < NF; i++) if ($i == t && $(i + 1) == b) f = 1}} END {{exit !f}}' \"$f\"; then\n\
         \x20 # A last line without its newline must not swallow the key.\n\
         \x20 if [ -s \"$f\" ] && [ -n \"$(tail -c 1 \"$f\")\" ]; then echo >> \"$f\"; fi\n\
         \x20 printf '%s\\n' {line} >> \"$f\"\n\
         fi\n",
        kind = sh_quote(&key.kind),
        blob = sh_quote(&key.blob),
        line = sh_quote(&key.line),
    )
}

/// Authorize `key` on `host` (a password host) over a password login, then log in with the key.
/// Returns the host as hosts.ini should now have it: key login, no SSH password, the sudo
/// password (if any) kept. `n` numbers this host's control sockets in `ctl_dir` (it uses `n` and
/// `n + 1`).
pub async fn copy_id(
    host: &Host,
    key: &Key,
    known_hosts: &Path,
    ctl_dir: &Path,
    n: usize,
) -> Result<Host, CopyIdError> {
    let user = host.user.as_deref().unwrap_or("root");
    let on_host = |why: String| CopyIdError::Host {
        host: host.name.clone(),
        why,
    };
    let conn = transport::connect(host, known_hosts, ctl_dir, n)
        .await
        .map_err(CopyIdError::Connect)?;
    let added = conn.run(&append_script(key), false).await;
    let redacted = |t: &str| conn.redact(t.trim());
    let added = match added {
        Ok((0, _, _)) => Ok(()),
        Ok((code, _, err)) => Err(on_host(format!(
            "could not add the key to {user}'s ~/.ssh/authorized_keys (exit {code}): {}",
            redacted(&err)
        ))),
        Err(l) => Err(on_host(redacted(&l.0))),
    };
    conn.close().await;
    added?;

    let mut with_key = host.clone();
    with_key.auth = Auth::Key {
        // Named even for the default key: a non-root line with ansible_become_pass and no key
        // file reads as password login (the legacy installer's convention).
        file: Some(key.private.display().to_string()),
    };
    let conn = transport::connect(&with_key, known_hosts, ctl_dir, n + 1)
        .await
        .map_err(|e| {
            on_host(format!(
                "the key is in {user}'s ~/.ssh/authorized_keys, but key login fails ({e}); does sshd there read that file (AuthorizedKeysFile, PubkeyAuthentication in sshd_config)?"
            ))
        })?;
    let works = conn.run("true\n", false).await;
    conn.close().await;
    match works {
        Ok((0, _, _)) => Ok(with_key),
        Ok((code, _, err)) => Err(on_host(format!(
            "key login as {user} opens but a command fails there (exit {code}): {}",
            err.trim()
        ))),
        Err(l) => Err(on_host(format!("key login: {l}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair(dir: &Path, line: &str) -> PathBuf {
        let public = dir.join("k.pub");
        std::fs::write(&public, format!("{line}\n")).unwrap();
        std::fs::write(dir.join("k"), "private").unwrap();
        public
    }

    #[test]
    fn reads_a_public_key_and_finds_its_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let k = Key::read(&key_pair(dir.path(), "ssh-ed25519 AAAAC3Nz+/= me@box")).unwrap();
        assert_eq!(k.private, dir.path().join("k"));
        assert_eq!(
            (k.kind.as_str(), k.blob.as_str()),
            ("ssh-ed25519", "AAAAC3Nz+/=")
        );
        assert_eq!(k.line, "ssh-ed25519 AAAAC3Nz+/= me@box");
    }

    #[test]
    fn refuses_what_is_not_a_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let e = Key::read(&key_pair(dir.path(), "-----BEGIN OPENSSH PRIVATE KEY-----"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected an OpenSSH public key line"), "{e}");
        let e = Key::read(&dir.path().join("k")).unwrap_err().to_string();
        assert!(
            e.ends_with("--key names the public key file, whose name ends in .pub"),
            "{e}"
        );
        let public = key_pair(dir.path(), "ssh-ed25519 AAAAkey");
        std::fs::remove_file(dir.path().join("k")).unwrap();
        let e = Key::read(&public).unwrap_err().to_string();
        assert!(e.contains("the private key of"), "{e}");
    }

    /// The script, run by a local shell against a temporary HOME.
    fn run_script(key: &Key, home: &Path) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(append_script(key))
            .env("HOME", home)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn the_key_is_appended_once_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = Key::read(&key_pair(dir.path(), "ssh-ed25519 AAAAkey it's me")).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let file = home.join(".ssh/authorized_keys");
        // Another key, its line not ended.
        std::fs::write(&file, "ssh-rsa AAAAother").unwrap();
        run_script(&key, &home);
        run_script(&key, &home);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "ssh-rsa AAAAother\nssh-ed25519 AAAAkey it's me\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&home.join(".ssh")), 0o700);
        assert_eq!(mode(&file), 0o600);
        // The same key with another comment is the same key.
        let renamed =
            Key::read(&key_pair(dir.path(), "ssh-ed25519 AAAAkey other-comment")).unwrap();
        run_script(&renamed, &home);
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2);
        // A key whose blob merely starts like this one is another key.
        let longer = Key::read(&key_pair(dir.path(), "ssh-ed25519 AAAAkeyMore x")).unwrap();
        run_script(&longer, &home);
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 3);
    }

    #[test]
    fn a_new_key_pair_is_made_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("ssh/id_ed25519.pub");
        let k = Key::generate(&public).unwrap();
        assert!(k.line.starts_with("ssh-ed25519 "), "{}", k.line);
        assert!(k.private.exists());
        // A private key without its public half is not overwritten.
        std::fs::remove_file(&public).unwrap();
        let e = Key::generate(&public).unwrap_err().to_string();
        assert!(e.contains("ssh-keygen -y -f"), "{e}");
    }
}
