package command

import (
	"math"
)

// Redis's geohash: longitude and latitude (within Web Mercator's
// ±85.05112878 degrees) each cut into 2^26 steps and interleaved into a
// 52-bit integer, the score of the member in its sorted set. The arithmetic
// follows Redis's geohash.c and geohash_helper.c operation for operation,
// so encodings, decoded positions and search areas are Redis's own.

const (
	geoLatMin  = -85.05112878
	geoLatMax  = 85.05112878
	geoLongMin = -180.0
	geoLongMax = 180.0
	geoStepMax = 26

	earthRadiusM = 6372797.560856
	mercatorMax  = 20037726.37
	degToRad     = float64(math.Pi) / 180.0 // M_PI/180.0 in double, as Redis
)

type geoRange struct{ min, max float64 }

var (
	geoLongRange = geoRange{geoLongMin, geoLongMax}
	geoLatRange  = geoRange{geoLatMin, geoLatMax}
)

// geoHash is a hash of step bits per coordinate.
type geoHash struct {
	bits uint64
	step uint
}

func (h geoHash) zero() bool { return h.bits == 0 && h.step == 0 }

type geoArea struct {
	hash      geoHash
	long, lat geoRange
}

func interleave64(xlo, ylo uint32) uint64 {
	b := [...]uint64{0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF}
	s := [...]uint{1, 2, 4, 8, 16}
	x, y := uint64(xlo), uint64(ylo)
	for i := 4; i >= 0; i-- {
		x = (x | x<<s[i]) & b[i]
		y = (y | y<<s[i]) & b[i]
	}
	return x | y<<1
}

func deinterleave64(v uint64) uint64 {
	b := [...]uint64{0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 0x00000000FFFFFFFF}
	s := [...]uint{0, 1, 2, 4, 8, 16}
	x, y := v, v>>1
	for i := 0; i < 6; i++ {
		x = (x | x>>s[i]) & b[i]
		y = (y | y>>s[i]) & b[i]
	}
	return x | y<<32
}

// geoEncode hashes a position within the ranges; ok is false outside them.
func geoEncode(longR, latR geoRange, long, lat float64, step uint) (geoHash, bool) {
	if long > geoLongMax || long < geoLongMin || lat > geoLatMax || lat < geoLatMin ||
		lat < latR.min || lat > latR.max || long < longR.min || long > longR.max {
		return geoHash{}, false
	}
	latOff := (lat - latR.min) / (latR.max - latR.min)
	longOff := (long - longR.min) / (longR.max - longR.min)
	latOff *= float64(uint64(1) << step)
	longOff *= float64(uint64(1) << step)
	return geoHash{bits: interleave64(uint32(latOff), uint32(longOff)), step: step}, true
}

func geoDecode(longR, latR geoRange, h geoHash) (geoArea, bool) {
	if h.zero() {
		return geoArea{}, false
	}
	sep := deinterleave64(h.bits)
	latScale, longScale := latR.max-latR.min, longR.max-longR.min
	ilat, ilong := uint32(sep), uint32(sep>>32)
	div := float64(uint64(1) << h.step)
	return geoArea{
		hash: h,
		lat:  geoRange{latR.min + (float64(ilat)*1.0/div)*latScale, latR.min + ((float64(ilat)+1)*1.0/div)*latScale},
		long: geoRange{longR.min + (float64(ilong)*1.0/div)*longScale, longR.min + ((float64(ilong)+1)*1.0/div)*longScale},
	}, true
}

// geoScoreToLongLat decodes a sorted-set score into the center of its
// cell, as GEOPOS reports it.
func geoScoreToLongLat(score float64) (long, lat float64, ok bool) {
	a, ok := geoDecode(geoLongRange, geoLatRange, geoHash{bits: uint64(score), step: geoStepMax})
	if !ok {
		return 0, 0, false
	}
	long = min(max((a.long.min+a.long.max)/2, geoLongMin), geoLongMax)
	lat = min(max((a.lat.min+a.lat.max)/2, geoLatMin), geoLatMax)
	return long, lat, true
}

// geoAlign52 left-aligns a hash to 52 bits (the score space).
func geoAlign52(h geoHash) uint64 { return h.bits << (52 - h.step*2) }

func geoMoveX(h *geoHash, d int) {
	if d == 0 {
		return
	}
	x := h.bits & 0xaaaaaaaaaaaaaaaa
	y := h.bits & 0x5555555555555555
	zz := uint64(0x5555555555555555) >> (64 - h.step*2)
	if d > 0 {
		x += zz + 1
	} else {
		x |= zz
		x -= zz + 1
	}
	x &= 0xaaaaaaaaaaaaaaaa >> (64 - h.step*2)
	h.bits = x | y
}

func geoMoveY(h *geoHash, d int) {
	if d == 0 {
		return
	}
	x := h.bits & 0xaaaaaaaaaaaaaaaa
	y := h.bits & 0x5555555555555555
	zz := uint64(0xaaaaaaaaaaaaaaaa) >> (64 - h.step*2)
	if d > 0 {
		y += zz + 1
	} else {
		y |= zz
		y -= zz + 1
	}
	y &= 0x5555555555555555 >> (64 - h.step*2)
	h.bits = x | y
}

// geoNeighbors are the 8 cells around a cell, in Redis's search order
// after the cell itself: N, S, E, W, NE, NW, SE, SW.
func geoNeighbors(h geoHash) [8]geoHash {
	moves := [8][2]int{{0, 1}, {0, -1}, {1, 0}, {-1, 0}, {1, 1}, {-1, 1}, {1, -1}, {-1, -1}}
	var n [8]geoHash
	for i, m := range moves {
		n[i] = h
		geoMoveX(&n[i], m[0])
		geoMoveY(&n[i], m[1])
	}
	return n
}

func geoEstimateSteps(rangeM, lat float64) uint {
	if rangeM == 0 {
		return 26
	}
	step := 1
	for rangeM < mercatorMax {
		rangeM *= 2
		step++
	}
	step -= 2 // make sure the range is included in most base cases
	// wider range towards the poles
	if lat > 66 || lat < -66 {
		step--
		if lat > 80 || lat < -80 {
			step--
		}
	}
	return uint(min(max(step, 1), 26))
}

// geoShape is a search area: a circle of radius, or a width by height
// box, around long, lat; conversion is meters per unit.
type geoShape struct {
	long, lat     float64
	box           bool
	radius        float64
	width, height float64
	conversion    float64
}

func geoDistance(lon1d, lat1d, lon2d, lat2d float64) float64 {
	lat1r, lon1r := lat1d*degToRad, lon1d*degToRad
	lat2r, lon2r := lat2d*degToRad, lon2d*degToRad
	u := crSin((lat2r - lat1r) / 2)
	v := crSin((lon2r - lon1r) / 2)
	return 2.0 * earthRadiusM * crAsin(math.Sqrt(u*u+crCos(lat1r)*crCos(lat2r)*v*v))
}

// within reports whether a position is in the shape and its distance from
// the center (Redis's geoAppendIfWithinShape).
func (s *geoShape) within(long, lat float64) (float64, bool) {
	if !s.box {
		d := geoDistance(s.long, s.lat, long, lat)
		return d, d <= s.radius*s.conversion
	}
	lonD := geoDistance(long, lat, s.long, lat)
	latD := geoDistance(long, lat, long, s.lat)
	if lonD > s.width*s.conversion/2 || latD > s.height*s.conversion/2 {
		return 0, false
	}
	return geoDistance(s.long, s.lat, long, lat), true
}

func (s *geoShape) boundingBox() (minLon, minLat, maxLon, maxLat float64) {
	h, w := s.radius, s.radius
	if s.box {
		h, w = s.height/2, s.width/2
	}
	h *= s.conversion
	w *= s.conversion
	latDelta := (h / earthRadiusM) / degToRad
	longDeltaTop := (w / earthRadiusM / crCos((s.lat+latDelta)*degToRad)) / degToRad
	longDeltaBottom := (w / earthRadiusM / crCos((s.lat-latDelta)*degToRad)) / degToRad
	if s.lat < 0 { // the bottom edge is the wider one in the south
		return s.long - longDeltaBottom, s.lat - latDelta, s.long + longDeltaBottom, s.lat + latDelta
	}
	return s.long - longDeltaTop, s.lat - latDelta, s.long + longDeltaTop, s.lat + latDelta
}

// searchAreas returns the cell of the center and its 8 neighbors (zero
// when they cannot hold a result) that cover the shape, as Redis's
// geohashCalculateAreasByShapeWGS84.
func (s *geoShape) searchAreas() [9]geoHash {
	minLon, minLat, maxLon, maxLat := s.boundingBox()
	radiusM := s.radius
	if s.box {
		radiusM = math.Sqrt((s.width/2)*(s.width/2) + (s.height/2)*(s.height/2))
	}
	radiusM *= s.conversion
	steps := geoEstimateSteps(radiusM, s.lat)
	hash, _ := geoEncode(geoLongRange, geoLatRange, s.long, s.lat, steps)
	nb := geoNeighbors(hash)
	area, _ := geoDecode(geoLongRange, geoLatRange, hash)
	// the step may be too coarse at the edges of the covered area
	north, _ := geoDecode(geoLongRange, geoLatRange, nb[0])
	south, _ := geoDecode(geoLongRange, geoLatRange, nb[1])
	east, _ := geoDecode(geoLongRange, geoLatRange, nb[2])
	west, _ := geoDecode(geoLongRange, geoLatRange, nb[3])
	decrease := north.lat.max < maxLat || south.lat.min > minLat || east.long.max < maxLon || west.long.min > minLon
	if steps > 1 && decrease {
		steps--
		hash, _ = geoEncode(geoLongRange, geoLatRange, s.long, s.lat, steps)
		nb = geoNeighbors(hash)
		area, _ = geoDecode(geoLongRange, geoLatRange, hash)
	}
	const (
		n, so, e, w, ne, nw, se, sw = 0, 1, 2, 3, 4, 5, 6, 7
	)
	if steps >= 2 { // drop the neighbors the area does not reach
		if area.lat.min < minLat {
			nb[so], nb[sw], nb[se] = geoHash{}, geoHash{}, geoHash{}
		}
		if area.lat.max > maxLat {
			nb[n], nb[ne], nb[nw] = geoHash{}, geoHash{}, geoHash{}
		}
		if area.long.min < minLon {
			nb[w], nb[sw], nb[nw] = geoHash{}, geoHash{}, geoHash{}
		}
		if area.long.max > maxLon {
			nb[e], nb[se], nb[ne] = geoHash{}, geoHash{}, geoHash{}
		}
	}
	var out [9]geoHash
	out[0] = hash
	copy(out[1:], nb[:])
	return out
}

// geohashString is the 11-character base32 geohash of a score, re-encoded
// with the standard latitude range ±90 (GEOHASH).
func geohashString(score float64) (string, bool) {
	long, lat, ok := geoScoreToLongLat(score)
	if !ok {
		return "", false
	}
	h, _ := geoEncode(geoRange{-180, 180}, geoRange{-90, 90}, long, lat, 26)
	const alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
	var buf [11]byte
	for i := range buf {
		idx := 0
		if i < 10 {
			idx = int(h.bits>>(52-uint((i+1)*5))) & 0x1f
		}
		buf[i] = alphabet[idx]
	}
	return string(buf[:]), true
}
