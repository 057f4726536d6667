package keyspace

import "bytes"

// crc16tab is the CRC16-CCITT (XMODEM) table Redis Cluster uses for slots.
var crc16tab = func() (t [256]uint16) {
	for i := 0; i < 256; i++ {
		crc := uint16(i) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return
}()

// crc16tabs[k][v] is the CRC of byte v followed by k zero bytes, for
// crc16's eight bytes at a time ("slicing by 8"): crc16tabs[0] is crc16tab.
var crc16tabs = func() (t [8][256]uint16) {
	t[0] = crc16tab
	for k := 1; k < 8; k++ {
		for v := 0; v < 256; v++ {
			p := t[k-1][v]
			t[k][v] = p<<8 ^ crc16tab[p>>8]
		}
	}
	return
}()

// crc16 runs on every key of every command (shard and slot), several
// times: it takes eight bytes per step, whose table lookups do not wait
// for one another, where the byte-by-byte loop waits for each.
func crc16(b []byte) uint16 {
	var crc uint16
	for len(b) >= 8 {
		x := crc ^ uint16(b[0])<<8 ^ uint16(b[1])
		crc = crc16tabs[7][x>>8] ^ crc16tabs[6][x&0xff] ^ crc16tabs[5][b[2]] ^ crc16tabs[4][b[3]] ^
			crc16tabs[3][b[4]] ^ crc16tabs[2][b[5]] ^ crc16tabs[1][b[6]] ^ crc16tabs[0][b[7]]
		b = b[8:]
	}
	for _, c := range b {
		crc = crc<<8 ^ crc16tab[byte(crc>>8)^c]
	}
	return crc
}

// KeySlot returns the Redis Cluster hash slot of a key: CRC16 of the key, or
// of the part between the first '{' and the next '}' when that is not empty,
// modulo 16384.
func KeySlot(key []byte) uint16 {
	// IndexByte scans a word or more at a time: the search for '{' cost
	// half as much as the CRC of a 16-byte key byte by byte
	if i := bytes.IndexByte(key, '{'); i >= 0 {
		if j := bytes.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) & (NumSlots - 1)
}
