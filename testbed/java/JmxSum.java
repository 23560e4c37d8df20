import java.util.Set;

import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * Sums numeric JMX attributes over every MBean a pattern matches, for the test bed's
 * broker metrics.
 *
 * <p>Usage: {@code JmxSum <host:port> <object-name-pattern> <attribute>...}. Connects to
 * the JMX server without authentication or TLS and prints one line per attribute on
 * stdout: {@code attribute sum beans}, where {@code beans} is how many MBeans matched (0:
 * the metric does not exist yet) and {@code sum} is the sum of the attribute over them.
 */
public final class JmxSum {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: JmxSum <host:port> <object-name-pattern> <attribute>...");
            System.exit(2);
        }
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + args[0] + "/jmxrmi");
        try (JMXConnector connector = JMXConnectorFactory.connect(url)) {
            MBeanServerConnection server = connector.getMBeanServerConnection();
            Set<ObjectName> names = server.queryNames(new ObjectName(args[1]), null);
            StringBuilder out = new StringBuilder();
            for (int i = 2; i < args.length; i++) {
                double sum = 0;
                for (ObjectName name : names) {
                    sum += ((Number) server.getAttribute(name, args[i])).doubleValue();
                }
                out.append(args[i]).append(' ').append(sum).append(' ').append(names.size()).append('\n');
            }
            System.out.print(out);
        }
    }
}
