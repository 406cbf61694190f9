//! What can happen to the UI state (`Action`, from keys or from finished effects) and what the
//! state asks the outside world to do (`Effect`). Both are plain data so `update` stays pure.

use std::path::PathBuf;

use super::input::Edit;
use super::state::{Disk, Screen};
use crate::conf::Source;
use crate::engine::events::{Event, Facts, Summary};
use crate::lb_status::LbStatus;
use crate::model::Cluster;

#[derive(Debug, Clone)]
pub enum Action {
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    NextField,
    PrevField,
    /// Enter: choose, submit, or go to the next screen.
    Confirm,
    /// Esc: close, cancel, or go to the previous screen.
    Back,
    /// Space.
    Toggle,
    Help,
    Add,
    AddRange,
    AddPaste,
    Delete,
    Edit,
    Preset,
    /// `t` on Roles: etcd stacked on the masters, or external.
    EtcdTopology,
    /// `t`: test SSH (and sudo) to the selected host.
    TestSsh,
    /// `i` on Review (or on Install after a failure): install, or resume the unfinished install.
    Install,
    GoTo(Screen),
    Save,
    Quit,
    /// Ctrl-C: asks first; a second Ctrl-C while asking quits.
    Interrupt,
    /// The terminal's size (columns, rows), at start and on every resize.
    Resized(u16, u16),
    /// y / n to a question.
    Answer(bool),
    /// `f` on Install: the log pane full width (the LB panel hidden), or back.
    WideLog,
    /// `n` on Install: select the next failed node (after the selected one, wrapping around).
    NextFailed,
    /// `c` on Preflight: continue anyway after warnings.
    ContinueAnyway,
    /// The install found preflight warnings and waits for `ContinueAnyway` or Esc.
    PreflightAsked,
    /// `/` on Install: type the text to search the log for.
    SearchLog,
    /// `[` (true: an older line) or `]` (a newer one) on Install: the next match of the search.
    NextMatch(bool),
    /// `L` on Install: the selected node's current (or last) step's whole log, full screen.
    FullLog,
    /// `F` on Install: show all nodes, only failed ones, only running ones.
    FilterNodes,
    /// The clock, seconds since the epoch (once a second while an install runs).
    Tick(u64),
    /// What the install's timing starts from: the steps' durations in the journal, and each
    /// plan step's timeout (seconds).
    History {
        history: crate::engine::eta::History,
        timeouts: std::collections::HashMap<String, u64>,
    },
    /// A step's log file was read (its lines), or why not.
    LogRead {
        path: PathBuf,
        lines: Result<Vec<String>, String>,
    },
    /// `r` / `s` / `a` / `A` on Install: a decision about the selected failed node.
    Decide(super::decision::Choice),
    /// On a complete install's question: run everything again, or only what changed.
    Rerun(Rerun),
    /// What an install would run, looked up for the question `i` asks (or why it cannot).
    InstallPreviewed(Result<Box<crate::engine::executor::Preview>, String>),
    Text(Edit),
    /// The conf directory was read (at start).
    Loaded(Box<Result<Disk, String>>),
    /// An SSH test ended: the host's facts, or why it cannot be used.
    Tested {
        host: String,
        result: Result<Facts, String>,
    },
    /// The files were written (and read back), or why not; `written` is the cluster as it was
    /// when the write was asked for (edits made meanwhile are not saved yet).
    Saved {
        outcome: Box<Result<Disk, String>>,
        written: Box<Cluster>,
    },
    /// The remove pre-check of an installed host the operator deletes: what it found, or why
    /// the host cannot be removed (quorum).
    RemovePrepared {
        node: String,
        check: Result<String, String>,
    },
    /// `o` on Hosts, Review and Done: the day-2 operations (etcd backup, restore, reset).
    Operations,
    /// `F` in the restore's question: restore although etcd has quorum (y then restores).
    ForceRestore,
    /// The backups under the state dir, newest first, as listed at `now` (seconds since the
    /// epoch, for their ages), or why they cannot be.
    BackupsListed {
        now: u64,
        list: Result<Vec<crate::ops::etcd_io::Backup>, String>,
    },
    /// The restore's check of `backup`: what it loses, whether it is refused, or why it cannot.
    RestoreChecked {
        backup: PathBuf,
        check: Result<super::ops::RestoreCheck, String>,
    },
    /// The backup operation's snapshot is kept on the taskbox (before its `InstallEnded`).
    BackedUp(Box<super::ops::Kept>),
    /// One event of the running install, forwarded as the engine sent it.
    Engine(Box<Event>),
    /// The install returned: its summary, or why it could not run.
    InstallEnded(Result<Summary, String>),
    /// A probe of the LB frontend and the masters' apiservers (and, built-in, the VIP and each
    /// haproxy) ended.
    /// Boxed: the largest result by far.
    LbProbed(Box<LbStatus>),
}

/// I/O `update` wants done; the run loop does it off the UI path and reports back with an action.
#[derive(Debug, Clone)]
pub enum Effect {
    Load(PathBuf),
    /// Connect to the host, check sudo and gather its facts; host keys go to `known_hosts` in
    /// the state dir of the conf directory `dir` (found by the effect: it looks at the disk).
    TestSsh {
        host: Box<crate::model::Host>,
        dir: PathBuf,
    },
    Save {
        cluster: Box<Cluster>,
        source: Box<Source>,
        dir: PathBuf,
    },
    /// Run (or resume) the install of `cluster` with the plan and state dir found from `dir`;
    /// reports every engine event, then `InstallEnded`.
    /// Look up what an install would run (the plan, the journal), without running anything.
    PreviewInstall {
        cluster: Box<Cluster>,
        dir: PathBuf,
    },
    Install {
        cluster: Box<Cluster>,
        dir: PathBuf,
        /// Start over (`--restart`), or go on with a complete install to run only what changed
        /// (`--resume`); neither: an unfinished install goes on, otherwise a new one starts.
        restart: bool,
        resume: bool,
    },
    /// Check that `node` can leave the cluster of `dir` (`ops::remove`), without changing
    /// anything; reports `RemovePrepared`.
    PrepareRemove {
        cluster: Box<Cluster>,
        dir: PathBuf,
        node: String,
    },
    /// Take `node` out of the cluster: the remove operation, run like the install (events, then
    /// `InstallEnded`); when it ends well the conf is written without it (`source` keeps the
    /// files' layout; `Saved` reports it) and the installed record drops it.
    Remove {
        cluster: Box<Cluster>,
        source: Box<Source>,
        dir: PathBuf,
        node: String,
    },
    /// List the backups under the state dir of the conf directory; reports `BackupsListed`.
    ListBackups(PathBuf),
    /// Before a restore from `backup`: `ops::etcd_io::check_restore` (the unfinished restore of
    /// another snapshot refused, the cluster's health, what is lost); reports `RestoreChecked`.
    CheckRestore {
        cluster: Box<Cluster>,
        dir: PathBuf,
        backup: PathBuf,
    },
    /// Run the day-2 operation `op` (backup, restore, reset) like the install (events, then
    /// `InstallEnded`), and what the command does after it: the backup kept (`BackedUp`), the
    /// reset recorded. `force`: a restore although etcd has quorum.
    RunOp {
        cluster: Box<Cluster>,
        dir: PathBuf,
        op: super::install::Operation,
        force: bool,
    },
    /// The answer to the install's "continue anyway?" after preflight warnings.
    AnswerPreflight(bool),
    /// Tell the time (`Action::Tick`) after this long.
    Tick(std::time::Duration),
    /// Read a step's whole log from the taskbox (`engine::step_logs`).
    ReadLog(PathBuf),
    /// Hand the operator's decision to the running install (`executor::install_with`).
    Command(crate::engine::control::Command),
    /// Probe the LB after `after` (the Install screen asks again each time a probe ends); the
    /// built-in LB's SSH host keys are those of the state dir of the conf directory `dir`.
    ProbeLb {
        cluster: Box<Cluster>,
        dir: PathBuf,
        after: std::time::Duration,
    },
}

/// What to run again when the last install is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rerun {
    /// Every step, from the start (a new install).
    All,
    /// Only the steps whose content or configuration changed since.
    Changed,
}
