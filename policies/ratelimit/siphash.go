package ratelimit

import (
	"encoding/binary"
	"math/bits"
)

// sipKey is a 128-bit SipHash key.
type sipKey struct{ k0, k1 uint64 }

// sip128 is SipHash-2-4 with a 128-bit output (Aumasson and Bernstein): a
// keyed digest made for short inputs. The shared store names a client by
// it, so that identifiers (API keys among them) never reach Redis in clear
// and every replica, knowing the key, names a client alike. It does not
// allocate.
func sip128(k sipKey, p []byte) bucketKey {
	v0 := k.k0 ^ 0x736f6d6570736575
	v1 := k.k1 ^ 0x646f72616e646f6d ^ 0xee
	v2 := k.k0 ^ 0x6c7967656e657261
	v3 := k.k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(p)
	for len(p) >= 8 {
		m := binary.LittleEndian.Uint64(p)
		v3 ^= m
		round()
		round()
		v0 ^= m
		p = p[8:]
	}
	last := uint64(n) << 56
	for i, c := range p {
		last |= uint64(c) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xee
	for range 4 {
		round()
	}
	a := v0 ^ v1 ^ v2 ^ v3
	v1 ^= 0xdd
	for range 4 {
		round()
	}
	return bucketKey{a, v0 ^ v1 ^ v2 ^ v3}
}
