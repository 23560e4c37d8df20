import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The Java consumer as an independent reader for the test bed.
 *
 * <p>Usage: {@code ReadTopic <bootstrap> <topic> <expected> <timeout-ms> [read_committed]}.
 * Reads every partition of the topic from its beginning (no group, CRCs checked) until at
 * least {@code expected} records arrived and one more second brings none, or the timeout
 * passes, and prints one line per record on stdout, tab-separated:
 * {@code partition offset timestamp timestamp-type key value headers}. Keys, values and
 * header keys and values are lowercase hex, {@code -} for null; headers are
 * {@code key=value} pairs joined by commas, in record order. The last line on stderr says
 * how many records were read.
 */
public final class ReadTopic {
    public static void main(String[] args) {
        if (args.length < 4) {
            System.err.println("usage: ReadTopic <bootstrap> <topic> <expected> <timeout-ms> [read_committed]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long expected = Long.parseLong(args[2]);
        long timeoutMs = Long.parseLong(args[3]);
        String isolation = args.length > 4 ? args[4] : "read_uncommitted";

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        HexFormat hex = HexFormat.of();
        StringBuilder out = new StringBuilder();
        long count = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs))) {
                partitions.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long deadline = System.currentTimeMillis() + timeoutMs;
            long lastNew = System.currentTimeMillis();
            while (System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    out.setLength(0);
                    out.append(r.partition()).append('\t')
                        .append(r.offset()).append('\t')
                        .append(r.timestamp()).append('\t')
                        .append(r.timestampType().id).append('\t')
                        .append(r.key() == null ? "-" : hex.formatHex(r.key())).append('\t')
                        .append(r.value() == null ? "-" : hex.formatHex(r.value())).append('\t');
                    boolean first = true;
                    for (Header h : r.headers()) {
                        if (!first) {
                            out.append(',');
                        }
                        first = false;
                        out.append(hex.formatHex(h.key().getBytes(java.nio.charset.StandardCharsets.UTF_8)))
                            .append('=')
                            .append(h.value() == null ? "-" : hex.formatHex(h.value()));
                    }
                    System.out.println(out);
                    count++;
                    lastNew = System.currentTimeMillis();
                }
                if (count >= expected && System.currentTimeMillis() - lastNew >= 1000) {
                    break;
                }
            }
        }
        System.out.flush();
        System.err.println("read " + count + " records of " + topic);
    }
}
