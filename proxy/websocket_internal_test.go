package proxy

import (
	"encoding/binary"
	"testing"
)

// wsFrame builds a frame header for a payload of n bytes, then the payload.
func wsFrame(opcode byte, n int, masked bool) []byte {
	b := []byte{0x80 | opcode, 0}
	switch {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b[1] |= 0x80
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

// TestFrameScanBoundaries: fed in pieces of any size, frameScan is at a
// boundary exactly where a frame ends, for each length encoding, masked or
// not, and notes a close frame.
func TestFrameScanBoundaries(t *testing.T) {
	var stream []byte
	ends := map[int]bool{0: true}
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		for _, masked := range []bool{false, true} {
			stream = append(stream, wsFrame(0x2, n, masked)...)
			ends[len(stream)] = true
		}
	}
	closeStart := len(stream)
	stream = append(stream, wsFrame(0x8, 2, true)...)
	ends[len(stream)] = true
	for _, piece := range []int{1, 3, 7, 1000, len(stream)} {
		var f frameScan
		for off := 0; off < len(stream); {
			n := min(piece, len(stream)-off)
			f.scan(stream[off : off+n])
			off += n
			if f.closed && off <= closeStart {
				t.Fatalf("pieces of %d: closed before the close frame, at %d", piece, off)
			}
			if got := f.atBoundary(); got != ends[off] && (piece == 1 || got) {
				// With pieces over 1 byte a piece may end inside a frame;
				// it must never look like a boundary there.
				t.Fatalf("pieces of %d: at %d boundary %v, want %v", piece, off, got, ends[off])
			}
		}
		if !f.atBoundary() || !f.closed {
			t.Fatalf("pieces of %d: at the end boundary %v, closed %v; want both", piece, f.atBoundary(), f.closed)
		}
	}
}
