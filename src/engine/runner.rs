//! The remote runner: the shell text that starts a step detached on its node (or re-attaches to
//! it), and the reading of what that shell prints back.
//!
//! A step lives in `/var/lib/kswizard/<install-id>/<step>/` on its node: `script`, `env`, `log`,
//! `out` (its `$KSW_OUTPUT`), `attempt`, `pid` and, once it ended, `rc`. It runs in a session of
//! its own under `timeout -k`, writing its log through `tee -p`, so it goes on when the SSH
//! connection or kswizard dies, and a later run finds it by its directory.

/// Marks kswizard's own lines in the runner's output (ASCII record separator).
const MARK: char = '\u{1e}';

pub const STATE_ROOT: &str = "/var/lib/kswizard";

/// One step of a batch: which attempt to run (or re-attach to), and what.
pub struct Launch<'a> {
    pub step: &'a str,
    pub attempt: u32,
    pub timeout: u64,
    pub body: &'a str,
    /// Environment for the step, already checked to have shell-safe names.
    pub env: &'a [(String, String)],
}

/// Single-quote for sh: no expansion of any kind inside.
pub fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

pub fn install_dir(install_id: &str) -> String {
    format!("{STATE_ROOT}/{install_id}")
}

/// Outputs named like secrets (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`, `*_PASS`) are
/// handed to later steps but never written to the journal.
pub fn is_secret_name(k: &str) -> bool {
    let last = k.rsplit('_').next().unwrap_or(k);
    matches!(
        last,
        "KEY" | "TOKEN" | "SECRET" | "PASSWORD" | "PASS" | "PASSWD"
    )
}

pub fn is_env_name(k: &str) -> bool {
    let mut c = k.chars();
    c.next().is_some_and(|f| f.is_ascii_uppercase() || f == '_')
        && c.all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
}

/// Shell functions shared by every step of a batch. Builtins where possible: a step costs few
/// processes beyond its own.
const FUNCTIONS: &str = r#"umask 077
# existing ATTEMPT: report an attempt that exists already (0), or say it must start (1).
existing() {
  # Whatever attempt it is, a live process in this directory is never started beside: attach.
  p=; [ -f pid ] && read -r p < pid
  if [ -n "$p" ] && [ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$(pwd -P)" ]; then
    printf '\036KSW-ATTACH\n'
    tail -n +1 -s 0.2 -f --pid="$p" log
    return 0
  fi
  # A later attempt than asked for is one a run whose journal lost its last records started.
  a=; [ -f attempt ] && read -r a < attempt
  [ -n "$a" ] && [ "$a" -ge "$1" ] 2>/dev/null || return 1
  # rc is written before the step's process ends, in one go: with no live process, it is final.
  if [ -s rc ]; then printf '\036KSW-DONE\n'; return 0; fi
  return 1
}
# start ATTEMPT TIMEOUT INTERPRETER: run the step in a session of its own, its log through tee.
start() {
  if [ -e rc ] || [ -e pid ]; then rm -f rc pid; fi
  [ -f log ] && mv log log.prev
  : > log; : > out
  # The env file (it may hold secrets other steps published) is emptied once the step read it.
  printf '( . ./env; : > env; [ -f ../outputs.env ] && . ../outputs.env; timeout -k 10 %s %s < /dev/null; echo $? > rc ) 2>&1 | tee -p -a log\n' "$2" "$3" > wrap
  echo "$1" > attempt
  setsid sh ./wrap < /dev/null 2>&1 &
  echo $! > pid
  wait $!
}
# finish: report the exit code and outputs; 0 when the step succeeded.
finish() {
  if [ ! -s rc ]; then printf '\036KSW-LOST the step ended without an exit code\n'; return 1; fi
  c=; read -r c < rc
  # Outputs first, the exit code last: a step is complete only once its exit code arrived.
  while IFS= read -r o || [ -n "$o" ]; do printf '\036KSW-OUT %s\n' "$o"; done < out
  printf '\036KSW-RC %s\n' "$c"
  [ "$c" = 0 ] || return 1
  # Later steps on this node see the values at once, as environment, without interpolation.
  [ -s out ] && sed -n "/^KSW_/d; s/'/'\\\\''/g; s/^\([A-Z_][A-Z0-9_]*\)=\(.*\)$/export \1='\2'/p" out >> ../outputs.env
  return 0
}
"#;

/// What kswizard learns of a node before its steps, as `KSW-FACT key=value` lines; mostly shell
/// builtins, as it runs on every node. `uid` proves that sudo works.
pub const FACTS: &str = r#". /etc/os-release 2>/dev/null
printf '\036KSW-FACT os=%s\n' "${PRETTY_NAME:-unknown}"
printf '\036KSW-FACT cpus=%s\n' "$(nproc 2>/dev/null)"
while read -r k v _; do [ "$k" = MemTotal: ] && { printf '\036KSW-FACT mem=%s\n' $((v / 1024)); break; }; done < /proc/meminfo
df -Pm / 2>/dev/null | { read -r _; read -r _ _ _ a _; printf '\036KSW-FACT disk=%s\n' "$a"; }
printf '\036KSW-FACT uid=%s\n' "$(id -u)"
"#;

/// The shell text that runs (or re-attaches to) consecutive steps of one node, in order,
/// stopping at the first that fails. One SSH command for the lot: a no-op step costs a few
/// milliseconds, not a round trip.
/// With `facts`, the node's facts come first (saving the node a command of its own).
pub fn launcher(install_id: &str, steps: &[Launch], facts: bool) -> String {
    let root = install_dir(install_id);
    let mut text = String::from(FUNCTIONS);
    if facts {
        text.push_str(FACTS);
    }
    let dirs: Vec<String> = steps
        .iter()
        .map(|l| sh_quote(&format!("{root}/{}", l.step)))
        .collect();
    text.push_str(&format!(
        "mkdir -p {} || {{ printf '\\036KSW-FAIL cannot create the step directories under %s: a step with become: false needs write access there\\n' {}; exit 0; }}\n",
        dirs.join(" "),
        sh_quote(&root)
    ));
    for l in steps {
        let dir = format!("{root}/{}", l.step);
        let mut env = String::new();
        for (k, v) in l.env {
            env.push_str(&format!("export {k}={}\n", sh_quote(v)));
        }
        env.push_str(&format!(
            "export KSW_OUTPUT={}\nexport KSW_STATE={}\n",
            sh_quote(&format!("{dir}/out")),
            sh_quote(&root)
        ));
        let body = if l.body.ends_with('\n') {
            l.body.to_string()
        } else {
            format!("{}\n", l.body)
        };
        // A script with a #! line chooses its interpreter (bash for pipefail, python, ...).
        let interpreter = if body.starts_with("#!") {
            "./script"
        } else {
            "'sh ./script'"
        };
        // printf is a shell builtin: writing the files costs no process.
        let chmod = if body.starts_with("#!") {
            "chmod 700 script\n"
        } else {
            ""
        };
        text.push_str(&format!(
            r#"cd {dir} || {{ printf '\036KSW-FAIL cannot enter %s\n' {dir}; exit 0; }}
printf '\036KSW-BEGIN %s\n' {step}
if ! existing {attempt}; then
printf '%s' {body} > script
{chmod}printf '%s' {env} > env
start {attempt} {timeout} {interpreter}
fi
finish || exit 0
"#,
            dir = sh_quote(&dir),
            step = sh_quote(l.step),
            body = sh_quote(&body),
            env = sh_quote(&env),
            attempt = l.attempt,
            timeout = l.timeout,
        ));
    }
    text
}

/// One line of the runner's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The next step of the batch begins (or is re-attached to, or reported from the node).
    Begin(String),
    Log(String),
    Attached,
    AlreadyDone,
    Exit(i32),
    Output(String, String),
    /// The step's process vanished without an exit code (the node rebooted, someone killed it).
    Vanished(String),
    /// The runner could not set the step up on the node; the text says why.
    Failed(String),
    /// A fact about the node (`FACTS`).
    Fact(String, String),
}

pub fn parse_line(line: &str) -> Line {
    let Some(rest) = line.strip_prefix(MARK) else {
        return Line::Log(line.to_string());
    };
    if let Some(rc) = rest.strip_prefix("KSW-RC ") {
        return Line::Exit(rc.trim().parse().unwrap_or(-1));
    }
    if let Some(step) = rest.strip_prefix("KSW-BEGIN ") {
        return Line::Begin(step.to_string());
    }
    if let Some(kv) = rest.strip_prefix("KSW-OUT ") {
        return match kv.split_once('=') {
            Some((k, v)) => Line::Output(k.trim().to_string(), v.to_string()),
            None => Line::Log(kv.to_string()),
        };
    }
    if let Some(why) = rest.strip_prefix("KSW-LOST ") {
        return Line::Vanished(why.to_string());
    }
    if let Some(kv) = rest.strip_prefix("KSW-FACT ") {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        return Line::Fact(k.to_string(), v.to_string());
    }
    if let Some(why) = rest.strip_prefix("KSW-FAIL ") {
        return Line::Failed(why.to_string());
    }
    match rest {
        "KSW-ATTACH" => Line::Attached,
        "KSW-DONE" => Line::AlreadyDone,
        // A step's own line that happens to start with the separator (`jq --seq`, ...).
        _ => Line::Log(line.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Run the launcher locally against a temp dir standing in for /var/lib/kswizard.
    fn run_local(root: &std::path::Path, steps: &[Launch]) -> Vec<Line> {
        let text = launcher("i1", steps, false).replace(STATE_ROOT, &root.display().to_string());
        let out = Command::new("sh").arg("-c").arg(text).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(parse_line)
            .collect()
    }

    fn step<'a>(
        id: &'a str,
        attempt: u32,
        body: &'a str,
        env: &'a [(String, String)],
    ) -> Launch<'a> {
        Launch {
            step: id,
            attempt,
            timeout: 30,
            body,
            env,
        }
    }

    #[test]
    fn runs_a_batch_in_order_hands_outputs_on_and_stops_at_a_failure() {
        let root = tempfile::tempdir().unwrap();
        let count = root.path().join("count");
        let b1 = format!(
            "echo hello; echo \"$GREETING\"; echo one >> {c}; echo 'JOIN=kubeadm join x --token a=b' >> \"$KSW_OUTPUT\"",
            c = count.display()
        );
        let b2 = format!(
            "#!/bin/bash\nset -o pipefail\necho \"got $JOIN\"; echo two >> {}; exit 3",
            count.display()
        );
        let b3 = format!("echo three >> {}", count.display());
        let env = vec![("GREETING".to_string(), "it's $HOME `x`".to_string())];
        let batch = [
            step("s1", 1, &b1, &env),
            step("s2", 1, &b2, &[]),
            step("s3", 1, &b3, &[]),
        ];
        let lines = run_local(root.path(), &batch);
        assert_eq!(
            lines,
            vec![
                Line::Begin("s1".into()),
                Line::Log("hello".into()),
                Line::Log("it's $HOME `x`".into()),
                Line::Output("JOIN".into(), "kubeadm join x --token a=b".into()),
                Line::Exit(0),
                Line::Begin("s2".into()),
                Line::Log("got kubeadm join x --token a=b".into()),
                Line::Exit(3),
            ]
        );
        // The same attempts again: reported from the node, not run again.
        let again = run_local(root.path(), &batch);
        let s1_again = [
            Line::Begin("s1".into()),
            Line::AlreadyDone,
            Line::Output("JOIN".into(), "kubeadm join x --token a=b".into()),
            Line::Exit(0),
        ];
        assert_eq!(again[..4], s1_again);
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "one\ntwo\n");
        // The next attempt of s2 runs it again, and s3 after it.
        let retry = run_local(
            root.path(),
            &[step("s2", 2, &b2, &[]), step("s3", 1, &b3, &[])],
        );
        assert_eq!(retry.last(), Some(&Line::Exit(3)));
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "one\ntwo\ntwo\n");
    }

    #[test]
    fn timeout_is_enforced_on_the_node() {
        let root = tempfile::tempdir().unwrap();
        let t = std::time::Instant::now();
        let lines = run_local(
            root.path(),
            &[Launch {
                timeout: 1,
                ..step("slow", 1, "sleep 30", &[])
            }],
        );
        assert_eq!(lines, vec![Line::Begin("slow".into()), Line::Exit(124)]);
        assert!(t.elapsed().as_secs() < 20);
    }

    #[test]
    fn facts_are_read_with_builtins_and_come_first() {
        let out = Command::new("sh").arg("-c").arg(FACTS).output().unwrap();
        let facts: Vec<Line> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(parse_line)
            .collect();
        let keys: Vec<&str> = facts
            .iter()
            .map(|l| match l {
                Line::Fact(k, v) => {
                    assert!(!v.is_empty(), "{k} is empty");
                    k.as_str()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, ["os", "cpus", "mem", "disk", "uid"]);
        assert!(launcher("i", &[], true).contains("KSW-FACT uid="));
    }

    #[test]
    fn env_names_and_quoting() {
        assert!(is_env_name("KSW_JOIN_1"));
        assert!(
            is_secret_name("ETCD_CA_KEY")
                && is_secret_name("JOIN_TOKEN")
                && is_secret_name("TOKEN")
        );
        assert!(
            !is_secret_name("ETCD_CA_CRT")
                && !is_secret_name("KEYS_DIR")
                && !is_secret_name("JOIN_CA_HASH")
        );
        assert!(!is_env_name("1X") && !is_env_name("a") && !is_env_name("A-B") && !is_env_name(""));
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(
            parse_line("\u{1e}KSW-LOST gone"),
            Line::Vanished("gone".into())
        );
    }
}
