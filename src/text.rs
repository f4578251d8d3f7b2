//! Text helpers every layer shares.

/// Cuts `text` to at most `max` characters, marking the cut.
pub(crate) fn truncate_chars(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_at_a_character_with_an_ellipsis_and_a_short_one_kept() {
        assert_eq!(truncate_chars("héllo".into(), 2), "hé…");
        assert_eq!(truncate_chars("hi".into(), 2), "hi");
    }
}
