// Readiness probe for the local Cassandra node started by deploy/local/servers.sh.
//
// Run with Cassandra's own classpath, no compile step. cassandra-all depends on the DataStax
// Java driver 3.x (org.apache.cassandra:cassandra-driver-core, classifier "shaded", package
// com.datastax.driver.core; Cassandra's own bulk loader uses it), so nothing extra is fetched:
//   java -Dlogback.configurationFile=deploy/local/conf/logback-quiet.xml \
//        -cp "$CASSANDRA_LIBS/*" deploy/local/probe/CqlProbe.java HOST PORT WAIT_SECONDS [PID]
//
// One attempt = connect over the native protocol and run
//   SELECT release_version FROM system.local
// which must return a row. Attempts repeat until one succeeds or WAIT_SECONDS pass (at least
// one attempt is made). If PID is given and that process dies, the probe gives up at once.
//
// Exit 0 and one line "ok release_version=..." on stdout; exit 1 and the last error on stderr.

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;

import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.ConsistencyLevel;
import com.datastax.driver.core.QueryOptions;
import com.datastax.driver.core.Row;
import com.datastax.driver.core.Session;
import com.datastax.driver.core.SocketOptions;

public class CqlProbe {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: CqlProbe HOST PORT WAIT_SECONDS [PID]");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        long deadline = System.nanoTime() + Long.parseLong(args[2]) * 1_000_000_000L;
        Long pid = args.length > 3 ? Long.valueOf(args[3]) : null;

        Throwable last = null;
        int attempts = 0;
        do {
            if (pid != null && !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                System.err.println("cql probe: server process " + pid + " exited");
                System.exit(1);
            }
            // A plain TCP connect first: while the port is closed this fails in microseconds,
            // whereas a failed driver attempt costs seconds (its Netty event loop shutdown).
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(host, port), 1000);
            } catch (IOException e) {
                last = e;
                long left = deadline - System.nanoTime();
                if (left > 0) Thread.sleep(Math.min(250, left / 1_000_000 + 1));
                continue;
            }
            attempts++;
            try (Cluster cluster = Cluster.builder()
                    .addContactPoint(host)
                    .withPort(port)
                    .withoutJMXReporting()
                    .withoutMetrics()
                    .withSocketOptions(new SocketOptions()
                            .setConnectTimeoutMillis(3000)
                            .setReadTimeoutMillis(10000))
                    .withQueryOptions(new QueryOptions()
                            .setConsistencyLevel(ConsistencyLevel.ONE)
                            .setMetadataEnabled(false)) // no schema/token download: faster
                    .build();
                 Session session = cluster.connect()) {
                Row row = session.execute("SELECT release_version FROM system.local").one();
                if (row == null) throw new IllegalStateException("system.local returned no row");
                System.out.printf("ok release_version=%s cluster=%s attempts=%d%n",
                        row.getString("release_version"), cluster.getMetadata().getClusterName(), attempts);
                return;
            } catch (Throwable e) {
                last = e;
            }
            long left = deadline - System.nanoTime();
            if (left > 0) Thread.sleep(Math.min(1000, left / 1_000_000 + 1));
        } while (System.nanoTime() < deadline);

        System.err.println("cql probe: no answer from " + host + ":" + port + " in time (" + attempts
                + " CQL attempt(s) after the port opened); last error: " + last);
        System.exit(1);
    }
}
