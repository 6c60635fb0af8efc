//! Test suites: Meta-shaped samples sent through hookd's own ingress, and what became of them.
//!
//! A test sample is an ordinary signed request in the journal, told apart by its request id
//! (`hookd-test.{suite}.{run}.{n}`), which ingress never takes from outside. From it the
//! normalizer delivers the sample's events only to the suite's endpoints and recognises
//! duplicates within the run alone, storage counts them apart, and receivers see
//! `"test": true`.

pub mod samples;
pub mod verdict;

pub use crate::model::test_suite::{is_test, request_id, test_of};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_request_id_names_its_suite_and_run_and_others_are_not_tests() {
        let id = request_id("ts_1", "run_2", 7);
        assert_eq!(test_of(&id), Some(("ts_1", "run_2")));
        assert!(is_test(&id));
        assert_eq!(test_of("3f2a9c"), None);
        assert!(!is_test("hookd-testing"));
    }
}
