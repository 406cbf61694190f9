//! Pieces every screen uses: the frame around a screen, popups, findings lists, scrolling.

pub mod chrome;
pub mod findings;
pub mod form;
pub mod popup;

/// The rows of a list of `len` that fit in `height` with `selected` in view: the window scrolls
/// only as far as the selection needs, and only those rows are built (500 hosts stay cheap).
pub fn visible(selected: usize, len: usize, height: usize) -> std::ops::Range<usize> {
    let height = height.max(1);
    let start = selected.saturating_sub(height - 1).min(len.saturating_sub(height));
    start..(start + height).min(len)
}

#[cfg(test)]
mod tests {
    #[test]
    fn window_follows_the_selection() {
        assert_eq!(super::visible(0, 100, 10), 0..10);
        assert_eq!(super::visible(15, 100, 10), 6..16);
        assert_eq!(super::visible(3, 2, 10), 0..2);
    }
}
