package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length in bytes of a store key (AES-256).
const KeySize = 32

// sealVersionAESGCM is the first byte of everything NewAESGCMSealer seals.
// The byte lets a later format (another cipher, a key id for rotation) be
// told apart from this one without guessing.
const sealVersionAESGCM byte = 1

// gcmNonceSize and gcmTagSize are the sizes of the random nonce and the
// authentication tag in the AES-GCM format.
const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// maxKeyFileSize bounds how much of a key file is read: a key is 65 bytes
// of hex text, so anything much larger is not a key file.
const maxKeyFileSize = 4096

// Errors returned (wrapped) by Sealer.Open. They are distinct so that a
// caller can tell a truncated or foreign blob from a wrong key.
var (
	// ErrSealedTooShort means the input is shorter than the smallest
	// possible sealed value: it was truncated or is not sealed data.
	ErrSealedTooShort = errors.New("store: sealed data is too short")
	// ErrSealedVersion means the format version byte is not one this
	// binary knows.
	ErrSealedVersion = errors.New("store: sealed data has an unknown format version")
	// ErrSealedAuth means authentication failed: the key is wrong, the
	// additional data differs from what it was sealed with (the blob was
	// moved to another record), or the bytes were altered.
	ErrSealedAuth = errors.New("store: sealed data failed authentication (wrong store key, wrong record, or altered data)")
)

// Sealer encrypts and authenticates small secrets (private keys) before a
// store writes them. additionalData is authenticated but not encrypted: it
// binds a sealed value to the record it belongs to, so Open fails when the
// value is presented for another record. Implementations are safe for
// concurrent use.
type Sealer interface {
	Seal(plaintext, additionalData []byte) ([]byte, error)
	Open(sealed, additionalData []byte) ([]byte, error)
}

// SigningKeyAD returns the additional data a store seals a signing key's
// private key with. Binding tenant and KID means a sealed key copied into
// another row, or another tenant, does not open. Every backend uses this so
// that sealed rows can be moved between backends with the same store key.
// The NUL separator is unambiguous because stores reject tenants and KIDs
// that contain NUL.
func SigningKeyAD(tenant, kid string) []byte {
	ad := make([]byte, 0, len(tenant)+1+len(kid))
	ad = append(ad, tenant...)
	ad = append(ad, 0)
	ad = append(ad, kid...)
	return ad
}

type aesGCMSealer struct {
	// aead prepends a fresh random 96-bit nonce on Seal and reads it back
	// on Open (cipher.NewGCMWithRandomNonce), so no nonce is ever chosen
	// or reused by this code.
	aead cipher.AEAD
}

// NewAESGCMSealer returns a Sealer using AES-256-GCM with key, which must be
// KeySize bytes. Sealed output is: version byte (1) || 12-byte random nonce
// || ciphertext || 16-byte tag. The version byte is authenticated too (it is
// prepended to the additional data), so it cannot be changed undetected.
//
// Random 96-bit nonces are safe for far more than 2^32 seals under one key,
// and a store seals a handful of keys a year.
func NewAESGCMSealer(key []byte) (Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("store: AES-GCM sealer needs a %d-byte key, got %d bytes", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: AES-GCM sealer: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("store: AES-GCM sealer: %w", err)
	}
	return &aesGCMSealer{aead: aead}, nil
}

// gcmAD prefixes additionalData with the version byte.
func gcmAD(version byte, additionalData []byte) []byte {
	ad := make([]byte, 0, 1+len(additionalData))
	ad = append(ad, version)
	return append(ad, additionalData...)
}

func (s *aesGCMSealer) Seal(plaintext, additionalData []byte) ([]byte, error) {
	out := make([]byte, 1, 1+gcmNonceSize+len(plaintext)+gcmTagSize)
	out[0] = sealVersionAESGCM
	return s.aead.Seal(out, nil, plaintext, gcmAD(sealVersionAESGCM, additionalData)), nil
}

func (s *aesGCMSealer) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrSealedTooShort)
	}
	if sealed[0] != sealVersionAESGCM {
		return nil, fmt.Errorf("%w: version byte %d, this attestd knows %d", ErrSealedVersion, sealed[0], sealVersionAESGCM)
	}
	if minLen := 1 + gcmNonceSize + gcmTagSize; len(sealed) < minLen {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrSealedTooShort, len(sealed), minLen)
	}
	plaintext, err := s.aead.Open(nil, nil, sealed[1:], gcmAD(sealed[0], additionalData))
	if err != nil {
		// crypto/cipher's error says only "message authentication
		// failed"; ErrSealedAuth says what that means here.
		return nil, ErrSealedAuth
	}
	return plaintext, nil
}

// ParseKey parses a store key given in configuration: 64 hexadecimal
// characters, or base64 (standard or URL alphabet, padded or not) of
// exactly KeySize bytes. Surrounding white space is ignored. Error messages
// never echo the input, since it is a secret.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("store key is empty; want 64 hex characters or base64 of 32 bytes (e.g. from `openssl rand -hex 32`)")
	}
	var key []byte
	if len(s) == 2*KeySize {
		k, err := hex.DecodeString(s)
		if err != nil {
			return nil, errors.New("store key has 64 characters but is not valid hex")
		}
		key = k
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err := enc.DecodeString(s); err == nil {
				key = k
				break
			}
		}
		if key == nil {
			return nil, fmt.Errorf("store key (%d characters) is neither 64 hex characters nor valid base64", len(s))
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("store key decodes from base64 to %d bytes, want %d", len(key), KeySize)
		}
	}
	// An all-zero key is a placeholder someone forgot to replace, not a
	// key: refusing it costs a legitimate user a 2^-256 chance.
	if bytes.Equal(key, make([]byte, KeySize)) {
		return nil, errors.New("store key is all zeros; generate a real one (e.g. `openssl rand -hex 32`)")
	}
	return key, nil
}

// LoadOrCreateKeyFile returns the store key kept in the file at path. If the
// file does not exist it generates a random key and writes it there as hex
// text and a newline, with mode 0600, creating missing parent directories
// with mode 0700. An existing file must be accessible by its owner only and
// hold a key in a form ParseKey accepts.
//
// Creation is atomic: the key is written and synced in a temporary file that
// is then hard-linked to path. link(2), like O_EXCL, fails if path exists,
// so two processes starting at once end up with the same key, and a crash
// never leaves a truncated key file behind to be mistaken for the key.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	key = make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("store key file %s: generating key: %w", path, err)
	}
	created, err := createKeyFile(path, []byte(hex.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, err
	}
	if !created {
		// Another process created it first; its key is the key.
		return readKeyFile(path)
	}
	return key, nil
}

// readKeyFile reads and checks an existing key file. The error wraps
// os.ErrNotExist when there is no file.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store key file %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("store key file %s has mode %#o, so users other than its owner can access the key; fix it with: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("store key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("store key file %s is larger than %d bytes; it is not a key file", path, maxKeyFileSize)
	}
	key, err := ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("store key file %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile atomically creates path with content. It reports false,
// and no error, if path already exists.
func createKeyFile(path string, content []byte) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("store key file: creating directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return false, fmt.Errorf("store key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after the link, path keeps the file alive
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("store key file: %w", err)
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return false, fmt.Errorf("store key file: writing %s: %w", tmpName, err)
	}
	// The key must be on disk before anything is sealed with it: losing it
	// in a crash would make the database's private keys unrecoverable.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("store key file: syncing %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("store key file: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		// Some filesystems have no hard links; O_EXCL gives the same
		// exclusivity, at the cost of a window in which the file is
		// partly written.
		created, err2 := createExclusive(path, content)
		if err2 == nil || created {
			return created, err2
		}
		return false, fmt.Errorf("store key file: %w; without the hard link: %w", err, err2)
	}
	syncDir(dir)
	return true, nil
}

// createExclusive writes content to path with O_EXCL. It reports false, and
// no error, if path already exists.
func createExclusive(path string, content []byte) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("store key file: %w", err)
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		// A partial key file must not survive to be read as the key.
		os.Remove(path)
		return true, fmt.Errorf("store key file: writing %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return true, nil
}

// syncDir makes a new directory entry durable. It is best effort: not every
// platform can sync a directory, and the file itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
