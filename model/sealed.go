package model

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// KeyFile is the file name, inside the state directory, of the key that
// seals protected settings in the state file.
const KeyFile = "state.key"

// Protected settings of extensions (CustomScript commands, secrets), admin
// passwords and custom data are sealed in the state file: the value of
// every such key (see sealedKeys) is replaced by
// {"vmssSealed": base64(nonce | AES-256-GCM ciphertext)}, with a key kept in
// KeyFile (0600, like the state file, in the 0700 state directory). The
// state file alone (a backup, a copy attached to a bug report, a grep of the
// disk) then does not disclose them; they are in clear only in the
// daemon's memory and, when an extension runs, on the pipe to its shell.
// They stay in the one state file (rather than a file of their own) so a
// change is still persisted atomically with the rest of the model.
const sealedKey = "vmssSealed"

// sealedKeys are the write-only values sealed wherever they appear as a
// JSON key (models, deployments' templates and parameters): extensions'
// protected settings, and with them the admin password and custom data,
// which Azure never returns either.
var sealedKeys = []string{"protectedSettings", "adminPassword", "customData"}

func hasSealedKey(data []byte) bool {
	for _, k := range sealedKeys {
		if bytes.Contains(data, []byte(`"`+k+`"`)) {
			return true
		}
	}
	return false
}

// sealer seals and unseals protected settings in a marshalled state.
type sealer struct {
	aead cipher.AEAD
}

// loadSealer reads the key in dir, making one when there is none and
// create is set. With no key and create unset it returns nil.
func loadSealer(dir string, create bool) (*sealer, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := writeAtomic(path, key); err != nil {
			return nil, fmt.Errorf("write the state key %s: %w", path, err)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the state key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("state key %s has %d bytes, want 32: restore it from a backup", path, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal returns data with the value of every key of sealedKeys sealed.
func (s *sealer) seal(data []byte) ([]byte, error) {
	if !hasSealedKey(data) {
		return data, nil
	}
	return s.transformWhere(data, s.sealValue)
}

// sealValue seals one value (null stays null).
func (s *sealer) sealValue(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	clear, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	box := s.aead.Seal(nonce, nonce, clear, []byte(sealedKey))
	return map[string]any{sealedKey: base64.StdEncoding.EncodeToString(box)}, nil
}

// unseal is the inverse of seal.
func (s *sealer) unseal(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte(`"`+sealedKey+`"`)) {
		return data, nil
	}
	return s.transform(data, func(v any) (any, error) {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v, nil // not sealed (written before sealing existed)
		}
		b64, ok := m[sealedKey].(string)
		if !ok {
			return v, nil
		}
		box, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(box) < s.aead.NonceSize() {
			return nil, errors.New("a sealed value is damaged")
		}
		clear, err := s.aead.Open(nil, box[:s.aead.NonceSize()], box[s.aead.NonceSize():], []byte(sealedKey))
		if err != nil {
			return nil, fmt.Errorf("unseal a protected value (is %s the key this state was written with?): %w", KeyFile, err)
		}
		var out any
		d := json.NewDecoder(bytes.NewReader(clear))
		d.UseNumber()
		return out, d.Decode(&out)
	})
}

// transformWhere is transform for a compact document (json.Marshal's):
// one pass over its bytes finds the values of the keys of sealedKeys, and
// only those are decoded, changed and put back in place; the rest (in a
// state, every instance) is copied as it is, so sealing the state after a
// change costs little more than the few values it seals.
func (s *sealer) transformWhere(data []byte, f func(any) (any, error)) ([]byte, error) {
	if !hasSealedKey(data) {
		return data, nil
	}
	var out []byte
	copied := 0 // data[:copied] is in out
	for i := 0; i < len(data); {
		if data[i] != '"' {
			i++
			continue
		}
		end, err := stringEnd(data, i)
		if err != nil {
			return nil, err
		}
		j := skipSpace(data, end)
		if j >= len(data) || data[j] != ':' { // a string value
			i = end
			continue
		}
		sealed := false
		if raw := data[i+1 : end-1]; bytes.IndexByte(raw, '\\') < 0 {
			for _, k := range sealedKeys {
				sealed = sealed || string(raw) == k // (compares without a copy)
			}
		} else { // escapes: decode
			var key string
			if err := json.Unmarshal(data[i:end], &key); err != nil {
				return nil, err
			}
			sealed = slices.Contains(sealedKeys, key)
		}
		v0 := skipSpace(data, j+1)
		if !sealed {
			i = v0
			continue
		}
		v1, err := valueEnd(data, v0)
		if err != nil {
			return nil, err
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(data[v0:v1]))
		d.UseNumber() // numbers keep their exact text
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		nv, err := f(v)
		if err != nil {
			return nil, err
		}
		enc, err := json.Marshal(nv)
		if err != nil {
			return nil, err
		}
		out = append(append(out, data[copied:v0]...), enc...)
		copied, i = v1, v1
	}
	if out == nil {
		return data, nil
	}
	return append(out, data[copied:]...), nil
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

var errBadJSON = errors.New("malformed JSON")

// stringEnd returns the index just past the JSON string that starts at i.
func stringEnd(data []byte, i int) (int, error) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errBadJSON
}

// valueEnd returns the index just past the JSON value that starts at i.
func valueEnd(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errBadJSON
	}
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				e, err := stringEnd(data, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errBadJSON
	}
	j := i
	for j < len(data) && data[j] != ',' && data[j] != '}' && data[j] != ']' {
		j++
	}
	return j, nil
}

// transform applies f to the value of every key of sealedKeys in the JSON
// document data.
func (s *sealer) transform(data []byte, f func(any) (any, error)) ([]byte, error) {
	var doc any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // numbers keep their exact text
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if slices.Contains(sealedKeys, k) {
					nv, err := f(c)
					if err != nil {
						return err
					}
					x[k] = nv
					continue
				}
				if err := walk(c); err != nil {
					return err
				}
			}
		case []any:
			for _, c := range x {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(doc); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// unsealState unseals data read from the state file in dir.
func unsealState(dir string, data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte(`"`+sealedKey+`"`)) {
		return data, nil
	}
	s, err := loadSealer(dir, false)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("the state file has sealed protected settings but the key %s is missing: restore it from a backup",
			filepath.Join(dir, KeyFile))
	}
	return s.unseal(data)
}
