import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.producer.BufferExhaustedException;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java producer ({@code KafkaProducer}) as a child of the throughput bench
 * ({@code benches/throughput.rs}): runs one load and reports its figures as one
 * {@code RESULT key=value ...} line on stdout. It mirrors the Rust child,
 * {@code benches/throughput/client.rs}, step for step, and speaks the same protocol.
 *
 * <p>The bench runs it as
 * {@code java -Dlog4j2.configurationFile=<kafka>/log4j2.properties -cp "<kafka>/classes:<kafka>/libs/*" BenchProducer key=value ...}
 * with the keys {@code topic}, {@code values} (a file of {@code value_count} values of
 * {@code value_size} bytes, concatenated; record i sends value i % value_count),
 * {@code value_size}, {@code value_count}, {@code keys} (0: records have no key; N: record
 * i has the key {@code k} + (i % N) zero-padded to 7 digits, {@code k0000042}, where i
 * counts from 0 in the warm-up and again in the measured load, over every thread),
 * {@code threads}, {@code warmup}, {@code load} ({@code count} with {@code records};
 * {@code rate} with {@code per_sec} and {@code duration_ms}; {@code stalled} with
 * {@code duration_ms}; {@code transactions} with {@code records} and
 * {@code per_transaction}; {@code idle} with {@code duration_ms}) and, repeated,
 * {@code prop=NAME=VALUE}: a producer property, passed as is. An unknown key exits with
 * status 2.
 *
 * <p>Steps: the values and the key pool, built once; the producer (byte-array keys and
 * values; the default partitioner: murmur2 of the key for keyed records, sticky for the
 * others); {@code initTransactions}
 * (transactions only, timed as {@code init_ms}); the topic's metadata ({@code partitionsFor},
 * retried: with the stalled load's max.block.ms of 100 ms a cold JVM's first sends would
 * fail waiting for it); the warm-up (sent in transactions for the transactional load),
 * waited for; in the stalled load, {@code READY} on stdout and
 * {@code GO} expected on stdin (the bench stops the broker in between); then the measured
 * load: RSS and CPU ticks before, the sends (one {@code send} with a callback per record),
 * the wait for every callback (not when stalled), wall time, CPU ticks and peak RSS after;
 * then the close (graceful, or 500 ms when stalled), timed as {@code close_ms}. Logs go to
 * stderr: stdout is redirected there at once, and only {@code READY} and the result line are
 * written to the real stdout.
 *
 * <p>Idle: instead of sending, the connected, warmed-up producer is left alone for
 * {@code duration_ms} (one sleep, which starts a second after the warm-up, as the Rust
 * child's: the warm-up's tail is not idle time), between two reads of every thread's CPU time
 * ({@code /proc/self/task/<tid>/schedstat}) and context switches (its {@code status}); the
 * line reports {@code sent=0} and adds {@code idle_cpu_us} and {@code wakeups}, the
 * differences (over the threads present at each read).
 *
 * <p>Stalled: a record counts as refused when the producer found no buffer room within
 * max.block.ms ({@code BufferExhaustedException}), as failed otherwise. Kafka 4's producer
 * rebootstraps once its brokers are unreachable ({@code metadata.recovery.strategy}, default
 * {@code rebootstrap}), which forgets the topic's partitions: its later sends then fail after
 * max.block.ms with "not present in metadata", counted as failed.
 *
 * <p>The exit status is 1 when a record was not delivered (outside the stalled load; the
 * line is printed first), or when a client call failed; the reason goes to stderr.
 */
public final class BenchProducer {
    /** Idle load: how long after the warm-up the measurement starts. */
    private static final long IDLE_SETTLE_MS = 1_000;
    /** How long the child waits for outstanding acknowledgements before it gives up. */
    private static final long DELIVERY_WAIT_MS = 180_000;
    /** Stalled load: how long the close may take before undelivered records are dropped. */
    private static final Duration STALLED_CLOSE = Duration.ofMillis(500);

    /** The real stdout, for READY and the result line only. */
    private static PrintStream stdout;

    /** A failure that ends the run with status 1. */
    private static final class Failure extends Exception {
        Failure(String message) {
            super(message);
        }
    }

    /** A bad command line: status 2. */
    private static final class Usage extends Exception {
        Usage(String message) {
            super(message);
        }
    }

    public static void main(String[] args) {
        // Before anything logs: the loggers find stderr where stdout was.
        stdout = System.out;
        System.setOut(System.err);
        int status;
        try {
            status = run(args);
        } catch (Usage e) {
            System.err.println("BenchProducer: " + e.getMessage());
            status = 2;
        } catch (Failure e) {
            System.err.println("BenchProducer: FAILED: " + e.getMessage());
            status = 1;
        } catch (Throwable e) {
            System.err.println("BenchProducer: FAILED:");
            e.printStackTrace();
            status = 1;
        }
        stdout.flush();
        System.err.flush();
        // No lingering thread (the producer's, after a failure) may keep the JVM alive.
        System.exit(status);
    }

    // -----------------------------------------------------------------------------------
    // The command line
    // -----------------------------------------------------------------------------------

    private enum Load { COUNT, RATE, STALLED, TRANSACTIONS, IDLE }

    private static final class Args {
        String topic;
        String values;
        int valueSize = -1;
        int valueCount = -1;
        int threads = 1;
        long warmup = 0;
        /** The size of the key pool; 0: records have no key. */
        long keys = 0;
        Load load;
        long records = -1;
        long perSec = -1;
        long durationMs = -1;
        long perTransaction = -1;
        final Properties props = new Properties();
    }

    private static Args parse(String[] argv) throws Usage {
        Args a = new Args();
        for (String arg : argv) {
            int eq = arg.indexOf('=');
            if (eq < 0) {
                throw new Usage("expected key=value, got " + arg);
            }
            String key = arg.substring(0, eq);
            String value = arg.substring(eq + 1);
            switch (key) {
                case "topic" -> a.topic = value;
                case "values" -> a.values = value;
                case "value_size" -> a.valueSize = (int) number(key, value);
                case "value_count" -> a.valueCount = (int) number(key, value);
                case "threads" -> a.threads = (int) number(key, value);
                case "warmup" -> a.warmup = number(key, value);
                case "keys" -> a.keys = number(key, value);
                case "records" -> a.records = number(key, value);
                case "per_sec" -> a.perSec = number(key, value);
                case "duration_ms" -> a.durationMs = number(key, value);
                case "per_transaction" -> a.perTransaction = number(key, value);
                case "load" -> a.load = switch (value) {
                    case "count" -> Load.COUNT;
                    case "rate" -> Load.RATE;
                    case "stalled" -> Load.STALLED;
                    case "transactions" -> Load.TRANSACTIONS;
                    case "idle" -> Load.IDLE;
                    default -> throw new Usage("unknown load " + value);
                };
                case "prop" -> {
                    int eq2 = value.indexOf('=');
                    if (eq2 <= 0) {
                        throw new Usage("expected prop=NAME=VALUE, got " + arg);
                    }
                    a.props.put(value.substring(0, eq2), value.substring(eq2 + 1));
                }
                default -> throw new Usage("unknown key " + key + " in " + arg);
            }
        }
        if (a.topic == null || a.values == null || a.valueSize < 0 || a.valueCount <= 0
                || a.load == null || a.threads <= 0) {
            throw new Usage("topic, values, value_size, value_count and load are required"
                + " (threads at least 1)");
        }
        boolean complete = switch (a.load) {
            case COUNT -> a.records >= 0;
            case RATE -> a.perSec > 0 && a.durationMs >= 0;
            case STALLED -> a.durationMs >= 0;
            case TRANSACTIONS -> a.records >= 0 && a.perTransaction > 0;
            case IDLE -> a.durationMs >= 0;
        };
        if (!complete) {
            throw new Usage("load=" + a.load.name().toLowerCase() + " lacks its parameters");
        }
        if (a.keys > Integer.MAX_VALUE - 8) {
            throw new Usage("keys: too many: " + a.keys);
        }
        return a;
    }

    private static long number(String key, String value) throws Usage {
        try {
            long n = Long.parseLong(value);
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new Usage(key + ": not a count: " + value);
        }
    }

    // -----------------------------------------------------------------------------------
    // The run
    // -----------------------------------------------------------------------------------

    /** The transactions of a phase: how many, and the time spent in their commits. */
    private static final class Transactions {
        long count;
        long committingNs;
    }

    private static int run(String[] argv) throws Usage, Failure, IOException {
        Args a = parse(argv);
        byte[][] values = readValues(a);
        byte[][] keys = keyPool(a.keys);
        Properties props = a.props;
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        KafkaProducer<byte[], byte[]> producer;
        try {
            producer = new KafkaProducer<>(props);
        } catch (RuntimeException e) {
            throw new Failure("creating the producer: " + e);
        }
        boolean transactional = a.load == Load.TRANSACTIONS;
        boolean stalled = a.load == Load.STALLED;

        long initNs = 0;
        if (transactional) {
            long started = System.nanoTime();
            try {
                producer.initTransactions();
            } catch (RuntimeException e) {
                throw new Failure("init_transactions: " + e);
            }
            initNs = System.nanoTime() - started;
        }

        // The topic's metadata before the first send: with the stalled load's max.block.ms
        // (100 ms) the first sends of a cold JVM would otherwise fail, as their wait for
        // metadata counts against it. Outside the measurement, as is the warm-up.
        awaitMetadata(producer, a.topic);

        Tally warmup = new Tally(0);
        if (transactional) {
            try {
                sendTransactions(producer, a.topic, warmup, keys, values, a.warmup,
                    a.perTransaction, new Transactions());
            } catch (Failure e) {
                throw new Failure("warm-up: " + e.getMessage());
            }
        } else {
            for (long i = 0; i < a.warmup; i++) {
                send(producer, a.topic, warmup, key(keys, i), values[(int) (i % values.length)]);
            }
        }
        if (!warmup.waitDone(a.warmup, DELIVERY_WAIT_MS)) {
            throw new Failure("warm-up: " + warmup.done.get() + " of " + a.warmup
                + " records completed within " + DELIVERY_WAIT_MS + " ms");
        }
        String warmupProblem = warmup.problem(a.warmup);
        if (warmupProblem != null) {
            throw new Failure("warm-up: " + warmupProblem);
        }

        if (stalled) {
            // The bench stops the broker between READY and GO.
            stdout.println("READY");
            stdout.flush();
            String line = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))
                .readLine();
            if (line == null || !line.trim().equals("GO")) {
                throw new Failure("expected GO on stdin, got " + (line == null ? "end of input" : "\"" + line + "\""));
            }
        }

        long rateRecords = a.load == Load.RATE
            ? Math.round(a.perSec * (a.durationMs / 1000.0)) : 0;
        Tally tally = new Tally(a.load == Load.RATE ? rateRecords : 0);
        Transactions transactions = new Transactions();
        Idle idle = new Idle();
        if (a.load == Load.IDLE) {
            // The warm-up's last acknowledgements are traffic: idle starts after them.
            try {
                Thread.sleep(IDLE_SETTLE_MS);
            } catch (InterruptedException e) {
                throw new Failure("interrupted");
            }
        }
        long rssBeforeKb = memoryKb("VmRSS");
        long cpuBefore = cpuTicks();
        long started = System.nanoTime();
        long sent = switch (a.load) {
            case COUNT -> sendCount(producer, a.topic, tally, keys, values, a.records, a.threads);
            case RATE -> sendAtRate(producer, a.topic, tally, keys, values, a.perSec, rateRecords);
            case STALLED -> sendStalled(producer, a.topic, tally, keys, values, a.durationMs);
            case TRANSACTIONS -> sendTransactions(producer, a.topic, tally, keys, values,
                a.records, a.perTransaction, transactions);
            case IDLE -> stayIdle(a.durationMs, idle);
        };
        if (!stalled && !tally.waitDone(sent, DELIVERY_WAIT_MS)) {
            throw new Failure(tally.done.get() + " of " + sent + " records completed within "
                + DELIVERY_WAIT_MS + " ms");
        }
        long elapsedNs = System.nanoTime() - started;
        long cpu = cpuTicks() - cpuBefore;
        long peakRssKb = memoryKb("VmHWM");

        long closing = System.nanoTime();
        try {
            if (stalled) {
                // Nothing can be delivered: after the timeout the producer fails what is left.
                producer.close(STALLED_CLOSE);
            } else {
                producer.close();
            }
        } catch (RuntimeException e) {
            throw new Failure("close: " + e);
        }
        long closeNs = System.nanoTime() - closing;
        // A close completes every record (delivered, or failed when stalled).
        if (!tally.waitDone(sent, 5_000)) {
            throw new Failure("after close, " + tally.done.get() + " of " + sent
                + " records completed");
        }

        StringBuilder line = new StringBuilder("RESULT")
            .append(" sent=").append(sent)
            .append(" acked=").append(tally.acked.get())
            .append(" failed=").append(tally.failed.get())
            .append(" refused=").append(tally.refused.get())
            .append(" queue_full=0")
            .append(" elapsed_us=").append(elapsedNs / 1000)
            .append(" cpu_ticks=").append(cpu)
            .append(" peak_rss_kb=").append(peakRssKb)
            .append(" rss_before_kb=").append(rssBeforeKb)
            .append(" close_ms=").append(closeNs / 1_000_000)
            .append(" client_errors=0");
        int[] latencies = tally.ackedLatencies();
        if (latencies != null && latencies.length > 0) {
            Arrays.sort(latencies);
            line.append(" p50_us=").append(at(latencies, 0.50))
                .append(" p99_us=").append(at(latencies, 0.99))
                .append(" p999_us=").append(at(latencies, 0.999))
                .append(" max_us=").append(latencies[latencies.length - 1]);
        }
        if (transactional) {
            line.append(" init_ms=").append(initNs / 1_000_000)
                .append(" transactions=").append(transactions.count)
                .append(" commit_us=").append(transactions.committingNs / 1000);
        }
        if (a.load == Load.IDLE) {
            line.append(" idle_cpu_us=").append(idle.cpuNs / 1000)
                .append(" wakeups=").append(idle.switches);
        }
        stdout.println(line);
        stdout.flush();

        if (stalled && tally.firstError.get() != null) {
            System.err.println("note: " + tally.failed.get() + " record(s) failed (expected when"
                + " stalled); the first: " + tally.firstError.get());
        }
        String problem = stalled ? null : tally.problem(sent);
        if (problem != null) {
            System.err.println("BenchProducer: FAILED: " + problem);
            return 1;
        }
        return 0;
    }

    /**
     * Asks for the topic's partitions until the producer has them ({@code partitionsFor}
     * gives up after max.block.ms each time), for up to {@link #DELIVERY_WAIT_MS}.
     */
    private static void awaitMetadata(KafkaProducer<byte[], byte[]> producer, String topic)
            throws Failure {
        long deadline = System.nanoTime() + DELIVERY_WAIT_MS * 1_000_000L;
        while (true) {
            try {
                producer.partitionsFor(topic);
                return;
            } catch (TimeoutException e) {
                if (System.nanoTime() - deadline >= 0) {
                    throw new Failure("metadata of " + topic + ": " + e);
                }
            } catch (RuntimeException e) {
                throw new Failure("metadata of " + topic + ": " + e);
            }
        }
    }

    /** The sample at index floor(p * n), as Kafka's perf tool. */
    private static int at(int[] sorted, double p) {
        return sorted[(int) Math.min((long) (p * sorted.length), sorted.length - 1)];
    }

    private static byte[][] readValues(Args a) throws Failure {
        byte[] all;
        try {
            all = Files.readAllBytes(Path.of(a.values));
        } catch (IOException e) {
            throw new Failure("reading " + a.values + ": " + e);
        }
        if ((long) a.valueSize * a.valueCount != all.length) {
            throw new Failure(a.values + " holds " + all.length + " bytes, not " + a.valueCount
                + " values of " + a.valueSize);
        }
        byte[][] values = new byte[a.valueCount][];
        for (int i = 0; i < a.valueCount; i++) {
            values[i] = Arrays.copyOfRange(all, i * a.valueSize, (i + 1) * a.valueSize);
        }
        return values;
    }

    /**
     * The key pool, built once before the warm-up: key n is {@code k} and n zero-padded to 7
     * digits, in ASCII ({@code k0000042}); null when records have no key. Written digit by
     * digit: {@code String.format} would leave tens of MB of garbage, and a heap grown for
     * it, in the RSS measured.
     */
    private static byte[][] keyPool(long count) {
        if (count == 0) {
            return null;
        }
        byte[][] keys = new byte[(int) count][];
        for (int n = 0; n < keys.length; n++) {
            int digits = 7;
            for (int big = n / 10_000_000; big > 0; big /= 10) {
                digits++;
            }
            byte[] key = new byte[1 + digits];
            key[0] = 'k';
            for (int d = digits, rest = n; d >= 1; d--, rest /= 10) {
                key[d] = (byte) ('0' + rest % 10);
            }
            keys[n] = key;
        }
        return keys;
    }

    /** The key of the phase's record {@code i} (from the pool: no allocation), or null. */
    private static byte[] key(byte[][] keys, long i) {
        return keys == null ? null : keys[(int) (i % keys.length)];
    }

    // -----------------------------------------------------------------------------------
    // The loads
    // -----------------------------------------------------------------------------------

    /**
     * Hands one record to the producer; its outcome goes to {@code callback}'s tally. A keyed
     * record goes where the default partitioner's murmur2 of its key says, as with every
     * Kafka client; one without key goes to the sticky partition.
     */
    private static void send(KafkaProducer<byte[], byte[]> producer, String topic, Tally tally,
                             byte[] key, byte[] value) {
        try {
            producer.send(new ProducerRecord<>(topic, key, value), tally);
        } catch (RuntimeException e) {
            // Not handed over: no callback will run (the producer calls it itself only for
            // the errors it does not throw).
            tally.complete(e);
        }
    }

    /** {@code records} records as fast as the producer takes them, over {@code threads} threads. */
    private static long sendCount(KafkaProducer<byte[], byte[]> producer, String topic,
                                  Tally tally, byte[][] keys, byte[][] values, long records,
                                  int threads)
            throws Failure {
        Thread[] senders = new Thread[threads];
        AtomicReference<Throwable> crashed = new AtomicReference<>();
        for (int t = 0; t < threads; t++) {
            long from = records * t / threads;
            long to = records * (t + 1) / threads;
            senders[t] = new Thread(() -> {
                try {
                    for (long i = from; i < to; i++) {
                        send(producer, topic, tally, key(keys, i),
                            values[(int) (i % values.length)]);
                    }
                } catch (Throwable e) {
                    crashed.compareAndSet(null, e);
                }
            }, "bench-sender-" + t);
            senders[t].start();
        }
        for (Thread sender : senders) {
            try {
                sender.join();
            } catch (InterruptedException e) {
                throw new Failure("interrupted");
            }
        }
        if (crashed.get() != null) {
            throw new Failure("a sending thread failed: " + crashed.get());
        }
        return records;
    }

    /**
     * One thread, {@code records} records at {@code perSec} per second on an absolute
     * schedule (record n is due n / perSec after the start), so an oversleep is caught up at
     * once. The thread parks whenever it is ahead (with nanosecond resolution, where
     * Thread.sleep would round to milliseconds); it never spins.
     */
    private static long sendAtRate(KafkaProducer<byte[], byte[]> producer, String topic,
                                   Tally tally, byte[][] keys, byte[][] values, long perSec,
                                   long records) {
        long start = System.nanoTime();
        for (long i = 0; i < records; i++) {
            long due = start + i * 1_000_000_000L / perSec;
            long now;
            while ((now = System.nanoTime()) - due < 0) {
                LockSupport.parkNanos(due - now);
            }
            int index = (int) i;
            long sentNs = System.nanoTime();
            try {
                producer.send(new ProducerRecord<>(topic, key(keys, i),
                        values[(int) (i % values.length)]),
                    (metadata, e) -> tally.completeTimed(index, sentNs, e));
            } catch (RuntimeException e) {
                tally.complete(e);
            }
        }
        return records;
    }

    /** One thread sends as fast as the producer accepts records until the duration passed. */
    private static long sendStalled(KafkaProducer<byte[], byte[]> producer, String topic,
                                    Tally tally, byte[][] keys, byte[][] values,
                                    long durationMs) {
        long end = System.nanoTime() + durationMs * 1_000_000L;
        long sent = 0;
        while (System.nanoTime() - end < 0) {
            // A refused record (no buffer within max.block.ms) counts as sent and refused.
            send(producer, topic, tally, key(keys, sent), values[(int) (sent % values.length)]);
            sent++;
        }
        return sent;
    }

    /**
     * One thread: {@code records} records in transactions of {@code perTransaction} (the
     * last one may be shorter), each begun, filled and committed before the next one begins.
     * A commit counts until it returned and every callback of its records ran.
     */
    private static long sendTransactions(KafkaProducer<byte[], byte[]> producer, String topic,
                                         Tally tally, byte[][] keys, byte[][] values,
                                         long records, long perTransaction, Transactions stats)
            throws Failure {
        perTransaction = Math.max(1, perTransaction);
        long sent = 0;
        while (sent < records) {
            long end = Math.min(records, sent + perTransaction);
            try {
                producer.beginTransaction();
            } catch (RuntimeException e) {
                throw new Failure("begin_transaction: " + e);
            }
            for (long i = sent; i < end; i++) {
                send(producer, topic, tally, key(keys, i), values[(int) (i % values.length)]);
            }
            sent = end;
            long committing = System.nanoTime();
            try {
                // Flushes, and returns after the callbacks ran (they run before the futures
                // that the flush waits for complete).
                producer.commitTransaction();
            } catch (RuntimeException e) {
                throw new Failure("commit_transaction (transaction " + (stats.count + 1) + "): " + e);
            }
            if (!tally.waitDone(sent, DELIVERY_WAIT_MS)) {
                throw new Failure("commit_transaction (transaction " + (stats.count + 1)
                    + ") returned with " + tally.done.get() + " of " + sent + " callbacks run");
            }
            stats.committingNs += System.nanoTime() - committing;
            stats.count++;
        }
        return sent;
    }

    /** What the process's threads did while the producer stayed idle. */
    private static final class Idle {
        /** CPU time of every thread, in ns (schedstat). */
        long cpuNs;
        /** Context switches of every thread, voluntary and not. */
        long switches;
    }

    /**
     * The producer, connected and warmed up, sends nothing for {@code durationMs} (one
     * sleep): the CPU time and the context switches (wake-ups) of every thread of the
     * process meanwhile go to {@code idle}. Nothing is sent.
     */
    private static long stayIdle(long durationMs, Idle idle) throws Failure {
        long[] before = threadTotals();
        try {
            Thread.sleep(durationMs);
        } catch (InterruptedException e) {
            throw new Failure("interrupted");
        }
        long[] after = threadTotals();
        idle.cpuNs = after[0] - before[0];
        idle.switches = after[1] - before[1];
        return 0;
    }

    // -----------------------------------------------------------------------------------
    // The tally
    // -----------------------------------------------------------------------------------

    /**
     * The outcomes of one phase's records, counted by the callbacks. Shared by every record
     * of the phase as its callback (no allocation per record), except in the rate load,
     * whose callbacks carry the record's index and send time.
     */
    private static final class Tally implements Callback {
        final AtomicLong done = new AtomicLong();
        final AtomicLong acked = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        /** Records that failed for lack of buffer within max.block.ms. */
        final AtomicLong refused = new AtomicLong();
        final AtomicReference<String> firstError = new AtomicReference<>();
        /** Microseconds from send to acknowledgement by record index (-1: not acked), when measured. */
        final int[] latenciesUs;
        /** The count {@code waitDone} waits for (Long.MAX_VALUE while nobody waits). */
        volatile long expected = Long.MAX_VALUE;
        final Object wake = new Object();

        Tally(long timedRecords) {
            if (timedRecords > 0) {
                latenciesUs = new int[Math.toIntExact(timedRecords)];
                Arrays.fill(latenciesUs, -1);
            } else {
                latenciesUs = null;
            }
        }

        @Override
        public void onCompletion(RecordMetadata metadata, Exception e) {
            complete(e);
        }

        void completeTimed(int index, long sentNs, Exception e) {
            if (e == null) {
                long us = (System.nanoTime() - sentNs) / 1000;
                latenciesUs[index] = (int) Math.min(us, Integer.MAX_VALUE);
            }
            complete(e);
        }

        /** Called once per record: {@code e} null when acknowledged. */
        void complete(Exception e) {
            if (e == null) {
                acked.incrementAndGet();
            } else if (isRefusal(e)) {
                refused.incrementAndGet();
            } else {
                failed.incrementAndGet();
                firstError.compareAndSet(null, e.toString());
            }
            long now = done.incrementAndGet();
            if (now >= expected) {
                synchronized (wake) {
                    wake.notifyAll();
                }
            }
        }

        /** Waits until {@code count} records completed; false after {@code timeoutMs}. */
        boolean waitDone(long count, long timeoutMs) {
            long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
            synchronized (wake) {
                // Set under the lock: a completion that sees the new value notifies after we
                // wait (it needs the lock), one that saw the old value counted before we check.
                expected = count;
                try {
                    while (true) {
                        if (done.get() >= count) {
                            return true;
                        }
                        long left = deadline - System.nanoTime();
                        if (left <= 0) {
                            return false;
                        }
                        try {
                            wake.wait(Math.max(1, Math.min(left / 1_000_000, 100)));
                        } catch (InterruptedException e) {
                            return false;
                        }
                    }
                } finally {
                    expected = Long.MAX_VALUE;
                }
            }
        }

        /** Why {@code sent} records do not all count as delivered, if they do not. */
        String problem(long sent) {
            long a = acked.get(), f = failed.get(), r = refused.get();
            if (a == sent && f == 0 && r == 0) {
                return null;
            }
            String first = firstError.get();
            return a + " of " + sent + " records acknowledged, " + f + " failed, " + r
                + " refused for lack of buffer; first error: " + (first == null ? "none" : first);
        }

        /** The latencies of the acknowledged records, or null when not measured. */
        int[] ackedLatencies() {
            if (latenciesUs == null) {
                return null;
            }
            return Arrays.stream(latenciesUs).filter(us -> us >= 0).toArray();
        }
    }

    /** Whether {@code e} says the producer had no buffer room within max.block.ms. */
    private static boolean isRefusal(Throwable e) {
        Throwable t = e;
        for (int depth = 0; t != null && depth < 8; depth++, t = t.getCause()) {
            if (t instanceof BufferExhaustedException) {
                return true;
            }
            if (t instanceof TimeoutException && t.getMessage() != null) {
                String m = t.getMessage().toLowerCase();
                if (m.contains("failed to allocate") && (m.contains("memory") || m.contains("buffer")
                        || m.contains("bytes"))) {
                    return true;
                }
            }
        }
        return false;
    }

    // -----------------------------------------------------------------------------------
    // /proc
    // -----------------------------------------------------------------------------------

    /**
     * User + system CPU time of this process (every thread: the producer's, the JIT's, the
     * GC's), in clock ticks: fields 14 and 15 of /proc/self/stat, counted after the command
     * name's closing parenthesis.
     */
    private static long cpuTicks() throws Failure {
        String stat;
        try {
            stat = Files.readString(Path.of("/proc/self/stat"));
        } catch (IOException e) {
            throw new Failure("reading /proc/self/stat: " + e);
        }
        int paren = stat.lastIndexOf(')');
        if (paren < 0) {
            throw new Failure("unexpected /proc/self/stat");
        }
        // Field 3 (state) is the first after the name.
        String[] fields = stat.substring(paren + 1).trim().split("\\s+");
        try {
            return Long.parseLong(fields[14 - 3]) + Long.parseLong(fields[15 - 3]);
        } catch (RuntimeException e) {
            throw new Failure("no CPU times in /proc/self/stat");
        }
    }

    /** {@code VmRSS} or {@code VmHWM} of /proc/self/status, in KiB. */
    private static long memoryKb(String field) throws Failure {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field + ":")) {
                    String v = line.substring(field.length() + 1).trim();
                    if (v.endsWith("kB")) {
                        v = v.substring(0, v.length() - 2).trim();
                    }
                    return Long.parseLong(v);
                }
            }
        } catch (IOException | NumberFormatException e) {
            throw new Failure("reading " + field + " in /proc/self/status: " + e);
        }
        throw new Failure("no " + field + " in /proc/self/status");
    }

    /**
     * Over every thread of the process present now ({@code /proc/self/task/<tid>}): the
     * CPU time in ns (the first field of {@code schedstat}) and the context switches
     * ({@code voluntary_ctxt_switches} + {@code nonvoluntary_ctxt_switches} of
     * {@code status}). A thread that ends while it is read is left out.
     */
    private static long[] threadTotals() throws Failure {
        long cpuNs = 0;
        long switches = 0;
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            for (Path task : tasks) {
                long taskCpu;
                long taskSwitches = 0;
                try {
                    String schedstat = Files.readString(task.resolve("schedstat")).trim();
                    int space = schedstat.indexOf(' ');
                    taskCpu = Long.parseLong(space < 0 ? schedstat : schedstat.substring(0, space));
                    for (String line : Files.readAllLines(task.resolve("status"))) {
                        if (line.startsWith("voluntary_ctxt_switches:")
                                || line.startsWith("nonvoluntary_ctxt_switches:")) {
                            taskSwitches += Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
                        }
                    }
                } catch (IOException e) {
                    // The thread ended between the listing and the reads.
                    continue;
                }
                cpuNs += taskCpu;
                switches += taskSwitches;
            }
        } catch (IOException | RuntimeException e) {
            throw new Failure("reading /proc/self/task: " + e);
        }
        return new long[] {cpuNs, switches};
    }
}
