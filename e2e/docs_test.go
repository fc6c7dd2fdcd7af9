package e2e

// The documents' own tests: README.md and docs/*.md promise commands,
// Caddyfile and JSON snippets, links, test names and file paths; these
// tests hold them to it without a built binary, so they run in the README's
// test command. The commands that need a running gateway are run by
// TestExampleWalkthrough, which finds them through the same markers.
//
// Every fenced block of README.md and docs/*.md is checked by its language,
// or by the marker on the line right above its opening fence:
//
//	<!-- doc-check: run TestName -->   TestName runs the block's commands: it
//	                                    reads them with docCommandsFor; on a
//	                                    caddy block, TestName runs a gateway
//	                                    from it (docCaddyfileFor), which is
//	                                    adapted here too
//	<!-- doc-check: run .ci/run -->     .ci/run runs each command verbatim
//	<!-- doc-check: reproduce -->       go test / go run / ./xcaddy.sh lines:
//	                                    the packages, tests and files they
//	                                    name must exist
//	<!-- doc-check: syntax -->          a Caddyfile syntax summary: every
//	                                    name in it is in configuration.md
//	<!-- doc-check: not run: WHY -->    not runnable here (a production
//	                                    host, Docker, DWS...), and why
//
// Without a marker, a caddy block is adapted by the Caddyfile adapter (a
// snippet is first wrapped in a site or a dws_notify block), a json block is
// parsed (a handler config strictly, into the module's own type), a block
// without a language (or text) is output and must not hold commands, and a
// shell block is an error: a command cannot land in the docs unchecked.

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/dwsnotify/dws_notify"
)

// handlerModule is the module the documents configure.
const handlerModule = "http.handlers.dws_notify"

// docBlock is one fenced code block of a Markdown document.
type docBlock struct {
	File  string // relative to the repository root, slash-separated
	Line  int    // line of the opening fence
	Lang  string // first word of the info string ("" when none)
	Check string // the doc-check marker's text, "" when there is none
	Text  string // the content, the fence's indentation removed
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

var (
	fenceRE  = regexp.MustCompile("^(\\s*)(```+|~~~+)\\s*([^`\\s]*)")
	markerRE = regexp.MustCompile(`^\s*<!--\s*doc-check:\s*(.*?)\s*-->\s*$`)
)

// checkedDocs returns README.md, DEVELOPERS.md and docs/*.md, in that
// order: the documents whose blocks and names are checked.
func checkedDocs(t testing.TB, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(docs)
	files := []string{"README.md", "DEVELOPERS.md"}
	for _, d := range docs {
		files = append(files, "docs/"+filepath.Base(d))
	}
	return files
}

// parseDocBlocks returns the fenced blocks of one document. A doc-check
// marker must stand on the line right above an opening fence.
func parseDocBlocks(t testing.TB, root, rel string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []docBlock
	for i := 0; i < len(lines); i++ {
		if m := markerRE.FindStringSubmatch(lines[i]); m != nil {
			if i+1 >= len(lines) || fenceRE.FindStringSubmatch(lines[i+1]) == nil {
				t.Errorf("%s:%d: a doc-check marker must stand right above an opening fence", rel, i+1)
			}
			continue
		}
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, fence := m[1], m[2]
		b := docBlock{File: rel, Line: i + 1, Lang: m[3]}
		if i > 0 {
			if mm := markerRE.FindStringSubmatch(lines[i-1]); mm != nil {
				b.Check = mm[1]
			}
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == fence {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if !closed {
			t.Errorf("%s: the block opened at line %d is never closed", rel, b.Line)
		}
		b.Text = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

// allDocBlocks returns the blocks of every checked document.
func allDocBlocks(t testing.TB, root string) []docBlock {
	t.Helper()
	var all []docBlock
	for _, f := range checkedDocs(t, root) {
		all = append(all, parseDocBlocks(t, root, f)...)
	}
	return all
}

// shellCommands returns a shell block's commands: continuation lines
// joined, blank lines and comments dropped.
func shellCommands(text string) []string {
	var cmds []string
	pending := ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending += s + " "
			continue
		}
		cmds = append(cmds, strings.TrimSpace(pending+trimmed))
		pending = ""
	}
	if pending != "" {
		cmds = append(cmds, strings.TrimSpace(pending))
	}
	return cmds
}

// docCommand is one command of a document, with where it stands.
type docCommand struct {
	Block docBlock
	Cmd   string
}

// docCommandsFor returns, in document order (README.md first), the
// commands of every block marked `doc-check: run <test>`.
func docCommandsFor(t testing.TB, root, test string) []docCommand {
	t.Helper()
	var cmds []docCommand
	for _, b := range allDocBlocks(t, root) {
		if b.Check == "run "+test {
			for _, c := range shellCommands(b.Text) {
				cmds = append(cmds, docCommand{Block: b, Cmd: c})
			}
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("no block of README.md or docs/*.md is marked `doc-check: run %s`", test)
	}
	return cmds
}

// docCaddyfileFor returns the one caddy block of README.md or docs/*.md
// marked `doc-check: run <test>`: a Caddyfile the test runs a gateway
// from.
func docCaddyfileFor(t testing.TB, root, test string) docBlock {
	t.Helper()
	var found []docBlock
	for _, b := range allDocBlocks(t, root) {
		if b.Check == "run "+test && (b.Lang == "caddy" || b.Lang == "caddyfile") {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d caddy blocks of README.md or docs/*.md are marked `doc-check: run %s`, want 1", len(found), test)
	}
	return found[0]
}

// shellWords splits a command line as a POSIX shell would split words
// without expansions: single quotes, double quotes and backslashes.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		inW   bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inW = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			inW = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inW = true
		case c == ' ' || c == '\t':
			if inW {
				words = append(words, cur.String())
				cur.Reset()
				inW = false
			}
		default:
			cur.WriteByte(c)
			inW = true
		}
	}
	if inW {
		words = append(words, cur.String())
	}
	return words, nil
}

// goTestNames returns the Test, Benchmark and Fuzz functions defined in the
// _test.go files of dir (and below it when recursive), by name.
func goTestNames(t testing.TB, dir string, recursive bool) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Za-z0-9_]*)\(`)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (!recursive || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestDocsCodeBlocks checks every fenced block of README.md and docs/*.md
// by its marker or language (see the top of this file).
func TestDocsCodeBlocks(t *testing.T) {
	root := repoRoot(t)
	e2eSource := e2eSources(t, root)
	ciRun, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	syntaxNames := configurationCaddyfileNames(t, root)
	counts := map[string]int{}
	for _, b := range allDocBlocks(t, root) {
		kind, arg, _ := strings.Cut(b.Check, " ")
		switch {
		case b.Check == "":
			checkUnmarkedBlock(t, b)
			counts[b.Lang]++
		case kind == "run" && arg == ".ci/run":
			for _, c := range shellCommands(b.Text) {
				if !strings.Contains(string(ciRun), c) {
					t.Errorf("%s: `%s` is marked as run by .ci/run, which has no such line", b, c)
				}
			}
			counts["run .ci/run"]++
		case kind == "run" && (b.Lang == "caddy" || b.Lang == "caddyfile"):
			// A Caddyfile a test runs a gateway from: the test must read it
			// with docCaddyfileFor; it must adapt as it stands.
			if !regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(arg) + `\(`).MatchString(e2eSource) {
				t.Errorf("%s: marked as run by %s, which is no test in e2e", b, arg)
			} else if !strings.Contains(e2eSource, `docCaddyfileFor(t, root, "`+arg+`")`) {
				t.Errorf("%s: marked as run by %s, which never reads it (docCaddyfileFor)", b, arg)
			}
			adaptDocSnippet(t, b)
			counts["run (caddy)"]++
		case kind == "run":
			// The test must exist in e2e and read its blocks itself.
			if !regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(arg) + `\(`).MatchString(e2eSource) {
				t.Errorf("%s: marked as run by %s, which is no test in e2e", b, arg)
			} else if !strings.Contains(e2eSource, `docCommandsFor(t, root, "`+arg+`")`) {
				t.Errorf("%s: marked as run by %s, which never reads its blocks (docCommandsFor)", b, arg)
			}
			if !isShell(b.Lang) {
				t.Errorf("%s: a block a test runs must be ```sh", b)
			}
			counts["run"]++
		case b.Check == "reproduce":
			for _, c := range shellCommands(b.Text) {
				checkReproduceCommand(t, root, b, c)
			}
			counts["reproduce"]++
		case b.Check == "syntax":
			checkSyntaxBlock(t, b, syntaxNames)
			counts["syntax"]++
		case strings.HasPrefix(b.Check, "not run:"):
			if why := strings.TrimSpace(strings.TrimPrefix(b.Check, "not run:")); len(why) < 10 {
				t.Errorf("%s: `not run` needs a reason", b)
			}
			counts["not run"]++
		default:
			t.Errorf("%s: unknown doc-check marker %q", b, b.Check)
		}
	}
	t.Logf("blocks checked: %v", counts)
}

func isShell(lang string) bool {
	return slices.Contains([]string{"sh", "bash", "shell", "console", "zsh"}, lang)
}

// e2eSources returns the e2e package's test sources, concatenated.
func e2eSources(t testing.TB, root string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "e2e", "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(data)
		all.WriteByte('\n')
	}
	return all.String()
}

// checkUnmarkedBlock checks a block without a marker by its language.
func checkUnmarkedBlock(t *testing.T, b docBlock) {
	t.Helper()
	switch {
	case isShell(b.Lang):
		t.Errorf("%s: a ```%s block needs a doc-check marker: `run <Test>` (a test runs it), `reproduce`, or `not run: <why>`", b, b.Lang)
	case b.Lang == "caddy" || b.Lang == "caddyfile":
		adaptDocSnippet(t, b)
	case b.Lang == "json":
		checkJSONBlock(t, b)
	case b.Lang == "" || b.Lang == "text":
		// Output, messages, usage lines: nothing to run, but a command
		// must not hide here.
		for _, line := range strings.Split(b.Text, "\n") {
			l := strings.TrimSpace(line)
			for _, p := range []string{"./", "$ ", "sudo "} {
				if strings.HasPrefix(l, p) {
					t.Errorf("%s: %q looks like a command in a block without a language: use ```sh with a doc-check marker", b, l)
				}
			}
		}
	default:
		t.Errorf("%s: no check for ```%s blocks", b, b.Lang)
	}
}

// checkReproduceCommand checks a command that reproduces a figure: every
// part of it chained with && is ./xcaddy.sh, bench/run.sh, go test or go
// run, and the packages and tests it names exist.
func checkReproduceCommand(t *testing.T, root string, b docBlock, cmd string) {
	t.Helper()
	for part := range strings.SplitSeq(cmd, "&&") {
		words, err := shellWords(strings.TrimSpace(part))
		if err != nil {
			t.Errorf("%s: %v", b, err)
			continue
		}
		for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
			words = words[1:] // environment assignments
		}
		if len(words) == 0 {
			t.Errorf("%s: empty command in `%s`", b, cmd)
			continue
		}
		switch {
		case words[0] == "./xcaddy.sh" || words[0] == "bench/run.sh":
			if _, err := os.Stat(filepath.Join(root, words[0])); err != nil {
				t.Errorf("%s: %v", b, err)
			}
		case len(words) >= 2 && words[0] == "go" && words[1] == "run":
			var pkgs []string
			for _, w := range words[2:] {
				if strings.HasPrefix(w, "./") {
					pkgs = append(pkgs, w)
					break // the rest are the program's arguments
				}
			}
			if len(pkgs) != 1 {
				t.Errorf("%s: `%s` names no package", b, part)
			}
			checkGoPackages(t, root, b, pkgs, "")
		case len(words) >= 2 && words[0] == "go" && words[1] == "test":
			var pkgs []string
			run := ""
			for i := 2; i < len(words); i++ {
				w := words[i]
				switch {
				case w == "-run" && i+1 < len(words):
					run = words[i+1]
					i++
				case strings.HasPrefix(w, "-run="):
					run = strings.TrimPrefix(w, "-run=")
				case slices.Contains([]string{"-skip", "-timeout", "-count", "-p", "-bench", "-benchtime", "-fuzz", "-fuzztime"}, w) && i+1 < len(words):
					i++
				case strings.HasPrefix(w, "./"):
					pkgs = append(pkgs, w)
				}
			}
			if len(pkgs) == 0 {
				t.Errorf("%s: `%s` names no package", b, part)
			}
			checkGoPackages(t, root, b, pkgs, run)
		default:
			t.Errorf("%s: `%s` is marked reproduce, which covers ./xcaddy.sh, bench/run.sh, go test and go run only", b, part)
		}
	}
}

// checkGoPackages checks that the packages exist and define every test a
// -run pattern names.
func checkGoPackages(t *testing.T, root string, b docBlock, pkgs []string, run string) {
	t.Helper()
	defined := map[string]bool{}
	for _, p := range pkgs {
		recursive := strings.HasSuffix(p, "/...")
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(strings.TrimSuffix(p, "/..."), "/")))
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s: package %s does not exist", b, p)
			continue
		}
		for n := range goTestNames(t, dir, recursive) {
			defined[n] = true
		}
	}
	for _, name := range regexp.MustCompile(`(?:Test|Benchmark|Fuzz)[A-Za-z0-9_]*`).FindAllString(run, -1) {
		if !defined[name] {
			t.Errorf("%s: -run names %s, which %v does not define", b, name, pkgs)
		}
	}
}

// checkJSONBlock parses a json block; a handler config (an object with
// "handler": "dws_notify", or a fragment such as `"store": {...}`) is
// decoded strictly into the module's own type, so an unknown or misspelt
// field fails.
func checkJSONBlock(t *testing.T, b docBlock) {
	t.Helper()
	text := strings.TrimSpace(b.Text)
	if strings.HasPrefix(text, `"`) {
		text = "{" + text + "}" // a member of an object
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &obj); err != nil {
		t.Errorf("%s: not JSON: %v", b, err)
		return
	}
	var handler string
	_ = json.Unmarshal(obj["handler"], &handler)
	_, store := obj["store"]
	if handler != "dws_notify" && !(store && len(obj) == 1) {
		return // an answer or another document, checked as JSON only
	}
	delete(obj, "handler")
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	mod := newHandlerModule(t)
	if err := caddy.StrictUnmarshalJSON(raw, mod); err != nil {
		t.Errorf("%s: not a %s config: %v", b, handlerModule, err)
	}
}

// newHandlerModule returns a new, empty value of the handler module.
func newHandlerModule(t testing.TB) caddy.Module {
	t.Helper()
	info, err := caddy.GetModule(handlerModule)
	if err != nil {
		t.Fatal(err)
	}
	return info.New()
}

// The subdirectives a snippet may start with, by where it belongs.
var (
	storeSubdirective    = "store"
	handlerSubdirectives = []string{"client_id", "dws_public_key", "merchant_private_key", "api", "storage", "retention",
		"request_time_tolerance", "max_body_size", "body_timeout", "forward_timeout", "business_reject_status",
		"result_message_field", "strict", "forward_signature"}
	siteDirectives = []string{"dws_notify", "log", "reverse_proxy"}
)

// caddySegments splits a Caddyfile snippet into its top-level statements
// (a line and, when it opens one, its block).
func caddySegments(text string) []string {
	var segs []string
	var cur []string
	depth := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" && depth == 0 {
			continue
		}
		cur = append(cur, line)
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		// {env.X} and {file.X} placeholders open and close on one line.
		if depth == 0 {
			segs = append(segs, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	if len(cur) > 0 {
		segs = append(segs, strings.Join(cur, "\n"))
	}
	return segs
}

// adaptDocSnippet adapts a caddy block, wrapped as its first word needs,
// and returns the dws_notify handlers of the result as JSON objects.
func adaptDocSnippet(t *testing.T, b docBlock) []map[string]any {
	t.Helper()
	segs := caddySegments(b.Text)
	if len(segs) == 0 {
		t.Errorf("%s: empty caddy block", b)
		return nil
	}
	first := strings.Fields(segs[0])[0]
	const minimal = "client_id 2188120000000000\napi addPaymentMethod\n"
	const key = "dws_public_key {file./etc/dws/alipay_public_key.pem}\n"
	var sources []string
	wantHandler := true
	switch {
	case first == storeSubdirective:
		// Each store statement on its own: a handler has one store.
		for _, s := range segs {
			sources = append(sources, ":8080 {\ndws_notify {\n"+minimal+key+s+"\n}\n}\n")
		}
	case slices.Contains(handlerSubdirectives, first):
		src := minimal
		if !strings.Contains(b.Text, "dws_public_key") {
			src += key
		}
		sources = append(sources, ":8080 {\ndws_notify {\n"+src+b.Text+"\n}\n}\n")
	case slices.Contains(siteDirectives, first):
		sources = append(sources, ":8080 {\n"+b.Text+"\n}\n")
		wantHandler = first == "dws_notify"
	default:
		sources = append(sources, b.Text+"\n") // a whole Caddyfile
	}
	var handlers []map[string]any
	for _, src := range sources {
		wrapped := src != b.Text+"\n"
		if wrapped {
			src = string(caddyfile.Format([]byte(src)))
		}
		out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": b.String()})
		if err != nil {
			t.Errorf("%s: the Caddyfile does not adapt: %v\n%s", b, err, src)
			continue
		}
		for _, w := range warnings {
			t.Errorf("%s: adapting it warns: %s", b, w)
		}
		hs := findHandlers(out)
		if wantHandler && len(hs) == 0 {
			t.Errorf("%s: adapted, but configures no dws_notify handler:\n%s", b, out)
		}
		for _, h := range hs {
			raw, _ := json.Marshal(h)
			var strict map[string]json.RawMessage
			_ = json.Unmarshal(raw, &strict)
			delete(strict, "handler")
			raw, _ = json.Marshal(strict)
			if err := caddy.StrictUnmarshalJSON(raw, newHandlerModule(t)); err != nil {
				t.Errorf("%s: the adapter wrote a handler the module does not decode: %v", b, err)
			}
		}
		handlers = append(handlers, hs...)
	}
	return handlers
}

// findHandlers returns every JSON object with "handler": "dws_notify" in an
// adapted config, at any depth.
func findHandlers(config []byte) []map[string]any {
	var v any
	if err := json.Unmarshal(config, &v); err != nil {
		return nil
	}
	var out []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "dws_notify" {
				out = append(out, x)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// checkSyntaxBlock checks that every name of a Caddyfile syntax summary is
// an option of configuration.md's tables.
func checkSyntaxBlock(t *testing.T, b docBlock, known map[string]bool) {
	t.Helper()
	word := regexp.MustCompile(`^[a-z_]+`)
	for _, line := range strings.Split(b.Text, "\n") {
		name := word.FindString(strings.TrimSpace(line))
		if name == "" || name == "dws_notify" {
			continue
		}
		if !known[name] {
			t.Errorf("%s: the syntax names %q, which no row of docs/configuration.md's tables does", b, name)
		}
	}
}

// configTableRow is one row of a table of docs/configuration.md with both
// a Caddyfile and a JSON column.
type configTableRow struct {
	Line      int
	Caddyfile string
	JSON      string
	Default   string
}

// configurationTables returns the rows of docs/configuration.md's option
// tables (those whose header names Caddyfile and JSON columns).
func configurationTables(t testing.TB, root string) []configTableRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []configTableRow
	cf, js, df := -1, -1, -1
	for i, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "|") {
			cf, js, df = -1, -1, -1
			continue
		}
		cells := splitTableRow(line)
		if cf < 0 {
			for j, c := range cells {
				switch strings.TrimSpace(c) {
				case "Caddyfile":
					cf = j
				case "JSON":
					js = j
				case "default":
					df = j
				}
			}
			if cf < 0 || js < 0 || df < 0 {
				cf, js, df = -1, -1, -1
			}
			continue
		}
		if strings.HasPrefix(line, "|---") || len(cells) <= max(cf, js, df) {
			continue
		}
		rows = append(rows, configTableRow{Line: i + 1, Caddyfile: cells[cf], JSON: cells[js], Default: cells[df]})
	}
	if len(rows) == 0 {
		t.Fatal("docs/configuration.md has no table with Caddyfile and JSON columns")
	}
	return rows
}

// splitTableRow splits a Markdown table row into cells, keeping `\|`.
func splitTableRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' && i+1 < len(line) && line[i+1] == '|' {
			cur.WriteByte('|')
			i++
			continue
		}
		if line[i] == '|' {
			cells = append(cells, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(line[i])
	}
	return append(cells, cur.String())
}

var codeSpanRE = regexp.MustCompile("`([^`]+)`")

// configurationCaddyfileNames returns every word that starts a code span of
// the Caddyfile column of configuration.md's tables, or follows a `{` in
// one (`tls { ca <pem> }`).
func configurationCaddyfileNames(t testing.TB, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	word := regexp.MustCompile(`(?:^|[{|]\s*)([a-z_]+)`)
	for _, r := range configurationTables(t, root) {
		for _, m := range codeSpanRE.FindAllStringSubmatch(r.Caddyfile, -1) {
			for _, w := range word.FindAllStringSubmatch(m[1], -1) {
				names[w[1]] = true
			}
			// store redis <url> | sentinel ... | cluster ...
			for _, f := range strings.Fields(m[1]) {
				if regexp.MustCompile(`^[a-z_]+$`).MatchString(f) {
					names[f] = true
				}
			}
		}
	}
	return names
}

// jsonPaths returns the JSON paths of a config type's fields: "a", "a.b",
// and "a[].b" inside arrays of objects. Containers are listed too.
func jsonPaths(typ reflect.Type, prefix string, out map[string]bool) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			// An embedded struct's fields are the outer type's (the
			// handler embeds config.Handler), as encoding/json has it.
			jsonPaths(f.Type, prefix, out)
			continue
		}
		if name == "-" || name == "" {
			continue
		}
		path := prefix + name
		out[path] = true
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			jsonPaths(ft, path+".", out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			jsonPaths(ft.Elem(), path+"[].", out)
		}
	}
}

// leafPaths returns the paths of a decoded JSON value that hold a value
// other than an object, in the notation of jsonPaths.
func leafPaths(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			out[strings.TrimSuffix(prefix, ".")] = true // tls with no block
		}
		for k, c := range x {
			leafPaths(c, prefix+k+".", out)
		}
	case []any:
		p := strings.TrimSuffix(prefix, ".")
		if len(x) > 0 {
			if _, ok := x[0].(map[string]any); ok {
				for _, c := range x {
					leafPaths(c, p+"[].", out)
				}
				return
			}
		}
		out[p] = true
	default:
		out[strings.TrimSuffix(prefix, ".")] = true
	}
}

// TestDocsConfigurationReference holds docs/configuration.md to the
// module's config type: every JSON field of the handler (the store's
// included) has a row in its tables, every JSON name there is a field, and
// its complete examples, adapted by the Caddyfile adapter, set every field,
// so each Caddyfile form is shown to produce its JSON name.
func TestDocsConfigurationReference(t *testing.T) {
	root := repoRoot(t)
	fields := map[string]bool{}
	jsonPaths(reflect.TypeOf(newHandlerModule(t)), "", fields)

	documented := map[string]int{}
	for _, r := range configurationTables(t, root) {
		for _, m := range codeSpanRE.FindAllStringSubmatch(r.JSON, -1) {
			documented[m[1]] = r.Line
			if !fields[m[1]] {
				t.Errorf("docs/configuration.md:%d: JSON name `%s` is no field of %s", r.Line, m[1], handlerModule)
			}
		}
	}
	var leaves []string
	for p := range fields {
		if _, ok := documented[p]; !ok && !hasChild(fields, p) {
			t.Errorf("docs/configuration.md documents no `%s` (a field of %s): add a row with its Caddyfile form, JSON name, default and meaning", p, handlerModule)
		}
		if !hasChild(fields, p) {
			leaves = append(leaves, p)
		}
	}

	// The JSON section's handler shows every top-level field (the store in
	// the block after it), as its prose says.
	jsonBlocks := 0
	for _, b := range parseDocBlocks(t, root, "docs/configuration.md") {
		if b.Lang != "json" || !strings.Contains(b.Text, `"handler": "dws_notify"`) {
			continue
		}
		jsonBlocks++
		var h map[string]json.RawMessage
		if err := json.Unmarshal([]byte(b.Text), &h); err != nil {
			t.Errorf("%s: %v", b, err)
			continue
		}
		for k := range h {
			if k != "handler" && !fields[k] {
				t.Errorf("%s: `%s` is no field of %s", b, k, handlerModule)
			}
		}
		var missing []string
		for p := range fields {
			if _, ok := h[p]; !ok && p != "store" && !strings.ContainsAny(p, ".[") {
				missing = append(missing, p)
			}
		}
		sort.Strings(missing)
		for _, p := range missing {
			t.Errorf("%s: the JSON section's handler has no `%s`: it shows every field of the table but the store", b, p)
		}
	}
	if jsonBlocks != 1 {
		t.Errorf("docs/configuration.md has %d JSON blocks of the whole handler (\"handler\": \"dws_notify\"), want 1 (## JSON)", jsonBlocks)
	}

	set := map[string]bool{}
	for _, b := range parseDocBlocks(t, root, "docs/configuration.md") {
		if b.Check != "" || b.Lang != "caddy" {
			continue
		}
		for _, h := range adaptDocSnippet(t, b) {
			delete(h, "handler")
			leafPaths(h, "", set)
		}
	}
	sort.Strings(leaves)
	for _, p := range leaves {
		if !set[p] {
			t.Errorf("no Caddyfile example of docs/configuration.md sets `%s`: show its Caddyfile form in one (Complete examples)", p)
		}
	}
	t.Logf("%d JSON fields of %s documented and set by the examples", len(leaves), handlerModule)

	// Caddyfile.example's comments name the defaults it leaves alone: they
	// must be the table's.
	example, err := os.ReadFile(filepath.Join(root, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	var comments strings.Builder
	for _, line := range strings.Split(string(example), "\n") {
		if _, c, ok := strings.Cut(line, "#"); ok {
			comments.WriteString(c + " ")
		}
	}
	text := strings.Join(strings.Fields(comments.String()), " ")
	named := 0
	for _, r := range configurationTables(t, root) {
		m := codeSpanRE.FindStringSubmatch(r.Caddyfile)
		if m == nil {
			continue
		}
		name := strings.Fields(m[1])[0]
		for _, v := range regexp.MustCompile(`\b`+regexp.QuoteMeta(name)+` ((?:[0-9]+ )*[0-9]+\b|[A-Za-z0-9_]+)`).FindAllStringSubmatch(text, -1) {
			value := v[1]
			// Only what reads as a value: a number, a size or duration,
			// on or off, or one of the option's own words.
			if !regexp.MustCompile(`[0-9]`).MatchString(value) && value != "off" && value != "on" && !strings.Contains(r.Caddyfile, value) {
				continue
			}
			named++
			if !strings.Contains(r.Default, value) {
				t.Errorf("Caddyfile.example says %s %s; docs/configuration.md:%d gives the default %s", name, value, r.Line, r.Default)
			}
		}
	}
	if named == 0 {
		t.Error("Caddyfile.example's comments name no default any more; keep them, or drop this check")
	}
	t.Logf("Caddyfile.example names %d defaults, each as the table gives it", named)
}

func hasChild(fields map[string]bool, p string) bool {
	for f := range fields {
		if strings.HasPrefix(f, p+".") || strings.HasPrefix(f, p+"[].") {
			return true
		}
	}
	return false
}

// markdownFiles returns every Markdown file of the repository, relative to
// root, skipping hidden directories and test data.
func markdownFiles(t testing.TB, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "out") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// proseLines returns a document's lines with fenced blocks blanked, so
// links, headings and names are only looked for in its prose.
func proseLines(data string) []string {
	lines := strings.Split(data, "\n")
	fence := ""
	for i, l := range lines {
		if m := fenceRE.FindStringSubmatch(l); m != nil && (fence == "" || strings.TrimSpace(l) == fence) {
			if fence == "" {
				fence = m[2]
			} else {
				fence = ""
			}
			lines[i] = ""
			continue
		}
		if fence != "" {
			lines[i] = ""
		}
	}
	return lines
}

// headingAnchors returns the anchors GitHub gives a document's headings.
func headingAnchors(data string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, l := range proseLines(data) {
		m := regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`).FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a := githubSlug(m[1])
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

// githubSlug is GitHub's heading anchor: lower case, punctuation dropped,
// spaces turned into hyphens.
func githubSlug(heading string) string {
	// Links in a heading count by their text.
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinks checks every relative link of every Markdown file of the
// repository: the file or directory exists, and an anchor names a heading
// of the Markdown file it points into.
func TestDocsLinks(t *testing.T) {
	root := repoRoot(t)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(rel string) map[string]bool {
		if a, ok := anchors[rel]; ok {
			return a
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		anchors[rel] = headingAnchors(string(data))
		return anchors[rel]
	}
	n := 0
	for _, rel := range markdownFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range proseLines(string(data)) {
			// Inline code is not a link.
			line = regexp.MustCompile("``[^`]*``|`[^`\\]]*`").ReplaceAllString(line, "")
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`).MatchString(target) {
					continue // https:, mailto:
				}
				n++
				file, anchor, _ := strings.Cut(target, "#")
				dest := rel
				if file != "" {
					dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(rel), filepath.FromSlash(file))))
					if strings.HasPrefix(dest, "../") {
						t.Errorf("%s:%d: link %s leaves the repository", rel, i+1, target)
						continue
					}
					if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
						t.Errorf("%s:%d: link %s: %s does not exist", rel, i+1, target, dest)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s:%d: link %s: an anchor into a file that is not Markdown", rel, i+1, target)
					continue
				}
				if !anchorsOf(dest)[anchor] {
					t.Errorf("%s:%d: link %s: %s has no heading with anchor #%s", rel, i+1, target, dest, anchor)
				}
			}
		}
	}
	t.Logf("%d relative links checked in %d Markdown files", n, len(markdownFiles(t, root)))

	// The documents that other files point into: alert rules' runbook
	// annotations, the dashboard, the example Caddyfile's comments.
	refRE := regexp.MustCompile(`\b((?:docs/)?[A-Za-z]+\.md)(?:#([a-z0-9_-]+))?`)
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return checkDocRefs(t, root, path, refRE, anchorsOf)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDocRefs(t, root, filepath.Join(root, "Caddyfile.example"), refRE, anchorsOf); err != nil {
		t.Fatal(err)
	}
}

// checkDocRefs checks the Markdown files (and anchors) a file names.
func checkDocRefs(t *testing.T, root, path string, refRE *regexp.Regexp, anchorsOf func(string) map[string]bool) error {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(root, path)
	for i, line := range strings.Split(string(data), "\n") {
		for _, m := range refRE.FindAllStringSubmatch(line, -1) {
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m[1]))); err != nil {
				t.Errorf("%s:%d: names %s, which does not exist", rel, i+1, m[1])
				continue
			}
			if m[2] != "" && !anchorsOf(m[1])[m[2]] {
				t.Errorf("%s:%d: %s has no heading with anchor #%s", rel, i+1, m[1], m[2])
			}
		}
	}
	return nil
}

// TestDocsNames checks the names README.md, DEVELOPERS.md and docs/*.md
// give: every test
// they name is defined, and every repository path they quote exists, so a
// renamed test or moved file cannot leave the documents behind.
func TestDocsNames(t *testing.T) {
	root := repoRoot(t)
	tests := goTestNames(t, root, true)
	top := map[string]bool{}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		top[e.Name()] = true
	}
	pathRE := regexp.MustCompile(`^\.?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/?$`)
	var paths []string
	for _, rel := range checkedDocs(t, root) {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, name := range regexp.MustCompile(`\b(?:Test|Benchmark)[A-Z][A-Za-z0-9_]*`).FindAllString(line, -1) {
				if !tests[name] {
					t.Errorf("%s:%d: names %s, which no _test.go file defines", rel, i+1, name)
				}
			}
		}
		for i, line := range proseLines(string(data)) {
			for _, m := range codeSpanRE.FindAllStringSubmatch(line, -1) {
				p := m[1]
				first, _, ok := strings.Cut(p, "/")
				if !ok || !top[first] || !pathRE.MatchString(p) {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
					t.Errorf("%s:%d: `%s` does not exist in the repository", rel, i+1, p)
					continue
				}
				paths = append(paths, p)
			}
		}
	}
	slices.Sort(paths)
	t.Logf("repository paths named by the documents: %v", slices.Compact(paths))
}
