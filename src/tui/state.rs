//! Everything the screens show, in one value. Only `update` changes it; rendering only reads it.

use std::path::PathBuf;

use super::diff;
use super::form::Form;
use super::input::Input;
use super::install::Install;
use super::theme::Theme;
use crate::conf::{self, Source};
use crate::engine::installed::{self, Change, Installed};
use crate::model::{Cluster, LoadBalancer};
use crate::validate::{Finding, Severity, validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    Start,
    Hosts,
    Roles,
    LoadBalancer,
    Review,
    /// Reached only by starting an install from Review, so not in `ALL` (no digit, no tab).
    Install,
    /// The preflight table, shown while preflight runs and after it stops the install.
    Preflight,
    Done,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Start,
        Screen::Hosts,
        Screen::Roles,
        Screen::LoadBalancer,
        Screen::Review,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Start => "Start",
            Screen::Hosts => "Hosts",
            Screen::Roles => "Roles",
            Screen::LoadBalancer => "Load balancer",
            Screen::Review => "Review",
            // Preflight is the install's first stage: the title bar says Install (and has no
            // room for more).
            Screen::Install | Screen::Preflight => "Install",
            Screen::Done => "Done",
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }

    #[must_use]
    pub fn next(self) -> Screen {
        Screen::ALL[(self.index() + 1).min(Screen::ALL.len() - 1)]
    }

    #[must_use]
    pub fn prev(self) -> Screen {
        Screen::ALL[self.index().saturating_sub(1)]
    }

    /// The screen where the finding's field is edited (`host.*`, `roles.*`, `lb.*`).
    pub fn of_field(field: &str) -> Screen {
        match field.split('.').next() {
            Some("roles") => Screen::Roles,
            Some("lb") => Screen::LoadBalancer,
            _ => Screen::Hosts,
        }
    }
}

/// The conf directory as read: its source (for patching common.yaml), the cluster its hosts.ini
/// describes (none when there is no hosts.ini), and the current text of each file kswizard
/// writes, to diff against.
#[derive(Debug, Clone)]
pub struct Disk {
    pub source: Source,
    pub cluster: Option<Cluster>,
    pub files: Vec<(String, String)>,
    /// The last install started from this conf directory: unfinished?, and its progress in a line.
    pub install: Option<(bool, String)>,
    /// The cluster as installed (`<state>/installed.json`): none before a complete install, or
    /// why the record cannot be read.
    pub installed: Result<Option<Installed>, String>,
    /// Day-2 operations that did not end, or why their journals cannot be read.
    pub unfinished: Result<Vec<crate::ops::unfinished::Unfinished>, String>,
}

/// The Start screen's choices; only those that work are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartChoice {
    Open,
    New,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Quit {
        unsaved: bool,
    },
    DeleteHost(usize),
    /// Delete an installed host: take it out of the cluster (the remove operation on the
    /// Install screen), then write the conf without it. `check` is what the pre-check found
    /// (the etcd quorum arithmetic), or why it refuses: then the box only says so.
    RemoveNode {
        node: String,
        check: Result<String, String>,
    },
    /// Write although warnings remain (errors are never overridable).
    WriteWithWarnings(usize),
    /// Open or start over, dropping unsaved changes.
    Replace(StartChoice),
    /// Install: what it would run, as looked up on disk.
    Install(Box<crate::engine::executor::Preview>),
    /// Install on a cluster installed before, with hosts added to the conf: only their steps
    /// and the re-wiring steps run.
    AddHosts {
        nodes: Vec<String>,
        preview: Box<crate::engine::executor::Preview>,
    },
    /// Quit while the install runs (it stops; steps already running go on on the nodes).
    StopInstall,
    /// Abort the running install (`A`): running steps finish, no node starts another.
    AbortInstall,
}

/// Where the wizard opens once the files are read, instead of the Start screen, and what its
/// status line says there: the demo opens the lab's conf at Review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub screen: Screen,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    Form(Form),
    Confirm(Confirm),
    /// The day-2 operations dialog (`o`).
    Ops(super::ops::Dialog),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Ok,
    Error,
}

/// "Not written: 1 error remains (see Review)." / "...: 2 errors remain (see Review)."
fn refusal(what: &str, n: usize) -> String {
    format!(
        "{what}: {n} error{} remain{} (see Review).",
        if n == 1 { "" } else { "s" },
        if n == 1 { "s" } else { "" },
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub text: String,
    /// A refusal because errors remain ("Not written", "Not installing"): its count follows the
    /// findings as they change, so it never states a number that is no longer true.
    pub refused: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbField {
    Mode,
    Address,
    Port,
    Domain,
}

impl LbField {
    pub const ALL: [LbField; 4] = [
        LbField::Mode,
        LbField::Address,
        LbField::Port,
        LbField::Domain,
    ];
}

/// A Load balancer field being typed into; `original` is restored on Esc.
#[derive(Debug, Clone, PartialEq)]
pub struct LbEdit {
    pub input: Input,
    pub original: LoadBalancer,
    pub error: Option<String>,
}

/// One file's diff on the Review screen.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDiff {
    pub name: String,
    pub lines: Vec<diff::Line>,
}

/// The inputs of the derived state, kept to tell when it is out of date.
#[derive(Debug, Clone)]
struct DerivedFrom {
    cluster: Cluster,
    source: Source,
    files: Vec<(String, String)>,
    installed: Option<Installed>,
    opened: bool,
}

/// Sections of the Review screen's summary, in order; Enter jumps to the screen.
pub const REVIEW_SECTIONS: [Screen; 3] = [Screen::Hosts, Screen::Roles, Screen::LoadBalancer];

#[derive(Debug, Clone)]
pub struct State {
    pub conf_dir: PathBuf,
    pub theme: Theme,
    pub screen: Screen,
    /// None until the conf directory has been read.
    pub disk: Option<Result<Disk, String>>,
    /// True once New or Open was chosen: the other screens have a cluster to show.
    pub opened: bool,
    pub cluster: Cluster,
    pub source: Source,
    /// The cluster as last opened or written: unsaved changes are the difference to it.
    pub saved: Cluster,
    /// Derived from the cluster by `refresh` (private, so nothing else sets it).
    findings: Vec<Finding>,
    /// The diff of each file `save` would write, or why it cannot be rendered; derived like
    /// `findings`.
    diffs: Result<Vec<FileDiff>, String>,
    /// The differences between the installed cluster and this one; derived like `findings`.
    changes: Vec<Change>,
    /// What `findings`, `diffs` and `changes` were computed from.
    derived_from: Option<DerivedFrom>,
    pub start_selected: usize,
    pub host_selected: usize,
    pub role_row: usize,
    /// 0 master, 1 worker, 2 etcd.
    pub role_col: usize,
    pub lb_field: LbField,
    pub lb_edit: Option<LbEdit>,
    pub review_selected: usize,
    pub diff_scroll: usize,
    pub modal: Option<Modal>,
    pub help: bool,
    pub status: Option<Status>,
    /// A write is under way; a second Ctrl-S waits for it.
    pub saving: bool,
    /// SSH tests by host name: under way (`None`) or their outcome.
    pub ssh_tests:
        std::collections::HashMap<String, Option<Result<crate::engine::events::Facts, String>>>,
    /// The install started from this wizard (running or ended), for the Install and Done screens.
    pub install: Option<Install>,
    /// The terminal's size (columns, rows) when known.
    pub size: Option<(u16, u16)>,
    /// Taken by the first load of the files (see `Opening`).
    pub opening: Option<Opening>,
    pub quit: bool,
}

impl State {
    /// Below the smallest size the screens are laid out for, nothing is shown but the request
    /// to enlarge the window, and no key acts but quitting.
    pub fn too_small(&self) -> bool {
        self.size
            .is_some_and(|(w, h)| w < super::view::MIN_WIDTH || h < super::view::MIN_HEIGHT)
    }

    pub fn new(conf_dir: PathBuf, theme: Theme) -> Self {
        State {
            conf_dir,
            theme,
            screen: Screen::Start,
            disk: None,
            opened: false,
            cluster: Cluster::default(),
            source: Source::default(),
            saved: Cluster::default(),
            ssh_tests: std::collections::HashMap::new(),
            findings: Vec::new(),
            diffs: Ok(Vec::new()),
            changes: Vec::new(),
            derived_from: None,
            start_selected: 0,
            host_selected: 0,
            role_row: 0,
            role_col: 0,
            lb_field: LbField::Mode,
            lb_edit: None,
            review_selected: 0,
            diff_scroll: 0,
            modal: None,
            help: false,
            status: None,
            saving: false,
            install: None,
            size: None,
            opening: None,
            quit: false,
        }
    }

    pub fn dirty(&self) -> bool {
        self.opened && self.cluster != self.saved
    }

    pub fn start_choices(&self) -> Vec<StartChoice> {
        match &self.disk {
            Some(Ok(d)) if d.cluster.is_some() => vec![StartChoice::Open, StartChoice::New],
            Some(_) => vec![StartChoice::New],
            None => Vec::new(),
        }
    }

    /// The Install screen's log search prompt has the keyboard.
    pub fn searching(&self) -> bool {
        self.screen == Screen::Install
            && self
                .install
                .as_ref()
                .and_then(|i| i.search.as_ref())
                .is_some_and(|s| s.editing)
    }

    pub fn installing(&self) -> bool {
        self.install.as_ref().is_some_and(|i| i.running)
    }

    /// The files on disk say exactly what the wizard would write: nothing unsaved, no diff.
    pub fn written(&self) -> bool {
        !self.dirty()
            && self
                .diffs
                .as_ref()
                .is_ok_and(|d| d.iter().all(|f| f.lines.is_empty()))
    }

    /// The findings of the cluster as it is (see `refresh`).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The diff of each file a write would change, or why the files cannot be rendered.
    pub fn diffs(&self) -> &Result<Vec<FileDiff>, String> {
        &self.diffs
    }

    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Findings to show on `screen`.
    pub fn findings_for(&self, screen: Screen) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| Screen::of_field(f.field) == screen)
    }

    /// The cluster as installed, when the record was read and there is one.
    pub fn installed(&self) -> Option<&Installed> {
        match &self.disk {
            Some(Ok(d)) => d.installed.as_ref().ok()?.as_ref(),
            _ => None,
        }
    }

    /// `name` is a host of the installed cluster: deleting it takes it out of the cluster.
    pub fn is_installed(&self, name: &str) -> bool {
        self.installed()
            .is_some_and(|i| i.hosts.iter().any(|h| h.name == name))
    }

    /// How the cluster being edited differs from the installed one (see `refresh`).
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// The files as the conf directory holds them (empty before it is read).
    fn on_disk(&self) -> &[(String, String)] {
        match &self.disk {
            Some(Ok(d)) => &d.files,
            _ => &[],
        }
    }

    /// Bring what derives from the cluster and the files (findings, diffs) up to date, and keep
    /// cursors in range. `update` calls it after every action, the one place every change goes
    /// through (a state built by hand, as in a benchmark, calls it once); it recomputes only when
    /// the cluster, the source or the files changed.
    pub fn refresh(&mut self) {
        let last_host = self.cluster.hosts.len().saturating_sub(1);
        self.host_selected = self.host_selected.min(last_host);
        self.role_row = self.role_row.min(last_host);
        let current = self.derived_from.as_ref().is_some_and(|d| {
            d.cluster == self.cluster
                && d.source == self.source
                && d.files == self.on_disk()
                && d.installed.as_ref() == self.installed()
                && d.opened == self.opened
        });
        if current {
            return;
        }
        self.findings = validate(&self.cluster);
        // Before the first open there is no cluster to compare, only the empty one.
        self.changes = match self.installed() {
            Some(i) if self.opened => installed::diff(i, &self.cluster),
            _ => Vec::new(),
        };
        let on_disk = |name: &str| -> &str {
            self.on_disk()
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, text)| text.as_str())
        };
        self.diffs = conf::render_all(&self.cluster, &self.source)
            .map(|files| {
                files
                    .iter()
                    .map(|(name, new)| FileDiff {
                        name: name.clone(),
                        // Passwords stay dots here as on the Hosts screen.
                        lines: diff::unified(
                            name,
                            &diff::mask_passwords(on_disk(name)),
                            &diff::mask_passwords(new),
                            3,
                        ),
                    })
                    .collect()
            })
            .map_err(|e| e.to_string());
        if let Some(Status {
            refused: Some(what),
            ..
        }) = self.status
        {
            let n = self.errors();
            self.status = Some(if n == 0 {
                Status {
                    kind: StatusKind::Info,
                    text: "No error remains.".to_string(),
                    refused: None,
                }
            } else {
                Status {
                    kind: StatusKind::Error,
                    text: refusal(what, n),
                    refused: Some(what),
                }
            });
        }
        self.derived_from = Some(DerivedFrom {
            cluster: self.cluster.clone(),
            source: self.source.clone(),
            files: self.on_disk().to_vec(),
            installed: self.installed().cloned(),
            opened: self.opened,
        });
    }

    pub fn set_status(&mut self, kind: StatusKind, text: impl Into<String>) {
        self.status = Some(Status {
            kind,
            text: text.into(),
            refused: None,
        });
    }

    /// "`what`: N errors remain (see Review).", kept true by `refresh`.
    pub fn refuse_for_errors(&mut self, what: &'static str) {
        self.status = Some(Status {
            kind: StatusKind::Error,
            text: refusal(what, self.errors()),
            refused: Some(what),
        });
    }
}
