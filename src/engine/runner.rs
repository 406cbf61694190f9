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

pub struct Launch<'a> {
    pub install_id: &'a str,
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

/// A heredoc delimiter that does not occur in `body`.
fn delimiter(body: &str) -> String {
    let mut d = String::from("KSW_EOF");
    while body.lines().any(|l| l == d) {
        d.push('_');
    }
    d
}

pub fn step_dir(install_id: &str, step: &str) -> String {
    format!("{STATE_ROOT}/{install_id}/{step}")
}

pub fn is_env_name(k: &str) -> bool {
    let mut c = k.chars();
    c.next().is_some_and(|f| f.is_ascii_uppercase() || f == '_')
        && c.all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
}

/// The shell text that runs (or re-attaches to) one attempt of a step.
pub fn launcher(l: &Launch) -> String {
    let dir = step_dir(l.install_id, l.step);
    let mut env = String::new();
    for (k, v) in l.env {
        env.push_str(&format!("export {k}={}\n", sh_quote(v)));
    }
    env.push_str(&format!(
        "export KSW_OUTPUT={}\nexport KSW_STATE={}\n",
        sh_quote(&format!("{dir}/out")),
        sh_quote(&format!("{STATE_ROOT}/{}", l.install_id))
    ));
    let body = if l.body.ends_with('\n') {
        l.body.to_string()
    } else {
        format!("{}\n", l.body)
    };
    let d1 = delimiter(&body);
    let d2 = delimiter(&env);
    format!(
        r#"umask 077
D={dir}
mkdir -p "$D" || exit 97
cd "$D" || exit 97
A={attempt}
emit() {{
  printf '\036KSW-RC %s\n' "$(cat rc)"
  while IFS= read -r o; do printf '\036KSW-OUT %s\n' "$o"; done < out
  exit 0
}}
if [ "$(cat attempt 2>/dev/null)" = "$A" ]; then
  if [ -f rc ]; then printf '\036KSW-DONE\n'; emit; fi
  p=$(cat pid 2>/dev/null)
  if [ -n "$p" ] && [ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$D" ]; then
    printf '\036KSW-ATTACH\n'
    tail -n +1 -s 0.2 -f --pid="$p" log
    [ -f rc ] && emit
  fi
fi
rm -f rc rc.tmp pid
[ -f log ] && mv log log.prev
: > log; : > out
cat > script <<'{d1}'
{body}{d1}
chmod 700 script
cat > env <<'{d2}'
{env}{d2}
cat > wrap <<'KSW_WRAP'
( . ./env; timeout -k 10 {timeout} {interpreter} < /dev/null; echo $? > rc.tmp ) 2>&1 | tee -p -a log
mv rc.tmp rc
KSW_WRAP
echo "$A" > attempt
setsid nohup sh ./wrap < /dev/null 2>&1 &
echo $! > pid
wait $!
[ -f rc ] && emit
printf '\036KSW-LOST the step ended without an exit code\n'
exit 0
"#,
        dir = sh_quote(&dir),
        attempt = l.attempt,
        timeout = l.timeout,
        // A script with a #! line chooses its interpreter (bash for pipefail, python, ...).
        interpreter = if body.starts_with("#!") {
            "./script"
        } else {
            "sh ./script"
        },
    )
}

/// One line of the runner's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Log(String),
    Attached,
    AlreadyDone,
    Exit(i32),
    Output(String, String),
    /// The step's process vanished without an exit code (the node rebooted, someone killed it).
    Vanished(String),
}

pub fn parse_line(line: &str) -> Line {
    let Some(rest) = line.strip_prefix(MARK) else {
        return Line::Log(line.to_string());
    };
    if let Some(rc) = rest.strip_prefix("KSW-RC ") {
        return Line::Exit(rc.trim().parse().unwrap_or(-1));
    }
    if let Some(kv) = rest.strip_prefix("KSW-OUT ") {
        return match kv.split_once('=') {
            Some((k, v)) => Line::Output(k.trim().to_string(), v.to_string()),
            None => Line::Log(kv.to_string()),
        };
    }
    match rest {
        "KSW-ATTACH" => Line::Attached,
        "KSW-DONE" => Line::AlreadyDone,
        _ => Line::Vanished(rest.strip_prefix("KSW-LOST ").unwrap_or(rest).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Run the launcher locally against a temp dir standing in for /var/lib/kswizard.
    fn run_local(root: &std::path::Path, l: &Launch) -> Vec<Line> {
        let text = launcher(l).replace(STATE_ROOT, &root.display().to_string());
        let out = Command::new("sh").arg("-c").arg(text).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(parse_line)
            .collect()
    }

    #[test]
    fn runs_a_step_detached_collects_outputs_and_reattaches_without_rerunning() {
        let root = tempfile::tempdir().unwrap();
        let counter = root.path().join("count");
        let body = format!(
            "echo hello; echo \"$GREETING\"; echo run >> {}; echo 'JOIN=kubeadm join x --token a=b' >> \"$KSW_OUTPUT\"; exit 3",
            counter.display()
        );
        let env = vec![("GREETING".to_string(), "it's $HOME `x`".to_string())];
        let l = Launch {
            install_id: "i1",
            step: "s1",
            attempt: 1,
            timeout: 30,
            body: &body,
            env: &env,
        };
        let lines = run_local(root.path(), &l);
        assert_eq!(
            lines,
            vec![
                Line::Log("hello".into()),
                Line::Log("it's $HOME `x`".into()),
                Line::Exit(3),
                Line::Output("JOIN".into(), "kubeadm join x --token a=b".into()),
            ]
        );
        // The same attempt again: reported from the node, not run again.
        let again = run_local(root.path(), &l);
        assert_eq!(again[0], Line::AlreadyDone);
        assert_eq!(again[1], Line::Exit(3));
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n");
        // The next attempt runs it again.
        let retry = run_local(root.path(), &Launch { attempt: 2, ..l });
        assert_eq!(
            retry.last(),
            Some(&Line::Output(
                "JOIN".into(),
                "kubeadm join x --token a=b".into()
            ))
        );
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\nrun\n");
    }

    #[test]
    fn timeout_is_enforced_on_the_node() {
        let root = tempfile::tempdir().unwrap();
        let l = Launch {
            install_id: "i",
            step: "slow",
            attempt: 1,
            timeout: 1,
            body: "sleep 30",
            env: &[],
        };
        let t = std::time::Instant::now();
        let lines = run_local(root.path(), &l);
        assert_eq!(lines, vec![Line::Exit(124)]);
        assert!(t.elapsed().as_secs() < 20);
    }

    #[test]
    fn env_names_and_quoting() {
        assert!(is_env_name("KSW_JOIN_1"));
        assert!(!is_env_name("1X") && !is_env_name("a") && !is_env_name("A-B") && !is_env_name(""));
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(
            parse_line("\u{1e}KSW-LOST gone"),
            Line::Vanished("gone".into())
        );
    }
}
