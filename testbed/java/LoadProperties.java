import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Properties;
import java.util.TreeSet;

/**
 * Reads a {@code .properties} file (UTF-8) with {@code java.util.Properties.load} and
 * prints each entry, sorted by key, as {@code <key hex>\t<value hex>} (the UTF-8 bytes in
 * lowercase hex): the reference the producer's own properties reader is checked against.
 *
 * <p>Usage: {@code java LoadProperties FILE}
 */
public final class LoadProperties {
    public static void main(String[] args) throws IOException {
        Properties properties = new Properties();
        try (Reader reader = Files.newBufferedReader(Paths.get(args[0]), StandardCharsets.UTF_8)) {
            properties.load(reader);
        }
        StringBuilder out = new StringBuilder();
        for (String key : new TreeSet<>(properties.stringPropertyNames())) {
            out.append(hex(key)).append('\t').append(hex(properties.getProperty(key))).append('\n');
        }
        System.out.print(out);
    }

    private static String hex(String s) {
        StringBuilder b = new StringBuilder();
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) {
            b.append(String.format("%02x", x & 0xff));
        }
        return b.toString();
    }
}
