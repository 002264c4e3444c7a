//! The built-in extractive summarizer, used when no AI provider is configured.
//!
//! API.md promises that "every sentence of its summary is a sentence of the messages", so this
//! never writes text of its own: it splits the messages into sentences (Unicode sentence
//! boundaries, UAX #29), ranks them with TextRank (Mihalcea & Tarau, 2004; with one change for
//! sparse chat graphs, see `Graph::rank`) and returns the best few, each byte-identical to a
//! substring of its message, in source order.
//!
//! Everything here is pure and deterministic: the same messages give the same summary on every
//! run and every machine. No hash map is iterated (words are interned in a `BTreeMap`, ids follow
//! first occurrence), floating-point sums always run in the same order, and every ranking breaks
//! ties by source order.
//!
//! The work is bounded whatever the input ([`MAX_MESSAGES`], [`MAX_CANDIDATES`], the sentence
//! length and per-sentence word caps, and a sparse similarity graph; see [`Graph`]), because a
//! summary is requested by ordinary members of a conversation of any size.

use std::collections::BTreeMap;

use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// How many sentences callers ask for unless told otherwise.
pub const DEFAULT_MAX_SENTENCES: usize = 5;

/// Only the most recent messages are read: a summary is about where a conversation stands, and
/// the cap bounds the splitting work.
pub const MAX_MESSAGES: usize = 2_000;

/// Only the most recent sentences (of those messages) are ranked; this bounds the graph.
pub const MAX_CANDIDATES: usize = 3_000;

/// A sentence needs this many words (URLs not counted) to be worth a summary line: shorter ones
/// are chat acknowledgements ("ok thanks", "on it") that carry no content of their own.
const MIN_WORDS: usize = 3;

/// Longer "sentences" are pasted logs, code or text without punctuation, not sentences; skipping
/// them also bounds the length of a summary line.
const MAX_SENTENCE_CHARS: usize = 1_000;

/// Only the first distinct words of a sentence take part in the similarity, which bounds the
/// graph-building work of very long sentences (a real sentence rarely has this many).
const MAX_TERMS_PER_SENTENCE: usize = 64;

/// A word in more sentences than this links nearly everything to everything: like a stop word it
/// says nothing about which sentences matter, and following its postings would make building the
/// graph quadratic. It is ignored. Far above the size of a small conversation, so only long
/// threads are affected.
const MAX_TERM_SENTENCES: usize = 256;

/// Each sentence keeps only its strongest links; memory stays `O(sentences × MAX_NEIGHBOURS)`.
const MAX_NEIGHBOURS: usize = 64;

/// The PageRank damping factor of TextRank.
const DAMPING: f64 = 0.85;
/// PageRank stops when no score moves by more than this in an iteration...
const CONVERGENCE: f64 = 1e-6;
/// ...or after this many iterations (it normally converges in a few dozen).
const MAX_ITERATIONS: usize = 100;

/// One chat message as the summarizer sees it. `messages` slices are in source (chronological)
/// order; `sender` is the display name, the only member data a summary may show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceMessage<'a> {
    pub seq: i64,
    pub sender: &'a str,
    pub text: &'a str,
}

/// An extractive summary. `text` is empty when there was nothing to summarize.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// One `"<sender>: <sentence>"` line per picked sentence, joined with `'\n'`.
    pub text: String,
    /// The picked sentences, in source order.
    pub sentences: Vec<Picked>,
}

/// A sentence of the summary: byte-identical to a substring of the text of message `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picked {
    pub seq: i64,
    pub sentence: String,
}

/// Summarizes `messages` (in source order) in at most `max_sentences` of their own sentences.
///
/// Returns an empty summary for no messages, `max_sentences == 0`, or messages without a
/// sentence of at least three words (emoji, links, "ok"); callers say "nothing to summarize".
pub fn summarize(messages: &[SourceMessage<'_>], max_sentences: usize) -> Summary {
    if max_sentences == 0 {
        return Summary::default();
    }
    let window = &messages[messages.len().saturating_sub(MAX_MESSAGES)..];
    let candidates = candidates(window);
    if candidates.is_empty() {
        return Summary::default();
    }
    let scores = Graph::build(&candidates).rank();

    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(max_sentences);
    order.sort_unstable();

    let mut text = String::new();
    let mut sentences = Vec::with_capacity(order.len());
    for i in order {
        let candidate = &candidates[i];
        let message = &window[candidate.message];
        if !text.is_empty() {
            text.push('\n');
        }
        push_single_line(&mut text, message.sender.trim());
        text.push_str(": ");
        text.push_str(candidate.sentence);
        sentences.push(Picked {
            seq: message.seq,
            sentence: candidate.sentence.to_owned(),
        });
    }
    Summary { text, sentences }
}

/// A sentence that may be picked.
struct Candidate<'a> {
    /// Index into the message window.
    message: usize,
    /// A trimmed substring of the message text.
    sentence: &'a str,
    /// The number of words, the `|S|` of the similarity; at least [`MIN_WORDS`].
    words: usize,
    /// Interned normalized words, sorted and distinct.
    terms: Vec<u32>,
}

/// The sentences of the window worth ranking, in source order, keeping the most recent
/// [`MAX_CANDIDATES`]. Reads the messages newest first so an old backlog costs nothing.
fn candidates<'a>(window: &[SourceMessage<'a>]) -> Vec<Candidate<'a>> {
    let mut found: Vec<(usize, &'a str)> = Vec::new();
    for (index, message) in window.iter().enumerate().rev() {
        let mut own: Vec<&'a str> = sentences(message.text).collect();
        let room = MAX_CANDIDATES - found.len();
        if own.len() > room {
            own.drain(..own.len() - room);
        }
        found.extend(own.into_iter().rev().map(|s| (index, s)));
        if found.len() >= MAX_CANDIDATES {
            break;
        }
    }
    found.reverse();

    let mut vocabulary: BTreeMap<String, u32> = BTreeMap::new();
    found
        .into_iter()
        .map(|(message, sentence)| {
            let mut words = 0;
            let mut terms = Vec::new();
            for word in content_words(sentence) {
                words += 1;
                if terms.len() < MAX_TERMS_PER_SENTENCE
                    && let Some(term) = normalize(word)
                {
                    let next = u32::try_from(vocabulary.len()).unwrap_or(u32::MAX);
                    let id = *vocabulary.entry(term).or_insert(next);
                    if !terms.contains(&id) {
                        terms.push(id);
                    }
                }
            }
            terms.sort_unstable();
            Candidate {
                message,
                sentence,
                words,
                terms,
            }
        })
        .collect()
}

/// The sentences of a message worth ranking: UAX #29 sentences, trimmed (so still substrings of
/// the text), on one line, not overly long, with at least [`MIN_WORDS`] words besides URLs.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split_sentence_bounds()
        .map(str::trim)
        .filter(|s| is_sentence_like(s))
}

fn is_sentence_like(s: &str) -> bool {
    // UAX #29 ends a sentence at every line break; anything left that a renderer could show as
    // a break would split the sentence's summary line.
    !s.is_empty()
        && s.len() <= MAX_SENTENCE_CHARS * 4
        && s.chars().count() <= MAX_SENTENCE_CHARS
        && !s.chars().any(is_line_break)
        && content_words(s).nth(MIN_WORDS - 1).is_some()
}

/// The words of a sentence, leaving out URLs (whose pieces are not words of the conversation)
/// and emoji and punctuation (which `unicode_words` already leaves out).
fn content_words(s: &str) -> impl Iterator<Item = &str> {
    s.split_whitespace()
        .filter(|token| !is_url(token))
        .flat_map(UnicodeSegmentation::unicode_words)
}

fn is_url(token: &str) -> bool {
    let token = token.trim_start_matches(|c: char| !c.is_alphanumeric());
    token.contains("://")
        || token
            .get(..4)
            .is_some_and(|start| start.eq_ignore_ascii_case("www."))
}

/// The comparable form of a word: lowercased, NFC, typographic apostrophe as ASCII. `None` for
/// words of one or two letters and stop words, which would link unrelated sentences.
fn normalize(word: &str) -> Option<String> {
    let term: String = word
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .nfc()
        .collect();
    let short = term.chars().nth(2).is_none();
    (!short && STOP_WORDS.binary_search(&term.as_str()).is_err()).then_some(term)
}

/// The TextRank graph: a node per candidate, an edge between sentences sharing a word, weighted
/// `shared words / (ln |a| + ln |b|)` (Mihalcea & Tarau), where `|a|` is the word count of `a`.
///
/// Sparse, built through an inverted index from word to sentences rather than as an `n × n`
/// matrix: a dense matrix of [`MAX_CANDIDATES`] is 9 million cells (tens of MB per request) and
/// compares every pair, while in chat most sentence pairs share no word at all. Building touches
/// only pairs that share a word, bounded by [`MAX_TERMS_PER_SENTENCE`] × [`MAX_TERM_SENTENCES`]
/// per sentence, and keeps at most [`MAX_NEIGHBOURS`] edges per sentence.
struct Graph {
    /// Per sentence, its out-edges `(target, weight)` sorted by target.
    edges: Vec<Vec<(u32, f64)>>,
}

impl Graph {
    fn build(candidates: &[Candidate<'_>]) -> Self {
        let n = candidates.len();
        let vocabulary = candidates
            .iter()
            .flat_map(|c| c.terms.iter())
            .max()
            .map_or(0, |&t| t as usize + 1);
        let mut postings: Vec<Vec<u32>> = vec![Vec::new(); vocabulary];
        for (i, candidate) in candidates.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for &term in &candidate.terms {
                postings[term as usize].push(i);
            }
        }

        let ln_words: Vec<f64> = candidates.iter().map(|c| (c.words as f64).ln()).collect();
        // Scratch space reused for every sentence: shared-word counts and who has one.
        let mut shared = vec![0u32; n];
        let mut touched: Vec<u32> = Vec::new();
        let mut edges = Vec::with_capacity(n);
        for (i, candidate) in candidates.iter().enumerate() {
            for &term in &candidate.terms {
                let sentences = &postings[term as usize];
                if sentences.len() > MAX_TERM_SENTENCES {
                    continue;
                }
                for &j in sentences {
                    if j as usize != i {
                        if shared[j as usize] == 0 {
                            touched.push(j);
                        }
                        shared[j as usize] += 1;
                    }
                }
            }
            let mut neighbours: Vec<(u32, f64)> = touched
                .drain(..)
                .map(|j| {
                    let count = std::mem::take(&mut shared[j as usize]);
                    // Candidates have at least MIN_WORDS words, so the denominator is at least
                    // 2 ln 3; the guard only keeps a zero from ever dividing.
                    let denominator = (ln_words[i] + ln_words[j as usize]).max(f64::EPSILON);
                    (j, f64::from(count) / denominator)
                })
                .collect();
            if neighbours.len() > MAX_NEIGHBOURS {
                // Strongest first, ties to the earlier sentence: a total order, so the kept set
                // is the same on every run.
                neighbours.select_nth_unstable_by(MAX_NEIGHBOURS, |a, b| {
                    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                });
                neighbours.truncate(MAX_NEIGHBOURS);
            }
            // A fixed order for the floating-point sums of the ranking.
            neighbours.sort_unstable_by_key(|&(j, _)| j);
            edges.push(neighbours);
        }
        Graph { edges }
    }

    /// Weighted PageRank: `WS(i) = (1 - d) + d Σ_j w_ji / W · WS(j)`, iterated until no score
    /// moves by more than [`CONVERGENCE`] or [`MAX_ITERATIONS`] pass.
    ///
    /// TextRank divides `w_ji` by `j`'s own total out-weight `Σ_k w_jk`, so every sentence
    /// passes on its whole score however weakly it is linked. Chat graphs are sparse, and there
    /// two chit-chat sentences that share one incidental word ("See you tomorrow" and "See the
    /// wiki") end up as high as the core of the main topic. Here `W` is the largest out-weight
    /// of any sentence instead: a sentence votes in proportion to how similar it really is, the
    /// rest of its score is lost like a dangling node's. The iteration is a contraction with
    /// factor `d` (every column sums to at most `d`), so it converges.
    fn rank(&self) -> Vec<f64> {
        let n = self.edges.len();
        let out_weight: Vec<f64> = self
            .edges
            .iter()
            .map(|e| e.iter().map(|&(_, w)| w).sum())
            .collect();
        let strongest = out_weight.iter().copied().fold(0.0, f64::max);
        let mut scores = vec![1.0; n];
        let mut next = vec![0.0; n];
        for _ in 0..MAX_ITERATIONS {
            next.fill(1.0 - DAMPING);
            if strongest > 0.0 {
                for (j, out) in self.edges.iter().enumerate() {
                    let share = DAMPING * scores[j] / strongest;
                    for &(i, w) in out {
                        next[i as usize] += share * w;
                    }
                }
            }
            let delta = scores
                .iter()
                .zip(&next)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            std::mem::swap(&mut scores, &mut next);
            if delta < CONVERGENCE {
                break;
            }
        }
        scores
    }
}

/// Characters a renderer may show as a line break.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Appends `s` with control characters and line breaks as spaces: a display name must not break
/// (or forge) a line of the summary.
fn push_single_line(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| {
        if c.is_control() || is_line_break(c) {
            ' '
        } else {
            c
        }
    }));
}

/// Words that link sentences without saying what they are about: common English function words
/// of three or more letters (shorter words are ignored anyway), chat fillers ("lol", "thanks")
/// and common German function words, for the German spoken in many of our conversations.
/// Lowercase, sorted by bytes for `binary_search`.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "aber", "about", "above", "after", "again", "against", "all", "alle", "als", "also", "and",
    "any", "are", "aren't", "auch", "auf", "aus", "because", "been", "before", "bei", "being",
    "below", "between", "bin", "bis", "bist", "bitte", "both", "btw", "but", "can", "can't",
    "cannot", "cool", "could", "couldn't", "danke", "das", "dass", "dem", "den", "denn", "der",
    "des", "did", "didn't", "die", "dies", "diese", "dieser", "dir", "doch", "does", "doesn't",
    "doing", "don't", "dort", "down", "during", "each", "ein", "eine", "einem", "einen", "einer",
    "eines", "few", "for", "from", "further", "für", "hab", "habe", "haben", "had", "hadn't",
    "haha", "has", "hasn't", "hat", "have", "haven't", "having", "he'd", "he'll", "he's", "hehe",
    "hello", "her", "here", "here's", "hers", "herself", "hey", "hier", "him", "himself", "his",
    "how", "how's", "i'd", "i'll", "i'm", "i've", "ich", "ihr", "ihre", "into", "isn't", "ist",
    "it's", "its", "itself", "jetzt", "just", "kann", "let's", "lol", "mal", "man", "mehr", "mich",
    "mir", "mit", "more", "most", "much", "mustn't", "myself", "nach", "nicht", "noch", "nope",
    "nor", "not", "now", "nur", "oder", "off", "okay", "omg", "once", "only", "other", "ought",
    "our", "ours", "ourselves", "out", "over", "own", "please", "same", "schon", "sehr", "sein",
    "shan't", "she", "she'd", "she'll", "she's", "should", "shouldn't", "sich", "sie", "sind",
    "some", "such", "sure", "than", "thank", "thanks", "that", "that's", "the", "their", "theirs",
    "them", "themselves", "then", "there", "there's", "these", "they", "they'd", "they'll",
    "they're", "they've", "this", "those", "through", "thx", "too", "und", "under", "uns", "until",
    "very", "vom", "von", "vor", "war", "was", "wasn't", "we'd", "we'll", "we're", "we've", "were",
    "weren't", "what", "what's", "when", "when's", "where", "where's", "which", "while", "who",
    "who's", "whom", "why", "why's", "wie", "will", "wir", "wird", "with", "won't", "would",
    "wouldn't", "yeah", "yep", "yes", "you", "you'd", "you'll", "you're", "you've", "your",
    "yours", "yourself", "yourselves", "yup", "zum", "zur", "über",
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// As in `crate::proptests`: bounded, reproducible (fixed seed unless `PROPTEST_RNG_SEED`),
    /// no regression files.
    pub(crate) fn proptest_config() -> ProptestConfig {
        ProptestConfig {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(256),
            failure_persistence: None,
            rng_seed: match std::env::var_os("PROPTEST_RNG_SEED") {
                Some(_) => ProptestConfig::default().rng_seed,
                None => proptest::test_runner::RngSeed::Fixed(20_261_201),
            },
            ..ProptestConfig::default()
        }
    }

    /// Messages with seqs 100, 101, ...
    fn messages<'a>(raw: &[(&'a str, &'a str)]) -> Vec<SourceMessage<'a>> {
        raw.iter()
            .zip(100..)
            .map(|(&(sender, text), seq)| SourceMessage { seq, sender, text })
            .collect()
    }

    /// Every picked sentence is a substring of its message, and they come in source order:
    /// walks messages and picks together, searching each pick after the previous one.
    fn check_substrings_in_order(messages: &[SourceMessage<'_>], summary: &Summary) {
        let mut message = 0;
        let mut from = 0;
        for picked in &summary.sentences {
            loop {
                assert!(
                    message < messages.len(),
                    "{picked:?} is not in its message, or out of order"
                );
                let m = &messages[message];
                if m.seq == picked.seq
                    && let Some(at) = m.text[from..].find(&picked.sentence)
                {
                    from += at + picked.sentence.len();
                    break;
                }
                message += 1;
                from = 0;
            }
        }
        let lines: Vec<&str> = if summary.text.is_empty() {
            Vec::new()
        } else {
            summary.text.split('\n').collect()
        };
        assert_eq!(lines.len(), summary.sentences.len(), "{:?}", summary.text);
        for (line, picked) in lines.iter().zip(&summary.sentences) {
            let sender = messages
                .iter()
                .find(|m| m.seq == picked.seq)
                .map(|m| m.sender)
                .unwrap_or_default();
            let mut expected = String::new();
            push_single_line(&mut expected, sender.trim());
            expected.push_str(": ");
            expected.push_str(&picked.sentence);
            assert_eq!(*line, expected);
        }
    }

    /// A team moving its database, with plenty of chit-chat around it.
    const MIGRATION: &[(&str, &str)] = &[
        ("Alice", "Good morning everyone!"),
        ("Bob", "morning ☕"),
        ("Carol", "Hey hey"),
        (
            "Alice",
            "We need to plan the database migration from MySQL to PostgreSQL this sprint.",
        ),
        ("Bob", "lol finally"),
        (
            "Dave",
            "The migration needs a maintenance window because the database schema changes.",
        ),
        ("Carol", "Did anyone see the game last night?"),
        ("Bob", "Yes, what a finish haha"),
        ("Alice", "Focus please 😄"),
        (
            "Dave",
            "I can write the migration scripts for the PostgreSQL schema by Thursday.",
        ),
        ("Carol", "ok"),
        (
            "Alice",
            "Carol, can you test the migration scripts against a copy of the production database?",
        ),
        (
            "Carol",
            "Sure, I will test them on the staging database first.",
        ),
        ("Bob", "Who's bringing cake on Friday?"),
        ("Dave", "Not me 🍰"),
        (
            "Alice",
            "The maintenance window for the database migration is Saturday at 06:00 UTC.",
        ),
        ("Bob", "👍"),
        ("Carol", "Works for me."),
        (
            "Dave",
            "Rollback plan: we keep MySQL read-only for a week after the migration.",
        ),
        ("Bob", "nice"),
        ("Alice", "Great, thanks all!"),
        ("Carol", "The weather is lovely today, by the way."),
        ("Bob", "I might go for a walk later."),
        (
            "Dave",
            "See https://wiki.example.org/db-migration for the checklist.",
        ),
        ("Alice", "See you tomorrow!"),
    ];

    /// An incident with links, pastes and short acknowledgements.
    const INCIDENT: &[(&str, &str)] = &[
        ("pager", "ALERT: api p99 latency above 2s"),
        ("Erin", "on it"),
        ("Frank", "same here, looking"),
        (
            "Erin",
            "The API latency spike started at 14:02 right after the cache deploy.",
        ),
        ("Frank", "https://grafana.example.org/d/api?from=now-1h"),
        (
            "Frank",
            "Cache hit rate dropped to zero after the deploy, so every request hits the database.",
        ),
        ("Grace", "Should we roll back the cache deploy?"),
        ("Erin", "yes"),
        ("Erin", "Rolling back the cache deploy now."),
        ("Frank", "👀"),
        (
            "Grace",
            "Customers are reporting timeouts on the checkout page.",
        ),
        (
            "Erin",
            "Rollback finished, the cache hit rate is recovering.",
        ),
        ("Frank", "API latency is back under 200ms."),
        ("Grace", "phew"),
        (
            "Grace",
            "Root cause: the new cache key format did not match the old entries.",
        ),
        ("Erin", "I'll write the postmortem tomorrow."),
        ("Frank", "thx"),
        ("Grace", "Lunch?"),
        ("Erin", "In ten minutes."),
        ("Frank", "Let me grab my jacket first."),
        (
            "Erin",
            "Action item: add a cache hit rate alert before the next deploy.",
        ),
        ("Grace", "+1"),
    ];

    /// German and English mixed, with emoji.
    const MIXED: &[(&str, &str)] = &[
        ("Jonas", "Hallo zusammen 👋"),
        ("Mia", "Hi! 😊"),
        (
            "Jonas",
            "Das Release 2.4 verschiebt sich auf Mittwoch, weil die Tests noch rot sind.",
        ),
        ("Lena", "Oh nein 😬"),
        (
            "Mia",
            "Which tests are failing in the release pipeline? Die Login-Tests oder die Upload-Tests?",
        ),
        (
            "Jonas",
            "Die Upload-Tests im Release-Build schlagen fehl, seit das neue Storage-Backend aktiv ist.",
        ),
        ("Lena", "🙈🙈🙈"),
        (
            "Mia",
            "Ich schaue mir die Upload-Tests heute Nachmittag an.",
        ),
        ("Lena", "Kaffee? ☕"),
        ("Jonas", "Gerne!"),
        (
            "Mia",
            "Found it: the storage backend rejects files above 10 MB in the upload tests.",
        ),
        ("Lena", "Super, danke Mia! 🎉"),
        (
            "Jonas",
            "Dann können wir das Release am Mittwoch wie geplant machen.",
        ),
        ("Mia", "I pushed a fix for the storage backend limit. 🚀"),
        ("Lena", "Schönes Wochenende euch allen! 🌞"),
        ("Jonas", "Danke, gleichfalls 😄"),
        (
            "Mia",
            "The release notes for 2.4 still need a section on uploads.",
        ),
        ("Lena", "Mache ich morgen früh."),
        ("Jonas", "👍"),
        ("Mia", "Bis dann!"),
    ];

    #[test]
    fn stop_words_are_sorted_lowercase_and_longer_than_two_letters() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        for word in STOP_WORDS {
            assert_eq!(*word, word.to_lowercase());
            assert!(word.chars().count() > 2, "{word}");
        }
    }

    #[test]
    fn empty_inputs_give_an_empty_summary() {
        assert_eq!(summarize(&[], 5), Summary::default());
        let nothing = messages(&[
            ("A", ""),
            ("B", "   \n\t "),
            ("C", "👍👍👍 🎉"),
            ("D", "ok thanks"),
            ("E", "https://example.org/a/b/c https://example.org/d"),
            ("F", "lol!!! ... ?"),
        ]);
        assert_eq!(summarize(&nothing, 5), Summary::default());
        let some = messages(MIGRATION);
        assert_eq!(summarize(&some, 0), Summary::default());
    }

    #[test]
    fn sentences_are_trimmed_substrings_and_noise_is_dropped() {
        let text = "ok. See https://ci.example.org/build/42. The build is green again!  👍👍👍\n\
                    Let's ship it today. 🚀🚀";
        let found: Vec<&str> = sentences(text).collect();
        assert_eq!(found, ["The build is green again!", "Let's ship it today."]);
        // Trimmed slices of the text itself, not copies.
        for s in found {
            assert!(text.contains(s));
        }
        assert!(
            sentences(&"word ".repeat(MAX_SENTENCE_CHARS))
                .next()
                .is_none()
        );
    }

    #[test]
    fn normalization_ignores_case_short_words_and_stop_words() {
        assert_eq!(normalize("Database").as_deref(), Some("database"));
        assert_eq!(normalize("DON’T"), None);
        assert_eq!(normalize("Die"), None);
        assert_eq!(normalize("is"), None);
        assert_eq!(normalize("ÜBER"), None);
        assert_eq!(normalize("Straße").as_deref(), Some("straße"));
        // Composed and decomposed forms compare equal.
        assert_eq!(normalize("Cafe\u{301}"), normalize("Café"));
    }

    #[test]
    fn the_topic_is_picked_over_chit_chat() {
        let messages = messages(MIGRATION);
        let summary = summarize(&messages, DEFAULT_MAX_SENTENCES);
        check_substrings_in_order(&messages, &summary);
        assert_eq!(summary.sentences.len(), 5, "{}", summary.text);
        for picked in &summary.sentences {
            let s = picked.sentence.to_lowercase();
            assert!(
                ["migration", "database", "postgresql", "mysql", "schema"]
                    .iter()
                    .any(|topic| s.contains(topic)),
                "chit-chat picked: {}",
                summary.text
            );
        }
        // "See you tomorrow!" and "See https://... for the checklist." share only "see": with
        // TextRank's per-sentence normalization that pair scored as high as the topic's core.
        assert!(!summary.text.contains("See "), "{}", summary.text);
        // The opening statement of the topic is among them.
        assert!(
            summary.text.contains(
                "Alice: We need to plan the database migration from MySQL to PostgreSQL this sprint."
            ),
            "{}",
            summary.text
        );
    }

    #[test]
    fn the_incident_summary_is_about_the_incident() {
        let messages = messages(INCIDENT);
        let summary = summarize(&messages, DEFAULT_MAX_SENTENCES);
        check_substrings_in_order(&messages, &summary);
        assert_eq!(summary.sentences.len(), 5);
        for picked in &summary.sentences {
            let s = picked.sentence.to_lowercase();
            assert!(
                ["cache", "latency", "deploy", "rollback", "roll"]
                    .iter()
                    .any(|topic| s.contains(topic)),
                "off topic: {}",
                summary.text
            );
        }
        assert!(!summary.text.contains("Lunch"));
        assert!(!summary.text.contains("http"));
    }

    #[test]
    fn mixed_languages_and_emoji_keep_the_substring_property() {
        let messages = messages(MIXED);
        let summary = summarize(&messages, DEFAULT_MAX_SENTENCES);
        check_substrings_in_order(&messages, &summary);
        assert_eq!(summary.sentences.len(), 5, "{}", summary.text);
        // Emoji-only and two-word messages are never picked.
        for picked in &summary.sentences {
            assert!(content_words(&picked.sentence).count() >= MIN_WORDS);
        }
        assert!(
            summary.text.contains("Upload-Tests") || summary.text.contains("upload tests"),
            "{}",
            summary.text
        );
        // Emoji inside a picked sentence stay byte-identical.
        let with_rocket = summarize(
            &[SourceMessage {
                seq: 1,
                sender: "Mia",
                text: "I pushed a fix for the storage backend limit. 🚀 Danke!",
            }],
            5,
        );
        assert_eq!(
            with_rocket.text,
            "Mia: I pushed a fix for the storage backend limit."
        );
    }

    #[test]
    fn the_summary_is_deterministic() {
        for fixture in [MIGRATION, INCIDENT, MIXED] {
            let messages = messages(fixture);
            let first = summarize(&messages, 5);
            // Fresh copies of the text: nothing may depend on addresses or hash seeds.
            let owned: Vec<(String, String)> = fixture
                .iter()
                .map(|(s, t)| ((*s).to_owned(), (*t).to_owned()))
                .collect();
            for _ in 0..5 {
                let copies: Vec<SourceMessage<'_>> = owned
                    .iter()
                    .zip(100..)
                    .map(|((sender, text), seq)| SourceMessage { seq, sender, text })
                    .collect();
                assert_eq!(summarize(&copies, 5), first);
            }
        }
    }

    #[test]
    fn fewer_sentences_than_asked_are_all_returned_in_source_order() {
        let messages = messages(&[
            ("Ann", "The printer on floor two is broken again."),
            ("Ben", "ok"),
            ("Ann", "Facilities will replace the printer toner tomorrow."),
        ]);
        let summary = summarize(&messages, 5);
        assert_eq!(
            summary.text,
            "Ann: The printer on floor two is broken again.\n\
             Ann: Facilities will replace the printer toner tomorrow."
        );
        assert_eq!(
            summary.sentences.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [100, 102]
        );
        assert_eq!(summarize(&messages, 1).sentences.len(), 1);
    }

    #[test]
    fn ties_go_to_the_earlier_sentence() {
        // No shared words at all: every score is 1 - d.
        let messages = messages(&[
            ("A", "Apples grow on trees."),
            ("B", "Bicycles need pumped tyres."),
            ("C", "Cobalt looks quite blue."),
        ]);
        let summary = summarize(&messages, 2);
        assert_eq!(
            summary.sentences.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [100, 101]
        );
    }

    #[test]
    fn display_names_cannot_break_a_summary_line() {
        let messages = [SourceMessage {
            seq: 7,
            sender: "Eve\nAdmin",
            text: "Please rotate the signing keys tonight.",
        }];
        assert_eq!(
            summarize(&messages, 5).text,
            "Eve Admin: Please rotate the signing keys tonight."
        );
    }

    #[test]
    fn only_the_most_recent_messages_are_read() {
        let texts: Vec<String> = (0..MAX_MESSAGES + 100)
            .map(|i| format!("Message number {i} has content."))
            .collect();
        let messages: Vec<SourceMessage<'_>> = texts
            .iter()
            .zip(0..)
            .map(|(text, seq)| SourceMessage {
                seq,
                sender: "A",
                text,
            })
            .collect();
        let summary = summarize(&messages, 5);
        // "message", "number", "content" are in every sentence, so ignored: all scores tie and
        // the earliest sentences of the window win.
        assert_eq!(
            summary.sentences.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [100, 101, 102, 103, 104]
        );
    }

    #[test]
    fn only_the_most_recent_sentences_are_ranked() {
        let text: String = (0..MAX_CANDIDATES + 500)
            .map(|i| format!("Sentence number {i} says something. "))
            .collect();
        let messages = [SourceMessage {
            seq: 1,
            sender: "A",
            text: &text,
        }];
        let summary = summarize(&messages, 3);
        assert_eq!(
            summary
                .sentences
                .iter()
                .map(|p| p.sentence.as_str())
                .collect::<Vec<_>>(),
            [
                "Sentence number 500 says something.",
                "Sentence number 501 says something.",
                "Sentence number 502 says something.",
            ]
        );
    }

    #[test]
    fn the_worst_case_graph_stays_bounded() {
        // 3,000 sentences in groups of MAX_TERM_SENTENCES sharing MAX_TERMS_PER_SENTENCE words:
        // every word is just within the cap, the most pair work the caps allow, and each
        // sentence has more neighbours than it keeps.
        let sentence = |i: usize| {
            let group = i / MAX_TERM_SENTENCES;
            let words: Vec<String> = (0..MAX_TERMS_PER_SENTENCE)
                .map(|k| format!("w{group}k{k}"))
                .collect();
            format!("{} s{i}x.", words.join(" "))
        };
        let texts: Vec<String> = (0..MAX_CANDIDATES / 2)
            .map(|i| format!("{} {}", sentence(2 * i), sentence(2 * i + 1)))
            .collect();
        let messages: Vec<SourceMessage<'_>> = texts
            .iter()
            .zip(0..)
            .map(|(text, seq)| SourceMessage {
                seq,
                sender: "ci",
                text,
            })
            .collect();
        let started = std::time::Instant::now();
        let summary = summarize(&messages, 5);
        assert_eq!(summary.sentences.len(), 5);
        check_substrings_in_order(&messages, &summary);
        // Generous for a debug build on a busy machine; quadratic work would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }

    /// Chat-like text: words, punctuation, emoji, URLs, line breaks, and arbitrary characters.
    fn chat_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            6 => prop::sample::select(vec![
                "the", "database", "migration", "deploy", "Cache", "ok", "Straße", "über",
                "Tests", "schema", "e.g.", "Dr.", "don't", "is", "a", "I",
            ])
            .prop_map(str::to_owned),
            3 => prop::sample::select(vec![
                " ", " ", "  ", ". ", "! ", "? ", "...", "\n", "\r\n", "\t", ", ", "\u{2028}",
                "\u{85}", "\u{b}",
            ])
            .prop_map(str::to_owned),
            1 => prop::sample::select(vec![
                "👍", "👨‍👩‍👧‍👦", "🇩🇪", "e\u{301}", "\u{200d}", "\u{feff}", "😂😂",
            ])
            .prop_map(str::to_owned),
            1 => Just("https://example.org/a.b?c=d. ".to_owned()),
            1 => any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(proptest_config())]

        #[test]
        fn random_messages_never_panic_and_pick_only_their_own_sentences(
            raw in prop::collection::vec(("[A-Za-z\n ]{0,8}", chat_text()), 0..30),
            max in 0usize..8,
        ) {
            let messages: Vec<SourceMessage<'_>> = raw
                .iter()
                .zip(0..)
                .map(|((sender, text), seq)| SourceMessage { seq, sender, text })
                .collect();
            let summary = summarize(&messages, max);
            prop_assert!(summary.sentences.len() <= max);
            prop_assert_eq!(summary.text.is_empty(), summary.sentences.is_empty());
            check_substrings_in_order(&messages, &summary);
            prop_assert_eq!(summarize(&messages, max), summary);
        }
    }
}
