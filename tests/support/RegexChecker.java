// allowedPattern under Java's regex engine, as SSM checks a parameter value at the API.
//
// Run as a single-file program (`java RegexChecker.java`), with the JVM's default thread
// stack, as a service would. Standard input holds NUL-separated pairs: pattern, value, pattern,
// value, ... For each pair one line goes to standard output: "match", "nomatch",
// "overflow" (the matcher ran out of stack) or "invalid <reason>" (the pattern does not compile).
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

public class RegexChecker {
    public static void main(String[] args) throws IOException {
        String[] fields = readAll(System.in).split("\0", -1);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i + 1 < fields.length; i += 2) {
            out.append(check(fields[i], fields[i + 1])).append('\n');
        }
        System.out.print(out);
    }

    static String check(String pattern, String value) {
        try {
            return Pattern.compile(pattern).matcher(value).find() ? "match" : "nomatch";
        } catch (PatternSyntaxException e) {
            return "invalid " + e.getDescription();
        } catch (StackOverflowError e) {
            return "overflow";
        }
    }

    static String readAll(InputStream in) throws IOException {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        in.transferTo(buffer);
        return buffer.toString(StandardCharsets.UTF_8);
    }
}
