// fleetform's T-SQL checker: parses T-SQL with the grammars-v4 grammar
// (built by scripts/tsql-grammar.sh) and reports, per input, whether it
// parsed, how many top-level statements it holds and every syntax error.
//
// Input on stdin: scripts separated by NUL characters. Output: one JSON
// object per script and line, in order:
//   {"index":0,"ok":true,"statements":2,"errors":[]}
// Exit status 0 when every script parsed, 1 otherwise.

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.antlr.v4.runtime.BaseErrorListener;
import org.antlr.v4.runtime.CharStreams;
import org.antlr.v4.runtime.CommonTokenStream;
import org.antlr.v4.runtime.RecognitionException;
import org.antlr.v4.runtime.Recognizer;
import org.antlr.v4.runtime.atn.PredictionMode;
import org.antlr.v4.runtime.tree.ParseTree;

import tsql.TSqlLexer;
import tsql.TSqlParser;

public final class TsqlCheck {
    private TsqlCheck() {}

    private static final class Collector extends BaseErrorListener {
        final List<String> errors = new ArrayList<>();

        @Override
        public void syntaxError(Recognizer<?, ?> recognizer, Object symbol, int line, int column,
                                String message, RecognitionException exception) {
            errors.add(line + ":" + column + " " + message);
        }
    }

    /** Top-level statements: those directly under a batch. */
    private static int statements(ParseTree node) {
        int count = 0;
        for (int i = 0; i < node.getChildCount(); i++) {
            ParseTree child = node.getChild(i);
            if (child instanceof TSqlParser.BatchContext) {
                for (int j = 0; j < child.getChildCount(); j++) {
                    ParseTree part = child.getChild(j);
                    if (part instanceof TSqlParser.Sql_clausesContext
                            || part instanceof TSqlParser.Batch_level_statementContext
                            || part instanceof TSqlParser.Execute_body_batchContext) {
                        count++;
                    }
                }
            } else if (child instanceof TSqlParser.Execute_body_batchContext) {
                count++;
            }
        }
        return count;
    }

    private static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) throws IOException {
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        String[] scripts = input.split("\0", -1);
        int count = input.endsWith("\0") ? scripts.length - 1 : scripts.length;
        boolean allParsed = true;
        StringBuilder out = new StringBuilder();
        for (int index = 0; index < count; index++) {
            Collector collector = new Collector();
            TSqlLexer lexer = new TSqlLexer(CharStreams.fromString(scripts[index]));
            lexer.removeErrorListeners();
            lexer.addErrorListener(collector);
            TSqlParser parser = new TSqlParser(new CommonTokenStream(lexer));
            parser.removeErrorListeners();
            parser.addErrorListener(collector);
            // Full LL prediction: slower than SLL, never wrong about what parses.
            parser.getInterpreter().setPredictionMode(PredictionMode.LL);
            ParseTree tree = parser.tsql_file();
            boolean ok = collector.errors.isEmpty();
            allParsed &= ok;
            out.append("{\"index\":").append(index)
               .append(",\"ok\":").append(ok)
               .append(",\"statements\":").append(statements(tree))
               .append(",\"errors\":[");
            for (int i = 0; i < collector.errors.size(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                out.append(quote(collector.errors.get(i)));
            }
            out.append("]}\n");
        }
        System.out.print(out);
        System.out.flush();
        System.exit(allParsed ? 0 : 1);
    }
}
