import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java producer with its default partitioner, for partitioning parity checks.
 *
 * <p>Usage: {@code ProduceKeys <bootstrap> <topic>}. Reads one hex-encoded key per line from
 * stdin (an empty line is the empty key), sends each as a record with that key and the value
 * {@code java:<line number>}, and prints {@code <hex key> <partition> <offset>} per record
 * once all are acknowledged.
 */
public final class ProduceKeys {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: ProduceKeys <bootstrap> <topic>  (hex keys on stdin)");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        HexFormat hex = HexFormat.of();
        List<String> keys = new ArrayList<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
             BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                line = line.trim();
                byte[] value = ("java:" + keys.size()).getBytes(StandardCharsets.UTF_8);
                keys.add(line);
                sent.add(producer.send(new ProducerRecord<>(args[1], hex.parseHex(line), value)));
            }
            producer.flush();
            for (int i = 0; i < keys.size(); i++) {
                RecordMetadata md = sent.get(i).get();
                System.out.println(keys.get(i) + " " + md.partition() + " " + md.offset());
            }
        }
    }
}
