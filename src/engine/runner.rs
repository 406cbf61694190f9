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
    /// The step's fingerprint (`Step::fingerprint`): an attempt found on the node with another
    /// one is an earlier version of the step, never taken for this one.
    pub fp: &'a str,
    pub timeout: u64,
    pub body: &'a str,
    /// Environment for the step, already checked to have shell-safe names.
    pub env: &'a [(String, String)],
}

/// Single-quote for sh: no expansion of any kind inside.
pub fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

pub fn install_dir(root: &str, install_id: &str) -> String {
    format!("{root}/{install_id}")
}

/// Shell functions shared by every step of a batch. Builtins where possible: a step costs few
/// processes beyond its own.
///
/// Every line of a step's output reaches kswizard behind `|` (the `sed` after `tee`), so a
/// step can never print a line that starts with the runner's marker: its own lines cannot speak
/// for the runner.
const FUNCTIONS: &str = r#"umask 077
# begin ATTEMPT HOW: the step's first line to kswizard.
begin() { printf '\036KSW-BEGIN %s %s %s\n' "$step" "$1" "$2"; }
# existing ATTEMPT FP: report or re-attach to an attempt that exists already (0), or set $next
# to the attempt to start (1).
existing() {
  next=$1
  a=; [ -f attempt ] && read -r a < attempt
  f=; [ -f fp ] && read -r f < fp
  # A live process in this directory is never started beside.
  p=; [ -f pid ] && read -r p < pid
  if [ -n "$p" ] && [ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$(pwd -P)" ]; then
    if [ "$f" = "$2" ]; then
      begin "$a" attach
      tail -n +1 -s 0.2 -f --pid="$p" log | sed -u 's/^/|/'
      return 0
    fi
    # An earlier version of the step still runs: let it end, then run this one.
    printf '|kswizard: attempt %s of an earlier version of this step is still running; waiting for it to end\n' "$a"
    tail -n 0 -s 0.2 -f --pid="$p" /dev/null
  fi
  [ -n "$a" ] && [ "$a" -ge "$1" ] 2>/dev/null || return 1
  # An attempt at least as late as the one asked for was started by a run whose journal lost
  # its record. rc is written in one go once the step is over: with no live process, it is final.
  if [ "$f" = "$2" ] && [ -s rc ]; then begin "$a" done; return 0; fi
  next=$((a + 1))
  if [ "$f" = "$2" ]; then
    printf '|kswizard: attempt %s ended without an exit code (the node restarted, or the step was killed); running it again as attempt %s\n' "$a" "$next"
  fi
  return 1
}
# start ATTEMPT TIMEOUT INTERPRETER FP: run the step in a session of its own. timeout puts the
# step in a process group of its own and, at the deadline, signals the whole group (children
# that kept the output open too); --verbose leaves a trace in `tmo` that tells a timeout (even
# one that needed KILL) from a step killed by someone else. The outer shell outlives the group to
# write rc.
start() {
  if [ -e rc ] || [ -e pid ] || [ -e code ]; then rm -f rc pid tmo code; fi
  if [ -f log ]; then mv log log.prev; fi
  : > log; : > out
  # The env file (it may hold secrets) is emptied once the step read it.
  # The runner's own files are private (umask 077: env and out may hold secrets); the step runs
  # with the usual 022 and writes its key files 0600 itself.
  # wrap ignores TERM (and so do tee and sed), the step does not: at the deadline the step's
  # processes get TERM; any that ignore it keep the output open, so wrap lives on until timeout's
  # KILL for the whole group 10 s later. The step is over only when all of it is.
  printf 'exec 2>/dev/null; trap "" TERM\n{ trap - TERM; umask 022; . ./env; : > env; %s < /dev/null 2>&1; echo $? > code; } 2>&1 | tee -p -a log | sed -u "s/^/|/"\n' "$3" > wrap
  echo "$1" > attempt
  echo "$4" > fp
  begin "$1" start
  # timeout's KILL reaches every process of its group at once, but they die in their own time:
  # after a timeout the step is over once its group is gone (bounded, should a zombie linger).
  setsid sh -c 'timeout --verbose -k 10 "$1" sh ./wrap 2> tmo & t=$!; wait $t; c=$?; if [ -s tmo ]; then c=124; n=0; while kill -0 "-$t" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done; elif [ -s code ]; then read -r c < code; fi; echo "$c" > rc' sh "$2" < /dev/null &
  echo $! > pid
  wait $!
}
# finish: report the outputs and the exit code; 0 when the step succeeded.
finish() {
  # A step's last line may lack its newline: the markers start on a line of their own.
  printf '\n'
  if [ ! -s rc ]; then printf '\036KSW-LOST the step ended without an exit code\n'; return 1; fi
  c=; read -r c < rc
  # Outputs first, the exit code last: a step is complete only once its exit code arrived.
  while IFS= read -r o || [ -n "$o" ]; do printf '\036KSW-OUT %s\n' "$o"; done < out
  printf '\036KSW-RC %s\n' "$c"
  [ "$c" = 0 ]
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
/// milliseconds, not a round trip. Steps live under `root` (`STATE_ROOT` on real nodes).
/// With `facts`, the node's facts come first (saving the node a command of its own).
pub fn launcher(root: &str, install_id: &str, steps: &[Launch], facts: bool) -> String {
    let root = install_dir(root, install_id);
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
            "sh ./script"
        };
        // printf is a shell builtin: writing the files costs no process.
        let chmod = if body.starts_with("#!") {
            "chmod 700 script\n"
        } else {
            ""
        };
        text.push_str(&format!(
            r#"cd {dir} || {{ printf '\036KSW-FAIL cannot enter %s\n' {dir}; exit 0; }}
step={step}
if ! existing {attempt} {fp}; then
printf '%s' {body} > script
{chmod}printf '%s' {env} > env
start "$next" {timeout} {interpreter} {fp}
fi
finish || exit 0
"#,
            dir = sh_quote(&dir),
            step = sh_quote(l.step),
            body = sh_quote(&body),
            env = sh_quote(&env),
            attempt = l.attempt,
            fp = sh_quote(l.fp),
            interpreter = sh_quote(interpreter),
            timeout = l.timeout,
        ));
    }
    text
}

/// How the node took a step it was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Started now.
    Start,
    /// Already running (an earlier run started it): its log is followed to its end.
    Attach,
    /// Already over (an earlier run ran it): its exit code and outputs are reported.
    Done,
}

/// One line of the runner's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A step of the batch begins: which attempt the node runs, and how.
    Begin {
        step: String,
        attempt: u32,
        how: How,
    },
    /// A line of the step's output, or of the runner's own shell.
    Log(String),
    Exit(i32),
    Output(String, String),
    /// The step's process vanished without an exit code (the node rebooted, someone killed it).
    Vanished(String),
    /// The runner could not set the step up on the node; the text says why.
    Failed(String),
    /// A fact about the node (`FACTS`).
    Fact(String, String),
    /// Nothing: the blank line before the markers.
    Blank,
}

pub fn parse_line(line: &str) -> Line {
    if let Some(log) = line.strip_prefix('|') {
        return Line::Log(log.to_string());
    }
    if line.is_empty() {
        return Line::Blank;
    }
    let Some(rest) = line.strip_prefix(MARK) else {
        // The runner's own shell (an error of tail, sed, ...): shown, never a marker.
        return Line::Log(line.to_string());
    };
    if let Some(rc) = rest.strip_prefix("KSW-RC ") {
        // A line torn by a lost connection is no exit code: the reconnect reads the real one.
        return rc
            .trim()
            .parse()
            .map_or_else(|_| Line::Log(line.to_string()), Line::Exit);
    }
    if let Some(b) = rest.strip_prefix("KSW-BEGIN ") {
        let mut it = b.split(' ');
        let how = match (it.next(), it.next().map(str::parse::<u32>), it.next()) {
            (Some(step), Some(Ok(attempt)), Some(how)) => {
                let how = match how {
                    "start" => How::Start,
                    "attach" => How::Attach,
                    "done" => How::Done,
                    _ => return Line::Log(line.to_string()),
                };
                (step.to_string(), attempt, how)
            }
            _ => return Line::Log(line.to_string()),
        };
        return Line::Begin {
            step: how.0,
            attempt: how.1,
            how: how.2,
        };
    }
    if let Some(kv) = rest.strip_prefix("KSW-OUT ") {
        // A line without '=' is an output without a name, never a log line: it may be part of a
        // secret value.
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        return Line::Output(k.trim().to_string(), v.to_string());
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
    Line::Log(line.to_string())
}

#[cfg(test)]
mod tests;
