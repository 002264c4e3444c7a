//! Mentions in plain messages: `@username` of a member (case-insensitive, on word
//! boundaries) and `@all` from a group's owner or admin.

use sc_core::{
    AppResult,
    ids::{ConversationId, UserId},
};

/// Stored for `@all` instead of a list of members.
pub const MENTION_ALL: &str = "all";

/// The names after `@` in `text`, lowercased and each once, and whether `@all` is among them.
///
/// A mention starts at the beginning or after a character that cannot be part of a name or an
/// address (so `a@b.org` mentions nobody) and ends where name characters end; a trailing `.`
/// is punctuation (`thanks @bob.`).
pub fn mentioned_names(text: &str) -> (Vec<String>, bool) {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut names: Vec<String> = Vec::new();
    let mut all = false;
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let at_boundary = prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '@'));
        prev = Some(c);
        if c != '@' || !at_boundary {
            continue;
        }
        let rest = &text[i + 1..];
        let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
        let name = rest[..len].trim_end_matches('.').to_ascii_lowercase();
        if name == MENTION_ALL {
            all = true;
        } else if (3..=32).contains(&name.len()) && !names.contains(&name) {
            names.push(name);
        }
        // Cap the work a hostile message can cause: usernames are looked up in one query.
        if names.len() >= 50 {
            break;
        }
    }
    (names, all)
}

/// The stored form of a message's mentions.
pub fn stored(users: &[UserId], all: bool) -> String {
    if all {
        return MENTION_ALL.to_string();
    }
    users
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The mentioned user ids of a stored form (`all` → none listed, see `mentions_all`).
pub fn parse_stored(s: &str) -> Vec<UserId> {
    if s == MENTION_ALL {
        return Vec::new();
    }
    s.split(',').filter_map(|u| u.parse().ok()).collect()
}

/// Whether `user` is mentioned by a stored form.
pub fn mentions_user(stored: &str, user: UserId) -> bool {
    stored == MENTION_ALL || parse_stored(stored).contains(&user)
}

/// Resolves the mentions of a plain message about to be sent by `sender`: members named, and
/// `@all` only in a group and only from its owner or an admin. One query per kind of mention,
/// and none at all for a message without `@`.
pub(crate) async fn resolve(
    d: &crate::Deps,
    conversation: ConversationId,
    conversation_kind: &str,
    sender: UserId,
    content: &str,
) -> AppResult<String> {
    if !content.contains('@') {
        return Ok(String::new());
    }
    let (names, all) = mentioned_names(content);
    if all && conversation_kind == "group" {
        let role = d.db.chat().role_of(conversation, sender).await?;
        if matches!(role.as_deref(), Some("owner") | Some("admin")) {
            return Ok(stored(&[], true));
        }
    }
    let mut users = d.db.chat().members_named(conversation, &names).await?;
    users.retain(|u| *u != sender);
    Ok(stored(&users, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_on_word_boundaries() {
        let (n, all) = mentioned_names("hi @Bob, and @carol_1. cc@dave mail x@y.org (@erin)");
        assert_eq!(n, ["bob", "carol_1", "erin"]);
        assert!(!all);
    }

    #[test]
    fn all_and_duplicates() {
        let (n, all) = mentioned_names("@ALL look @bob @BOB @bob.");
        assert_eq!(n, ["bob"]);
        assert!(all);
    }

    #[test]
    fn too_short_long_or_bare() {
        let long = format!("@{}", "a".repeat(33));
        assert_eq!(mentioned_names(&long).0, Vec::<String>::new());
        assert_eq!(mentioned_names("@ab @ @@bob").0, Vec::<String>::new());
    }

    #[test]
    fn stored_round_trip() {
        let u = [UserId::new(), UserId::new()];
        let s = stored(&u, false);
        assert_eq!(parse_stored(&s), u);
        assert!(mentions_user(&s, u[1]));
        assert!(!mentions_user(&s, UserId::new()));
        assert!(mentions_user(&stored(&[], true), UserId::new()));
        assert_eq!(parse_stored(""), Vec::<UserId>::new());
    }
}
