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
	return s.transform(data, func(v any) (any, error) {
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
	})
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
