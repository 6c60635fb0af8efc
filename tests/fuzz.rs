//! Property-based fuzzing of what parses input from outside: the envelope splitter (seeded with
//! Meta's real bodies from `tests/fixtures/meta`, then mutated), the signature header, ids and
//! cursors, durations and configuration files, and the endpoint URL check. Each property runs
//! `PROPTEST_CASES` cases (256 by default: the short run `cargo test` makes); a long run is
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use hookd::delivery::endpoint::{EndpointInput, UrlRules, apply};
use hookd::delivery::ssrf::AddressPolicy;
use hookd::meta::signature::{sign, verify};
use hookd::meta::split;
use hookd::model::Endpoint;
use hookd::store::ids::EntryId;
use proptest::prelude::*;

/// Every fixture body, the seed corpus.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out = Vec::new();
        let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("fixtures") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    out.push(std::fs::read(&path).expect("fixture"));
                }
            }
        }
        out.sort();
        assert!(out.len() >= 10, "the corpus holds the fixtures");
        out
    })
}

/// One edit of a body: what a fuzzer's mutator does.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: usize,
        bit: u8,
    },
    SetByte {
        at: usize,
        byte: u8,
    },
    Truncate {
        at: usize,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Duplicate {
        at: usize,
        len: usize,
    },
    /// Splice in a piece of another fixture.
    Splice {
        at: usize,
        other: usize,
        from: usize,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (
            at,
            prop::sample::select(b"{}[]\":,0-9aeflnrstu\\ \x00\xff".to_vec())
        )
            .prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, 1usize..256).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (at, any::<usize>(), any::<usize>(), 1usize..256).prop_map(|(at, other, from, len)| {
            Mutation::Splice {
                at,
                other,
                from,
                len,
            }
        }),
    ]
}

fn mutate(mut body: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if body.is_empty() {
        return body;
    }
    let n = body.len();
    match *m {
        Mutation::FlipBit { at, bit } => body[at % n] ^= 1 << bit,
        Mutation::SetByte { at, byte } => body[at % n] = byte,
        Mutation::Truncate { at } => body.truncate(at % n),
        Mutation::Delete { at, len } => {
            let at = at % n;
            body.drain(at..(at + len).min(n));
        }
        Mutation::Duplicate { at, len } => {
            let at = at % n;
            let piece = body[at..(at + len).min(n)].to_vec();
            body.splice(at..at, piece);
        }
        Mutation::Splice {
            at,
            other,
            from,
            len,
        } => {
            let other = &corpus()[other % corpus().len()];
            let from = from % other.len().max(1);
            let piece = other[from..(from + len).min(other.len())].to_vec();
            let at = at % n;
            body.splice(at..at, piece);
        }
    }
    body
}

fn private_ipv4() -> impl Strategy<Value = [u8; 4]> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[b, c, d]| [10, b, c, d]),
        any::<[u8; 3]>().prop_map(|[b, c, d]| [127, b, c, d]),
        any::<[u8; 2]>().prop_map(|[c, d]| [169, 254, c, d]),
        any::<[u8; 2]>().prop_map(|[c, d]| [192, 168, c, d]),
        (16u8..32, any::<[u8; 2]>()).prop_map(|(b, [c, d])| [172, b, c, d]),
        Just([0, 0, 0, 0]),
    ]
}

/// The spellings of an IPv4 address that WHATWG URL parsers (and resolvers) accept.
fn spelled(ip: [u8; 4], style: u8) -> String {
    let n = u32::from_be_bytes(ip);
    match style % 6 {
        0 => format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
        1 => n.to_string(),
        2 => format!("0x{n:x}"),
        3 => format!("0{:o}.0{:o}.0{:o}.0{:o}", ip[0], ip[1], ip[2], ip[3]),
        4 => format!("{}.{}.{}.{}.", ip[0], ip[1], ip[2], ip[3]),
        _ => format!(
            "0x{:x}.{}",
            ip[0],
            u32::from_be_bytes([0, ip[1], ip[2], ip[3]])
        ),
    }
}

fn try_url(url: &str) -> Result<(), String> {
    let guard = AddressPolicy::new(Vec::new());
    let rules = UrlRules {
        https_only: false,
        guard: &guard,
    };
    let mut endpoint = Endpoint::new("", 0);
    let input = EndpointInput {
        url: Some(url.to_string()),
        ..EndpointInput::default()
    };
    apply(&mut endpoint, input, &rules).map_err(|e| e.to_string())
}

proptest! {
    #[test]
    fn mutated_meta_bodies_never_panic_the_splitter_and_what_splits_is_json(
        seed in any::<usize>(),
        edits in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut body = corpus()[seed % corpus().len()].clone();
        for m in &edits {
            body = mutate(body, m);
        }
        if let Ok(parts) = split(&mut body.clone()) {
            for event in &parts.events {
                prop_assert!(serde_json::from_str::<serde_json::Value>(&event.data).is_ok());
            }
        }
    }

    #[test]
    fn any_signature_header_is_judged_without_panicking_and_only_the_right_one_passes(
        header in prop::collection::vec(any::<u8>(), 0..96),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let secrets = ["s3cret".as_bytes()];
        let right = sign(secrets[0], &body);
        let verdict = verify(Some(&header), &body, &secrets);
        prop_assert_eq!(verdict.is_ok(), header == right.as_bytes());
        prop_assert!(verify(Some(right.as_bytes()), &body, &secrets).is_ok());
    }

    #[test]
    fn ids_and_cursors_parse_only_what_was_made_and_read_back_the_same(
        text in "\\PC{0,40}",
        ms in any::<u64>(),
        seq in any::<u64>(),
    ) {
        if let Some(id) = EntryId::parse(&text) {
            prop_assert_eq!(EntryId::parse(&id.to_string()), Some(id));
        }
        let made = format!("{ms}-{seq}");
        let id = EntryId::parse(&made);
        prop_assert!(id.is_some());
        prop_assert_eq!(id.map(|i| i.to_string()), Some(made));
    }

    #[test]
    fn durations_parse_or_are_refused_without_panicking(text in "\\PC{0,24}") {
        let _ = humantime::parse_duration(&text);
    }

    #[test]
    fn configuration_files_load_or_are_refused_naming_the_problem(
        section in prop::sample::select(vec!["server", "storage", "redis", "ingress", "normalizer",
            "retention", "delivery", "api", "metrics", "log", "security", "sources.x", "bogus"]),
        key in prop::sample::select(vec!["listen", "workers", "batch", "block", "linger",
            "path", "url", "max_page_size", "level", "encryption_key", "retry_schedule",
            "app_secrets", "bogus"]),
        value in prop_oneof![
            Just("\"5s\"".to_string()),
            Just("\"\"".to_string()),
            Just("-1".to_string()),
            Just("99999999999999999999".to_string()),
            Just("[\"1s\", \"x\"]".to_string()),
            Just("true".to_string()),
            "\"\\PC{0,12}\"",
            "[0-9]{1,6}",
        ],
    ) {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(file, "[{section}]\n{key} = {value}").expect("write");
        let env = figment::providers::Env::prefixed("HOOKD_FUZZ_NOTHING_");
        if let Err(e) = hookd::config::Settings::load_with_env(Some(file.path()), env) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn no_spelling_of_a_private_address_passes_the_url_check(
        ip in private_ipv4(),
        style in any::<u8>(),
        scheme in prop::sample::select(vec!["http", "https", "HTTP"]),
        port in prop::option::of(1u16..),
        path in "(/[a-z0-9]{0,8}){0,3}",
    ) {
        let host = spelled(ip, style);
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let url = format!("{scheme}://{host}{port}{path}");
        prop_assert!(try_url(&url).is_err(), "{url} was accepted");
    }

    #[test]
    fn any_text_as_an_endpoint_url_is_judged_without_panicking(url in "\\PC{0,80}") {
        let _ = try_url(&url);
    }
}
