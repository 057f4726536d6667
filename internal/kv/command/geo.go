package command

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Geo commands on sorted sets whose scores are 52-bit geohashes: GEOADD,
// GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
// GEORADIUSBYMEMBER and their _RO forms. The results and their printed
// precision are Redis's (geohash.go). All are deterministic, so the
// writing ones are logged as they are.

// fmtF formats as C's "%f".
func fmtF(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	case math.IsNaN(x):
		return "nan"
	}
	return strconv.FormatFloat(x, 'f', 6, 64)
}

// humanFloat formats a coordinate as Redis's "human" long double: 17
// decimals, trailing zeros removed.
func humanFloat(x float64) []byte {
	b := strconv.AppendFloat(nil, x, 'f', 17, 64)
	if strings.IndexByte(string(b), '.') >= 0 {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
	}
	if string(b) == "-0" {
		b = []byte("0")
	}
	return b
}

func (c *Ctx) replyHumanFloat(x float64) {
	if c.W.RESP3() {
		c.W.Raw(append(append([]byte{','}, humanFloat(x)...), '\r', '\n'))
		return
	}
	c.W.Bulk(humanFloat(x))
}

func (c *Ctx) replyDistance(d float64) {
	c.W.Bulk(strconv.AppendFloat(nil, d, 'f', 4, 64))
}

// longLatArgs parses a longitude and latitude, replying the error.
func (c *Ctx) longLatArgs(a, b []byte) (long, lat float64, ok bool) {
	if long, ok = ParseFloat(a); ok {
		lat, ok = ParseFloat(b)
	}
	if !ok {
		c.W.Error(ErrNotFloat)
		return 0, 0, false
	}
	if long < geoLongMin || long > geoLongMax || lat < geoLatMin || lat > geoLatMax {
		c.W.Error("ERR invalid longitude,latitude pair " + fmtF(long) + "," + fmtF(lat))
		return 0, 0, false
	}
	return long, lat, true
}

// geoUnit returns the meters per unit, replying the error.
func (c *Ctx) geoUnit(b []byte) (float64, bool) {
	switch {
	case EqualFold(b, "m"):
		return 1, true
	case EqualFold(b, "km"):
		return 1000, true
	case EqualFold(b, "ft"):
		return 0.3048, true
	case EqualFold(b, "mi"):
		return 1609.34, true
	}
	c.W.Error("ERR unsupported unit provided. please use M, KM, FT, MI")
	return 0, false
}

// GEOADD key [NX|XX] [CH] longitude latitude member [...]: a ZADD of the
// members' geohashes.
func cmdGeoAdd(c *Ctx) {
	i, nx, xx := 2, false, false
	for ; i < len(c.Args); i++ {
		switch a := c.Args[i]; {
		case EqualFold(a, "nx"):
			nx = true
		case EqualFold(a, "xx"):
			xx = true
		case EqualFold(a, "ch"):
		default:
			goto parsed
		}
	}
parsed:
	if (len(c.Args)-i)%3 != 0 || (nx && xx) {
		c.W.Error(ErrSyntax)
		return
	}
	zargs := make([][]byte, 0, i+2*(len(c.Args)-i)/3)
	zargs = append(zargs, []byte("zadd"))
	zargs = append(zargs, c.Args[1:i]...)
	for j := i; j < len(c.Args); j += 3 {
		long, lat, ok := c.longLatArgs(c.Args[j], c.Args[j+1])
		if !ok {
			return
		}
		h, _ := geoEncode(geoLongRange, geoLatRange, long, lat, geoStepMax)
		zargs = append(zargs, strconv.AppendUint(nil, geoAlign52(h), 10), c.Args[j+2])
	}
	args := c.Args
	c.Args = zargs // ZADD does the work; the log keeps the GEOADD
	cmdZAdd(c)
	c.Args = args
}

// GEOPOS key member [member ...]
func cmdGeoPos(c *Ctx) {
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	c.W.Array(len(c.Args) - 2)
	for _, m := range c.Args[2:] {
		var score float64
		found := false
		if z != nil {
			score, found = z.Score(string(m))
		}
		long, lat, ok := geoScoreToLongLat(score)
		if !found || !ok {
			c.W.NullArray()
			continue
		}
		c.W.Array(2)
		c.replyHumanFloat(long)
		c.replyHumanFloat(lat)
	}
}

// GEODIST key member1 member2 [M|KM|FT|MI]
func cmdGeoDist(c *Ctx) {
	perUnit := 1.0
	switch {
	case len(c.Args) == 5:
		var ok bool
		if perUnit, ok = c.geoUnit(c.Args[4]); !ok {
			return
		}
	case len(c.Args) > 5:
		c.W.Error(ErrSyntax)
		return
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if z == nil {
		c.W.Null()
		return
	}
	s1, ok1 := z.Score(string(c.Args[2]))
	s2, ok2 := z.Score(string(c.Args[3]))
	if !ok1 || !ok2 {
		c.W.Null()
		return
	}
	lo1, la1, ok1 := geoScoreToLongLat(s1)
	lo2, la2, ok2 := geoScoreToLongLat(s2)
	if !ok1 || !ok2 {
		c.W.Null()
		return
	}
	c.replyDistance(geoDistance(lo1, la1, lo2, la2) / perUnit)
}

// GEOHASH key member [member ...]
func cmdGeoHash(c *Ctx) {
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	c.W.Array(len(c.Args) - 2)
	for _, m := range c.Args[2:] {
		var score float64
		found := false
		if z != nil {
			score, found = z.Score(string(m))
		}
		h, ok := geohashString(score)
		if !found || !ok {
			c.W.Null()
			continue
		}
		c.W.BulkString(h)
	}
}

// GeoRadiusKeys is the key extractor of GEORADIUS and GEORADIUSBYMEMBER:
// the source and the last STORE or STOREDIST key.
func GeoRadiusKeys(args [][]byte, dst [][]byte) [][]byte {
	if len(args) < 2 {
		return dst
	}
	dst = append(dst, args[1])
	store := -1
	for i := 5; i < len(args); i++ {
		if (EqualFold(args[i], "store") || EqualFold(args[i], "storedist")) && i+1 < len(args) {
			store = i + 1
			i++
		}
	}
	if store > 0 {
		dst = append(dst, args[store])
	}
	return dst
}

// geoPoint is a search result.
type geoPoint struct {
	member    string
	score     float64
	long, lat float64
	dist      float64
}

const (
	geoCoords  = 1 << iota // GEORADIUS: the center is given
	geoMember              // GEORADIUSBYMEMBER
	geoNoStore             // the _RO forms
	geoSearch              // GEOSEARCH and GEOSEARCHSTORE
	geoSearchStore
)

func cmdGeoRadius(c *Ctx) { c.geoRadius(1, geoCoords) }

func cmdGeoRadiusByMember(c *Ctx) { c.geoRadius(1, geoMember) }

func cmdGeoRadiusRO(c *Ctx) { c.geoRadius(1, geoCoords|geoNoStore) }

func cmdGeoRadiusByMemberRO(c *Ctx) { c.geoRadius(1, geoMember|geoNoStore) }

func cmdGeoSearch(c *Ctx) { c.geoRadius(1, geoSearch) }

func cmdGeoSearchStore(c *Ctx) { c.geoRadius(2, geoSearch|geoSearchStore) }

// geoRadius is Redis's georadiusGeneric: parse, search the 9 cells that
// cover the area, filter, sort, then reply or store.
func (c *Ctx) geoRadius(src int, flags int) {
	z, ok := c.lookupZSet(c.Args[src])
	if !ok {
		return
	}
	var shape geoShape
	var storeKey []byte
	storeDist := false
	base := 0
	memberPos := func(m []byte) bool {
		score, found := z.Score(string(m))
		if found {
			shape.long, shape.lat, found = geoScoreToLongLat(score)
		}
		if !found {
			c.W.Error("ERR could not decode requested zset member")
		}
		return found
	}
	distance := func(at int) bool {
		r, ok := ParseFloat(c.Args[at])
		if !ok {
			c.W.Error("ERR need numeric radius")
			return false
		}
		if r < 0 {
			c.W.Error("ERR radius cannot be negative")
			return false
		}
		shape.radius = r
		shape.conversion, ok = c.geoUnit(c.Args[at+1])
		return ok
	}
	switch {
	case flags&geoCoords != 0:
		base = 6
		if shape.long, shape.lat, ok = c.longLatArgs(c.Args[2], c.Args[3]); !ok || !distance(4) {
			return
		}
	case flags&geoMember != 0 && z == nil:
		base = 5 // parse the options to know which reply to give
	case flags&geoMember != 0:
		base = 5
		if !memberPos(c.Args[2]) || !distance(3) {
			return
		}
	default:
		base = 2
		if flags&geoSearchStore != 0 {
			base = 3
			storeKey = c.Args[1]
		}
	}
	var withDist, withHash, withCoord, fromMember, fromLoc, byRadius, byBox, any bool
	sortDir := 0 // 1 ascending, -1 descending
	var count int64
	rem := len(c.Args) - base
	for i := 0; i < rem; i++ {
		a := c.Args[base+i]
		search := flags&geoSearch != 0
		switch {
		case EqualFold(a, "withdist"):
			withDist = true
		case EqualFold(a, "withhash"):
			withHash = true
		case EqualFold(a, "withcoord"):
			withCoord = true
		case EqualFold(a, "any"):
			any = true
		case EqualFold(a, "asc"):
			sortDir = 1
		case EqualFold(a, "desc"):
			sortDir = -1
		case EqualFold(a, "count") && i+1 < rem:
			if count, ok = c.ArgInt(base + i + 1); !ok {
				return
			}
			if count <= 0 {
				c.W.Error("ERR COUNT must be > 0")
				return
			}
			i++
		case (EqualFold(a, "store") || EqualFold(a, "storedist")) && i+1 < rem && flags&(geoNoStore|geoSearch) == 0:
			storeKey = c.Args[base+i+1]
			storeDist = EqualFold(a, "storedist")
			i++
		case EqualFold(a, "storedist") && flags&geoSearchStore != 0:
			storeDist = true
		case EqualFold(a, "frommember") && i+1 < rem && search && !fromLoc:
			if z != nil && !memberPos(c.Args[base+i+1]) {
				return
			}
			fromMember = true
			i++
		case EqualFold(a, "fromlonlat") && i+2 < rem && search && !fromMember:
			if shape.long, shape.lat, ok = c.longLatArgs(c.Args[base+i+1], c.Args[base+i+2]); !ok {
				return
			}
			fromLoc = true
			i += 2
		case EqualFold(a, "byradius") && i+2 < rem && search && !byBox:
			if !distance(base + i + 1) {
				return
			}
			shape.box, byRadius = false, true
			i += 2
		case EqualFold(a, "bybox") && i+3 < rem && search && !byRadius:
			w, ok1 := ParseFloat(c.Args[base+i+1])
			if !ok1 {
				c.W.Error("ERR need numeric width")
				return
			}
			h, ok2 := ParseFloat(c.Args[base+i+2])
			if !ok2 {
				c.W.Error("ERR need numeric height")
				return
			}
			if h < 0 || w < 0 {
				c.W.Error("ERR height or width cannot be negative")
				return
			}
			if shape.conversion, ok = c.geoUnit(c.Args[base+i+3]); !ok {
				return
			}
			shape.box, shape.width, shape.height, byBox = true, w, h, true
			i += 3
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	if storeKey != nil && (withDist || withHash || withCoord) {
		what := "STORE option in GEORADIUS"
		if flags&geoSearchStore != 0 {
			what = "GEOSEARCHSTORE"
		}
		c.W.Error("ERR " + what + " is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
		return
	}
	if flags&geoSearch != 0 && !fromMember && !fromLoc {
		c.W.Error("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for " + string(c.Args[0]))
		return
	}
	if flags&geoSearch != 0 && !byRadius && !byBox {
		c.W.Error("ERR exactly one of BYRADIUS and BYBOX can be specified for " + string(c.Args[0]))
		return
	}
	if any && count == 0 {
		c.W.Error("ERR the ANY argument requires COUNT argument")
		return
	}
	if z == nil {
		if storeKey != nil {
			if c.Lookup(storeKey) != nil && c.KS.DeleteLocked(storeKey) {
				c.Dirty++
			}
			c.W.Int(0)
			return
		}
		c.W.Array(0)
		return
	}
	if count != 0 && sortDir == 0 && !any {
		sortDir = 1 // the closest ones
	}
	limit := int64(0)
	if any {
		limit = count
	}
	points := geoSearchPoints(z, &shape, limit)
	if len(points) == 0 && storeKey == nil {
		c.W.Array(0)
		return
	}
	returned := len(points)
	if count != 0 && int64(returned) > count {
		returned = int(count)
	}
	if sortDir != 0 {
		sort.SliceStable(points, func(i, j int) bool {
			if sortDir > 0 {
				return points[i].dist < points[j].dist
			}
			return points[i].dist > points[j].dist
		})
	}
	points = points[:returned]
	if storeKey == nil {
		opts := 0
		for _, b := range []bool{withDist, withCoord, withHash} {
			if b {
				opts++
			}
		}
		c.W.Array(len(points))
		for _, p := range points {
			if opts > 0 {
				c.W.Array(opts + 1)
			}
			c.W.BulkString(p.member)
			if withDist {
				c.replyDistance(p.dist / shape.conversion)
			}
			if withHash {
				c.W.Int(int64(p.score))
			}
			if withCoord {
				c.W.Array(2)
				c.replyHumanFloat(p.long)
				c.replyHumanFloat(p.lat)
			}
		}
		return
	}
	res := keyspace.NewZSet()
	for _, p := range points {
		score := p.score
		if storeDist {
			score = p.dist / shape.conversion
		}
		res.Add(p.member, score)
	}
	c.storeZSet(storeKey, res)
	c.W.Int(int64(len(points)))
}

// geoSearchPoints returns the members inside the shape, scanning the score
// ranges of the 9 cells that cover it in Redis's order; a limit (ANY)
// stops the scan once reached.
func geoSearchPoints(z *keyspace.ZSet, shape *geoShape, limit int64) []geoPoint {
	var points []geoPoint
	areas := shape.searchAreas()
	last := -1
	for i, h := range areas {
		if h.zero() {
			continue
		}
		// a huge radius makes neighbors repeat: skip a repeat of the last
		if last > 0 && h == areas[last] { // as Redis: never against the center
			continue
		}
		if len(points) > 0 && limit > 0 && int64(len(points)) >= limit {
			break
		}
		lo := float64(geoAlign52(h))
		h.bits++
		hi := float64(geoAlign52(h))
		r := keyspace.ScoreRange{Min: lo, Max: hi, MaxEx: true}
		for x := z.FirstInScore(&r); x.Valid() && r.LteMax(x.Score()); x = x.Next() {
			long, lat, ok := geoScoreToLongLat(x.Score())
			if ok {
				if d, in := shape.within(long, lat); in {
					points = append(points, geoPoint{member: x.Member(), score: x.Score(), long: long, lat: lat, dist: d})
				}
			}
			if len(points) > 0 && limit > 0 && int64(len(points)) >= limit {
				break
			}
		}
		last = i
	}
	return points
}
