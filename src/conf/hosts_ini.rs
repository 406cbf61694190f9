//! `conf/hosts.ini`: the Ansible inventory of the `KubeSphere` 2.x installer (and kubespray's layouts).
//!
//! Our own reader rather than rust-ini: inventory host lines are `name key=value ...` with shell-style
//! quoting and `#` comments, sections repeat names across `:children` / `:vars` suffixes, and the
//! writer must reproduce comments, unknown sections and line endings; rust-ini models none of that.
//!
//! The writer emits the `KubeSphere` 2.x layout with the field order the legacy `install.sh` depends
//! on (it takes a non-root line's fifth field as the sudo password). Whatever kswizard does not
//! model (comments, unknown groups, `:vars` sections, unknown keys) is kept and written back, and
//! writing what it read from its own output gives the same bytes.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::error::ConfError;
use super::limits::{self, MAX_HOST_KEYS};
use crate::model::{Auth, Cluster, Host, IniLayout, Roles, Secret, UndefinedRef};

const MASTER_GROUPS: &[&str] = &["kube-master", "kube_control_plane"];
const WORKER_GROUPS: &[&str] = &["kube-node", "kube_node"];
const ETCD_GROUP: &str = "etcd";
const CLUSTER_GROUPS: &[&str] = &["k8s-cluster", "k8s_cluster"];

#[derive(Debug)]
struct Section {
    group: String,
    kind: SectionKind,
    header_line: usize,
    /// The header line and every line after it, as written, for sections kept verbatim.
    raw: Vec<String>,
    comments: Vec<String>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SectionKind {
    Hosts,
    Children,
    Vars,
}

#[derive(Debug)]
struct Entry {
    name: String,
    vars: Vec<(String, String)>,
    comment: Option<String>,
    line: usize,
}

fn is_known_group(g: &str) -> bool {
    g == "all" || g == ETCD_GROUP || MASTER_GROUPS.contains(&g) || WORKER_GROUPS.contains(&g)
}

/// Read a hosts.ini held in memory. `file` names it in errors.
pub fn parse(bytes: &[u8], file: &Path) -> Result<Cluster, ConfError> {
    limits::check_size(bytes.len(), file)?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfError::new(file, line, "not UTF-8 text: save the file as UTF-8")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let crlf = text.contains("\r\n");

    let mut preamble: Vec<String> = Vec::new();
    // Host lines before any header are Ansible's "ungrouped" hosts: definitions like [all]'s.
    let mut sections: Vec<Section> = vec![Section {
        group: "all".into(),
        kind: SectionKind::Hosts,
        header_line: 0,
        raw: Vec::new(),
        comments: Vec::new(),
        entries: Vec::new(),
    }];
    let mut in_header = false;

    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    for (idx, raw_line) in lines.iter().enumerate() {
        let lineno = idx + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_header = true;
            let (group, kind) = parse_header(trimmed, file, lineno)?;
            sections.push(Section {
                group,
                kind,
                header_line: lineno,
                raw: vec![line.to_string()],
                comments: Vec::new(),
                entries: Vec::new(),
            });
            continue;
        }
        let current = sections.last_mut().expect("always one section");
        if in_header {
            current.raw.push(line.to_string());
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            if !in_header {
                preamble.push(line.to_string());
            } else if !trimmed.is_empty() {
                current.comments.push(line.trim_end().to_string());
            }
            continue;
        }
        let (tokens, comment) = tokenize(line, file, lineno)?;
        if tokens.len() > MAX_HOST_KEYS + 1 {
            return Err(ConfError::new(
                file,
                lineno,
                format!(
                    "host '{}' has {} keys on this line; kswizard reads up to {MAX_HOST_KEYS} on a host line",
                    tokens[0],
                    tokens.len() - 1
                ),
            ));
        }
        let mut tokens = tokens.into_iter();
        let name = tokens.next().unwrap_or_default();
        match current.kind {
            SectionKind::Vars => {}
            SectionKind::Children => {
                if let Some(extra) = tokens.next() {
                    return Err(ConfError::new(
                        file,
                        lineno,
                        format!(
                            "expected one group name per line in [{}:children], found '{extra}' after '{name}'",
                            current.group
                        ),
                    ));
                }
                current.entries.push(Entry {
                    name,
                    vars: Vec::new(),
                    comment,
                    line: lineno,
                });
            }
            SectionKind::Hosts => {
                if name.contains('=') {
                    return Err(ConfError::new(
                        file,
                        lineno,
                        format!(
                            "expected a host name first, found '{name}': a host line is 'name key=value ...'"
                        ),
                    ));
                }
                let mut vars = Vec::new();
                for tok in tokens {
                    match tok.split_once('=') {
                        Some((k, v)) if !k.is_empty() => vars.push((k.to_string(), v.to_string())),
                        _ => {
                            return Err(ConfError::new(
                                file,
                                lineno,
                                format!(
                                    "expected key=value after host '{name}', found '{tok}' (quote values that contain spaces)"
                                ),
                            ));
                        }
                    }
                }
                current.entries.push(Entry {
                    name,
                    vars,
                    comment,
                    line: lineno,
                });
            }
        }
    }
    build(sections, preamble, crlf, file)
}

fn parse_header(
    trimmed: &str,
    file: &Path,
    lineno: usize,
) -> Result<(String, SectionKind), ConfError> {
    let close = trimmed.find(']').ok_or_else(|| {
        ConfError::new(
            file,
            lineno,
            format!("expected ']' to close the section header '{trimmed}'"),
        )
    })?;
    let rest = trimmed[close + 1..].trim();
    if !(rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')) {
        return Err(ConfError::new(
            file,
            lineno,
            format!("expected nothing after the section header, found '{rest}'"),
        ));
    }
    let inner = trimmed[1..close].trim();
    let (group, kind) = match inner.rsplit_once(':') {
        Some((g, "children")) => (g, SectionKind::Children),
        Some((g, "vars")) => (g, SectionKind::Vars),
        Some((_, other)) => {
            return Err(ConfError::new(
                file,
                lineno,
                format!(
                    "expected [group], [group:children] or [group:vars], found suffix ':{other}'"
                ),
            ));
        }
        None => (inner, SectionKind::Hosts),
    };
    if group.is_empty() || group.contains(char::is_whitespace) {
        return Err(ConfError::new(
            file,
            lineno,
            format!("expected a group name without spaces in '{trimmed}'"),
        ));
    }
    Ok((group.to_string(), kind))
}

/// Split a line as Ansible does (shell words, `#` outside quotes starts a comment).
fn tokenize(
    line: &str,
    file: &Path,
    lineno: usize,
) -> Result<(Vec<String>, Option<String>), ConfError> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => {
                if in_token {
                    tokens.push(std::mem::take(&mut cur));
                }
                return Ok((tokens, Some(line[i..].trim_end().to_string())));
            }
            c if c.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '"' | '\'' => {
                in_token = true;
                let quote = c;
                loop {
                    match chars.next() {
                        None => {
                            return Err(ConfError::new(
                                file,
                                lineno,
                                format!("expected a closing {quote} before the end of the line"),
                            ));
                        }
                        Some((_, q)) if q == quote => break,
                        // As shlex reads it: in double quotes a backslash escapes only `"` and
                        // `\`; before anything else it is kept (`"p\w"` is the password `p\w`).
                        Some((_, '\\')) if quote == '"' => match chars.next() {
                            Some((_, e @ ('"' | '\\'))) => cur.push(e),
                            Some((_, e)) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => {
                                return Err(ConfError::new(
                                    file,
                                    lineno,
                                    "expected a character after '\\' before the end of the line",
                                ));
                            }
                        },
                        Some((_, ch)) => cur.push(ch),
                    }
                }
            }
            '\\' => {
                in_token = true;
                if let Some((_, e)) = chars.next() {
                    cur.push(e);
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        tokens.push(cur);
    }
    Ok((tokens, None))
}

fn build(
    sections: Vec<Section>,
    preamble: Vec<String>,
    crlf: bool,
    file: &Path,
) -> Result<Cluster, ConfError> {
    let mut hosts: Vec<Host> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut layout = IniLayout {
        preamble: trim_trailing_blank(preamble),
        crlf,
        ..IniLayout::default()
    };

    // Each group's own host lines and its child groups, looked up by name from here on.
    let mut direct: HashMap<&str, Vec<&Entry>> = HashMap::new();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in &sections {
        match s.kind {
            SectionKind::Hosts => direct.entry(&s.group).or_default().extend(s.entries.iter()),
            SectionKind::Children => children
                .entry(&s.group)
                .or_default()
                .extend(s.entries.iter().map(|e| e.name.as_str())),
            SectionKind::Vars => {}
        }
    }
    // Groups of the user's own that feed a role group through `:children` (`[kube-master:children]`
    // naming `[masters]`): as in Ansible, their lines with variables define hosts too.
    let mut role_feeders: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = MASTER_GROUPS
        .iter()
        .chain(WORKER_GROUPS)
        .chain(&[ETCD_GROUP])
        .copied()
        .collect();
    while let Some(g) = stack.pop() {
        for &child in children.get(g).into_iter().flatten() {
            if role_feeders.insert(child) {
                stack.push(child);
            }
        }
    }

    // Definitions first: [all] / ungrouped lines each define a host (a repeated name is a duplicate
    // for validation to report); a line with variables in a role group defines the host too, or adds
    // to the definition made earlier.
    for s in sections.iter().filter(|s| {
        s.kind == SectionKind::Hosts
            && (is_known_group(&s.group) || role_feeders.contains(s.group.as_str()))
    }) {
        for e in &s.entries {
            let in_all = s.group == "all";
            if !in_all && e.vars.is_empty() {
                continue;
            }
            match index.get(&e.name) {
                Some(&i) if !in_all => apply_vars(&mut hosts[i], &e.vars, file, e.line)?,
                _ => {
                    let mut h = Host {
                        name: e.name.clone(),
                        address: None,
                        ip: None,
                        port: None,
                        user: None,
                        auth: Auth::Key { file: None },
                        become_pass: None,
                        roles: Roles::default(),
                        extra: Vec::new(),
                        comment: e.comment.clone(),
                    };
                    apply_vars(&mut h, &e.vars, file, e.line)?;
                    index.entry(e.name.clone()).or_insert(hosts.len());
                    hosts.push(h);
                }
            }
        }
    }

    for h in &mut hosts {
        merge_repeated_keys(&mut h.extra);
    }

    // Membership: a group's own host lines plus, through `:children`, its child groups' members.
    let defined_any = !hosts.is_empty();
    let mut undefined = Vec::new();
    let mut members =
        |groups: &[&str], hosts: &mut Vec<Host>, index: &mut HashMap<String, usize>| {
            let mut seen = HashSet::new();
            let mut stack: Vec<&str> = groups.to_vec();
            let mut out = HashSet::new();
            while let Some(g) = stack.pop() {
                if !seen.insert(g) {
                    continue;
                }
                for e in direct.get(g).into_iter().flatten() {
                    if !index.contains_key(&e.name) {
                        if defined_any {
                            undefined.push(UndefinedRef {
                                group: g.to_string(),
                                name: e.name.clone(),
                                line: e.line,
                            });
                            continue;
                        }
                        // An inventory of bare names only: each name is a host, as Ansible reads it.
                        index.insert(e.name.clone(), hosts.len());
                        let mut h = Host::new(e.name.clone(), String::new());
                        h.address = None;
                        h.ip = None;
                        hosts.push(h);
                    }
                    out.insert(e.name.clone());
                }
                stack.extend(children.get(g).into_iter().flatten().copied());
            }
            out
        };
    let masters = members(MASTER_GROUPS, &mut hosts, &mut index);
    let workers = members(WORKER_GROUPS, &mut hosts, &mut index);
    let etcd = members(&[ETCD_GROUP], &mut hosts, &mut index);
    undefined.sort_by_key(|u| u.line);
    undefined.dedup();
    for h in &mut hosts {
        h.roles = Roles {
            master: masters.contains(&h.name),
            worker: workers.contains(&h.name),
            etcd: etcd.contains(&h.name),
        };
    }

    let mut cluster_children = HashSet::new();
    for s in &sections {
        let known = s.header_line > 0
            && match s.kind {
                SectionKind::Hosts => is_known_group(&s.group),
                SectionKind::Children => {
                    CLUSTER_GROUPS.contains(&s.group.as_str())
                        || (is_known_group(&s.group) && s.group != "all")
                }
                SectionKind::Vars => false,
            };
        if s.header_line == 0 || known {
            let key = canonical_group(&s.group, s.kind);
            if let Some(key) = key {
                let slot = layout.section_comments.iter_mut().find(|(k, _)| *k == key);
                match slot {
                    Some((_, v)) => v.extend(s.comments.iter().cloned()),
                    None if !s.comments.is_empty() => {
                        layout.section_comments.push((key, s.comments.clone()));
                    }
                    None => {}
                }
            }
            if s.kind == SectionKind::Children && CLUSTER_GROUPS.contains(&s.group.as_str()) {
                for e in &s.entries {
                    let n = e.name.as_str();
                    if !MASTER_GROUPS.contains(&n)
                        && !WORKER_GROUPS.contains(&n)
                        && cluster_children.insert(n)
                    {
                        layout.cluster_children.push(n.to_string());
                    }
                }
            }
        } else {
            layout
                .kept_sections
                .push(trim_trailing_blank(s.raw.clone()));
        }
    }

    Ok(Cluster {
        hosts,
        undefined,
        ini: layout,
        ..Cluster::default()
    })
}

/// The name a section has in the layout kswizard writes.
fn canonical_group(group: &str, kind: SectionKind) -> Option<String> {
    let g = if MASTER_GROUPS.contains(&group) {
        "kube-master"
    } else if WORKER_GROUPS.contains(&group) {
        "kube-node"
    } else if CLUSTER_GROUPS.contains(&group) {
        "k8s-cluster"
    } else {
        group
    };
    match kind {
        SectionKind::Children if g == "k8s-cluster" => Some("k8s-cluster:children".to_string()),
        SectionKind::Hosts | SectionKind::Children => Some(g.to_string()),
        SectionKind::Vars => None,
    }
}

fn trim_trailing_blank(mut v: Vec<String>) -> Vec<String> {
    while v.last().is_some_and(|l| l.trim().is_empty()) {
        v.pop();
    }
    v
}

fn apply_vars(
    h: &mut Host,
    vars: &[(String, String)],
    file: &Path,
    line: usize,
) -> Result<(), ConfError> {
    let mut ssh_pass = None;
    let mut key_file = None;
    let mut local = matches!(h.auth, Auth::Local);
    for (k, v) in vars {
        match k.as_str() {
            "ansible_host" | "ansible_ssh_host" => h.address = Some(v.clone()),
            "ip" => h.ip = Some(v.clone()),
            "ansible_port" | "ansible_ssh_port" => {
                let port = v.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    ConfError::new(
                        file,
                        line,
                        format!(
                            "{k} of host '{}': expected a port number 1..65535, found '{v}'",
                            h.name
                        ),
                    )
                })?;
                h.port = Some(port);
            }
            "ansible_user" | "ansible_ssh_user" => h.user = Some(v.clone()),
            "ansible_ssh_pass" | "ansible_password" => ssh_pass = Some(Secret::new(v.clone())),
            "ansible_become_pass" | "ansible_become_password" | "ansible_sudo_pass" => {
                h.become_pass = Some(Secret::new(v.clone()));
            }
            "ansible_ssh_private_key_file" => key_file = Some(v.clone()),
            "ansible_connection" if v == "local" => local = true,
            // Repeated keys are merged once every line is read (`merge_repeated_keys`).
            _ => h.extra.push((k.clone(), v.clone())),
        }
    }
    h.auth = if local {
        Auth::Local
    } else if let Some(p) = ssh_pass {
        Auth::Password(p)
    } else if let Some(f) = key_file {
        Auth::Key { file: Some(f) }
    } else if let (false, Some(p)) = (h.is_root(), &h.become_pass) {
        // The legacy installer logs in with a non-root line's become password (install.sh copies
        // it into ansible_ssh_pass), so such a line means password login.
        if matches!(h.auth, Auth::Key { file: None }) {
            Auth::Password(p.clone())
        } else {
            h.auth.clone()
        }
    } else {
        h.auth.clone()
    };
    Ok(())
}

/// A key given again (on the line or on a group line for the same host) keeps its first place
/// and takes the last value, as in Ansible; one pass with a map, so long lines stay linear.
fn merge_repeated_keys(extra: &mut Vec<(String, String)>) {
    let mut at: HashMap<String, usize> = HashMap::with_capacity(extra.len());
    let mut merged: Vec<(String, String)> = Vec::with_capacity(extra.len());
    for (k, v) in extra.drain(..) {
        if let Some(&i) = at.get(&k) {
            merged[i].1 = v;
        } else {
            at.insert(k.clone(), merged.len());
            merged.push((k, v));
        }
    }
    *extra = merged;
}

/// Read `path`. A missing file is an error here; `conf::load` decides whether that means "new".
pub fn read(path: &Path) -> Result<Cluster, ConfError> {
    let f = std::fs::File::open(path).map_err(|e| ConfError::io(path, &e))?;
    parse(&limits::read_all(f, path)?, path)
}

/// `v` as one shell word that reads back as `v`. Names and keys go through it too: a file may
/// quote them (`"my host"`), and a leading `[` would read as a section header.
fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && !v.starts_with('[')
        && !v
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '#' | '\\' | ';'));
    if plain {
        return v.to_string();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// The fields of a host line, in the order the legacy installer expects:
/// `ansible_host= ip= ansible_user= ansible_become_pass=`, with `ansible_connection=local` in the
/// first slot for the taskbox (as in the installer's sample).
fn host_fields(h: &Host) -> Vec<String> {
    let kv = |k: &str, v: &str| format!("{}={}", quote(k), quote(v));
    let mut f: Vec<String> = [
        h.address.as_ref().map(|a| kv("ansible_host", a)),
        h.ip.as_ref().map(|ip| kv("ip", ip)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let local_late = h.is_local() && f.len() == 2;
    if h.is_local() && !local_late {
        f.insert(0, "ansible_connection=local".to_string());
    }
    let mut extra = h.extra.iter().map(|(k, v)| kv(k, v));
    // install.sh takes a non-root line's fifth field as the sudo password. When a slot before
    // ansible_user is empty, keys it does not read fill it (in their order), so the password
    // still lands fifth, as it did in files users wrote that way.
    if !h.is_root() && h.become_pass.is_some() {
        while f.len() < 2 {
            match extra.next() {
                Some(e) => f.push(e),
                None => break,
            }
        }
    }
    if let Some(u) = &h.user {
        f.push(kv("ansible_user", u));
    }
    if let Some(b) = &h.become_pass {
        f.push(kv("ansible_become_pass", b.expose()));
    }
    if local_late {
        f.push("ansible_connection=local".to_string());
    }
    match &h.auth {
        // A non-root password equal to the become password is implied by it (see apply_vars).
        Auth::Password(p) if !h.is_root() && h.become_pass.as_ref() == Some(p) => {}
        Auth::Password(p) => f.push(kv("ansible_ssh_pass", p.expose())),
        Auth::Key { file: Some(k) } => f.push(kv("ansible_ssh_private_key_file", k)),
        Auth::Key { file: None } | Auth::Local => {}
    }
    if let Some(p) = h.port {
        f.push(format!("ansible_port={p}"));
    }
    f.extend(extra);
    f
}

/// The one host line of `[all]`, padded so the fields line up.
pub fn host_line(h: &Host, name_width: usize) -> String {
    let mut line = format!("{:<width$}", quote(&h.name), width = name_width);
    for field in host_fields(h) {
        line.push_str("  ");
        line.push_str(&field);
    }
    if let Some(c) = &h.comment {
        line.push_str("  ");
        line.push_str(c);
    }
    line.trim_end().to_string()
}

/// The file kswizard writes for `cluster`.
pub fn render(cluster: &Cluster) -> String {
    let layout = &cluster.ini;
    let mut out: Vec<String> = Vec::new();
    if !layout.preamble.is_empty() {
        out.extend(layout.preamble.iter().cloned());
        out.push(String::new());
    }
    let comments = |key: &str| -> Vec<String> {
        layout
            .section_comments
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    };
    let width = cluster
        .hosts
        .iter()
        .map(|h| quote(&h.name).chars().count())
        .max()
        .unwrap_or(0);
    out.push("[all]".into());
    out.extend(comments("all"));
    out.extend(cluster.hosts.iter().map(|h| host_line(h, width)));
    let group = |title: &str, pick: fn(&Roles) -> bool, out: &mut Vec<String>| {
        out.push(String::new());
        out.push(format!("[{title}]"));
        out.extend(comments(title));
        let mut seen = HashSet::new();
        for h in cluster.hosts.iter().filter(|h| pick(&h.roles)) {
            if seen.insert(&h.name) {
                out.push(quote(&h.name));
            }
        }
    };
    group("kube-master", |r| r.master, &mut out);
    group("kube-node", |r| r.worker, &mut out);
    group("etcd", |r| r.etcd, &mut out);
    out.push(String::new());
    out.push("[k8s-cluster:children]".into());
    out.extend(comments("k8s-cluster:children"));
    out.push("kube-node".into());
    out.push("kube-master".into());
    out.extend(layout.cluster_children.iter().cloned());
    for s in &layout.kept_sections {
        out.push(String::new());
        out.extend(s.iter().cloned());
    }
    let nl = if layout.crlf { "\r\n" } else { "\n" };
    let mut text = out.join(nl);
    text.push_str(nl);
    text
}

#[cfg(test)]
mod tests;
