package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// AdminTokenPrefix starts every admin token, so that a token found in a log
// or a repository is recognisable, and so that Authenticate knows where to
// check it.
const AdminTokenPrefix = "attestd_"

// adminTokenSecretLen is the number of random bytes in a token NewAdminToken
// makes; AdminTokenLine refuses tokens with fewer characters after the
// prefix than their base64url encoding has.
const (
	adminTokenSecretLen = 32
	adminTokenMinChars  = (adminTokenSecretLen*8 + 5) / 6 // 43
	adminTokenMaxChars  = 512
)

// Limits of the admin token file.
const (
	maxAdminTokenFileSize = 1 << 20
	maxAdminTokenLine     = 1024
	maxAdminTokenNameLen  = 64
)

// AdminTokens is a parsed admin token file. It is immutable and safe for
// concurrent use.
type AdminTokens struct {
	entries       []adminToken
	path          string // for log messages; "" when parsed from a reader
	worldReadable bool
}

type adminToken struct {
	name string
	role Role
	hash [sha256.Size]byte
	line int
}

// AdminTokenEntry describes an entry of the file, without its hash.
type AdminTokenEntry struct {
	Name string
	Role Role
	Line int // 1-based line number in the file
}

// Len returns the number of tokens.
func (t *AdminTokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Entries lists the tokens' names and roles, in file order, for logs.
func (t *AdminTokens) Entries() []AdminTokenEntry {
	if t == nil {
		return nil
	}
	out := make([]AdminTokenEntry, len(t.entries))
	for i, e := range t.entries {
		out[i] = AdminTokenEntry{Name: e.name, Role: e.role, Line: e.line}
	}
	return out
}

// Has reports whether the file has an entry named name.
func (t *AdminTokens) Has(name string) bool {
	if t == nil {
		return false
	}
	for _, e := range t.entries {
		if e.name == name {
			return true
		}
	}
	return false
}

// LoadAdminTokens reads an admin token file. It refuses a file that is not
// a regular file, or that its group or others may write (on Unix): whoever
// can write it can make themselves a contributor. A world-readable file is
// accepted, since it holds only hashes; New logs a warning for it.
func LoadAdminTokens(path string) (*AdminTokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: admin token file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so that what is checked is what
	// is read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: admin token file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("auth: admin token file %s is not a regular file", path)
	}
	worldReadable := false
	if runtime.GOOS != "windows" {
		perm := fi.Mode().Perm()
		if perm&0o022 != 0 {
			return nil, fmt.Errorf("auth: admin token file %s has mode %04o: it must not be writable by group or others (chmod 0600)", path, perm)
		}
		worldReadable = perm&0o004 != 0
	}
	t, err := ParseAdminTokens(f)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	t.path = path
	t.worldReadable = worldReadable
	return t, nil
}

// ParseAdminTokens parses the admin token format: one entry a line,
//
//	<name> <role> sha256:<64 lowercase hex digits>
//
// with fields separated by spaces or tabs. A '#' starts a comment that runs
// to the end of the line; blank lines are ignored. Names are 1 to 64 of
// [A-Za-z0-9._-] and unique; the role is attester, reader or contributor.
// An error names the offending line. An input with no entries is valid.
func ParseAdminTokens(r io.Reader) (*AdminTokens, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxAdminTokenFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: admin tokens: %w", err)
	}
	if len(data) > maxAdminTokenFileSize {
		return nil, fmt.Errorf("auth: admin tokens: larger than %d bytes", maxAdminTokenFileSize)
	}
	t := &AdminTokens{}
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		if len(line) > maxAdminTokenLine {
			return nil, fmt.Errorf("auth: admin tokens: line %d: longer than %d bytes", n, maxAdminTokenLine)
		}
		e, err := parseAdminTokenLine(line)
		if err != nil {
			return nil, fmt.Errorf("auth: admin tokens: line %d: %w", n, err)
		}
		if e == nil {
			continue
		}
		e.line = n
		if prev, dup := names[e.name]; dup {
			return nil, fmt.Errorf("auth: admin tokens: line %d: name %q already used on line %d", n, e.name, prev)
		}
		if prev, dup := hashes[e.hash]; dup {
			return nil, fmt.Errorf("auth: admin tokens: line %d: same token hash as line %d", n, prev)
		}
		names[e.name] = n
		hashes[e.hash] = n
		t.entries = append(t.entries, *e)
	}
	return t, nil
}

// parseAdminTokenLine parses one line; it returns nil, nil for a blank or
// comment line.
func parseAdminTokenLine(line []byte) (*adminToken, error) {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	fields := strings.FieldsFunc(string(line), func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
	if len(fields) == 0 {
		return nil, nil
	}
	if len(fields) != 3 {
		return nil, fmt.Errorf("want 3 fields (<name> <role> sha256:<hex>), got %d", len(fields))
	}
	name, roleName, hashField := fields[0], fields[1], fields[2]
	if err := checkTokenName(name); err != nil {
		return nil, err
	}
	role, err := ParseRole(roleName)
	if err != nil || role == RoleNone {
		return nil, fmt.Errorf("role %.40q is not attester, reader or contributor", roleName)
	}
	hexHash, ok := strings.CutPrefix(hashField, "sha256:")
	if !ok {
		return nil, fmt.Errorf("the hash must start with \"sha256:\"")
	}
	if len(hexHash) != 2*sha256.Size || strings.Trim(hexHash, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("the hash must be 64 lowercase hex digits after \"sha256:\"")
	}
	e := &adminToken{name: name, role: role}
	if _, err := hex.Decode(e.hash[:], []byte(hexHash)); err != nil {
		return nil, fmt.Errorf("the hash: %w", err)
	}
	return e, nil
}

func checkTokenName(name string) error {
	if len(name) == 0 || len(name) > maxAdminTokenNameLen {
		return fmt.Errorf("name must be 1 to %d characters, got %d", maxAdminTokenNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %.80q has a character outside [A-Za-z0-9._-]", name)
		}
	}
	return nil
}

// NewAdminToken makes a new admin token: AdminTokenPrefix followed by 32
// bytes read from random (crypto/rand.Reader when nil), base64url without
// padding. Show it to the operator once and store only AdminTokenLine's
// output.
func NewAdminToken(random io.Reader) (string, error) {
	if random == nil {
		random = rand.Reader
	}
	var b [adminTokenSecretLen]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("auth: new admin token: %w", err)
	}
	return AdminTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// AdminTokenLine returns the admin token file line (without a line ending)
// for token: name, role and the token's SHA-256. The token must look like
// one NewAdminToken makes: the prefix, then at least 43 base64url
// characters.
func AdminTokenLine(name string, role Role, token string) (string, error) {
	if err := checkTokenName(name); err != nil {
		return "", fmt.Errorf("auth: admin token: %w", err)
	}
	if role < RoleAttester || role > RoleContributor {
		return "", fmt.Errorf("auth: admin token: role %s is not attester, reader or contributor", role)
	}
	if err := checkAdminTokenShape(token); err != nil {
		return "", fmt.Errorf("auth: admin token: %w", err)
	}
	h := sha256.Sum256([]byte(token))
	return name + " " + role.String() + " sha256:" + hex.EncodeToString(h[:]), nil
}

func checkAdminTokenShape(token string) error {
	secret, ok := strings.CutPrefix(token, AdminTokenPrefix)
	if !ok {
		return fmt.Errorf("token does not start with %q", AdminTokenPrefix)
	}
	if len(secret) < adminTokenMinChars || len(secret) > adminTokenMaxChars {
		return fmt.Errorf("token has %d characters after the prefix, want %d to %d", len(secret), adminTokenMinChars, adminTokenMaxChars)
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("token has a character outside base64url")
		}
	}
	return nil
}

// verify looks the token up. Its hash is compared with every entry's in
// constant time, with no early exit, so that timing tells neither whether
// nor where it matched, nor how many bytes did.
func (t *AdminTokens) verify(token string) (*Principal, *Error) {
	h := sha256.Sum256([]byte(token))
	found, idx := 0, 0
	for i := range t.entries {
		eq := subtle.ConstantTimeCompare(h[:], t.entries[i].hash[:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found != 1 {
		return nil, unauthorized(ReasonInvalidToken, "the admin token is not valid", nil)
	}
	e := &t.entries[idx]
	return &Principal{Name: "token:" + e.name, Role: e.role, Method: MethodAdminToken}, nil
}
