//! hosts.ini reader and writer: the `KubeSphere` sample, kubespray's layouts, the syntax corners of
//! Ansible's INI inventories, and the exact text of every read error.

use super::*;

const FILE: &str = "conf/hosts.ini";

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/samples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(text: &str) -> Cluster {
    parse(text.as_bytes(), Path::new(FILE)).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// The error text a user sees for `text`, as `file:line: message`.
fn error(bytes: &[u8]) -> String {
    match parse(bytes, Path::new(FILE)) {
        Ok(c) => panic!("expected an error, read {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn host<'a>(c: &'a Cluster, name: &str) -> &'a Host {
    c.host(name)
        .unwrap_or_else(|| panic!("no host {name} in {:?}", c.hosts))
}

fn roles(c: &Cluster, name: &str) -> Vec<&'static str> {
    host(c, name).roles.names()
}

fn pass(p: &str) -> Auth {
    Auth::Password(Secret::new(p))
}

/// The line of `[all]` that defines `name` in rendered text.
fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name) && l.contains('='))
        .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
}

/// Writing what was read, reading that and writing again must give the same bytes.
fn assert_fixed_point(c: &Cluster) -> String {
    let once = render(c);
    let again = render(&read(&once));
    assert_eq!(once, again, "render → parse → render changed the file");
    once
}

#[test]
fn kubesphere_sample_reads_three_hosts_with_roles_and_auth() {
    let c = parse(&sample("ks-installer-v2.1.1-hosts.ini"), Path::new(FILE)).unwrap();
    let names: Vec<&str> = c.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["master", "node1", "node2"]);

    let m = host(&c, "master");
    assert_eq!(m.auth, Auth::Local);
    assert_eq!(m.ip.as_deref(), Some("192.168.0.5"));
    assert_eq!(m.address, None);
    assert_eq!(roles(&c, "master"), ["master", "etcd"]);

    for (name, ip) in [("node1", "192.168.0.6"), ("node2", "192.168.0.8")] {
        let h = host(&c, name);
        assert_eq!(h.address.as_deref(), Some(ip));
        assert_eq!(h.ip.as_deref(), Some(ip));
        assert!(h.is_root());
        assert_eq!(h.auth, pass("Qcloud@123"));
        assert_eq!(roles(&c, name), ["worker"]);
    }
    assert!(c.undefined.is_empty());
    assert!(c.ini.kept_sections.is_empty());
    assert!(!c.ini.crlf);
}

#[test]
fn kubesphere_sample_is_written_in_the_installer_layout() {
    let c = parse(&sample("ks-installer-v2.1.1-hosts.ini"), Path::new(FILE)).unwrap();
    let out = assert_fixed_point(&c);
    // The `;` parameter notes before [all] are kept as the preamble.
    assert!(
        out.starts_with("; Parameters:\n;  ansible_connection:"),
        "{out}"
    );
    let body = &out[out.find("[all]").unwrap()..];
    assert_eq!(
        body,
        "[all]\n\
         master  ansible_connection=local  ip=192.168.0.5\n\
         node1   ansible_host=192.168.0.6  ip=192.168.0.6  ansible_ssh_pass=Qcloud@123\n\
         node2   ansible_host=192.168.0.8  ip=192.168.0.8  ansible_ssh_pass=Qcloud@123\n\
         \n[kube-master]\nmaster\n\
         \n[kube-node]\nnode1\nnode2\n\
         \n[etcd]\nmaster\n\
         \n[k8s-cluster:children]\nkube-node\nkube-master\n"
    );
}

#[test]
fn non_root_lines_put_the_become_password_fifth() {
    let c = read(
        "[all]\n\
         master ansible_connection=local  ip=192.168.0.5  ansible_user=ubuntu  ansible_become_pass=Qcloud@123\n\
         node1  ansible_host=192.168.0.6  ip=192.168.0.6  ansible_user=ubuntu  ansible_become_pass=Qcloud@123\n\
         [kube-master]\nmaster\n[kube-node]\nnode1\n[etcd]\nmaster\n",
    );
    let n = host(&c, "node1");
    assert_eq!(n.user.as_deref(), Some("ubuntu"));
    assert_eq!(n.become_pass, Some(Secret::new("Qcloud@123")));
    // install.sh logs in with the become password, so the line means password login.
    assert_eq!(n.auth, pass("Qcloud@123"));

    let out = assert_fixed_point(&c);
    for name in ["master", "node1"] {
        let fields: Vec<&str> = line_of(&out, name).split_whitespace().collect();
        assert_eq!(
            fields.get(4),
            Some(&"ansible_become_pass=Qcloud@123"),
            "{fields:?}"
        );
        assert_eq!(fields.len(), 5, "{fields:?}");
    }
    assert_eq!(
        line_of(&out, "node1"),
        "node1   ansible_host=192.168.0.6  ip=192.168.0.6  ansible_user=ubuntu  ansible_become_pass=Qcloud@123"
    );
}

#[test]
fn become_password_stays_fifth_when_a_slot_is_empty() {
    // Found in a real KubeSphere 1.0 inventory: the taskbox line had no ip, and an unknown key in
    // its place; written in the plain order, the password moved to the fourth field.
    let c = read(
        "[all]\n\
         master ansible_connection=local note=x ansible_user=ubuntu ansible_become_pass=pw\n\
         node1 ansible_host=10.0.0.2 a=1 b=2 ansible_user=ubuntu ansible_become_pass=pw\n\
         node2 ansible_connection=local ansible_host=10.0.0.3 ip=10.0.0.3 ansible_user=ubuntu ansible_become_pass=pw\n",
    );
    let out = assert_fixed_point(&c);
    assert_eq!(
        line_of(&out, "master"),
        "master  ansible_connection=local  note=x  ansible_user=ubuntu  ansible_become_pass=pw"
    );
    assert_eq!(
        line_of(&out, "node1"),
        "node1   ansible_host=10.0.0.2  a=1  ansible_user=ubuntu  ansible_become_pass=pw  b=2"
    );
    assert_eq!(
        line_of(&out, "node2"),
        "node2   ansible_host=10.0.0.3  ip=10.0.0.3  ansible_user=ubuntu  ansible_become_pass=pw  ansible_connection=local"
    );
    assert_eq!(read(&out).hosts, c.hosts);
}

#[test]
fn root_lines_put_the_ssh_password_fourth() {
    let mut h = Host::new("node1", "10.0.0.2");
    h.auth = pass("pw");
    h.user = Some("root".into());
    let c = Cluster {
        hosts: vec![h],
        ..Cluster::default()
    };
    let out = assert_fixed_point(&c);
    assert_eq!(
        line_of(&out, "node1"),
        "node1  ansible_host=10.0.0.2  ip=10.0.0.2  ansible_user=root  ansible_ssh_pass=pw"
    );
    let mut c = c;
    c.hosts[0].user = None;
    assert_eq!(
        line_of(&render(&c), "node1"),
        "node1  ansible_host=10.0.0.2  ip=10.0.0.2  ansible_ssh_pass=pw"
    );
}

/// Three hosts of a stacked-etcd HA layout, in the given group names.
fn kubespray_layout(
    masters: &str,
    workers: &str,
    etcd_header: &str,
    etcd_body: &str,
    cluster: &str,
) -> String {
    format!(
        "[all]\nnode1 ansible_host=10.0.0.1 ip=10.3.0.1\nnode2 ansible_host=10.0.0.2\nnode3 ansible_host=10.0.0.3\n\n\
         [{masters}]\nnode1\nnode2\n\n[{etcd_header}]\n{etcd_body}\n\n[{workers}]\nnode2\nnode3\n\n\
         [calico-rr]\n\n[{cluster}:children]\n{masters}\n{workers}\ncalico-rr\n"
    )
}

fn assert_kubespray_roles(c: &Cluster) {
    assert_eq!(roles(c, "node1"), ["master", "etcd"]);
    assert_eq!(roles(c, "node2"), ["master", "worker", "etcd"]);
    assert_eq!(roles(c, "node3"), ["worker"]);
    assert!(c.undefined.is_empty(), "{:?}", c.undefined);
}

#[test]
fn kubespray_old_group_names() {
    let c = read(&kubespray_layout(
        "kube-master",
        "kube-node",
        "etcd",
        "node1\nnode2",
        "k8s-cluster",
    ));
    assert_kubespray_roles(&c);
    assert_eq!(c.ini.cluster_children, ["calico-rr"]);
    let out = assert_fixed_point(&c);
    // The empty [calico-rr] group is kept, and stays a child of the cluster.
    assert!(
        out.contains("\n[k8s-cluster:children]\nkube-node\nkube-master\ncalico-rr\n"),
        "{out}"
    );
    assert!(out.contains("\n[calico-rr]\n"), "{out}");
}

#[test]
fn kubespray_new_group_names_and_etcd_children() {
    let c = read(&kubespray_layout(
        "kube_control_plane",
        "kube_node",
        "etcd:children",
        "kube_control_plane",
        "k8s_cluster",
    ));
    assert_kubespray_roles(&c);
    // Written in the KubeSphere 2.x names the legacy installer reads.
    let out = assert_fixed_point(&c);
    assert!(out.contains("\n[kube-master]\nnode1\nnode2\n"), "{out}");
    assert!(out.contains("\n[etcd]\nnode1\nnode2\n"), "{out}");
    assert!(!out.contains("kube_control_plane"), "{out}");
}

#[test]
fn hosts_defined_only_inside_groups() {
    let c = read(
        "[kube_control_plane]\nnode1 ansible_host=10.0.0.1 ip=10.3.0.1 etcd_member_name=etcd1\n\n\
         [etcd:children]\nkube_control_plane\n\n[kube_node]\nnode4 ansible_host=10.0.0.4\n",
    );
    assert_eq!(roles(&c, "node1"), ["master", "etcd"]);
    assert_eq!(roles(&c, "node4"), ["worker"]);
    let n1 = host(&c, "node1");
    assert_eq!(n1.address.as_deref(), Some("10.0.0.1"));
    assert_eq!(
        n1.extra,
        [("etcd_member_name".to_string(), "etcd1".to_string())]
    );
    assert_fixed_point(&c);
}

#[test]
fn hosts_defined_in_own_groups_that_feed_role_groups() {
    // The mapping kubespray's integration guide shows (`[kube_control_plane:children]` naming a
    // group of the user's own) with the addresses on that group's lines: the addresses were lost,
    // or, with any host in [all], the names were reported as undefined.
    let c = read(
        "[all]\nlb ansible_host=10.0.0.9\n\
         [masters]\nm1 ansible_host=10.0.0.1 ip=10.0.0.1\n\
         [kube-master:children]\nmasters\n[etcd:children]\nkube-master\n\
         [bastion]\nb1 ansible_host=10.0.0.99\n",
    );
    assert!(c.undefined.is_empty(), "{:?}", c.undefined);
    assert_eq!(host(&c, "m1").address.as_deref(), Some("10.0.0.1"));
    assert_eq!(roles(&c, "m1"), ["master", "etcd"]);
    // A group that feeds no role stays outside the cluster.
    assert!(c.host("b1").is_none());
    let out = assert_fixed_point(&c);
    assert_eq!(read(&out).hosts, c.hosts);
}

#[test]
fn bare_names_only_are_hosts() {
    // As Ansible reads it: with no definition anywhere, each name in a group is a host.
    let c = read("[kube-master]\nm1\n[etcd]\nm1\n[kube-node]\nw1\n");
    assert_eq!(roles(&c, "m1"), ["master", "etcd"]);
    assert_eq!(roles(&c, "w1"), ["worker"]);
    assert_eq!(host(&c, "w1").connect_address(), "w1");
}

#[test]
fn a_name_missing_from_all_is_recorded_with_its_line() {
    let c = read("[all]\nnode1 ansible_host=10.0.0.1\n[kube-master]\nnode1\n[kube-node]\nnod2\n");
    assert_eq!(
        c.undefined,
        [UndefinedRef {
            group: "kube-node".into(),
            name: "nod2".into(),
            line: 6
        }]
    );
}

#[test]
fn comments_with_semicolon_and_hash_on_their_own_lines_and_inline() {
    let c = read(
        "; a note\n# another\n[all]\n; about master\nmaster ansible_host=10.0.0.1  # the taskbox\n\
         # node2 ansible_host=10.0.0.2\n[kube-master] # control plane\nmaster\n",
    );
    assert_eq!(c.hosts.len(), 1);
    let m = host(&c, "master");
    assert_eq!(m.address.as_deref(), Some("10.0.0.1"));
    assert_eq!(m.comment.as_deref(), Some("# the taskbox"));
    assert_eq!(c.ini.preamble, ["; a note", "# another"]);
    let out = assert_fixed_point(&c);
    assert!(out.contains("[all]\n; about master\n# node2 ansible_host=10.0.0.2\nmaster  ansible_host=10.0.0.1  # the taskbox\n"), "{out}");
}

#[test]
fn semicolon_inside_a_host_line_is_part_of_the_value() {
    // Ansible's INI reader splits host lines with shlex, whose only comment character is '#'.
    let c = read("[all]\nnode1 ansible_host=10.0.0.1 note=a;b\n");
    assert_eq!(
        host(&c, "node1").extra,
        [("note".to_string(), "a;b".to_string())]
    );
    assert!(assert_fixed_point(&c).contains("note=\"a;b\""));
}

#[test]
fn crlf_is_read_and_written_back_as_crlf() {
    let text = "[all]\r\nnode1 ansible_host=10.0.0.1 ip=10.0.0.1\r\n\r\n[kube-master]\r\nnode1\r\n[etcd]\r\nnode1\r\n";
    let c = read(text);
    assert!(c.ini.crlf);
    assert_eq!(host(&c, "node1").ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(roles(&c, "node1"), ["master", "etcd"]);
    let out = assert_fixed_point(&c);
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
}

#[test]
fn tabs_and_trailing_spaces_separate_fields() {
    let c = read(
        "[all]\t\nnode1\tansible_host=10.0.0.1\t ip=10.0.0.1   \n[kube-master]  \nnode1  \t\n",
    );
    let h = host(&c, "node1");
    assert_eq!(h.address.as_deref(), Some("10.0.0.1"));
    assert_eq!(h.ip.as_deref(), Some("10.0.0.1"));
    assert!(h.roles.master);
}

#[test]
fn ansible_port_is_read_and_written() {
    let c = read("[all]\nnode1 ansible_host=10.0.0.1 ansible_port=2222\n");
    assert_eq!(host(&c, "node1").port, Some(2222));
    assert!(line_of(&assert_fixed_point(&c), "node1").ends_with("ansible_port=2222"));
}

#[test]
fn unknown_keys_are_kept_in_order() {
    let c = read(
        "[all]\nnode1 zeta=1 ansible_host=10.0.0.1 alpha=2 etcd_member_name=etcd1 ansible_connection=ssh\n",
    );
    let keys: Vec<&str> = host(&c, "node1")
        .extra
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        keys,
        ["zeta", "alpha", "etcd_member_name", "ansible_connection"]
    );
    assert_eq!(
        line_of(&assert_fixed_point(&c), "node1"),
        "node1  ansible_host=10.0.0.1  zeta=1  alpha=2  etcd_member_name=etcd1  ansible_connection=ssh"
    );
}

#[test]
fn unknown_sections_are_kept_verbatim() {
    let kept = "[all:vars]\nansible_python_interpreter=/usr/bin/python3   \n# keep me\n\n\
                [calico-rr]\nnode1\n\n[bastion]\nbastion ansible_host=x.x.x.x ansible_user=some_user";
    let c = read(&format!(
        "[all]\nnode1 ansible_host=10.0.0.1\n[kube-master]\nnode1\n\n{kept}\n"
    ));
    assert_eq!(c.ini.kept_sections.len(), 3);
    // The bastion is not a cluster host: it is only in a section kswizard does not interpret.
    assert!(c.host("bastion").is_none());
    let out = assert_fixed_point(&c);
    assert!(out.ends_with(&format!("{kept}\n")), "{out}");
}

#[test]
fn quoted_values_keep_spaces_and_hashes() {
    let c = read(
        "[all]\nnode1 ansible_host=10.0.0.1 ansible_user=ubuntu ansible_become_pass=\"p a#ss\" note='it''s # x' q=\"say \\\"hi\\\"\"\n",
    );
    let h = host(&c, "node1");
    assert_eq!(h.become_pass, Some(Secret::new("p a#ss")));
    assert_eq!(h.comment, None);
    assert_eq!(
        h.extra,
        [
            ("note".to_string(), "its # x".to_string()),
            ("q".to_string(), "say \"hi\"".to_string())
        ]
    );
    let out = assert_fixed_point(&c);
    assert_eq!(read(&out).hosts, c.hosts);
}

#[test]
fn reading_a_file_kswizard_wrote_gives_the_same_bytes() {
    let mut c = parse(&sample("ks-installer-v2.1.1-hosts.ini"), Path::new(FILE)).unwrap();
    c.hosts[1].user = Some("ubuntu".into());
    c.hosts[1].become_pass = Some(Secret::new("s p#c\"e"));
    c.hosts[2].port = Some(2022);
    c.hosts[2]
        .extra
        .push(("weird".into(), "a=b; c 'd' ü".into()));
    c.ini
        .kept_sections
        .push(vec!["[bastion]".into(), "b ansible_host=1.2.3.4".into()]);
    let once = assert_fixed_point(&c);
    assert_eq!(read(&once).hosts, c.hosts);
    c.ini.crlf = true;
    assert_fixed_point(&c);
}

#[test]
fn quoted_names_and_keys_are_written_quoted() {
    // Found by the property tests: a key or name with a space, or a name starting with '[',
    // was written bare and the file no longer read (or read as a section header).
    let c = read(
        "[all]\n\"my host\" \"odd key\"=1 ansible_host=10.0.0.1\n\"[x\"\n[kube-master]\n\"my host\"\n",
    );
    assert_eq!(
        host(&c, "my host").extra,
        [("odd key".to_string(), "1".to_string())]
    );
    assert!(host(&c, "my host").roles.master);
    assert!(c.host("[x").is_some());
    let out = assert_fixed_point(&c);
    assert_eq!(read(&out).hosts, c.hosts);
}

#[test]
fn bom_is_ignored() {
    let c = read("\u{feff}[all]\nnode1 ansible_host=10.0.0.1\n");
    assert_eq!(c.hosts.len(), 1);
}

#[test]
fn error_unclosed_section_header() {
    assert_eq!(
        error(b"[all]\nnode1\n[all\n"),
        "conf/hosts.ini:3: expected ']' to close the section header '[all'"
    );
}

#[test]
fn error_token_without_equals_after_host_name() {
    assert_eq!(
        error(b"[all]\nnode1 ansible_host=10.0.0.1 10.0.0.2\n"),
        "conf/hosts.ini:2: expected key=value after host 'node1', found '10.0.0.2' (quote values that contain spaces)"
    );
}

#[test]
fn error_line_starting_with_key_value() {
    assert_eq!(
        error(b"[all]\nansible_host=10.0.0.1\n"),
        "conf/hosts.ini:2: expected a host name first, found 'ansible_host=10.0.0.1': a host line is 'name key=value ...'"
    );
}

#[test]
fn error_bad_ansible_port() {
    assert_eq!(
        error(b"[all]\n\nnode1 ansible_host=10.0.0.1 ansible_port=22x\n"),
        "conf/hosts.ini:3: ansible_port of host 'node1': expected a port number 1..65535, found '22x'"
    );
    assert_eq!(
        error(b"[all]\nnode1 ansible_port=0\n"),
        "conf/hosts.ini:2: ansible_port of host 'node1': expected a port number 1..65535, found '0'"
    );
}

#[test]
fn error_unclosed_quote() {
    assert_eq!(
        error(b"[all]\nnode1 ansible_become_pass=\"abc\n"),
        "conf/hosts.ini:2: expected a closing \" before the end of the line"
    );
}

#[test]
fn error_not_utf8() {
    assert_eq!(
        error(b"[all]\nnode1 ansible_host=10.0.0.1\nnode2 ansible_ssh_pass=caf\xe9\n"),
        "conf/hosts.ini:3: not UTF-8 text: save the file as UTF-8"
    );
}

#[test]
fn error_bad_section_suffix() {
    assert_eq!(
        error(b"[all]\nnode1\n[etcd:child]\nkube-master\n"),
        "conf/hosts.ini:3: expected [group], [group:children] or [group:vars], found suffix ':child'"
    );
}

#[test]
fn error_two_names_in_children() {
    assert_eq!(
        error(b"[k8s-cluster:children]\nkube-node kube-master\n"),
        "conf/hosts.ini:2: expected one group name per line in [k8s-cluster:children], found 'kube-master' after 'kube-node'"
    );
}

#[test]
fn a_backslash_in_double_quotes_is_kept_unless_it_escapes_a_quote_or_backslash() {
    let c = parse(
        b"[all]\nn1 ansible_host=10.0.0.1 ansible_ssh_pass=\"p\\w \\\" \\\\\"\n",
        Path::new("hosts.ini"),
    )
    .unwrap();
    assert_eq!(c.hosts[0].auth, Auth::Password(Secret::new("p\\w \" \\")));
    // And it is written so that it reads back the same.
    let again = parse(render(&c).as_bytes(), Path::new("hosts.ini")).unwrap();
    assert_eq!(again.hosts[0].auth, c.hosts[0].auth);
}
