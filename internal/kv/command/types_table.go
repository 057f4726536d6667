package command

// typeCommands are the commands of the types and options added after the
// first set (streams, bitmaps, HyperLogLog, geo, SORT, the sorted-set
// extras); DataCommands includes them. The blocking forms (XREAD,
// XREADGROUP, BZPOPMIN, BZPOPMAX, BZMPOP) are in BlockingSpecs.
func typeCommands() []Spec {
	const (
		w   = "write denyoom"
		wf  = "write denyoom fast"
		d   = "write"
		df  = "write fast"
		r   = "readonly"
		rf  = "readonly fast"
		stm = "stream"
		zs  = "sorted-set"
	)
	return []Spec{
		// streams
		{"xadd", -5, wf, 1, 1, 1, stm, cmdXAdd, nil},
		{"xrange", -4, r, 1, 1, 1, stm, cmdXRange, nil},
		{"xrevrange", -4, r, 1, 1, 1, stm, cmdXRange, nil},
		{"xlen", 2, rf, 1, 1, 1, stm, cmdXLen, nil},
		{"xdel", -3, df, 1, 1, 1, stm, cmdXDel, nil},
		{"xtrim", -4, d, 1, 1, 1, stm, cmdXTrim, nil},
		{"xsetid", -3, wf, 1, 1, 1, stm, cmdXSetID, nil},
		{"xgroup", -2, w, 2, 2, 1, stm, cmdXGroup, nil},
		{"xack", -4, df, 1, 1, 1, stm, cmdXAck, nil},
		{"xpending", -3, r, 1, 1, 1, stm, cmdXPending, nil},
		{"xclaim", -6, df, 1, 1, 1, stm, cmdXClaim, nil},
		{"xautoclaim", -6, df, 1, 1, 1, stm, cmdXAutoClaim, nil},
		{"xinfo", -2, r, 2, 2, 1, stm, cmdXInfo, nil},
		// bitmaps
		{"setbit", 4, w, 1, 1, 1, "bitmap", cmdSetBit, nil},
		{"getbit", 3, rf, 1, 1, 1, "bitmap", cmdGetBit, nil},
		{"bitcount", -2, r, 1, 1, 1, "bitmap", cmdBitCount, nil},
		{"bitpos", -3, r, 1, 1, 1, "bitmap", cmdBitPos, nil},
		{"bitop", -4, w, 2, -1, 1, "bitmap", cmdBitOp, nil},
		{"bitfield", -2, w, 1, 1, 1, "bitmap", cmdBitfield, nil},
		{"bitfield_ro", -2, rf, 1, 1, 1, "bitmap", cmdBitfield, nil},
		// HyperLogLog
		{"pfadd", -2, wf, 1, 1, 1, "hyperloglog", cmdPFAdd, nil},
		{"pfcount", -2, r, 1, -1, 1, "hyperloglog", cmdPFCount, nil},
		{"pfmerge", -2, w, 1, -1, 1, "hyperloglog", cmdPFMerge, nil},
		{"pfdebug", 3, "write denyoom admin", 2, 2, 1, "hyperloglog", cmdPFDebug, nil},
		{"pfselftest", 1, "admin", 0, 0, 0, "hyperloglog", cmdPFSelfTest, nil},
		// geo
		{"geoadd", -5, w, 1, 1, 1, "geo", cmdGeoAdd, nil},
		{"geopos", -2, r, 1, 1, 1, "geo", cmdGeoPos, nil},
		{"geodist", -4, r, 1, 1, 1, "geo", cmdGeoDist, nil},
		{"geohash", -2, r, 1, 1, 1, "geo", cmdGeoHash, nil},
		{"geosearch", -7, r, 1, 1, 1, "geo", cmdGeoSearch, nil},
		{"geosearchstore", -8, w, 1, 2, 1, "geo", cmdGeoSearchStore, nil},
		{"georadius", -6, w, 0, 0, 0, "geo", cmdGeoRadius, GeoRadiusKeys},
		{"georadiusbymember", -5, w, 0, 0, 0, "geo", cmdGeoRadiusByMember, GeoRadiusKeys},
		{"georadius_ro", -6, r, 1, 1, 1, "geo", cmdGeoRadiusRO, nil},
		{"georadiusbymember_ro", -5, r, 1, 1, 1, "geo", cmdGeoRadiusByMemberRO, nil},
		// SORT
		{"sort", -2, w, 0, 0, 0, "generic", cmdSort, SortKeys},
		{"sort_ro", -2, r, 1, 1, 1, "generic", cmdSortRO, nil},
		// sorted sets
		{"zmpop", -4, d, 0, 0, 0, zs, cmdZMPop, NumKeysAt(1)},
		{"zunion", -3, r, 0, 0, 0, zs, cmdZSetOp, NumKeysAt(1)},
		{"zinter", -3, r, 0, 0, 0, zs, cmdZSetOp, NumKeysAt(1)},
		{"zdiff", -3, r, 0, 0, 0, zs, cmdZSetOp, NumKeysAt(1)},
		{"zunionstore", -4, w, 0, 0, 0, zs, cmdZSetOp, StoreNumKeys},
		{"zinterstore", -4, w, 0, 0, 0, zs, cmdZSetOp, StoreNumKeys},
		{"zdiffstore", -4, w, 0, 0, 0, zs, cmdZSetOp, StoreNumKeys},
		{"zintercard", -3, r, 0, 0, 0, zs, cmdZInterCard, NumKeysAt(1)},
		{"zrangestore", -5, w, 1, 2, 1, zs, cmdZRangeStore, nil},
		{"zrandmember", -2, r, 1, 1, 1, zs, cmdZRandMember, nil},
		{"zlexcount", 4, rf, 1, 1, 1, zs, cmdZLexCount, nil},
		{"zremrangebylex", 4, d, 1, 1, 1, zs, cmdZRemRangeByLex, nil},
	}
}
