//! Fault tests (issue 4): the producer under faults brokers cannot inject themselves, made
//! by the fault-injecting proxy (`common::proxy`) in front of tansu, and judged by the
//! delivery checker (`common::checker`) against what the rdkafka consumer reads back.

mod common;

use common::checker;

// ---------------------------------------------------------------------------------------
// The checker itself, on hand-made logs.
// ---------------------------------------------------------------------------------------

mod checker_unit {
    use super::checker::{check, decode, encode, Outcome, Sent};
    use super::common::ReadRecord;

    fn log(entries: &[(i32, usize, usize)]) -> Vec<ReadRecord> {
        entries
            .iter()
            .enumerate()
            .map(|(i, &(partition, thread, seq))| ReadRecord {
                partition,
                offset: i as i64,
                key: None,
                value: Some(encode(thread, seq, 20)),
                headers: Vec::new(),
                timestamp: 0,
            })
            .collect()
    }

    /// Two threads, three acked records each, alternating over partitions 0 and 1.
    fn sent() -> Vec<Vec<Sent>> {
        (0..2)
            .map(|_| {
                (0..3)
                    .map(|seq| Sent {
                        seq,
                        partition: Some(seq as i32 % 2),
                        outcome: Outcome::Acked,
                    })
                    .collect()
            })
            .collect()
    }

    const CLEAN: [(i32, usize, usize); 6] = [
        (0, 0, 0),
        (0, 1, 0),
        (0, 0, 2),
        (0, 1, 2),
        (1, 0, 1),
        (1, 1, 1),
    ];

    #[test]
    fn values_round_trip_and_pad_to_size() {
        let v = encode(3, 12345, 100);
        assert_eq!(v.len(), 100);
        assert!(v.starts_with(b"t3-s12345-"));
        assert_eq!(decode(&v), Some((3, 12345)));
        assert_eq!(decode(&encode(7, 0, 0)), Some((7, 0)));
        assert_eq!(decode(b"x3-s1-"), None);
        assert_eq!(decode(b"t3-s1"), None);
    }

    #[test]
    fn a_clean_run_reports_zeros() {
        let report = check(&sent(), &log(&CLEAN));
        let t = report.total;
        assert_eq!((t.sent, t.acked, t.failed, t.read_back), (6, 6, 0, 6));
        assert_eq!(
            (t.lost, t.duplicated, t.reordered, t.unexpected),
            (0, 0, 0, 0)
        );
        assert_eq!(report.partitions[&0].sent, 4);
        assert_eq!(report.partitions[&1].read_back, 2);
    }

    #[test]
    fn a_missing_acked_record_is_lost_but_a_missing_failed_one_is_not() {
        let mut sent = sent();
        sent[1][1].outcome = Outcome::Failed;
        let report = check(&sent, &log(&CLEAN[..4]));
        assert_eq!(report.total.lost, 1, "{report:?}");
        assert_eq!(report.partitions[&1].lost, 1);
        assert_eq!(report.total.failed, 1);
    }

    #[test]
    fn a_second_copy_is_a_duplicate_not_a_reordering() {
        let mut entries = CLEAN.to_vec();
        entries.insert(2, (0, 0, 0));
        let report = check(&sent(), &log(&entries));
        assert_eq!(report.total.duplicated, 1);
        assert_eq!(report.partitions[&0].duplicated, 1);
        assert_eq!((report.total.reordered, report.total.lost), (0, 0));
    }

    #[test]
    fn a_lower_sequence_after_a_higher_one_of_the_same_thread_is_reordered() {
        let entries = [
            (0, 0, 2),
            (0, 1, 0),
            (0, 0, 0),
            (0, 1, 2),
            (1, 0, 1),
            (1, 1, 1),
        ];
        let report = check(&sent(), &log(&entries));
        assert_eq!(report.total.reordered, 1);
        assert_eq!(report.partitions[&0].reordered, 1);
        assert_eq!((report.total.duplicated, report.total.lost), (0, 0));
    }

    #[test]
    fn a_record_never_sent_is_unexpected() {
        let mut entries = CLEAN.to_vec();
        entries.push((1, 5, 0));
        let report = check(&sent(), &log(&entries));
        assert_eq!(report.total.unexpected, 1);
        assert!(report.total.to_string().ends_with("unexpected 1"));
    }

    #[test]
    fn the_totals_line_names_every_count() {
        let report = check(&sent(), &log(&CLEAN));
        assert_eq!(
            report.total.to_string(),
            "sent 6, acked 6, failed 0, read back 6, lost 0, duplicated 0, reordered 0"
        );
    }
}
