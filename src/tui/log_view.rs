//! Reading the Install screen's logs, pure: search in the selected node's log or in the full view
//! (`/` types the text, Enter finds the newest match, `[` the one before, `]` the one after; the
//! node log puts a match on its bottom line, the full view on its top line), the full view of one
//! step's whole log (`L`, read from the taskbox's copy: `engine::step_logs`), and the node filter
//! (`F`: all, failed, running). `n` stays "next failed node": the search never takes it.

use std::path::PathBuf;

use super::action::{Action, Effect};
use super::input::Input;
use super::install::{Install, NodeState};

/// Rows a page moves in the full view.
const PAGE: usize = 20;
/// Columns ←→ move the full view by (it scrolls sideways rather than wrapping).
const SIDEWAYS: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub query: Input,
    /// The prompt has the keyboard.
    pub editing: bool,
}

impl Search {
    /// The text searched for, once there is one and it is not being typed.
    pub fn active(&self) -> Option<&str> {
        (!self.editing && !self.query.text().is_empty()).then(|| self.query.text())
    }
}

/// Which nodes the table shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Filter {
    #[default]
    All,
    Failed,
    Running,
}

impl Filter {
    fn next(self) -> Filter {
        match self {
            Filter::All => Filter::Failed,
            Filter::Failed => Filter::Running,
            Filter::Running => Filter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Failed => "failed",
            Filter::Running => "running",
        }
    }

    pub fn keeps(self, s: NodeState) -> bool {
        match self {
            Filter::All => true,
            Filter::Failed => s == NodeState::Failed,
            Filter::Running => s == NodeState::Running,
        }
    }
}

/// One step's whole log, as read from the taskbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullLog {
    pub node: String,
    pub step: String,
    pub path: PathBuf,
    /// None while it is being read; Err says why it cannot be.
    pub lines: Option<Result<Vec<String>, String>>,
    /// The first line shown, and the first column.
    pub top: usize,
    pub left: usize,
}

impl FullLog {
    fn len(&self) -> usize {
        self.lines
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .map_or(0, Vec::len)
    }

    fn line(&self, i: usize) -> &str {
        match &self.lines {
            Some(Ok(l)) => &l[i],
            _ => "",
        }
    }
}

/// What a key did to the reading of the logs.
#[derive(Debug)]
pub enum Reading {
    /// Not a log key here: the Install screen's own.
    NotMine,
    Done,
    /// Done, and the status line says this.
    Say(String),
    Effect(Effect),
}

/// Where `query` occurs in `line`, as char ranges; ASCII case is ignored.
pub fn ranges(line: &str, query: &str) -> Vec<(usize, usize)> {
    let q: Vec<char> = query.chars().collect();
    if q.is_empty() {
        return Vec::new();
    }
    let l: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + q.len() <= l.len() {
        if l[i..i + q.len()]
            .iter()
            .zip(&q)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
        {
            out.push((i, i + q.len()));
            i += q.len();
        } else {
            i += 1;
        }
    }
    out
}

fn matches(line: &str, query: &str) -> bool {
    !ranges(line, query).is_empty()
}

/// Older: the last line before `from` with a match; newer: the first from `from` on.
fn find<'a>(
    len: usize,
    line: impl Fn(usize) -> &'a str,
    query: &str,
    older: bool,
    from: usize,
) -> Option<usize> {
    if older {
        (0..from.min(len)).rev().find(|&i| matches(line(i), query))
    } else {
        (from..len).find(|&i| matches(line(i), query))
    }
}

/// (the match shown, how many) in lines of `len`, the shown one at `at`.
pub fn counted<'a>(
    len: usize,
    line: impl Fn(usize) -> &'a str,
    query: &str,
    at: usize,
) -> (usize, usize) {
    let mut nth = 0;
    let mut all = 0;
    for i in 0..len {
        if matches(line(i), query) {
            all += 1;
            if i <= at {
                nth = all;
            }
        }
    }
    (nth, all)
}

impl Install {
    /// The nodes the table shows, by index, in order.
    pub fn shown(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.involved(i) && self.filter.keeps(self.nodes[i].state()))
            .collect()
    }

    /// The line of the selected node's log at the bottom of its pane.
    pub fn log_at(&self) -> usize {
        let len = self.nodes.get(self.selected).map_or(0, |n| n.log.len());
        len.saturating_sub(1 + self.log_scroll)
    }

    /// The step `L` shows of the selected node: the running one, else the failed one, else the
    /// last it started.
    fn step_to_read(&self) -> Option<(String, String)> {
        let n = self.nodes.get(self.selected)?;
        let step = n
            .running
            .clone()
            .or_else(|| n.failed.as_ref().map(|(s, _)| s.clone()))
            .or_else(|| n.last.clone())?;
        Some((n.name.clone(), step))
    }

    /// A key on the Install screen, if it is one of reading the logs.
    pub fn read(&mut self, action: &Action) -> Reading {
        if self.search.as_ref().is_some_and(|s| s.editing) {
            return self.typing(action);
        }
        match action {
            Action::SearchLog => {
                let query = self.search.take().map(|s| s.query).unwrap_or_default();
                self.search = Some(Search {
                    query,
                    editing: true,
                });
                Reading::Done
            }
            Action::NextMatch(older) => self.next_match(*older, false),
            Action::FilterNodes => {
                self.filter = self.filter.next();
                let shown = self.shown();
                if !shown.contains(&self.selected)
                    && let Some(&first) = shown.first()
                {
                    self.selected = first;
                    self.log_scroll = 0;
                }
                Reading::Say(format!(
                    "Showing {} nodes: {} of {}.",
                    self.filter.label(),
                    shown.len(),
                    self.nodes.len()
                ))
            }
            Action::FullLog if self.full.is_none() => self.open_full(),
            // L again or Esc closes the full view.
            Action::FullLog | Action::Back if self.full.is_some() => {
                self.full = None;
                Reading::Done
            }
            Action::Back if self.search.is_some() => {
                self.search = None;
                Reading::Done
            }
            // Only among the nodes shown, when the filter or an operation leaves some out.
            Action::Up | Action::Down if self.shown().len() != self.nodes.len() => {
                let shown = self.shown();
                let at = shown.iter().position(|&i| i >= self.selected).unwrap_or(0);
                let to = match action {
                    Action::Up => at.checked_sub(1).map(|k| shown[k]),
                    _ => shown
                        .get(at + usize::from(shown.get(at) == Some(&self.selected)))
                        .copied(),
                };
                if let Some(i) = to {
                    self.selected = i;
                    self.log_scroll = 0;
                }
                Reading::Done
            }
            _ if self.full.is_some() => self.scroll_full(action),
            _ => Reading::NotMine,
        }
    }

    fn typing(&mut self, action: &Action) -> Reading {
        let Some(search) = self.search.as_mut() else {
            return Reading::NotMine;
        };
        match action {
            Action::Text(edit) => search.query.apply(*edit),
            Action::Back => self.search = None,
            Action::Confirm => {
                search.editing = false;
                if search.query.text().is_empty() {
                    self.search = None;
                    return Reading::Done;
                }
                return self.next_match(true, true);
            }
            _ => {}
        }
        Reading::Done
    }

    /// `[` (older) or `]` (newer); `first`: the newest match in the node log, the first from the
    /// top of the full view.
    fn next_match(&mut self, older: bool, first: bool) -> Reading {
        let Some(query) = self
            .search
            .as_ref()
            .and_then(Search::active)
            .map(str::to_string)
        else {
            return Reading::Say("/ types the text to search the log for.".into());
        };
        let found = if let Some(full) = self.full.as_mut() {
            // The full view reads down: a match goes to its top line.
            let (older, from) = match (first, older) {
                (true, _) => (false, full.top),
                (false, true) => (true, full.top),
                (false, false) => (false, full.top + 1),
            };
            let hit = find(full.len(), |i| full.line(i), &query, older, from);
            hit.map(|i| full.top = i)
        } else if let Some(n) = self.nodes.get(self.selected) {
            // The node log follows its newest line: a match goes to its bottom line.
            let len = n.log.len();
            let at = self.log_at();
            let (older, from) = match (first, older) {
                (true, _) => (true, len),
                (false, true) => (true, at),
                (false, false) => (false, at + 1),
            };
            let hit = find(len, |i| n.log[i].as_str(), &query, older, from);
            hit.map(|i| self.log_scroll = len - 1 - i)
        } else {
            None
        };
        match found {
            Some(()) => Reading::Done,
            None if first => Reading::Say(format!("No line has \"{query}\".")),
            None if older => Reading::Say(format!("No earlier line has \"{query}\".")),
            None => Reading::Say(format!("No later line has \"{query}\".")),
        }
    }

    fn open_full(&mut self) -> Reading {
        let Some((node, step)) = self.step_to_read() else {
            return Reading::Say("This node has run no step yet.".into());
        };
        let Some(dir) = &self.logs else {
            return Reading::Say("The install has not said where its logs are yet.".into());
        };
        let path = crate::engine::step_logs::in_dir(dir, &node, &step);
        self.full = Some(FullLog {
            node,
            step,
            path: path.clone(),
            lines: None,
            top: 0,
            left: 0,
        });
        Reading::Effect(Effect::ReadLog(path))
    }

    /// The file `L` asked for was read.
    pub fn log_read(&mut self, path: &std::path::Path, lines: Result<Vec<String>, String>) {
        if let Some(full) = self.full.as_mut().filter(|f| f.path == path) {
            full.lines = Some(lines);
        }
    }

    fn scroll_full(&mut self, action: &Action) -> Reading {
        let Some(full) = self.full.as_mut() else {
            return Reading::NotMine;
        };
        let last = full.len().saturating_sub(1);
        match action {
            Action::Up => full.top = full.top.saturating_sub(1),
            Action::Down => full.top = (full.top + 1).min(last),
            Action::PageUp => full.top = full.top.saturating_sub(PAGE),
            Action::PageDown => full.top = (full.top + PAGE).min(last),
            Action::Left => full.left = full.left.saturating_sub(SIDEWAYS),
            Action::Right => full.left += SIDEWAYS,
            // The other Install keys wait until the view is closed.
            _ => return Reading::Done,
        }
        Reading::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_ignore_ascii_case_and_never_overlap() {
        assert_eq!(ranges("Etcd etcd", "ETCD"), [(0, 4), (5, 9)]);
        assert_eq!(ranges("aaa", "aa"), [(0, 2)]);
        assert_eq!(ranges("✗ fail", "fail"), [(2, 6)]);
        assert!(ranges("x", "").is_empty());
    }

    #[test]
    fn find_goes_older_and_newer_from_a_line() {
        let lines = ["a", "x", "b", "x", "c"];
        let line = |i: usize| lines[i];
        assert_eq!(find(5, line, "x", true, 5), Some(3));
        assert_eq!(find(5, line, "x", true, 3), Some(1));
        assert_eq!(find(5, line, "x", true, 1), None);
        assert_eq!(find(5, line, "x", false, 1), Some(1));
        assert_eq!(find(5, line, "x", false, 2), Some(3));
        assert_eq!(find(5, line, "x", false, 4), None);
        assert_eq!(counted(5, line, "x", 3), (2, 2));
        assert_eq!(counted(5, line, "x", 2), (1, 2));
    }
}
