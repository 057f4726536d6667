package kv

import "testing"

// BenchmarkClientPeaksScan: the cron's scan of 10,000 clients' buffers.
// "map-locked" is the scan as it was, every client under the server's
// lock; "scan" is biggestBuffers, whose lock is held only for a chunk's
// copy, "chunk-copy".
func BenchmarkClientPeaksScan(b *testing.B) {
	s := &Server{clients: make(map[int64]*Client)} // the client list only
	for i := range 10000 {
		c := &Client{srv: s, id: int64(i)}
		c.shared.qbufSize.Store(int64(i))
		c.listIdx = len(s.clientList)
		s.clients[c.id] = c
		s.clientList = append(s.clientList, c)
	}
	b.Run("map-locked", func(b *testing.B) {
		for range b.N {
			var in, out int64
			s.mu.Lock()
			for _, c := range s.clients {
				in = max(in, c.shared.qbufSize.Load())
				out = max(out, c.shared.omem.Load())
			}
			s.mu.Unlock()
		}
	})
	b.Run("scan", func(b *testing.B) {
		for range b.N {
			s.biggestBuffers()
		}
	})
	b.Run("chunk-copy", func(b *testing.B) {
		var buf [peakScanChunk]*Client
		for range b.N {
			s.mu.Lock()
			copy(buf[:], s.clientList[:peakScanChunk])
			s.mu.Unlock()
		}
	})
}
