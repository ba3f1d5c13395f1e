package expr

import (
	"crypto/sha1"
	"encoding/hex"
	"math/bits"
	"strings"
)

// UniqueString is ARM's uniqueString(): the arguments joined with '-',
// hashed with ARM's 64-bit MurmurHash variant, and written as the first 13
// characters of the hash in base32 (a-z, 2-7), most significant bits first.
func UniqueString(parts ...string) string {
	h := murmur64([]byte(strings.Join(parts, "-")))
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var out [13]byte
	for i := range out {
		out[i] = alphabet[h>>59]
		h <<= 5
	}
	return string(out[:])
}

// murmur64 is the MurmurHash64 variant of ARM's expression engine: two
// 32-bit lanes over 8-byte blocks, seed 0.
func murmur64(data []byte) uint64 {
	const (
		c1 = 0x239b961b // 597399067
		c2 = 0xab0e9789 // 2869860233
		c3 = 0x85ebca6b
		c4 = 0xc2b2ae35
	)
	le := func(b []byte) uint32 {
		var v uint32
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint32(b[i])
		}
		return v
	}
	var h1, h2 uint32
	n := len(data)
	i := 0
	for ; i+8 <= n; i += 8 {
		k1 := le(data[i : i+4])
		k2 := le(data[i+4 : i+8])
		k1 = bits.RotateLeft32(k1*c1, 15) * c2
		h1 = bits.RotateLeft32(h1^k1, 19) + h2
		h1 = h1*5 + 0x561ccd1b
		k2 = bits.RotateLeft32(k2*c2, 17) * c1
		h2 = bits.RotateLeft32(h2^k2, 13) + h1
		h2 = h2*5 + 0x0bcaa747
	}
	if tail := data[i:]; len(tail) > 0 {
		k1 := le(tail[:min(4, len(tail))])
		h1 ^= bits.RotateLeft32(k1*c1, 15) * c2
		if len(tail) > 4 {
			k2 := le(tail[4:])
			h2 ^= bits.RotateLeft32(k2*c2, 17) * c1
		}
	}
	h1 ^= uint32(n)
	h2 ^= uint32(n)
	h1 += h2
	h2 += h1
	fmix := func(h uint32) uint32 {
		h ^= h >> 16
		h *= c3
		h ^= h >> 13
		h *= c4
		return h ^ h>>16
	}
	h1 = fmix(h1)
	h2 = fmix(h2)
	h1 += h2
	h2 += h1
	return uint64(h2)<<32 | uint64(h1)
}

// armGUIDNamespace is the name-space UUID of ARM's guid() function.
var armGUIDNamespace = [16]byte{0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd, 0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88, 0x30}

// GUID is ARM's guid(): a name-based (version 5, SHA-1) UUID of the
// arguments joined with '-', in ARM's namespace
// 11fb06fb-712d-4ddd-98c7-e71bbd588830.
func GUID(parts ...string) string {
	h := sha1.New()
	h.Write(armGUIDNamespace[:])
	h.Write([]byte(strings.Join(parts, "-")))
	sum := h.Sum(nil)
	var u [16]byte
	copy(u[:], sum)
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
