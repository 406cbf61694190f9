//! `kswizard demo`: the seeds' 6-host HA example end to end on a local lab: systemd nodes with
//! their own network, real sshd, etcd and haproxy (stand-ins only for the Kubernetes binaries).
//! On a terminal the demo is the product's own flow: the lab comes up, then the wizard opens at
//! Review of the lab's files and `i` installs live; a lab whose install is unfinished is used
//! again, so the install resumes. `--headless` (or no terminal) is the text run.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::install_cmd::{self, InstallArgs};
use super::{Format, Outcome, lb_cmd};
use crate::lab;

/// The built-in LB's port: not 6443, which the apiservers have on the same masters.
const BUILT_IN_PORT: i64 = 8443;

/// Switch the lab's conf to the built-in LB: a VIP of the lab's subnet that no node has (`.200`),
/// port 8443, written with the product's own writer. The VIP's address.
fn use_built_in_lb(lab: &lab::Lab) -> Result<String, String> {
    let (mut cluster, source) = crate::conf::load(&lab.conf_dir).map_err(|e| e.to_string())?;
    let vip = format!("{}.200", lab.subnet);
    cluster.lb.mode = crate::model::LbMode::BuiltIn;
    cluster.lb.address = Some(vip.clone());
    cluster.lb.port = BUILT_IN_PORT;
    crate::conf::save(&cluster, &source, &lab.conf_dir).map_err(|e| e.to_string())?;
    Ok(vip)
}

pub struct DemoArgs {
    pub headless: bool,
    pub built_in: bool,
    pub yes: bool,
    pub dir: PathBuf,
    pub subnet: Option<String>,
    /// Only take the lab down.
    pub down: bool,
}

/// What is found in the demo's lab dir, as far as choosing the lab goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// Every node's container runs.
    up: bool,
    /// Its conf has the built-in LB.
    built_in: bool,
    subnet: String,
    /// Its last install: unfinished?, and its progress in a line (`engine::status::of_conf`).
    install: Option<(bool, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabChoice {
    New,
    /// The lab as it is: its nodes keep what the install did, its journal says what is left.
    Reuse,
    /// Taken down and brought up anew, for the reason given.
    Replace(&'static str),
}

/// **Pure.** A running lab of the wanted kind whose install is not complete is used again (that
/// is how quitting in the middle and running `demo` again resumes); a complete one gives a fresh
/// demo; a stopped one (a reboot) cannot be booted again with its state and is replaced.
fn choose(found: Option<&Found>, built_in: bool, subnet: Option<&str>) -> LabChoice {
    match found {
        None => LabChoice::New,
        Some(f) if !f.up => LabChoice::Replace("is not running"),
        Some(f) if subnet.is_some_and(|s| s != f.subnet) => {
            LabChoice::Replace("is on another subnet")
        }
        Some(f) if f.built_in != built_in => {
            LabChoice::Replace("has the other kind of load balancer")
        }
        Some(Found {
            install: Some((false, _)),
            ..
        }) => LabChoice::Replace("has a complete install"),
        Some(_) => LabChoice::Reuse,
    }
}

fn found(dir: &std::path::Path) -> Option<(lab::Lab, Found)> {
    let lab = lab::Lab::load(dir).ok()?;
    let cluster = crate::conf::load(&lab.conf_dir).ok().map(|(c, _)| c);
    let found = Found {
        up: lab.is_up(),
        built_in: cluster
            .as_ref()
            .is_some_and(|c| c.lb.mode == crate::model::LbMode::BuiltIn),
        subnet: lab.subnet.clone(),
        install: cluster
            .as_ref()
            .and_then(|c| crate::engine::status::of_conf(&lab.conf_dir, c)),
    };
    Some((lab, found))
}

/// The lab brought up with each stage shown (a first run builds the node image first, with its
/// output), switched to the built-in LB when asked.
fn bring_up(args: &DemoArgs) -> Result<lab::Lab, String> {
    if lab::image::path().is_ok_and(|p| !p.exists()) {
        println!(
            "   first run: the node image is built first (debootstrap from deb.debian.org, 1-3 min, once); its output follows"
        );
    }
    let spec = lab::Spec {
        dir: args.dir.clone(),
        subnet: args.subnet.clone(),
        ..lab::Spec::default()
    };
    let say = |line: &str| println!("   {line}");
    let lab = lab::up_showing(&spec, args.yes, &say).map_err(|e| format!("{e:#}"))?;
    if args.built_in {
        let vip = use_built_in_lb(&lab)?;
        println!(
            "   LB        built-in: haproxy + keepalived on the masters, VIP {vip}:{BUILT_IN_PORT}"
        );
    }
    Ok(lab)
}

pub fn run(args: DemoArgs) -> Outcome {
    if args.down {
        if !args.dir.exists() {
            println!("no demo lab in {}", args.dir.display());
            return Outcome::Ok;
        }
        return match lab::down(&args.dir) {
            Ok(()) => {
                println!("demo lab in {} removed", args.dir.display());
                Outcome::Ok
            }
            Err(e) => {
                eprintln!("kswizard demo --down: {e:#}");
                Outcome::Failed
            }
        };
    }
    if args.headless || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return text_run(&args);
    }
    println!("== the lab: 6 hosts with their own network on a bridge, an haproxy load balancer");
    let previous = found(&args.dir);
    let choice = choose(
        previous.as_ref().map(|(_, f)| f),
        args.built_in,
        args.subnet.as_deref(),
    );
    let lab = match (choice, previous) {
        (LabChoice::Reuse, Some((lab, f))) => {
            let install = f
                .install
                .map_or("not started".to_string(), |(_, line)| line);
            println!(
                "   the lab in {} is up; using it as it is (its install: {install})",
                lab.dir.display()
            );
            lab
        }
        (choice, _) => {
            if let LabChoice::Replace(why) = choice {
                println!(
                    "   the lab in {} {why}: taking it down for a new one",
                    args.dir.display()
                );
                if let Err(e) = lab::down(&args.dir) {
                    eprintln!("kswizard demo: the previous demo lab would not go down: {e:#}");
                    return Outcome::Failed;
                }
            }
            match bring_up(&args) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("kswizard demo: {e}");
                    return Outcome::Failed;
                }
            }
        }
    };
    let unfinished = crate::conf::load(&lab.conf_dir)
        .ok()
        .and_then(|(c, _)| crate::engine::status::of_conf(&lab.conf_dir, &c))
        .is_some_and(|(unfinished, _)| unfinished);
    println!(
        "\nThe wizard opens at Review of the lab's files ({}). The nodes are systemd containers on this\n\
         machine with real sshd, etcd, haproxy and keepalived; the Kubernetes binaries are stand-ins.\n\
         `i` installs (preflight, then every step live per node); 1-4 show the hosts, roles and LB.\n\
         Quitting during the install leaves its steps running on the nodes: `kswizard demo` again resumes it.\n\n\
         Enter opens the wizard.",
        lab.conf_dir.display()
    );
    // The wizard takes the whole terminal: what was said above stays readable until Enter. A
    // closed stdin (EOF) opens it at once.
    let _ = std::io::stdin().read_line(&mut String::new());
    // Keys first: at 80 columns the end of the line gives way to the status on the right.
    let message = if unfinished {
        "Demo lab: i resumes the install, 1-4 look around. Kubernetes binaries are stand-ins."
    } else {
        "Demo lab: i installs, 1-4 look around. 6 local nodes; Kubernetes binaries are stand-ins."
    };
    let opening = crate::tui::state::Opening {
        screen: crate::tui::state::Screen::Review,
        message: message.to_string(),
    };
    let outcome = match crate::tui::run_opening(&lab.conf_dir, Some(opening)) {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("kswizard: {e:?}");
            Outcome::Failed
        }
    };
    let install = crate::conf::load(&lab.conf_dir)
        .ok()
        .and_then(|(c, _)| crate::engine::status::of_conf(&lab.conf_dir, &c));
    match install {
        Some((true, line)) => println!(
            "\nThe install is unfinished ({line}); steps already started go on on the nodes.\n\
             `kswizard demo` again takes it up where it is."
        ),
        Some((false, line)) => println!("\nThe install: {line}."),
        // Quit at Review or during the preflight, which only reads.
        None => println!("\nNo install step has run yet."),
    }
    goodbye(&lab);
    outcome
}

/// How to look further and how to clean up: the lab stays up after the demo.
fn goodbye(lab: &lab::Lab) {
    let conf = lab.conf_dir.display();
    let dir = lab.dir.display();
    println!(
        "The lab stays up. Next:\n  kswizard status --conf {conf}\n  kswizard --conf {conf}            (the wizard on the lab's files)\n  kswizard demo --down --dir {dir}   (or kswizard lab down --dir {dir}: removes the lab)"
    );
}

/// The text run: a new lab, validate, install, the LB's view.
fn text_run(args: &DemoArgs) -> Outcome {
    println!("== 1/4 lab: 6 hosts with their own network on a bridge, an haproxy load balancer");
    if lab::Lab::load(&args.dir).is_ok()
        && let Err(e) = lab::down(&args.dir)
    {
        eprintln!("kswizard demo: the previous demo lab would not go down: {e:#}");
        return Outcome::Failed;
    }
    let lab = match bring_up(args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kswizard demo: {e}");
            return Outcome::Failed;
        }
    };
    let built_in = args.built_in;
    println!("\n== 2/4 validate {}", lab.conf_dir.display());
    if super::validate_cmd::run(&lab.conf_dir, Format::Text, false) != Outcome::Ok {
        return Outcome::Failed;
    }

    println!(
        "\n== 3/4 install: preflight, delivery, OS prep, runtime, etcd (TLS), kubeadm init/join, CNI, verify, KubeSphere"
    );
    let installed = install_cmd::install(InstallArgs {
        conf: &lab.conf_dir,
        plan: None,
        state: None,
        yes: true,
        resume: false,
        restart: true,
        reconnect_for: std::time::Duration::from_secs(120),
        retry: &[],
        skip: &[],
        json: false,
    });

    println!("\n== 4/4 the load balancer: frontend and apiservers, as kswizard probes them");
    if built_in {
        // haproxy marks an apiserver up after two passing checks, 2 s apart: the last joins need
        // that long before every master's haproxy sees every backend.
        println!("   (a few seconds for haproxy's checks to see the last masters that joined)");
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
    let lb = lb_cmd::status(&lab.conf_dir, false, Format::Text);
    // The taskbox's haproxy is the external LB only; the built-in one's view is in lb status.
    if !built_in && let Ok(backends) = lab.backends() {
        let states: Vec<String> = backends.iter().map(|(s, st)| format!("{s} {st}")).collect();
        println!("   haproxy's own view: {}", states.join(", "));
    }
    println!();
    goodbye(&lab);
    match (installed, lb) {
        (Outcome::Ok, Outcome::Ok) => Outcome::Ok,
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(up: bool, built_in: bool, install: Option<bool>) -> Found {
        Found {
            up,
            built_in,
            subnet: "10.231.9".to_string(),
            install: install.map(|unfinished| (unfinished, "12 of 46 steps done".to_string())),
        }
    }

    #[test]
    fn a_running_lab_of_the_kind_asked_is_used_again_unless_its_install_is_complete() {
        assert_eq!(choose(None, false, None), LabChoice::New);
        // Quit in the middle: the same lab, so the install resumes on the nodes it began on.
        assert_eq!(
            choose(Some(&found(true, false, Some(true))), false, None),
            LabChoice::Reuse
        );
        // Up, nothing installed yet (the wizard was quit at Review).
        assert_eq!(
            choose(Some(&found(true, true, None)), true, None),
            LabChoice::Reuse
        );
        assert_eq!(
            choose(Some(&found(true, false, Some(false))), false, None),
            LabChoice::Replace("has a complete install")
        );
        assert_eq!(
            choose(Some(&found(false, false, Some(true))), false, None),
            LabChoice::Replace("is not running")
        );
        assert_eq!(
            choose(Some(&found(true, false, Some(true))), true, None),
            LabChoice::Replace("has the other kind of load balancer")
        );
        // --subnet given: the lab must be on it; not given: any.
        assert_eq!(
            choose(
                Some(&found(true, false, Some(true))),
                false,
                Some("10.231.9")
            ),
            LabChoice::Reuse
        );
        assert_eq!(
            choose(
                Some(&found(true, false, Some(true))),
                false,
                Some("10.231.8")
            ),
            LabChoice::Replace("is on another subnet")
        );
    }
}
