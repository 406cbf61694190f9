//! An input file kswizard cannot read: where, and what was expected there.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole (missing, unreadable).
    pub line: usize,
    pub message: String,
}

impl ConfError {
    pub fn new(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        ConfError {
            file: file.into(),
            line,
            message: message.into(),
        }
    }

    pub fn io(file: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        let file = file.into();
        let message = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: run kswizard as a user that can read and write it".to_string()
            }
            _ => err.to_string(),
        };
        ConfError {
            file,
            line: 0,
            message,
        }
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

impl std::error::Error for ConfError {}
