// Readiness probe for the local Kafka broker started by deploy/local/servers.sh.
//
// Run with the broker's own classpath (kafka-clients is on it), no compile step:
//   java -Dlog4j.configuration=file:deploy/local/conf/log4j-quiet.properties \
//        -cp "$KAFKA_LIBS/*" deploy/local/probe/KafkaProbe.java BOOTSTRAP WAIT_SECONDS [PID]
//
// One attempt = create the scratch topic (1 partition, ignore "exists"), produce one record
// with a unique value (acks=all), read it back from the exact offset the producer got, and
// commit that offset for the probe group (proves the group coordinator serves too).
// Attempts repeat until one succeeds or WAIT_SECONDS pass (at least one attempt is made).
// If PID is given and that process dies, the probe gives up at once.
//
// Exit 0 and one line "ok ..." on stdout when the round-trip worked; exit 1 and the last
// error on stderr otherwise.

import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class KafkaProbe {
    static final String TOPIC = "__sluice_probe";
    static final String GROUP = "__sluice_probe";
    static final int ATTEMPT_MS = 10_000;

    // Milliseconds spent in each step of the last attempt, for the "ok" line.
    static final StringBuilder phases = new StringBuilder();
    static long mark;

    static void phase(String name) {
        long now = System.nanoTime();
        phases.append(phases.length() == 0 ? "" : " ").append(name).append('=')
                .append((now - mark) / 1_000_000);
        mark = now;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: KafkaProbe BOOTSTRAP WAIT_SECONDS [PID]");
            System.exit(2);
        }
        String bootstrap = args[0];
        long deadline = System.nanoTime() + Long.parseLong(args[1]) * 1_000_000_000L;
        Long pid = args.length > 2 ? Long.valueOf(args[2]) : null;

        Throwable last = null;
        int attempts = 0;
        do {
            if (pid != null && !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                System.err.println("kafka probe: server process " + pid + " exited");
                System.exit(1);
            }
            attempts++;
            long t0 = System.nanoTime();
            try {
                long offset = roundTrip(bootstrap);
                System.out.printf("ok topic=%s offset=%d attempts=%d round_trip_ms=%d (%s)%n",
                        TOPIC, offset, attempts, (System.nanoTime() - t0) / 1_000_000, phases);
                return;
            } catch (Throwable e) {
                last = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            }
            long left = deadline - System.nanoTime();
            if (left > 0) Thread.sleep(Math.min(1000, left / 1_000_000 + 1));
        } while (System.nanoTime() < deadline);

        System.err.println("kafka probe: no round-trip after " + attempts + " attempt(s): " + last);
        System.exit(1);
    }

    static long roundTrip(String bootstrap) throws Exception {
        phases.setLength(0);
        mark = System.nanoTime();
        Properties common = new Properties();
        common.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        common.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(ATTEMPT_MS / 2));
        common.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(ATTEMPT_MS));
        common.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");

        try (Admin admin = Admin.create(common)) {
            try {
                admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get();
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
            }
        }
        phase("topic");

        String value = "probe-" + UUID.randomUUID();
        TopicPartition tp = new TopicPartition(TOPIC, 0);

        Properties pp = new Properties();
        pp.putAll(common);
        pp.remove(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(ATTEMPT_MS));
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(ATTEMPT_MS));
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        long offset;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            RecordMetadata md = producer.send(new ProducerRecord<>(TOPIC, 0, "probe", value)).get();
            offset = md.offset();
        }
        phase("produce");

        Properties cp = new Properties();
        cp.putAll(common);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, GROUP);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, offset);
            long until = System.nanoTime() + ATTEMPT_MS * 1_000_000L;
            while (System.nanoTime() < until) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    if (r.offset() == offset) {
                        if (!value.equals(r.value())) {
                            throw new IllegalStateException("offset " + offset + " holds " + r.value()
                                    + ", expected " + value);
                        }
                        phase("consume");
                        Map<TopicPartition, OffsetAndMetadata> commit =
                                Collections.singletonMap(tp, new OffsetAndMetadata(offset + 1));
                        consumer.commitSync(commit, Duration.ofMillis(ATTEMPT_MS));
                        phase("commit");
                        return offset;
                    }
                }
            }
        }
        throw new IllegalStateException("produced record at offset " + offset + " was not consumed in time");
    }
}
