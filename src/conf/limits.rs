//! Bounds on the operator's files, far above what a real cluster needs, so that a wrong or hostile
//! file is refused at once with a clear error instead of costing minutes or gigabytes: libyaml's
//! time grows with the square of nesting depth, and a reader must never be handed more than it
//! can read in linear time.

use std::io::Read;
use std::path::Path;

use super::error::ConfError;

/// Every file kswizard reads: hosts.ini, common.yaml / vars.yml, kswizard.yaml, plans. The
/// largest real ones are a few KiB; 10,000 hosts with every key is under 2 MiB.
pub const MAX_FILE_BYTES: usize = 4 << 20;
/// YAML nesting: kswizard's keys sit two levels deep, kubespray's deepest settings about five.
pub const MAX_YAML_DEPTH: usize = 64;
/// `key=value` pairs on one hosts.ini host line: the installer's longest lines have about ten.
pub const MAX_HOST_KEYS: usize = 1000;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn too_large(file: &Path, size: &str) -> ConfError {
    ConfError::new(
        file,
        0,
        format!(
            "the file is {size}; kswizard reads files up to {} MiB: is it the right file?",
            MAX_FILE_BYTES >> 20
        ),
    )
}

/// Refuse a file's content over `MAX_FILE_BYTES`.
pub fn check_size(len: usize, file: &Path) -> Result<(), ConfError> {
    if len > MAX_FILE_BYTES {
        return Err(too_large(file, &mib(len as u64)));
    }
    Ok(())
}

/// The whole of an opened file, refused without reading it when it is over `MAX_FILE_BYTES`
/// (and without reading past the limit when it grows, or is no regular file).
pub fn read_all(mut f: std::fs::File, file: &Path) -> Result<Vec<u8>, ConfError> {
    let size = f.metadata().map_err(|e| ConfError::io(file, &e))?.len();
    if size > MAX_FILE_BYTES as u64 {
        return Err(too_large(file, &mib(size)));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    (&mut f)
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfError::io(file, &e))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(
            file,
            &format!("over {} MiB", MAX_FILE_BYTES >> 20),
        ));
    }
    Ok(bytes)
}

/// A YAML file's size and nesting, checked before `serde_yaml` reads it.
pub fn check_yaml(text: &str, file: &Path) -> Result<(), ConfError> {
    check_size(text.len(), file)?;
    match too_deep(text) {
        Some(line) => Err(ConfError::new(
            file,
            line,
            format!(
                "YAML nested more than {MAX_YAML_DEPTH} levels deep; kswizard reads up to {MAX_YAML_DEPTH} (its settings need fewer than 5)"
            ),
        )),
        None => Ok(()),
    }
}

/// The 1-based line where `text` nests deeper than `MAX_YAML_DEPTH`, if it does.
///
/// Counted on the tokens of libyaml's own scanner (the one `serde_yaml` reads with), so the check
/// sees exactly the nesting the reader would: block collections (indentation, `- - -`) and flow
/// collections (`[[[`, `{{{`) alike. It stops at the first token past the limit; libyaml looks
/// ahead at most one line or 1,024 characters, so a hostile file costs microseconds here. A
/// scanner error also stops it: `serde_yaml` then reports that error, before any deeper nesting.
fn too_deep(text: &str) -> Option<usize> {
    // The parser holds a pointer to itself once given its input: boxed, so it never moves.
    let mut storage = Box::new(std::mem::MaybeUninit::<unsafe_libyaml::yaml_parser_t>::uninit());
    let parser = storage.as_mut_ptr();
    // SAFETY: libyaml's API used as its documentation says: the parser is initialised before use
    // and deleted after; `text` outlives it; each token is deleted once read.
    unsafe {
        if unsafe_libyaml::yaml_parser_initialize(parser).fail {
            return None;
        }
        unsafe_libyaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let mut depth = 0usize;
        let mut deep_at = None;
        loop {
            let mut token = std::mem::MaybeUninit::<unsafe_libyaml::yaml_token_t>::uninit();
            if unsafe_libyaml::yaml_parser_scan(parser, token.as_mut_ptr()).fail {
                break;
            }
            let token = token.as_mut_ptr();
            let (kind, line) = ((*token).type_, (*token).start_mark.line);
            unsafe_libyaml::yaml_token_delete(token);
            match kind {
                unsafe_libyaml::YAML_BLOCK_SEQUENCE_START_TOKEN
                | unsafe_libyaml::YAML_BLOCK_MAPPING_START_TOKEN
                | unsafe_libyaml::YAML_FLOW_SEQUENCE_START_TOKEN
                | unsafe_libyaml::YAML_FLOW_MAPPING_START_TOKEN => depth += 1,
                unsafe_libyaml::YAML_BLOCK_END_TOKEN
                | unsafe_libyaml::YAML_FLOW_SEQUENCE_END_TOKEN
                | unsafe_libyaml::YAML_FLOW_MAPPING_END_TOKEN => depth = depth.saturating_sub(1),
                unsafe_libyaml::YAML_STREAM_END_TOKEN | unsafe_libyaml::YAML_NO_TOKEN => break,
                _ => {}
            }
            if depth > MAX_YAML_DEPTH {
                deep_at = Some(line as usize + 1);
                break;
            }
        }
        unsafe_libyaml::yaml_parser_delete(parser);
        deep_at
    }
}

#[cfg(test)]
mod tests;
