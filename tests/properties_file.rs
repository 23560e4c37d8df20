//! Java producer `.properties` files as they are: read exactly as `java.util.Properties`
//! reads them (checked against Java itself), and a realistic Java producer file, with its
//! security settings and a secret from Kafka's file config provider, producing to a real
//! Kafka node unchanged (read back by the Java consumer).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::secure::{self, Listener, ALICE, ALICE_PASSWORD};
use common::unique_topic;
use kafka_producer::{Error, Producer, ProducerRecord, StringSerializer};

/// Every corner of the syntax: separators, comments, continuations over `\n`, `\r\n` and
/// `\r`, escapes in keys and values, `\u` escapes with a surrogate pair, literal non-ASCII,
/// form feeds, trailing whitespace, empty values, a repeated key and a final backslash.
const TRICKY: &str = concat!(
    "# comment\n",
    "! bang comment \\\n",
    "plain=1\n",
    "  indented : 2\n",
    "spaced   3\n",
    "tabbed\t=\t4\t \n",
    "keyonly\n",
    "empty=\n",
    "eq==5\n",
    "colon:=6\n",
    "ws_then_eq  =  = 7\n",
    "esc\\ key\\=with\\:seps = v\n",
    "escapes=t\\tn\\nr\\rf\\fq\\q\\\\back\n",
    "unicode=caf\\u00e9 \\uD83D\\uDE00 \\u0041\n",
    "literal=ünïcødé ✓\n",
    "continued = first \\\n",
    "     second \\\r\n",
    "\t third\\\\\n",
    "crlf=a\r\n",
    "cr=b\r",
    "hash_cont=x \\\n",
    "  # not a comment\n",
    "formfeed\x0c=\x0cff\n",
    "repeat=first\n",
    "repeat=second\n",
    "blank_cont=a\\\n",
    "\n",
    "after_blank=z\n",
    "final=end\\",
);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kafka-producer-{name}-{}-{}",
        std::process::id(),
        unique_topic("d")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn properties_text_reads_as_javas_properties_load_reads_it() {
    let dir = temp_dir("props-syntax");
    let file = dir.join("tricky.properties");
    std::fs::write(&file, TRICKY).unwrap();
    let out = common::kafka::distribution()
        .java()
        .arg("LoadProperties")
        .arg(&file)
        .output()
        .expect("run the Java properties reader");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "LoadProperties failed: {out:?}");
    let text = |hex: &str| String::from_utf8(common::kafka::unhex(hex)).unwrap();
    let java: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (k, v) = line.split_once('\t').expect("key<TAB>value");
            (text(k), text(v))
        })
        .collect();
    let ours: BTreeMap<String, String> = kafka_producer::config::parse_properties(TRICKY)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ours, java);
    // The comparison means something only if the file exercised what it meant to.
    assert_eq!(java.len(), 22, "{java:#?}");
    assert_eq!(java["continued"], "first second third\\");
    assert_eq!(java["unicode"], "café 😀 A");
}

/// A Java producer file of a service that writes text keys and values over SASL_SSL, its
/// password in a separate secrets file read through Kafka's `FileConfigProvider`.
fn java_service_file(bootstrap: &str, ca: &str, secrets: &str) -> String {
    format!(
        r#"# orders-service: Kafka producer settings
# (copied unchanged from the Java service's src/main/resources/producer.properties)

bootstrap.servers={bootstrap}
client.id=orders-service

key.serializer=org.apache.kafka.common.serialization.StringSerializer
value.serializer=org.apache.kafka.common.serialization.StringSerializer

# durability
acks=all
enable.idempotence=true
retries=2147483647
max.in.flight.requests.per.connection=5
delivery.timeout.ms=120000

# throughput
linger.ms=10
batch.size=32768
compression.type=lz4
buffer.memory=33554432

# security
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
    username="{ALICE}" \
    password="${{secrets:{secrets}:kafka.password}}";
ssl.truststore.type=PEM
ssl.truststore.location={ca}
config.providers=secrets
config.providers.secrets.class=org.apache.kafka.common.config.provider.FileConfigProvider

# Java-side settings with no meaning for a Rust client
client.dns.lookup=use_all_dns_ips
interceptor.classes=
metric.reporters=
metrics.recording.level=INFO
metrics.num.samples=2
enable.metrics.push=false
"#
    )
}

#[test]
fn a_java_producer_file_produces_unchanged_over_sasl_ssl() {
    let kafka = secure::shared();
    let topic = unique_topic("props-file");
    kafka.create_topic(&topic, 3);
    let dir = temp_dir("props-service");
    let secrets = dir.join("secrets.properties");
    std::fs::write(&secrets, format!("kafka.password = {ALICE_PASSWORD}\n")).unwrap();
    let file = dir.join("producer.properties");
    let bootstrap = kafka.bootstrap(Listener::SaslSsl);
    let ca = kafka.certs.ca_path().display().to_string();
    let text = java_service_file(&bootstrap, &ca, &secrets.display().to_string());
    std::fs::write(&file, &text).unwrap();

    let producer: Producer<String, String> = Producer::builder()
        .properties_file(&file)
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer)
        .build()
        .expect("a producer from the Java file");
    std::fs::remove_dir_all(&dir).unwrap();
    let debug = format!("{producer:?}");
    assert!(
        !debug.contains(ALICE_PASSWORD),
        "the secret in Debug: {debug}"
    );

    const RECORDS: usize = 300;
    let futures: Vec<_> = (0..RECORDS)
        .map(|i| {
            let record = ProducerRecord::new(topic.as_str(), format!("order {i}"))
                .with_key(format!("customer-{}", i % 7));
            producer.send(record)
        })
        .collect();
    let acked: Vec<_> = futures
        .into_iter()
        .map(|f| f.wait().expect("acknowledged"))
        .collect();
    producer.close().unwrap();

    let read = kafka.java_read(&topic, RECORDS, Duration::from_secs(60));
    assert_eq!(read.len(), RECORDS, "every record read back once");
    // Each customer's orders on one partition, in send order, where acknowledged.
    let mut next_per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in &read {
        let key = String::from_utf8(r.key.clone().expect("a key")).unwrap();
        let value = String::from_utf8(r.value.clone().expect("a value")).unwrap();
        let i: usize = value.strip_prefix("order ").unwrap().parse().unwrap();
        assert_eq!(key, format!("customer-{}", i % 7));
        assert_eq!(acked[i].partition(), r.partition, "record {i}");
        assert_eq!(acked[i].offset(), r.offset, "record {i}");
        let next = next_per_key.entry(key).or_insert(i % 7);
        assert_eq!(*next, i, "per-key order");
        *next += 7;
    }
}

#[test]
fn a_file_with_string_serializers_needs_string_serializers() {
    let dir = temp_dir("props-mismatch");
    let file = dir.join("producer.properties");
    std::fs::write(
        &file,
        "bootstrap.servers=localhost:9092\n\
         key.serializer=org.apache.kafka.common.serialization.StringSerializer\n\
         value.serializer=org.apache.kafka.common.serialization.ByteArraySerializer\n",
    )
    .unwrap();
    let bytes = Producer::from_properties_file(&file);
    let strings: Result<Producer<String, Vec<u8>>, Error> = Producer::builder()
        .properties_file(&file)
        .key_serializer(StringSerializer)
        .build();
    std::fs::remove_dir_all(&dir).unwrap();
    match bytes {
        Err(Error::Config(m)) => assert!(
            m.contains("key.serializer") && m.contains("StringSerializer"),
            "{m}"
        ),
        other => panic!("a bytes producer from a StringSerializer file: {other:?}"),
    }
    let strings = strings.expect("StringSerializer for keys, bytes for values");
    strings.close().unwrap();
    let unknown =
        Producer::from_properties_reader(&b"bootstrap.servers=localhost:9092\nlinger.mss=5\n"[..]);
    assert!(
        matches!(&unknown, Err(Error::Config(m)) if m.contains("did you mean \"linger.ms\"")),
        "{unknown:?}"
    );
    let lenient = Producer::builder()
        .lenient()
        .properties_reader(&b"bootstrap.servers=localhost:9092\nlinger.mss=5\n"[..])
        .build()
        .expect("lenient mode ignores the unknown name");
    lenient.close().unwrap();
}
