//! Word lists the guards read: generic English (stopwords, negators, number words, calendar
//! words, common antonym and synonym pairs), not lists of any benchmark's words.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::text::stem;

/// Function words: they carry grammar, not the subject of a question, so swapping or adding
/// one does not change what is asked (negators and contrast words have guards of their own).
#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
    "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself",
    "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
    "who", "whom", "whose", "this", "that", "these", "those", "am", "is", "are", "was", "were",
    "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "done",
    "a", "an", "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at",
    "by", "for", "with", "about", "against", "between", "into", "through", "during", "before",
    "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over",
    "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how",
    "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor",
    "not", "only", "own", "same", "so", "than", "too", "very", "can", "will", "just", "should",
    "now", "could", "would", "shall", "may", "might", "must", "also", "ever", "whether", "via",
    "per", "let", "us", "one", "ones", "anyone", "someone", "something", "anything", "thing",
    "things", "way", "ways", "able", "possible", "please", "get", "got", "getting", "go",
    "going", "want", "like", "need", "know", "tell", "still", "really", "actually", "much",
    "many", "else", "yet", "within", "without", "onto", "upon", "across", "along", "around",
    "towards", "toward", "whatever", "whenever", "wherever", "however", "okay", "ok",
];

/// Interjections and discourse words (`sorry`, `wondering`): never the subject of a question.
#[rustfmt::skip]
const INTERJECTIONS: &[&str] = &[
    "hi", "hello", "hey", "hiya", "thanks", "thank", "thx", "cheers", "please", "pls", "plz",
    "um", "umm", "uh", "uhh", "er", "erm", "hmm", "ah", "oh", "okay", "ok", "yeah", "yes", "yep",
    "sorry", "wonder", "wondering", "wondered", "curious", "kindly", "exactly", "basically",
    "probably", "roughly", "approximately", "anyway", "btw", "asap", "bother", "excuse",
];

/// Light and linking verbs (`make a claim`/`submit a claim`, `is there Wi-Fi`/`is Wi-Fi
/// available`, `is it open`/`does it stay open`): they lend a frame to the noun that carries the
/// meaning and are freely swapped in paraphrases, so the content-word guards skip them.
#[rustfmt::skip]
const LIGHT_WORDS: &[&str] = &[
    "get", "make", "do", "have", "take", "give", "set", "put", "keep", "come", "go", "request",
    "receive", "obtain", "submit", "offer", "provide", "need", "require", "available", "create",
    "order", "stay", "remain", "become", "seem", "appear", "able", "possible", "allowed",
    "ask", "help", "assist", "best", "include", "contain", "calculate", "compute", "explain", "describe",
    // Shell nouns: `the minimum order value` is `the minimum order`.
    "value", "amount", "number", "level", "type", "kind", "sort", "process", "procedure",
    "method", "step", "steps", "detail", "details", "information", "option", "options",
];

/// Currency names: the amount is what matters (the numbers guard compares it), and `£50`
/// is `fifty pounds`.
#[rustfmt::skip]
const CURRENCIES: &[&str] = &[
    "pound", "pounds", "quid", "penny", "pence", "p", "dollar", "dollars", "buck", "bucks",
    "cent", "cents", "euro", "euros", "yen", "usd", "gbp", "eur", "sterling",
];

/// Words and word parts that negate what follows them.
#[rustfmt::skip]
const NEGATORS: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without",
    "non", "cannot",
];

/// Verbs and adjectives whose meaning is a negation of an action ("avoid eating" is "do not
/// eat"): they flip a question's polarity as `not` does.
#[rustfmt::skip]
const NEGATIVE_POLARITY: &[&str] = &[
    "avoid", "stop", "cease", "quit", "prevent", "refuse", "reject", "decline", "deny", "ban",
    "prohibit", "forbid", "exclude", "lack", "fail", "unable", "illegal", "unlawful",
    "impossible", "against",
];

/// Prefixes that turn a word into its negation (`safe`/`unsafe`, `members`/`non-members`).
#[rustfmt::skip]
pub(super) const NEGATING_PREFIXES: &[&str] = &["un", "in", "im", "il", "ir", "dis", "non"];

/// Pairs of common English antonyms (opposite polarity or direction). Matched on stems, so
/// inflections (`increase`/`decreased`, `benefits`/`drawbacks`) count too.
#[rustfmt::skip]
const ANTONYMS: &[(&str, &str)] = &[
    ("accept", "decline"), ("accept", "reject"), ("accept", "refuse"), ("add", "remove"),
    ("add", "delete"), ("add", "subtract"), ("allow", "ban"), ("allow", "block"),
    ("allow", "deny"), ("allow", "forbid"), ("allow", "prohibit"), ("permit", "forbid"),
    ("permit", "prohibit"), ("approve", "reject"), ("approve", "deny"), ("grant", "revoke"),
    ("grant", "deny"), ("include", "exclude"), ("enable", "disable"), ("activate", "deactivate"),
    ("connect", "disconnect"), ("join", "leave"), ("login", "logout"), ("arrive", "depart"),
    ("arrival", "departure"), ("import", "export"), ("upload", "download"),
    ("upgrade", "downgrade"), ("inbound", "outbound"), ("incoming", "outgoing"),
    ("increase", "decrease"), ("increase", "reduce"), ("increase", "lower"), ("raise", "lower"),
    ("rise", "fall"), ("maximum", "minimum"), ("max", "min"), ("maximise", "minimise"),
    ("maximize", "minimize"), ("more", "less"), ("more", "fewer"), ("most", "least"),
    ("most", "fewest"), ("higher", "lower"), ("high", "low"), ("highest", "lowest"),
    ("big", "small"), ("bigger", "smaller"), ("biggest", "smallest"), ("large", "small"),
    ("larger", "smaller"), ("largest", "smallest"), ("long", "short"), ("longer", "shorter"),
    ("longest", "shortest"), ("fast", "slow"), ("faster", "slower"), ("fastest", "slowest"),
    ("early", "late"), ("earlier", "later"), ("earliest", "latest"), ("before", "after"),
    ("within", "after"), ("within", "outside"), ("inside", "outside"),
    ("internal", "external"), ("above", "below"), ("over", "under"), ("up", "down"),
    ("on", "off"), ("in", "out"), ("open", "closed"), ("open", "close"), ("open", "shut"),
    ("start", "stop"), ("start", "end"), ("start", "finish"), ("begin", "end"),
    ("pause", "resume"), ("stop", "resume"), ("show", "hide"), ("hidden", "visible"),
    ("public", "private"), ("buy", "sell"), ("send", "receive"), ("lend", "borrow"),
    ("give", "take"), ("push", "pull"), ("win", "lose"), ("gain", "lose"), ("profit", "loss"),
    ("credit", "debit"), ("deposit", "withdraw"), ("pass", "fail"), ("success", "failure"),
    ("true", "false"), ("right", "wrong"), ("correct", "incorrect"), ("good", "bad"),
    ("better", "worse"), ("best", "worst"), ("benefit", "drawback"),
    ("benefit", "disadvantage"), ("advantage", "disadvantage"), ("pro", "con"),
    ("upside", "downside"), ("positive", "negative"), ("safe", "dangerous"), ("hot", "cold"),
    ("warm", "cool"), ("wet", "dry"), ("heavy", "light"), ("full", "empty"), ("old", "new"),
    ("older", "newer"), ("oldest", "newest"), ("young", "old"), ("younger", "older"),
    ("youngest", "oldest"), ("first", "last"), ("next", "previous"), ("always", "never"),
    ("all", "none"), ("everyone", "nobody"), ("everything", "nothing"), ("remember", "forget"),
    ("keep", "discard"), ("love", "hate"), ("like", "dislike"), ("agree", "disagree"),
    ("mild", "severe"), ("mild", "strong"), ("strong", "weak"), ("light", "dark"),
    ("day", "night"), ("morning", "evening"), ("north", "south"), ("east", "west"),
    ("left", "right"), ("top", "bottom"), ("front", "back"), ("forward", "backward"),
    ("ascending", "descending"), ("encrypt", "decrypt"), ("improve", "worsen"),
    ("help", "hurt"), ("cheap", "expensive"), ("rich", "poor"), ("wide", "narrow"),
    ("thick", "thin"), ("hard", "soft"), ("hard", "easy"), ("easy", "difficult"),
    ("simple", "complex"), ("loud", "quiet"), ("clean", "dirty"), ("tight", "loose"),
    ("asleep", "awake"), ("alive", "dead"), ("employer", "employee"), ("buyer", "seller"),
    ("sender", "recipient"), ("lender", "borrower"), ("host", "guest"), ("input", "output"),
    ("entry", "exit"), ("enter", "exit"), ("plus", "minus"), ("multiply", "divide"),
    ("upper", "lower"), ("major", "minor"), ("senior", "junior"), ("import", "export"),
    ("attach", "detach"), ("lock", "unlock"), ("compress", "decompress"),
    ("expand", "collapse"), ("include", "omit"), ("with", "without"), ("succeed", "fail"),
];

/// Groups of common English near-synonyms: swapping one for another keeps the question.
#[rustfmt::skip]
const SYNONYMS: &[&[&str]] = &[
    &["get", "receive", "obtain", "acquire"],
    &["buy", "purchase"],
    &["begin", "start", "commence"],
    &["end", "finish", "complete"],
    &["shop", "store", "outlet"],
    &["big", "large", "huge"],
    &["biggest", "largest"],
    &["small", "little", "tiny"],
    &["fast", "quick", "rapid", "speedy"],
    &["fastest", "quickest"],
    &["quickly", "fast", "rapidly"],
    &["tallest", "highest"],
    &["help", "assist", "support"],
    &["need", "require"],
    &["want", "wish"],
    &["choose", "select", "pick"],
    &["ask", "request", "enquire", "inquire"],
    &["answer", "reply", "respond", "response"],
    &["tell", "inform", "notify"],
    &["find", "locate"],
    &["fix", "repair", "mend"],
    &["change", "modify", "alter", "amend", "update", "edit", "adjust"],
    &["show", "display"],
    &["hide", "conceal"],
    &["use", "utilise", "utilize", "usage"],
    &["cost", "price", "fee", "charge", "rate"],
    &["expensive", "costly", "pricey"],
    &["cheap", "inexpensive", "affordable"],
    &["free", "complimentary"],
    &["road", "street"],
    &["car", "vehicle", "automobile"],
    &["kid", "kids", "child", "children"],
    &["people", "persons"],
    &["student", "pupil"],
    &["home", "house"],
    &["flat", "apartment"],
    &["error", "mistake"],
    &["delete", "remove", "erase"],
    &["submit", "send"],
    &["deliver", "ship"],
    &["delivery", "shipping", "postage"],
    &["parcel", "package"],
    &["bill", "invoice"],
    &["book", "booking", "reserve", "reservation"],
    &["register", "registration", "enrol", "enroll", "signup"],
    &["login", "signin", "log", "sign"],
    &["correct", "accurate"],
    &["enough", "sufficient"],
    &["maybe", "perhaps", "possibly"],
    &["usually", "normally", "typically", "generally"],
    &["allow", "permit", "let"],
    &["allowed", "permitted"],
    &["required", "mandatory", "compulsory", "obligatory"],
    &["prohibit", "forbid", "ban"],
    &["phone", "telephone", "mobile", "cellphone"],
    &["app", "application"],
    &["doctor", "physician", "gp"],
    &["medicine", "medication", "drug"],
    &["pill", "tablet"],
    &["holiday", "vacation"],
    &["salary", "wage"],
    &["film", "movie"],
    &["trip", "journey"],
    &["toilet", "restroom", "bathroom", "loo"],
    &["lift", "elevator"],
    &["rubbish", "trash", "garbage"],
    &["timetable", "schedule"],
    &["postcode", "zipcode"],
    &["shut", "close"],
    &["speak", "talk", "chat"],
    &["stay", "remain"],
    &["contact", "reach"],
    &["nearest", "closest"],
    &["nearby", "near"],
    &["previous", "earlier", "prior", "former"],
    &["latest", "newest", "recent"],
    &["final", "last"],
    &["rule", "regulation"],
    &["often", "frequently"],
    &["issue", "problem", "trouble", "fault"],
    &["broken", "faulty", "damaged"],
    &["create", "make"],
    &["warranty", "guarantee"],
    &["easy", "simple"],
    &["hard", "difficult"],
    &["guide", "tutorial", "instructions"],
];

/// Greetings, thanks and hedges: a leading or trailing clause made only of these is filler.
#[rustfmt::skip]
const FILLERS: &[&str] = &[
    "hi", "hello", "hey", "hiya", "heya", "howdy", "greetings", "dear", "good", "morning",
    "afternoon", "evening", "thanks", "thank", "thx", "ta", "cheers", "please", "pls", "plz",
    "um", "umm", "uh", "uhh", "er", "erm", "hmm", "ah", "oh", "so", "okay", "ok", "yeah", "yes",
    "yep", "well", "right", "just", "quick", "question", "wondering", "team", "there", "all",
    "everyone", "folks", "guys", "you", "very", "much", "many", "a", "lot", "in", "advance",
    "again", "anyway", "one", "sir", "madam", "and", "regards", "kind", "best", "wishes",
];

/// Hesitations dropped wherever they appear.
#[rustfmt::skip]
const DISFLUENCIES: &[&str] = &["um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "please", "pls", "plz"];

/// Discourse openers dropped from the start of a question.
#[rustfmt::skip]
const OPENERS: &[&str] = &[
    "so", "okay", "ok", "yeah", "well", "oh", "and", "hi", "hey", "hello", "hiya", "anyway",
    "right", "also",
];

/// Weekdays (a trailing plural `s` is dropped before lookup).
#[rustfmt::skip]
pub(super) const WEEKDAYS: &[&str] = &[
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
];

/// Months, with the usual abbreviations that are not also common words.
#[rustfmt::skip]
pub(super) const MONTHS: &[(&str, &str)] = &[
    ("january", "january"), ("jan", "january"), ("february", "february"), ("feb", "february"),
    ("march", "march"), ("april", "april"), ("apr", "april"), ("may", "may"), ("june", "june"),
    ("july", "july"), ("august", "august"), ("aug", "august"), ("september", "september"),
    ("sept", "september"), ("sep", "september"), ("october", "october"), ("oct", "october"),
    ("november", "november"), ("nov", "november"), ("december", "december"),
    ("dec", "december"),
];

/// Words naming a day relative to now, a season or a holiday period.
#[rustfmt::skip]
pub(super) const RELATIVE_DAYS: &[&str] = &[
    "today", "tomorrow", "yesterday", "tonight", "overnight", "weekend", "weekday", "weekdays",
    "spring", "summer", "autumn", "winter", "christmas", "easter", "midnight", "noon", "midday",
];

/// Modifiers that, before a period of time, pick a different period (`next week`).
#[rustfmt::skip]
pub(super) const PERIOD_MODIFIERS: &[&str] = &[
    "next", "last", "previous", "this", "same", "coming", "past", "following", "current",
];

/// Periods of time a [`PERIOD_MODIFIERS`] word can pick.
#[rustfmt::skip]
pub(super) const PERIODS: &[&str] = &[
    "day", "week", "month", "year", "weekend", "morning", "afternoon", "evening", "night",
    "quarter", "season", "decade", "century", "term", "semester", "fortnight", "hour", "minute",
];

/// Cardinal number words and their values.
#[rustfmt::skip]
pub(super) const CARDINALS: &[(&str, u64)] = &[
    ("zero", 0), ("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6),
    ("seven", 7), ("eight", 8), ("nine", 9), ("ten", 10), ("eleven", 11), ("twelve", 12),
    ("thirteen", 13), ("fourteen", 14), ("fifteen", 15), ("sixteen", 16), ("seventeen", 17),
    ("eighteen", 18), ("nineteen", 19), ("twenty", 20), ("thirty", 30), ("forty", 40),
    ("fifty", 50), ("sixty", 60), ("seventy", 70), ("eighty", 80), ("ninety", 90),
    ("dozen", 12),
];

/// Scale words (`two hundred`, `five thousand`).
#[rustfmt::skip]
pub(super) const SCALES: &[(&str, u64)] = &[
    ("hundred", 100), ("thousand", 1_000), ("million", 1_000_000), ("billion", 1_000_000_000),
];

/// Ordinal number words and their values.
#[rustfmt::skip]
pub(super) const ORDINALS: &[(&str, u64)] = &[
    ("first", 1), ("second", 2), ("third", 3), ("fourth", 4), ("fifth", 5), ("sixth", 6),
    ("seventh", 7), ("eighth", 8), ("ninth", 9), ("tenth", 10), ("eleventh", 11),
    ("twelfth", 12), ("thirteenth", 13), ("fourteenth", 14), ("fifteenth", 15),
    ("sixteenth", 16), ("seventeenth", 17), ("eighteenth", 18), ("nineteenth", 19),
    ("twentieth", 20), ("thirtieth", 30), ("fortieth", 40), ("fiftieth", 50),
    ("hundredth", 100), ("thousandth", 1000),
];

/// Words around a quantity that say which side of it is meant (`under £50`, `after 5pm`).
/// Two different ones (one per query) make different questions.
#[rustfmt::skip]
pub(super) const COMPARATORS: &[&str] = &[
    "under", "over", "above", "below", "before", "after", "within", "until", "till", "since",
    "less", "more", "fewer", "least", "most", "maximum", "minimum", "max", "min", "exceeding",
    "upto",
];

/// Prepositions that give the words around them a role (source, destination, comparison):
/// swapping what stands on each side swaps the question.
#[rustfmt::skip]
pub(super) const ROLE_PREPOSITIONS: &[&str] =
    &["from", "to", "into", "onto", "than", "vs", "versus", "towards", "toward"];

fn set(words: &[&'static str]) -> HashSet<&'static str> {
    words.iter().copied().collect()
}

static STOPWORD_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    let mut words = set(STOPWORDS);
    words.extend(INTERJECTIONS);
    words
});
static LIGHT_STEMS: LazyLock<HashSet<String>> =
    LazyLock::new(|| LIGHT_WORDS.iter().map(|w| stem(w)).collect());
static NEGATOR_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| set(NEGATORS));
static FILLER_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| set(FILLERS));
static NEGATIVE_POLARITY_STEMS: LazyLock<HashSet<String>> =
    LazyLock::new(|| NEGATIVE_POLARITY.iter().map(|w| stem(w)).collect());
static ANTONYM_STEMS: LazyLock<HashMap<String, Vec<String>>> = LazyLock::new(|| {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (a, b) in ANTONYMS {
        let (a, b) = (stem(a), stem(b));
        map.entry(a.clone()).or_default().push(b.clone());
        map.entry(b).or_default().push(a);
    }
    map
});
static SYNONYM_GROUPS: LazyLock<HashMap<String, Vec<usize>>> = LazyLock::new(|| {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for (group, words) in SYNONYMS.iter().enumerate() {
        for word in *words {
            map.entry(stem(word)).or_default().push(group);
        }
    }
    map
});

/// Whether `word` (lowercase) is a function word.
pub(super) fn is_stopword(word: &str) -> bool {
    STOPWORD_SET.contains(word)
}

/// Whether `word` (lowercase) names a currency.
pub(super) fn is_currency(word: &str) -> bool {
    CURRENCIES.contains(&word)
}

/// Whether the stem is a light or linking verb.
pub(super) fn is_light(stem: &str) -> bool {
    LIGHT_STEMS.contains(stem)
}

/// Whether `word` (lowercase) is a greeting, thanks or hedge.
pub(super) fn is_filler(word: &str) -> bool {
    FILLER_SET.contains(word)
}

/// Whether `word` (lowercase) is dropped wherever it appears.
pub(super) fn is_disfluency(word: &str) -> bool {
    DISFLUENCIES.contains(&word)
}

/// Whether `word` (lowercase) is a discourse opener.
pub(super) fn is_opener(word: &str) -> bool {
    OPENERS.contains(&word)
}

/// Whether the word (lowercase text and stem) negates: `not`, `never`, `avoid`, ...
pub(super) fn is_negator(word: &str, stem: &str) -> bool {
    NEGATOR_SET.contains(word) || NEGATIVE_POLARITY_STEMS.contains(stem)
}

/// Whether two stems are a known antonym pair.
pub(super) fn are_antonyms(a: &str, b: &str) -> bool {
    ANTONYM_STEMS
        .get(a)
        .is_some_and(|opposites| opposites.iter().any(|o| o == b))
}

/// Whether two stems share a synonym group.
pub(super) fn are_synonyms(a: &str, b: &str) -> bool {
    match (SYNONYM_GROUPS.get(a), SYNONYM_GROUPS.get(b)) {
        (Some(x), Some(y)) => x.iter().any(|g| y.contains(g)),
        _ => false,
    }
}
