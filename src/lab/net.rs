//! The lab's network: a private /24 that nothing on the machine uses, a bridge holding the taskbox's
//! lab addresses, and per node a network namespace whose only interface, `eth0`, is a veth on that
//! bridge. No default route, no NAT, no forwarding: lab traffic never leaves the machine.

use std::net::Ipv4Addr;
use std::process::Command;

use color_eyre::eyre::{Result, WrapErr, bail};
use serde::Deserialize;

use super::run;

/// The taskbox's address on the bridge (`A.B.C.254`).
pub const HOST_OCTET: u8 = 254;
/// The external LB's address on the bridge (`A.B.C.250`); nodes are `.1` to `.249`.
pub const LB_OCTET: u8 = 250;
/// Where `lab up` looks for a free /24 when no `--subnet` is given: 10.231.0 to 10.231.255.
const PICK_FROM: [u8; 2] = [10, 231];

/// `A.B.C` of a private /24 (10/8, 172.16/12, 192.168/16), or an error that says what is allowed.
pub fn parse_subnet(subnet: &str) -> Result<[u8; 3]> {
    let octets: Vec<Option<u8>> = subnet.split('.').map(|o| o.parse().ok()).collect();
    let private =
        |a: u8, b: u8| a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168);
    match octets.as_slice() {
        [Some(a), Some(b), Some(c)] if private(*a, *b) => Ok([*a, *b, *c]),
        _ => bail!(
            "--subnet {subnet:?}: give the first three octets of a private /24 (10.X.Y, 172.16-31.X.Y or \
             192.168.X), e.g. 10.231.7"
        ),
    }
}

/// One IPv4 network the machine uses: an interface's address, or a route's destination.
#[derive(Debug, PartialEq, Eq)]
pub struct InUse {
    pub net: Ipv4Addr,
    pub prefix: u8,
    /// What uses it, for the refusal: "address 192.0.2.2/24 on eth0", "route 10.0.0.0/8 via ...".
    pub what: String,
}

#[derive(Deserialize)]
struct IpAddr {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

#[derive(Deserialize)]
struct AddrInfo {
    local: String,
    prefixlen: u8,
}

#[derive(Deserialize)]
struct IpRoute {
    dst: String,
    #[serde(default)]
    dev: Option<String>,
    #[serde(default)]
    table: Option<String>,
}

fn ip_json(args: &[&str]) -> Result<String> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every IPv4 address and route of the machine (all routing tables). The default route is no
/// clash: it is what a /24 of the lab's own is more specific than.
pub fn in_use() -> Result<Vec<InUse>> {
    let mut used = Vec::new();
    let addrs: Vec<IpAddr> = serde_json::from_str(&ip_json(&["-j", "-4", "addr", "show"])?)?;
    for a in addrs {
        for info in a.addr_info {
            if let Ok(net) = info.local.parse() {
                used.push(InUse {
                    net,
                    prefix: info.prefixlen,
                    what: format!("address {}/{} on {}", info.local, info.prefixlen, a.ifname),
                });
            }
        }
    }
    let routes: Vec<IpRoute> =
        serde_json::from_str(&ip_json(&["-j", "-4", "route", "show", "table", "all"])?)?;
    for r in routes {
        let (net, prefix) = match r.dst.split_once('/') {
            Some((n, p)) => (n.parse(), p.parse().unwrap_or(32)),
            None => (r.dst.parse(), 32),
        };
        if let Ok(net) = net
            && prefix > 0
        {
            let dev = r.dev.map(|d| format!(" dev {d}")).unwrap_or_default();
            let table = r.table.map(|t| format!(" table {t}")).unwrap_or_default();
            used.push(InUse {
                net,
                prefix,
                what: format!("route {}{dev}{table}", r.dst),
            });
        }
    }
    Ok(used)
}

/// What of `used` overlaps the /24 `subnet`, if anything.
pub fn clash(subnet: [u8; 3], used: &[InUse]) -> Option<&InUse> {
    let ours = u32::from(Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 0));
    used.iter().find(|u| {
        // Two networks overlap when they agree on the shorter of their prefixes.
        let prefix = u32::from(u.prefix.min(24));
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        ours & mask == u32::from(u.net) & mask
    })
}

/// The given subnet if it is free, else an error naming what uses it; without one, the first free
/// /24 of 10.231.X.
pub fn choose(subnet: Option<&str>) -> Result<String> {
    let used = in_use()?;
    if let Some(s) = subnet {
        let octets = parse_subnet(s)?;
        if let Some(u) = clash(octets, &used) {
            bail!(
                "subnet {s}.0/24 is already used on this machine ({}): choose another --subnet",
                u.what
            );
        }
        return Ok(s.to_string());
    }
    (0..=255u8)
        .map(|c| [PICK_FROM[0], PICK_FROM[1], c])
        .find(|o| clash(*o, &used).is_none())
        .map(|[a, b, c]| format!("{a}.{b}.{c}"))
        .ok_or_else(|| {
            color_eyre::eyre::eyre!(
                "no free /24 in 10.231.0.0/16 on this machine: name one with --subnet"
            )
        })
}

/// Interface names are at most 15 bytes: the subnet in hex keeps them short and unique (two live
/// labs never share a subnet, the bridge address sees to that).
fn hex(subnet: &str) -> String {
    parse_subnet(subnet)
        .map(|o| o.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

pub fn bridge_name(subnet: &str) -> String {
    format!("kswbr{}", hex(subnet))
}

/// The taskbox's end of node `octet`'s veth.
pub fn veth_name(subnet: &str, octet: u8) -> String {
    format!("ksw{}{octet:02x}", hex(subnet))
}

pub fn netns_name(subnet: &str, node: &str) -> String {
    format!("ksw-{subnet}-{node}")
}

/// The bridge with the taskbox's address and the LB's on it.
pub fn add_bridge(bridge: &str, subnet: &str) -> Result<()> {
    run(Command::new("ip").args(["link", "add", bridge, "type", "bridge"]))?;
    run(Command::new("ip").args([
        "addr",
        "add",
        &format!("{subnet}.{HOST_OCTET}/24"),
        "dev",
        bridge,
    ]))?;
    run(Command::new("ip").args([
        "addr",
        "add",
        &format!("{subnet}.{LB_OCTET}/32"),
        "dev",
        bridge,
    ]))?;
    // Nothing that arrives from the nodes is routed on, whatever the machine's ip_forward says
    // (a node's root could add a default route via the bridge).
    let forwarding = format!("/proc/sys/net/ipv4/conf/{bridge}/forwarding");
    std::fs::write(&forwarding, "0").wrap_err_with(|| format!("writing {forwarding}"))?;
    run(Command::new("ip").args(["link", "set", bridge, "up"]))
}

/// A node's namespace: `lo` and `eth0` (a veth on the bridge) up, its address, no default route.
pub fn add_node(netns: &str, veth: &str, bridge: &str, ip: &str) -> Result<()> {
    run(Command::new("ip").args(["netns", "add", netns]))?;
    run(Command::new("ip").args([
        "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
    ]))?;
    run(Command::new("ip").args(["link", "set", veth, "master", bridge, "up"]))?;
    let inside = |args: &[&str]| run(Command::new("ip").args(["-n", netns]).args(args));
    inside(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
    inside(&["link", "set", "eth0", "up"])?;
    inside(&["link", "set", "lo", "up"])
}

/// Remove what exists of a node's namespace and veth (either may be missing after a failed `up`).
pub fn remove_node(netns: &str, veth: &str) -> Result<()> {
    if std::path::Path::new("/run/netns").join(netns).exists() {
        run(Command::new("ip").args(["netns", "delete", netns]))?;
    }
    // Deleting the namespace destroys the pair; a veth made before its namespace was is still here.
    remove_link(veth)
}

/// Remove an interface if it is there. A veth also goes with its namespace, asynchronously: one
/// that vanishes while being deleted is gone all the same.
pub fn remove_link(name: &str) -> Result<()> {
    let exists = || std::path::Path::new("/sys/class/net").join(name).exists();
    if exists()
        && let Err(e) = run(Command::new("ip").args(["link", "delete", name]))
        && exists()
    {
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(net: &str, prefix: u8) -> InUse {
        InUse {
            net: net.parse().unwrap(),
            prefix,
            what: format!("{net}/{prefix}"),
        }
    }

    #[test]
    fn subnets_are_private_slash_24s() {
        assert_eq!(parse_subnet("10.231.7").unwrap(), [10, 231, 7]);
        assert!(parse_subnet("172.20.1").is_ok());
        assert!(parse_subnet("192.168.44").is_ok());
        for bad in [
            "127.0.100",
            "8.8.8",
            "172.32.1",
            "10.1",
            "10.1.2.3",
            "10.x.1",
            "192.169.1",
        ] {
            let e = parse_subnet(bad).unwrap_err().to_string();
            assert!(e.contains("private /24"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_clash_is_any_overlap_but_the_default_route() {
        let machine = [
            used("192.0.2.2", 24),
            used("10.0.0.0", 8),
            used("172.16.5.9", 32),
        ];
        assert_eq!(clash([10, 231, 7], &machine).unwrap().what, "10.0.0.0/8");
        assert_eq!(clash([172, 16, 5], &machine).unwrap().what, "172.16.5.9/32");
        assert!(clash([172, 16, 6], &machine).is_none());
        assert!(clash([192, 168, 1], &machine).is_none());
    }

    #[test]
    fn names_fit_in_an_interface_name() {
        assert_eq!(bridge_name("10.231.7"), "kswbr0ae707");
        assert_eq!(veth_name("192.168.255", 249), "kswc0a8fff9");
        assert!(veth_name("192.168.255", 249).len() <= 15);
        assert_eq!(netns_name("10.231.7", "master1"), "ksw-10.231.7-master1");
    }
}
