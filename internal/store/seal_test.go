package store

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testKey is a fixed key whose base64 forms use '+' and '/' (and so '-'
// and '_' in the URL alphabet), so the alphabets are really told apart.
func testKey() []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = byte(0xf8 + i*0x41)
	}
	return k
}

func mustSealer(t testing.TB, key []byte) Sealer {
	t.Helper()
	s, err := NewAESGCMSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := mustSealer(t, testKey())
	for _, c := range []struct {
		name      string
		plain, ad []byte
	}{
		{"empty", nil, nil},
		{"key with AD", []byte("-----PKCS8-----\x00\x01\x02"), SigningKeyAD("default", "kid-1")},
		{"large", bytes.Repeat([]byte{0xa5}, 1<<16), []byte("ad")},
	} {
		t.Run(c.name, func(t *testing.T) {
			sealed, err := s.Seal(c.plain, c.ad)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + gcmNonceSize + len(c.plain) + gcmTagSize; len(sealed) != want {
				t.Fatalf("sealed length %d, want %d", len(sealed), want)
			}
			if sealed[0] != sealVersionAESGCM {
				t.Fatalf("version byte %d", sealed[0])
			}
			if len(c.plain) >= 16 && bytes.Contains(sealed, c.plain[:16]) {
				t.Fatal("plaintext visible in sealed output")
			}
			got, err := s.Open(sealed, c.ad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.plain) {
				t.Fatal("round trip changed the plaintext")
			}
			again, _ := s.Seal(c.plain, c.ad)
			if bytes.Equal(again, sealed) {
				t.Fatal("two seals of the same value are equal: the nonce is not random")
			}
		})
	}
}

func TestSealTamper(t *testing.T) {
	s := mustSealer(t, testKey())
	ad := SigningKeyAD("default", "k1")
	sealed, _ := s.Seal([]byte("private key"), ad)
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(sealed)
			bad[i] ^= bit
			_, err := s.Open(bad, ad)
			want := ErrSealedAuth
			if i == 0 {
				want = ErrSealedVersion
			}
			if !errors.Is(err, want) {
				t.Fatalf("byte %d bit %#x flipped: got %v, want %v", i, bit, err, want)
			}
		}
	}
	if _, err := s.Open(append(bytes.Clone(sealed), 0), ad); !errors.Is(err, ErrSealedAuth) {
		t.Errorf("byte appended: got %v", err)
	}
	for n := range len(sealed) {
		_, err := s.Open(sealed[:n], ad)
		if n < 1+gcmNonceSize+gcmTagSize && !errors.Is(err, ErrSealedTooShort) {
			t.Errorf("truncated to %d: got %v, want ErrSealedTooShort", n, err)
		}
		if err == nil {
			t.Errorf("truncated to %d: opened", n)
		}
	}
}

func TestSealWrongADOrKey(t *testing.T) {
	s := mustSealer(t, testKey())
	sealed, _ := s.Seal([]byte("private key"), SigningKeyAD("default", "k1"))
	for _, ad := range [][]byte{
		nil,
		SigningKeyAD("default", "k2"),
		SigningKeyAD("other", "k1"),
		SigningKeyAD("default", "k1\x00"),
		[]byte("default" + "k1"),
	} {
		if _, err := s.Open(sealed, ad); !errors.Is(err, ErrSealedAuth) {
			t.Errorf("AD %q: got %v, want ErrSealedAuth", ad, err)
		}
	}
	otherKey := testKey()
	otherKey[31] ^= 1
	_, err := mustSealer(t, otherKey).Open(sealed, SigningKeyAD("default", "k1"))
	if !errors.Is(err, ErrSealedAuth) || !strings.Contains(err.Error(), "wrong store key") {
		t.Errorf("wrong key: got %v, want ErrSealedAuth saying so", err)
	}
}

func TestSealVersionAndShort(t *testing.T) {
	s := mustSealer(t, testKey())
	sealed, _ := s.Seal([]byte("x"), nil)
	for _, v := range []byte{0, 2, 0xff} {
		bad := bytes.Clone(sealed)
		bad[0] = v
		if _, err := s.Open(bad, nil); !errors.Is(err, ErrSealedVersion) {
			t.Errorf("version %d: got %v", v, err)
		}
	}
	if _, err := s.Open(nil, nil); !errors.Is(err, ErrSealedTooShort) {
		t.Errorf("empty: got %v", err)
	}
	if _, err := s.Open([]byte{1, 2, 3}, nil); !errors.Is(err, ErrSealedTooShort) {
		t.Errorf("3 bytes: got %v", err)
	}
}

func TestNewAESGCMSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewAESGCMSealer(make([]byte, n)); err == nil {
			t.Errorf("%d-byte key accepted", n)
		}
	}
}

func TestSigningKeyAD(t *testing.T) {
	if got := string(SigningKeyAD("default", "abc")); got != "default\x00abc" {
		t.Fatalf("SigningKeyAD = %q", got)
	}
}

func TestParseKey(t *testing.T) {
	key := testKey()
	hexKey := hex.EncodeToString(key)
	forms := map[string]string{
		"hex":                hexKey,
		"HEX":                strings.ToUpper(hexKey),
		"hex with newline":   hexKey + "\n",
		"hex with spaces":    "  " + hexKey + "\t",
		"base64 std":         base64.StdEncoding.EncodeToString(key),
		"base64 std raw":     base64.RawStdEncoding.EncodeToString(key),
		"base64 url":         base64.URLEncoding.EncodeToString(key),
		"base64 url raw":     base64.RawURLEncoding.EncodeToString(key),
		"base64 with spaces": " " + base64.StdEncoding.EncodeToString(key) + "\n",
	}
	if std, url := forms["base64 std raw"], forms["base64 url raw"]; std == url || !strings.ContainsAny(std, "+/") {
		t.Fatal("the test key does not exercise both base64 alphabets")
	}
	for name, s := range forms {
		got, err := ParseKey(s)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, key) {
			t.Errorf("%s: wrong key", name)
		}
	}

	secretish := hexKey[:63] + "g"
	bad := map[string]string{
		"empty":          "",
		"blank":          " \n",
		"63 hex":         hexKey[:63],
		"65 hex":         hexKey + "a",
		"64 not hex":     secretish,
		"base64 31":      base64.StdEncoding.EncodeToString(key[:31]),
		"base64 33":      base64.StdEncoding.EncodeToString(append(bytes.Clone(key), 1)),
		"base64 16":      base64.RawURLEncoding.EncodeToString(key[:16]),
		"mixed alphabet": "+" + base64.RawURLEncoding.EncodeToString(key)[1:42] + "_",
		"garbage":        "correct horse battery staple",
		"zeros hex":      strings.Repeat("0", 64),
		"zeros base64":   base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
	for name, s := range bad {
		_, err := ParseKey(s)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if len(strings.TrimSpace(s)) > 8 && strings.Contains(err.Error(), strings.TrimSpace(s)) {
			t.Errorf("%s: the error echoes the key: %v", name, err)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "dir")
	path := filepath.Join(dir, "store.key")
	key, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != KeySize || bytes.Equal(key, make([]byte, KeySize)) {
		t.Fatalf("generated key %x", key)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode())
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if fi, err := os.Stat(d); err != nil || fi.Mode() != os.ModeDir|0o700 {
			t.Errorf("directory %s: %v, %v; want drwx------", d, fi.Mode(), err)
		}
	}
	data, _ := os.ReadFile(path)
	if string(data) != hex.EncodeToString(key)+"\n" {
		t.Errorf("key file holds %q, want the key in hex and a newline", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file", len(entries))
	}

	again, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, key) {
		t.Fatal("re-reading the key file gave another key")
	}

	// Any accepted form may be written by hand.
	b64 := base64.StdEncoding.EncodeToString(testKey())
	os.WriteFile(path, []byte(b64), 0o600)
	if got, err := LoadOrCreateKeyFile(path); err != nil || !bytes.Equal(got, testKey()) {
		t.Fatalf("hand-written base64 key: %v", err)
	}
}

func TestLoadOrCreateKeyFileRefusesLoosePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.key")
	if _, err := LoadOrCreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKeyFile(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %v: got %v, want an error naming the chmod fix", mode, err)
		}
	}
	t.Log(func() error { _, err := LoadOrCreateKeyFile(path); return err }())
	os.Chmod(path, 0o400) // read-only for the owner is fine
	if _, err := LoadOrCreateKeyFile(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestLoadOrCreateKeyFileBadContent(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":     "",
		"short":     "abcd\n",
		"not a key": strings.Repeat("z", 64) + "\n",
		"too large": strings.Repeat("a", maxKeyFileSize+1),
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(path, []byte(content), 0o600)
		_, err := LoadOrCreateKeyFile(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming the file", name, err)
		}
		// The file is left alone for the operator to inspect.
		if data, _ := os.ReadFile(path); string(data) != content {
			t.Errorf("%s: the bad key file was changed", name)
		}
	}
	if _, err := LoadOrCreateKeyFile(dir); err == nil {
		t.Error("a directory was accepted as the key file")
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.key")
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKeyFile(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("callers got different keys")
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file", len(entries))
	}
}

func TestCreateExclusive(t *testing.T) {
	// The fallback for filesystems without hard links.
	path := filepath.Join(t.TempDir(), "store.key")
	created, err := createExclusive(path, []byte("first\n"))
	if err != nil || !created {
		t.Fatalf("first create: %v, %v", created, err)
	}
	created, err = createExclusive(path, []byte("second\n"))
	if err != nil || created {
		t.Fatalf("second create: %v, %v; want false, nil", created, err)
	}
	if data, _ := os.ReadFile(path); string(data) != "first\n" {
		t.Fatalf("file holds %q", data)
	}
	if fi, _ := os.Stat(path); fi.Mode() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// golden returns values sealed under testKey by this format's first
// release. They must keep opening: data on disk outlives the binary that
// wrote it.
func golden(t testing.TB) []struct{ sealed, plain, ad []byte } {
	t.Helper()
	mustHex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []struct{ sealed, plain, ad []byte }{
		{mustHex("01eca6d65eb2761f8a4e6e1cf9e25699bf869f51951a1c96daedb74ec1"), nil, nil},
		{mustHex("016eeaa4a99788f6c3b8f08f89d62a605ebd7f44e24ba8266b4b9edc29312c3b72dc99a5174bd6ca"), []byte("private key"), SigningKeyAD("default", "k1")},
		{mustHex("01600727c4ce1fb7790c5c9db575ada4cdc4abcd32e1b782bdd97c461d74ea9ba7f65f1fdc8bea51d16a76d8036fcf876a4b5d2ba0d400326d18e5e0664af62bf3bd765d9ff1832f38053249261bf35bc1d97eecd754789e05b636f9d5167f230481a0f954a7c94a63ddb69098b6b2bedcf207660510de3eb990fadfd02b1eebc7"), make([]byte, 100), []byte("attestd/key_check")},
	}
}

func TestSealGolden(t *testing.T) {
	s := mustSealer(t, testKey())
	for i, g := range golden(t) {
		plain, err := s.Open(g.sealed, g.ad)
		if err != nil {
			t.Errorf("golden %d: %v", i, err)
		} else if !bytes.Equal(plain, g.plain) {
			t.Errorf("golden %d: opened to %q", i, plain)
		}
	}
}

// FuzzAESGCMOpen feeds arbitrary bytes to Open. It must never panic, must
// fail with one of the documented errors, and must open nothing but the
// golden values: anything else opening would be a forgery. (The genuine
// values are fixed rather than sealed here because Seal is randomised and
// the fuzzing workers are separate processes.)
func FuzzAESGCMOpen(f *testing.F) {
	s := mustSealer(f, testKey())
	genuine := map[string][]byte{} // sealed -> AD
	for _, g := range golden(f) {
		genuine[string(g.sealed)] = g.ad
		f.Add(g.sealed, g.ad)
		flipped := bytes.Clone(g.sealed)
		flipped[len(flipped)-1] ^= 1
		f.Add(flipped, g.ad)
		f.Add(g.sealed[:len(g.sealed)-1], g.ad)
		f.Add(g.sealed, append(bytes.Clone(g.ad), 0))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte{})
	f.Add([]byte{2, 0, 0, 0}, []byte("x"))
	f.Add(bytes.Repeat([]byte{1}, 1+gcmNonceSize+gcmTagSize), []byte{})
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		plain, err := s.Open(sealed, ad)
		if err != nil {
			if plain != nil {
				t.Fatal("Open returned data with an error")
			}
			if !errors.Is(err, ErrSealedTooShort) && !errors.Is(err, ErrSealedVersion) && !errors.Is(err, ErrSealedAuth) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		wantAD, ok := genuine[string(sealed)]
		if !ok || !bytes.Equal(ad, wantAD) {
			t.Fatalf("Open accepted input it did not seal: %x (AD %q)", sealed, ad)
		}
	})
}
