//! `conf/common.yaml` (or the older `conf/vars.yml`): kswizard owns only the apiserver load
//! balancer settings in it, and reads the pod network (`kube_pods_subnet`). Reading uses a YAML parser; writing is text surgery on those lines
//! alone, so every other byte, comment and key order stays, and the result is re-parsed to check it.

use std::path::Path;

use serde_yaml::Value;

use super::error::ConfError;
use crate::model::{DEFAULT_LB_DOMAIN, DEFAULT_LB_PORT, LoadBalancer};

const LB_KEY: &str = "loadbalancer_apiserver";
const DOMAIN_KEY: &str = "apiserver_loadbalancer_domain_name";
const PODS_KEY: &str = "kube_pods_subnet";

/// The load-balancer values a common.yaml sets, and its pod network; `None` where it does not set
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbValues {
    pub address: Option<String>,
    pub port: Option<i64>,
    pub domain: Option<String>,
    pub pods_subnet: Option<String>,
}

/// Whether `s` is an IPv4 network in CIDR notation (`10.233.64.0/18`), as Calico's pool and
/// kubeadm's podSubnet take it.
pub fn is_ipv4_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, len)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok()
            && len.len() <= 2
            && len.parse::<u8>().is_ok_and(|n| n <= 32)
    })
}

pub fn parse(text: &str, file: &Path) -> Result<LbValues, ConfError> {
    super::limits::check_yaml(text, file)?;
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let msg = e.to_string();
        // serde_yaml appends " at line L column C"; the line is already in the error's position.
        let msg = msg.split(" at line ").next().unwrap_or(&msg);
        ConfError::new(file, line, format!("expected valid YAML: {msg}"))
    })?;
    let map = match &doc {
        Value::Mapping(m) => m,
        Value::Null => return Ok(LbValues::default()),
        _ => {
            return Err(ConfError::new(
                file,
                1,
                "expected a mapping of settings (key: value lines) at the top level",
            ));
        }
    };
    let line_of = |key: &str| {
        text.lines()
            .position(|l| active_key(l, key))
            .map_or(0, |i| i + 1)
    };
    let mut out = LbValues::default();
    match map.get(DOMAIN_KEY) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.domain = Some(s.clone()),
        Some(_) => {
            return Err(ConfError::new(
                file,
                line_of(DOMAIN_KEY),
                format!("{DOMAIN_KEY}: expected a domain name such as \"lb.kubesphere.local\""),
            ));
        }
    }
    match map.get(PODS_KEY) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if is_ipv4_cidr(s.trim()) => {
            out.pods_subnet = Some(s.trim().to_string());
        }
        Some(other) => {
            let seen = match other {
                Value::String(s) => format!(", found '{s}'"),
                _ => String::new(),
            };
            return Err(ConfError::new(
                file,
                line_of(PODS_KEY),
                format!(
                    "{PODS_KEY}: expected an IPv4 network such as 10.233.64.0/18{seen} (or remove the line for that default)"
                ),
            ));
        }
    }
    match map.get(LB_KEY) {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(lb)) => {
            let line = line_of(LB_KEY);
            out.address = match lb.get("address") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(scalar_text(other).ok_or_else(|| {
                    ConfError::new(
                        file,
                        line,
                        format!("{LB_KEY}.address: expected an IP address or host name"),
                    )
                })?),
            };
            out.port = match lb.get("port") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                    ConfError::new(
                        file,
                        line,
                        format!("{LB_KEY}.port: expected a whole number 1..65535, found {n}"),
                    )
                })?,
                Some(Value::String(s)) => Some(s.trim().parse::<i64>().map_err(|_| {
                    ConfError::new(
                        file,
                        line,
                        format!("{LB_KEY}.port: expected a whole number 1..65535, found '{s}'"),
                    )
                })?),
                Some(_) => {
                    return Err(ConfError::new(
                        file,
                        line,
                        format!("{LB_KEY}.port: expected a whole number 1..65535"),
                    ));
                }
            };
        }
        Some(_) => {
            return Err(ConfError::new(
                file,
                line_of(LB_KEY),
                format!(
                    "{LB_KEY}: expected a mapping with 'address' and 'port' (two-space indented lines)"
                ),
            ));
        }
    }
    Ok(out)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A line with its terminator split off, so replaced lines keep their own line ending.
fn split_lines(text: &str) -> Vec<(&str, &str)> {
    text.split_inclusive('\n')
        .map(|l| {
            if let Some(body) = l.strip_suffix("\r\n") {
                (body, "\r\n")
            } else if let Some(body) = l.strip_suffix('\n') {
                (body, "\n")
            } else {
                (l, "")
            }
        })
        .collect()
}

/// `#`, `##`, `# ` ... before `key:`: the installer's commented sample line.
fn commented_key(line: &str, key: &str) -> bool {
    let rest = line.trim_start_matches('#');
    rest.len() < line.len() && rest.trim_start().starts_with(&format!("{key}:"))
}

fn active_key(line: &str, key: &str) -> bool {
    line.starts_with(key) && line[key.len()..].trim_start().starts_with(':')
}

fn yaml_scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        // Plain only if YAML reads it back as this string: not `null`, `true`, `0x1F`, `.inf`, `1e5`...
        && serde_yaml::from_str::<Value>(v).is_ok_and(|read| read == Value::String(v.to_string()));
    if plain { v.to_string() } else { quoted(v) }
}

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether a file whose LB keys read as `v` gives `lb` when loaded: unset keys read as the
/// defaults (`conf::load` does the same), so a file need not spell them out.
fn reads_as(v: &LbValues, lb: &LoadBalancer) -> bool {
    if lb.is_configured() {
        v.address == lb.address
            && v.port.unwrap_or(i64::from(DEFAULT_LB_PORT)) == lb.port
            && v.domain.as_deref().unwrap_or(DEFAULT_LB_DOMAIN) == lb.domain
    } else {
        v.address.is_none()
    }
}

/// `text` with the load balancer set to `lb` (or commented out when `lb` has none), every other
/// line unchanged; `text` itself when it already says `lb`, so a write without changes keeps
/// every byte. Fails, changing nothing, if the result would not read back as `lb`.
pub fn patch(text: &str, lb: &LoadBalancer, file: &Path) -> Result<String, ConfError> {
    if parse(text, file).is_ok_and(|v| reads_as(&v, lb)) {
        return Ok(text.to_string());
    }
    let lines = split_lines(text);
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out: Vec<(String, &str)> = lines.iter().map(|(b, e)| (b.to_string(), *e)).collect();

    let configured = lb.is_configured();
    let block: Vec<String> = match (&lb.address, configured) {
        (Some(addr), true) => vec![
            format!("{LB_KEY}:"),
            format!("  address: {}", yaml_scalar(addr)),
            format!("  port: {}", lb.port),
        ],
        _ => Vec::new(),
    };

    // The LB block: the active one, else the commented sample, else appended.
    let active = lines.iter().position(|(l, _)| active_key(l, LB_KEY));
    let commented = lines.iter().position(|(l, _)| commented_key(l, LB_KEY));
    let mut appended: Vec<String> = Vec::new();
    let mut replace: Option<(usize, usize, Vec<String>)> = None;
    if let Some(start) = active {
        let mut end = start + 1;
        while end < lines.len() && {
            let l = lines[end].0;
            !l.trim().is_empty() && l.starts_with([' ', '\t'])
        } {
            end += 1;
        }
        let new = if configured {
            block.clone()
        } else {
            // No LB any more: comment the block out in the installer's own sample style.
            lines[start..end]
                .iter()
                .map(|(l, _)| format!("# {l}"))
                .collect()
        };
        replace = Some((start, end, new));
    } else if configured {
        if let Some(start) = commented {
            let mut end = start + 1;
            while end < lines.len() && {
                let rest = lines[end].0.trim_start_matches('#');
                rest.len() < lines[end].0.len()
                    && rest.starts_with([' ', '\t'])
                    && (rest.trim_start().starts_with("address:")
                        || rest.trim_start().starts_with("port:"))
            } {
                end += 1;
            }
            replace = Some((start, end, block.clone()));
        } else {
            appended.extend(block.iter().cloned());
        }
    }

    // The domain line, only when there is an LB to name.
    let mut domain_edit: Option<(usize, String)> = None;
    if configured {
        let line = format!("{DOMAIN_KEY}: {}", quoted(&lb.domain));
        let at = lines
            .iter()
            .position(|(l, _)| active_key(l, DOMAIN_KEY))
            .or_else(|| lines.iter().position(|(l, _)| commented_key(l, DOMAIN_KEY)));
        match at {
            Some(i) => domain_edit = Some((i, line)),
            None => appended.insert(0, line),
        }
    }

    if let Some((i, line)) = domain_edit {
        out[i].0 = line;
    }
    if let Some((start, end, new)) = replace {
        let ending = lines[end - 1].1;
        let ending = if ending.is_empty() && end < lines.len() {
            eol
        } else {
            ending
        };
        let n = new.len();
        let replacement: Vec<(String, &str)> = new
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l, if i + 1 == n { ending } else { eol }))
            .collect();
        out.splice(start..end, replacement);
    }
    if !appended.is_empty() {
        if let Some(last) = out.last_mut()
            && last.1.is_empty()
        {
            last.1 = eol;
        }
        for l in appended {
            out.push((l, eol));
        }
    }
    let result: String = out.iter().flat_map(|(b, e)| [b.as_str(), *e]).collect();

    let check = parse(&result, file).map_err(|e| {
        ConfError::new(
            file,
            e.line,
            format!(
                "kswizard's edit would break the file, nothing written: {}",
                e.message
            ),
        )
    })?;
    if !reads_as(&check, lb) {
        return Err(ConfError::new(
            file,
            0,
            format!(
                "the {LB_KEY} settings would not read back as written (another definition of them elsewhere in the file?); nothing written"
            ),
        ));
    }
    Ok(result)
}

/// A common.yaml for a conf/ that has none.
pub fn fresh(lb: &LoadBalancer, file: &Path) -> Result<String, ConfError> {
    patch(
        "# Written by kswizard: the apiserver load balancer.\n",
        lb,
        file,
    )
}

#[cfg(test)]
mod tests;
