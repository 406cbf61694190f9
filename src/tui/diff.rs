//! The unified diff the Review screen shows: the file on disk against what `conf::render_all` would
//! write.
//!
//! A longest-common-subsequence table over the lines between the common prefix and suffix. The
//! files are small (hosts.ini for a few hundred hosts) and a write usually touches a few lines, so
//! the quadratic table stays tiny; past `MAX_CELLS` the middle is shown as removed-then-added, which
//! is still a correct diff, only not a minimal one. Our own few lines instead of a diff crate.

/// Beyond this many table cells (old × new changed lines) the diff stops looking for common lines.
const MAX_CELLS: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--- a/…`, `+++ b/…` and `@@ -l,n +l,n @@` lines.
    Header,
    Context,
    Removed,
    Added,
}

/// One line of the unified diff, its prefix (`' '`, `-`, `+`) included in `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: Kind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Removed,
    Added,
}

/// The edit script from `old` to `new`: each old line is kept or removed, each new one kept or
/// added, in file order (removals before additions within a change).
// a, b, i, j, k: the names of the LCS algorithm as the literature writes it.
#[allow(clippy::many_single_char_names)]
fn script<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(Op, &'a str)> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let a = &old[prefix..old.len() - suffix];
    let b = &new[prefix..new.len() - suffix];

    let mut ops: Vec<(Op, &str)> = old[..prefix].iter().map(|l| (Op::Same, *l)).collect();
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        ops.extend(a.iter().map(|l| (Op::Removed, *l)));
        ops.extend(b.iter().map(|l| (Op::Added, *l)));
    } else {
        // lcs[i][j]: length of the LCS of a[i..] and b[j..], flattened row by row.
        let w = b.len() + 1;
        let mut lcs = vec![0u32; (a.len() + 1) * w];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i * w + j] = if a[i] == b[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                ops.push((Op::Same, a[i]));
                i += 1;
                j += 1;
            } else if j == b.len() || (i < a.len() && lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                ops.push((Op::Removed, a[i]));
                i += 1;
            } else {
                ops.push((Op::Added, b[j]));
                j += 1;
            }
        }
    }
    ops.extend(old[old.len() - suffix..].iter().map(|l| (Op::Same, *l)));
    ops
}

/// The unified diff of `old` → `new` for the file `name`, with `context` unchanged lines around
/// each change; empty when the two are the same.
pub fn unified(name: &str, old: &str, new: &str, context: usize) -> Vec<Line> {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let ops = script(&old_lines, &new_lines);
    let changes: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].0 != Op::Same).collect();
    if changes.is_empty() {
        return Vec::new();
    }
    let header = |text: String| Line {
        kind: Kind::Header,
        text,
    };
    let mut out = vec![
        header(format!("--- a/{name}")),
        header(format!("+++ b/{name}")),
    ];

    // Group changes whose context windows touch into one hunk each.
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &c in &changes {
        let start = c.saturating_sub(context);
        let end = (c + context + 1).min(ops.len());
        match hunks.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => hunks.push((start, end)),
        }
    }
    // 1-based line numbers in old and new at each op index.
    let mut old_no = Vec::with_capacity(ops.len());
    let mut new_no = Vec::with_capacity(ops.len());
    let (mut o, mut n) = (1, 1);
    for (op, _) in &ops {
        old_no.push(o);
        new_no.push(n);
        o += usize::from(*op != Op::Added);
        n += usize::from(*op != Op::Removed);
    }
    for (start, end) in hunks {
        let span = &ops[start..end];
        let old_count = span.iter().filter(|(op, _)| *op != Op::Added).count();
        let new_count = span.iter().filter(|(op, _)| *op != Op::Removed).count();
        // As `diff -u` does, an empty side is numbered by the line before it.
        let first = |no: usize, count: usize| if count == 0 { no - 1 } else { no };
        out.push(header(format!(
            "@@ -{},{old_count} +{},{new_count} @@",
            first(old_no[start], old_count),
            first(new_no[start], new_count)
        )));
        out.extend(span.iter().map(|(op, text)| {
            let (kind, prefix) = match op {
                Op::Same => (Kind::Context, ' '),
                Op::Removed => (Kind::Removed, '-'),
                Op::Added => (Kind::Added, '+'),
            };
            Line {
                kind,
                text: format!("{prefix}{text}"),
            }
        }));
    }
    out
}

const PASSWORD_KEYS: &[&str] = &[
    "ansible_ssh_pass=",
    "ansible_password=",
    "ansible_become_pass=",
    "ansible_become_password=",
    "ansible_sudo_pass=",
];

/// `text` with the value of every password key of a hosts.ini line replaced by dots.
pub fn mask_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, key)) = PASSWORD_KEYS
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, *k)))
        .min_by_key(|(i, _)| *i)
    {
        let value_start = at + key.len();
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..];
        // A quoted value ends at its closing quote, a plain one at white space.
        let len = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].find(q).map_or(value.len(), |e| e + 2),
            _ => value.find(char::is_whitespace).unwrap_or(value.len()),
        };
        out.push_str("••••••");
        rest = &value[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_nothing_else() {
        let line = "n1  ansible_host=10.0.0.1  ansible_user=u  ansible_become_pass=\"a b\"  ansible_ssh_pass=x#y  ip=1";
        assert_eq!(
            mask_passwords(line),
            "n1  ansible_host=10.0.0.1  ansible_user=u  ansible_become_pass=••••••  ansible_ssh_pass=••••••  ip=1"
        );
        assert_eq!(mask_passwords("no secrets\n"), "no secrets\n");
    }

    fn text(lines: &[Line]) -> String {
        lines.iter().map(|l| format!("{}\n", l.text)).collect()
    }

    #[test]
    fn identical_files_have_no_diff() {
        assert!(unified("f", "a\nb\n", "a\nb\n", 3).is_empty());
    }

    #[test]
    fn one_changed_line_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n";
        assert_eq!(
            text(&unified("f", old, new, 2)),
            "--- a/f\n+++ b/f\n@@ -3,5 +3,5 @@\n 3\n 4\n-5\n+five\n 6\n 7\n"
        );
    }

    #[test]
    fn new_file_is_all_added() {
        assert_eq!(
            text(&unified("f", "", "a\nb\n", 3)),
            "--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\n+b\n"
        );
    }

    #[test]
    fn distant_changes_make_two_hunks() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new: String = (1..=20)
            .map(|i| match i {
                2 => "two\n".to_string(),
                19 => "nineteen\n".to_string(),
                i => format!("{i}\n"),
            })
            .collect();
        let d = unified("f", &old, &new, 1);
        let hunks: Vec<&str> = d
            .iter()
            .filter(|l| l.text.starts_with("@@"))
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(hunks, ["@@ -1,3 +1,3 @@", "@@ -18,3 +18,3 @@"]);
    }

    #[test]
    fn insertion_keeps_common_lines() {
        let d = unified("f", "a\nc\n", "a\nb\nc\n", 0);
        assert_eq!(text(&d), "--- a/f\n+++ b/f\n@@ -1,0 +2,1 @@\n+b\n");
    }
}
