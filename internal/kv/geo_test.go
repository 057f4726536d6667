package kv

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestGeo(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania", "2"},
		{"GEOADD g 200 100 a", "ERR:ERR invalid longitude,latitude pair 200.000000,100.000000"},
		{"GEOADD g x 1 a", "ERR:ERR value is not a valid float"},
		{"GEOADD g NX XX 1 1 a", "ERR:ERR syntax error"},
		{"GEOADD g CH XX 13.361389 38.115556 Palermo", "0"},
		{"ZSCORE g Palermo", "3479099956230698"},
		{"GEOPOS g Palermo nope", "[[13.36138933897018433 38.11555639549629859] nil]"},
		{"GEODIST g Palermo Catania", "166274.1516"},
		{"GEODIST g Palermo Catania km", "166.2742"},
		{"GEODIST g Palermo Catania mi", "103.3182"},
		{"GEODIST g Palermo nope", "nil"},
		{"GEODIST g Palermo Catania foo", "ERR:ERR unsupported unit provided. please use M, KM, FT, MI"},
		{"GEOHASH g Palermo Catania nope", "[sqc8b49rny0 sqdtr74hyu0 nil]"},
		{"GEORADIUS g 15 37 200 km WITHDIST WITHCOORD WITHHASH ASC",
			"[[Catania 56.4413 3479447370796909 [15.08726745843887329 37.50266842333162032]] [Palermo 190.4424 3479099956230698 [13.36138933897018433 38.11555639549629859]]]"},
		{"GEORADIUS g 15 37 100 km", "[Catania]"},
		{"GEORADIUS g 15 37 -1 km", "ERR:ERR radius cannot be negative"},
		{"GEORADIUSBYMEMBER g Palermo 200 km DESC", "[Catania Palermo]"},
		{"GEORADIUSBYMEMBER g nope 200 km", "ERR:ERR could not decode requested zset member"},
		{"GEOSEARCH g FROMLONLAT 15 37 BYBOX 400 400 km ASC COUNT 1", "[Catania]"},
		{"GEOSEARCH g FROMMEMBER Palermo BYRADIUS 1 m", "[Palermo]"},
		{"GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 10 km ANY", "ERR:ERR the ANY argument requires COUNT argument"},
		{"GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 10 km COUNT 0", "ERR:ERR COUNT must be > 0"},
		{"GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 10 km BYBOX 1 1 km", "ERR:ERR syntax error"},
		{"GEOSEARCH g BYRADIUS 10 km FROMLONLAT 15 37 FROMMEMBER Palermo", "ERR:ERR syntax error"},
		{"GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 10 km", "[]"},
		{"GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST", "ERR:ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"},
		{"GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST", "2"},
		{"ZRANGE d 0 -1 WITHSCORES", "[Catania 56.441257870158204 Palermo 190.44242984775784]"}, // as redis-server 7.0
		{"GEORADIUS g 15 37 200 km STORE d", "2"},
		{"ZRANGE d 0 -1 WITHSCORES", "[Palermo 3479099956230698 Catania 3479447370796909]"},
		{"GEORADIUS g 15 37 200 km STORE d WITHDIST", "ERR:ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"},
		{"GEORADIUS_RO g 15 37 200 km STORE d", "ERR:ERR syntax error"},
		{"GEORADIUS g 15 37 1 m STORE d", "0"},
		{"EXISTS d", "0"},
		{"SET s v", "OK"},
		{"GEOADD s 1 1 m", "ERR:WRONGTYPE"},
		{"GEOSEARCH s FROMLONLAT 1 1 BYRADIUS 1 m", "ERR:WRONGTYPE"},
	})
}

// TestGeoMatchesRedis compares positions, distances, hashes and searches
// of random points (near the poles and the antimeridian too) with
// redis-server.
func TestGeoMatchesRedis(t *testing.T) {
	e, r := newDiffEnv(t)
	rnd := rand.New(rand.NewPCG(5, 6))
	var cmds []diffCmd
	add := diffCmd{"GEOADD", "g"}
	for i := 0; i < 400; i++ {
		long := rnd.Float64()*360 - 180
		lat := rnd.Float64()*170 - 85
		if i%4 == 0 { // a cluster around one place
			long, lat = 2.35+rnd.NormFloat64()*0.5, 48.85+rnd.NormFloat64()*0.5
		}
		add = append(add, fmt.Sprintf("%.6f", long), fmt.Sprintf("%.6f", lat), fmt.Sprint("p", i))
	}
	cmds = append(cmds, add)
	for i := 0; i < 400; i += 7 {
		m := fmt.Sprint("p", i)
		cmds = append(cmds, diffCmd{"GEOPOS", "g", m}, diffCmd{"GEOHASH", "g", m},
			diffCmd{"GEODIST", "g", m, fmt.Sprint("p", i+1), "km"}, diffCmd{"ZSCORE", "g", m})
	}
	units := []string{"m", "km", "mi", "ft"}
	for i := 0; i < 150; i++ {
		long := fmt.Sprintf("%.4f", rnd.Float64()*360-180)
		lat := fmt.Sprintf("%.4f", rnd.Float64()*170-85)
		if i%3 == 0 {
			long, lat = fmt.Sprintf("%.4f", 2.35+rnd.NormFloat64()*0.3), fmt.Sprintf("%.4f", 48.85+rnd.NormFloat64()*0.3)
		}
		radius := fmt.Sprint([]int{1, 10, 50, 200, 1000, 5000}[rnd.IntN(6)])
		unit := units[rnd.IntN(4)]
		cmds = append(cmds,
			diffCmd{"GEOSEARCH", "g", "FROMLONLAT", long, lat, "BYRADIUS", radius, unit, "ASC", "WITHDIST", "WITHCOORD", "WITHHASH"},
			diffCmd{"GEOSEARCH", "g", "FROMLONLAT", long, lat, "BYBOX", radius, fmt.Sprint(rnd.IntN(3000) + 1), unit, "DESC", "COUNT", 5, "WITHDIST"},
			diffCmd{"GEORADIUSBYMEMBER_RO", "g", fmt.Sprint("p", rnd.IntN(400)), radius, unit, "COUNT", 3, "ASC"},
			diffCmd{"GEOSEARCHSTORE", "d", "g", "FROMLONLAT", long, lat, "BYRADIUS", radius, unit},
			diffCmd{"ZRANGE", "d", 0, -1, "WITHSCORES"},
			diffCmd{"GEOSEARCHSTORE", "d", "g", "FROMLONLAT", long, lat, "BYRADIUS", radius, unit, "STOREDIST"},
			diffCmd{"ZRANGE", "d", 0, -1})
	}
	diff(t, e, r, cmds)

	// full-precision distances (STOREDIST, read back with ZSCORE): sin,
	// cos and asin are rounded correctly, which the C library does in all
	// but rare cases, so nearly every distance is Redis's to the last bit
	// and none is more than 2 units in the last place away
	ctx := context.Background()
	total, exact := 0, 0
	for i := 0; i < 60; i++ {
		args := []any{"GEOSEARCHSTORE", "d", "g", "FROMLONLAT", fmt.Sprintf("%.4f", 2.35+rnd.NormFloat64()*0.3),
			fmt.Sprintf("%.4f", 48.85+rnd.NormFloat64()*0.3), "BYRADIUS", []int{5, 50, 500, 5000}[i%4], "km", "STOREDIST"}
		r.Do(ctx, args...)
		e.rdb.Do(ctx, args...)
		want := r.ZRangeWithScores(ctx, "d", 0, -1).Val()
		got := e.rdb.ZRangeWithScores(ctx, "d", 0, -1).Val()
		if len(got) != len(want) {
			t.Fatalf("%v: %d results, redis %d", args, len(got), len(want))
		}
		for j := range want {
			total++
			g, w := got[j].Score, want[j].Score
			switch {
			case g == w:
				exact++
			case math.Abs(g-w) > 2*(math.Nextafter(w, math.Inf(1))-w):
				t.Errorf("%v: %v at %v, redis %v", args, got[j].Member, g, w)
			}
		}
	}
	if total == 0 || float64(exact) < 0.99*float64(total) {
		t.Errorf("%d of %d stored distances equal Redis's", exact, total)
	}
	t.Logf("%d of %d stored distances equal Redis's to the last bit", exact, total)
}
