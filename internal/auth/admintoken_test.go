package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func hashLine(name, role, token string) string {
	h := sha256.Sum256([]byte(token))
	return name + " " + role + " sha256:" + hex.EncodeToString(h[:])
}

// testToken returns a well-formed admin token that differs by i.
func testToken(i int) string {
	return fmt.Sprintf("%s%043d", AdminTokenPrefix, i)
}

func TestRole(t *testing.T) {
	for r, want := range map[Role]string{RoleNone: "none", RoleAttester: "attester", RoleReader: "reader", RoleContributor: "contributor", Role(7): "Role(7)", Role(-1): "Role(-1)"} {
		if got := r.String(); got != want {
			t.Errorf("Role(%d).String() = %q, want %q", int(r), got, want)
		}
	}
	for in, want := range map[string]Role{"none": RoleNone, "Attester": RoleAttester, "READER": RoleReader, "contributor": RoleContributor, "ConTribUtor": RoleContributor} {
		got, err := ParseRole(in)
		if err != nil || got != want {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "owner", "reader ", "admin", "Role(1)"} {
		if _, err := ParseRole(in); err == nil {
			t.Errorf("ParseRole(%q) succeeded", in)
		}
	}
	roles := []Role{RoleNone, RoleAttester, RoleReader, RoleContributor}
	for _, have := range roles {
		for _, need := range roles {
			if got, want := have.Allows(need), have >= need; got != want {
				t.Errorf("%v.Allows(%v) = %v", have, need, got)
			}
		}
		if have.Allows(Role(4)) || have.Allows(Role(-1)) || Role(9).Allows(have) {
			t.Errorf("an undeclared role allowed or was allowed by %v", have)
		}
	}
}

func TestParseAdminTokensGood(t *testing.T) {
	in := "# attestd admin tokens\n\n" +
		hashLine("ci", "contributor", testToken(1)) + "\n" +
		"  " + hashLine("dash.board_2", "READER", testToken(2)) + "   # read-only\r\n" +
		"\t\n" +
		strings.ReplaceAll(hashLine("node-7", "attester", testToken(3)), " ", "\t") // no final newline
	at, err := ParseAdminTokens(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if at.Len() != 3 {
		t.Fatalf("Len = %d", at.Len())
	}
	want := []AdminTokenEntry{{"ci", RoleContributor, 3}, {"dash.board_2", RoleReader, 4}, {"node-7", RoleAttester, 6}}
	got := at.Entries()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Entries = %v, want %v", got, want)
	}
	if !at.Has("ci") || at.Has("CI") || at.Has("") {
		t.Error("Has")
	}
	a, err := New(Config{AdminTokens: at})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		p, err := a.Authenticate(context.Background(), "Bearer "+testToken(i+1))
		if err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
		if *p != (Principal{Name: "token:" + w.Name, Role: w.Role, Method: MethodAdminToken}) {
			t.Errorf("token %d: %+v", i+1, *p)
		}
	}

	empty, err := ParseAdminTokens(strings.NewReader("# nothing yet\n"))
	if err != nil || empty.Len() != 0 {
		t.Fatalf("comment-only file: %v, %d entries", err, empty.Len())
	}
}

func TestParseAdminTokensBad(t *testing.T) {
	good := hashLine("ok", "reader", testToken(1))
	h := sha256.Sum256([]byte("x"))
	hx := hex.EncodeToString(h[:])
	for _, tc := range []struct {
		name, in, want string
	}{
		{"two fields", good + "\nci reader\n", "line 2: want 3 fields"},
		{"four fields", "# c\nci reader sha256:" + hx + " extra\n", "line 2: want 3 fields"},
		{"bad name char", "c/i reader sha256:" + hx, "line 1: name"},
		{"name too long", strings.Repeat("a", 65) + " reader sha256:" + hx, "line 1: name must be 1 to 64"},
		{"unknown role", "ci admin sha256:" + hx, "line 1: role"},
		{"role none", "ci none sha256:" + hx, "line 1: role"},
		{"no prefix", "ci reader " + hx, `line 1: the hash must start with "sha256:"`},
		{"sha1", "ci reader sha1:" + hx[:40], `line 1: the hash must start`},
		{"uppercase hex", "ci reader sha256:" + strings.ToUpper(hx), "line 1: the hash must be 64 lowercase hex"},
		{"short hex", "ci reader sha256:" + hx[:62], "line 1: the hash must be 64"},
		{"non-hex", "ci reader sha256:" + hx[:63] + "g", "line 1: the hash must be 64"},
		{"raw token instead of hash", "ci reader sha256:" + testToken(1), "line 1: the hash must be 64"},
		{"duplicate name", good + "\n\n" + hashLine("ok", "contributor", testToken(2)), `line 3: name "ok" already used on line 1`},
		{"duplicate hash", good + "\n" + hashLine("other", "contributor", testToken(1)), "line 2: same token hash as line 1"},
		{"long line", good + "\n#" + strings.Repeat("x", 2000), "line 2: longer than"},
		{"NUL", "ci\x00 reader sha256:" + hx, "line 1: name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAdminTokens(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	big := strings.Repeat("# padding padding padding padding padding padding\n", 30000)
	if _, err := ParseAdminTokens(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized file: %v", err)
	}
	if _, err := ParseAdminTokens(iotestErrReader{}); err == nil || !errors.Is(err, errRead) {
		t.Fatalf("read error: %v", err)
	}
}

var errRead = errors.New("disk on fire")

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errRead }

// TestAdminTokenMatching covers the constant-time lookup: every entry of a
// large file is found wherever it sits, an unknown token matches none, and
// a reader's token cannot do a contributor's work.
func TestAdminTokenMatching(t *testing.T) {
	var sb strings.Builder
	const n = 1000
	roles := []string{"attester", "reader", "contributor"}
	for i := range n {
		sb.WriteString(hashLine(fmt.Sprintf("t%d", i), roles[i%3], testToken(i)) + "\n")
	}
	at, err := ParseAdminTokens(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{AdminTokens: at})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, i := range []int{0, 1, 2, 499, 500, 997, 998, 999} {
		p, err := a.Authenticate(ctx, "Bearer "+testToken(i))
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if p.Name != fmt.Sprintf("token:t%d", i) || p.Role.String() != roles[i%3] {
			t.Fatalf("entry %d: %+v", i, p)
		}
	}
	for _, tok := range []string{testToken(n), testToken(1) + "A", AdminTokenPrefix, AdminTokenPrefix + "x"} {
		_, err := a.Authenticate(ctx, "Bearer "+tok)
		wantReason(t, err, ReasonInvalidToken, 401)
	}
	// entry 1 is a reader.
	if _, err := a.Authorize(ctx, "Bearer "+testToken(1), RoleReader); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authorize(ctx, "Bearer "+testToken(1), RoleAttester); err != nil {
		t.Fatal(err)
	}
	_, err = a.Authorize(ctx, "Bearer "+testToken(1), RoleContributor)
	wantReason(t, err, ReasonInsufficientRole, 403)
	// entry 0 is an attester.
	_, err = a.Authorize(ctx, "Bearer "+testToken(0), RoleReader)
	wantReason(t, err, ReasonInsufficientRole, 403)
	if _, err := a.Authorize(ctx, "Bearer "+testToken(2), RoleContributor); err != nil {
		t.Fatal(err)
	}
}

func TestAuthorizationHeader(t *testing.T) {
	at, err := ParseAdminTokens(strings.NewReader(hashLine("ci", "contributor", testToken(1))))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{AdminTokens: at})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, h := range []string{"Bearer " + testToken(1), "bearer " + testToken(1), "BEARER   " + testToken(1) + " "} {
		if _, err := a.Authenticate(ctx, h); err != nil {
			t.Errorf("%q: %v", h, err)
		}
	}
	for _, tc := range []struct{ h, reason string }{
		{"", ReasonMissingToken},
		{"   ", ReasonMissingToken},
		{"Basic dXNlcjpwYXNz", ReasonMalformedToken},
		{"Bearer", ReasonMalformedToken},
		{"Bearer ", ReasonMalformedToken},
		{"Bearertoken", ReasonMalformedToken},
		{testToken(1), ReasonMalformedToken},
		{"Bearer " + testToken(1) + " extra", ReasonMalformedToken},
		{"Bearer " + testToken(1) + "\x00", ReasonMalformedToken},
		{"Bearer ==", ReasonMalformedToken},
		{"Bearer a=b", ReasonMalformedToken},
		{"Bearer opaque-value", ReasonMalformedToken},
		{"Bearer a.b.c", ReasonInvalidToken}, // a JWT, and OIDC is off
		{"Bearer " + strings.Repeat("a", MaxAuthorizationLength), ReasonMalformedToken},
	} {
		_, err := a.Authenticate(ctx, tc.h)
		wantReason(t, err, tc.reason, 401)
	}

	// No source at all: nothing is accepted.
	none, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if none.Enabled() {
		t.Error("Enabled with no source")
	}
	_, err = none.Authenticate(ctx, "Bearer "+testToken(1))
	wantReason(t, err, ReasonInvalidToken, 401)
	_, err = none.Authorize(ctx, "", RoleAttester)
	wantReason(t, err, ReasonMissingToken, 401)
	if !a.Enabled() {
		t.Error("not Enabled with admin tokens")
	}
}

func TestLoadAdminTokensPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := t.TempDir()
	content := []byte(hashLine("ci", "contributor", testToken(1)) + "\n")
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o640, 0o644} {
		at, err := LoadAdminTokens(write(fmt.Sprintf("ok-%o", mode), mode))
		if err != nil {
			t.Fatalf("mode %o: %v", mode, err)
		}
		if at.Len() != 1 {
			t.Fatalf("mode %o: %d entries", mode, at.Len())
		}
		var logs bytes.Buffer
		if _, err := New(Config{AdminTokens: at, Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(logs.String(), "world-readable")
		if want := mode&0o004 != 0; warned != want {
			t.Errorf("mode %o: world-readable warning %v, want %v (%s)", mode, warned, want, logs.String())
		}
	}
	for _, mode := range []os.FileMode{0o620, 0o602, 0o666, 0o660, 0o606} {
		_, err := LoadAdminTokens(write(fmt.Sprintf("bad-%o", mode), mode))
		if err == nil || !strings.Contains(err.Error(), "must not be writable by group or others") {
			t.Errorf("mode %o: %v", mode, err)
		}
	}
	if _, err := LoadAdminTokens(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := LoadAdminTokens(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad-line")
	if err := os.WriteFile(bad, []byte("# ok\nci reader nohash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAdminTokens(bad); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad line: %v", err)
	}
}

func TestNewAdminTokenRoundTrip(t *testing.T) {
	tok, err := NewAdminToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, AdminTokenPrefix) || len(tok) != len(AdminTokenPrefix)+43 {
		t.Fatalf("token %q", tok)
	}
	tok2, err := NewAdminToken(nil)
	if err != nil || tok2 == tok {
		t.Fatalf("second token %q, %v", tok2, err)
	}
	// A fixed source gives a fixed token.
	fixed, err := NewAdminToken(bytes.NewReader(make([]byte, 32)))
	if err != nil || fixed != AdminTokenPrefix+strings.Repeat("A", 43) {
		t.Fatalf("fixed token %q, %v", fixed, err)
	}
	if _, err := NewAdminToken(bytes.NewReader(make([]byte, 31))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short random source: %v", err)
	}

	line, err := AdminTokenLine("ops", RoleContributor, tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, tok[len(AdminTokenPrefix):]) || strings.ContainsAny(line, "\n") {
		t.Fatalf("line %q holds the secret or a newline", line)
	}
	line2, err := AdminTokenLine("reader-1", RoleReader, tok2)
	if err != nil {
		t.Fatal(err)
	}
	at, err := ParseAdminTokens(strings.NewReader(line + "\n" + line2 + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{AdminTokens: at})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authorize(context.Background(), "Bearer "+tok, RoleContributor)
	if err != nil || p.Name != "token:ops" {
		t.Fatalf("%+v, %v", p, err)
	}
	p, err = a.Authorize(context.Background(), "Bearer "+tok2, RoleReader)
	if err != nil || p.Name != "token:reader-1" || p.Role != RoleReader {
		t.Fatalf("%+v, %v", p, err)
	}

	for _, tc := range []struct {
		name  string
		role  Role
		token string
	}{
		{"", RoleReader, tok},
		{"a b", RoleReader, tok},
		{"ok", RoleNone, tok},
		{"ok", Role(4), tok},
		{"ok", RoleReader, "password"},
		{"ok", RoleReader, AdminTokenPrefix + "short"},
		{"ok", RoleReader, AdminTokenPrefix + strings.Repeat("a", 42) + "."},
		{"ok", RoleReader, tok[len(AdminTokenPrefix):]},
	} {
		if _, err := AdminTokenLine(tc.name, tc.role, tc.token); err == nil {
			t.Errorf("AdminTokenLine(%q, %v, %q) succeeded", tc.name, tc.role, tc.token)
		}
	}
}

func BenchmarkAdminToken(b *testing.B) {
	var sb strings.Builder
	for i := range 100 {
		sb.WriteString(hashLine(fmt.Sprintf("t%d", i), "reader", testToken(i)) + "\n")
	}
	at, err := ParseAdminTokens(strings.NewReader(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		tok  string
	}{{"first", testToken(0)}, {"last", testToken(99)}, {"none", testToken(100)}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				at.verify(bc.tok)
			}
		})
	}
}
