// Command bench-peer-franz-go is the franz-go child of the kafka-producer throughput bench
// (benches/throughput.rs): it runs franz-go's kgo.Client through one load and reports its
// figures as one `RESULT key=value ...` line on stdout, as the Rust child does
// (benches/throughput/client.rs: run, send_count, send_at_rate, send_stalled,
// send_transactions, Tally, Report::line). Everything else (logs, errors) goes to stderr.
//
// Being alone in its process, the client owns the process's CPU time (user + system of
// every thread, /proc/self/stat) and its peak RSS (VmHWM in /proc/self/status).
//
// Arguments are key=value words (split at the first '='):
//
//	topic=NAME values=PATH value_size=N value_count=N threads=N warmup=N keys=N
//	load=count records=N
//	load=rate per_sec=N duration_ms=N
//	load=stalled duration_ms=N
//	load=transactions records=N per_transaction=N
//	load=idle duration_ms=N
//	prop=NAME=VALUE ...   Java producer properties, mapped to kgo options (see clientOptions)
//
// Unknown keys or properties, and malformed values: exit 2. A record not delivered
// (outside the stalled load) or a failed client call: exit 1.
//
// The send path is what a franz-go user writes: one Produce per record, each with its own
// *kgo.Record whose Value (and Key) point into the values (and keys) preloaded once (no
// copy), and a promise that counts the outcome. With keys=0 records have no key and the
// default partitioner spreads them; with keys=N record i of a phase has the key
// k<i % N in 7 digits>, which the same default partitioner places as Java's does (see
// clientOptions).
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	resultPrefix = "RESULT"
	ready        = "READY"
	goWord       = "GO"

	// How long the child waits for outstanding acknowledgements before it gives up.
	deliveryWait = 180 * time.Second
	// Stalled load: how long the close may flush before undelivered records are dropped.
	stalledClose = 500 * time.Millisecond
	// After Close, how long the promises of the records it failed may take to run.
	afterCloseWait = 5 * time.Second
	// The timeout of the transactional calls (init, flush + commit), as the Rust child
	// gives rdkafka's (Java's max.block.ms default, 60 s).
	txnCallTimeout = 60 * time.Second
)

// usageError: a bad command line or property (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func main() {
	os.Exit(run(os.Args[1:]))
}

// run returns the exit status.
func run(argv []string) int {
	a, err := parseArgs(argv)
	if err == nil {
		// The largest record: the value, a key of 8 bytes, and room for the record's and
		// the batch's headers.
		a.client, err = clientOptions(a.props, a.valueSize+8+recordOverhead)
	}
	if err == nil && (a.load == "transactions") != a.client.transactional {
		err = usagef("load=transactions needs prop=transactional.id=..., and only it does")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "franz-go peer: %v\n", err)
		return 2
	}
	who := fmt.Sprintf("franz-go peer, load=%s, topic %s", a.load, a.topic)
	report, err := measure(a)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: FAILED: %v\n", who, err)
		return 1
	}
	fmt.Fprintln(os.Stdout, report.line())
	if problem := report.problem(a.load == "stalled"); problem != "" {
		fmt.Fprintf(os.Stderr, "%s: FAILED: %s\n", who, problem)
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

type args struct {
	topic          string
	valuesPath     string
	valueSize      int
	valueCount     int
	threads        int
	warmup         uint64
	keys           uint64 // the key pool's size; 0: records have no key
	load           string // count, rate, stalled, transactions, idle
	records        uint64
	perSec         uint64
	duration       time.Duration
	perTransaction uint64
	props          []prop // in command-line order
	client         clientConfig
}

type prop struct{ name, value string }

func parseArgs(argv []string) (args, error) {
	a := args{threads: 1}
	seen := map[string]string{}
	for _, arg := range argv {
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			return a, usagef("argument %q is not key=value", arg)
		}
		if key == "prop" {
			name, v, ok := strings.Cut(value, "=")
			if !ok || name == "" {
				return a, usagef("argument %q is not prop=NAME=VALUE", arg)
			}
			a.props = append(a.props, prop{name, v})
			continue
		}
		seen[key] = value
	}
	uintArg := func(key string, min uint64) (uint64, error) {
		v, ok := seen[key]
		if !ok {
			return 0, usagef("missing %s=N (load=%s)", key, seen["load"])
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < min {
			return 0, usagef("%s=%q: expected an integer >= %d", key, v, min)
		}
		return n, nil
	}
	known := map[string]bool{"topic": true, "values": true, "value_size": true,
		"value_count": true, "threads": true, "warmup": true, "keys": true, "load": true}
	var err error
	var n uint64
	a.topic, a.valuesPath, a.load = seen["topic"], seen["values"], seen["load"]
	if a.topic == "" || a.valuesPath == "" {
		return a, usagef("missing topic=NAME or values=PATH")
	}
	if n, err = uintArg("value_size", 1); err != nil {
		return a, err
	}
	a.valueSize = int(n)
	if n, err = uintArg("value_count", 1); err != nil {
		return a, err
	}
	a.valueCount = int(n)
	if _, ok := seen["threads"]; ok {
		if n, err = uintArg("threads", 1); err != nil {
			return a, err
		}
		a.threads = int(n)
	}
	if _, ok := seen["warmup"]; ok {
		if a.warmup, err = uintArg("warmup", 0); err != nil {
			return a, err
		}
	}
	if _, ok := seen["keys"]; ok {
		if a.keys, err = uintArg("keys", 0); err != nil {
			return a, err
		}
	}
	switch a.load {
	case "count":
		known["records"] = true
		a.records, err = uintArg("records", 0)
	case "rate":
		known["per_sec"], known["duration_ms"] = true, true
		if a.perSec, err = uintArg("per_sec", 1); err == nil {
			n, err = uintArg("duration_ms", 0)
			a.duration = time.Duration(n) * time.Millisecond
		}
	case "stalled", "idle":
		known["duration_ms"] = true
		n, err = uintArg("duration_ms", 0)
		a.duration = time.Duration(n) * time.Millisecond
	case "transactions":
		known["records"], known["per_transaction"] = true, true
		if a.records, err = uintArg("records", 0); err == nil {
			a.perTransaction, err = uintArg("per_transaction", 1)
		}
	default:
		return a, usagef("load=%q: expected count, rate, stalled, transactions or idle", a.load)
	}
	if err != nil {
		return a, err
	}
	for key := range seen {
		if !known[key] {
			return a, usagef("unknown argument %q (with load=%s)", key, a.load)
		}
	}
	if a.load != "count" && a.threads != 1 {
		return a, usagef("threads=%d: only load=count uses more than one thread", a.threads)
	}
	return a, nil
}

// ---------------------------------------------------------------------------------------
// Java producer properties -> kgo options
// ---------------------------------------------------------------------------------------

type clientConfig struct {
	opts []kgo.Opt
	// max.block.ms when set (blocks): how long one Produce may wait for buffer room.
	maxBlock      time.Duration
	blocks        bool
	transactional bool
	txnID         string
}

// clientOptions maps the Java producer properties to kgo options. A property that is absent
// gets Java's default where franz-go's differs (noted below), so that both clients are
// configured alike whatever the bench passes.
//
// Where franz-go differs from Java:
//
//   - acks: "all"/"-1" -> AllISRAcks, "1" -> LeaderAck, "0" -> NoAck (the same).
//   - enable.idempotence: franz-go is idempotent by default, as Java is; "false" ->
//     DisableIdempotentWrite. franz-go (like Java) refuses idempotence with acks other than
//     all. When the property is absent, Java enables idempotence only when nothing
//     conflicts (acks=all, max.in.flight <= 5); so does this mapping.
//   - max.in.flight.requests.per.connection -> MaxProduceRequestsInflightPerBroker, but
//     franz-go accepts that option only without idempotence (its default there is 1, Java's
//     5). With idempotence franz-go fixes the limit at 5 per broker (after the first
//     response) and rejects the option, so it is checked (<= 5, as Java requires) and not
//     passed on. franz-go has one produce connection per broker, so "per broker" and
//     "per connection" are the same limit.
//   - linger.ms -> ProducerLinger (franz-go's default 10 ms, Java 4's 5 ms).
//   - batch.size -> ProducerBatchMaxBytes. Java's batch.size is the size a batch is
//     filled to (a larger record still gets a batch of its own); franz-go's is a hard cap
//     on a batch's encoded size including the batch header and the per-record overhead, and
//     a record that cannot fit in a batch of that size fails with MESSAGE_TOO_LARGE.
//     Close enough for records much smaller than a batch. For records larger than
//     batch.size (scenario 17), the cap is raised to fit the largest record the run sends,
//     so such a record gets a batch of its own, as in Java. (franz-go's default is 1,000,012
//     bytes, Java's 16384.) franz-go's default partitioner, UniformBytesPartitioner(64 KiB,
//     adaptive, keys), switches partition after 64 KiB whatever batch.size is; Java's after
//     batch.size bytes: the same for the bench's 64 KiB.
//   - Keyed records: that default partitioner (keys=true, hasher nil = KafkaHasher(murmur2))
//     sends a record with a non-nil key to int(murmur2(key) & 0x7fffffff) % n, n = all the
//     topic's partitions (sorted by id, writable or not), exactly as Java's built-in
//     partitioner (Utils.toPositive(Utils.murmur2(key)) % numPartitions); so it is kept.
//   - compression.type none/gzip/snappy/lz4/zstd -> ProducerBatchCompression (franz-go's
//     default is snappy, Java's none). franz-go sends a batch uncompressed when compressing
//     does not make it smaller; Java always compresses. Levels: lz4 fast in both (Java's
//     default level 9 uses lz4's fast compressor), gzip 6 in both, zstd franz-go's default
//     encoder level ("default", about zstd level 3) against Java's 3.
//   - buffer.memory -> MaxBufferedBytes. franz-go counts only the key, value and header
//     bytes of the buffered records, not their batches or its per-record bookkeeping (the
//     *Record, its promise and context: about 250 bytes more per 100-byte record, measured
//     with a stalled broker, where 32 MiB took 335,544 records and some 120 MB of RSS), so
//     with small values it holds more records, and more memory, than Java with the same
//     figure; Java counts the batches it allocates (batch.size each, however full). MaxBufferedRecords is set to the maximum:
//     Java limits by bytes only, and franz-go's default (50,000 records) would throttle
//     100-byte records long before 32 MiB.
//   - delivery.timeout.ms -> RecordDeliveryTimeout (franz-go's default: none; Java's 120 s).
//     franz-go applies it from the buffering of a batch's first record, and with
//     idempotence only where failing the batch is safe (never sent, or answered).
//   - max.request.size -> BrokerMaxWriteBytes, franz-go's cap on a produce request's size
//     (default 100 MiB; it only applies to produce requests); Java's max.request.size caps
//     the produce request and a single record (Java's default 1 MiB). A record larger than
//     the batch cap already fails (see batch.size).
//   - max.block.ms: franz-go has no such option; Produce blocks while the buffer is full,
//     until its context ends. See produceOne: a context canceled after max.block.ms unless
//     Produce returned first; 0 -> TryProduce (never waits). Absent: Produce waits without
//     limit (Java: 60 s).
//   - transactional.id -> TransactionalID; transaction.timeout.ms -> TransactionTimeout
//     (franz-go's default 40 s, Java's 60 s).
//   - client.id -> ClientID; bootstrap.servers -> SeedBrokers (split on commas).
//   - SASL_SSL (the bench's TLS scenarios): security.protocol (PLAINTEXT, SSL,
//     SASL_PLAINTEXT, SASL_SSL), sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
//     sasl.jaas.config (its username="..." and password="..."), ssl.truststore.type (PEM
//     only) and ssl.truststore.location (the CA's PEM file) -> DialTLSConfig and SASL with
//     franz-go's own sasl/plain and sasl/scram packages. The broker's host name is verified
//     against its certificate, as Java's default ssl.endpoint.identification.algorithm=https
//     does.
//
// Not configurable here, and different: request.timeout.ms (Java 30 s) has no direct
// equivalent; franz-go's ProduceRequestTimeout (10 s) is the broker-side produce timeout.
// Retries are unlimited within the delivery timeout in both.
func clientOptions(props []prop, largestRecord int) (clientConfig, error) {
	var c clientConfig
	values := map[string]string{}
	for _, p := range props {
		values[p.name] = p.value
	}
	for name := range values {
		switch name {
		case "bootstrap.servers", "client.id", "acks", "linger.ms", "batch.size",
			"compression.type", "enable.idempotence", "buffer.memory",
			"max.in.flight.requests.per.connection", "delivery.timeout.ms",
			"max.request.size", "max.block.ms", "transactional.id",
			"transaction.timeout.ms", "security.protocol", "sasl.mechanism",
			"sasl.jaas.config", "ssl.truststore.type", "ssl.truststore.location":
		default:
			return c, usagef("unknown producer property %q", name)
		}
	}
	// Java's defaults (kafka-clients 4.x) for what is absent.
	get := func(name, javaDefault string) string {
		if v, ok := values[name]; ok {
			return v
		}
		return javaDefault
	}
	integer := func(name, javaDefault string, min, max int64) (int64, error) {
		v := get(name, javaDefault)
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < min || n > max {
			return 0, usagef("%s=%q: expected an integer in [%d, %d]", name, v, min, max)
		}
		return n, nil
	}
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

	var opts []kgo.Opt
	// Logs go to stderr; warnings and errors only (Java logs at INFO, which is rare on
	// the produce path too).
	opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)))

	var seeds []string
	for _, s := range strings.Split(get("bootstrap.servers", ""), ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return c, usagef("bootstrap.servers is missing or empty")
	}
	// Java's producer asks the broker to create a missing topic (its metadata requests
	// allow auto-creation); franz-go does not unless told to. The bench creates its topics
	// beforehand, so this only matters for a topic that is missing.
	opts = append(opts, kgo.SeedBrokers(seeds...), kgo.AllowAutoTopicCreation())
	if id, ok := values["client.id"]; ok {
		opts = append(opts, kgo.ClientID(id))
	}

	var acks kgo.Acks
	allAcks := false
	switch v := strings.ToLower(strings.TrimSpace(get("acks", "all"))); v {
	case "all", "-1":
		acks, allAcks = kgo.AllISRAcks(), true
	case "1":
		acks = kgo.LeaderAck()
	case "0":
		acks = kgo.NoAck()
	default:
		return c, usagef("acks=%q: expected all, -1, 1 or 0", v)
	}
	opts = append(opts, kgo.RequiredAcks(acks))

	inflight, err := integer("max.in.flight.requests.per.connection", "5", 1, math.MaxInt32)
	if err != nil {
		return c, err
	}
	var idempotent bool
	switch v, ok := values["enable.idempotence"]; {
	case !ok:
		idempotent = allAcks && inflight <= 5
	case strings.EqualFold(strings.TrimSpace(v), "true"):
		idempotent = true
	case strings.EqualFold(strings.TrimSpace(v), "false"):
		idempotent = false
	default:
		return c, usagef("enable.idempotence=%q: expected true or false", v)
	}
	if idempotent {
		if !allAcks {
			return c, usagef("enable.idempotence=true requires acks=all (as in Java and franz-go)")
		}
		if inflight > 5 {
			return c, usagef("enable.idempotence=true requires max.in.flight.requests.per.connection <= 5")
		}
		// franz-go: idempotent by default, 5 requests in flight per broker, fixed.
	} else {
		opts = append(opts, kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(int(inflight)))
	}

	linger, err := integer("linger.ms", "5", 0, math.MaxInt32)
	if err != nil {
		return c, err
	}
	opts = append(opts, kgo.ProducerLinger(ms(linger)))

	batch, err := integer("batch.size", "16384", 512, 1<<30)
	if err != nil {
		return c, err
	}
	if batch < int64(largestRecord) {
		// Java gives a record larger than batch.size a batch of its own; franz-go's cap
		// would fail it. The cap grows to the bench's largest record (scenario 17's
		// 100 KiB values), as Java's batch does; smaller records batch as before.
		batch = int64(largestRecord)
	}
	opts = append(opts, kgo.ProducerBatchMaxBytes(int32(batch)))

	var codec kgo.CompressionCodec
	switch v := strings.ToLower(strings.TrimSpace(get("compression.type", "none"))); v {
	case "none":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return c, usagef("compression.type=%q: expected none, gzip, snappy, lz4 or zstd", v)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))

	buffer, err := integer("buffer.memory", "33554432", 1, math.MaxInt64)
	if err != nil {
		return c, err
	}
	opts = append(opts, kgo.MaxBufferedBytes(int(buffer)), kgo.MaxBufferedRecords(math.MaxInt))

	delivery, err := integer("delivery.timeout.ms", "120000", 0, math.MaxInt32)
	if err != nil {
		return c, err
	}
	if delivery > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(ms(delivery)))
	}

	request, err := integer("max.request.size", "1048576", 1<<10, 1<<30)
	if err != nil {
		return c, err
	}
	if request < batch {
		// franz-go refuses a request cap below the batch cap; Java's batch.size can
		// exceed max.request.size (the batch is then limited by the request).
		batch = request
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(batch)))
	}
	opts = append(opts, kgo.BrokerMaxWriteBytes(int32(request)))

	if _, ok := values["max.block.ms"]; ok {
		block, err := integer("max.block.ms", "60000", 0, math.MaxInt32)
		if err != nil {
			return c, err
		}
		c.maxBlock, c.blocks = ms(block), true
	}

	if id, ok := values["transactional.id"]; ok && id != "" {
		if !idempotent {
			return c, usagef("transactional.id requires enable.idempotence=true (as in Java and franz-go)")
		}
		c.transactional, c.txnID = true, id
		opts = append(opts, kgo.TransactionalID(id))
		timeout, err := integer("transaction.timeout.ms", "60000", 1, math.MaxInt32)
		if err != nil {
			return c, err
		}
		opts = append(opts, kgo.TransactionTimeout(ms(timeout)))
	} else if _, ok := values["transaction.timeout.ms"]; ok {
		if _, err := integer("transaction.timeout.ms", "60000", 1, math.MaxInt32); err != nil {
			return c, err
		}
	}

	security, err := securityOptions(values)
	if err != nil {
		return c, err
	}
	c.opts = append(opts, security...)
	return c, nil
}

// securityOptions: TLS and SASL from the Java properties (see clientOptions).
func securityOptions(values map[string]string) ([]kgo.Opt, error) {
	protocol := strings.ToUpper(strings.TrimSpace(values["security.protocol"]))
	if protocol == "" {
		protocol = "PLAINTEXT"
	}
	var useTLS, useSASL bool
	switch protocol {
	case "PLAINTEXT":
	case "SSL":
		useTLS = true
	case "SASL_PLAINTEXT":
		useSASL = true
	case "SASL_SSL":
		useTLS, useSASL = true, true
	default:
		return nil, usagef("security.protocol=%q: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", protocol)
	}
	var opts []kgo.Opt
	if useTLS {
		config := &tls.Config{MinVersion: tls.VersionTLS12}
		if path, ok := values["ssl.truststore.location"]; ok {
			if t := values["ssl.truststore.type"]; !strings.EqualFold(t, "PEM") {
				return nil, usagef("ssl.truststore.type=%q: only PEM is supported", t)
			}
			pem, err := os.ReadFile(path)
			if err != nil {
				return nil, usagef("ssl.truststore.location: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, usagef("ssl.truststore.location=%q: no PEM certificate in it", path)
			}
			config.RootCAs = pool
		}
		// ServerName is left empty: franz-go sets it to the host of each broker it dials.
		opts = append(opts, kgo.DialTLSConfig(config))
	}
	if useSASL {
		jaas := values["sasl.jaas.config"]
		user, okUser := jaasOption(jaas, "username")
		password, okPassword := jaasOption(jaas, "password")
		if !okUser || !okPassword {
			return nil, usagef("sasl.jaas.config: expected username=\"...\" and password=\"...\"")
		}
		switch m := strings.ToUpper(strings.TrimSpace(values["sasl.mechanism"])); m {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
		default:
			return nil, usagef("sasl.mechanism=%q: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", m)
		}
	}
	return opts, nil
}

// jaasOption: the quoted value of `key="value"` in a JAAS configuration line.
func jaasOption(jaas, key string) (string, bool) {
	for rest := jaas; ; {
		i := strings.Index(rest, key+"=\"")
		if i < 0 {
			return "", false
		}
		// A whole word: at the start or after a space.
		if i > 0 && rest[i-1] != ' ' && rest[i-1] != '\t' {
			rest = rest[i+len(key):]
			continue
		}
		value := rest[i+len(key)+2:]
		end := strings.IndexByte(value, '"')
		if end < 0 {
			return "", false
		}
		return value[:end], true
	}
}

// ---------------------------------------------------------------------------------------
// The measurement
// ---------------------------------------------------------------------------------------

type driver struct {
	cl     *kgo.Client
	topic  string
	config clientConfig
}

// produceOne hands record i of a phase to the client, its outcome going to promise.
//
// With max.block.ms, Produce gets a context that is canceled once max.block.ms has passed,
// unless Produce returned first: Produce blocks while the buffer is full until its context
// ends, and then fails the record (to its promise) with the context's error, which counts as
// refused. The context is not canceled afterwards, on purpose: franz-go also fails a
// buffered batch (and, without idempotence, cancels its in-flight request) once the context
// of its first record ends, so a plain context.WithTimeout would fail accepted records
// 100 ms later, which Java's max.block.ms never does (accepted records wait for
// delivery.timeout.ms). A record that got room just as the timer fired may be buffered with
// a canceled context; it then fails with context.Canceled and counts as refused as well.
func (d *driver) produceOne(p *pool, i uint64, promise func(*kgo.Record, error)) {
	rec := &kgo.Record{Topic: d.topic, Key: p.key(i), Value: p.values[i%uint64(len(p.values))]}
	switch {
	case !d.config.blocks:
		d.cl.Produce(context.Background(), rec, promise)
		return
	case d.config.maxBlock == 0:
		// max.block.ms=0: never wait; TryProduce fails the record with ErrMaxBuffered.
		d.cl.TryProduce(context.Background(), rec, promise)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(d.config.maxBlock, cancel)
	d.cl.Produce(ctx, rec, promise)
	timer.Stop()
}

// commit flushes (Java's commitTransaction flushes first) and commits, then waits until the
// tally counts `sent` completed records (franz-go runs the promises before Flush returns).
func (d *driver) commit(t *tally, sent uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), txnCallTimeout)
	defer cancel()
	if err := d.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := d.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("EndTransaction(TryCommit): %w", err)
	}
	if !t.waitDone(sent, deliveryWait) {
		return fmt.Errorf("committed with %d of %d promises run", t.done.Load(), sent)
	}
	return nil
}

// initTransactions loads the transactional producer id: InitProducerID (after finding the
// transaction coordinator), which Java's initTransactions sends. franz-go does this lazily;
// ProducerID forces it. Retriable failures (e.g. the coordinator still loading) are retried
// until txnCallTimeout, as Java retries within max.block.ms.
func (d *driver) initTransactions() error {
	deadline := time.Now().Add(txnCallTimeout)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		id, epoch, err := d.cl.ProducerID(ctx)
		cancel()
		if err == nil {
			fmt.Fprintf(os.Stderr, "franz-go peer: transactional id %q: producer id %d, epoch %d\n",
				d.config.txnID, id, epoch)
			return nil
		}
		var kafkaErr *kerr.Error
		fatal := errors.As(err, &kafkaErr) && !kafkaErr.Retriable &&
			!errors.Is(err, kerr.ConcurrentTransactions)
		if fatal || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "franz-go peer: ProducerID: %v; retrying\n", err)
		time.Sleep(100 * time.Millisecond)
	}
}

// close: graceful (Flush, then Close), or stalled (Flush for at most stalledClose, then
// Close, which fails what is left with ErrClientClosed). Returns once every record has
// completed (its promise ran), like the Rust child's close. Close also gives the client
// metrics loop (KIP-714) up to 1 s for a final push when the broker asked for metrics,
// which a stock broker without a telemetry plugin does not.
func (d *driver) close(stalled bool, t *tally, sent uint64) (time.Duration, error) {
	started := time.Now()
	var flushErr error
	if stalled {
		ctx, cancel := context.WithTimeout(context.Background(), stalledClose)
		_ = d.cl.Flush(ctx) // a timeout is expected: the broker is stopped
		cancel()
	} else {
		flushErr = d.cl.Flush(context.Background())
	}
	d.cl.Close()
	if !t.waitDone(sent, afterCloseWait) {
		return 0, fmt.Errorf("after close, %d of %d records completed", t.done.Load(), sent)
	}
	if flushErr != nil {
		return 0, fmt.Errorf("flush: %w", flushErr)
	}
	return time.Since(started), nil
}

func measure(a args) (*report, error) {
	values, err := loadValues(a.valuesPath, a.valueSize, a.valueCount)
	if err != nil {
		return nil, err
	}
	p := newPool(values, a.keys)
	cl, err := kgo.NewClient(a.client.opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	d := &driver{cl: cl, topic: a.topic, config: a.client}
	transactional := a.load == "transactions"

	var initTime time.Duration
	if transactional {
		started := time.Now()
		if err := d.initTransactions(); err != nil {
			return nil, fmt.Errorf("init (ProducerID): %w", err)
		}
		initTime = time.Since(started)
	}

	stalled := a.load == "stalled"
	warmup := newTally(0, false, d.config.blocks)
	if transactional {
		var unmeasured transactions
		if _, err := sendTransactions(d, warmup, p, a.warmup, a.perTransaction, &unmeasured); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	} else {
		for i := uint64(0); i < a.warmup; i++ {
			d.produceOne(p, i, warmup.promise)
		}
	}
	if !warmup.waitDone(a.warmup, deliveryWait) {
		return nil, fmt.Errorf("warm-up: %d of %d records completed within %v",
			warmup.done.Load(), a.warmup, deliveryWait)
	}
	if problem := warmup.problem(a.warmup); problem != "" {
		return nil, fmt.Errorf("warm-up: %s", problem)
	}

	if stalled {
		// The parent stops the broker between READY and GO.
		fmt.Fprintln(os.Stdout, ready)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return nil, fmt.Errorf("reading %s: %w", goWord, err)
		}
		if strings.TrimSpace(line) != goWord {
			return nil, fmt.Errorf("expected %s on stdin, got %q", goWord, line)
		}
	}

	var capacity uint64
	timed := a.load == "rate"
	if timed {
		capacity = recordsAtRate(a.perSec, a.duration)
	}
	t := newTally(capacity, timed, d.config.blocks)
	var txns transactions
	if a.load == "idle" {
		// The warm-up's last acknowledgements are traffic: idle starts after them.
		time.Sleep(idleSettle)
	}
	rssBefore, err := memoryKB("VmRSS")
	if err != nil {
		return nil, err
	}
	cpuBefore, err := cpuTicks()
	if err != nil {
		return nil, err
	}
	started := time.Now()
	var sent uint64
	var idle *idleReport
	switch a.load {
	case "count":
		sent = sendCount(d, t, p, a.records, a.threads)
	case "rate":
		sent = sendAtRate(d, t, p, a.perSec, a.duration)
	case "stalled":
		sent = sendStalled(d, t, p, a.duration)
	case "transactions":
		if sent, err = sendTransactions(d, t, p, a.records, a.perTransaction, &txns); err != nil {
			return nil, err
		}
	case "idle":
		if idle, err = stayIdle(a.duration); err != nil {
			return nil, err
		}
	}
	if !stalled && !t.waitDone(sent, deliveryWait) {
		return nil, fmt.Errorf("%d of %d records completed within %v", t.done.Load(), sent, deliveryWait)
	}
	elapsed := time.Since(started)
	cpuAfter, err := cpuTicks()
	if err != nil {
		return nil, err
	}
	peak, err := memoryKB("VmHWM")
	if err != nil {
		return nil, err
	}

	closeTime, err := d.close(stalled, t, sent)
	if err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	if stalled && t.failed.Load() > 0 {
		fmt.Fprintf(os.Stderr, "franz-go peer: note: %d records failed (expected with a stopped broker); the first: %s\n",
			t.failed.Load(), t.firstError())
	}
	r := &report{
		sent:        sent,
		acked:       t.acked.Load(),
		failed:      t.failed.Load(),
		refused:     t.refused.Load(),
		firstError:  t.firstError(),
		elapsed:     elapsed,
		cpuTicks:    cpuAfter - cpuBefore,
		peakRSSKB:   peak,
		rssBeforeKB: rssBefore,
		closeTime:   closeTime,
		latency:     t.percentiles(),
		idle:        idle,
	}
	if transactional {
		r.txn = &txnReport{init: initTime, stats: txns}
	}
	return r, nil
}

// loadValues reads value_count values of value_size bytes; each returned slice points into
// the one buffer, with its capacity clipped to its own value.
func loadValues(path string, size, count int) ([][]byte, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the values: %w", err)
	}
	if len(buf) != size*count {
		return nil, fmt.Errorf("%s holds %d bytes, expected %d values of %d bytes",
			path, len(buf), count, size)
	}
	values := make([][]byte, count)
	for i := range values {
		values[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	return values, nil
}

// pool: what records are made of; record i of a phase has value i % len(values) and, when
// there are keys, key i % len(keys): `k` and the number in 7 digits (k0000042), built once
// in one buffer (no allocation or formatting per record).
type pool struct{ values, keys [][]byte }

func newPool(values [][]byte, keys uint64) *pool {
	p := &pool{values: values, keys: make([][]byte, keys)}
	buf := make([]byte, 0, 8*keys)
	for k := range keys {
		start := len(buf)
		buf = fmt.Appendf(buf, "k%07d", k)
		p.keys[k] = buf[start:len(buf):len(buf)]
	}
	return p
}

// key: record i's key, nil without keys (an unkeyed record).
func (p *pool) key(i uint64) []byte {
	if len(p.keys) == 0 {
		return nil
	}
	return p.keys[i%uint64(len(p.keys))]
}

// recordsAtRate: round(per_sec * duration_s), as scenario::records_at_rate.
func recordsAtRate(perSec uint64, duration time.Duration) uint64 {
	return uint64(math.Round(float64(perSec) * duration.Seconds()))
}

// sendCount: records split over threads goroutines (thread t sends records
// records*t/threads .. records*(t+1)/threads), as fast as the client takes them.
func sendCount(d *driver, t *tally, p *pool, records uint64, threads int) uint64 {
	n := uint64(threads)
	var wg sync.WaitGroup
	for th := uint64(0); th < n; th++ {
		from, to := records*th/n, records*(th+1)/n
		wg.Go(func() {
			for i := from; i < to; i++ {
				d.produceOne(p, i, t.promise)
			}
		})
	}
	wg.Wait()
	return records
}

// sendAtRate: one goroutine, round(per_sec * duration) records on an absolute schedule
// (record n due n / per_sec after the start); it sleeps whenever it is ahead, never spins.
// The latency of each record runs from just before Produce to its promise.
func sendAtRate(d *driver, t *tally, p *pool, perSec uint64, duration time.Duration) uint64 {
	records := recordsAtRate(perSec, duration)
	start := time.Now()
	for i := uint64(0); i < records; i++ {
		due := start.Add(time.Duration(i * uint64(time.Second) / perSec))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		sentNs := t.nowNs()
		d.produceOne(p, i, func(r *kgo.Record, err error) {
			t.complete(err, sentNs)
		})
	}
	return records
}

// sendStalled: one goroutine sends as fast as the client accepts records until duration
// has passed. Every Produce counts as sent, also those refused (via the promise) for lack
// of buffer within max.block.ms.
func sendStalled(d *driver, t *tally, p *pool, duration time.Duration) uint64 {
	end := time.Now().Add(duration)
	var sent uint64
	for time.Now().Before(end) {
		d.produceOne(p, sent, t.promise)
		sent++
	}
	return sent
}

// recordOverhead: room for a batch's header (61 bytes) and one record's (at most about
// 20 bytes of varints and attributes), rounded up.
const recordOverhead = 128

// idleSettle: how long after the warm-up the idle measurement starts (as the Rust
// child's IDLE_SETTLE).
const idleSettle = time.Second

// idleReport: what the threads used while the producer was idle: CPU (ns) and context
// switches (about how often they woke up). Signed: a thread gone by the second read
// takes its figures with it.
type idleReport struct{ cpuNs, switches int64 }

// stayIdle: one sleep of duration, the threads' CPU time and context switches read before
// and after it.
func stayIdle(duration time.Duration) (*idleReport, error) {
	cpuBefore, switchesBefore, err := threadsCPUAndSwitches()
	if err != nil {
		return nil, err
	}
	time.Sleep(duration)
	cpuAfter, switchesAfter, err := threadsCPUAndSwitches()
	if err != nil {
		return nil, err
	}
	return &idleReport{cpuAfter - cpuBefore, switchesAfter - switchesBefore}, nil
}

// transactions: how many were committed, and the time spent committing them.
type transactions struct {
	count      uint64
	committing time.Duration
}

// sendTransactions: one goroutine, records in transactions of perTransaction (the last one
// may be shorter): begin, produce, commit (flush + EndTransaction), the next one begun once
// the last is committed.
func sendTransactions(d *driver, t *tally, p *pool, records, perTransaction uint64,
	stats *transactions) (uint64, error) {
	perTransaction = max(perTransaction, 1)
	var sent uint64
	for sent < records {
		end := min(records, sent+perTransaction)
		if err := d.cl.BeginTransaction(); err != nil {
			return sent, fmt.Errorf("BeginTransaction: %w", err)
		}
		for i := sent; i < end; i++ {
			d.produceOne(p, i, t.promise)
		}
		sent = end
		committing := time.Now()
		if err := d.commit(t, sent); err != nil {
			return sent, fmt.Errorf("commit (transaction %d): %w", stats.count+1, err)
		}
		stats.committing += time.Since(committing)
		stats.count++
	}
	return sent, nil
}

// ---------------------------------------------------------------------------------------
// Tally
// ---------------------------------------------------------------------------------------

// tally: the outcomes of one phase's records, counted by their promises (which franz-go
// runs one at a time, on its promise goroutine).
type tally struct {
	clock                        time.Time
	done, acked, failed, refused atomic.Uint64
	// refusals: errors of a Produce that found no buffer room count as refused (with
	// max.block.ms: the context canceled by produceOne, or kgo.ErrMaxBuffered).
	refusals bool
	// promise: the method value, made once (no allocation per record).
	promise func(*kgo.Record, error)

	mu        sync.Mutex
	firstErr  string
	latencies []uint32 // µs from Produce to promise, when timed
	timed     bool

	// The count waitDone waits for (MaxUint64 while nobody waits), and its wake-up.
	expected atomic.Uint64
	wake     chan struct{}
}

func newTally(capacity uint64, timed, refusals bool) *tally {
	t := &tally{clock: time.Now(), timed: timed, refusals: refusals, wake: make(chan struct{}, 1)}
	if timed {
		t.latencies = make([]uint32, 0, capacity)
	}
	t.expected.Store(math.MaxUint64)
	t.promise = func(_ *kgo.Record, err error) { t.complete(err, 0) }
	return t
}

func (t *tally) nowNs() uint64 { return uint64(time.Since(t.clock)) }

// complete counts one record's outcome.
func (t *tally) complete(err error, sentNs uint64) {
	switch {
	case err == nil:
		if t.timed {
			us := min((t.nowNs()-sentNs)/1000, math.MaxUint32)
			t.mu.Lock()
			t.latencies = append(t.latencies, uint32(us))
			t.mu.Unlock()
		}
		t.acked.Add(1)
	case t.refusals && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrMaxBuffered)):
		t.refused.Add(1)
	default:
		t.failed.Add(1)
		t.mu.Lock()
		if t.firstErr == "" {
			t.firstErr = err.Error()
		}
		t.mu.Unlock()
	}
	// Sequentially consistent atomics: either waitDone sees this count, or this sees its
	// expectation and wakes it.
	if t.done.Add(1) >= t.expected.Load() {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// waitDone waits until count records completed; false after timeout.
func (t *tally) waitDone(count uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	t.expected.Store(count)
	defer t.expected.Store(math.MaxUint64)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if t.done.Load() >= count {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		timer.Reset(min(left, 100*time.Millisecond))
		select {
		case <-t.wake:
		case <-timer.C:
		}
	}
}

func (t *tally) firstError() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstErr
}

// problem: why sent records do not all count as delivered, if they do not.
func (t *tally) problem(sent uint64) string {
	acked, failed, refused := t.acked.Load(), t.failed.Load(), t.refused.Load()
	if acked == sent && failed == 0 && refused == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d records acknowledged, %d failed, %d refused for lack of buffer; first error: %s",
		acked, sent, failed, refused, orNone(t.firstError()))
}

type percentiles struct{ p50, p99, p999, max uint32 }

func (t *tally) percentiles() *percentiles {
	if !t.timed {
		return nil
	}
	t.mu.Lock()
	l := slices.Clone(t.latencies)
	t.mu.Unlock()
	if len(l) == 0 {
		return nil
	}
	slices.Sort(l)
	// The sample at index floor(p * n), clamped to n - 1, as Kafka's perf tool.
	at := func(p float64) uint32 { return l[min(int(p*float64(len(l))), len(l)-1)] }
	return &percentiles{at(0.50), at(0.99), at(0.999), l[len(l)-1]}
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

type txnReport struct {
	init  time.Duration
	stats transactions
}

type report struct {
	sent, acked, failed, refused uint64
	firstError                   string
	elapsed                      time.Duration
	cpuTicks                     uint64
	peakRSSKB, rssBeforeKB       uint64
	closeTime                    time.Duration
	latency                      *percentiles
	txn                          *txnReport
	idle                         *idleReport
}

// line: `RESULT key=value ...` (values never contain spaces). franz-go has no queue-full
// retries (Produce blocks instead) and no global error callback: queue_full=0 and
// client_errors=0.
func (r *report) line() string {
	line := fmt.Sprintf("%s sent=%d acked=%d failed=%d refused=%d queue_full=0 elapsed_us=%d "+
		"cpu_ticks=%d peak_rss_kb=%d rss_before_kb=%d close_ms=%d client_errors=0",
		resultPrefix, r.sent, r.acked, r.failed, r.refused, r.elapsed.Microseconds(),
		r.cpuTicks, r.peakRSSKB, r.rssBeforeKB, r.closeTime.Milliseconds())
	if p := r.latency; p != nil {
		line += fmt.Sprintf(" p50_us=%d p99_us=%d p999_us=%d max_us=%d", p.p50, p.p99, p.p999, p.max)
	}
	if t := r.txn; t != nil {
		line += fmt.Sprintf(" init_ms=%d transactions=%d commit_us=%d",
			t.init.Milliseconds(), t.stats.count, t.stats.committing.Microseconds())
	}
	if i := r.idle; i != nil {
		line += fmt.Sprintf(" idle_cpu_us=%d wakeups=%d", i.cpuNs/1000, i.switches)
	}
	return line
}

// problem: outside the stalled load every record must be acknowledged.
func (r *report) problem(stalled bool) string {
	if stalled || (r.acked == r.sent && r.failed == 0 && r.refused == 0) {
		return ""
	}
	return fmt.Sprintf("%d of %d records acknowledged, %d failed, %d refused for lack of buffer; first error: %s",
		r.acked, r.sent, r.failed, r.refused, orNone(r.firstError))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ---------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------

// cpuTicks: user + system CPU time of this process (every thread), in clock ticks: fields
// 14 and 15 of /proc/self/stat, counted after the command name's closing parenthesis.
func cpuTicks() (uint64, error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/self/stat")
	}
	fields := strings.Fields(s[i+1:]) // fields[0] is field 3 (state)
	if len(fields) < 13 {
		return 0, errors.New("no fields 14 and 15 in /proc/self/stat")
	}
	utime, err1 := strconv.ParseUint(fields[14-3], 10, 64)
	stime, err2 := strconv.ParseUint(fields[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected fields 14 and 15 in /proc/self/stat")
	}
	return utime + stime, nil
}

// memoryKB: a figure of /proc/self/status in KiB (VmHWM, VmRSS).
func memoryKB(field string) (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("unexpected %s in /proc/self/status: %q", field, line)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// threadsCPUAndSwitches: summed over the threads alive now (/proc/self/task/<tid>), the
// nanoseconds on a CPU (the first field of schedstat, exact where clock ticks are 10 ms
// coarse) and the context switches, voluntary and not (status).
func threadsCPUAndSwitches() (cpuNs, switches int64, err error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, 0, err
	}
	for _, task := range tasks {
		dir := "/proc/self/task/" + task.Name() + "/"
		// A thread that ended since the listing has no files any more: it counts as gone.
		schedstat, err1 := os.ReadFile(dir + "schedstat")
		status, err2 := os.ReadFile(dir + "status")
		if err1 != nil || err2 != nil {
			continue
		}
		if f := strings.Fields(string(schedstat)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			cpuNs += ns
		}
		for _, line := range strings.Split(string(status), "\n") {
			name, v, _ := strings.Cut(line, ":")
			if name == "voluntary_ctxt_switches" || name == "nonvoluntary_ctxt_switches" {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				switches += n
			}
		}
	}
	return cpuNs, switches, nil
}
