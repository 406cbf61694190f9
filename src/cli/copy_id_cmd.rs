//! `kswizard ssh-copy-id`: replace password login with key login on the hosts that use a password
//! (the `plaintext-password` warning's fix).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::Outcome;
use super::install_cmd::ask;
use crate::conf;
use crate::engine::copy_id::{self, Key};
use crate::engine::paths::state_dir;
use crate::engine::transport;
use crate::model::{Auth, Cluster, Host};

pub struct CopyIdArgs<'a> {
    pub conf: &'a Path,
    pub key: Option<&'a Path>,
    pub yes: bool,
    pub hosts: &'a [String],
}

fn bad(message: String) -> Outcome {
    eprintln!("kswizard: {message}");
    Outcome::BadInput
}

/// The hosts named on the command line, else every host that logs in with a password.
fn chosen<'c>(cluster: &'c Cluster, names: &[String]) -> Result<Vec<&'c Host>, String> {
    if names.is_empty() {
        return Ok(cluster
            .hosts
            .iter()
            .filter(|h| matches!(h.auth, Auth::Password(_)))
            .collect());
    }
    names
        .iter()
        .map(|n| {
            let h = cluster
                .hosts
                .iter()
                .find(|h| &h.name == n)
                .ok_or_else(|| format!("{n}: no such host in hosts.ini"))?;
            match h.auth {
                Auth::Password(_) => Ok(h),
                Auth::Local => Err(format!(
                    "{n}: is the taskbox itself (ansible_connection=local); it needs no key"
                )),
                Auth::Key { .. } => Err(format!(
                    "{n}: already logs in with a key (no ansible_ssh_pass in hosts.ini)"
                )),
            }
        })
        .collect()
}

/// The key to install: `--key`, else ~/.`ssh/id_ed25519.pub`, made with ssh-keygen if missing and
/// the operator agrees.
fn key(flag: Option<&Path>, yes: bool) -> Result<Key, String> {
    let public = match flag {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh/id_ed25519.pub"))
            .ok_or("HOME is not set: pass --key with the public key to install")?,
    };
    if public.exists() {
        return Key::read(&public).map_err(|e| e.to_string());
    }
    let q = format!(
        "{} does not exist. Create a key pair without a passphrase (ssh-keygen -t ed25519 -N '')?",
        public.display()
    );
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(format!("{q} Pass --yes to create it without a terminal."));
        }
        if !ask(&q, false) {
            return Err(format!(
                "no key to install: create {} or pass --key",
                public.display()
            ));
        }
    }
    let k = Key::generate(&public).map_err(|e| e.to_string())?;
    println!("created {} and {}", k.private.display(), k.public.display());
    Ok(k)
}

pub fn run(a: CopyIdArgs) -> Outcome {
    let (mut cluster, source) = match conf::load(a.conf) {
        Ok(c) => c,
        Err(e) => return bad(e.to_string()),
    };
    let hosts: Vec<Host> = match chosen(&cluster, a.hosts) {
        Ok(h) => h.into_iter().cloned().collect(),
        Err(e) => return bad(e),
    };
    if hosts.is_empty() {
        println!("no host in hosts.ini logs in with a password: nothing to do");
        return Outcome::Ok;
    }
    let key = match key(a.key, a.yes) {
        Ok(k) => k,
        Err(e) => return bad(e),
    };
    let state = state_dir(a.conf, None);
    let ctl = match transport::control_dir_in(&state) {
        Ok(c) => c,
        Err(e) => return bad(format!("{}: {e}", state.join("ctl").display())),
    };
    let known_hosts = state.join("known_hosts");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return bad(format!("cannot start the runtime: {e}")),
    };
    let results: Vec<Result<Host, copy_id::CopyIdError>> = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, h) in hosts.iter().enumerate() {
            let (h, key, kh, dir) = (
                h.clone(),
                key.clone(),
                known_hosts.clone(),
                ctl.path().to_path_buf(),
            );
            tasks.spawn(async move { (i, copy_id::copy_id(&h, &key, &kh, &dir, 2 * i).await) });
        }
        let mut results: Vec<_> = tasks.join_all().await;
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    });
    drop(ctl);

    let mut failed = 0;
    for (host, result) in hosts.iter().zip(results) {
        let user = host.user.as_deref().unwrap_or("root");
        match result {
            Ok(with_key) => {
                println!(
                    "{}: key {} authorized for {user}; key login works; hosts.ini: key login with ansible_ssh_private_key_file={}, no SSH password",
                    host.name,
                    key.public.display(),
                    key.private.display()
                );
                if with_key.become_pass.is_some() && !with_key.is_root() {
                    println!(
                        "{}: ansible_become_pass kept: sudo still asks {user} for it (plaintext-password stays until sudo needs no password there)",
                        host.name
                    );
                }
                if let Some(slot) = cluster.hosts.iter_mut().find(|h| h.name == host.name) {
                    *slot = with_key;
                }
            }
            Err(e) => {
                failed += 1;
                println!("{}: FAILED, hosts.ini unchanged for it: {e}", host.name);
            }
        }
    }
    if failed < hosts.len() {
        if let Err(e) = conf::save(&cluster, &source, a.conf) {
            return bad(format!(
                "{e}; the keys are installed, hosts.ini is not updated"
            ));
        }
        println!(
            "{} written; the previous file, with the passwords, is kept as hosts.ini.bak (0600): delete it once you no longer need it",
            a.conf.join(conf::HOSTS_INI).display()
        );
    }
    if failed > 0 {
        Outcome::Failed
    } else {
        Outcome::Ok
    }
}
