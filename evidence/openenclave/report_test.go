package openenclave

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestUnwrap(t *testing.T) {
	header := func(version, typ uint32, size uint64) []byte {
		h := make([]byte, 16)
		binary.LittleEndian.PutUint32(h[0:], version)
		binary.LittleEndian.PutUint32(h[4:], typ)
		binary.LittleEndian.PutUint64(h[8:], size)
		return h
	}
	quote := []byte("0123456789")
	got, err := Unwrap(append(append(header(1, 2, 10), quote...), "trailing"...))
	if err != nil || string(got) != string(quote) {
		t.Fatalf("got %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"short":      {[]byte{1, 2}, "shorter than"},
		"version":    {append(header(2, 2, 10), quote...), "version 2"},
		"local":      {append(header(1, 1, 10), quote...), "local report"},
		"type":       {append(header(1, 9, 10), quote...), "type 9"},
		"size":       {append(header(1, 2, 11), quote...), "announces 11"},
		"zero size":  {append(header(1, 2, 0), quote...), "announces 0"},
		"huge size":  {append(header(1, 2, 1<<62), quote...), "announces"},
		"no content": {header(1, 2, 10), "announces 10"},
	} {
		if _, err := Unwrap(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestWrapRoundTrip(t *testing.T) {
	q := []byte("an SGX quote")
	got, err := Unwrap(Wrap(q))
	if err != nil || !bytes.Equal(got, q) {
		t.Fatalf("%q %v", got, err)
	}
}

func FuzzUnwrap(f *testing.F) {
	f.Add([]byte("\x01\x00\x00\x00\x02\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00abcd"))
	f.Add([]byte{})
	f.Add([]byte("\x01\x00\x00\x00\x02\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		q, err := Unwrap(in)
		if err == nil && (len(q) == 0 || len(q) > len(in)-16) {
			t.Fatalf("accepted %d bytes from %d", len(q), len(in))
		}
	})
}
